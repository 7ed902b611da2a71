"""`orch launch` on the embedded default: the local target (this CPU), the SQLite runs store, the tiny model."""

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.runs.store import RunRecord, RunStore
from tests.conftest import REPO, go_offline
from tests.trainer_helpers import write_job

runner = CliRunner()


def orch(*args):
    return runner.invoke(app, [str(a) for a in args])


def runs_json():
    result = orch("runs", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def launched(tmp_path_factory, shared_cache):
    """One launch of a 6-step job, for the tests that only read what it recorded: (its HOME, the launch's JSON)."""
    folder = tmp_path_factory.mktemp("launched")
    with pytest.MonkeyPatch.context() as patch:
        go_offline(patch, folder, shared_cache)
        result = orch("launch", write_job(folder, max_steps=6), "--budget", "0.05", "--target", "local", "--yes",
                      "--json")
    assert result.exit_code == 0, result.output
    return folder / "home", json.loads(result.stdout)["run"]


@pytest.fixture
def launched_run(launched, monkeypatch) -> dict:
    home, run = launched
    monkeypatch.setenv("HOME", str(home))
    return run


def test_launch_trains_locally_and_records_estimate_and_measurement(launched_run):
    run = launched_run
    assert run["status"] == "ok" and run["gpu"] == "CPU" and run["target"] == "local"
    (recorded,) = runs_json()
    assert recorded["run_id"] == run["run_id"]
    assert recorded["est_tokens_per_s"] > 0 and recorded["tokens_per_s"] > 0  # estimate and reality side by side
    assert recorded["est_cost_usd"] >= 0 and 0 <= recorded["cost_usd"] <= 0.05
    assert recorded["metrics"]["steps"] == 6 and recorded["train_tokens"] == recorded["metrics"]["train_tokens"]


def test_nothing_launches_over_budget(tmp_path):
    result = orch("launch", write_job(tmp_path), "--budget", "0.0000001", "--yes")
    assert result.exit_code == 2
    assert "no target meets the $0.00000010 budget: the cheapest is CPU on local" in " ".join(result.stderr.split())
    assert runs_json() == []


def test_a_local_launch_whose_tracker_is_not_installed_starts_no_trainer(tmp_path, monkeypatch):
    """`report_to` without its package here: the trainer refused it only once started, on a metered card."""
    from trainer import trackers

    monkeypatch.setitem(trackers.EXTRAS, "tensorboard", "orch_no_such_package")  # whether or not it is installed
    result = orch("launch", write_job(tmp_path, report_to="tensorboard"), "--budget", "1", "--yes")
    assert result.exit_code == 2, result.output
    assert "pre-flight: report_to tensorboard needs the orch_no_such_package package" in result.stderr
    assert runs_json() == []


def test_launching_without_a_terminal_needs_yes(tmp_path):
    result = orch("launch", write_job(tmp_path), "--budget", "1", "--target", "local")
    assert result.exit_code == 2 and "pass --yes" in result.stderr


def test_dry_run_launches_nothing(tmp_path):
    result = orch("launch", write_job(tmp_path), "--budget", "1", "--target", "local", "--dry-run")
    assert result.exit_code == 0 and "nothing launched" in result.stderr  # stdout is kept for the task file
    assert runs_json() == []


def wait_for(predicate, timeout_s=120):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_stop_while_the_run_launches_stops_the_trainer_the_launch_then_starts(tmp_path, monkeypatch):
    """`orch stop` during a launch ended the run `stopped` and said so; the launch then set it running again, and its
    trainer trained to its end."""
    from orchestrator.launch import lifecycle
    from orchestrator.launch.local import LocalLauncher
    from orchestrator.runs.status import RunStatus

    real_start = LocalLauncher.start

    def stopped_as_it_starts(self, record, *args, **kwargs):
        store = RunStore()
        lifecycle.request_stop(store, store.get(record.run_id))  # from another shell, before the trainer is known
        return real_start(self, record, *args, **kwargs)

    monkeypatch.setattr(LocalLauncher, "start", stopped_as_it_starts)
    job = write_job(tmp_path, max_steps=200, save_every=2)
    result = orch("launch", job, "--budget", "1", "--target", "local", "--yes", "--detach", "--json")
    run_id = json.loads(result.stdout)["run"]["run_id"]
    assert RunStore().get(run_id).status is RunStatus.STOPPED, result.output
    wait_for(lambda: not LocalLauncher().is_running(RunStore().get(run_id)), timeout_s=60)
    assert RunStore().get(run_id).status is RunStatus.STOPPED


@pytest.mark.parametrize("pid", [None, 999_999], ids=["before-the-trainer", "trainer-started"])
def test_a_launch_interrupted_before_its_trainer_ends_the_run_stopped_at_once(tmp_path, monkeypatch, pid):
    """Ctrl-C before the trainer started left the run `launching`; a minute later it failed "as its launcher died",
    and the `orch stop` the interrupt suggested was refused. With a trainer started, `orch stop` is still the way."""
    from orchestrator.launch.local import LocalLauncher
    from orchestrator.runs.status import RunStatus

    def interrupted(self, record, option, device, on_fact):
        if pid is not None:
            RunStore().update(record.run_id, pid=pid)
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalLauncher, "start", interrupted)
    result = orch("launch", write_job(tmp_path), "--budget", "1", "--target", "local", "--yes")
    assert result.exit_code == 130, result.output
    (run,) = RunStore().all()
    said = " ".join(result.stderr.split())
    if pid is None:
        assert run.status is RunStatus.STOPPED and run.ended_at is not None, run
        assert f"before the trainer started: run {run.run_id} is stopped (`orch resume {run.run_id}` starts it)" \
            in said
    else:
        assert run.status is RunStatus.LAUNCHING and f"`orch stop {run.run_id}` cancels what was started" in said


