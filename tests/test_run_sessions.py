"""A resumed local run's second session is recorded as itself: killed without a word, it is not given the first
session's metrics.json, its spend is metered from its own start to its last write, and a resume refused for want
of budget leaves the budget the run had."""

import json
import os
import re
import time
from pathlib import Path

import pytest

from gpu_catalog.errors import UserError
from orchestrator.home import orch_home
from orchestrator.launch import lifecycle
from orchestrator.launch.base import NothingLaunched, Started
from orchestrator.launch.local import RUN_JOB_NAME
from orchestrator.runs.status import RunStatus, Target
from orchestrator.runs.store import RunRecord, RunStore, new_run_id
from tests.conftest import REPO
from trainer.meter import METER_INTERVAL_S

USD_PER_HOUR = 36.0  # a cent a second: seconds read as cents


def ended_session(session_s: float, **changes) -> RunRecord:
    """A local run whose first session ran `session_s` seconds, ended preempted at step 39 with its metrics.json,
    now started again (resumed): running, with a trainer that is gone (no pid)."""
    run_id = new_run_id()
    run_dir = orch_home() / "runs" / run_id
    (run_dir / "output").mkdir(parents=True)
    first_metrics = run_dir / "output" / "metrics.json"
    first_metrics.write_text(json.dumps({"status": "preempted", "steps": 39, "train_tokens": 75423,
                                         "tokens_per_s": 6011.0}), encoding="utf-8")
    now = time.time()
    os.utime(first_metrics, (now - 100, now - 100))
    values = dict(
        run_id=run_id, job_name="tiny", job_path="/x/tiny.yaml", job_json="{}", target=Target.LOCAL, gpu="CPU",
        provider="local", region="local", spot=0, usd_per_hour=USD_PER_HOUR, budget_usd=5.0, est_vram_gib=None,
        est_tokens_per_s=None, est_hours=None, est_cost_usd=None, est_basis=None, status=RunStatus.RUNNING,
        run_dir=str(run_dir), pid=None, cluster=None, stop_requested=0, created_at=now - 200,
        started_at=now - session_s, ended_at=None, train_tokens=None, tokens_per_s=None, peak_vram_gib=None,
        wall_s=50.0, cost_usd=None, message=None, metrics_json=None, sky_job_id=None, request_id=None,
        output_uri=None)
    record = RunRecord(**{**values, **changes})
    RunStore().insert(record)
    return record


def test_a_resumed_session_killed_without_metrics_is_not_given_the_earlier_ones():
    record = ended_session(24.0)
    ended = lifecycle.finish(RunStore(), record)
    assert ended.status is RunStatus.FAILED and "this session's metrics.json" in ended.message
    assert ended.train_tokens is None and ended.tokens_per_s is None


@pytest.mark.parametrize("session_s", [40.0, 22.0])  # looked at long after the kill, and within its interval
def test_a_killed_sessions_spend_runs_through_its_last_steps_interval_and_never_before_its_start(session_s):
    record = ended_session(session_s)
    progress = record.output_dir / "progress.json"  # rewritten every step: the last one 20 s in, then the kill
    progress.write_text("{}", encoding="utf-8")
    os.utime(progress, (record.started_at + 20, record.started_at + 20))
    ended = lifecycle.finish(RunStore(), record)
    # to the end of the meter interval it may have lived on (charged to its last write, it was up to 5 s short), and
    # never past the moment it was found ended
    assert ended.wall_s == pytest.approx(50.0 + min(20.0 + METER_INTERVAL_S, session_s), abs=0.5)
    fresh = ended_session(1.0)  # killed before it wrote a thing: only the earlier session's files, older than it
    ended = lifecycle.finish(RunStore(), fresh)
    assert ended.ended_at >= fresh.started_at and ended.wall_s >= 50.0


def test_a_refused_resume_keeps_the_runs_budget():
    record = ended_session(10.0)
    (Path(record.run_dir) / RUN_JOB_NAME).write_text((REPO / "examples" / "tiny.yaml").read_text(encoding="utf-8"),
                                                     encoding="utf-8")
    ended = lifecycle.finish(RunStore(), record)
    assert ended.cost_usd > 0.00001
    with pytest.raises(UserError, match=r"has spent .* of a \$0\.00001"):
        lifecycle.resume(RunStore(), ended, budget_usd=0.00001)
    assert RunStore().get(record.run_id).budget_usd == 5.0


