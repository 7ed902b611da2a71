"""Ctrl-C: the first writes a checkpoint and exits 130 with the command that resumes; the resumed run ends where an
uninterrupted one does. A second Ctrl-C stops at once and keeps every checkpoint written before."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.trainer_helpers import read_steps, write_job
from trainer.__main__ import main
from trainer.checkpoint_folders import latest_checkpoint

STEPS = 8


def wait_for_steps(output, n, process, timeout_s=120):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        log = output / "steps.jsonl"
        if log.is_file() and len(log.read_text().splitlines()) >= n:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("the trainer made no progress in time")


def losses(output):
    return [s["loss"] for s in read_steps(output)]


def test_ctrl_c_through_orch_train_checkpoints_and_resumes_to_the_uninterrupted_loss(tmp_path):
    job = write_job(tmp_path, max_steps=STEPS, micro_batch=2, save_every=1000, eval_fraction=0, eval_batches=None)
    assert main([str(job), "--output", str(tmp_path / "straight")]) == 0
    output = tmp_path / "interrupted"
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "train", str(job), "--output",
                                str(output)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_steps(output, 3, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert f"Resume with: orch train {job} --output {output} --resume auto" in stderr
    stopped_at = len(read_steps(output))
    assert 3 <= stopped_at < STEPS and latest_checkpoint(output).name == f"step-{stopped_at:08d}"
    assert main([str(job), "--output", str(output), "--resume", "auto"]) == 0
    assert losses(output) == pytest.approx(losses(tmp_path / "straight"), rel=1e-5)


def test_a_second_ctrl_c_stops_at_once_and_keeps_earlier_checkpoints(tmp_path):
    job, output = write_job(tmp_path, max_steps=400, save_every=2), tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "trainer", str(job), "--output", str(output)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_steps(output, 3, process)
    before = latest_checkpoint(output)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "--resume auto" in stderr
    after = latest_checkpoint(output)
    assert after is not None and after.name >= before.name and (after / "state.json").is_file()
    state = json.loads((after / "state.json").read_text())
    assert state["step"] >= 2


def trainers_of(job) -> list[int]:
    """The pids of the trainer processes started for this job file."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or one that just ended
            continue
        if b"trainer" in args and os.fsencode(str(job)) in args:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_a_killed_orch_train_takes_its_trainer_down_with_a_checkpoint(tmp_path):
    """`orch train` killed by SIGKILL (no handler runs) left its trainer training alone in its own session."""
    job, output = write_job(tmp_path, max_steps=400, save_every=1000), tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "train", str(job), "--output",
                                str(output)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_steps(output, 3, process)
    assert trainers_of(job)
    process.kill()
    process.communicate(timeout=60)
    deadline = time.time() + 60
    while trainers_of(job) and time.time() < deadline:
        time.sleep(0.05)
    left = trainers_of(job)
    for pid in left:  # a failure leaves no trainer behind
        os.kill(pid, signal.SIGKILL)
    assert not left
    stopped_at = len(read_steps(output))
    assert 3 <= stopped_at < 400 and latest_checkpoint(output).name == f"step-{stopped_at:08d}"
