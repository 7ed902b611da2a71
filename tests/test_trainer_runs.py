"""The trainer end to end on the CPU, with the tiny model built offline: each method learns and reports itself."""

import json
import sys

import pytest

from gpu_catalog.gpus import cpu_gpu
from gpu_catalog.models import get_model
from orchestrator.launch.sky_task import checkpoint_bytes
from tests.trainer_helpers import write_job
from trainer.__main__ import main
from trainer.checkpoint_folders import latest_checkpoint
from trainer.config import config_from_dict

REQUIRED_METRICS = {"status", "train_tokens", "tokens_per_s", "step_time_s", "peak_vram_gib", "nvml_peak_used_gib",
                    "gpu_util_mean_pct", "gpu_power_mean_w", "gpu", "loss_curve", "eval_loss", "eval_perplexity",
                    "wall_s", "mfu", "steps", "versions", "config"}


@pytest.mark.parametrize("changes", [
    {"method": "lora"}, {"method": "qlora", "quant_bits": 4}, {"method": "qlora", "quant_bits": 8},
    {"method": "full", "learning_rate": 1e-3, "lora_r": None},
], ids=["lora", "qlora-nf4", "qlora-int8", "full"])
def test_each_method_learns_and_writes_complete_metrics(tmp_path, changes):
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, **changes)), "--output", str(output)]) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert REQUIRED_METRICS <= set(metrics)
    assert metrics["status"] == "ok" and metrics["steps"] == 12
    losses = [loss for _, loss in metrics["loss_curve"]]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # the training loss falls
    first_eval, last_eval = metrics["eval_curve"][0], metrics["eval_curve"][-1]
    assert first_eval[0] == 0 and last_eval[0] == 12 and last_eval[1] < first_eval[1]  # and so does eval loss
    assert metrics["eval_perplexity"] == pytest.approx(2.718281828 ** last_eval[1])
    assert 0 < metrics["train_tokens"] <= 12 * 4 * 128 and metrics["tokens_per_s"] > 0
    assert set(metrics["versions"]) >= {"torch", "transformers", "peft", "bitsandbytes"}
    assert (output / "final" / ("model.safetensors" if changes["method"] == "full" else
                                "adapter_model.safetensors")).is_file()
    # a cloud's disk is sized from this count of a checkpoint's bytes (sky_task.disk_gib): it holds what was saved
    spec = config_from_dict(metrics["config"])
    predicted = checkpoint_bytes(get_model(spec.model), spec, cpu_gpu())
    saved = sum(path.stat().st_size for path in latest_checkpoint(output).iterdir())
    assert predicted <= saved <= predicted * 1.1 + 200_000, (predicted, saved)


def test_merged_adapter_matches_the_adapter(tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, max_steps=3, merge_adapter=True)), "--output", str(output)]) == 0
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    base = AutoModelForCausalLM.from_pretrained(json.loads((output / "metrics.json").read_text())["model_path"])
    with torch.no_grad():
        adapted = PeftModel.from_pretrained(base, output / "final").eval()(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(output / "merged").eval()(ids).logits
    assert torch.allclose(adapted, merged, atol=1e-4)


def test_a_budget_stop_says_why_and_what_continues_the_run(tmp_path, monkeypatch, capsys):
    """The loop's own budget stop used to print a bare `budget_stopped`: the line now names the budget, the spend and
    the checkpoint a larger budget continues from. The meter is made to refuse the fourth step, whatever the load."""
    from trainer.loop import FineTune

    checks_made = []
    monkeypatch.setattr(FineTune, "_over_budget", lambda self: checks_made.append(1) or len(checks_made) > 3)
    output = tmp_path / "out"
    job = write_job(tmp_path, max_steps=12, usd_per_hour=1.0, budget_usd=10.0)
    assert main([str(job), "--output", str(output)]) == 4
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["status"] == "budget_stopped" and metrics["steps"] == 3
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("budget_stopped")]
    assert line == f"budget_stopped: {metrics['message']}"
    assert "this session's budget of $10.00 ($0.0" in line and line.endswith("from the checkpoint at step 3")
    assert (output / "checkpoints" / "step-00000003").is_dir()


def test_a_budget_stop_just_after_a_save_writes_that_checkpoint_once(tmp_path, monkeypatch, capsys):
    """The step-3 checkpoint the cadence had just written was written again at the budget stop before step 4, on
    time the budget no longer had, and printed twice."""
    from trainer.loop import FineTune

    checks_made, saves = [], []
    monkeypatch.setattr(FineTune, "_over_budget", lambda self: checks_made.append(1) or len(checks_made) > 3)
    save = FineTune._save
    monkeypatch.setattr(FineTune, "_save", lambda self, *args: saves.append(args[4]["step"]) or save(self, *args))
    output = tmp_path / "out"
    job = write_job(tmp_path, max_steps=12, usd_per_hour=1.0, budget_usd=10.0, save_every=3, log_every=3)
    assert main([str(job), "--output", str(output)]) == 4
    assert saves == [3]
    assert capsys.readouterr().out.count("step-00000003") == 1


@pytest.mark.parametrize("names", [("wandb/run-1/files", "notes.txt"), ("final/", "train.log", "report.md"),
                                   ("checkpoints/model.pt",)], ids=["wandb", "final-train-log", "own-checkpoints"])
