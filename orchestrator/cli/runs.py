"""`orch runs`, `orch logs`, `orch stop`, `orch resume`: the recorded runs and what can be done with them."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.local import detect_gpus
from orchestrator.cli import display
from orchestrator.cli.errors import only_match, user_errors
from orchestrator.cli.options import JsonFlag
from orchestrator.launch import local
from orchestrator.runs.lifecycle import finish, refresh, start_local
from orchestrator.runs.store import ACTIVE_STATUSES, RunRecord, RunStore

EXPORT_FORMATS = (".csv", ".parquet")


def find_run(store: RunStore, run_id: str) -> RunRecord:
    return only_match(store.find(run_id), "run", run_id, "orch runs")


def follow_local(store: RunStore, record: RunRecord, process, quiet: bool = False) -> RunRecord:
    """Stream the log until the trainer exits, then record how it ended. Ctrl-C leaves the run going."""
    try:
        local.follow(record, process, sys.stderr if quiet else sys.stdout)
    except KeyboardInterrupt:
        display.say(f"\nstill running: `orch logs {record.run_id} --follow`, `orch stop {record.run_id}`", err=True)
        raise typer.Exit(130) from None
    if process is not None:
        process.wait()
    return finish(store, store.get(record.run_id))


@user_errors
def runs_command(
    as_json: JsonFlag = False,
    export: Annotated[Path | None, typer.Option(help="Also write every run to a .csv or .parquet file.")] = None,
) -> None:
    """Every run: target, status, and the estimate beside what was measured."""
    if export is not None and export.suffix not in EXPORT_FORMATS:
        raise UserError(f"--export takes a {' or '.join(EXPORT_FORMATS)} file name, got '{export}'.")
    if export is not None:
        checks.output_file(export, "--export")
    records = refresh(RunStore())
    if export is not None:
        import pandas as pd

        frame = pd.DataFrame([{k: v for k, v in r.as_dict().items() if k not in ("job", "metrics")} for r in records])
        frame.to_csv(export, index=False) if export.suffix == ".csv" else frame.to_parquet(export, index=False)
    if as_json:
        display.print_json([r.as_dict() for r in records])
    else:
        display.show_runs(records)


@user_errors
def logs_command(
    run_id: Annotated[str, typer.Argument(help="Run id (or its unique end).")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")] = False,
) -> None:
    """A run's training log."""
    store = RunStore()
    record = find_run(store, run_id)
    log = Path(record.run_dir) / local.LOG_NAME
    if follow and record.status in ACTIVE_STATUSES and record.target == "cloud":
        from orchestrator.launch.skypilot import follow_cloud

        display.show_run(follow_cloud(store, record))
    elif follow and record.status in ACTIVE_STATUSES:
        follow_local(store, record, None)
    elif log.is_file():
        sys.stdout.write(log.read_text(errors="replace"))
    else:
        raise UserError(f"run {record.run_id} has no log yet.")


def stop_run(store: RunStore, record: RunRecord) -> str:
    """Stop a running run (SIGTERM locally, so it checkpoints; SkyPilot in the cloud); returns what happened."""
    if record.status in ACTIVE_STATUSES and record.target == "cloud":
        from orchestrator.launch.skypilot import stop_cloud

        store.update(record.run_id, stop_requested=1)
        stop_cloud(record)
        return f"stopped {record.run_id} in the cloud; a spot run's checkpoints stay in its bucket"
    if record.status not in ACTIVE_STATUSES or not local.is_running(record):
        raise UserError(f"run {record.run_id} is not running (status {record.status}).")
    store.update(record.run_id, stop_requested=1)
    local.stop(record)
    return f"stopping {record.run_id}: it checkpoints, then exits; `orch resume {record.run_id}` continues it"


@user_errors
def stop_command(run_id: Annotated[str, typer.Argument(help="Run id (or its unique end).")]) -> None:
    """Stop a run with SIGTERM: it saves a checkpoint first, so `orch resume` continues it."""
    store = RunStore()
    display.say(stop_run(store, find_run(store, run_id)))


@user_errors
def resume_command(
    run_id: Annotated[str, typer.Argument(help="Run id (or its unique end).")],
    detach: Annotated[bool, typer.Option("--detach", help="Start and return.")] = False,
) -> None:
    """Continue a stopped, preempted or budget-stopped run from its latest checkpoint."""
    store = RunStore()
    record = find_run(store, run_id)
    if record.status in ACTIVE_STATUSES and local.is_running(record):
        raise UserError(f"run {record.run_id} is still running.")
    if record.status == "ok":
        raise UserError(f"run {record.run_id} already finished.")
    if record.target != "local":
        raise UserError("cloud runs recover on their own: managed spot jobs resume from their checkpoint bucket.")
    process = start_local(store, record, detect_gpus())
    if detach:
        display.say(f"resumed {record.run_id} in the background")
        return
    record = follow_local(store, store.get(record.run_id), process)
    display.show_run(record)
    if record.status != "ok":
        raise typer.Exit(1)
