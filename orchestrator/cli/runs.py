"""`orch runs`, `orch logs`, `orch stop`, `orch resume`: the recorded runs and what can be done with them."""

import dataclasses
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.units import usd_text
from gpu_catalog.whole_files import write_atomically
from orchestrator import home
from orchestrator.cli import display
from orchestrator.cli.errors import only_match, user_errors
from orchestrator.cli.limits import check_budget
from orchestrator.cli.options import JsonFlag, path_option, usd_option
from orchestrator.cli.planning import plan_job
from orchestrator.db import LockedDatabase
from orchestrator.home import orch_home
from orchestrator.launch import lifecycle
from orchestrator.launch.local import LOG_NAME, RUN_JOB_NAME
from orchestrator.planner import Option
from orchestrator.runs.status import RunStatus
from orchestrator.runs.store import COLUMNS, RunRecord, RunStore
from orchestrator.spend import spend_usd
from trainer.status import TrainStatus

EXPORT_FORMATS = (".csv", ".parquet")
TIME_COLUMNS = {"created_at", "started_at", "ended_at"}  # epoch seconds in runs.db
# whole numbers that may be missing: pandas made a column with a gap float, and the export said pid 23178.0
WHOLE_COLUMNS = {f.name for f in dataclasses.fields(RunRecord) if f.type in (int, int | None)}
# how long a listing's refresh waits for another process's write lock (a scheduler's pass, a launch recording its
# facts) before it lists what is recorded: such writes take milliseconds, a sqlite3 shell or a backup takes minutes
REFRESH_WAIT_S = 0.5
LEAST_PLANNED_USD = 1e-9  # a budget above $0 that no offer meets


RunArgument = Annotated[str, typer.Argument(help="Run id, or a unique prefix of one.")]


def find_run(store: RunStore, run_id: str | None) -> RunRecord:
    """The run an id (or a unique prefix) names; with none, the latest run."""
    if run_id is None:
        runs = store.all()
        if not runs:
            raise UserError(f"no runs yet in {orch_home()}: start one with `orch launch JOB.yaml --budget USD`.")
        return runs[-1]
    matches = store.find(run_id)
    if not matches and run_id.startswith("j-"):
        _say_the_jobs_run(run_id)
    return only_match(matches, "run", run_id, "orch runs")


def _say_the_jobs_run(job_id: str) -> None:
    """A queued job's id given where a run's is asked for (`orch logs j-...`): the job's run, where it has one."""
    from orchestrator.schedule.queue import JobQueue

    jobs = JobQueue().find(job_id)
    if len(jobs) == 1:
        job = jobs[0]
        has = f"its run is {job.run_id}: give that" if job.run_id else f"it has no run ({job.status.value})"
        raise UserError(f"{job.job_id} is a job of the queue, not a run; {has} (`orch queue` lists jobs and their "
                        "runs).")


def refreshed_runs() -> list[RunRecord]:
    """Every run, its state refreshed from its run folder (lifecycle.refresh) when the write lock is free; while
    another process holds it, what is recorded, and one line saying so: a listing waited out that process (30 s)
    and then failed with `database is locked` instead of showing the last committed state."""
    store = RunStore(write_wait_s=REFRESH_WAIT_S)
    try:
        return lifecycle.refresh(store)
    except LockedDatabase:
        display.say(f"note: another process is writing {store.path}, so run states were not refreshed from their "
                    "run folders: showing what is recorded; run the command again to refresh them.", err=True)
        return store.all()


class _Terminated(KeyboardInterrupt):
    """SIGTERM while following a run: told as Ctrl-C is, and exits as a terminated process does (143)."""


def _interrupted(signum, frame) -> None:
    raise _Terminated


