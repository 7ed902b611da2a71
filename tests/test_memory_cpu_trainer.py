"""The estimate against what the CPU trainer really holds for one step of the tiny model: the per-step tensors
(activations, logits, gradients) measured as the rise of the process's peak RSS over one training step, through the
trainer's own model, loss and optimizer code. Generous bounds: RSS counts pages, not tensors."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def measured():
    """In a fresh process: the allocator state other tests leave behind would shift a page-counting measurement."""
    code = ("import json; from benchmarks.cpu_loss_memory import measure; "
            "print(json.dumps(measure('orch/tiny-llama', 'lora', 128, 4, 64, True)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return {r["loss"]: r for r in json.loads(done.stdout.strip().splitlines()[-1])}


@pytest.mark.parametrize("loss", ["full", "chunked"])
def test_step_memory_is_within_a_factor_of_two_of_the_estimate(measured, loss):
    result = measured[loss]
    assert 0.5 * result["estimated_step_gib"] <= result["step_peak_above_before_gib"] <= 2 * result[
        "estimated_step_gib"]


def test_the_chunked_loss_really_holds_less(measured):
    assert measured["chunked"]["step_peak_above_before_gib"] < measured["full"]["step_peak_above_before_gib"]
    assert measured["chunked"]["estimated_step_gib"] < measured["full"]["estimated_step_gib"]
