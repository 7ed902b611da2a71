"""`orch submit`, `orch queue`, `orch cancel`, `orch scheduler run`: the job queue over owned GPUs and the cloud."""

import os
import shutil
import signal
import time
from typing import Annotated

import typer

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.targets import gather_targets
from gpu_catalog.units import MAX_PRIORITY, given_duration_text
from orchestrator import preflight
from orchestrator.cli import display
from orchestrator.cli.errors import OneLineUsageErrors, only_match, user_errors
from orchestrator.cli.limits import check_budget, check_deadline
from orchestrator.cli.options import JobArgument, JsonFlag, hours_option, seconds_option, usd_option, whole_option
from orchestrator.cli.runs import refreshed_runs
from orchestrator.estimator.calibration import load_calibration
from orchestrator.estimator.settings import job_model
from orchestrator.home import state_folder
from orchestrator.job import load_job
from orchestrator.launch import lifecycle, local
from orchestrator.runs.status import RunStatus
from orchestrator.runs.store import RunStore
from orchestrator.schedule.policy import never_placed
from orchestrator.schedule.queue import OPEN_STATUSES, UNBUDGETED_RULE, JobQueue, JobStatus, new_job_id
from orchestrator.schedule.scheduler import Scheduler, scheduler_looping

MAX_INTERVAL_S = 24 * 3600.0
DEFAULT_INTERVAL_S = 30.0  # a pass every half minute: a queued job waits little, and SQLite is barely read
MIN_INTERVAL_S = 0.1  # a pass reads runs.db and the queue: 0.0001 s made a busy loop against SQLite
MAX_CPU_SLOTS = 1024
# The shortest deadline a queued job may have: a scheduler pass, a start and a first step take longer, so a shorter one
# (`--deadline 0.0003`: about a second) has passed before any target is chosen
MIN_SUBMIT_DEADLINE_H = 1 / 60
scheduler_app = typer.Typer(help="The scheduler that places queued jobs.", no_args_is_help=True,
                            cls=OneLineUsageErrors)


