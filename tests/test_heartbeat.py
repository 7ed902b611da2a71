"""The trainer's heartbeat: a trainer killed without a word before its first step (while torch imports, the model
builds or the data is read) is charged to within a meter interval of its death, not to its last log line."""

import json
import os
import signal
import subprocess
import sys
import time

from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.runs.store import RunStore
from tests.test_budget import SLOW_IMPORT
from tests.test_runs_store import make_record
from trainer.heartbeat import HEARTBEAT_FILE, Heartbeat

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_heartbeat_touches_its_file_until_stopped(tmp_path):
    heartbeat = Heartbeat(interval_s=0.05)
    heartbeat.start(tmp_path / "out")
    path = tmp_path / "out" / HEARTBEAT_FILE
    deadline = time.time() + 30
    while not path.exists() and time.time() < deadline:
        time.sleep(0.01)
    first = path.stat().st_mtime_ns
    while path.stat().st_mtime_ns == first and time.time() < deadline:
        time.sleep(0.01)
    assert path.stat().st_mtime_ns > first  # touched again, not only once
    heartbeat.stop()
    last = path.stat().st_mtime_ns
    time.sleep(0.2)
    assert path.stat().st_mtime_ns == last  # stopped: nothing touches it any more


def test_a_trainer_beats_while_it_imports_before_any_step(tmp_path):
    """`python -m trainer` whose imports take a minute: its heartbeat is written and rewritten meanwhile (before, its
    output folder held nothing until the first step)."""
    output = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", SLOW_IMPORT, "examples/tiny.yaml", "--output", str(output)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        path, deadline = output / HEARTBEAT_FILE, time.time() + 60
        while not path.exists() and time.time() < deadline:
            time.sleep(0.1)
        first = path.stat().st_mtime
        while path.stat().st_mtime == first and time.time() < deadline:
            time.sleep(0.2)
        assert path.stat().st_mtime > first
        assert sorted(p.name for p in output.iterdir()) == [HEARTBEAT_FILE]  # no step yet: nothing else written
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_a_run_killed_before_its_first_step_is_charged_through_its_last_heartbeats_interval(monkeypatch, tmp_path):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    started = time.time() - 600
    run_dir = tmp_path / "runs" / "r-0a1b2c3d"
    (run_dir / "output").mkdir(parents=True)
    (run_dir / "train.log").write_text("loading the model\n")
    os.utime(run_dir / "train.log", (started + 5, started + 5))  # the last line it logged
    (run_dir / "output" / HEARTBEAT_FILE).touch()
    os.utime(run_dir / "output" / HEARTBEAT_FILE, (started + 90, started + 90))  # still building the model, killed
    record = make_record(run_dir, started_at=started, pid=999_999, usd_per_hour=3.6, budget_usd=1.0)
    assert record.output_dir == run_dir / "output"
    RunStore().insert(record)
    runs = json.loads(CliRunner().invoke(app, ["runs", "--json"]).stdout)
    # 90 s and the meter interval it may have lived on at $3.60/h, not 5 s
    assert runs[0]["status"] == "failed" and abs(runs[0]["cost_usd"] - 0.095) < 1e-4


def test_a_run_killed_mid_training_records_the_tokens_its_progress_shows(monkeypatch, tmp_path):
    """A trainer killed after some steps, with no metrics.json, was recorded with no tokens and no peak memory, though
    its progress.json (written every step) held them; an earlier session's progress.json is not this one's."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    started = time.time() - 600
    run_dir = tmp_path / "runs" / "r-0a1b2c3d"
    (run_dir / "output").mkdir(parents=True)
    progress = run_dir / "output" / "progress.json"
    progress.write_text(json.dumps({"step": 7, "planned_steps": 49, "loss": 3.2, "tokens_per_s": 900.0,
                                    "train_tokens": 7168, "peak_vram_gib": {"reserved": None,
                                                                            "process_rss": 1.25}}))
    os.utime(progress, (started + 60, started + 60))
    RunStore().insert(make_record(run_dir, started_at=started, pid=999_999, usd_per_hour=3.6, budget_usd=1.0))
    runs = json.loads(CliRunner().invoke(app, ["runs", "--json"]).stdout)
    assert runs[0]["status"] == "failed" and runs[0]["train_tokens"] == 7168 and runs[0]["peak_vram_gib"] == 1.25
    assert runs[0]["tokens_per_s"] is None and runs[0]["metrics"] is None  # one step's rate, and no metrics.json

    RunStore().update("r-0a1b2c3d", status="running", started_at=started + 120, ended_at=None, train_tokens=None,
                      peak_vram_gib=None)  # resumed, killed before its first step: the old progress is not its own
    runs = json.loads(CliRunner().invoke(app, ["runs", "--json"]).stdout)
    assert runs[0]["train_tokens"] is None


def test_a_local_launcher_that_died_before_the_trainer_is_charged_to_its_last_write_not_until_someone_looked(
        monkeypatch, tmp_path):
    """A run left `launching` with no trainer ended when somebody next looked: a week later, a week at its price."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    started = time.time() - 7 * 86_400
    run_dir = tmp_path / "runs" / "r-0a1b2c3d"
    run_dir.mkdir(parents=True)
    (run_dir / "job.yaml").write_text("name: tiny\n")
    os.utime(run_dir / "job.yaml", (started + 2, started + 2))  # staged, then the launcher was killed
    RunStore().insert(make_record(run_dir, status="launching", started_at=started, pid=None, usd_per_hour=3.6,
                                  budget_usd=1000.0))
    runs = json.loads(CliRunner().invoke(app, ["runs", "--json"]).stdout)
    assert runs[0]["status"] == "failed" and abs(runs[0]["cost_usd"] - 0.007) < 1e-4  # 2 s + 5 s at $3.60/h


