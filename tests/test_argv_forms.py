"""Options written as Hugging Face's argument parser takes them are read as orch's own spelling."""

import json

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from tests.conftest import REPO

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


@pytest.mark.parametrize("args", [["--spot=false"], ["--spot", "false"], ["--no_spot"], ["--no-spot", "true"]])
def test_orch_plans_own_parser_reads_the_same_forms(args):
    """`orch plan` has a parser of its own (argparse, for speed): `--spot=false` was "ignored explicit argument"."""
    from orchestrator.cli.plan import run

    job = str(REPO / "examples" / "llama31-8b-qlora.yaml")
    assert run([job, "--budget", "50", "--json", *args]) == 0


def test_a_negative_amount_with_a_unit_is_refused_as_a_value_and_a_flag_set_on_and_off_is_refused(capsys):
    from orchestrator.cli.plan import run

    job = str(REPO / "examples" / "llama31-8b-qlora.yaml")
    with pytest.raises(SystemExit) as refused:  # argparse's own exit, after the one error line
        run([job, "--budget", "-5usd"])
    assert refused.value.code == 2
    assert "--budget must be above 0" in capsys.readouterr().err
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--json", "true", "--json", "false"])
    assert result.exit_code == 2 and "--json given twice, as on and off" in result.stderr


def test_an_option_in_another_spelling_is_no_value_and_help_stays_help():
    """`--budget --max_usd_per_hour 2` took the next option, underscored, as the budget."""
    from orchestrator.cli.argv_forms import argparse_options, spelled_as_orch
    from orchestrator.cli.plan import parser

    options = argparse_options(parser())
    assert spelled_as_orch(options, ["--budget", "--max_usd_per_hour", "2"]) == \
        ["--budget", "--max-usd-per-hour", "2"]
    assert spelled_as_orch(options, ["--help", "false"]) == ["--help", "false"]
    assert "--no-such" not in options and "--such" not in options
