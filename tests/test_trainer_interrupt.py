"""Ctrl-C: the first writes a checkpoint and exits 130 with the command that resumes; the resumed run ends where an
uninterrupted one does. A second Ctrl-C stops at once and keeps every checkpoint written before."""

import json
import signal
import subprocess
import sys
import time

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