def test_a_resume_left_less_than_a_start_is_refused():
    """With seconds of budget left, `orch resume` started a trainer that stopped before its first step, exit 4."""
    record = ended_session(10.0)
    (Path(record.run_dir) / RUN_JOB_NAME).write_text((REPO / "examples" / "tiny.yaml").read_text(encoding="utf-8"),
                                                     encoding="utf-8")
    ended = lifecycle.finish(RunStore(), record)
    left_for_s = 5.0  # of the run's price: less than lifecycle.RESUME_LEAST_S
    with pytest.raises(UserError, match=r"too little left to start again: `orch resume .* --budget USD`"):
        lifecycle.resume(RunStore(), ended, budget_usd=ended.cost_usd + ended.usd_per_hour * left_for_s / 3600)
    assert RunStore().get(record.run_id).budget_usd == 5.0


def test_a_start_refused_before_any_request_adds_no_spend(monkeypatch):
    """A cloud run refused before any VM (a spot run with no store for its checkpoints) was recorded with the
    milliseconds of the refusal as its cost."""
    record = ended_session(10.0, status=RunStatus.PREEMPTED, wall_s=50.0, cost_usd=0.5)

    class Refusing:
        def start(self, *args):
            raise UserError("no storage cloud for a spot run's checkpoints")

    monkeypatch.setattr(lifecycle, "launcher_for", lambda target: Refusing())
    time.sleep(0.05)
    with pytest.raises(UserError, match="no storage cloud"):
        lifecycle.start(RunStore(), record)
    ended = RunStore().get(record.run_id)
    assert ended.status is RunStatus.FAILED and ended.wall_s == 50.0 and ended.cost_usd == 0.5


def test_a_resume_its_launcher_refuses_leaves_the_run_as_it_ended(monkeypatch):
    """A cloud run's launch error was overwritten by the refusal of `orch resume` (its checkpoints were on a VM
    that is gone): the one record of why the run failed was lost to a follow-up command."""
    record = ended_session(10.0, status=RunStatus.FAILED, message="SkyPilot could not launch: quota", wall_s=50.0,
                           cost_usd=0.5, ended_at=time.time() - 5)
    (Path(record.run_dir) / RUN_JOB_NAME).write_text((REPO / "examples" / "tiny.yaml").read_text(encoding="utf-8"),
                                                     encoding="utf-8")
    before = RunStore().get(record.run_id)

    class Refusing:  # as SkyPilot's launcher: its request's facts reported, then refused (no cloud access)
        def __init__(self, refusal):
            self.refusal = refusal

        def start(self, record, option, device, on_fact):
            on_fact(Started(cluster="orch-x", request_id="request-1", output_uri="orch-x:/orch/output"))
            raise self.refusal

    for refusal in (UserError("its checkpoints were on its VM, which is gone"),
                    NothingLaunched("SkyPilot could not launch: NoCloudAccessError")):
        monkeypatch.setattr(lifecycle, "launcher_for", lambda target, refusal=refusal: Refusing(refusal))
        with pytest.raises(UserError, match=str(refusal)):
            lifecycle.resume(RunStore(), before, budget_usd=9.0)
        assert RunStore().get(record.run_id) == before


def test_a_resumed_cloud_launch_still_under_way_is_not_ended_by_the_last_sessions_metrics():
    """`orch runs` during a resume's launch took the first session's metrics.json for the end of this one."""
    record = ended_session(5.0, status=RunStatus.LAUNCHING, target=Target.CLOUD, request_id="request-1",
                           provider="lambda", cluster="orch-x")
    lifecycle.refresh(RunStore())
    assert RunStore().get(record.run_id).status is RunStatus.LAUNCHING


@pytest.mark.parametrize("this_session", [{"status": "budget_stopped", "steps": 0, "cost_usd": 0.091,
                                           "message": "this session's budget of $0.10 ran out after 9.1 s"}, None],
                         ids=["budget-stopped-before-a-step", "killed-without-metrics"])
