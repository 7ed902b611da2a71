"""The scheduler: one pass reconciles the jobs in flight with their runs, then places queued jobs by the policy.

Nothing lives only in memory: the queue and the runs are in one SQLite file, and a job's claim, its run record and
its slot are one transaction, so a killed scheduler loses no job and two never share a slot. On the next pass (of
any scheduler), a run still training is re-attached simply by being left alone; a run left `launching` is found
again through its trainer in the process table, or fails after a grace period and its job goes back to the queue; a
local run whose trainer died is resumed from its checkpoint in the same run folder; a finished run finishes its job.
A preempted cloud run goes back to the queue with its preemption counted (after MAX_SPOT_PREEMPTIONS the policy
picks on-demand).

A run that fails is a fault a later pass may not meet (capacity, quota, a crashed trainer): its job is tried again,
up to MAX_ATTEMPTS. One that ran out of memory, over its budget, on a bad config or diverged would end so again on
the same plan: its job fails at once. A launch refused before any request (a UserError: a setting of the job or of
this machine) would be refused on every pass: its job is rejected at once with the launch's words, and what the
launch refuses up front for a spot run (no storage cloud for its checkpoints) the policy is told of, so such an offer
is not picked at all.
"""

import contextlib
import dataclasses
import itertools
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.models import get_model
from gpu_catalog.offer import Offer
from gpu_catalog.targets import gather_targets
from gpu_catalog.units import duration_text, usd_text
from orchestrator import preflight
from orchestrator.db import LockedDatabase
from orchestrator.estimator.calibration import Calibration, load_calibration
from orchestrator.launch import lifecycle
from orchestrator.launch.local import CPU_DEVICE, read_job
from orchestrator.launch.sky_storage import idle_usd_past_plan, launch_refusal_for, launch_refusals
from orchestrator.planner import LaunchRefusal, LaunchRefusals
from orchestrator.runs.status import RunStatus, Target
from orchestrator.runs.store import RunRecord, RunStore
from orchestrator.schedule.policy import Decision, JobAsk, LocalSlot, decide
from orchestrator.schedule.queue import JobQueue, JobRecord, JobStatus, unbudgeted_usd
from orchestrator.spend import month_spend_usd
from trainer.config import JobConfig, config_from_dict

MAX_ATTEMPTS = 3  # failed runs of one job before the job fails
MIN_REMAINING_H = 0.05  # a busy card whose run is over its estimate is still busy
LOOPING_DIR = "schedulers"  # beside the queue's runs.db: a file per looping scheduler, named by its owner_id


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _looping_marks(queue: JobQueue) -> Path:
    return queue.path.parent / LOOPING_DIR


def scheduler_looping(queue: JobQueue) -> bool:
    """Whether a looping scheduler (`orch scheduler run` without --once) on this machine serves the queue: its mark is
    there and its process lives. A killed one's mark stays behind with a dead pid and is not counted; one on another
    machine cannot be checked and is not counted either (a needless hint beats a missing one)."""
    host = socket.gethostname()
    for mark in _looping_marks(queue).glob("*"):
        mark_host, _, pid = mark.name.rpartition(":")
        if mark_host == host and pid.isdigit() and int(pid) > 0 and _alive(int(pid)):
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def local_slots(runs: list[RunRecord], offers: list[Offer], cpu_slots: int, now: float) -> list[LocalSlot]:
    """Each card on this machine (NVML) and `cpu_slots` CPU slots, with how long until the run on it ends."""
    busy: dict[str, list[float]] = {}
    for run in runs:
        if run.target is Target.LOCAL and run.status.is_active() and run.device:
            remaining_h = (run.started_at or now) / 3600 + (run.est_hours or 0) - now / 3600
            busy.setdefault(run.device, []).append(max(MIN_REMAINING_H, remaining_h))
    slots = []
    for offer in offers:
        if offer.gpu.kind == "cpu":
            taken = sorted(busy.get(CPU_DEVICE, []))
            for i in range(cpu_slots):
                slots.append(LocalSlot(f"{CPU_DEVICE}:{i}", offer, taken[i] if i < len(taken) else 0.0))
        elif offer.device_index is not None:  # seen by NVML on this machine
            index = str(offer.device_index)
            slots.append(LocalSlot(index, offer, max(busy.get(index, [0.0]))))
    return slots


