"""`orch launch JOB.yaml --budget USD`: plan, confirm, train on the chosen target, follow it, and record the run."""

import sys
from typing import Annotated

import typer

from gpu_catalog.errors import UserError
from orchestrator.cli import display
from orchestrator.cli.errors import user_errors
from orchestrator.cli.options import (
    DeadlineOption,
    JobArgument,
    JsonFlag,
    ObjectiveOption,
    ProvidersOption,
    SpotOption,
)
from orchestrator.cli.plan import plan_job
from orchestrator.cli.runs import follow_local
from orchestrator.cli.serialize import plan_dict
from orchestrator.planner import no_option_message
from orchestrator.runs.lifecycle import create_run, start_local
from orchestrator.runs.store import RunStore


@user_errors
def launch_command(
    job: JobArgument,
    budget: Annotated[float, typer.Option(help="Most you will spend, in USD; the run stops before passing it.")],
    deadline: DeadlineOption = None,
    objective: ObjectiveOption = "cost",
    target: Annotated[str, typer.Option(help="auto (cheapest anywhere), local, or cloud.")] = "auto",
    providers: ProvidersOption = None,
    spot: SpotOption = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would run, launch nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Launch without asking.")] = False,
    detach: Annotated[bool, typer.Option("--detach", help="Start and return; follow with `orch logs RUN -f`.")]
    = False,
    as_json: JsonFlag = False,
) -> None:
    """Train on the cheapest suitable GPU (local or cloud) within the budget, and record the run."""
    model, targets, result = plan_job(job, budget, deadline, objective, spot, providers, target)
    spec = result.spec
    if not as_json:
        display.show_plan(result, top=5)
    if result.chosen is None:
        if as_json:
            display.print_json({"plan": plan_dict(result), "run": None})
        raise UserError(no_option_message(result))
    chosen = result.chosen
    where = "local" if chosen.offer.is_local else f"{chosen.offer.provider} {chosen.offer.region}"
    if dry_run:
        if chosen.offer.is_local:
            display.say(f"dry run: would train {spec.name} on the local {chosen.offer.gpu.name}.")
        else:
            from orchestrator.launch import sky_task  # imports sky: only for a cloud target

            display.console.print(sky_task.dry_run(spec, job, chosen, budget, model.params), markup=False,
                                  highlight=False)
        display.say("dry run: nothing launched.")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UserError("launching needs confirmation: pass --yes to launch without a prompt.")
        typer.confirm(f"Launch on {chosen.offer.gpu.name} ({where}{', spot' if chosen.offer.spot else ''}), about "
                      f"{chosen.estimate.hours:.2f} h and ${chosen.estimate.cost_usd:.2f}?", abort=True)
    store = RunStore()
    record = create_run(store, spec, job, chosen, budget)
    display.say(f"run {record.run_id} on {chosen.offer.gpu.name} ({where}): {record.run_dir}", err=True)
    if not chosen.offer.is_local:
        from orchestrator.launch import skypilot

        record = skypilot.launch_cloud(store, record, spec, job, chosen, model.params, detach, quiet=as_json)
    else:
        process = start_local(store, record, targets.detected)
        record = store.get(record.run_id) if detach else follow_local(store, record, process, quiet=as_json)
    if detach and record.status == "running":
        if not as_json:
            display.say(f"detached: `orch logs {record.run_id} --follow`, `orch stop {record.run_id}`")
    _report(result, record, as_json, quiet=detach)


def _report(result, record, as_json: bool, quiet: bool = False) -> None:
    if as_json:
        display.print_json({"plan": plan_dict(result), "run": record.as_dict()})
    elif not quiet:
        display.show_run(record)
    if record.status not in ("ok", "running"):
        raise typer.Exit(1)
