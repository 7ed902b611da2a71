"""`orch plan JOB.yaml --budget USD`: every target ranked by cost or time, the rejected ones with their reasons."""

from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog.errors import UserError
from gpu_catalog.models import ModelShape, get_model
from gpu_catalog.targets import Targets, gather_targets
from orchestrator.cli import display
from orchestrator.cli.errors import user_errors
from orchestrator.cli.options import (
    DeadlineOption,
    JobArgument,
    JsonFlag,
    ObjectiveOption,
    ProvidersOption,
    SpotOption,
    parse_providers,
)
from orchestrator.cli.serialize import data_dict, plan_dict
from orchestrator.estimator.calibration import load_calibration
from orchestrator.job import load_job, load_sized_job
from orchestrator.planner import Plan, PlanPolicy, no_option_message, plan

TARGETS = ("auto", "local", "cloud")


def allowed_providers(target: str, allowed: str | None, offers) -> frozenset[str] | None:
    """The providers a plan may use: --target narrows to local or cloud, --providers to a list; None: any."""
    if target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}.")
    if target == "auto" and not allowed:
        return None
    providers = {o.provider for o in offers}
    if allowed:
        providers &= parse_providers(allowed)
    if target == "local":
        providers &= {"local"}
    elif target == "cloud":
        providers -= {"local"}
    return frozenset(providers)


def plan_job(job: Path, budget: float, deadline: float | None, objective: str, spot: bool, providers: str | None,
             target: str = "auto", local_cost: str | None = None) -> tuple[ModelShape, Targets, Plan]:
    """Read the job, gather every target, and plan: what `orch plan` shows and `orch launch` acts on."""
    spec = load_job(job)
    targets = gather_targets(local_cost)
    policy = PlanPolicy(budget_usd=budget, deadline_hours=deadline, objective=objective, allow_spot=spot,
                        providers=allowed_providers(target, providers, targets.offers))
    model = get_model(spec.model)
    return model, targets, plan(spec, model, list(targets.offers), policy, load_calibration())


@user_errors
def plan_command(
    job: JobArgument,
    budget: Annotated[float, typer.Option(help="Most you will spend, in USD.")],
    deadline: DeadlineOption = None,
    objective: ObjectiveOption = "cost",
    providers: ProvidersOption = None,
    spot: SpotOption = True,
    local_cost: Annotated[str | None, typer.Option(help="Price local cards amortized or marginal "
                                                        "(default: the hardware file's).")] = None,
    top: Annotated[int, typer.Option(help="Rows to show in each table.")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """Rank every local and cloud target for a job under a budget and an optional deadline."""
    _, _, result = plan_job(job, budget, deadline, objective, spot, providers, local_cost=local_cost)
    data = data_dict(load_sized_job(job)[1], result.train_tokens)  # sized once: load_sized_job caches
    if as_json:
        display.print_json({**plan_dict(result), "data": data})
    else:
        display.show_plan(result, top)
        display.show_data_size(data)
    if result.chosen is None:
        raise UserError(no_option_message(result))
