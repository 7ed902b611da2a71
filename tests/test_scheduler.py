"""The queue and scheduler with real processes: two schedulers never start a job twice, and a killed scheduler (or
a killed trainer) loses no job."""

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.launch import lifecycle
from orchestrator.runs.store import RunStore
from orchestrator.schedule.scheduler import Scheduler
from tests.conftest import REPO
from tests.trainer_helpers import TINY_DATA, write_job
from trainer.random_model import train_tokenizer

runner = CliRunner()


def orch(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def jobs():
    return {j["job_id"]: j for j in json.loads(orch("queue", "--json").stdout)}


def scheduler_process(*args):
    """A scheduler as a terminal starts it: the `orch` program pip installed, and Ctrl-C (SIGINT) that stops it even
    where the tests themselves were started in the background by a shell, which starts them with SIGINT ignored, and
    Python then installs no handler for it. Not `python -m`: there CPython ends the process by SIGINT once a
    KeyboardInterrupt has left code run by `exec`, even one the loop then caught (4 of 39 Ctrl-Cs during a first pass
    on a loaded machine ended so; `exec` makes dataclasses and namedtuples, and the pass imports modules)."""
    return subprocess.Popen([Path(sys.executable).with_name("orch"), "scheduler", "run", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def until(predicate, timeout_s=600, step=None):
    """Wait for `predicate`; the timeout only guards a hang: a trainer subprocess on a loaded 2-core machine can take
    minutes."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if step:
            step()
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("timed out")


def submit_tiny(tmp_path, name, **changes):
    folder = tmp_path / name
    folder.mkdir()
    job = write_job(folder, name=name, **changes)
    return json.loads(orch("submit", job, "--budget", "1", "--json").stdout)["job_id"]


def queued_as_is(job: Path) -> str:
    """The job put in the queue without submit's checks, as one submitted while a target could still take it (a card
    since gone from the hardware file): `orch submit` refuses a job no target takes, so only the scheduler's own
    pass can reject it then."""
    from orchestrator.home import state_folder
    from orchestrator.job import load_job
    from orchestrator.launch import local
    from orchestrator.schedule.queue import JobQueue, new_job_id

    spec, job_id = load_job(job), new_job_id()
    folder = state_folder("jobs") / job_id
    folder.mkdir()
    JobQueue().submit(spec.name, local.run_job_file(job, folder).name, local.job_json(spec, job.parent), None,
                      None, 0, job_id)
    return job_id


def test_two_schedulers_start_each_job_exactly_once(tmp_path):
    cores = os.cpu_count() or 1
    count = min(3, cores)  # a job a slot, and as many slots as cores, the most a scheduler takes
    ids = [submit_tiny(tmp_path, f"job{i}", max_steps=2) for i in range(count)]
    slots = str(cores)
    first, second = scheduler_process("--once", "--cpu-slots", slots), scheduler_process("--once", "--cpu-slots", slots)
    assert first.wait(600) == 0 and second.wait(600) == 0, (first.stderr.read(), second.stderr.read())
    runs = RunStore().all()
    why = [(r.job_name, r.status.value, r.message) for r in runs], [(j["name"], j["reason"]) for j in jobs().values()]
    assert sorted(r.job_name for r in runs) == sorted(f"job{i}" for i in range(count)), why  # a run per job, no more
    assert {jobs()[i]["run_id"] for i in ids} == {r.run_id for r in runs}
    until(lambda: all(j["status"] == "done" for j in jobs().values()),
          step=lambda: orch("scheduler", "run", "--once", "--cpu-slots", slots))
    assert len(RunStore().all()) == count and {r.status for r in RunStore().all()} == {"ok"}


def test_a_killed_scheduler_and_trainer_lose_no_job(tmp_path):
    job_id = submit_tiny(tmp_path, "long", max_steps=40, save_every=2)
    scheduler = scheduler_process("--interval", "0.5")
    until(lambda: jobs()[job_id]["run_id"] is not None)
    run = RunStore().get(jobs()[job_id]["run_id"])
    until(lambda: os.path.exists(os.path.join(run.run_dir, "output", "checkpoints", "latest")))
    scheduler.kill()  # kill -9 the scheduler ...
    scheduler.wait()
    os.killpg(RunStore().get(run.run_id).pid, signal.SIGKILL)  # ... and the trainer, as a crashed machine would
    until(lambda: jobs()[job_id]["status"] == "done", step=lambda: orch("scheduler", "run", "--once"))
    (only_run,) = RunStore().all()
    assert only_run.run_id == run.run_id and only_run.status == "ok"  # the same run, resumed from its checkpoint
    with open(os.path.join(run.run_dir, "output", "metrics.json")) as metrics:
        assert json.load(metrics)["steps"] == 40
    assert "resumed from" in open(os.path.join(run.run_dir, "train.log")).read()


def test_a_run_that_survives_its_scheduler_is_reattached(tmp_path):
    job_id = submit_tiny(tmp_path, "steady", max_steps=6)
    scheduler = scheduler_process("--interval", "0.5")
    until(lambda: jobs()[job_id]["status"] == "running")
    scheduler.kill()
    scheduler.wait()
    until(lambda: jobs()[job_id]["run_status"] == "ok")  # `orch queue` shows the run's end before any pass records it
    assert jobs()[job_id]["status"] == "running" and "(ok)" in orch("queue").stdout
    until(lambda: jobs()[job_id]["status"] == "done", step=lambda: orch("scheduler", "run", "--once"))
    assert len(RunStore().all()) == 1


def test_cancel_a_queued_job_and_explain_rejections(tmp_path):
    job_id = submit_tiny(tmp_path, "cancel-me")
    cancelled = json.loads(orch("cancel", job_id[:6], "--json").stdout)
    assert cancelled["job"]["status"] == "cancelled" and cancelled["run_stop"] is None
    assert jobs()[job_id]["status"] == "cancelled"
    huge = tmp_path / "huge.yaml"
    huge.write_text(HUGE_JOB)
    refused = runner.invoke(app, ["submit", str(huge)])  # fits no GPU: the scheduler would only reject it
    assert refused.exit_code == 2 and "fits no GPU" in refused.stderr and "Nothing was queued" in refused.stderr
    huge_id = queued_as_is(huge)
    looping = runner.invoke(app, ["scheduler", "run", "--json"])  # a loop has no one document to print
    assert looping.exit_code == 2 and "give --once with it" in looping.stderr
    (decided,) = json.loads(orch("scheduler", "run", "--once", "--json").stdout)
    assert decided["job_id"] == huge_id and decided["action"] == "reject" and decided["status"] == "rejected"
    assert decided["run_id"] is None and "fits no GPU" in decided["reason"]
    assert jobs()[huge_id]["status"] == "rejected" and "fits no GPU" in jobs()[huge_id]["reason"]
    assert "fits no GPU" in " ".join(orch("queue", "--explain").stdout.split())
    result = runner.invoke(app, ["submit", str(huge), "--deadline", "-1"])
    assert result.exit_code == 2 and "--deadline must be above 0" in result.stderr


def test_a_job_id_given_for_a_run_is_told_so(tmp_path):
    """`orch logs j-...` said only "no run matching": the job's run, or that it has none yet, is named."""
    job_id = submit_tiny(tmp_path, "which")
    result = runner.invoke(app, ["logs", job_id])
    said = f"{job_id} is a job of the queue, not a run; it has no run (queued)"
    assert result.exit_code == 2 and said in result.stderr


def test_a_damaged_queued_job_is_rejected_and_the_pass_goes_on(tmp_path):
    """The queued copy of a job is read again when it starts: one that is no longer a job is rejected with the
    reason, and the jobs after it are still decided."""
    damage = {"not-utf8": b"\xff\xfebad", "empty": b"", "a-list": b"- a\n", "unknown-key": b"\nfoo: 1\n",
              "repeated-key": b"\nmethod: full\n"}
    ids = {}
    for name, content in damage.items():
        ids[name] = submit_tiny(tmp_path, name)
        copy = Path(jobs()[ids[name]]["job_path"])
        copy.write_bytes(copy.read_bytes() + content if name in ("unknown-key", "repeated-key") else content)
    ids["deleted"] = submit_tiny(tmp_path, "deleted")
    Path(jobs()[ids["deleted"]]["job_path"]).unlink()
    said = " ".join(orch("scheduler", "run", "--once").stdout.split())
    for name, job_id in ids.items():
        job = jobs()[job_id]
        assert job["status"] == "rejected" and job["reason"].endswith("Submit the job again."), (name, job)
        assert f"{job_id}: reject" in said, name
    assert RunStore().all() == []


def test_a_job_whose_dataset_broke_after_it_was_queued_is_rejected_before_a_local_start(tmp_path):
    """The scheduler checks a local start as `orch launch` does: a dataset emptied since the job was queued started a
    trainer that refused it, on a card metered from its first second."""
    folder = tmp_path / "broken"
    folder.mkdir()
    data = folder / "data.jsonl"
    data.write_bytes(TINY_DATA.read_bytes())
    job_id = json.loads(orch("submit", write_job(folder, name="broken", dataset=str(data)), "--budget", "1",
                             "--json").stdout)["job_id"]
    data.write_bytes(b"")
    orch("scheduler", "run", "--once")
    job = jobs()[job_id]
    assert job["status"] == "rejected" and "pre-flight: dataset" in job["reason"], job
    assert RunStore().all() == []


def test_a_queued_job_keeps_its_tokenizer_folder_wherever_the_scheduler_runs(tmp_path, monkeypatch):
    """The queue keeps the job with its tokenizer folder absolute; a job an older orch queued with a relative one
    that no longer resolves is rejected, and the scheduler goes on with the others."""
    folder = tmp_path / "with-tok"
    (folder / "tok").mkdir(parents=True)
    train_tokenizer(["hello world"] * 20, vocab_size=300).save_pretrained(folder / "tok")  # one submit loads
    job = write_job(folder, name="with-tok", tokenizer="./tok")
    job_id = json.loads(orch("submit", job, "--json").stdout)["job_id"]
    monkeypatch.chdir("/")
    assert jobs()[job_id]["job"]["tokenizer"] == str(folder / "tok")
    stored = json.dumps({**jobs()[job_id]["job"], "tokenizer": "./tok"})
    with closing(sqlite3.connect(Path.home() / ".local/share/orch/runs.db")) as db, db:
        db.execute("UPDATE jobs SET job_json = ? WHERE job_id = ?", (stored, job_id))
    other = tmp_path / "other.yaml"
    other.write_text(HUGE_JOB)
    other_id = queued_as_is(other)  # fits no GPU: decided, not started
    said = " ".join(orch("scheduler", "run", "--once").stdout.split())
    assert jobs()[job_id]["status"] == "rejected" and "'./tok' is no folder here" in jobs()[job_id]["reason"]
    assert f"{other_id}: " in said and RunStore().all() == []


def test_cancelling_a_running_job_stops_its_run_with_a_checkpoint(tmp_path):
    job_id = submit_tiny(tmp_path, "stop-me", max_steps=400, save_every=2)
    orch("scheduler", "run", "--once")
    run = RunStore().get(jobs()[job_id]["run_id"])
    until(lambda: os.path.exists(os.path.join(run.run_dir, "output", "checkpoints", "latest")))
    assert "checkpoints, then exits" in orch("cancel", job_id).stdout
    until(lambda: json.loads(orch("runs", "--json").stdout)[0]["status"] == "stopped")
    orch("scheduler", "run", "--once")
    assert jobs()[job_id]["status"] == "cancelled"  # the scheduler does not revive it


def test_a_job_claimed_while_another_pass_reconciles_stays_with_its_run(tmp_path, monkeypatch):
    """A pass that read the runs before another scheduler's claim and the jobs after it saw a running job without
    its run, put it back in the queue, and started it a second time (two schedulers, one job, two runs)."""
    from orchestrator.launch import lifecycle
    from orchestrator.schedule.queue import JobQueue, JobStatus
    from orchestrator.schedule.scheduler import Scheduler
    from tests.test_runs_store import make_record

    queue = JobQueue()
    job = queue.submit("j", "x.yaml", "{}", None, None, 0)
    refresh = lifecycle.refresh

    def refresh_then_another_scheduler_claims(store):
        runs = refresh(store)
        assert queue.claim(job.job_id, "another:1", make_record(tmp_path / "run"))
        return runs

    monkeypatch.setattr(lifecycle, "refresh", refresh_then_another_scheduler_claims)
    Scheduler(queue=queue).reconcile()
    assert queue.get(job.job_id).status is JobStatus.RUNNING


def test_cancel_of_a_run_id_says_what_stops_a_run():
    """`orch cancel r-...` said "no job matching", with no word of jobs and runs being two things."""
    from orchestrator.home import orch_home
    from orchestrator.runs.status import RunStatus
    from tests.test_runs_store import RUN_ID, make_record

    RunStore().insert(make_record(orch_home() / "runs" / RUN_ID, status=RunStatus.LAUNCHING))  # its start under way
    result = runner.invoke(app, ["cancel", RUN_ID[:6]])
    assert result.exit_code == 2 and f"is a run, not a job of the queue: `orch stop {RUN_ID[:6]}`" in result.stderr
    RunStore().update(RUN_ID, status="ok")  # an ended run: nothing for `orch stop` to do
    result = runner.invoke(app, ["cancel", RUN_ID])
    assert result.exit_code == 2 and "is a run, not a job of the queue: it ended ok, nothing to stop" in result.stderr


def test_a_pass_that_loses_a_jobs_claim_does_not_say_it_started_it(tmp_path, monkeypatch):
    """Two passes at once: the one whose claim lost still reported `start_local` of the job the other started."""
    from orchestrator.home import orch_home
    from orchestrator.schedule.queue import JobQueue
    from tests.test_runs_store import RUN_ID, make_record

    job_id = submit_tiny(tmp_path, "contested", max_steps=2)
    claim = JobQueue.claim

    def another_scheduler_claims_first(queue, *args):
        assert claim(queue, job_id, "another:1", make_record(orch_home() / "runs" / RUN_ID, pid=os.getpid()))
        return claim(queue, *args)

    monkeypatch.setattr(JobQueue, "claim", another_scheduler_claims_first)
    decided = Scheduler().run_once()
    assert job_id not in [job.job_id for job, _ in decided]
    assert JobQueue().get(job_id).run_id == RUN_ID and [run.run_id for run in RunStore().all()] == [RUN_ID]


def test_a_job_whose_start_lost_its_slot_says_it_waits_not_that_it_starts(tmp_path, monkeypatch):
    """A claim refused for a slot or the cap another scheduler took between this pass's read and its start left the
    queued job saying `start_local` until the next pass."""
    from orchestrator.schedule.queue import JobQueue
    from orchestrator.schedule.scheduler import LOST_ITS_START

    job_id = submit_tiny(tmp_path, "outrun", max_steps=2)
    monkeypatch.setattr(JobQueue, "claim", lambda queue, *args, **kwargs: False)  # the slot was taken meanwhile
    assert job_id not in [job.job_id for job, _ in Scheduler().run_once()]
    job = JobQueue().get(job_id)
    assert (job.status.value, job.decision, job.reason) == ("queued", "wait", LOST_ITS_START)
    assert RunStore().all() == []


def test_a_pass_whose_start_fails_says_so_in_that_pass(tmp_path, monkeypatch):
    """A launch that failed after its claim (no network, no capacity) was reported as a start, exit 0, and only the
    next pass told of the failure as it tried again."""
    from orchestrator.launch.local import LocalLauncher

    def no_trainer(launcher, record, *args):
        raise RuntimeError("the trainer's program is gone")

    job_id = submit_tiny(tmp_path, "unstartable", max_steps=2)
    monkeypatch.setattr(LocalLauncher, "start", no_trainer)
    decided = {job.job_id: decision for job, decision in Scheduler().run_once()}
    assert decided[job_id].reason.endswith("its start failed (could not start the trainer: RuntimeError: the "
                                           "trainer's program is gone): the next pass tries again"), decided[job_id]
    assert [run.status.value for run in RunStore().all()] == ["failed"]
    from orchestrator.schedule.queue import JobQueue

    last_id = submit_tiny(tmp_path, "last-try", max_steps=2)
    JobQueue().update(last_id, attempts=2)  # two failed before: this start is its last
    decided = {job.job_id: decision for job, decision in Scheduler().run_once()}
    assert decided[last_id].reason.endswith("that was its last of 3 attempts: the next pass records the job failed")


# rejected by a scheduler's pass, never trains; whole jobs as submit's pre-flight asks (a hub id, a dataset): one
# that fits no GPU (submit refuses it), and one every cloud refuses without HF_TOKEN and this CPU cannot hold
HUGE_JOB = f"model: meta-llama/Llama-3.1-70B\nmethod: full\nseq_len: 8192\ntrain_tokens: 1000000\ndataset: {TINY_DATA}"
GATED_JOB = (f"model: meta-llama/Llama-3.1-8B\nmethod: qlora\nseq_len: 2048\ntrain_tokens: 1000000\n"
             f"dataset: {TINY_DATA}\n")
NO_SCHEDULER = "no scheduler is running: `orch scheduler run` places it (`--once`: one pass)"


def test_submit_says_when_every_cloud_would_refuse_the_job(tmp_path, monkeypatch):
    """A gated model without HF_TOKEN was queued in silence, and the scheduler's pass rejected it for good once no
    card of this machine could take it."""
    gated = tmp_path / "gated.yaml"
    gated.write_text(GATED_JOB)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    said = " ".join(orch("submit", gated, "--budget", "20").stderr.split())
    assert "note: every cloud would refuse this job now (meta-llama/Llama-3.1-8B is gated" in said
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    assert "every cloud would refuse" not in orch("submit", gated, "--budget", "20").stderr


def test_submit_says_how_to_place_the_job_when_no_scheduler_is_running(tmp_path, monkeypatch):
    """`orch submit` said only `queued j-...`, and with no scheduler running nothing ever placed the job."""
    import socket

    gated = tmp_path / "gated.yaml"
    gated.write_text(GATED_JOB)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    said = orch("submit", gated).stdout.strip()
    assert said.startswith("queued j-") and said.endswith(NO_SCHEDULER), said
    queue = " ".join(orch("queue").stdout.split())
    assert "1 queued; no scheduler is running: `orch scheduler run` places it" in queue, queue
    marks = Path.home() / ".local/share/orch/schedulers"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    marks.mkdir()
    (marks / f"{socket.gethostname()}:{dead.pid}").touch()  # a killed scheduler's mark: its process is gone
    assert orch("submit", gated).stdout.strip().endswith(NO_SCHEDULER)
    looping = scheduler_process("--interval", "3600")
    try:
        until(lambda: len(list(marks.iterdir())) == 2, timeout_s=60)
        said = orch("submit", gated).stdout.strip()
        assert said.startswith("queued j-") and "scheduler" not in said, said
    finally:
        looping.send_signal(signal.SIGINT)
        assert looping.wait(600) == 0, looping.stderr.read()
    assert [m.name for m in marks.iterdir()] == [f"{socket.gethostname()}:{dead.pid}"]  # a stopped one's mark goes
    terminated = scheduler_process("--interval", "3600")  # `kill`, a service manager's stop: as Ctrl-C
    until(lambda: len(list(marks.iterdir())) == 2, timeout_s=60)
    terminated.send_signal(signal.SIGTERM)
    assert terminated.wait(600) == 0, terminated.stderr.read()
    assert [m.name for m in marks.iterdir()] == [f"{socket.gethostname()}:{dead.pid}"]


def test_queue_says_a_running_jobs_run_has_ended_until_a_pass_records_it(tmp_path):
    """After `orch scheduler run --once`, `orch queue` showed the job `running` beside its ended run for as long as
    anyone watched: only a pass records the outcome, and the queue now says so and how."""
    job_id = submit_tiny(tmp_path, "ends", max_steps=2)
    orch("scheduler", "run", "--once")
    until(lambda: jobs()[job_id]["run_status"] == "ok")
    assert jobs()[job_id]["status"] == "running"  # the queue reads; it never writes a job's status
    said = " ".join(orch("queue").stdout.split())
    assert f"{job_id}: its run has ended; no scheduler is running: `orch scheduler run --once` records its " \
           "outcome" in said, said
    orch("scheduler", "run", "--once")
    assert jobs()[job_id]["status"] == "done" and "has ended" not in orch("queue").stdout


def test_a_job_without_a_budget_says_the_default_and_the_budget_its_run_got(tmp_path):
    """Without --budget the scheduler gives the run twice its estimate as a budget stop, and at least 15 minutes of
    its price past it (a tiny job's estimate is mostly start-up, which load stretches); neither --help nor the queue
    said so (queue --json showed budget_usd null), so a slow tiny run could be budget-stopped unforeseen."""
    helped = " ".join(orch("submit", "--help").stdout.replace("│", " ").split())
    assert "default: 2x the estimate, at least 15 min past it, on the target" in helped
    folder = tmp_path / "nobudget"
    folder.mkdir()
    job_id = json.loads(orch("submit", write_job(folder, name="nobudget", max_steps=2), "--json").stdout)["job_id"]
    assert jobs()[job_id]["run_budget_usd"] is None
    explained = " ".join(orch("queue", "--explain").stdout.split())
    assert "budget 2x the estimate, at least 15 min past it, on the target it starts on" in explained
    # before any pass: said, not a bare `-`
    assert "; no scheduler pass has decided it yet (`orch scheduler run --once` makes one)" in explained
    orch("scheduler", "run", "--once")
    until(lambda: jobs()[job_id]["run_status"] == "ok")
    (run,) = RunStore().all()
    assert jobs()[job_id]["budget_usd"] is None and jobs()[job_id]["run_budget_usd"] == run.budget_usd > 0
    assert "(2x the estimate, at least 15 min past it)" in " ".join(orch("queue", "--explain").stdout.split())
    assert math.isclose(run.budget_usd, run.est_cost_usd + 0.25 * run.usd_per_hour)  # a tiny job: the 15 minutes
    RunStore().update(run.run_id, budget_usd=0.01)  # as `orch resume --budget 0.01` raises it: not the rule's then
    explained = " ".join(orch("queue", "--explain").stdout.split())
    assert "$0.010" in explained and "(2x the estimate" not in explained


def test_once_says_what_it_did_to_jobs_in_flight(tmp_path):
    """`scheduler run --once --json` listed queued jobs' decisions only: a pass that resumed a run (a trainer started,
    spending) or finished a job said nothing of it."""
    folder = tmp_path / "flight"
    folder.mkdir()
    job_id = json.loads(orch("submit", write_job(folder, name="flight", max_steps=2), "--json").stdout)["job_id"]
    orch("scheduler", "run", "--once")
    until(lambda: jobs()[job_id]["run_status"] == "ok")
    (done,) = json.loads(orch("scheduler", "run", "--once", "--json").stdout)
    assert (done["job_id"], done["action"], done["status"]) == (job_id, "done", "done"), done
    assert done["reason"].startswith("run r-") and done["reason"].endswith(" finished")


@pytest.mark.parametrize("ended", ["failed", "cancelled"])
def test_a_failed_job_whose_run_the_user_resumed_to_its_end_is_done(tmp_path, ended):
    """A budget-stopped job stayed `failed` in the queue after `orch resume` finished its run; a stopped one
    stayed `cancelled`."""
    from orchestrator.schedule.queue import JobQueue, JobStatus
    from orchestrator.schedule.scheduler import Scheduler

    folder = tmp_path / "resumed"
    folder.mkdir()
    job_id = json.loads(orch("submit", write_job(folder, name="resumed", max_steps=2), "--json").stdout)["job_id"]
    orch("scheduler", "run", "--once")
    until(lambda: jobs()[job_id]["run_status"] == "ok")
    queue = JobQueue()
    queue.update(job_id, status=JobStatus(ended), reason="run ended")  # as its first session ended
    Scheduler(queue=queue).reconcile()
    assert queue.get(job_id).status is JobStatus.DONE and "(resumed)" in queue.get(job_id).reason


def test_a_job_bound_for_a_cloud_passes_pre_flight_before_any_start(sky, tmp_path):
    """`orch launch` refuses flash-attention for a cloud VM before buying one; the scheduler started such a job on a
    cloud without asking (only the missing storage cloud here stopped the launch)."""
    folder = tmp_path / "fa"
    folder.mkdir()
    job = write_job(folder, name="fa", model="Qwen/Qwen2.5-0.5B", attention="flash_attention_2",
                    train_tokens=100_000_000, max_steps=None)
    refused = runner.invoke(app, ["submit", str(job), "--budget", "50"])  # no target can run it
    assert refused.exit_code == 2 and "needs flash-attn" in refused.stderr
    job_id = queued_as_is(job)
    said = " ".join(orch("scheduler", "run", "--once", "--cpu-slots", "0").stdout.split())
    assert jobs()[job_id]["status"] == "rejected", said
    assert "attention flash_attention_2 needs flash-attn, which a cloud VM's setup" in jobs()[job_id]["reason"]
    assert RunStore().all() == []


def no_storage_cloud(monkeypatch):
    """SkyPilot enables no storage cloud orch can use (Lambda alone), as test_skypilot fakes it: only the cached list
    SkyPilot's own check reads is replaced."""
    from sky.data import storage as storage_lib

    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: ["Lambda"])


def launches(monkeypatch) -> list:
    """The options the scheduler starts runs on; nothing is launched."""
    started = []
    monkeypatch.setattr(lifecycle, "start", lambda store, record, option=None, device=None: started.append(option)
                        or record)
    return started


def test_orch_launch_passes_over_a_spot_offer_it_would_refuse(sky, tmp_path, monkeypatch):
    """`orch launch --yes` chose a spot offer with no storage cloud enabled for its checkpoints, then refused it: the
    plan it acts on leaves such offers out, with the launch's reason, and an on-demand offer is started."""
    no_storage_cloud(monkeypatch)
    started = []  # the options launch starts a run on; nothing is launched, the run stays as recorded
    monkeypatch.setattr(lifecycle, "start", lambda store, record, option: started.append(option) or record)
    folder = tmp_path / "spot"
    folder.mkdir()
    job = write_job(folder, name="spot", max_steps=5)
    result = runner.invoke(app, ["launch", str(job), "--budget", "1", "--target", "cloud", "--yes", "--detach",
                                 "--json"])
    plan = json.loads(result.stdout)["plan"]  # the run, never started here, exits as a run that did not end ok
    assert not plan["chosen"]["spot"] and [option.offer.spot for option in started] == [False]
    assert any("SkyPilot has no storage cloud enabled here" in r["reason"] for r in plan["rejected"])


def test_a_spot_offer_the_launch_would_refuse_is_passed_over(sky, tmp_path, monkeypatch):
    """The scheduler picked a spot T4 on Azure with no storage cloud enabled for its checkpoints: `orch launch`
    refused it up front on every pass, and the job failed after 3 attempts. The on-demand offer is picked, saying why;
    with a budget only the refused spot offer meets, the job is rejected with the launch's reason."""
    no_storage_cloud(monkeypatch)
    no_cpu_target(monkeypatch)  # else the tight job waits for a scheduler that gives the CPU a slot
    started = launches(monkeypatch)
    folder = tmp_path / "spot"
    folder.mkdir()
    job = write_job(folder, name="spot", max_steps=5)
    roomy = json.loads(orch("submit", job, "--budget", "1", "--deadline", "1", "--json").stdout)["job_id"]
    tight = json.loads(orch("submit", job, "--budget", "0.115", "--deadline", "1", "--json").stdout)["job_id"]
    decided = {job.job_id: decision for job, decision in Scheduler(cpu_slots=0).run_once()}
    chosen = decided[roomy]
    assert chosen.action == "start_cloud" and not chosen.option.offer.spot, chosen.reason
    assert "on-demand (not spot: a spot run on azure keeps its checkpoints in a bucket" in chosen.reason
    assert [option.offer for option in started] == [chosen.option.offer]
    assert jobs()[tight]["status"] == "rejected" and "\n" not in jobs()[tight]["reason"]
    assert "SkyPilot has no storage cloud enabled here" in jobs()[tight]["reason"]
    assert jobs()[tight]["reason"].endswith("no other cloud offer meets the job's budget and deadline")


def no_cpu_target(monkeypatch):
    """The targets without this machine's CPU, as on a machine the CPU offer left: what is left is the clouds'."""
    import dataclasses

    from orchestrator.schedule import scheduler

    gathered = scheduler.gather_targets
    monkeypatch.setattr(scheduler, "gather_targets", lambda: dataclasses.replace(
        targets := gathered(), offers=tuple(o for o in targets.offers if o.gpu.kind != "cpu")))


def test_a_job_only_the_cpu_takes_waits_while_a_scheduler_gives_the_cpu_no_slot(tmp_path, monkeypatch):
    """A pass with --cpu-slots 0 rejected a tiny job the CPU would train ("no local card; no target meets the
    budget"), and a rejection is final: a scheduler with a CPU slot never started it. It waits, saying for what."""
    started = []  # nothing is trained: the run stays as recorded
    monkeypatch.setattr(lifecycle, "start", lambda store, record, option, device: started.append(option) or record)
    job = write_job(tmp_path, name="tiny", max_steps=5)
    job_id = json.loads(orch("submit", job, "--budget", "0.001", "--json").stdout)["job_id"]  # no cloud's
    said = " ".join(orch("scheduler", "run", "--once", "--cpu-slots", "0").stdout.split())
    reason = jobs()[job_id]["reason"]
    assert jobs()[job_id]["status"] == "queued" and reason in said, said
    assert reason.startswith("only the local CPU takes it (fits locally: free local CPU"), reason
    assert reason.endswith("(--cpu-slots 0): a scheduler with --cpu-slots 1 starts it"), reason
    assert started == [] and RunStore().all() == []
    (_, decision), = Scheduler(cpu_slots=1).run_once()
    assert decision.action == "start_local" and [o.offer.gpu.kind for o in started] == ["cpu"], decision.reason


class RefusingLauncher:
    """Refuses every launch before any request, as a launcher's pre-flight does (a UserError), or fails it as a
    cloud would (anything else)."""

    def __init__(self, error: Exception):
        self.error = error

    def start(self, record, option, device, on_fact):
        raise self.error


def test_a_launch_refused_for_a_setting_rejects_the_job_at_once_and_a_fault_is_retried(sky, tmp_path, monkeypatch):
    """A launch refused up front (a UserError) was retried as a transient fault: three runs, refused alike, before the
    job failed. It is rejected on the first refusal with the launch's words; a cloud's fault is still retried."""
    from gpu_catalog.errors import UserError

    refused_id = submit_tiny(tmp_path, "refused", max_steps=5)
    monkeypatch.setattr(lifecycle, "launcher_for", lambda target: RefusingLauncher(UserError("no way: fix X.")))
    (_, decision), = Scheduler(cpu_slots=0).run_once()
    assert decision.action == "reject" and decision.reason == "the launch refused it: no way: fix X."
    job = jobs()[refused_id]
    assert job["status"] == "rejected" and job["reason"] == decision.reason
    (run,) = RunStore().all()
    assert run.run_id == job["run_id"] and run.status == "failed" and run.message == "no way: fix X."
    Scheduler(cpu_slots=0).run_once()
    assert len(RunStore().all()) == 1 and jobs()[refused_id]["status"] == "rejected"

    faulty_id = submit_tiny(tmp_path, "faulty", max_steps=5)
    monkeypatch.setattr(lifecycle, "launcher_for", lambda target: RefusingLauncher(RuntimeError("no capacity")))
    Scheduler(cpu_slots=0).run_once()
    Scheduler(cpu_slots=0).run_once()  # reconciles the failed run: the job is queued again, and tried again
    job = jobs()[faulty_id]
    assert job["attempts"] == 1 and job["status"] == "running", job
    assert len([r for r in RunStore().all() if r.job_name == "faulty"]) == 2


def test_a_job_whose_deadline_passed_runs_late_on_a_local_card_or_is_rejected_saying_so(tmp_path, monkeypatch):
    """A job left queued past its deadline was rejected with `--deadline must be above 0 hours, got -0.00033...`:
    a flag the scheduler's user never gave, and a raw float; and one a pass had said would run late on the busy CPU
    ("late is better than never") was rejected by the next, as its deadline had passed. It keeps to the policy's
    last rule, late on a local card, and is rejected, saying the deadline passed and what to do, only where no
    local card takes it."""
    from orchestrator.schedule import scheduler
    from orchestrator.schedule.policy import Decision
    from orchestrator.schedule.queue import JobQueue

    folder = tmp_path / "late"
    folder.mkdir()
    job_id = json.loads(orch("submit", write_job(folder, name="late"), "--deadline", "1", "--json").stdout)["job_id"]
    JobQueue().update(job_id, deadline_at=time.time() - 200)  # its deadline passed 3 min ago
    said = " ".join(orch("scheduler", "run", "--once", "--cpu-slots", "0").stdout.split())
    reason = jobs()[job_id]["reason"]
    assert jobs()[job_id]["status"] == "queued" and reason.startswith("its deadline passed 3 min ago, and late on a "
                                                                      "local card is better than never: "), reason
    assert "only the local CPU takes it" in reason and "--deadline must be" not in said and reason in said
    monkeypatch.setattr(scheduler, "decide", lambda *args, **kwargs: Decision("reject", "fits no local card"))
    orch("scheduler", "run", "--once", "--cpu-slots", "0")
    reason = jobs()[job_id]["reason"]
    assert jobs()[job_id]["status"] == "rejected" and reason.startswith("its deadline passed 3 min before"), reason
    assert reason.endswith(" min before a target was chosen: submit it again with a later --deadline."), reason


def test_submit_refuses_a_deadline_under_a_minute():
    """`orch submit --deadline 0.0003` (about a second) was queued, to be rejected by the first pass."""
    for deadline in ("0.0003", "1e-300", "0.0166"):
        result = runner.invoke(app, ["submit", str(REPO / "examples" / "tiny.yaml"), "--deadline", deadline])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert lines[0].startswith("error: --deadline ") and lines[0].endswith(
            " s is under a minute, too soon for any job to be placed and started: give at least 1 min."), lines[0]
    assert runner.invoke(app, ["queue", "--json"]).stdout.strip() == "[]"


def test_a_job_claimed_between_cancels_read_and_write_has_its_run_stopped(tmp_path, monkeypatch):
    """cancel read the job queued, a scheduler claimed it, and cancel's write then marked it cancelled with no run to
    stop: the run trained on, unwatched."""
    from orchestrator.home import orch_home
    from orchestrator.schedule.queue import JobQueue, JobStatus
    from tests.test_runs_store import make_record

    queue = JobQueue()
    job = queue.submit("j", "x.yaml", "{}", None, None, 0)
    find = JobQueue.find

    def find_then_a_scheduler_claims(self, text):
        found = find(self, text)
        run_dir = orch_home() / "runs" / "r-0000cafe"
        assert queue.claim(job.job_id, "another:1", make_record(run_dir, run_id="r-0000cafe"))
        return found

    stopped = []
    monkeypatch.setattr(JobQueue, "find", find_then_a_scheduler_claims)
    monkeypatch.setattr(lifecycle, "request_stop", lambda store, run: stopped.append(run.run_id) or "stopping")
    result = runner.invoke(app, ["cancel", job.job_id])
    assert result.exit_code == 0, result.output
    assert queue.get(job.job_id).status is JobStatus.CANCELLED and stopped == ["r-0000cafe"]


@pytest.mark.parametrize("as_json", [False, True])
def test_cancelling_a_job_whose_run_ended_unseen_cancels_it_and_says_how_the_run_ended(tmp_path, as_json):
    """Its run, recorded `running`, had a trainer that died unseen: the stop is refused (the run is `failed`, not
    stopped by the user) and the cancel still holds. The JSON says so as data: its `run_stop` was the sentence."""
    from orchestrator.home import orch_home
    from orchestrator.schedule.queue import JobQueue, JobStatus
    from tests.test_runs_store import make_record

    queue = JobQueue()
    job = queue.submit("j", "x.yaml", "{}", None, None, 0)
    run_dir = orch_home() / "runs" / "r-0000cafe"
    (run_dir / "output").mkdir(parents=True)
    assert queue.claim(job.job_id, "another:1", make_record(run_dir, run_id="r-0000cafe", pid=999999))
    result = runner.invoke(app, ["cancel", job.job_id, *(["--json"] if as_json else [])])
    assert result.exit_code == 0, result.output
    if as_json:
        assert json.loads(result.stdout)["run_stop"] == {"run_id": "r-0000cafe", "stop": "already_ended",
                                                         "run_status": "failed"}
    else:
        assert "r-0000cafe is not running (status failed)" in result.stdout and f"cancelled {job.job_id}" in \
            result.stdout
    assert queue.get(job.job_id).status is JobStatus.CANCELLED and RunStore().get("r-0000cafe").status == "failed"


def test_queue_explain_shows_a_jobs_deadline():
    """`orch submit --deadline 2h` kept it, and neither the queue's table nor --explain showed it anywhere."""
    import time

    from orchestrator.schedule.queue import JobQueue

    due = {time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() + 2 * 3600))}
    JobQueue().submit("soon", "x.yaml", "{}", 5.0, 2.0, 0)
    JobQueue().submit("late", "y.yaml", "{}", 5.0, -1.0, 0)
    due.add(time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() + 2 * 3600)))  # a minute may turn meanwhile
    explained = " ".join(orch("queue", "--explain").stdout.split())
    assert any(f"budget $5.00, deadline {at}" in explained for at in due) and "(passed)" in explained, explained