def test_a_launch_interrupted_as_its_trainer_starts_leaves_the_trainer_known_and_stoppable(tmp_path, monkeypatch):
    """Ctrl-C after the trainer's process was made, before the launch recorded it running: the run was ended
    `stopped, before its trainer started` while the trainer trained on, out of reach of `orch stop`."""
    from orchestrator.launch import lifecycle
    from orchestrator.launch.local import LocalLauncher
    from orchestrator.runs.status import RunStatus

    real_start = LocalLauncher.start

    def interrupted_after_start(self, record, option, device, on_fact):
        real_start(self, record, option, device, on_fact)
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalLauncher, "start", interrupted_after_start)
    result = orch("launch", write_job(tmp_path, max_steps=200, save_every=2), "--budget", "1", "--target", "local",
                  "--yes")
    assert result.exit_code == 130, result.output
    (run,) = RunStore().all()
    assert run.pid is not None and run.status.is_active(), run
    assert f"`orch stop {run.run_id}` cancels what was started" in " ".join(result.stderr.split())
    lifecycle.request_stop(RunStore(), run)
    wait_for(lambda: not LocalLauncher().is_running(RunStore().get(run.run_id)), timeout_s=120)
    lifecycle.refresh(RunStore())
    assert RunStore().get(run.run_id).status is RunStatus.STOPPED


