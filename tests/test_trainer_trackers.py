"""report_to: TensorBoard event files and an offline W&B run carry the same series as steps.jsonl, read back with each
tracker's own reader. Skipped where the optional package is not installed."""

import json

import pytest

from tests.trainer_helpers import read_steps, write_job
from trainer.__main__ import main
from trainer.trackers import missing_package

STEPS = 3


def train(tmp_path, report_to):
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, max_steps=STEPS, seq_len=64, report_to=report_to)), "--output",
                 str(output)]) == 0
    return output, [s["loss"] for s in read_steps(output)]


def test_tensorboard_event_files_hold_the_loss_and_rate_series(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    output, losses = train(tmp_path, "tensorboard")
    events = EventAccumulator(str(output / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, STEPS + 1))
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(losses, rel=1e-6)
    assert {"train/lr", "train/tokens_per_s", "train/peak_vram_gib/process_rss"} <= set(events.Tags()["scalars"])


def test_an_offline_wandb_run_holds_the_loss_series(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_PROJECT", "orch-test")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    output, losses = train(tmp_path, "wandb")
    [run_file] = (output / "wandb").glob("offline-run-*/run-*.wandb")
    store = datastore.DataStore()
    store.open_for_scan(str(run_file))
    logged, project = {}, None
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.HasField("run"):
            project = record.run.project
        if record.HasField("history"):
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            if "train/loss" in items:
                logged[items["_step"]] = items["train/loss"]
    assert project == "orch-test"
    assert [logged[step] for step in sorted(logged)] == pytest.approx(losses, rel=1e-6)


def test_a_chosen_tracker_that_is_not_installed_says_how_to_install_it(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert missing_package("wandb") == 'report_to wandb needs the wandb package: pip install "orch[wandb]"'
    assert missing_package("none") is None
