"""Read a job, gather every target and plan: what `orch plan` shows and `orch launch` acts on. No CLI framework and
no terminal formatting here, so `orch plan` loads only what planning needs."""

import dataclasses
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.cloud_features import known_cloud
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import more_threads_than_cores
from gpu_catalog.models import ModelShape
from gpu_catalog.offer import SSH_POOL_PROVIDER
from gpu_catalog.targets import Targets, gather_targets
from orchestrator.cli import fold
from orchestrator.cli.limits import MAX_BUDGET_USD, check_budget, check_deadline, parse_providers
from orchestrator.cli.serialize import data_dict, padding_worth_saying
from orchestrator.estimator.calibration import load_calibration
from orchestrator.estimator.settings import job_model, model_notes
from orchestrator.job import load_job, load_sized_job
from orchestrator.planner import LaunchRefusal, Plan, PlanPolicy, plan
from orchestrator.startup_times import load_startup_times
from trainer.config import resolve_dataset
from trainer.data import SeqLenFit

TARGETS = ("auto", "local", "cloud")


def allowed_providers(target: str, allowed: str | None, offers) -> frozenset[str] | None:
    """The providers a plan may use: --target narrows to local or cloud, --providers to a list; None: any."""
    target = target.strip().lower()  # `--target CLOUD`: choices are read in any case, as a job file's are
    if target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}.")
    asked = parse_providers(allowed)
    if target == "auto" and asked is None:
        return None
    providers = {o.provider for o in offers}
    if asked is not None:
        unknown = sorted(p for p in asked if p not in providers and not known_cloud(p) and p != "local")
        if unknown:
            import difflib  # only on a miss

            hints = [f"{p!r}" + (f" (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(
                p, sorted(providers), n=1)) else "") for p in unknown]
            commas = next((f" (the list is comma-separated: --providers {','.join(p.split())})" for p in unknown
                           if len(p.split()) > 1), "")  # `--providers 'lambda vast'`
            raise UserError(f"--providers: no cloud named {', '.join(hints)}{commas}; known here: "
                            f"{', '.join(sorted(providers))}.")
        if not providers & asked:  # every row would say "not allowed", and the plan fail without saying why
            raise UserError(f"--providers {','.join(sorted(asked))}: no offers from "
                            f"{'it' if len(asked) == 1 else 'them'} in the catalogs here (`orch "
                            "catalog refresh` brings SkyPilot's); providers with offers: "
                            f"{', '.join(sorted(providers))}.")
        if absent := sorted(asked - providers - {"local"}):  # planned without them: said, not silently dropped
            fold.note(f"note: --providers {', '.join(absent)}: no offers in the catalogs here (`orch catalog "
                      "refresh` brings SkyPilot's); planned on the others.")
        providers &= asked
    if target == "local":
        providers &= {"local"}
    elif target == "cloud":
        providers -= {"local"}
    if not providers:
        raise UserError(f"--target {target} and --providers {','.join(sorted(asked or ()))} leave no provider: drop "
                        "one of them.")
    return frozenset(providers)


def plan_job(job: Path, budget: float, deadline: float | None, objective: str, spot: bool, providers: str | None,
             target: str = "auto", local_cost: str | None = None,
             max_usd_per_hour: float | None = None,
             launch_refusal: LaunchRefusal | None = None, tokens_done: int = 0) -> tuple[ModelShape, Targets, Plan]:
    """Read the job, gather every target, and plan: what `orch plan` shows and `orch launch` acts on (a launch
    passes `launch_refusal`, so an offer it would refuse is no option; a resume the tokens its run has trained)."""
    check_budget(budget)
    check_deadline(deadline)
    checks.optional_number(max_usd_per_hour, "--max-usd-per-hour", 0, MAX_BUDGET_USD, above=True)
    spec = load_job(job)
    # choices are read in any case, as a job file's are (`--objective COST`, `--local-cost Marginal`)
    targets = gather_targets(local_cost.strip().lower() if local_cost else local_cost)
    allowed = allowed_providers(target, providers, targets.offers)
    owned = {o.provider for o in targets.offers if o.is_local or o.provider == SSH_POOL_PROVIDER}
    if local_cost is not None and allowed is not None and not owned & allowed:  # priced nothing, said nothing
        given = "--target cloud" if target.strip().lower() == "cloud" else f"--providers {providers}"
        raise UserError(f"--local-cost prices your own cards, and {given} plans none of them: leave --local-cost out, "
                        f"or allow {' or '.join(sorted(owned)) or 'local'}.")
    policy = PlanPolicy(budget_usd=budget, deadline_hours=deadline, objective=objective.strip().lower(),
                        allow_spot=spot, providers=allowed, max_usd_per_hour=max_usd_per_hour,
                        launch_refusal=launch_refusal)
    model = job_model(spec)
    for note in model_notes(spec, model):
        fold.note(f"note: {note}")
    return model, targets, plan(spec, model, list(targets.offers), policy, load_calibration(),
                                startup_times=load_startup_times(), tokens_done=tokens_done)