def test_stop_then_resume(tmp_path):
    job = write_job(tmp_path, max_steps=200, save_every=2)
    result = orch("launch", job, "--budget", "1", "--target", "local", "--yes", "--detach", "--json")
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run"]["run_id"]
    run_dir = RunStore().get(run_id).run_dir
    wait_for(lambda: os.path.exists(os.path.join(run_dir, "output", "checkpoints", "latest")))
    result = orch("stop", run_id[:6], "--json")
    assert result.exit_code == 0, result.output
    said = json.loads(result.stdout)  # the run once its trainer ended: data, not the sentence the terminal gets
    assert said["run"]["run_id"] == run_id and said["still_saving"] is False
    assert said["run"]["status"] == "stopped"  # it said `running` while the trainer saved, and a resume was refused
    stopped = runs_json()[0]
    assert 0 < stopped["metrics"]["steps"] < 200
    job_file = Path(run_dir) / "job.yaml"  # shorten the rest of the run for the test (a key once: no duplicates)
    job = yaml.safe_load(job_file.read_text())
    # a job edited since its checkpoint: the trainer refused it once started, and the run was recorded bad_config
    job_file.write_text(yaml.safe_dump({**job, "seq_len": job["seq_len"] * 2}))
    refused = orch("resume", run_id)
    assert refused.exit_code == 2 and "cannot resume: its job.yaml is not the job its checkpoint" in \
        " ".join(refused.stderr.split()), refused.output
    assert RunStore().get(run_id).status.value == "stopped"
    job_file.write_text(yaml.safe_dump({**job, "max_steps": stopped["metrics"]["steps"] + 3}))
    result = orch("resume", run_id, "--json")  # followed to its end, the log on stderr and the run on stdout
    assert result.exit_code == 0, result.output
    # this session's log alone: the earlier one's "checkpoint saved. Resume with:" read as if it had stopped again
    assert "resumed from" in result.stderr and "Resume with:" not in result.stderr, result.stderr
    (finished,) = runs_json()
    # the run as recorded; runs --json adds its spend so far and live figures, null once it has ended
    assert finished["live"] is None
    assert json.loads(result.stdout) == {k: v for k, v in finished.items() if k not in ("spent_usd", "live")}
    assert finished["status"] == "ok" and finished["metrics"]["steps"] == stopped["metrics"]["steps"] + 3
    assert "resumed from" in orch("logs", run_id).stdout
    pulled = json.loads(orch("pull", run_id, "--json").stdout)
    assert pulled == {"run_id": run_id, "output_dir": str(Path(run_dir) / "output")}


def test_a_launch_ended_by_sigterm_says_the_run_goes_on(tmp_path):
    """`timeout 60 orch launch ...` left the trainer training and said nothing of it: SIGTERM is told as Ctrl-C is."""
    job = write_job(tmp_path, max_steps=500, save_every=2)
    launch = subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "launch", str(job), "--budget", "1",
                               "--target", "local", "--yes"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    wait_for(lambda: RunStore().all() and (RunStore().all()[0].output_dir / "checkpoints" / "latest").exists())
    launch.send_signal(signal.SIGTERM)  # long after the launch began to follow the run
    _, said = launch.communicate(timeout=60)
    (run,) = RunStore().all()
    try:
        assert f"still running: `orch logs {run.run_id} --follow`, `orch stop {run.run_id}`" in said, said
        assert launch.returncode == 143  # as a process SIGTERM ends
    finally:  # no trainer outlives the test
        assert orch("stop", run.run_id).exit_code == 0
        wait_for(lambda: runs_json()[0]["status"] == "stopped")


def test_two_launches_at_once_are_both_recorded(tmp_path):
    jobs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        jobs.append(write_job(tmp_path / name, max_steps=3))
    env = {**os.environ, "COLUMNS": "200"}
    launches = [subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "launch", str(job), "--budget", "1",
                                  "--target", "local", "--yes", "--json"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for job in jobs]
    outputs = [p.communicate(timeout=300) for p in launches]
    assert all(p.returncode == 0 for p in launches), outputs
    runs = runs_json()
    assert len(runs) == 2 and len({r["run_id"] for r in runs}) == 2 and {r["status"] for r in runs} == {"ok"}


def test_unknown_run_is_a_clear_error():
    result = orch("logs", "nope")
    assert result.exit_code == 2 and "no run matching 'nope'" in result.stderr


