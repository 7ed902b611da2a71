"""The run state machine, and the only writer of a run's status:

    launching -> running -> ok | error | bad_config | oom | budget_stopped | preempted | diverged   (the trainer's)
                         -> stopped (the user stopped it) | failed (died without a word, or never started)

A resume takes an ended run back to running. Launchers (orchestrator/launch/base.py) report facts; this module
records them, so every caller (the CLI, the scheduler) moves a run the same way and never branches on its target.
Money is metered from the second the launch starts until the trainer ends, whenever anyone looks.
"""

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from gpu_catalog import checks
from gpu_catalog.errors import UserError, one_line
from gpu_catalog.units import usd_for, usd_text
from orchestrator.db import MAX_STORED_NUMBER, UnusableDatabase
from orchestrator.home import state_folder
from orchestrator.launch import launching
from orchestrator.launch.base import STARTED_FACTS, NothingLaunched
from orchestrator.launch.local import LOG_NAME, RUN_JOB_NAME, job_json, run_job_file
from orchestrator.launch.registry import launcher_for
from orchestrator.planner import Option
from orchestrator.runs.status import RunStatus, Target
from orchestrator.runs.store import RunRecord, RunStore, new_run_id
from orchestrator.spend import run_cost_usd, wall_s_so_far
from trainer.checkpoint_folders import latest_checkpoint, saved_identity
from trainer.config import JobConfig, identity_changes, run_identity
from trainer.heartbeat import HEARTBEAT_FILE
from trainer.job_file import read_job_file
from trainer.jsonio import finite_or_null
from trainer.meter import METER_INTERVAL_S
from trainer.progress import PROGRESS_FILE

UNSTARTED_GRACE_S = 60.0  # a run still launching with no trainer after this was left by a launcher that died
STOP_WAIT_S = 300.0  # `orch stop` waits this long for the trainer's checkpoint (a full 8B one is tens of GB)
# (not sooner: a trainer caught in its exec shows /proc an empty command line, and is found on a later pass)


def new_record(spec: JobConfig, job_path: Path, option: Option, budget_usd: float, run_id: str | None = None,
               device: str | None = None, changes: dict | None = None) -> RunRecord:
    """A run about to launch, with its folder and its copy of the job; not yet in the store (the scheduler inserts
    it in the same transaction as its claim of the job). `changes`: job keys the launcher sets besides the plan's
    (a scheduler's CPU slot: `cpu_threads`)."""
    run_id = run_id or new_run_id()
    run_dir = state_folder("runs") / run_id
    run_dir.mkdir()
    settings = {**option.fitted_settings, **(changes or {})}
    try:
        run_job_file(job_path, run_dir, settings)
    except UserError:
        shutil.rmtree(run_dir, ignore_errors=True)  # no folder is left for a run that never was
        raise
    offer, estimate = option.offer, option.estimate
    spec = dataclasses.replace(spec, **settings)  # the record says what the run trains
    return RunRecord(
        run_id=run_id, job_name=spec.name, job_path=str(job_path.resolve()),
        job_json=job_json(spec, job_path.parent), target=Target.LOCAL if offer.is_local else Target.CLOUD,
        gpu=offer.gpu.name, provider=offer.provider, region=offer.region, spot=int(offer.spot),
        usd_per_hour=offer.usd_per_hour, budget_usd=budget_usd, est_vram_gib=estimate.vram_gib,
        est_tokens_per_s=estimate.tokens_per_s, est_hours=estimate.hours, est_cost_usd=estimate.cost_usd,
        est_basis=estimate.basis, status=RunStatus.LAUNCHING, run_dir=str(run_dir), pid=None, cluster=None,
        stop_requested=0, created_at=time.time(), started_at=None, ended_at=None, train_tokens=None,
        tokens_per_s=None, peak_vram_gib=None, wall_s=None, cost_usd=None, message=None, metrics_json=None,
        device=device)