def test_jobs_sharing_the_cpu_each_train_on_and_pay_for_their_share(tmp_path, monkeypatch):
    """`--cpu-slots 4` on 8 cores: each job is planned, priced and trained on 2 of them (its run's job file says
    `cpu_threads: 2`, so a resume trains on the same share). Each of them ran on every core at the whole CPU's price."""
    import yaml

    from gpu_catalog.targets import gather_targets

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    job_id = submit_tiny(tmp_path, "shared", max_steps=2)
    cpu = next(o for o in gather_targets().offers if o.gpu.kind == "cpu")
    Scheduler(cpu_slots=4).run_once()
    run, = RunStore().all()
    assert run.gpu == "CPU" and run.usd_per_hour == pytest.approx(cpu.usd_per_hour / 4)
    assert yaml.safe_load((Path(run.run_dir) / "job.yaml").read_text())["cpu_threads"] == 2
    assert json.loads(run.job_json)["cpu_threads"] == 2
    until(lambda: jobs()[job_id]["status"] == "done", step=lambda: Scheduler(cpu_slots=4).run_once())
    assert json.loads(RunStore().get(run.run_id).metrics_json)["cpu_threads"] == 2


def test_a_job_submitted_twice_says_so(tmp_path):
    """A script run twice queued the job twice, with no word, and it trained (and was paid for) twice."""
    job = write_job(tmp_path, name="twice", max_steps=2)
    first = json.loads(orch("submit", job, "--json").stdout)["job_id"]
    second = orch("submit", job, "--json")
    again = json.loads(second.stdout)["job_id"]
    assert f"note: {first} is the same job, queued: `orch cancel {again}` if this one was a mistake." in second.stderr
    # claimed, its run ended, and no scheduler pass has recorded it yet: the job still says running
    from orchestrator.home import orch_home
    from orchestrator.runs.status import RunStatus
    from orchestrator.schedule.queue import JobQueue
    from tests.test_runs_store import make_record

    orch("cancel", again)
    ended = make_record(orch_home() / "runs" / "r-0a1b2c3d", run_id="r-0a1b2c3d", status=RunStatus.OK)
    assert JobQueue().claim(first, "a scheduler", ended)
    third = orch("submit", job)
    assert f"note: {first} is the same job, its run ended ok: `orch cancel " in " ".join(third.stderr.split())
    (tmp_path / "other").mkdir()
    other = write_job(tmp_path / "other", name="twice", max_steps=3)  # another job of that name: no twin
    assert "same job" not in orch("submit", other).stderr