def test_a_folder_is_an_earlier_run_only_by_orchs_own_marks(tmp_path, capsys, names):
    """A project folder holding `wandb/` (what any W&B run leaves), `final/`, `train.log` or a `checkpoints/` of its
    own was taken for an earlier run, and the trainer wrote metrics.json, checkpoints/ and final/ among its files."""
    project = tmp_path / "project"
    for name in names:
        (project / name.rstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            (project / name).mkdir()
        else:
            (project / name).write_text("mine")
    before = sorted(str(p.relative_to(project)) for p in project.rglob("*"))
    assert main([str(write_job(tmp_path, max_steps=1)), "--output", str(project)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds files of its own: give a new or empty folder" in err
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == before


@pytest.mark.parametrize("fault, named", [("EROFS", True), ("ENOSPC", False)])  # a full disk's error names no file
def test_an_output_folder_gone_read_only_or_full_ends_the_trainer_in_one_line(tmp_path, monkeypatch, capsys, fault,
                                                                               named):
    """The output folder remounted read-only mid-run: the step's write failed, writing error.log failed in its
    handler, and the trainer ended in a chained traceback with no word. Now one line says what and how to go on."""
    import errno
    import os
    import pathlib

    from trainer import loop

    output = tmp_path / "out"
    code = getattr(errno, fault)

    def read_only(path):
        raise OSError(code, os.strerror(code), str(path) if named else None)

    def step(self, *args, **kwargs):
        read_only(output / "steps.jsonl")

    write_text = pathlib.Path.write_text
    monkeypatch.setattr(loop.FineTune, "_train", step)
    monkeypatch.setattr(pathlib.Path, "write_text", lambda self, *a, **k: read_only(self) if self.name == "error.log"
                        else write_text(self, *a, **k))
    monkeypatch.setattr(loop, "write_json_atomic", lambda path, data: read_only(path))
    assert main([str(write_job(tmp_path)), "--output", str(output)]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines[-1] == (f"error: the output folder {output} could not be written ({os.strerror(code)}): make it "
                         "writable or free space, then resume (--resume auto)"), lines


def test_an_output_of_a_finished_run_is_not_said_to_want_continuing(tmp_path):
    """`orch train` again into a folder whose run ended ok said "pass --resume auto to continue it", of a run with
    nothing left to continue; one stopped short is still told so."""
    from trainer.checkpoint_folders import FINAL_DIR, unresumed_problem

    step = tmp_path / "checkpoints" / "step-00000002"
    step.mkdir(parents=True)
    (step / "state.json").write_text("{}")
    assert "pass --resume auto to continue it" in unresumed_problem(tmp_path, "never")
    (tmp_path / FINAL_DIR).mkdir()
    assert "holds a run that finished" in unresumed_problem(tmp_path, "never")
    assert unresumed_problem(tmp_path, "auto") is None


def test_a_value_error_inside_training_keeps_its_traceback(tmp_path, monkeypatch, capsys):
    """Any ValueError, one from deep in torch or transformers too, ended the run as `error` with its bare message
    and no traceback anywhere: its type is said, and the traceback kept in error.log, as for any other fault."""
    import json

    from trainer import loop

    def step(self, *args, **kwargs):
        raise ValueError("Expected input batch_size (4) to match target batch_size (3).")

    monkeypatch.setattr(loop.FineTune, "_train", step)
    monkeypatch.setattr(sys, "tracebacklimit", 0, raising=False)  # as SkyPilot can leave it in an orch process
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path)), "--output", str(output)]) == 1
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["status"] == "error" and metrics["message"].startswith("ValueError: Expected input batch_size")
    assert "raise ValueError" in (output / "error.log").read_text()


def test_an_output_folder_it_may_not_read_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    """An earlier run's checkpoints its user may not read ended the trainer in a PermissionError traceback (root
    reads every file, so the refusal is made as the OS makes it)."""
    import errno

    import trainer.__main__ as entry

    def denied(output):
        raise PermissionError(errno.EACCES, "Permission denied", str(output / "checkpoints" / "latest"))

    monkeypatch.setattr(entry, "check_run_folder", denied)
    assert entry.main([str(write_job(tmp_path)), "--output", str(tmp_path / "out")]) == 2
    said = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert said == [f"error: cannot read {tmp_path / 'out' / 'checkpoints' / 'latest'} (Permission denied): make the "
                    "output folder readable."], said


def test_an_output_folder_holding_a_pipe_for_a_mark_is_refused_not_waited_on(tmp_path):
    """A pipe named metrics.json in --output was opened to read its fields, and the trainer waited for ever."""
    import os

    import trainer.__main__ as entry
    from gpu_catalog.errors import UserError

    os.mkfifo(tmp_path / "metrics.json")
    with pytest.raises(UserError, match="holds files of its own"):
        entry.check_run_folder(tmp_path)


def test_ctrl_c_in_a_plan_exits_130_in_one_line(monkeypatch, capsys):
    """Ctrl-C during a plan's first count of the data's tokens printed a KeyboardInterrupt traceback."""
    from orchestrator.cli import plan
    from tests.trainer_helpers import REPO

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plan, "plan_job", interrupted)
    assert plan.run([str(REPO / "examples" / "tiny.yaml"), "--budget", "1"]) == 130
    assert capsys.readouterr().err == "interrupted.\n"