def replanned(model: ModelShape, targets: Targets, result: Plan, launch_refusal: LaunchRefusal) -> Plan:
    """`result` planned again with a launch's refusals asked (a dry run saying what a launch here would take): the
    same job, targets and policy, and plan_job's notes not said twice."""
    policy = dataclasses.replace(result.policy, launch_refusal=launch_refusal)
    return plan(result.spec, model, list(targets.offers), policy, load_calibration(),
                startup_times=load_startup_times())


def data_and_notes(job: Path, model: ModelShape, result: Plan) -> tuple[dict | None, list[str]]:
    """The dataset's size (serialize.data_dict) and every note on the job (the model's, said by plan_job, and the
    data's, said here), for `orch plan` and `orch launch` alike."""
    spec, size = load_sized_job(job)  # sized once: load_sized_job caches
    data = data_dict(size, result.train_tokens, result.spec.seq_len)
    said = [note for note in (_fit_note(spec, size), _packing_note(spec, data), _eval_note(spec, job),
                              _threads_note(spec, result)) if note]
    for note in said:
        fold.note(f"note: {note}")
    return data, [*model_notes(spec, model), *said]


def _fit_note(spec, size) -> str | None:
    """Records seq_len cuts or leaves out (trainer.data.SeqLenFit), counted as the trainer will: a plan priced the
    rest, and the run trained on it, with nothing said of the records lost."""
    if size is None or not size.seq_len_fit:
        return None
    return SeqLenFit(**size.seq_len_fit).note(spec.seq_len, sampled=size.source == "sampled")


def _packing_note(spec, data: dict | None) -> str | None:
    """Where unpacked rows hold much padding: the fix is one key, and the cost it saves can be most of the plan."""
    if spec.packing or not padding_worth_saying(data):
        return None
    return (f"with `packing: false` the data fills {data['row_fill']:.0%} of its rows; the rest is padding that the "
            "GPU runs and the plan prices. `packing: true` puts several samples in each row.")


def _threads_note(spec, result: Plan) -> str | None:
    """A job's cpu_threads past this machine's cores, where the CPU was planned (not left out by --providers): it was
    planned at the cores there are, unsaid."""
    on_cpu = any(row.offer.gpu.kind == "cpu" and getattr(row, "kind", None) != "provider"
                 for row in (*result.options, *result.rejected))
    return more_threads_than_cores(spec.cpu_threads) if on_cpu else None


def _eval_note(spec, job: Path) -> str | None:
    """Where the eval set is the training data itself: its loss then measures what the model memorised, not how it
    does on data it has not seen, and nothing else says so. An `eval_split` of the dataset that is its training split
    (`train`, the default) is that too."""
    if spec.eval_dataset is None and spec.eval_split is not None and spec.eval_split == spec.dataset_split:
        return (f"`eval_split` {spec.eval_split} is the split the job trains on: its eval loss measures memorising, "
                "not unseen data; name a held-out split, or use `eval_fraction` to hold part of the data out.")
    train, held = (resolve_dataset(getattr(spec, key), job.parent, key) for key in ("dataset", "eval_dataset"))
    if train is None or held is None or not checks.same_file(train, held):
        return None
    return ("`eval_dataset` is the training data itself: its eval loss measures memorising, not unseen data; name "
            "a held-out file, or use `eval_fraction` to hold part of the data out.")