def test_cancelling_a_job_whose_run_already_finished_says_it_is_done(tmp_path):
    """`orch cancel` said "cancelled" of a job whose run had ended ok, and the next pass called it done "(resumed)"."""
    folder = tmp_path / "finished"
    folder.mkdir()
    job_id = json.loads(orch("submit", write_job(folder, name="finished", max_steps=2), "--json").stdout)["job_id"]
    orch("scheduler", "run", "--once")
    until(lambda: jobs()[job_id]["run_status"] == "ok")
    result = runner.invoke(app, ["cancel", job_id])
    assert result.exit_code == 2 and "already finished ok: the job is done, nothing to cancel" in result.stderr
    assert jobs()[job_id]["status"] == "done" and "(resumed)" not in jobs()[job_id]["reason"]


def test_an_on_demand_offer_whose_output_would_idle_past_the_budget_is_passed_over(sky, tmp_path, monkeypatch):
    """With no storage cloud enabled, an on-demand run on a cloud priced with a bucket keeps its output on the VM,
    which idles an hour more: the scheduler picked it, its task was refused, and the job was rejected though another
    offer fit the budget. The next offer the budget covers is started, saying why; `orch launch` does the same."""
    from sky.data import storage as storage_lib

    from orchestrator.delivery import delivery_for
    from orchestrator.launch.sky_storage import launch_delivery

    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: [])
    started = launches(monkeypatch)
    folder = tmp_path / "idle"
    folder.mkdir()
    job = write_job(folder, name="idle", max_steps=5)
    roomy = json.loads(orch("submit", job, "--budget", "5", "--json").stdout)["job_id"]
    (_, first), = Scheduler(cpu_slots=0).run_once()
    assert first.action == "start_cloud", first.reason

    def on_the_vm_usd(option):
        planned = delivery_for(option.offer)
        return option.estimate.cost_usd + launch_delivery(planned, option.offer.provider)[0].idle_usd_past(
            planned, option.offer.usd_per_hour)

    assert on_the_vm_usd(first.option) > first.option.estimate.cost_usd  # its output stays on the VM, idling
    budget = (first.option.estimate.cost_usd + on_the_vm_usd(first.option)) / 2
    orch("cancel", roomy)
    tight = json.loads(orch("submit", job, "--budget", str(budget), "--json").stdout)["job_id"]
    (_, decision), = Scheduler(cpu_slots=0).run_once()
    assert decision.action == "start_cloud", decision.reason
    assert decision.option.offer != first.option.offer and on_the_vm_usd(decision.option) <= budget
    assert f"not {first.option.offer.provider} {first.option.offer.region}: with no storage cloud enabled here" \
        in decision.reason
    assert [option.offer for option in started] == [first.option.offer, decision.option.offer]
    assert jobs()[tight]["status"] == "running"