def follow_run(store: RunStore, record: RunRecord, quiet: bool = False) -> RunRecord:
    """Stream the log until the run ends (with a progress bar on a terminal), then record how it ended. Ctrl-C
    leaves the run going, and so does SIGTERM (`timeout 60 orch launch ...`), which said nothing of it."""
    before = signal.signal(signal.SIGTERM, _interrupted)
    try:
        if not quiet and display.console.is_terminal:
            from orchestrator.cli.live import RunProgress

            with RunProgress(record, display.console) as view:
                return lifecycle.follow(store, record, display.LogStream(view))
        return lifecycle.follow(store, record, display.LogStream(sys.stderr if quiet else sys.stdout))
    except KeyboardInterrupt as stopped:
        if (ended := lifecycle.trainer_end(record)) is not None:  # it ended as the signal came: not "still running"
            display.say(f"\nrun {record.run_id} ended {ended.value}: `orch runs` shows it", err=True)
        else:
            display.say(f"\nstill running: `orch logs {record.run_id} --follow`, `orch stop {record.run_id}`",
                        err=True)
        raise typer.Exit(143 if isinstance(stopped, _Terminated) else 130) from None
    except LockedDatabase:  # the training is done: "try again" told the user to pay for it twice
        ended = lifecycle.trainer_end(record)
        display.say(f"run {record.run_id}'s trainer ended{f' {ended.value}' if ended else ''}, and another process "
                    f"holds {store.path} locked, so its end is not recorded yet: `orch runs` records it once the "
                    "lock is gone (the run needs no new launch).", err=True)
        raise typer.Exit(exit_code(ended) if ended else 1) from None
    finally:
        signal.signal(signal.SIGTERM, before)


def exit_code(status: RunStatus) -> int:
    """What `orch launch`, `orch resume` and `orch logs --follow` exit with for a run's status: the trainer's own
    code for an end it reports (bad_config 2, as `orch train` exits, oom 3, ...), 0 while it runs, 1 for a stop or a
    failure the trainer never reported."""
    if status is RunStatus.RUNNING:
        return 0
    return next((train.exit_code for train in TrainStatus if train.value == status.value), 1)


@user_errors
def runs_command(
    as_json: JsonFlag = False,
    export: Annotated[Path | None, path_option(help="Also write every run to a .csv or .parquet file.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --export file if it exists.")] = False,
) -> None:
    """Every run: target, status, and the estimate beside what was measured."""
    if force and export is None:  # as `orch import` says it: --force alone does nothing
        raise UserError("--force replaces an existing --export file: give --export FILE with it, or leave --force "
                        "out.")
    if export is not None:  # an export kept from before is not lost
        home.output_file(export, "--export", force=force, suffixes=EXPORT_FORMATS)
    records = refreshed_runs()
    if export is not None:
        import pandas as pd

        # the columns named even with no run yet: an empty file had no header, and pandas could not read it back
        columns = [name for name in COLUMNS if name not in ("job_json", "metrics_json")]
        frame = pd.DataFrame([{k: v for k, v in r.as_dict().items() if k not in ("job", "metrics")} for r in records],
                             columns=columns)
        for column in TIME_COLUMNS.intersection(frame.columns):  # UTC times a spreadsheet reads, not epoch seconds
            frame[column] = pd.to_datetime(frame[column], unit="s", utc=True).dt.round("s")
        for column in WHOLE_COLUMNS.intersection(frame.columns):
            frame[column] = frame[column].astype("Int64")
        write_atomically(export, lambda partial: frame.to_csv(partial, index=False) if export.suffix.lower() == ".csv"
                         else frame.to_parquet(partial, index=False))
        display.say(f"wrote {len(records)} run{'s' if len(records) != 1 else ''} to {export}", err=True)
    # a run still going: its session's figures so far, from the trainer's progress.json (the record has the last
    # session's, or none: a first session showed "running - - -" while it had trained for minutes)
    live = {r.run_id: lifecycle.live_figures(r) for r in records}
    if as_json:
        display.print_json([{**r.as_dict(), "spent_usd": spend_usd(r), "live": live[r.run_id]} for r in records])
    else:
        # the record's wall_s stays its earlier sessions': the table adds this one's, as it prices it (spend_usd)
        shown = [dataclasses.replace(r, **{k: v for k, v in (live[r.run_id] or {}).items()
                                           if v is not None and k != "wall_s"}) for r in records]
        display.show_runs(shown, orch_home())


