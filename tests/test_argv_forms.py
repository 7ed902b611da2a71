"""Options written as Hugging Face's argument parser takes them are read as orch's own spelling."""

import json

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app

runner = CliRunner()
BASE = ["estimate", "Llama-3.1-8B", "--method", "qlora", "--gpu", "A100", "--json"]


def settings(*args: str) -> dict:
    result = runner.invoke(app, [*BASE, *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["settings"]


@pytest.mark.parametrize("given, same_as", [
    (["--gradient_checkpointing", "true"], ["--gradient-checkpointing"]),
    (["--grad-ckpt", "False"], ["--no-grad-ckpt"]),
    (["--double-quant=false"], ["--no-double-quant"]),
    (["--no-compile", "true"], ["--no-compile"]),
    (["--compile", "yes"], ["--compile"]),
    (["--lora_r", "8", "--seq_len", "512"], ["--lora-r", "8", "--seq-len", "512"]),
])
def test_hugging_face_spellings_read_as_orchs(given, same_as):
    assert settings(*given) == settings(*same_as)


def test_a_flag_given_true_is_on():
    assert settings("--compile", "true")["compile"] and not settings("--compile", "false")["compile"]


def test_a_plain_flag_given_false_is_left_out_and_a_word_that_is_no_boolean_is_still_refused():
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--json", "false"])
    assert result.exit_code == 0 and not result.stdout.lstrip().startswith("{")
    result = runner.invoke(app, [*BASE, "--compile", "maybe"])
    assert result.exit_code == 2 and "maybe" in result.stderr and len(result.stderr.strip().splitlines()) == 1
