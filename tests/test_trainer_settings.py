"""Settings users bring from other trainers: LR schedules, DoRA, rsLoRA, modules_to_save, NEFTune, whole-sequence
loss; the estimator's trainable-parameter count matches what the trainer really trains."""

import json

import pytest
import torch

from gpu_catalog.models import get_model
from orchestrator.estimator.memory import trainable_params
from orchestrator.estimator.settings import settings_from_job
from tests.trainer_helpers import BASE_JOB, read_steps, write_job
from trainer.__main__ import main
from trainer.config import config_from_dict
from trainer.data import IGNORE_INDEX
from trainer.optim import build_scheduler
from trainer.prepared import prepare


def lrs(name, total=8, **keys):
    config = config_from_dict({"model": "m", "method": "lora", "seq_len": 8, "max_steps": total,
                               "learning_rate": 1.0, "lr_scheduler": name, **keys})
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, config, total)
    values = []
    for _ in range(total):
        values.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return values


def test_schedules_follow_their_names_with_warmup_from_the_ratio():
    assert lrs("constant") == [1.0] * 8
    assert lrs("constant_with_warmup", warmup_ratio=0.25) == [0.0, 0.5] + [1.0] * 6
    assert lrs("linear") == pytest.approx([1 - k / 8 for k in range(8)])
    cosine = lrs("cosine", warmup_steps=2)
    assert cosine[:3] == pytest.approx([0.0, 0.5, 1.0]) and cosine[-1] < 0.1
    assert all(a >= b for a, b in zip(cosine[2:], cosine[3:], strict=False))


def test_a_warmup_ratio_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="warmup_ratio"):
        config_from_dict({"model": "m", "method": "lora", "seq_len": 8, "max_steps": 1, "warmup_ratio": 1.5})


def test_dora_rslora_modules_to_save_and_neftune_train_and_the_estimator_counts_the_same_parameters(tmp_path):
    keys = {"use_dora": True, "use_rslora": True, "modules_to_save": ["lm_head"], "neftune_noise_alpha": 5.0,
            "lr_scheduler": "linear", "warmup_ratio": 0.5, "max_steps": 4, "seq_len": 64, "micro_batch": 2}
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, **keys)), "--output", str(output)]) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    spec = config_from_dict({k: v for k, v in metrics["config"].items() if v is not None and v != []})
    assert trainable_params(get_model("orch/tiny-llama"), settings_from_job(spec)) == metrics["trainable_params"]
    assert [s["lr"] for s in read_steps(output)] == pytest.approx([0.0, 1.5e-3, 3e-3, 1.5e-3])  # warm-up 2, decay
    adapter_config = json.loads((output / "final" / "adapter_config.json").read_text())
    assert adapter_config["use_dora"] and adapter_config["use_rslora"] and adapter_config["modules_to_save"]


def test_whole_sequence_loss_labels_prompts_too(tmp_path):
    def labelled(**keys):
        config = config_from_dict({**BASE_JOB, "eval_fraction": 0, **keys})
        return sum(sum(label != IGNORE_INDEX for label in s.labels) for s in prepare(config, tmp_path, False).train)

    assert labelled(completion_only_loss=False) > 1.5 * labelled(completion_only_loss=True)


def test_adapter_settings_are_refused_for_full_fine_tuning(tmp_path):
    job = write_job(tmp_path, method="full", use_dora=True)
    assert main([str(job), "--output", str(tmp_path / "out")]) == 2


def test_a_column_mapping_must_be_a_mapping():
    with pytest.raises(ValueError, match="dataset_columns"):
        config_from_dict({**BASE_JOB, "dataset_columns": ["question"]})