@user_errors
def logs_command(
    run_id: Annotated[str | None, typer.Argument(help="Run id, or a unique prefix of one (default: the latest "
                                                      "run).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends, then exit as "
                                                                "`orch launch` does (0 ok, 4 budget stop, 1 "
                                                                "failed...).")] = False,
) -> None:
    """A run's training log."""
    store = RunStore()
    record = find_run(store, run_id)
    if run_id is None:  # the log alone did not say whose it was; a pipe gets the log alone
        display.progress(f"run {record.run_id}, the latest (`orch logs RUN` shows another's):")
    log = Path(record.run_dir) / LOG_NAME
    if log.is_symlink() or (log.exists() and not log.is_file()):  # the trainer writes a file there, nothing else
        # a link was followed anywhere (`/etc/shadow` printed), and a folder or a pipe was said to be no log at all
        kind = f"a link to {os.readlink(log)}" if log.is_symlink() else "a folder" if log.is_dir() else \
            "a pipe or a device"
        raise UserError(f"run {record.run_id}'s {LOG_NAME} is {checks.printable(kind)}, not the file its trainer "
                        f"writes: remove it (in {record.run_dir}).")
    if follow and record.status is RunStatus.RUNNING:
        ended = follow_run(store, record)
        display.show_run(ended)
        if code := exit_code(ended.status):  # as `orch launch` attached exits: a script following a detached run
            raise typer.Exit(code)
    elif log.is_file() and log.stat().st_size:
        sys.stdout.write(display.log_text(log.read_text(encoding="utf-8", errors="replace"), sys.stdout))
        if follow and not record.status.is_active() and (code := exit_code(record.status)):  # ended a moment before
            raise typer.Exit(code)  # the script came to follow it: the same code, whichever came first
    elif record.status.is_active():  # starting: its trainer is importing and building the model, no error of anyone's
        display.say(f"run {record.run_id} has written no log yet ({record.status.value}): `orch logs "
                    f"{record.run_id} --follow` follows it.")
    elif not log.parent.is_dir():  # said as `orch resume` and `orch pull` say it (not "before it wrote a line")
        ended = f" (it ended {record.status.value}: {record.message})" if record.message else ""
        raise UserError(f"run {record.run_id}'s folder {record.run_dir} is gone, so it has no log{ended}.")
    elif record.message:  # ended before its trainer wrote a line: say why
        raise UserError(f"run {record.run_id} has no log: it ended {record.status.value} before its trainer wrote a "
                        f"line: {record.message}")
    else:
        raise UserError(f"run {record.run_id} has no log.")


@user_errors
def stop_command(run_id: RunArgument, as_json: JsonFlag = False) -> None:
    """Stop a run with SIGTERM: it saves a checkpoint first (waited for, up to 5 min) for `orch resume`."""
    store = RunStore()
    record = find_run(store, run_id)
    said = lifecycle.request_stop(store, record)
    if not as_json:
        display.say(said)
    try:
        ended = lifecycle.wait_for_end(store, record.run_id)
    except KeyboardInterrupt:  # the stop was asked all the same: only the wait for it is given up
        display.say(f"\nno longer waiting: {record.run_id} goes on saving its checkpoint, and `orch runs` says when it "
                    "has stopped", err=True)
        raise typer.Exit(130) from None
    if ended is None:  # its record deleted meanwhile (the runs database replaced)
        raise UserError(f"run {record.run_id} is no longer recorded: `orch runs` lists the runs there are.")
    if as_json:  # the run once its trainer ended, or still running (saving its checkpoint) past the wait
        display.print_json({"run": ended.as_dict(), "still_saving": ended.status.is_active()})
    elif ended.status.is_active():
        display.say(f"{ended.run_id} is still saving its checkpoint after {lifecycle.STOP_WAIT_S:.0f} s: `orch runs` "
                    "says when it has stopped")
    else:
        display.say(f"{ended.run_id}: {ended.status.value}")


