"""`orch launch JOB.yaml --budget USD`: plan, confirm, train on the chosen target, follow it, and record the run."""

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.offer import SSH_POOL_PROVIDER
from gpu_catalog.owned import hardware_file
from gpu_catalog.units import duration_text, usd_text
from orchestrator import home, preflight
from orchestrator.cli import display
from orchestrator.cli.errors import SaidInJson, user_errors
from orchestrator.cli.options import (
    DeadlineOption,
    JobArgument,
    JsonFlag,
    LocalCostOption,
    MaxUsdPerHourOption,
    ObjectiveOption,
    ProvidersOption,
    SpotOption,
    path_option,
    usd_option,
)
from orchestrator.cli.planning import data_and_notes, plan_job, replanned
from orchestrator.cli.runs import exit_code, follow_run
from orchestrator.cli.serialize import error_dict, plan_dict
from orchestrator.delivery import CLUSTER_IDLE_MINUTES
from orchestrator.estimator.calibration import calibration_file
from orchestrator.launch import lifecycle
from orchestrator.launch.local import read_job
from orchestrator.planner import no_option_message
from orchestrator.runs.status import RunStatus
from orchestrator.runs.store import RunStore


@user_errors
def launch_command(
    job: JobArgument,
    budget: Annotated[float, usd_option(help="Most you will spend, in US dollars; the run stops before passing it.")],
    deadline: DeadlineOption = None,
    objective: ObjectiveOption = "cost",
    target: Annotated[str, typer.Option(help="auto (cheapest anywhere), local, or cloud.")] = "auto",
    providers: ProvidersOption = None,
    spot: SpotOption = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would run, launch nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Launch without asking.")] = False,
    detach: Annotated[bool, typer.Option("--detach", help="Start and return; follow with `orch logs RUN -f`.")]
    = False,
    max_usd_per_hour: MaxUsdPerHourOption = None,
    local_cost: LocalCostOption = None,
    out: Annotated[Path | None, path_option("--out", what="a task file name", help="With --dry-run: write the task "
                                            "file here (and the files it mounts beside it).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --out file if it exists, and the job.yaml and "
                                        "src/ in a files folder beside it that no dry run of orch wrote.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Train on the cheapest suitable GPU (local or cloud) within the budget, and record the run."""
    if out is not None and not dry_run:
        raise UserError("--out writes the task file of a dry run: add --dry-run, or drop --out.")
    if dry_run and detach:  # nothing starts to detach from: one of them was meant otherwise
        raise UserError("--detach returns once the run starts, and a dry run starts none: drop one of them.")
    if force and out is None:  # as `orch import` says it: --force alone does nothing
        raise UserError("--force replaces an existing --out file: give --out FILE with it, or leave --force out.")
    if out is not None:
        _check_task_out(out, job, force)  # before planning, not after it
    # the database a launch records its run in, opened before planning: a damaged or unusable one was refused only
    # after the 6-10 s plan had been shown
    store = None if dry_run else RunStore()
    if target.strip().lower() != "cloud":  # a cloud VM keeps its built model in its own cache
        preflight.check_cache_first(job, "launched")
    model, targets, result = plan_job(job, budget, deadline, objective, spot, providers, target,
                                      local_cost=local_cost, max_usd_per_hour=max_usd_per_hour,
                                      launch_refusal=_refusal(dry_run, spot))
    if not dry_run:
        result = _taken_here(model, targets, result)
    data, notes = data_and_notes(job, model, result)
    spec = result.spec
    if not as_json and not (dry_run and result.chosen):  # a dry run that has a task shows the plan with it
        display.show_plan(result, top=5, more=PLAN_SHOWS_MORE)
    if result.chosen is None:
        if as_json:  # the plan that found nothing is the document, its error in it
            display.print_json({"plan": plan_dict(result), "run": None, **error_dict(no_option_message(result))})
            raise SaidInJson(no_option_message(result))
        raise UserError(no_option_message(result))
    chosen = result.chosen
    if dry_run:
        here = _launch_here(result, lambda refusal: replanned(model, targets, result, refusal))
        _dry_run(result, job, budget, model, out, as_json, here, {"data": data, "notes": notes})
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UserError("launching needs confirmation: pass --yes to launch without a prompt.")
        if not _confirmed(f"Launch on {chosen.offer.gpu.name} ({_where(chosen.offer, ', spot')}), about "
                          f"{duration_text(chosen.estimate.hours * 3600)} and {usd_text(chosen.estimate.cost_usd)}?"):
            display.say("not launched: nothing was recorded.", err=True)
            raise typer.Exit(1)
    preflight.check(spec, job, chosen)  # no VM is bought for a job that would exit 2
    record = lifecycle.create_run(store, spec, job, chosen, budget)
    display.say(f"run {record.run_id} on {chosen.offer.gpu.name} ({_where(chosen.offer)}): {record.run_dir}",
                err=True)
    try:
        record = lifecycle.start(store, record, chosen)
    except KeyboardInterrupt:
        if lifecycle.end_interrupted_launch(store, record):
            display.say(f"\ninterrupted while launching, before the trainer started: run {record.run_id} is stopped "
                        f"(`orch resume {record.run_id}` starts it)", err=True)
        else:
            display.say(f"\ninterrupted while launching: `orch stop {record.run_id}` cancels what was started, "
                        "`orch runs` shows it", err=True)
        raise typer.Exit(130) from None
    if not detach and record.status is RunStatus.RUNNING:
        record = follow_run(store, record, quiet=as_json)
    if detach and record.status is RunStatus.RUNNING and not as_json:
        display.say(f"detached: `orch logs {record.run_id} --follow`, `orch stop {record.run_id}`")
        # on a cloud VM's disk, it goes with the VM's autodown (a node pool's machines are the user's own)
        if record.output_uri and not record.output_uri.startswith("bucket ") and record.provider != SSH_POOL_PROVIDER:
            display.say(f"note: the output stays on the VM, which downs itself {CLUSTER_IDLE_MINUTES} idle minutes "
                        f"after the job: `orch runs` (or `orch pull {record.run_id}`) within that time brings it "
                        "home.", err=True)
    _report(result, record, as_json, quiet=detach)


PLAN_SHOWS_MORE = "`orch plan --top N` shows more"  # launch has no --top: its tables show 5 rows


def _confirmed(question: str) -> bool:
    """The user's yes; Ctrl-D (no more input) is a no, as a shell's is, where click reads it as Ctrl-C's abort: the
    interrupt alone exits 130."""
    try:
        return typer.confirm(question, err=True)  # stdout is for the plan, or the JSON a script reads
    except typer.Abort as exc:
        if isinstance(exc.__context__, EOFError):
            display.say("", err=True)  # the prompt's line ended, as Enter ends it
            return False
        raise


def _refusal(dry_run: bool, spot: bool):
    """What a launch asks of each spot offer before choosing (sky_storage.launch_refusals): a spot run the launch
    would refuse (no storage cloud for its checkpoints) is passed over, not chosen and then refused. A dry run writes
    the task anyway and says what a launch would do; without spot there is nothing to ask (and sky stays unloaded)."""
    if dry_run or not spot:
        return None
    from orchestrator.launch.sky_storage import launch_refusals  # asking reads SkyPilot's state: sky is loaded then

    return launch_refusals()


def _where(offer, spot_mark: str = "") -> str:
    """Where an offer runs, as a launch says it: `local`, or its cloud and region (and `spot_mark` for spot)."""
    return "local" if offer.is_local else f"{offer.provider} {offer.region}{spot_mark if offer.spot else ''}"


def _refusals_here(result):
    """What a launch from this machine asks of each cloud offer, the plan's estimates known
    (sky_storage.launch_refusal_for)."""
    from orchestrator.launch.sky_storage import launch_refusal_for

    return launch_refusal_for(result.policy.budget_usd, {o.offer: o.estimate.cost_usd for o in result.options})


def _taken_here(model, targets, result):
    """The plan as `orch launch` takes it here: a chosen cloud offer the launch would refuse is passed over for the
    next (an on-demand offer refused for the VM's idle hour was planned, confirmed and recorded as a failed run)."""
    if result.chosen is None or result.chosen.offer.is_local:
        return result
    refusals = _refusals_here(result)
    return result if refusals(result.chosen.offer) is None else replanned(model, targets, result, refusals)


def _launch_here(result, plan_with) -> str | None:
    """What `orch launch` would take here where it differs from the dry run's choice: a dry run writes its task for
    SkyPilot to pick the store (the machine that launches it may have a storage cloud this one lacks), while a
    launch here passes over an offer it would refuse (_refusals_here). Said, or a newcomer reads one offer and price
    in the dry run and is asked to confirm another."""
    chosen = result.chosen
    if chosen.offer.is_local:
        return None
    refusals = _refusals_here(result)
    if (why := refusals(chosen.offer)) is None:
        return None
    taken = plan_with(refusals).chosen
    if taken is None:
        return f"`orch launch` here would find no offer: {why}"
    offer = taken.offer
    return (f"`orch launch` here would take {offer.gpu.name} ({_where(offer, ' spot')}): "
            f"{duration_text(taken.estimate.hours * 3600)}, "
            f"{usd_text(taken.estimate.cost_usd)}, not the {'spot ' if chosen.offer.spot else ''}offer above: {why}")


def _check_task_out(out: Path, job: Path, force: bool) -> None:
    """A dry run's task file and the folder of files beside it replace neither the job nor a dataset it names, and
    an existing file only with --force, as `orch import --out` asks (a job file was replaced by the task). The folder
    is an output too: one that no dry run of orch wrote (a user's own `mine-files/`) has its src/ and job.yaml
    replaced only with --force; an earlier dry run's is rewritten, as the task file beside it is."""
    from orchestrator.launch.sky_task import copyable, foreign_task_files, task_files_dir

    try:
        inputs = (job, *read_job(job)[1].values())
    except UserError:
        inputs = (job,)  # the plan says what is wrong with the job itself
    inputs += (hardware_file(), calibration_file())  # the plan reads them too: a task file replaced the cards' prices
    home.output_file(out, "--out", inputs=inputs, force=force, suffixes=checks.YAML_SUFFIXES, read_folders=inputs)
    files_dir = task_files_dir(out)
    checks.fits_the_file_system(files_dir, "--out (the folder of the task's files beside it)")  # name + -files
    if link := checks.dangling_link(files_dir):  # found only at the write, after the plan, as "full disk"
        raise UserError(f"--out {out}: the task's files go in {files_dir}, which {link}, or choose another --out.")
    copyable(checks.resolved(files_dir), "the folder the task's files are written to")  # `../t.yaml` from inside it
    if files_dir.exists() and not files_dir.is_dir():
        raise UserError(f"--out {out}: the task's files go in {files_dir}, which is a file: move it or choose "
                        "another --out.")
    if any(files_dir.resolve() in (path.resolve(), *path.resolve().parents) for path in inputs):
        raise UserError(f"--out {out}: the task's files go in {files_dir}, which holds the job or its data: choose "
                        "another --out.")
    if not force and foreign_task_files(files_dir, out):
        raise UserError(f"--out {out}: the task's files go in {files_dir}, which holds files no orch dry run to {out} "
                        "wrote (another task file's, or your own): pass --force to replace its src/ and job.yaml, or "
                        "choose another --out.")


def _dry_run(result, job: Path, budget: float, model, out: Path | None, as_json: bool,
             here: str | None, data_and_notes: dict) -> None:
    """The task file on stdout (or in --out), everything for people on stderr, the plan first, and `here`, what a
    launch on this machine would take instead (_launch_here); --json: one JSON document, with the plan's data and
    notes as `orch plan --json` gives them (`data_and_notes`). The plan is shown once the
    task is made: a refusal before (pre-flight, the task) is one error line on stderr, as `orch plan`'s is, not
    tables and then the line."""
    chosen, spec = result.chosen, result.spec
    preflight.check(spec, job, chosen, launching=False)
    task = None
    if not chosen.offer.is_local:
        from orchestrator.launch import sky_task  # imports sky: only for a cloud target

        task = sky_task.dry_run(spec, job, chosen, budget, model, out)
    nothing_written = f"--out {out}: nothing written, a local run has no task file." if task is None and out else None
    if as_json:  # the same words as the text's: a script given --out went looking for a file never written
        display.print_json({"plan": {**plan_dict(result), **data_and_notes},
                            "task_yaml": task.yaml_text if task else None,
                            "task_file": str(out) if out and task else None,
                            "skypilot_optimizer": task.optimizer_text if task else None,
                            "note": task.note if task else nothing_written, "launch_here": here, "launched": False})
        return
    display.show_plan(result, top=5, to_stderr=True, more=PLAN_SHOWS_MORE)
    if here:  # before the task and the command that runs it: said after, a newcomer had copied the command first
        display.say(f"note: {here}", err=True)
    if task is None:
        display.err_console.print(f"dry run: would train {spec.name} on the local {chosen.offer.gpu.name}.")
        if nothing_written:  # said, or the user goes looking for a task file that was never written
            display.say(nothing_written, err=True)
    elif out is None:
        sys.stdout.write(task.yaml_text)
        display.err_console.print(task.optimizer_text, markup=False, highlight=False)
        display.say(f"the task above mounts {spec.name}-task-files/, which only --out FILE writes (with the task): "
                    "give --out to launch it with sky", err=True)
    else:
        display.err_console.print(task.optimizer_text, markup=False, highlight=False)
        # the secrets the task declares: a name found anywhere in its text (a dataset `data/HF_TOKEN_rows.jsonl`)
        # asked for a secret the task never reads, and `sky launch` refused it unset or sent it to the VM
        secrets = "".join(f" --secret {name}" for name in task.secrets)
        # a spot run is a managed job: `sky launch` would start a bare spot VM, never recovered nor taken down;
        # one line (not folded at the terminal's width), so the command copies whole
        # named, as the notes name it (`rsync -a NAME:...`): SkyPilot made one up, which the user had to look for
        command = f"sky jobs launch -n {task.cluster}" if chosen.delivery.managed else f"sky launch -c {task.cluster}"
        # with its launch time, the budget's window counts provisioning and setup too (sky_task.LAUNCHED_AT_ENV)
        command += f" {sky_task.LAUNCH_TIME_FLAG}"
        # say: printable, as --out is a name given by a user and no escape in it may reach the terminal
        # quoted for the shell: a space in --out split the pasted command, and `$(...)` in it ran
        display.say(f"task file: {out} (its files: {task.files_dir}); from this folder, this runs it:", err=True)
        # `-x.yaml` as written was read by sky as an option: a name starting with a dash is given from its folder
        named = f"./{out}" if str(out).startswith("-") else str(out)
        display.command_line(f"  {command} {shlex.quote(named)}{secrets}", err=True)
    if task is not None and task.note:
        display.say(f"note: {task.note}", err=True)
    if task is not None and result.spec.report_to == "wandb" and "WANDB_API_KEY" not in task.secrets:
        # the task then asks for no key (`sky launch` refuses a file whose secret is unset where it runs), and the
        # trainer logs offline on the VM: the run never showed in W&B, and nothing said so
        display.say("note: WANDB_API_KEY is not set here, so the task does not ask for it and the run logs to W&B "
                    "offline on the VM: set it and dry-run again to have the command send it.", err=True)
    display.err_console.print("dry run: nothing launched.")


def _report(result, record, as_json: bool, quiet: bool = False) -> None:
    if as_json:
        display.print_json({"plan": plan_dict(result), "run": record.as_dict()})
    elif not quiet:
        display.show_run(record)
    if code := exit_code(record.status):
        raise typer.Exit(code)