def test_runs_export_to_csv_and_parquet(launched_run, tmp_path):
    import pandas as pd

    for name in ("runs.csv", "runs.parquet"):
        assert orch("runs", "--export", tmp_path / name).exit_code == 0
        frame = pd.read_csv(tmp_path / name) if name.endswith(".csv") else pd.read_parquet(tmp_path / name)
        assert list(frame["run_id"]) == [launched_run["run_id"]] and list(frame["status"]) == ["ok"]
        assert {"est_tokens_per_s", "tokens_per_s"} <= set(frame.columns)
    assert orch("runs", "--export", tmp_path / "runs.xlsx").exit_code == 2


@pytest.fixture
def bystander():
    """Processes in their own group (as `setsid` starts them) that `orch stop` may signal only when one is the run's
    trainer. The factory takes the whole command line; by default a python that sleeps, with `args` after its code
    (a shell would exec its last command and lose them). Returned once /proc shows its command line, which can
    read empty for a moment after the start."""
    started = []

    def start(*args: str, command: tuple[str, ...] = (sys.executable, "-c", "import time; time.sleep(60)")):
        started.append(subprocess.Popen([*command, *args], start_new_session=True))
        wait_for(lambda: Path(f"/proc/{started[-1].pid}/cmdline").read_bytes(), timeout_s=10)
        return started[-1]

    yield start
    for process in started:
        process.kill()
        process.wait()


def recorded_run(pid: int) -> RunRecord:
    """A running local run with `pid` as its trainer, in ORCH_HOME's runs.db where orch keeps it."""
    from orchestrator.home import orch_home
    from tests.test_runs_store import RUN_ID, make_record

    record = make_record(orch_home() / "runs" / RUN_ID, pid=pid, device="cpu")
    RunStore().insert(record)
    return record


def test_stop_refuses_a_row_edited_to_point_at_another_process_and_signals_nothing(bystander):
    """The finding: runs.db edited to `pid=<a setsid sleep>, status='running', run_dir='sleep'` made `orch stop`
    SIGTERM the sleep's process group, since its command line holds the text `sleep`."""
    import sqlite3
    from contextlib import closing

    from orchestrator.home import orch_home

    sleep = bystander("60", command=("sleep",))
    recorded_run(sleep.pid)
    with closing(sqlite3.connect(orch_home() / "runs.db")) as db, db:
        db.execute("UPDATE runs SET run_dir = 'sleep', status = 'running'")
    result = orch("stop", "r-0a1b")
    assert result.exit_code == 2 and "damaged: run_dir is 'sleep'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and sleep.poll() is None


@pytest.mark.parametrize("args", [
    ("{run_dir}",), ("-m", "trainer", "{run_dir}/job.yaml.old"), ("-m", "trainer", "{run_dir}x/job.yaml"),
    ("x-m", "trainer", "{run_dir}/job.yaml"), ("{run_dir}/job.yaml", "-m", "trainer"),
])
def test_only_the_runs_own_trainer_command_counts_as_running(bystander, args):
    """The process must run `-m trainer <run_dir>/job.yaml`, each a whole argument: a command line that merely
    contains the run folder's text is another process, which `orch stop` leaves alone."""
    from orchestrator.launch.local import LocalLauncher

    record = recorded_run(0)
    other = bystander(*(a.format(run_dir=record.run_dir) for a in args))
    launcher = LocalLauncher()
    running = dataclasses.replace(record, pid=other.pid)
    assert not launcher.is_running(running)
    assert launcher.stop(running) == f"run {record.run_id} is not running" and other.poll() is None


def test_the_runs_trainer_command_is_running_and_stop_signals_its_group(bystander):
    from orchestrator.launch.local import LocalLauncher

    record = recorded_run(0)
    trainer = bystander("-m", "trainer", f"{record.run_dir}/job.yaml", "--output", f"{record.run_dir}/output")
    running = dataclasses.replace(record, pid=trainer.pid)
    assert LocalLauncher().is_running(running)
    assert LocalLauncher().stop(running).startswith(f"stopping {record.run_id}")
    assert trainer.wait(timeout=600) == -signal.SIGTERM