def create_run(store: RunStore, spec: JobConfig, job_path: Path, option: Option, budget_usd: float) -> RunRecord:
    record = new_record(spec, job_path, option, budget_usd)
    try:
        store.insert(record)
    except BaseException:  # the database locked past its wait, or Ctrl-C: no folder is left for a run never recorded
        shutil.rmtree(record.run_dir, ignore_errors=True)
        raise
    return record


class AlreadyStarted(UserError):
    """Another command started the run between this one's reading and starting it: one trainer a run."""


class DeviceBusy(UserError):
    """The run's card took another run since this command read it free (`slot_capacity`): one trainer a card."""


def start(store: RunStore, record: RunRecord, option: Option | None = None, device: str | None = None,
          ended: dict | None = None, budget_usd: float | None = None, slot_capacity: int | None = None) -> RunRecord:
    """Launch (or relaunch) a recorded run. A launch the target refuses is recorded as failed, not lost; an
    interrupt leaves the run `launching` with every fact learned so far, for `orch stop` to act on. `ended`: a
    resume's record as the run had ended (_SET_BY_A_START), put back where the target refuses before anything
    started, with the refusal raised: the run keeps its end and its reason. `budget_usd`: a resume's new total,
    written with the start itself, as the run was read (written before, it let a resume past another's start).
    `slot_capacity`: a local resume starts only while its device holds fewer other active runs (DeviceBusy)."""
    launcher = launcher_for(record.target)
    before = {name: getattr(record, name) for name in STARTED_FACTS}
    # a resume plans its target again: this session is metered at the offer it launches on (prices move, and the
    # region may be another), as the VM's guard is
    offer = {"usd_per_hour": option.offer.usd_per_hour, "region": option.offer.region} if option is not None else {}
    budget = {"budget_usd": budget_usd} if budget_usd is not None else {}
    if not store.update_as_read(record, slot_capacity=slot_capacity, status=RunStatus.LAUNCHING, started_at=time.time(),
                                ended_at=None, stop_requested=0, pid=None, message=None, **offer, **budget):
        now = store.get(record.run_id)
        if slot_capacity is not None and now is not None and (now.status, now.started_at) == (record.status,
                                                                                              record.started_at):
            raise DeviceBusy(f"run {record.run_id}'s device {record.device} is busy with another run")
        raise AlreadyStarted(f"run {record.run_id} was started again meanwhile by another command (a scheduler, "
                             "another `orch resume`): `orch runs` shows it.")
    record = store.get(record.run_id)
    with launching.held(record.run_dir):  # how a recovery pass tells this live launch from a dead one's leftovers
        try:
            facts = launcher.start(record, option, device, lambda fact: store.update(record.run_id, **fact.known()))
        except UserError as exc:  # refused here, before any request reached a cloud or a trainer started: no spend
            if ended is not None:  # unless another command moved the run since this start (its record, not ours)
                store.update_as_read(record, **ended)
            else:
                _end(store, record, RunStatus.FAILED, str(exc), ended_at=record.started_at)
            raise
        except NothingLaunched as exc:  # asked, and refused before any machine: no spend, no cluster, no output place
            if ended is not None:
                store.update_as_read(record, **ended)
                raise UserError(str(exc)) from None
            # the cluster and output place its request named never were; unless a stop moved the run meanwhile
            if store.update_as_read(record, **before):
                _end(store, record, RunStatus.FAILED, str(exc), ended_at=record.started_at)
            return store.get(record.run_id)
        except UnusableDatabase:  # the record, not the launch, failed: what started may be running, so the run stays
            raise  # `launching` with the facts recorded so far, for `orch runs` and `orch stop` to act on
        except Exception as exc:  # noqa: BLE001 - credentials, quota, capacity, a missing program: recorded, reported
            who = "SkyPilot could not launch" if record.target is Target.CLOUD else "could not start the trainer"
            # charged from the launch on once SkyPilot took a request (a VM may have come up before the failure); one
            # that failed before it (no network, no API server) asked no cloud for anything, and costs nothing
            asked = store.get(record.run_id).request_id is not None or record.target is Target.LOCAL
            _end(store, record, RunStatus.FAILED, f"{who}: {one_line(exc)}",
                 ended_at=None if asked else record.started_at)
            return store.get(record.run_id)
        # running only if nothing ended the run meanwhile: `orch stop` of a launch recorded it stopped, and this set
        # it running again while its trainer trained to the end; what started is stopped too
        if not store.update_as_read(record, status=RunStatus.RUNNING, **facts.known()):
            store.update(record.run_id, **facts.known())
        started = store.get(record.run_id)
        if started.stop_requested or not started.status.is_active():
            launcher.stop(started)
    return store.get(record.run_id)