LOST_ITS_START = ("another scheduler took its slot or spent what the monthly cap left just before it started: the "
                  "next pass decides again")


class _StartFailed(Exception):
    """A claimed job's launch that failed after the claim (lifecycle.start recorded its run failed)."""

    def __init__(self, run: RunRecord):
        super().__init__(run.message)
        self.run = run


class _LaunchRefused(Exception):
    """A launch refused before any request (`problem`), with the job as it then is (`job`: claimed or not), for the
    rejection to be written only while it still is: another pass may have claimed the unclaimed job meanwhile."""

    def __init__(self, problem: UserError, job: JobRecord):
        super().__init__(str(problem))
        self.problem, self.job = problem, job


def _ended(run: RunRecord) -> str:
    """How a job's run ended, with its message where it left one (`(None)` was printed for none)."""
    return f"run {run.run_id} ended {run.status.value}" + (f" ({run.message})" if run.message else "")


class Scheduler:
    def __init__(self, queue: JobQueue | None = None, store: RunStore | None = None, monthly_cap_usd: float | None
                 = None, cpu_slots: int = 1):
        self.queue, self.store = queue or JobQueue(), store or RunStore()
        self.monthly_cap_usd, self.cpu_slots, self.owner = monthly_cap_usd, cpu_slots, owner_id()
        self.reconciled: list[tuple[JobRecord, Decision]] = []  # the last reconcile's doings

    # -- reconcile ------------------------------------------------------------------------------------------------

    def reconcile(self) -> None:
        """The jobs in flight are read before the runs: a job another scheduler claims in between is not among them,
        while every one read was claimed with its run in one transaction, so the runs read next include it. (Read the
        other way round, such a job looked claimed without a run, went back to the queue, and started twice.) What it
        did to each job is kept in `reconciled`, for the pass to say: a run it resumed started a trainer, and spends."""
        self.reconciled = []
        in_flight = self.queue.all((JobStatus.RUNNING,))
        runs = {r.run_id: r for r in lifecycle.refresh(self.store)}
        # a failed, stopped or cancelled job's run the user resumed to its end: the job is done
        for job in self.queue.all((JobStatus.FAILED, JobStatus.CANCELLED)):
            if job.run_id and (run := runs.get(job.run_id)) and run.status is RunStatus.OK:
                self._settle(job, "done", status=JobStatus.DONE, reason=f"run {run.run_id} finished (resumed)")
        for job in in_flight:
            run = runs.get(job.run_id)
            if run is None:  # claimed before runs were recorded in the claim's transaction
                self._settle(job, "requeue", status=JobStatus.QUEUED, owner=None, run_id=None,
                             reason="its scheduler died before launching: back in the queue")
            elif run.status.is_active():
                continue  # still training: re-attached by being left alone
            elif run.status is RunStatus.OK:
                self._settle(job, "done", status=JobStatus.DONE, reason=f"run {run.run_id} finished")
            elif run.status is RunStatus.PREEMPTED and run.target is Target.CLOUD:
                self._settle(job, "requeue", status=JobStatus.QUEUED, preemptions=job.preemptions + 1, run_id=None,
                             reason=f"run {run.run_id} was preempted: back in the queue")
            elif run.status is RunStatus.STOPPED:
                self._settle(job, "cancelled", status=JobStatus.CANCELLED, reason=f"run {run.run_id} was stopped")
            elif run.status in (RunStatus.BUDGET_STOPPED, RunStatus.BAD_CONFIG, RunStatus.DIVERGED, RunStatus.OOM):
                self._settle(job, "failed", status=JobStatus.FAILED, reason=_ended(run))
            else:
                self._retry(job, run)

    def _settle(self, job: JobRecord, action: str, **changes) -> bool:
        """Record what reconciling did to a job, in the queue and in `reconciled`, while the job is still as this pass
        read it: another pass (or `orch cancel`) that moved it since has the last word. Returns whether it wrote."""
        written = self.queue.update(job.job_id, as_read=job, **changes)
        if written:
            self.reconciled.append((job, Decision(action, changes["reason"])))
        return written

    def _retry(self, job: JobRecord, run: RunRecord) -> None:
        """A failed or killed run: resume it from its checkpoint (local), else try the job again, up to a limit."""
        attempts = job.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            self._settle(job, "failed", status=JobStatus.FAILED, attempts=attempts,
                         reason=f"{_ended(run)}; {attempts} attempts")
            return
        checkpoint = run.output_dir / "checkpoints" / "latest"
        if run.target is Target.LOCAL and checkpoint.is_file() and run.status.is_resumable():
            # the attempt is counted before the trainer starts, while the job is as read: a job another pass resumed,
            # or one cancelled, since this pass read it is left alone (resumed after `orch cancel`, it spent on)
            if not self.queue.update(job.job_id, as_read=job, attempts=attempts):
                return
            job = dataclasses.replace(job, attempts=attempts)
            try:
                # its own slot at least: a --cpu-slots 0 scheduler's failed CPU run was never resumed, its job stuck
                lifecycle.start(self.store, run, device=run.device, slot_capacity=max(1, self._capacity(run.device)))
            except lifecycle.AlreadyStarted:  # `orch resume` started it meanwhile
                return
            except lifecycle.DeviceBusy:  # another scheduler's claim took the card since: resumed on a later pass
                self.queue.update(job.job_id, as_read=job, attempts=attempts - 1)
                return
            except UserError as exc:  # refused before it started (recorded so): this job, not every pass, fails
                self._settle(job, "failed", status=JobStatus.FAILED, reason=f"run {run.run_id} could not resume: {exc}")
                return
            if not self._settle(job, "resume", reason=f"run {run.run_id} resumed from its checkpoint"):
                # `orch cancel` came between the attempt's count and the start, and found no trainer to stop
                with contextlib.suppress(UserError):
                    lifecycle.request_stop(self.store, self.store.get(run.run_id) or run)
            return
        self._settle(job, "requeue", status=JobStatus.QUEUED, attempts=attempts, run_id=None,
                     reason=f"{_ended(run)}: trying again")

    # -- place ----------------------------------------------------------------------------------------------------

    def run_once(self) -> list[tuple[JobRecord, Decision]]:
        """Reconcile, then decide for every queued job; returns what was decided."""
        self.reconcile()
        now = time.time()
        offers = gather_targets().offers
        clouds = [o for o in offers if not o.is_local]  # the clouds, and owned cards in SSH node pools
        slots = local_slots(self.store.all(), [o for o in offers if o.is_local], self.cpu_slots, now)
        # the CPU as a free slot where this scheduler gives it none: a job only it takes waits for a scheduler that
        # does, as one waits for a busy card (it was rejected, and stayed so after every later pass)
        withheld = [] if self.cpu_slots else local_slots([], [o for o in offers if o.is_local and o.gpu.kind == "cpu"],
                                                         1, now)
        spend_left = float("inf") if self.monthly_cap_usd is None else \
            self.monthly_cap_usd - month_spend_usd(self.store.all(), now)
        calibration, spot = load_calibration(), launch_refusals()  # asked once a pass, for every job's plan

        def refusals(budget_usd: float, cost_usd_of: dict[Offer, float]) -> LaunchRefusal:
            # a cloud run's budget stop is at most what the monthly cap leaves (_start): an offer whose launch that
            # would not cover (its output idling on the VM) is passed over, not started and refused for good
            return launch_refusal_for(min(budget_usd, spend_left), cost_usd_of, spot)

        spent_by_job_file = self._spent_by_job_file()
        decided = []
        for job in self.queue.all((JobStatus.QUEUED,)):
            try:
                spec = config_from_dict(job.as_dict()["job"])
                read_job(Path(job.job_path))  # the queued copy the run will train is still a whole job
            except UserError as exc:  # this job cannot run; the others still can
                decision = Decision("reject", f"{exc} Submit the job again.")
            else:
                budget_left = None if job.budget_usd is None else \
                    job.budget_usd - spent_by_job_file.get(Path(job.job_path).resolve(), 0.0)
                decision = self._decide(job, self._on_cpu_slot(spec), now, slots, clouds, calibration, spend_left,
                                        refusals, budget_left, withheld)
            rejected = {"status": JobStatus.REJECTED} if decision.action == "reject" else {}
            if not self.queue.update(job.job_id, as_read=job, decision=decision.action, reason=decision.reason,
                                     **rejected):
                continue  # another pass claimed it, or `orch cancel` ended it, since this one read it
            if decision.action in ("start_local", "start_cloud"):
                try:
                    started = self._start(job, spec, decision, spend_left, budget_left)
                except _LaunchRefused as refused:  # before any request: every later pass would be refused the same
                    decision, started = Decision("reject", f"the launch refused it: {refused.problem}"), None
                    self.queue.update(job.job_id, as_read=refused.job, status=JobStatus.REJECTED,
                                      decision=decision.action, reason=decision.reason)
                except _StartFailed as failed:  # its run is recorded failed: the next pass retries it (_retry)
                    attempts = job.attempts + 1
                    after = "the next pass tries again" if attempts < MAX_ATTEMPTS else \
                        f"that was its last of {MAX_ATTEMPTS} attempts: the next pass records the job failed"
                    decided.append((job, dataclasses.replace(
                        decision, reason=f"{decision.reason}; its start failed ({failed.run.message}): {after}")))
                    continue
                if started is None and decision.action != "reject":  # another scheduler's pass claimed it first
                    # (its start to report, not this pass's), or took its slot or the cap meanwhile: a job still
                    # queued said `start_cloud` until the next pass
                    self.queue.update(job.job_id, as_read=job, decision="wait", reason=LOST_ITS_START)
                    continue
                if decision.slot is not None:
                    slots = [LocalSlot(s.slot_id, s.offer, decision.option.estimate.hours)
                             if s.slot_id == decision.slot.slot_id else s for s in slots]
                elif started is not None:  # a cloud run may spend up to its budget stop: the cap keeps that much
                    spend_left -= started
            decided.append((job, decision))
        return decided

    def _spent_by_job_file(self) -> dict[Path, float]:
        """What the runs made from each job file spent, by the file resolved: a queued job's runs are made from its
        copy, and share its budget (a failed run tried again, a preempted one started anew each got the whole budget
        again: a job's three attempts could spend three times it). Read once a pass, not once a job."""
        spent: dict[Path, float] = {}
        for run in self.store.all():
            key = Path(run.job_path).resolve()
            spent[key] = spent.get(key, 0.0) + (run.cost_usd or 0.0)
        return spent

    def _decide(self, job: JobRecord, spec, now: float, slots: list[LocalSlot], clouds: list[Offer],
                calibration: Calibration, spend_left_usd: float, refusals: LaunchRefusals,
                budget_left_usd: float | None, withheld: list[LocalSlot]) -> Decision:
        """Where a whole queued job goes now, within what is left of its budget. A job that only a `withheld` slot
        would take waits for it. A deadline already passed leaves the policy's last rule, late on a local card rather
        than never (the first pass said a job would run late on the busy CPU, and the next rejected it as its
        deadline passed); with no local card for it, it is rejected saying so (the planner takes only a deadline
        still ahead, and refused it in the words of a --deadline flag the user never gave here)."""
        if budget_left_usd is not None and budget_left_usd <= 0:
            return Decision("reject", f"its earlier runs spent its whole {usd_text(job.budget_usd)} budget: submit it "
                                      "again with a larger --budget.")
        if job.deadline_at is not None and job.deadline_at <= now:
            decision = self._decide_for(job, spec, None, slots, [], calibration, spend_left_usd, refusals,
                                        budget_left_usd, withheld)
            passed = f"its deadline passed {duration_text(now - job.deadline_at)}"
            if decision.action == "reject":
                return Decision("reject", f"{passed} before a target was chosen: submit it again with a later "
                                          "--deadline.")
            return dataclasses.replace(decision, reason=f"{passed} ago, and late on a local card is better than "
                                                        f"never: {decision.reason}")
        deadline_h = (job.deadline_at - now) / 3600 if job.deadline_at is not None else None
        return self._decide_for(job, spec, deadline_h, slots, clouds, calibration, spend_left_usd, refusals,
                                budget_left_usd, withheld)

    def _decide_for(self, job: JobRecord, spec, deadline_h: float | None, slots: list[LocalSlot], clouds: list[Offer],
                    calibration: Calibration, spend_left_usd: float, refusals: LaunchRefusals,
                    budget_left_usd: float | None, withheld: list[LocalSlot]) -> Decision:
        ask = JobAsk(job.job_id, spec, budget_left_usd if budget_left_usd is not None else float("inf"), deadline_h,
                     job.preemptions)
        try:
            model = get_model(spec.model)
            decision = decide(ask, model, slots, clouds, calibration, spend_left_usd, refusals=refusals)
            if decision.action == "reject" and withheld:
                held = decide(ask, model, slots + withheld, clouds, calibration, spend_left_usd, refusals=refusals)
                if held.slot is not None and held.slot.slot_id in {slot.slot_id for slot in withheld}:
                    return Decision("wait", f"only the local CPU takes it ({held.reason}), and this scheduler gives "
                                            "the CPU no slot (--cpu-slots 0): a scheduler with --cpu-slots 1 starts it")
            if decision.action in ("start_local", "start_cloud"):  # what `orch launch` checks before it starts: a
                # dataset broken since the job was queued started a trainer that refused it, on a metered card
                preflight.check(spec, Path(job.job_path), decision.option)
        except UserError as exc:
            decision = Decision("reject", str(exc))
        if decision.action == "reject" and budget_left_usd is not None and budget_left_usd < job.budget_usd:
            # "over the $0.000091 budget ... raise --budget to at least 0.00012" of a job whose budget was $0.00012
            spent_usd = job.budget_usd - budget_left_usd
            decision = Decision("reject", f"its earlier runs spent {usd_text(spent_usd)} of its "
                                          f"{usd_text(job.budget_usd)} budget, and what is left is judged (add "
                                          f"{usd_text(spent_usd)} to any budget below): {decision.reason}")
        return decision

    def _start(self, job: JobRecord, spec, decision: Decision, spend_left_usd: float,
               budget_left_usd: float | None) -> float | None:
        """Claim the job, record its run and take its slot in one transaction (exactly one scheduler wins, and a slot
        holds no more runs than it can), then start it; returns the run's budget stop. A job without its own budget
        gets unbudgeted_usd of its estimate as its budget stop, and a cloud run no more than the monthly
        cap leaves (`spend_left_usd`: a $50 budget started under a $6 cap could spend $44 past it). None: another
        scheduler got the job or the slot first, or spent what the cap left. A launch the target refuses before any
        request (a UserError, recorded failed by the launch) is raised to the caller as _LaunchRefused, with the job
        as it then is, which rejects it; a scheduler killed before that leaves a failed run the next pass retries."""
        # a job without a budget: its stop from the plan's cost, with the idle hour a VM that keeps the output pays
        # where no storage cloud is enabled here (the launch refused a stop that left it out, and the job for good)
        if budget_left_usd is not None:
            budget = budget_left_usd
        else:
            offer = decision.option.offer
            idle_usd = idle_usd_past_plan(offer) if decision.slot is None else 0.0
            budget = unbudgeted_usd(decision.option.estimate.cost_usd + idle_usd, offer.usd_per_hour)
        if decision.slot is None:
            budget = min(budget, spend_left_usd)
        slot = decision.slot
        device = None if slot is None else slot.slot_id.split(":")[0]
        # on the CPU, its share of the cores goes in the run's job file: a resume trains on the same share
        changes = {"cpu_threads": threads} if device == CPU_DEVICE and (threads := self._slot_threads(spec)) else {}
        try:
            record = lifecycle.new_record(spec, Path(job.job_path), decision.option, budget, device=device,
                                          changes=changes)
        except UserError as exc:
            raise _LaunchRefused(exc, job) from None
        if not self.queue.claim(job.job_id, self.owner, record, self._capacity(device), self.monthly_cap_usd):
            shutil.rmtree(record.run_dir, ignore_errors=True)
            return None  # another scheduler started it, took the slot, or spent what the cap left
        try:
            started = lifecycle.start(self.store, record, decision.option, device)
        except UserError as exc:  # claimed: the job is running this run, as a rejection must find it
            raise _LaunchRefused(exc, dataclasses.replace(job, status=JobStatus.RUNNING, run_id=record.run_id)) \
                from None
        if started.status is RunStatus.FAILED:  # a launch that failed (no network, no capacity): its pass said
            # `start_cloud` alone, and only the next one told of the failure, as it tried again
            raise _StartFailed(started)
        return budget

    def _capacity(self, device: str | None) -> int:
        """How many runs one of this scheduler's local devices holds at once: the CPU its slots, a card one."""
        return self.cpu_slots if device == CPU_DEVICE else 1

    def _slot_threads(self, spec: JobConfig) -> int | None:
        """The cores a job trains on in one of the CPU's slots (`cpu_threads`), so it is planned, priced and run on
        that share: each of two slots' jobs ran on every core, at half the speed its estimate said, and each was
        priced at the whole CPU. None: one slot, or the job gives its own."""
        if self.cpu_slots <= 1 or spec.cpu_threads is not None:
            return None
        return max(1, (os.cpu_count() or 1) // self.cpu_slots)

    def _on_cpu_slot(self, spec: JobConfig) -> JobConfig:
        threads = self._slot_threads(spec)
        return spec if threads is None else dataclasses.replace(spec, cpu_threads=threads)

    def run_forever(self, interval_s: float, on_pass: Callable[[list[tuple[JobRecord, Decision]]], None] | None
                    = None) -> None:
        """Passes until stopped, with a mark beside the queue while it loops: `orch submit` and `orch queue` tell
        from it whether a pass will come without the user starting one. A pass that meets runs.db locked by another
        process past the busy timeout is said in one line and left to the next: every step of a pass is a transaction
        (a job's claim, its run and its slot one of them), so a pass cut short loses no job and starts none twice,
        as a killed scheduler's; a transient lock stopped all scheduling. Any other problem of the store (a row
        damaged by hand) ends the first pass, to be fixed before the loop starts, and is said once a later pass
        meets it: one bad row stopped every other job's scheduling and the recording of their ends. `on_pass` is
        given what each pass did (its reconciling, then its placing), as `--once` prints it."""
        mark = _looping_marks(self.queue) / self.owner
        try:
            mark.parent.mkdir(exist_ok=True)
            mark.touch()
        except OSError as exc:  # `schedulers` a file: Python's bare "File exists"
            what = "is not a folder" if mark.parent.exists() and not mark.parent.is_dir() else \
                f"cannot be written ({exc.strerror or exc})"
            raise UserError(f"{mark.parent} {what}: a looping scheduler keeps a mark there. Move it away, or set "
                            "ORCH_HOME to another folder.") from None
        said_last = None
        try:
            for pass_number in itertools.count():
                try:
                    decided = self.run_once()
                    said_last = None
                    if on_pass is not None:
                        on_pass(self.reconciled + decided)
                except LockedDatabase:
                    print(f"database locked by another process ({checks.printable(str(self.queue.path))}); "
                          "retrying next pass", file=sys.stderr, flush=True)
                except UserError as problem:
                    if pass_number == 0:
                        raise
                    if str(problem) != said_last:
                        print(f"error: {checks.one_line(str(problem))} Every pass tries again until then.",
                              file=sys.stderr, flush=True)
                    said_last = str(problem)
                time.sleep(interval_s)
        finally:
            mark.unlink(missing_ok=True)