def same_target(record: RunRecord, budget_usd: float | None) -> Option | None:
    """The run's own target, planned again now (prices move) for the tokens left to train and what is left of the
    budget; None when the target no longer fits that budget (a local run starts on its recorded device all the
    same). The whole job priced against the budget's remainder refused a run half done."""
    left_usd = (budget_usd or record.budget_usd) - (record.cost_usd or 0.0)
    job = Path(record.run_dir) / RUN_JOB_NAME
    if not job.is_file():
        return None
    # a spent budget is planned at the least a budget is (every offer over it), for the start's estimate: planned at
    # $0, the plan refused "--budget ... got 0", a flag the user never gave
    _, _, result = plan_job(job, max(left_usd, LEAST_PLANNED_USD), None, "cost", bool(record.spot), record.provider,
                            tokens_done=record.train_tokens or 0)
    same = [o for o in result.options if o.offer.gpu.name == record.gpu and o.offer.spot == bool(record.spot)]
    if not same:  # a start the remainder cannot pay for spends it on imports and the model, and trains no step
        missed = [r.estimate for r in result.rejected if r.estimate is not None and r.offer.gpu.name == record.gpu
                  and r.offer.spot == bool(record.spot)]
        if missed and (start_usd := missed[0].startup_hours * record.usd_per_hour) >= left_usd:
            spent_usd = record.cost_usd or 0.0
            # a --budget given below the spend was said as "its budget", with that very flag as the way out
            # and one below the spend as the total it is: "leaves $0.000 past the $0.00011 it has spent"
            said = (f"run {record.run_id} has {usd_text(max(0.0, left_usd))} of its budget left" if budget_usd is None
                    else f"--budget {usd_text(budget_usd)} is the run's new total, and it has already spent "
                         f"{usd_text(spent_usd)}" if left_usd <= 0 else
                    f"--budget {usd_text(budget_usd)} leaves run {record.run_id} {usd_text(left_usd)} past the "
                    f"{usd_text(spent_usd)} it has spent")
            raise UserError(f"{said}, and starting again takes about {missed[0].startup_hours * 3600:,.0f} s "
                            f"({usd_text(start_usd)}) before a step: `orch resume {record.run_id} --budget USD` with "
                            f"a larger total (more than {usd_text(spent_usd + start_usd)}) continues it.")
    return next((o for o in same if o.offer.region == record.region), same[0] if same else None)


@user_errors
def resume_command(
    run_id: RunArgument,
    detach: Annotated[bool, typer.Option("--detach", help="Start and return.")] = False,
    budget: Annotated[float | None, usd_option(help="A new total budget for the run, in US dollars (default: what "
                                                    "is left of its budget).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON when it ends (with --detach: once "
                                                         "started); its log goes to stderr.")] = False,
) -> None:
    """Continue a stopped, preempted, budget-stopped or failed run from its latest checkpoint."""
    check_budget(budget)  # before the run is looked up and its target planned again
    store = RunStore()
    record = find_run(store, run_id)
    if record.status.is_active():  # its trainer may have ended since anyone looked (`orch stop`, a kill): said first
        lifecycle.refresh(store)
        record = store.get(record.run_id)
    record = lifecycle.resume(store, record, budget, lambda: same_target(record, budget))
    if note := changed_job_note(record):
        display.say(note, err=True)
    started = record.status is RunStatus.RUNNING
    if started and not detach:
        record = follow_run(store, record, quiet=as_json)
    if as_json:
        display.print_json(record.as_dict())
    elif started and not detach:
        display.show_run(record)
    elif started:
        display.say(f"resumed {record.run_id} in the background")
    else:  # it ended at once (a launch that failed): why, not the status alone
        why = f": {record.message}" if record.message else ""
        display.say(f"run {record.run_id}: {record.status.value}{why}")
    if code := exit_code(record.status):
        raise typer.Exit(code)


def changed_job_note(record: RunRecord) -> str | None:
    """A note when the job file the run was launched from changed after the launch: a resume trains the run folder's
    own copy, and an edit there (fewer tokens, another rate) was taken for one the resume used."""
    job = Path(record.job_path)
    try:
        changed = job.stat().st_mtime > record.created_at
    except OSError:  # moved or deleted since: the run's copy is all there is
        return None
    if not changed:
        return None
    return (f"note: {job} changed after run {record.run_id} was launched; a resume trains the run's own copy "
            f"({Path(record.run_dir) / RUN_JOB_NAME}): `orch launch {job}` trains the changed job.")


@user_errors
def pull_command(run_id: RunArgument, as_json: JsonFlag = False) -> None:
    """Bring a run's output (metrics.json, steps.jsonl, final/) into its run folder."""
    store = RunStore()
    record = find_run(store, run_id)
    lifecycle.pull(record)
    if as_json:
        display.print_json({"run_id": record.run_id, "output_dir": str(record.output_dir)})
    else:
        display.say(f"{record.run_id}: output in {record.output_dir}")  # printable: ORCH_HOME may hold any character