def follow(store: RunStore, record: RunRecord, out: IO[str]) -> RunRecord:
    """Stream the run's log until it ends, then record how it ended."""
    launcher_for(record.target).follow(record, out)
    return finish(store, store.get(record.run_id))


def request_stop(store: RunStore, record: RunRecord) -> str:
    """Stop an active run: the trainer checkpoints, then the run ends `stopped`. A run whose trainer never started
    (an interrupted launch, a dead scheduler) ends `stopped` at once. One whose trainer ended while nobody looked is
    recorded as it ended first, and not stopped: a crash taken for the user's stop was `stopped` (the scheduler
    cancels its job) where `orch runs` looking first made it `failed` (the scheduler retries it)."""
    launcher = launcher_for(record.target)
    if record.status == RunStatus.RUNNING and not launcher.is_running(record):
        record = finish(store, record)
    if not record.status.is_active():
        raise UserError(f"run {record.run_id} is not running (status {record.status.value}).")
    store.update(record.run_id, stop_requested=1)
    record = store.get(record.run_id)
    said = launcher.stop(record)
    if not launcher.is_running(record):
        finish(store, record)
    return said


def wait_for_end(store: RunStore, run_id: str, timeout_s: float = STOP_WAIT_S, poll_s: float = 0.5) -> RunRecord:
    """The run once its trainer has ended after a stop, recorded as it ended, or as it is after `timeout_s`: `orch
    stop` returned while the trainer still saved its checkpoint, said `running`, and an `orch resume` right after it
    was refused as "already running"."""
    deadline = time.monotonic() + timeout_s
    while True:
        record = store.get(run_id)
        if record is None or not record.status.is_active():
            return record
        if not launcher_for(record.target).is_running(record):
            return finish(store, record)
        if time.monotonic() >= deadline:
            return record
        time.sleep(poll_s)


def end_interrupted_launch(store: RunStore, record: RunRecord) -> bool:
    """End, as `stopped`, a local run whose launch was interrupted (Ctrl-C) before its trainer started; False when
    one may have started (a pid recorded, or a cloud request), for `orch stop` to act on. Left `launching`, it was
    failed a minute later as if its launcher had died, and the `orch stop` the interrupt suggested was refused."""
    record = store.get(record.run_id)
    if record is None or record.target is not Target.LOCAL or record.pid is not None or not record.status.is_active():
        return False
    if (found := launcher_for(record.target).recover(record)) is not None:  # started, the interrupt before its pid
        store.update(record.run_id, **found.known())
        return False
    _end(store, record, RunStatus.STOPPED, "interrupted while launching, before its trainer started")
    return True


def pull(record: RunRecord) -> None:
    """Bring the run's output home; a run whose folder is gone has nowhere to put it."""
    if not Path(record.run_dir).is_dir():
        raise UserError(f"run {record.run_id}'s folder {record.run_dir} is gone, so its output has nowhere to go: "
                        "`orch launch` the job again.")
    launcher_for(record.target).pull(record)


