"""metrics.json is strict JSON a run record can hold: a loss that diverges ends the run instead of training on NaN, and
a value past a float's range is written as null, never as Python's NaN or Infinity."""

import json
import math

import pytest
import torch

import trainer.loop
from tests.trainer_helpers import read_steps, write_job
from trainer.__main__ import main
from trainer.checkpoint_folders import latest_checkpoint
from trainer.jsonio import write_json_atomic


def strict_json(path):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_non_finite_numbers_are_written_as_null(tmp_path):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"loss": math.nan, "curve": [[1, math.inf], (2, 0.5)], "peak": {"gib": -math.inf}})
    assert strict_json(path) == {"loss": None, "curve": [[1, None], [2, 0.5]], "peak": {"gib": None}}


def spoil_training_forwards(monkeypatch, from_forward: int, spoil):
    """The run's loss function, with `spoil` applied to each training forward's loss from the `from_forward`-th on
    (evaluation forwards are left alone)."""
    real = trainer.loop.loss_function
    forwards = []

    def loss_function(*args):
        loss_fn = real(*args)

        def spoiled(model, batch, items):
            loss = loss_fn(model, batch, items)
            if model.training:
                forwards.append(1)
                if len(forwards) >= from_forward:
                    return spoil(loss)
            return loss
        return spoiled

    monkeypatch.setattr(trainer.loop, "loss_function", loss_function)


def with_infinite_gradient(loss):
    loss.register_hook(lambda grad: grad * math.inf)
    return loss


@pytest.mark.parametrize("spoil, what", [(lambda loss: loss * math.nan, "the loss is nan"),
                                         (with_infinite_gradient, "the gradient norm is ")],
                         ids=["loss", "gradient"])
def test_a_diverged_step_ends_the_run_before_it_updates_the_weights(tmp_path, monkeypatch, capsys, spoil, what):
    """A diverged run (a learning rate too high, fp16 overflow) trained on: NaN in the weights, in every checkpoint
    after, and in metrics.json, which the orchestrator's run record then refused as damaged on every read."""
    spoil_training_forwards(monkeypatch, 3, spoil)
    job, output = write_job(tmp_path, max_steps=4, save_every=1), tmp_path / "out"
    assert main([str(job), "--output", str(output)]) == 6
    err = capsys.readouterr().err
    assert err.startswith("diverged: " + what) and "at step 3" in err and err.count("\n") == 1
    assert "learning_rate (now 0.003)" in err and "max_grad_norm (now 1.0)" in err
    metrics = strict_json(output / "metrics.json")
    assert metrics["status"] == "diverged" and metrics["steps"] == 2 and what in metrics["message"]
    assert [s["step"] for s in read_steps(output)] == [1, 2]
    weights = torch.load(latest_checkpoint(output) / "trainable.pt", weights_only=True)
    assert latest_checkpoint(output).name == "step-00000002"
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_an_eval_loss_past_the_range_of_exp_gives_a_null_perplexity(tmp_path, monkeypatch):
    """exp(eval loss) above a loss of ~709 raised OverflowError: the run ended as an error at its very end."""
    monkeypatch.setattr(trainer.loop.FineTune, "_evaluate", lambda *args: 800.0)
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, max_steps=1)), "--output", str(output)]) == 0
    metrics = strict_json(output / "metrics.json")
    assert metrics["status"] == "ok" and metrics["eval_loss"] == 800.0 and metrics["eval_perplexity"] is None


def test_progress_json_holds_the_tokens_trained_so_far_and_the_peak_memory(tmp_path):
    """A trainer killed before metrics.json leaves its launcher only progress.json: it holds the run's tokens so far
    and its peak memory, as metrics.json has them at the end."""
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, max_steps=2)), "--output", str(output)]) == 0
    progress, metrics = strict_json(output / "progress.json"), strict_json(output / "metrics.json")
    assert progress["step"] == 2 and progress["train_tokens"] == metrics["train_tokens"] > 0
    assert progress["peak_vram_gib"]["process_rss"] > 0


def test_a_run_trains_on_its_cpu_threads_and_says_so_and_leaves_torchs_as_they_were(tmp_path):
    """`cpu_threads` (a scheduler's CPU slot writes it) sets torch's threads for the run, metrics.json says the
    threads it trained on (its MFU is against their peak), and a process that goes on keeps its own count."""
    before = torch.get_num_threads()
    threads = before + 1
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, max_steps=1, cpu_threads=threads)), "--output", str(output)]) == 0
    metrics = strict_json(output / "metrics.json")
    assert metrics["cpu_threads"] == threads and metrics["config"]["cpu_threads"] == threads
    assert torch.get_num_threads() == before
