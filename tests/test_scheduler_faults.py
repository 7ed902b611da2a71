"""Exactly once, for real: a scheduler killed at each step of a start leaves a job that ends exactly once, with its
result, and two schedulers never put two jobs on one slot. The kill is an exception raised at that step, in
process, with the launcher's memory of its children wiped as a dead scheduler's would be."""

import dataclasses
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpu_catalog.errors import UserError
from orchestrator.cli.main import app
from orchestrator.launch import lifecycle
from orchestrator.launch.registry import launcher_for
from orchestrator.runs.status import RunStatus
from orchestrator.runs.store import RunStore
from orchestrator.schedule.queue import JobQueue, JobStatus
from orchestrator.schedule.scheduler import Scheduler
from tests.trainer_helpers import write_job

runner = CliRunner()


class SchedulerKilled(BaseException):
    """Not an Exception: nothing in orch may catch it, as nothing catches a SIGKILL."""


def submit(tmp_path, name, **changes) -> str:
    folder = tmp_path / name
    folder.mkdir()
    result = runner.invoke(app, ["submit", str(write_job(folder, name=name, **changes)), "--budget", "1", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["job_id"]


def run_until_done(job_ids, timeout_s=300, cpu_slots=1) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        Scheduler(cpu_slots=cpu_slots).run_once()
        if all(JobQueue().get(j).status is JobStatus.DONE for j in job_ids):
            return
        time.sleep(0.3)
    raise AssertionError({j: JobQueue().get(j).reason for j in job_ids})


def kill_after_claim(monkeypatch):
    monkeypatch.setattr(lifecycle, "start", lambda *a, **k: (_ for _ in ()).throw(SchedulerKilled()))


def kill_after_spawn(monkeypatch):
    real_update = RunStore.update_as_read

    def update_as_read(self, record, **values):
        if values.get("status") is RunStatus.RUNNING:
            raise SchedulerKilled  # the trainer runs; its pid was never recorded
        return real_update(self, record, **values)

    monkeypatch.setattr(RunStore, "update_as_read", update_as_read)


def kill_after_running(monkeypatch):
    real_start = lifecycle.start

    def start(*args, **kwargs):
        real_start(*args, **kwargs)
        raise SchedulerKilled

    monkeypatch.setattr(lifecycle, "start", start)


@pytest.mark.parametrize("kill", [kill_after_claim, kill_after_spawn, kill_after_running])
def test_a_scheduler_killed_at_each_step_of_a_start_loses_and_doubles_nothing(tmp_path, monkeypatch, kill):
    # short, but not 0: Popen returns once the child's exec has closed its close-on-exec pipe, a moment before the
    # kernel has set up its arguments, and /proc/PID/cmdline read then is empty (103 of 200 reads on a 2-core CPU),
    # so a recovery pass at once found no trainer, failed the run, and started the job a second time (the grace period
    # is there for this; 60 s in use)
    monkeypatch.setattr(lifecycle, "UNSTARTED_GRACE_S", 2.0)
    job_id = submit(tmp_path, "once", max_steps=3)
    with monkeypatch.context() as patch:
        kill(patch)
        with pytest.raises(SchedulerKilled):
            Scheduler().run_once()
    launcher_for.cache_clear()  # the dead scheduler's handles on its children die with it
    run_until_done([job_id])
    runs = RunStore().all()
    trained = [r for r in runs if r.status is RunStatus.OK]
    assert len(trained) == 1 and trained[0].run_id == JobQueue().get(job_id).run_id
    assert all(r.status is RunStatus.FAILED for r in runs if r is not trained[0])  # never started, never twice
    if kill is not kill_after_claim:
        # the trainer that was started is the one that finished; each run's end said where it is not (a rare failure
        # in a full CI run left no more than a count)
        assert len(runs) == 1, [(r.run_id, r.status.value, r.message) for r in runs]


def test_two_schedulers_never_put_two_jobs_on_one_cpu_slot(tmp_path):
    ids = [submit(tmp_path, f"slot{i}", max_steps=3) for i in range(2)]
    first, second = Scheduler(cpu_slots=1), Scheduler(cpu_slots=1)
    first.run_once()
    second.run_once()  # sees the first's run only through the database
    active = [r for r in RunStore().all() if r.status.is_active()]
    assert len(active) == 1
    run_until_done(ids)
    spans = sorted((r.started_at, r.ended_at) for r in RunStore().all() if r.status is RunStatus.OK)
    assert len(spans) == 2
    assert spans[0][1] <= spans[1][0] + 0.5  # the second started once the first had ended


def test_a_claim_fails_when_the_slot_filled_since_the_decision(tmp_path):
    """The race itself: both schedulers decided the CPU was free; the second claim finds it taken, in the same
    transaction that would have recorded its run, and leaves its job queued."""
    from tests.test_runs_store import make_record

    first, second = submit(tmp_path, "a", max_steps=3), submit(tmp_path, "b", max_steps=3)
    queue = JobQueue()
    assert queue.claim(first, "one", make_record(tmp_path / "ra", run_id="r-aaaaaaaa", device="cpu",
                                                 status=RunStatus.LAUNCHING))
    assert not queue.claim(second, "two", make_record(tmp_path / "rb", run_id="r-bbbbbbbb", device="cpu",
                                                      status=RunStatus.LAUNCHING))
    assert queue.get(second).status is JobStatus.QUEUED and RunStore().get("r-bbbbbbbb") is None


def cloud_run(tmp_path, run_id: str, status: RunStatus, **changes):
    from orchestrator.runs.status import Target
    from tests.test_runs_store import make_record

    return make_record(tmp_path / "runs" / run_id, run_id=run_id, target=Target.CLOUD, status=status,
                       message="no capacity", **changes)


def test_a_claim_fails_when_the_month_cloud_spend_grew_since_the_decision(tmp_path):
    """Two schedulers that each saw $0 spent under a $10 cap each started a $6 cloud run: the claim counts the
    month's cloud spend (running runs at their budget stops) in its own transaction."""
    queue = JobQueue()
    first, second, third = (queue.submit(n, "job.yaml", "{}", None, None, 0).job_id for n in "abc")
    for job_id, run_id, budget_usd, claimed in ((first, "r-aaaaaaaa", 6.0, True), (second, "r-bbbbbbbb", 6.0, False),
                                                (third, "r-cccccccc", 4.0, True)):
        run = cloud_run(tmp_path, run_id, RunStatus.LAUNCHING, budget_usd=budget_usd)
        assert queue.claim(job_id, "a scheduler", run, monthly_cap_usd=10.0) is claimed
    assert queue.get(second).status is JobStatus.QUEUED and RunStore().get("r-bbbbbbbb") is None


def test_a_pass_that_read_a_job_before_another_pass_moved_it_leaves_it_alone(tmp_path, monkeypatch):
    """Pass B read a job whose run had failed, then spent seconds refreshing the runs; meanwhile pass A put the job
    back in the queue and started a new run. B's "back in the queue" undid A's claim, and the next pass started the
    job a second time beside A's run."""
    queue = JobQueue()
    job = queue.submit("j", "job.yaml", "{}", 5.0, None, 0)
    assert queue.claim(job.job_id, "A", cloud_run(tmp_path, "r-aaaaaaaa", RunStatus.FAILED))
    a, b = Scheduler(queue), Scheduler(queue)
    refresh = lifecycle.refresh

    def a_pass_meanwhile(store):
        monkeypatch.setattr(lifecycle, "refresh", refresh)
        a.reconcile()
        assert queue.get(job.job_id).status is JobStatus.QUEUED
        assert queue.claim(job.job_id, "A", cloud_run(tmp_path, "r-bbbbbbbb", RunStatus.LAUNCHING))
        return refresh(store)

    monkeypatch.setattr(lifecycle, "refresh", a_pass_meanwhile)
    b.reconcile()
    after = queue.get(job.job_id)
    assert (after.status, after.run_id, after.attempts) == (JobStatus.RUNNING, "r-bbbbbbbb", 1)
    assert b.reconciled == []


def test_a_stale_reject_does_not_fall_on_a_job_another_pass_started(tmp_path):
    queue = JobQueue()
    read = queue.submit("j", "job.yaml", "{}", 5.0, None, 0)
    assert queue.claim(read.job_id, "A", cloud_run(tmp_path, "r-aaaaaaaa", RunStatus.LAUNCHING))
    assert not queue.update(read.job_id, as_read=read, status=JobStatus.REJECTED, reason="cap")
    assert queue.get(read.job_id).status is JobStatus.RUNNING


def test_a_pass_does_not_reject_a_job_another_pass_claimed_while_it_decided(tmp_path, monkeypatch):
    """Its decision was written blindly: a pass that read the job queued and decided "reject" (a smaller cap, no CPU
    slot) marked REJECTED a job another pass had started meanwhile, whose run then ended unseen."""
    from orchestrator.schedule.policy import Decision

    job_id = submit(tmp_path, "claimed", max_steps=1)
    scheduler = Scheduler()

    def another_pass_claims_it_then_this_one_rejects(job, *args):
        assert JobQueue().claim(job.job_id, "another", cloud_run(tmp_path, "r-0a1b2c3d", RunStatus.LAUNCHING))
        return Decision("reject", "no slot here")

    monkeypatch.setattr(scheduler, "_decide", another_pass_claims_it_then_this_one_rejects)
    assert scheduler.run_once() == []
    assert (JobQueue().get(job_id).status, JobQueue().get(job_id).run_id) == (JobStatus.RUNNING, "r-0a1b2c3d")


def test_a_preempted_job_put_back_since_a_pass_read_it_is_not_that_pass_s_to_write(tmp_path):
    """Back in the queue after a preemption, a job looked as a stale read found it (queued, no run, the same
    attempts): that pass's old decision was written, and its claim started the job on a budget its preempted run had
    spent from."""
    queue = JobQueue()
    read = queue.submit("j", "job.yaml", "{}", 5.0, None, 0)
    assert queue.claim(read.job_id, "A", cloud_run(tmp_path, "r-aaaaaaaa", RunStatus.PREEMPTED))
    assert queue.update(read.job_id, status=JobStatus.QUEUED, run_id=None, preemptions=1)
    assert not queue.update(read.job_id, as_read=read, decision="start_cloud", reason="stale")


def reconciled_after(tmp_path, status: RunStatus):
    """A job whose cloud run ended `status`, after one reconcile: (the job now, what the pass said of it)."""
    queue = JobQueue()
    job = queue.submit("j", "job.yaml", "{}", 5.0, None, 0)
    assert queue.claim(job.job_id, "A", cloud_run(tmp_path, "r-aaaaaaaa", status))
    scheduler = Scheduler(queue)
    scheduler.reconcile()
    (_, decision), = scheduler.reconciled
    return queue.get(job.job_id), decision


def test_a_job_sent_back_to_the_queue_says_why_its_run_failed(tmp_path):
    """"run r-... ended failed: trying again" left the cause (SkyPilot's words) to the last attempt's line."""
    job, decision = reconciled_after(tmp_path, RunStatus.FAILED)
    assert job.status is JobStatus.QUEUED
    assert (decision.action, decision.reason) == ("requeue", "run r-aaaaaaaa ended failed (no capacity): trying again")


def test_a_run_out_of_memory_fails_its_job_at_once(tmp_path):
    """Tried again, it got the same plan and ran out of memory twice more, each cloud try paying its start-up."""
    job, decision = reconciled_after(tmp_path, RunStatus.OOM)
    assert job.status is JobStatus.FAILED and decision.action == "failed"


class StopLooping(BaseException):
    """Ends run_forever as Ctrl-C would."""


def test_the_loop_gives_each_pass_what_it_did_to_jobs(tmp_path, monkeypatch):
    """`orch scheduler run` said nothing after its first line: its passes' doings never left run_forever."""
    from orchestrator.schedule.policy import Decision

    job_id = submit(tmp_path, "waiting")
    scheduler = Scheduler()
    monkeypatch.setattr(scheduler, "_decide", lambda *args: Decision("wait", "held for the test"))
    monkeypatch.setattr(time, "sleep", lambda seconds: (_ for _ in ()).throw(StopLooping()))
    passes = []
    with pytest.raises(StopLooping):
        scheduler.run_forever(1.0, on_pass=passes.append)
    assert [[(job.job_id, decision.action) for job, decision in done] for done in passes] == [[(job_id, "wait")]]


def test_a_pass_that_meets_the_database_locked_says_so_and_the_next_pass_goes_on(tmp_path, monkeypatch, capsys):
    """Another process held runs.db's write lock past the busy timeout (a sqlite3 shell, a backup): the looping
    scheduler died with a traceback (database is locked), and nothing was scheduled until someone restarted it."""
    import sqlite3

    from orchestrator import db as database
    from orchestrator.schedule.policy import Decision

    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.2)
    submit(tmp_path, "waiting")  # each pass writes its decision; reads no longer wait for the lock
    scheduler = Scheduler()
    monkeypatch.setattr(scheduler, "_decide", lambda *args: Decision("wait", "held for the test"))
    holder = sqlite3.connect(scheduler.queue.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    passes, sleeps, real_sleep, interval_s = [], [], time.sleep, 1234.0
    real_run_once = scheduler.run_once
    monkeypatch.setattr(scheduler, "run_once", lambda: passes.append(real_run_once()))

    def sleep(seconds):
        if seconds != interval_s:
            return real_sleep(seconds)
        sleeps.append(seconds)
        if holder.in_transaction:  # the other process finishes
            holder.execute("ROLLBACK")
        if len(sleeps) == 2:
            raise StopLooping

    monkeypatch.setattr(time, "sleep", sleep)
    try:
        with pytest.raises(StopLooping):
            scheduler.run_forever(interval_s)
    finally:
        holder.close()
    assert len(passes) == 1  # the first pass met the lock, the second ran whole
    said = capsys.readouterr().err.strip().splitlines()
    assert said == [f"database locked by another process ({scheduler.queue.path}); retrying next pass"]


def test_a_row_damaged_while_the_scheduler_loops_is_said_once_and_the_loop_goes_on(tmp_path, monkeypatch, capsys):
    """One hand-damaged jobs row ended the looping scheduler (exit 2): no other job was placed and no run's end
    recorded until someone restarted it. Met on the first pass it still ends it, to be fixed before the loop."""
    from gpu_catalog.errors import UserError

    scheduler, passes, sleeps = Scheduler(), [], []
    problem = UserError("runs.db: the jobs row 'j-00000000' is damaged: job_json is '{bad', not valid JSON.")

    def run_once():
        passes.append(len(passes))
        if 2 <= len(passes) <= 3:  # the second and third passes meet it: said once
            raise problem

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 4:
            raise StopLooping

    monkeypatch.setattr(scheduler, "run_once", run_once)
    monkeypatch.setattr(time, "sleep", sleep)
    with pytest.raises(StopLooping):
        scheduler.run_forever(1.0)
    assert len(passes) == 4 and capsys.readouterr().err.count("is damaged") == 1
    monkeypatch.setattr(scheduler, "run_once", lambda: (_ for _ in ()).throw(problem))
    with pytest.raises(UserError, match="is damaged"):
        scheduler.run_forever(1.0)


def test_a_file_where_the_schedulers_marks_go_is_said_with_its_fix(tmp_path):
    """`schedulers` a file in ORCH_HOME: the loop ended on Python's bare "File exists"."""
    queue = JobQueue()
    (queue.path.parent / "schedulers").write_text("x")
    with pytest.raises(UserError, match="schedulers is not a folder: a looping scheduler keeps a mark there. Move it "
                                        "away, or set ORCH_HOME to another folder."):
        Scheduler(queue).run_forever(0.1)


def test_the_monthly_cap_counts_the_utc_month_as_orch_spend_does(monkeypatch):
    """The cap counted from local midnight on the 1st, `orch spend` from UTC's: east of Greenwich a run of the
    last evening of November (UTC) was December's under the cap and November's in `orch spend`."""
    import calendar

    from orchestrator.home import orch_home
    from orchestrator.runs.status import Target
    from orchestrator.spend import month_of, month_spend_usd
    from tests.test_runs_store import make_record

    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        december_utc = calendar.timegm((2026, 12, 1, 0, 0, 0))
        store, runs = RunStore(), orch_home() / "runs"
        store.insert(make_record(runs / "r-aaaaaaaa", run_id="r-aaaaaaaa", target=Target.CLOUD, status=RunStatus.OK,
                                 cost_usd=7.0, created_at=december_utc - 60))
        store.insert(make_record(runs / "r-bbbbbbbb", run_id="r-bbbbbbbb", target=Target.CLOUD, status=RunStatus.OK,
                                 cost_usd=2.0, created_at=december_utc + 60))
        assert month_of(december_utc - 60) == "2026-11"
        assert month_spend_usd(store.all(), december_utc + 3600) == 2.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_monthly_cap_bounds_cloud_runs_by_their_budget_stops(tmp_path, monkeypatch):
    """A $50 budget started under a $6 cap could spend $44 past it (the cap kept only the run's $5 estimate), and the
    owned cards' runs, placed whatever the cap, were counted against it."""
    import types

    from orchestrator.home import orch_home
    from orchestrator.runs.status import Target
    from orchestrator.spend import month_spend_usd
    from tests.test_runs_store import make_record

    store, now, runs = RunStore(), time.time(), orch_home() / "runs"
    store.insert(make_record(runs / "r-aaaaaaaa", run_id="r-aaaaaaaa", target=Target.CLOUD, status=RunStatus.RUNNING,
                             budget_usd=6.0, est_cost_usd=5.0, created_at=now))
    store.insert(make_record(runs / "r-bbbbbbbb", run_id="r-bbbbbbbb", target=Target.CLOUD, status=RunStatus.OK,
                             cost_usd=2.0, created_at=now))
    store.insert(make_record(runs / "r-cccccccc", run_id="r-cccccccc", status=RunStatus.OK, cost_usd=3.0,
                             created_at=now))
    assert month_spend_usd(store.all(), now) == 8.0  # the running one at its budget stop; the local one not at all

    budgets = []
    monkeypatch.setattr(lifecycle, "new_record", lambda spec, path, option, budget, **where: budgets.append(budget)
                        or make_record(tmp_path / "d", run_id="r-dddddddd"))
    monkeypatch.setattr(lifecycle, "start", lambda store, record, *args, **kwargs: record)  # as it started it
    monkeypatch.setattr(JobQueue, "claim", lambda *args: True)
    job = types.SimpleNamespace(job_id="j-1", budget_usd=50.0, job_path=str(tmp_path / "job.yaml"))
    decision = types.SimpleNamespace(slot=None, option=types.SimpleNamespace(estimate=types.SimpleNamespace(
        cost_usd=5.0)))
    assert Scheduler()._start(job, None, decision, spend_left_usd=6.0, budget_left_usd=50.0) == 6.0 and budgets == [6.0]


@pytest.mark.parametrize("linked_home", [False, True])
def test_a_jobs_runs_together_stay_within_its_budget(tmp_path, monkeypatch, linked_home):
    """Each run the scheduler started for a job (a failed run tried again, a preempted one started anew) got the
    job's whole budget: a $0.0003 job spent $0.000453 over two attempts, and three could spend three times it. An
    ORCH_HOME reached through a link is the same home: its runs' files and its jobs' are matched resolved."""
    from orchestrator.home import orch_home
    from tests.test_runs_store import make_record

    if linked_home:
        orch_home().mkdir(parents=True, exist_ok=True)
        (tmp_path / "home-link").symlink_to(orch_home(), target_is_directory=True)
        monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home-link"))
    job_id = submit(tmp_path, "capped")
    job = JobQueue().get(job_id)
    runs, store = orch_home() / "runs", RunStore()
    store.insert(make_record(runs / "r-aaaaaaaa", run_id="r-aaaaaaaa", job_path=str(Path(job.job_path).resolve()),
                             status=RunStatus.FAILED, cost_usd=0.4, budget_usd=1.0))
    store.insert(make_record(runs / "r-bbbbbbbb", run_id="r-bbbbbbbb", job_path="/another/job.yaml",
                             status=RunStatus.FAILED, cost_usd=5.0))  # another job's run: not this one's spend
    budgets = []
    real_start = lifecycle.start
    monkeypatch.setattr(lifecycle, "start", lambda store, record, *a, **k: budgets.append(record.budget_usd)
                        or real_start(store, record, *a, **k))
    Scheduler().run_once()
    assert budgets == [pytest.approx(0.6)], JobQueue().get(job_id).reason  # its $1 less the first run's $0.40
    run_until_done([job_id])
    last = JobQueue().get(job_id).run_id
    store.update(last, cost_usd=0.5999999)  # a millionth of a dollar left: no target starts on it
    JobQueue().update(job_id, status=JobStatus.QUEUED, run_id=None)
    (decided,) = Scheduler().run_once()
    assert decided[1].action == "reject", decided[1].reason
    assert decided[1].reason.startswith("its earlier runs spent $1.00 of its $1.00 budget, and what is left is judged")
    store.update(last, cost_usd=0.6)  # spent to the last cent: nothing left for another
    JobQueue().update(job_id, status=JobStatus.QUEUED, run_id=None)
    (decided,) = Scheduler().run_once()
    assert decided[1].action == "reject" and "its earlier runs spent its whole $1.00 budget" in decided[1].reason


def test_a_resume_never_starts_on_a_card_another_run_took_meanwhile(tmp_path):
    """A failed run holds no slot, so another scheduler could claim its card for another job after this one read
    the run and before it resumed it there: two trainers on one card. The start counts the card's active runs in
    the statement that switches the run to launching, and leaves it as it was."""
    from tests.test_runs_store import make_record

    store, runs = RunStore(), tmp_path / "runs"
    failed = make_record(runs / "r-aaaaaaaa", run_id="r-aaaaaaaa", device="cuda:0", status=RunStatus.FAILED,
                         ended_at=time.time())
    store.insert(failed)
    store.insert(make_record(runs / "r-bbbbbbbb", run_id="r-bbbbbbbb", device="cuda:0", status=RunStatus.LAUNCHING))
    with pytest.raises(lifecycle.DeviceBusy, match="device cuda:0 is busy"):
        lifecycle.start(store, failed, device="cuda:0", slot_capacity=1)
    after = store.get(failed.run_id)
    assert (after.status, after.started_at, after.ended_at) == (RunStatus.FAILED, failed.started_at, failed.ended_at)
    with pytest.raises(lifecycle.AlreadyStarted):  # a run another command moved is said so, busy card or not
        lifecycle.start(store, dataclasses.replace(failed, status=RunStatus.STOPPED), device="cuda:0",
                        slot_capacity=1)


def failed_cpu_run_with_a_checkpoint(tmp_path):
    """A queued job claimed with its CPU run, which then failed after a checkpoint: what a pass resumes."""
    from tests.test_runs_store import make_record

    job_id = submit(tmp_path, "a", max_steps=3)
    run = make_record(tmp_path / "runs" / "r-aaaaaaaa", run_id="r-aaaaaaaa", device="cpu",
                      status=RunStatus.LAUNCHING)
    assert JobQueue().claim(job_id, "one", run)
    RunStore().update(run.run_id, status=RunStatus.FAILED, ended_at=time.time())
    checkpoints = RunStore().get(run.run_id).output_dir / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "latest").write_text("step-00000001")
    return job_id, run


def test_a_scheduler_whose_resume_found_the_card_taken_tries_again_later(tmp_path, monkeypatch):
    """The job keeps its run and its attempts (the try never happened), for a later pass to resume."""
    job_id, run = failed_cpu_run_with_a_checkpoint(tmp_path)
    asked = []

    def busy(store, record, **kwargs):
        asked.append(kwargs)
        raise lifecycle.DeviceBusy("busy")

    monkeypatch.setattr(lifecycle, "start", busy)
    scheduler = Scheduler(cpu_slots=2)
    scheduler.reconcile()
    job = JobQueue().get(job_id)
    assert asked == [{"device": "cpu", "slot_capacity": 2}]
    assert job.status is JobStatus.RUNNING and job.run_id == run.run_id and job.attempts == 0


def test_a_scheduler_that_gives_the_cpu_no_slot_still_resumes_its_failed_cpu_run(tmp_path, monkeypatch):
    """With --cpu-slots 0 the start asked for fewer than 0 other runs on the CPU, never true: the failed run was
    never resumed, and its job stayed running beside it, unsaid, pass after pass. A resume holds its own slot."""
    job_id, run = failed_cpu_run_with_a_checkpoint(tmp_path)
    asked = []
    monkeypatch.setattr(lifecycle, "start", lambda store, record, **kwargs: asked.append(kwargs) or record)
    Scheduler(cpu_slots=0).reconcile()
    assert asked == [{"device": "cpu", "slot_capacity": 1}] and JobQueue().get(job_id).attempts == 1