def _refused_resume(record: RunRecord) -> bool:
    """A run whose trainer refused its settings (bad_config) after it had saved a checkpoint: a resume the trainer
    refused (the run folder's job copy edited), which a fixed copy continues. The run said "nothing to resume" with
    61 steps of checkpoints in its folder. A first session refused before training has none."""
    return record.status is RunStatus.BAD_CONFIG and latest_checkpoint(record.output_dir) is not None


# what a start writes over a run's record (the launcher's facts as it learns them, its request and output place
# among them), and what a resume's new budget does: a refused resume puts them back, so the run's own end, its reason
# and the bucket holding its checkpoints are not lost to the refusal (a cloud run's launch error was)
_SET_BY_A_START = (*STARTED_FACTS, "status", "message", "started_at", "ended_at", "stop_requested", "budget_usd")
RESUME_LEAST_S = 10.0  # a trainer's start before its first step: imports, the model (about 7 s on a CPU here)


def resume(store: RunStore, record: RunRecord, budget_usd: float | None = None,
           same_target: Callable[[], Option | None] | None = None) -> RunRecord:
    """Continue an ended run from its checkpoint, with what is left of its budget (`budget_usd` raises the run's
    total budget), on the same target (`same_target`: that target planned again now, asked for once the run is
    known to resume: planned first, a damaged job copy was refused without this run's words for it, and an `ok`
    run's said before "nothing to resume")."""
    if record.status.is_active():
        # "`orch stop` first" told a second resume racing the first to stop the resume it wanted
        raise UserError(f"run {record.run_id} is already {record.status.value}: `orch logs {record.run_id} --follow` "
                        f"follows it (`orch stop {record.run_id}` stops it).")
    if not (record.status.is_resumable() or _refused_resume(record)):
        raise UserError(f"run {record.run_id} ended {record.status.value}: nothing to resume.")
    if not Path(record.run_dir).is_dir():
        raise UserError(f"run {record.run_id}'s folder {record.run_dir} is gone: nothing to resume from.")
    output = Path(record.output_dir)
    if output.is_symlink() or output.exists() and not output.is_dir():  # the trainer refused it once started
        raise UserError(f"run {record.run_id} cannot resume: its output {output} is no longer a folder: restore the "
                        "folder the run wrote.")
    if unreadable := next((folder for folder in (output, output / "checkpoints")
                           if folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK)), None):
        # the trainer failed on it, and the run was recorded failed, with the new budget
        raise UserError(f"run {record.run_id} cannot resume: {unreadable} cannot be read: make it readable.")
    job_file = Path(record.run_dir) / RUN_JOB_NAME
    try:  # the run folder's copy is what the trainer reads: a deleted or edited one would start and fail
        _, config = read_job_file(job_file)
    except UserError as exc:
        raise UserError(f"run {record.run_id} cannot resume: {exc} Restore the run folder's copy of the job, or "
                        "`orch launch` the job again.") from None
    # a job edited since its checkpoint (seq_len 256 -> 128): the trainer refused it once started and paid for
    if (latest := latest_checkpoint(output)) and (
            changes := identity_changes(saved_identity(latest), run_identity(config, job_file.parent))):
        raise UserError(f"run {record.run_id} cannot resume: its {RUN_JOB_NAME} is not the job its checkpoint "
                        f"{latest.name} trained ({'; '.join(changes)}): restore the job's settings, or `orch launch` "
                        "the edited job as a new run.")
    # planned before the least below is asked: a plan prices its target's start, longer than RESUME_LEAST_S, and a
    # user who gave the budget the least asked for was then refused for the plan's. May refuse too, before the new
    # total is written
    option = same_target() if same_target else None
    spent_usd, total_usd = record.cost_usd or 0.0, record.budget_usd if budget_usd is None else budget_usd
    # before the new total is written: a refused resume keeps the budget it had. What is left must pay for the
    # trainer's start (imports, the model, the checkpoint): less, and it stopped before a step, exit 4
    least_usd = spent_usd + usd_for(RESUME_LEAST_S, record.usd_per_hour)
    if total_usd < least_usd or spent_usd >= total_usd:
        raise UserError(f"run {record.run_id} has spent {usd_text(spent_usd)} of "
                        f"{'a' if budget_usd is not None else 'its'} {usd_text(total_usd)} budget, too little left "
                        f"to start again: `orch resume {record.run_id} --budget USD` gives it a larger total (more "
                        f"than {usd_text(least_usd)}).")
    ended = {name: getattr(record, name) for name in _SET_BY_A_START}
    # a new total (checked where the user gave it: cli/limits.check_budget) is written by the start, as read here
    return start(store, record, option, device=record.device, ended=ended, budget_usd=budget_usd)