def test_train_refuses_an_output_under_a_missing_folder_and_makes_the_output_itself(tmp_path, monkeypatch):
    """--output's own folder is the trainer's to make, not the chain above it: every other output refuses a missing
    parent (a typo), and `orch train` made all of them."""
    from orchestrator.cli import train

    started = []
    monkeypatch.setattr(train, "_run_forwarding_signals", lambda command: started.append(command) or 0)
    job = write_job(tmp_path, max_steps=2)
    output = tmp_path / "nodir9" / "a" / "b"
    result = orch("train", job, "--output", output)
    assert result.exit_code == 2 and not started and not (tmp_path / "nodir9").exists()
    assert result.stderr == f"error: --output '{output}': folder '{output.parent}' does not exist; create it first.\n"
    assert orch("train", job, "--output", tmp_path / "new").exit_code == 0 and len(started) == 1


def test_a_run_that_ends_bad_config_exits_2_as_orch_train_does(tmp_path, monkeypatch):
    """Over the tokenize limit the plan counts nothing, so only the trainer sees a record of no known shape: the run
    ends bad_config, which is the user's input, and launch exited 1 while `orch train` exits 2."""
    monkeypatch.setattr("orchestrator.data_size.TOKENIZE_MAX_BYTES", 10)
    (tmp_path / "d.jsonl").write_text('{"foo": "no shape"}\n' + '{"text": "hello there"}\n' * 50)
    result = orch("launch", write_job(tmp_path, dataset="d.jsonl", max_steps=2), "--budget", "0.05", "--target",
                  "local", "--yes", "--json")
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["run"]["status"] == "bad_config"


def test_an_answer_of_no_launches_nothing_and_ctrl_c_at_the_prompt_exits_130(tmp_path, monkeypatch):
    """Ctrl-C at the `[y/N]` prompt said `error: aborted.` and exited 1, where every other Ctrl-C exits 130; a no
    said the same."""
    from types import SimpleNamespace

    monkeypatch.setattr("orchestrator.cli.launch.sys", SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True)))
    job = write_job(tmp_path, max_steps=2)
    declined = CliRunner().invoke(app, ["launch", str(job), "--budget", "0.05", "--target", "local"], input="n\n")
    assert declined.exit_code == 1 and "not launched: nothing was recorded" in declined.stderr, declined.output
    assert "[y/N]" in declined.stderr and "[y/N]" not in declined.stdout  # stdout is the plan's, or the JSON's
    ended_input = CliRunner().invoke(app, ["launch", str(job), "--budget", "0.05", "--target", "local"], input="")
    assert ended_input.exit_code == 1 and "not launched" in ended_input.stderr, ended_input.output  # Ctrl-D: a no

    def ctrl_c(question, err=False):  # as click's confirm takes it: the interrupt, as Abort
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise typer.Abort() from None

    monkeypatch.setattr(typer, "confirm", ctrl_c)
    interrupted = CliRunner().invoke(app, ["launch", str(job), "--budget", "0.05", "--target", "local"])
    assert interrupted.exit_code == 130 and "interrupted" in interrupted.stderr, interrupted.output
    assert RunStore().all() == []


@pytest.mark.parametrize("status, code", [("ok", 0), ("running", 0), ("error", 1), ("bad_config", 2), ("oom", 3),
                                          ("budget_stopped", 4), ("preempted", 5), ("stopped", 1), ("failed", 1)])
def test_launch_and_resume_exit_with_the_runs_own_code(status, code):
    """The trainer's exit code for an end it reports (README: Exit codes), so `orch launch` agrees with `orch train`;
    a stop or a failure the trainer never reported is 1."""
    from orchestrator.cli.runs import exit_code
    from orchestrator.runs.status import RunStatus

    assert exit_code(RunStatus(status)) == code