@user_errors
def submit_command(
    job: JobArgument,
    budget: Annotated[float | None, usd_option(
        help=f"Most this job may spend, in US dollars (default: {UNBUDGETED_RULE}, on the target it starts on; "
             "`orch queue` shows the budget its run got).")] = None,
    deadline: Annotated[float | None, hours_option(
        help="Time from now until the job must be done, at least a minute.")] = None,
    priority: Annotated[int, whole_option(help="Higher runs first.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Queue a job; `orch scheduler run` places it on a local GPU or in the cloud."""
    check_budget(budget)
    check_deadline(deadline)
    if deadline is not None and deadline < MIN_SUBMIT_DEADLINE_H:
        raise UserError(f"--deadline {given_duration_text(deadline * 3600)} is under a minute, too soon for any job to "
                        f"be placed and started: give at least {given_duration_text(MIN_SUBMIT_DEADLINE_H * 3600)}.")
    checks.number(priority, "--priority", -MAX_PRIORITY, MAX_PRIORITY, whole=True)
    queue = JobQueue()  # a damaged or unusable database is said before the job is read and sized
    preflight.check_cache_first(job, "queued")
    spec = load_job(job)
    model = job_model(spec)  # an unknown model, or settings it cannot take, fail now and not at the scheduler
    spec.resolved_train_tokens()
    preflight.check_queued(spec, job)  # what `orch launch` refuses on any target: its trainer would exit 2
    if why := never_placed(spec, model, list(gather_targets().offers), budget, load_calibration()):
        raise UserError(f"{why} Nothing was queued.")
    same_job = local.job_json(spec, job.parent)
    twin = next((queued for queued in queue.all(OPEN_STATUSES) if queued.job_json == same_job), None)
    job_id = new_job_id()
    folder = state_folder("jobs") / job_id
    folder.mkdir()
    try:  # the job as submitted, kept before the row is: a refused copy leaves no job queued on the user's file
        job_path = local.run_job_file(job, folder)
        record = queue.submit(spec.name, job_path.name, same_job, budget, deadline, priority, job_id)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if cloud_only := preflight.cloud_only_problems(spec, job):
        display.say(f"note: every cloud would refuse this job now ({'; '.join(cloud_only)}): until that is fixed "
                    "where `orch scheduler run` runs, a scheduler places it on this machine if it fits here, and "
                    "rejects it otherwise.", err=True)
    if twin is not None:  # a script run twice queued the job twice, and it was paid for twice
        # a job stays `running` until a scheduler pass records its run's end: "running" was said of one done. As
        # recorded: refreshing every run (a cloud one asks SkyPilot, and may pull its output) held up a queued job
        run = RunStore().get(twin.run_id) if twin.run_id else None
        state = twin.status.value if run is None or run.status.is_active() else f"its run ended {run.status.value}"
        display.say(f"note: {twin.job_id} is the same job, {state}: `orch cancel {record.job_id}` if this one was a "
                    "mistake.", err=True)
    if as_json:
        display.print_json(record.as_dict())
    elif scheduler_looping(queue):
        display.say(f"queued {record.job_id}")
    else:  # nothing would place it: say what does
        display.say(f"queued {record.job_id}; no scheduler is running: `orch scheduler run` places it "
                    "(`--once`: one pass)")


@user_errors
def queue_command(
    as_json: JsonFlag = False,
    explain: Annotated[bool, typer.Option("--explain", help="Show why each job is where it is.")] = False,
) -> None:
    """Every job: status, decision, and with --explain the reason for it."""
    # Only a scheduler pass writes a job's status (it alone decides what an ended run means: done, a retry, a
    # resume), so a job stays `running` after its run ends until a pass records it. The run's own status is shown
    # beside it; with no scheduler running, a line under the table names such jobs, and one says queued jobs wait
    # for a pass. (A docstring's later lines reach --help with their line breaks.)
    queue = JobQueue()
    jobs = queue.all()
    runs = {r.run_id: r for r in refreshed_runs()} if any(j.run_id for j in jobs) else {}
    if as_json:  # run_budget_usd: the budget stop the run got, the job's own or the default; null before a run
        display.print_json([{**j.as_dict(), "run_status": runs[j.run_id].status.value if j.run_id in runs else None,
                             "run_budget_usd": runs[j.run_id].budget_usd if j.run_id in runs else None}
                            for j in jobs])
        return
    if not jobs:  # an empty table's header said nothing, where `orch runs` says how to start one
        display.say(f"No jobs queued in {checks.printable(str(queue.path.parent))}: `orch submit JOB.yaml` queues one.")
        return
    display.show_queue(jobs, explain, runs)
    ended = [j.job_id for j in jobs if j.status is JobStatus.RUNNING and j.run_id in runs
             and not runs[j.run_id].status.is_active()]
    waiting = [j.job_id for j in jobs if j.status is JobStatus.QUEUED]
    if not (ended or waiting) or scheduler_looping(queue):
        return
    if ended:
        display.say(f"{', '.join(ended)}: {'its run has' if len(ended) == 1 else 'their runs have'} ended; no "
                    f"scheduler is running: `orch scheduler run --once` records {'its' if len(ended) == 1 else 'their'}"
                    " outcome")
    if waiting:  # queued with nothing to place them: a queue that is not being served says so
        display.say(f"{len(waiting)} queued; no scheduler is running: `orch scheduler run` places "
                    f"{'it' if len(waiting) == 1 else 'them'} (`--once`: one pass)")


@user_errors
def cancel_command(job_id: Annotated[str, typer.Argument(help="Job id, or a unique prefix of one.")],
                   as_json: JsonFlag = False) -> None:
    """Cancel a queued job, or stop a running one (it checkpoints first)."""
    queue = JobQueue()
    matches = queue.find(job_id)
    if not matches and job_id.startswith("r-") and len(runs := RunStore().find(job_id)) == 1:
        # "no job matching 'r-...'" left the user to find that cancel takes jobs, and what stops a run
        run = next((r for r in refreshed_runs() if r.run_id == runs[0].run_id), runs[0])  # as it is now
        stops = f"`orch stop {job_id}` stops it (with a checkpoint)" if run.status.is_active() else \
            f"it ended {run.status.value}, nothing to stop"
        raise UserError(f"{job_id} is a run, not a job of the queue: {stops} (`orch queue` lists jobs).")
    job = only_match(matches, "job", job_id, "orch queue")
    if job.status is JobStatus.RUNNING and job.run_id:  # its run may have ended since a pass looked
        run = next((r for r in refreshed_runs() if r.run_id == job.run_id), None)
        if run is not None and run.status is RunStatus.OK:  # cancelled, then called done "(resumed)" by the next pass
            queue.update(job.job_id, status=JobStatus.DONE, reason=f"run {run.run_id} finished")
            raise UserError(f"job {job.job_id}'s run {run.run_id} already finished ok: the job is done, nothing to "
                            "cancel.")
    cancelled = queue.cancel(job.job_id, "cancelled by the user") if job.status.is_open() else None
    if cancelled is None:  # closed before, or by a scheduler's pass since it was read
        raise UserError(f"job {job.job_id} is already {(queue.get(job.job_id) or job).status.value}.")
    job = cancelled
    store = RunStore()
    run = store.get(job.run_id) if job.run_id else None
    said, stop = None, None
    if run is not None and run.status.is_active():
        try:
            said, stop = lifecycle.request_stop(store, run), "requested"
        except UserError as ended:  # its trainer had ended unseen: recorded as it ended, the job cancelled all the same
            still_active = (store.get(run.run_id) or run).status.is_active()  # a stop that failed: still running
            said, stop = str(ended), "refused" if still_active else "already_ended"
    elif run is not None and job.run_id:  # found ended as the cancel looked: said, as a stop would say it
        said, stop = f"run {run.run_id} is not running (status {run.status.value}).", "already_ended"
    if as_json:  # the job as cancelled, and its run's stop: asked, or none needed (null where it had no run)
        now = store.get(run.run_id) if run is not None else None
        display.print_json({"job": job.as_dict(), "run_stop": None if now is None else {
            "run_id": now.run_id, "stop": stop, "run_status": now.status.value}})
        return
    if said:
        display.say(said)
    display.say(f"cancelled {job.job_id}")


@scheduler_app.command("run")
@user_errors
def scheduler_run_command(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[float | None, seconds_option(help="Time between passes, 30 s unless given.")] = None,
    monthly_cap: Annotated[float | None, usd_option(help="Most the cloud runs may spend this calendar month, in US "
                                                         "dollars: a cloud run's budget stop is kept within what it "
                                                         "leaves (owned cards are used whatever it says).",
                                                    zero_allowed=True)] = None,
    cpu_slots: Annotated[int, whole_option(help="Jobs the CPU may run at once (tiny jobs; at most its cores): "
                                                 "each trains on its share of the cores, and is priced at it; 0 "
                                                 "keeps every job off the CPU.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="With --once: print the pass as JSON: what it did to jobs "
                                                         "in flight (done, resume, requeue, failed, cancelled), then "
                                                         "each queued job's decision.")] = False,
) -> None:
    """Place queued jobs: owned GPUs first, the cloud when they cannot wait. Safe to run several at once."""
    if as_json and not once:  # a loop has no one document to print
        raise UserError("--json prints one pass's decisions: give --once with it, or leave --json out.")
    if interval is not None:
        checks.number(interval, "--interval (seconds)", MIN_INTERVAL_S, MAX_INTERVAL_S)
        if once:  # one pass has no time between passes: the flag was silently unused
            raise UserError("--interval sets the time between passes, and --once makes one: give one of them.")
    check_budget(monthly_cap, "--monthly-cap", zero_allowed=True)
    checks.number(cpu_slots, "--cpu-slots", 0, MAX_CPU_SLOTS, whole=True)
    if cpu_slots > (cores := os.cpu_count() or 1):  # four slots on two cores each ran on one, priced at half the CPU
        raise UserError(f"--cpu-slots {cpu_slots} is more than this machine's {cores} CPU cores, and each slot trains "
                        f"on a core at least: give at most {cores}.")
    scheduler = Scheduler(monthly_cap_usd=monthly_cap, cpu_slots=cpu_slots)
    if once:  # what the pass did to jobs in flight (a run resumed, a job done or back in the queue), then placed
        decided = scheduler.run_once()
        decided = scheduler.reconciled + decided
        if as_json:
            after = {job.job_id: scheduler.queue.get(job.job_id) for job, _ in decided}  # its status and run now
            display.print_json([{"job_id": job.job_id, "action": decision.action, "reason": decision.reason,
                                 "status": after[job.job_id].status.value, "run_id": after[job.job_id].run_id}
                                for job, decision in decided])
            return
        for job, decision in decided:
            display.say(f"{job.job_id}: {decision.action}: {decision.reason}")
        if not decided:
            display.say("no queued jobs: `orch submit JOB.yaml` queues one")
        return
    interval = DEFAULT_INTERVAL_S if interval is None else interval
    display.say(f"scheduler {scheduler.owner}: a pass every {interval:g} s (Ctrl-C stops it; jobs go on)")
    said: dict[str, tuple[str, str]] = {}  # each job's last line: a job that waits is said once, not every pass

    def say_changes(decided) -> None:
        """What a pass did, as `--once` says it, each line under the time of its pass; what the job's last line
        already said is left out, and a wait once, whatever its hours left (the loop said nothing at all: starts,
        ends and rejections went unseen)."""
        for job, decision in decided:
            news = (decision.action, "" if decision.action == "wait" else decision.reason)
            if said.get(job.job_id) != news:
                said[job.job_id] = news
                display.say(f"{time.strftime('%H:%M:%S')} {job.job_id}: {decision.action}: {decision.reason}")
    # SIGTERM (`kill`, a service manager's stop) as Ctrl-C: the loop's mark goes with it. Its default action ended
    # the process there and then, and the mark of a dead pid stayed for a later process with that pid to revive
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        scheduler.run_forever(interval, on_pass=say_changes)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