def finish(store: RunStore, record: RunRecord) -> RunRecord:
    """Record the end of a run from its metrics.json. The spend runs from the launch to the moment the trainer
    ended (as its target saw it, else its last write), not to the moment somebody looked."""
    metrics, problem = _read_metrics(record)
    ended_at = _ended_at(record)
    if metrics is None:
        status, message = RunStatus.FAILED, problem
    else:
        status, message = RunStatus.of_trainer(metrics["status"]), metrics.get("message")
    if record.stop_requested and status in (RunStatus.PREEMPTED, RunStatus.FAILED):
        status = RunStatus.STOPPED
    idle_s = launcher_for(record.target).billed_after_s(record, ended_at, time.time())
    return _end(store, record, status, message, ended_at, metrics, idle_s,
                so_far=progress_so_far(record) if metrics is None else None)


def progress_so_far(record: RunRecord) -> dict | None:
    """What a trainer that ended without metrics.json (killed) had trained, from this session's progress.json (written
    every step): the tokens so far, the peak memory and the session's tokens/s over its timed steps (its
    `tokens_per_s` is the last step's alone, no session's figure)."""
    path = record.output_dir / PROGRESS_FILE
    if not path.is_file() or (record.started_at is not None and path.stat().st_mtime < record.started_at):
        return None
    try:
        progress = checks.parse_json(checks.read_text(path, PROGRESS_FILE), PROGRESS_FILE)
    except UserError:
        return None
    if not isinstance(progress, dict):
        return None
    return _storable({"train_tokens": progress.get("train_tokens"), "peak_vram_gib": progress.get("peak_vram_gib"),
                      "tokens_per_s": progress.get("session_tokens_per_s")})


def measured_figures(figures: dict) -> dict:
    """The columns a session's figures (its metrics, or its progress so far) fill: tokens, tokens/s, and the peak
    memory as a run records it (CUDA reserved, else the process's RSS)."""
    peak = figures.get("peak_vram_gib") or {}
    return {"train_tokens": figures.get("train_tokens"), "tokens_per_s": figures.get("tokens_per_s"),
            "peak_vram_gib": peak.get("reserved") or peak.get("process_rss") if isinstance(peak, dict) else None}


def live_figures(record: RunRecord) -> dict | None:
    """An active run's figures so far: this session's (tokens, tokens/s, peak memory; each None until measured) and
    its wall time (spend.wall_s_so_far), or None for a run that has ended."""
    if not record.status.is_active():
        return None
    so_far = progress_so_far(record)
    return {**measured_figures(so_far or {}), "wall_s": wall_s_so_far(record)}


def refresh(store: RunStore) -> list[RunRecord]:
    """Every run, with runs whose trainer has ended since anyone looked finished from their metrics, and runs left
    `launching` by a launcher that died found again (a local trainer in the process table), else failed once a
    grace period has passed without a trainer or a launch request."""
    for record in store.all():
        if not record.status.is_active():
            continue
        launcher = launcher_for(record.target)
        if record.status is RunStatus.LAUNCHING and record.pid is None:
            _recover(store, record, launcher)
        elif not launcher.is_running(record):
            finish(store, record)
    return store.all()