def test_a_dry_run_on_the_local_target_says_its_out_is_not_written(tmp_path):
    result = orch("launch", write_job(tmp_path), "--budget", "1", "--target", "local", "--dry-run", "--out",
                  tmp_path / "task.yaml")
    assert result.exit_code == 0 and "nothing written, a local run has no task file" in result.stderr, result.output
    assert not (tmp_path / "task.yaml").exists()
    as_json = orch("launch", write_job(tmp_path), "--budget", "1", "--target", "local", "--dry-run", "--json", "--out",
                   tmp_path / "task.yaml")  # said in its note too: a script went looking for the file
    assert "nothing written, a local run has no task file" in json.loads(as_json.stdout)["note"]


def test_runs_export_replaces_an_existing_file_only_with_force(tmp_path):
    (tmp_path / "runs.csv").write_text("precious\n")
    refused = orch("runs", "--export", tmp_path / "runs.csv")
    assert refused.exit_code == 2 and "already exists: pass --force" in refused.stderr
    assert (tmp_path / "runs.csv").read_text() == "precious\n"
    assert orch("runs", "--export", tmp_path / "runs.csv", "--force").exit_code == 0
    assert (tmp_path / "runs.csv").read_text() != "precious\n"


def test_a_trainer_started_for_an_earlier_session_does_not_speak_for_the_resumed_one(tmp_path):
    """A scheduler asked the trainer it had started for the run's first session: once the run was resumed by another
    process (`orch resume`, a second scheduler), that trainer's exit ended the run while the new one trained, and the
    job was started a third time in the same folder."""
    from orchestrator.launch.local import RUN_JOB_NAME, LocalLauncher
    from tests.test_runs_store import make_record

    launcher = LocalLauncher()
    earlier = subprocess.Popen(["true"])
    earlier.wait()
    launcher._processes["r-resumed"] = earlier
    resumed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m", "trainer",
                                str(tmp_path / RUN_JOB_NAME)])
    record = make_record(tmp_path, run_id="r-resumed", pid=resumed.pid)
    try:
        deadline = time.time() + 10  # its command line is readable once its exec is through
        while b"trainer" not in Path(f"/proc/{resumed.pid}/cmdline").read_bytes() and time.time() < deadline:
            time.sleep(0.05)
        assert launcher.is_running(record)
    finally:
        resumed.kill()
        resumed.wait()
    assert not launcher.is_running(record)


def test_a_run_that_ends_while_the_database_is_locked_is_said_done_not_to_be_launched_again(tmp_path, monkeypatch):
    """The trainer finished, its end could not be written past the lock, and the launch said `try again` (exit 2):
    launched again, the job was paid for twice. Its end is recorded by the next look once the lock is gone."""
    from orchestrator.db import LockedDatabase
    from orchestrator.launch import lifecycle

    def locked(store, record):
        raise LockedDatabase(f"the database file {store.path} is locked by another process")

    with monkeypatch.context() as patch:
        patch.setattr(lifecycle, "finish", locked)
        result = orch("launch", write_job(tmp_path, max_steps=2), "--budget", "0.05", "--target", "local", "--yes")
    assert result.exit_code == 0, result.output
    said = result.stderr.strip().splitlines()[-1]
    assert said.startswith("run r-") and "'s trainer ended ok, and another process holds " in said
    assert said.endswith("locked, so its end is not recorded yet: `orch runs` records it once the lock is gone (the "
                         "run needs no new launch).")
    (recorded,) = runs_json()
    assert recorded["status"] == "ok" and recorded["metrics"]["steps"] == 2


def test_a_launch_that_cannot_record_its_run_leaves_no_run_folder(tmp_path, monkeypatch):
    """runs.db locked past the wait when the run was to be recorded: exit 2, and an empty run folder with no row."""
    from orchestrator.db import LockedDatabase

    def locked(self, record):
        raise LockedDatabase(f"the database file {self.path} is locked by another process")

    monkeypatch.setattr(RunStore, "insert", locked)
    result = orch("launch", write_job(tmp_path, max_steps=2), "--budget", "0.05", "--target", "local", "--yes")
    assert result.exit_code == 2 and "is locked by another process" in result.stderr, result.output
    from orchestrator.home import orch_home

    assert not any((orch_home() / "runs").iterdir())