def test_a_session_that_measured_nothing_keeps_the_runs_earlier_measurements(this_session):
    """`orch resume` with a budget that ran out before the new session's first step wiped the run's tokens, tokens/s,
    peak memory and metrics (its 39 steps) from the runs store; the checkpoint at step 39 was still there."""
    first = {"status": "budget_stopped", "steps": 39, "train_tokens": 75423, "tokens_per_s": 6011.0,
             "peak_vram_gib": {"process_rss": 0.78}}
    record = ended_session(9.1, train_tokens=75423, tokens_per_s=6011.0, peak_vram_gib=0.78, cost_usd=0.5,
                           metrics_json=json.dumps(first))
    last_write = record.output_dir / ("metrics.json" if this_session else "progress.json")
    last_write.write_text(json.dumps(this_session or {}), encoding="utf-8")
    os.utime(last_write, (record.started_at + 9.1, record.started_at + 9.1))
    ended = lifecycle.finish(RunStore(), record)
    assert ended.status is (RunStatus.BUDGET_STOPPED if this_session else RunStatus.FAILED)
    assert (ended.train_tokens, ended.tokens_per_s, ended.peak_vram_gib) == (75423, 6011.0, 0.78)
    assert json.loads(ended.metrics_json)["steps"] == 39
    assert ended.wall_s == pytest.approx(50.0 + 9.1, abs=0.5)  # its cost adds up all the same
    assert ended.cost_usd == pytest.approx((50.0 + 9.1) * USD_PER_HOUR / 3600, abs=0.01)


def test_a_session_that_trained_records_its_own_measurements():
    record = ended_session(9.1, train_tokens=75423, tokens_per_s=6011.0, peak_vram_gib=0.78,
                           metrics_json=json.dumps({"status": "preempted", "steps": 39}))
    (record.output_dir / "metrics.json").write_text(json.dumps(
        {"status": "ok", "steps": 45, "train_tokens": 87000, "tokens_per_s": None,
         "peak_vram_gib": {"process_rss": 0.81}}), encoding="utf-8")
    ended = lifecycle.finish(RunStore(), record)
    # a session all warm-up times nothing: the run's last tokens/s stands
    assert (ended.train_tokens, ended.tokens_per_s, ended.peak_vram_gib) == (87000, 6011.0, 0.81)
    assert json.loads(ended.metrics_json)["steps"] == 45


def test_a_resumed_runs_tokens_per_s_is_over_all_its_sessions():
    """44 steps at 7,865 tokens/s, resumed for 5 busy steps at 261: the run was recorded at 261 tokens/s and compared
    with its estimate as if that described it. Its rate is its tokens over the time each session took for them."""
    record = ended_session(9.1, train_tokens=80000, tokens_per_s=8000.0,
                           metrics_json=json.dumps({"status": "preempted", "steps": 40}))
    (record.output_dir / "metrics.json").write_text(json.dumps(
        {"status": "ok", "steps": 45, "train_tokens": 90000, "tokens_per_s": 1000.0}), encoding="utf-8")
    ended = lifecycle.finish(RunStore(), record)
    assert ended.tokens_per_s == pytest.approx(90000 / (80000 / 8000 + 10000 / 1000))  # 4,500, not 1,000
    assert json.loads(ended.metrics_json)["tokens_per_s"] == 1000.0  # the session's own, as it measured it


def test_a_killed_session_leaves_its_rate_for_the_runs():
    """Killed (kill -9), a session left no metrics.json, and its tokens/s was lost: the resumed session's 5 steps
    alone were then the run's. progress.json keeps the session's rate over its timed steps."""
    record = ended_session(9.1)
    (record.output_dir / "metrics.json").unlink()
    (record.output_dir / "progress.json").write_text(json.dumps(
        {"step": 40, "tokens_per_s": 7000.0, "train_tokens": 80000, "session_tokens_per_s": 8000.0,
         "peak_vram_gib": {"process_rss": 0.8}}), encoding="utf-8")
    killed = lifecycle.finish(RunStore(), record)
    assert killed.status is RunStatus.FAILED and (killed.train_tokens, killed.tokens_per_s) == (80000, 8000.0)


def test_a_locked_database_while_a_launch_records_its_facts_leaves_the_run_launching(monkeypatch):
    """The trainer had started when recording its pid met a lock held past the busy timeout: the catch-all recorded
    the run failed ("could not start the trainer") while the trainer ran on. The run stays `launching` instead."""
    from orchestrator.db import LockedDatabase
    from orchestrator.launch.base import Started

    record = ended_session(1.0, status=RunStatus.PREEMPTED)

    class Launcher:
        def start(self, record, option, device, on_fact):
            on_fact(Started(pid=4242))  # the trainer is up; the record of it is what fails
            raise AssertionError("not reached")

    def locked(*args, **values):
        if values.get("pid"):
            raise LockedDatabase("the database file runs.db is locked by another process")
        return update(*args, **values)

    update = RunStore.update
    monkeypatch.setattr(lifecycle, "launcher_for", lambda target: Launcher())
    monkeypatch.setattr(RunStore, "update", locked)
    with pytest.raises(LockedDatabase):
        lifecycle.start(RunStore(), record)
    assert RunStore().get(record.run_id).status is RunStatus.LAUNCHING