def _recover(store: RunStore, record: RunRecord, launcher) -> None:
    if launching.in_progress(record.run_dir):  # its launcher lives, and records what it starts itself
        return
    facts = launcher.recover(record)
    if facts is not None:
        store.update(record.run_id, status=RunStatus.RUNNING, **facts.known())
    elif _this_sessions_metrics(record):
        finish(store, record)
    elif record.request_id is None and time.time() - (record.started_at or record.created_at) > UNSTARTED_GRACE_S:
        # a local launcher died with no trainer: nothing ran after its last write. A cloud one may have left a VM
        # no request names, so its run is charged until now (within its budget: spend.cap_usd)
        ended_at = _ended_at(record) if record.target is Target.LOCAL else None
        _end(store, record, RunStatus.FAILED, "its launcher died before the trainer started", ended_at)


def trainer_end(record: RunRecord) -> RunStatus | None:
    """How the run's trainer says this session ended (its metrics.json), before or without it being recorded."""
    metrics, _ = _read_metrics(record)
    return RunStatus.of_trainer(metrics["status"]) if metrics else None


def _read_metrics(record: RunRecord) -> tuple[dict | None, str | None]:
    if not Path(record.run_dir).is_dir():
        return None, f"its run folder {record.run_dir} is gone"
    path = record.output_dir / "metrics.json"
    if path.is_file() and not _this_sessions_metrics(record):
        # an earlier session's: a resumed trainer killed before its own end wrote none, and the old one's figures
        # (status, steps, tokens/s) are not this session's
        return None, ("the trainer exited without this session's metrics.json (killed?): see `orch logs "
                      f"{record.run_id}`")
    if not path.is_file():
        log = Path(record.run_dir) / LOG_NAME
        if log.is_file() and log.stat().st_size:
            return None, f"the trainer exited without metrics.json: see `orch logs {record.run_id}`"
        return None, "the trainer exited before it wrote metrics.json or a line of log (killed as it started?)"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
        RunStatus.of_trainer(metrics["status"])
        # a hand-edited `"steps": 1e400` beside "ok" ended a run stopped at step 32 of 49 as ok, beyond any resume
        if "steps" in metrics:
            checks.number(metrics["steps"], "steps", 0, MAX_STORED_NUMBER, whole=True)
        return _storable(metrics), None  # walked here: a value nested 950 deep parses, then exhausts the stack
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, UserError,
            RecursionError) as exc:
        return None, f"its metrics.json is unreadable ({one_line(exc)})"


def _storable(metrics: dict) -> dict:
    """metrics.json as the runs store can keep it: every number that is not finite (an older trainer's NaN loss, a
    hand edit's Infinity) null, and each figure `_end` copies into a column (tokens, tokens/s, peak memory) and the
    message null unless the store reads it back as one. The store refuses a row holding anything else as damaged,
    in this and every later command, so the run's record could only have been deleted."""
    metrics = finite_or_null(metrics)
    for key, whole in (("train_tokens", True), ("tokens_per_s", False)):
        if key in metrics:
            metrics[key] = _figure(metrics[key], whole)
    if (peak := metrics.get("peak_vram_gib")) is not None:
        metrics["peak_vram_gib"] = {name: _figure(value) for name, value in peak.items()} \
            if isinstance(peak, dict) else None
    if not isinstance(metrics.get("message"), str | None):
        metrics["message"] = None
    return metrics


def _figure(value, whole: bool = False) -> float | int | None:
    """A measured figure as a column keeps it (a number from 0 to the store's largest), else None."""
    try:
        return checks.optional_number(value, "figure", 0, MAX_STORED_NUMBER, whole=whole)
    except UserError:
        return None


def _this_sessions_metrics(record: RunRecord) -> bool:
    """The run folder holds a metrics.json written since this session started (a resumed run keeps the last one's)."""
    path = record.output_dir / "metrics.json"
    return path.is_file() and (record.started_at is None or path.stat().st_mtime >= record.started_at)