def test_a_trainer_orch_launched_keeps_its_refusal_in_metrics_json_for_its_launcher(tmp_path):
    """A job refused before the model loads (a hub model not on this machine) ended an orch run as `failed`, exit 1,
    with no reason, where `orch train` says bad_config, exit 2: a detached launcher reads the end from metrics.json."""
    job = tmp_path / "job.yaml"
    job.write_text((open(os.path.join(REPO, "examples", "tiny.yaml")).read()
                    .replace("model: orch/tiny-llama", "model: meta-llama/Llama-3.2-1B")
                    .replace("dataset: data/", f"dataset: {REPO}/examples/data/")), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ORCH_RUN_ID": "r-0a1b2c3d"}
    launched = subprocess.run([sys.executable, "-m", "trainer", str(job), "--output", str(tmp_path / "out")],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert launched.returncode == 2, launched.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["status"] == "bad_config" and "meta-llama/Llama-3.2-1B" in metrics["message"]
    del env["ORCH_RUN_ID"]  # by hand: the one line on stderr says it, and no file is left behind
    by_hand = subprocess.run([sys.executable, "-m", "trainer", str(job), "--output", str(tmp_path / "hand")],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert by_hand.returncode == 2 and not (tmp_path / "hand").exists()


def test_a_job_file_an_orch_launched_trainer_cannot_read_is_still_a_recorded_refusal(tmp_path):
    """A queued job's copy the trainer refuses as it loads it (before its --output is checked) wrote no metrics.json:
    the scheduler counted the run failed and started it again."""
    job = tmp_path / "job.yaml"
    job.write_text("name: x\nmodel: orch/tiny-llama\nmethod: lora\n", encoding="utf-8")  # no seq_len
    env = {**os.environ, "ORCH_RUN_ID": "r-0a1b2c3d"}
    output = tmp_path / "run" / "output"  # the launcher's run folder is there, its output not yet
    output.parent.mkdir()
    launched = subprocess.run([sys.executable, "-m", "trainer", str(job), "--output", str(output)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert launched.returncode == 2, launched.stderr
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["status"] == "bad_config" and "seq_len" in metrics["message"]


def test_an_orch_launched_refusal_is_never_written_into_a_folder_of_a_users_own(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("name: x\nmodel: orch/tiny-llama\nmethod: lora\n", encoding="utf-8")  # refused as it loads
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    env = {**os.environ, "ORCH_RUN_ID": "r-0a1b2c3d"}
    for output in (mine, tmp_path / "missing" / "out", tmp_path / ("a" * 300)):  # the last: a name too long
        done = subprocess.run([sys.executable, "-m", "trainer", str(job), "--output", str(output)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"] and not (tmp_path / "missing").exists()


def test_a_refused_train_into_an_earlier_runs_output_leaves_its_heartbeat_as_it_was(tmp_path):
    """`orch train --output <a recorded run's output>` without --resume auto touched that run's heartbeat (its end
    moved to now) and then removed it, after loading torch; it is refused first now, and touches nothing."""
    job = tmp_path / "job.yaml"
    job.write_text(open(os.path.join(REPO, "examples", "tiny.yaml")).read().replace(
        "dataset: data/", f"dataset: {REPO}/examples/data/"), encoding="utf-8")
    output = tmp_path / "out"
    step = output / "checkpoints" / "step-00000002"
    step.mkdir(parents=True)
    (step / "state.json").write_text("{}")  # whole: it lists no file
    (output / "steps.jsonl").write_text("")
    (output / HEARTBEAT_FILE).touch()
    os.utime(output / HEARTBEAT_FILE, (1_000_000, 1_000_000))
    done = subprocess.run([sys.executable, "-m", "trainer", str(job), "--output", str(output)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "holds checkpoints of an earlier run" in done.stderr, done.stderr
    assert (output / HEARTBEAT_FILE).stat().st_mtime == 1_000_000


def test_a_heartbeat_stopped_on_a_refusal_removes_only_a_file_it_made(tmp_path):
    """An earlier session's file stays, with its times as they were: `--resume auto` refused once torch was loaded
    (the job changed since its checkpoint) moved that run's end to now."""
    (tmp_path / HEARTBEAT_FILE).touch()  # an earlier session's
    os.utime(tmp_path / HEARTBEAT_FILE, (1_000_000, 1_000_000))
    heartbeat = Heartbeat(interval_s=0.05)
    heartbeat.start(tmp_path)
    heartbeat.stop(clear=True)
    assert (tmp_path / HEARTBEAT_FILE).stat().st_mtime == 1_000_000