def test_a_run_ended_twice_counts_its_session_once():
    """An attached `orch launch` and an `orch stop` or `orch runs` elsewhere each saw the run end: the second added
    the session's time and cost again."""
    record = ended_session(10.0)
    first = lifecycle.finish(RunStore(), record)
    again = lifecycle.finish(RunStore(), record)  # the stale record the other caller held
    assert (again.wall_s, again.cost_usd, again.status) == (first.wall_s, first.cost_usd, first.status)


def test_an_active_resumed_runs_spend_keeps_what_its_earlier_sessions_recorded():
    """The earlier sessions' recorded cost (their price, their idle windows) was recomputed from their time at
    today's price, so the spend shown dropped when the run was resumed."""
    from orchestrator.spend import spend_usd

    record = ended_session(0.0, cost_usd=2.39, wall_s=50.0)
    assert spend_usd(record, now=record.started_at) == pytest.approx(2.39)
    assert spend_usd(record, now=record.started_at + 10) == pytest.approx(2.39 + 0.10)


def test_a_session_started_on_a_replanned_offer_is_metered_at_its_price(monkeypatch):
    """`orch resume` plans the target again (prices move, the region may change) and the VM's guard meters at the new
    offer, but the record kept the first launch's price and region."""
    from types import SimpleNamespace

    from orchestrator.launch.base import Started

    record = ended_session(10.0, status=RunStatus.PREEMPTED, wall_s=50.0, cost_usd=0.5)

    class Starting:
        def start(self, *args):
            return Started(pid=None)

    monkeypatch.setattr(lifecycle, "launcher_for", lambda target: Starting())
    option = SimpleNamespace(offer=SimpleNamespace(usd_per_hour=72.0, region="elsewhere"))
    started = lifecycle.start(RunStore(), record, option)
    assert (started.usd_per_hour, started.region, started.cost_usd) == (72.0, "elsewhere", 0.5)


class _Starting:
    """A launcher whose trainer starts, and whose end is told by the run folder (as a local one's is)."""

    def start(self, *args):
        from orchestrator.launch.base import Started

        return Started(pid=None)

    def ended_at(self, record):
        return None

    def billed_after_s(self, record, ended_at, now):
        return 0.0


def test_two_starts_from_one_reading_start_one_trainer(monkeypatch):
    """Two scheduler passes (or two `orch resume`) that each read the run ended each started a trainer in its
    folder: only the first start of what was read goes ahead."""
    record = ended_session(10.0, status=RunStatus.PREEMPTED, wall_s=50.0, cost_usd=0.5)
    monkeypatch.setattr(lifecycle, "launcher_for", lambda target: _Starting())
    assert lifecycle.start(RunStore(), record).status is RunStatus.RUNNING
    with pytest.raises(lifecycle.AlreadyStarted, match="started again meanwhile"):
        lifecycle.start(RunStore(), record)


def test_an_end_read_from_an_earlier_session_leaves_the_resumed_one_running(monkeypatch):
    """A refresh that read the first session as running recorded its end after the run had been resumed: the new
    session was ended, and a later resume started a second trainer beside it."""
    stale = ended_session(10.0)  # running, its trainer gone
    lifecycle.finish(RunStore(), RunStore().get(stale.run_id))
    monkeypatch.setattr(lifecycle, "launcher_for", lambda target: _Starting())
    time.sleep(0.01)  # the new session starts later than the first
    resumed = lifecycle.start(RunStore(), RunStore().get(stale.run_id))
    lifecycle.finish(RunStore(), stale)
    after = RunStore().get(stale.run_id)
    assert after.status is RunStatus.RUNNING and after.started_at == resumed.started_at