def _ended_at(record: RunRecord) -> float:
    """The end of what the target charged for: when the target says the trainer's job ended (SkyPilot's clock: a
    cloud run's log here is a copy made whenever somebody followed it), else when the trainer wrote its metrics.json,
    else one meter interval past its last sign of life here (the job file it staged, for a launcher that died before
    the trainer; never before this session began, never past now), else now."""
    told = launcher_for(record.target).ended_at(record)
    if told is not None:
        return told
    # the heartbeat is touched every meter interval from the trainer's start, progress.json every step: a trainer
    # killed without a word ended within an interval of the newest. Charged to the end of that interval: charged to
    # its start, each killed session was metered up to 5 s short, and a resume handed those seconds back as budget
    written = (record.output_dir / "metrics.json", record.output_dir / PROGRESS_FILE,
               record.output_dir / HEARTBEAT_FILE, Path(record.run_dir) / LOG_NAME, Path(record.run_dir) / RUN_JOB_NAME)
    times = [p.stat().st_mtime for p in written if p.is_file()]
    if not times:
        return time.time()
    # an earlier session's files are older than this session's start, which is where its spend begins
    last = max(times + [record.started_at or 0.0])
    return last if _this_sessions_metrics(record) else min(time.time(), last + METER_INTERVAL_S)


def _run_rate(record: RunRecord, measured: dict) -> float | None:
    """The run's tokens/s over all its sessions (its tokens over the time each session's rate says they took), where
    a resumed session measured its own: a run of 44 steps at 7,865 tokens/s resumed for 5 busy steps at 261 was
    recorded at 261, and compared with its estimate as if that described the run. None: nothing to combine."""
    tokens, rate = measured["train_tokens"], measured["tokens_per_s"]
    before, before_rate = record.train_tokens, record.tokens_per_s
    if not (tokens and rate and before and before_rate) or tokens <= before:
        return None
    return tokens / (before / before_rate + (tokens - before) / rate)


def _end(store: RunStore, record: RunRecord, status: RunStatus, message: str | None, ended_at: float | None = None,
         metrics: dict | None = None, idle_s: float = 0.0, so_far: dict | None = None) -> RunRecord:
    """Record the session's end. Its cost adds to the earlier sessions' (each at its own price, with its machine's
    idle time after the trainer, `idle_s`, as that session was billed). `so_far`: the figures of a session that left
    no metrics.json (progress_so_far), recorded as measured, and not as its metrics."""
    ended_at = ended_at if ended_at is not None else time.time()
    started_at = record.started_at if record.started_at is not None else ended_at
    session_s = max(0.0, ended_at - started_at)
    wall_s = (record.wall_s or 0.0) + session_s  # a resumed run adds up its sessions
    metrics = metrics or {}
    measured = measured_figures(metrics or so_far or {})
    # a session that measured nothing (stopped or killed before a step) keeps what earlier sessions measured: the
    # run's checkpoint still holds their steps, and its cost adds up all the same
    kept = {name: getattr(record, name) if value is None else value for name, value in measured.items()}
    # the run's peak is its largest session's (a resume on the same card): one that only loaded the checkpoint and
    # saved final/ recorded its 0.55 GiB over the 0.78 GiB its training had peaked at
    if measured["peak_vram_gib"] is not None and record.peak_vram_gib is not None:
        kept["peak_vram_gib"] = max(measured["peak_vram_gib"], record.peak_vram_gib)
    if (rate := _run_rate(record, measured)) is not None:
        kept["tokens_per_s"] = rate
    metrics_json = json.dumps(metrics) if metrics and (any(v is not None for v in measured.values()) or
                                                       record.metrics_json is None) else record.metrics_json
    store.update_as_read(record, status=status, message=message, ended_at=ended_at, wall_s=wall_s,
                        cost_usd=run_cost_usd(record, session_s, idle_s), metrics_json=metrics_json, **kept)
    return store.get(record.run_id)

