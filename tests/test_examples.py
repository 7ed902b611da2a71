"""Every example trains as written: a local dataset that ships with it, or a hub dataset with its split named.
The ones that fit a CPU train a few steps here."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli.main import app
from tests.conftest import REPO
from trainer.__main__ import main
from trainer.config import resolve_dataset
from trainer.job_file import load_config

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_each_example_names_data_it_can_read(example):
    config, base_dir = load_config(example)
    raw = yaml.safe_load(example.read_text())
    assert config.dataset is not None
    local = resolve_dataset(config.dataset, base_dir)
    assert local is not None and local.is_file() or "dataset_split" in raw  # a hub dataset says which split


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_each_example_is_estimated_with_its_own_settings(example):
    """`orch estimate examples/llama32-1b-full.yaml` was refused: its warm-up was held to the one step estimate fills
    in for a file that gives train_tokens, a key the file never wrote."""
    result = CliRunner().invoke(app, ["estimate", str(example), "--json"])
    assert result.exit_code == 0, result.output
    estimate = json.loads(result.stdout)
    assert estimate["settings"]["seq_len"] == yaml.safe_load(example.read_text())["seq_len"]


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.name.startswith("tiny")], ids=lambda p: p.name)
def test_the_cpu_examples_train(example, tmp_path):
    assert main([str(example), "--output", str(tmp_path / "out"), "--set", "max_steps=2", "--set",
                 "eval_batches=1"]) == 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["steps"] == 2