def test_a_launch_longer_than_the_grace_period_is_failed_only_once_its_launcher_is_dead():
    """A cloud launch still starting SkyPilot's API server 90 s on (no request yet) was failed by any `orch runs`
    as left by a dead launcher, and a scheduler then started its job again beside it. Its launcher, in another process,
    holds the run's launching lock; SIGKILLed, it holds nothing, and the next look fails the run."""
    import subprocess
    import sys

    record = ended_session(90.0, status=RunStatus.LAUNCHING, target=Target.CLOUD, provider="lambda", gpu="H100",
                           wall_s=None)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom orchestrator.launch import launching\n"
         "with launching.held(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)", record.run_dir],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        lifecycle.refresh(RunStore())
        assert RunStore().get(record.run_id).status is RunStatus.LAUNCHING
    finally:
        holder.kill()
        holder.wait()
    lifecycle.refresh(RunStore())
    ended = RunStore().get(record.run_id)
    assert ended.status is RunStatus.FAILED and ended.message == "its launcher died before the trainer started"


def test_a_resume_left_less_than_its_targets_estimated_start_is_refused():
    """Past RESUME_LEAST_S, a resume with 11 s of budget left started on a CPU whose start takes longer, and spent
    the rest on imports and the model, training no step (exit 4). The plan's start-up is the least it needs."""
    from orchestrator.cli.planning import plan_job
    from orchestrator.cli.runs import same_target

    record = ended_session(10.0)
    tiny = (REPO / "examples" / "tiny.yaml").read_text(encoding="utf-8")  # as a run folder's copy: data absolute
    (Path(record.run_dir) / RUN_JOB_NAME).write_text(tiny.replace("data/", f"{REPO}/examples/data/"), encoding="utf-8")
    _, _, planned = plan_job(Path(record.run_dir) / RUN_JOB_NAME, 1e-9, None, "cost", False, "local")
    (cpu,) = [r for r in planned.rejected if r.offer.gpu.name == "CPU"]  # over that budget, with its estimate
    RunStore().update(record.run_id, usd_per_hour=cpu.offer.usd_per_hour)  # as a run on that CPU was priced
    ended = lifecycle.finish(RunStore(), RunStore().get(record.run_id))
    start_usd = cpu.estimate.startup_hours * cpu.offer.usd_per_hour
    assert start_usd / 2 > cpu.offer.usd_per_hour * lifecycle.RESUME_LEAST_S / 3600  # past the floor
    total_usd = ended.cost_usd + start_usd / 2  # short of the start the plan expects
    with pytest.raises(UserError, match=r"starting again takes about [0-9,]+ s \(\$[0-9.]+\) before a step: `orch "
                                        r"resume .* --budget USD`"):
        lifecycle.resume(RunStore(), ended, budget_usd=total_usd, same_target=lambda: same_target(ended, total_usd))
    assert RunStore().get(record.run_id).budget_usd == 5.0  # a refused resume keeps the budget it had
    assert same_target(ended, ended.cost_usd + 1.0) is not None  # a dollar more pays for the start and the rest


def test_a_resume_with_a_new_budget_does_not_start_a_run_another_command_started_while_it_planned():
    """The new total was written before the start, whose check then compared the run with a reading taken after
    the other command's start: two trainers in one run folder, the first never metered."""
    record = ended_session(10.0, status=RunStatus.PREEMPTED, ended_at=time.time() - 5)
    (Path(record.run_dir) / RUN_JOB_NAME).write_text((REPO / "examples" / "tiny.yaml").read_text(encoding="utf-8"),
                                                     encoding="utf-8")
    ended = RunStore().get(record.run_id)

    def another_start_while_planning():
        RunStore().update(record.run_id, status="launching", started_at=time.time(), budget_usd=30.0)

    with pytest.raises(lifecycle.AlreadyStarted):
        lifecycle.resume(RunStore(), ended, budget_usd=9.0, same_target=another_start_while_planning)
    assert RunStore().get(record.run_id).budget_usd == 30.0  # the other command's total stands