def test_a_job_without_a_budget_gets_a_stop_that_covers_the_idle_hour_its_launch_will_pay(sky, tmp_path,
                                                                                           monkeypatch):
    """With no storage cloud enabled, a job queued without --budget got its budget stop from the plan's cost (a
    bucket, 5 idle minutes); its launch kept the output on the VM, idling up to an hour, refused that stop ("raise
    --budget to at least ..."), and the job was rejected for good, though the user set no budget at all."""
    from sky.data import storage as storage_lib

    from orchestrator.delivery import delivery_for
    from orchestrator.launch.sky_storage import launch_delivery
    from orchestrator.schedule.queue import unbudgeted_usd

    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: [])
    no_cpu_target(monkeypatch)
    budgets = []
    monkeypatch.setattr(lifecycle, "start", lambda store, record, option=None, device=None:
                        budgets.append(record.budget_usd) or record)
    folder = tmp_path / "open"
    folder.mkdir()
    orch("submit", write_job(folder, name="open", max_steps=5), "--json")
    (_, decision), = Scheduler(cpu_slots=0).run_once()
    assert decision.action == "start_cloud" and not decision.option.offer.spot, decision.reason
    offer, planned = decision.option.offer, delivery_for(decision.option.offer)
    idle_usd = launch_delivery(planned, offer.provider)[0].idle_usd_past(planned, offer.usd_per_hour)
    assert idle_usd > 0  # its output stays on the VM
    assert budgets == [pytest.approx(unbudgeted_usd(decision.option.estimate.cost_usd + idle_usd, offer.usd_per_hour))]