LOG_WITH_ESCAPES = "step 1 café 日本\n\x1b[31mred\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\ \x1b[2J\n"
ESCAPED = "step 1 café 日本\n\\x1b[31mred\\x1b]8;;http://evil.example\\x1b\\link\\x1b]8;;\\x1b\\ \\x1b[2J\n"


def test_a_followed_log_reaches_the_terminal_escaped_and_in_whole_characters(tmp_path, monkeypatch):
    """`orch logs --follow` and a launch's follow copied the log raw: an ESC the trainer echoed coloured the terminal,
    set a hyperlink or cleared it, and a character two reads split became two U+FFFD."""
    from orchestrator.cli import display
    from orchestrator.launch import local
    from tests.test_runs_store import make_record

    raw = LOG_WITH_ESCAPES.encode()
    split_at = raw.index("日".encode()) + 1  # inside the character
    log = tmp_path / local.LOG_NAME
    log.write_bytes(raw[:split_at])
    launcher, reads = local.LocalLauncher(), iter([True, False])

    def running(record):  # the rest of the log is written between the two reads
        if log.stat().st_size < len(raw):
            with open(log, "ab") as handle:
                handle.write(raw[split_at:])
        return next(reads)

    monkeypatch.setattr(launcher, "is_running", running)
    monkeypatch.setattr(local.time, "sleep", lambda seconds: None)
    out = io.StringIO()
    launcher.follow(make_record(tmp_path), display.LogStream(out))
    assert out.getvalue() == ESCAPED


def test_logs_print_a_log_in_a_locale_without_its_characters(tmp_path):
    """`orch logs` of a log holding `café` ended in a UnicodeEncodeError traceback where stdout is ASCII."""
    from orchestrator.runs.status import RunStatus
    from tests.test_runs_store import make_record

    home = tmp_path / "home"
    run_dir = home / "runs" / "r-eeeeeeee"
    run_dir.mkdir(parents=True)
    (run_dir / "train.log").write_text(LOG_WITH_ESCAPES, encoding="utf-8")
    env = {**os.environ, "ORCH_HOME": str(home), "PYTHONIOENCODING": "ascii"}
    RunStore(home / "runs.db").insert(make_record(run_dir, run_id="r-eeeeeeee", status=RunStatus.OK))
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "logs", "r-eeeeeeee"], env=env, cwd=REPO,
                          capture_output=True, text=True, encoding="ascii", errors="strict")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ESCAPED.replace("é", "\\xe9").replace("日本", "\\u65e5\\u672c")


def test_logs_without_a_run_id_says_whose_log_it_shows_at_a_terminal(tmp_path, monkeypatch):
    """`orch logs` printed the latest run's log with nothing saying which run that was; a pipe gets the log alone."""
    from rich.console import Console

    from orchestrator.cli import display
    from orchestrator.runs.status import RunStatus
    from tests.test_runs_store import make_record

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    run_dir = tmp_path / "home" / "runs" / "r-eeeeeeee"
    run_dir.mkdir(parents=True)
    (run_dir / "train.log").write_text("step 1: loss 2.5\n", encoding="utf-8")
    RunStore().insert(make_record(run_dir, run_id="r-eeeeeeee", status=RunStatus.OK))
    for args, said in ((["logs"], "run r-eeeeeeee, the latest (`orch logs RUN` shows another's):\n"),
                       (["logs", "r-e"], "")):
        terminal = io.StringIO()
        monkeypatch.setattr(display, "err_console", Console(file=terminal, force_terminal=True, width=80))
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and result.stdout == "step 1: loss 2.5\n", result.output
        assert terminal.getvalue() == said