def test_a_resume_quotes_one_least_budget_and_takes_it():
    """`orch resume` refused a total short of RESUME_LEAST_S's start with "more than $0.000090"; given that, it was
    refused again for the plan's longer start, "more than $0.00014". The plan's least is asked first: the total it
    quotes is taken."""
    from orchestrator.cli.runs import same_target

    record = ended_session(10.0)
    tiny = (REPO / "examples" / "tiny.yaml").read_text(encoding="utf-8")
    (Path(record.run_dir) / RUN_JOB_NAME).write_text(tiny.replace("data/", f"{REPO}/examples/data/"), encoding="utf-8")
    RunStore().update(record.run_id, usd_per_hour=0.01)
    ended = lifecycle.finish(RunStore(), RunStore().get(record.run_id))
    floor_usd = ended.cost_usd + 0.01 * lifecycle.RESUME_LEAST_S / 3600 / 2  # short of even RESUME_LEAST_S
    with pytest.raises(UserError, match=r"starting again takes about .* \(more than \$([0-9.]+)\)") as refused:
        lifecycle.resume(RunStore(), ended, budget_usd=floor_usd, same_target=lambda: same_target(ended, floor_usd))
    quoted_usd = float(re.search(r"more than \$([0-9.]+)\)", str(refused.value)).group(1)) * 1.01
    started = []
    lifecycle_start = lifecycle.start
    try:
        lifecycle.start = lambda store, rec, option, device=None, ended=None, budget_usd=None: \
            started.append((option, budget_usd)) or rec
        lifecycle.resume(RunStore(), ended, budget_usd=quoted_usd, same_target=lambda: same_target(ended, quoted_usd))
    finally:
        lifecycle.start = lifecycle_start
    assert len(started) == 1 and started[0][1] == quoted_usd  # the new total, written by the start


@pytest.mark.parametrize("session_peak_gib, recorded_gib", [(0.55, 0.78), (0.91, 0.91)])
def test_a_runs_peak_memory_is_its_largest_sessions(session_peak_gib, recorded_gib):
    """A resume that only loaded the checkpoint and saved final/ recorded its own 0.55 GiB over the 0.78 GiB the
    run's training had peaked at."""
    record = ended_session(10.0, peak_vram_gib=0.78)
    (record.output_dir / "metrics.json").write_text(json.dumps(
        {"status": "ok", "steps": 39, "train_tokens": 75423, "tokens_per_s": None,
         "peak_vram_gib": {"reserved": None, "process_rss": session_peak_gib}}), encoding="utf-8")
    ended = lifecycle.finish(RunStore(), record)
    assert ended.status is RunStatus.OK and ended.peak_vram_gib == recorded_gib


@pytest.mark.parametrize("budget_usd", [None, "below the spend"])
def test_a_resume_of_a_spent_budget_says_the_least_it_needs(budget_usd):
    """A budget-stopped run, its budget spent, was refused with "--budget must be above 0 ... got 0", a flag the user
    never gave: its start was planned at $0. It says what is left and the least total a resume needs."""
    from orchestrator.cli.runs import same_target

    record = ended_session(10.0)
    tiny = (REPO / "examples" / "tiny.yaml").read_text(encoding="utf-8")
    (Path(record.run_dir) / RUN_JOB_NAME).write_text(tiny.replace("data/", f"{REPO}/examples/data/"), encoding="utf-8")
    RunStore().update(record.run_id, usd_per_hour=0.01)
    ended = lifecycle.finish(RunStore(), RunStore().get(record.run_id))
    RunStore().update(ended.run_id, budget_usd=ended.cost_usd, status="budget_stopped")
    spent = RunStore().get(ended.run_id)
    total = None if budget_usd is None else spent.cost_usd / 2
    # a --budget below the spend is said as the flag's, not as the run's own budget, and as the total it is (it
    # was "leaves run ... $0.000 past the $0.00011 it has spent")
    said = r"has \$0[.0]* of its budget left" if total is None else \
        r"--budget \$[0-9.]+ is the run's new total, and it has already spent \$[0-9.]+"
    with pytest.raises(UserError, match=said + r", and starting again takes about .* before a step: `orch resume .* "
                                        r"--budget USD` with a larger total \(more than \$[0-9.]+\) continues it"):
        lifecycle.resume(RunStore(), spent, budget_usd=total, same_target=lambda: same_target(spent, total))


def test_a_resume_says_when_the_job_file_changed_after_the_launch(tmp_path):
    """The user edited the job file (fewer tokens) and resumed: the run trained its own copy, unsaid."""
    from orchestrator.cli.runs import changed_job_note

    job = tmp_path / "tiny.yaml"
    job.write_text("name: tiny\n", encoding="utf-8")
    record = ended_session(10.0, job_path=str(job))
    os.utime(job, (record.created_at - 60, record.created_at - 60))  # as it was when launched
    assert changed_job_note(record) is None
    os.utime(job, (record.created_at + 60, record.created_at + 60))  # edited since
    note = changed_job_note(record)
    assert note.startswith(f"note: {job} changed after run {record.run_id} was launched; a resume trains the run's "
                           f"own copy ({record.run_dir}/job.yaml)"), note
    job.unlink()
    assert changed_job_note(record) is None