def test_under_a_monthly_cap_a_job_without_a_budget_starts_only_where_the_cap_covers_its_idle_hour(sky, tmp_path,
                                                                                                    monkeypatch):
    """Its budget stop is what the cap leaves, at most; the launch checks that against the VM's idle hour, while the
    choice checked it against the job's own budget (none): an offer the cap could not cover was started, refused,
    and the job rejected for good."""
    from sky.data import storage as storage_lib

    from orchestrator.launch.sky_storage import idle_usd_past_plan

    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: [])
    no_cpu_target(monkeypatch)
    started = []
    monkeypatch.setattr(lifecycle, "start", lambda store, record, option=None, device=None:
                        started.append((record.budget_usd, option)) or record)
    folder = tmp_path / "open"
    folder.mkdir()
    orch("submit", write_job(folder, name="open", max_steps=5), "--json")
    (_, first), = Scheduler(cpu_slots=0).run_once()
    cost_usd, idle_usd = first.option.estimate.cost_usd, idle_usd_past_plan(first.option.offer)
    assert idle_usd > 0
    folder = tmp_path / "open2"
    folder.mkdir()
    orch("submit", write_job(folder, name="open2", max_steps=5), "--json")
    cap_usd = started[0][0] + cost_usd + idle_usd / 2  # what the first run holds, and less than this one needs
    (_, decision), = Scheduler(cpu_slots=0, monthly_cap_usd=cap_usd).run_once()
    for budget_usd, option in started[1:]:
        assert budget_usd >= option.estimate.cost_usd + idle_usd_past_plan(option.offer), decision.reason
    assert decision.action != "start_cloud" or decision.option.offer != first.option.offer, decision.reason
