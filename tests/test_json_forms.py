"""`--json` as both parsers read it (`--json=true`, `--json yes`, `--json=false`): a refusal is a JSON document on
stdout whenever the command line asks for JSON in any form the parsers take, and never when it turns JSON off."""

import json

import pytest
from typer.testing import CliRunner

from orchestrator.cli.argv_forms import json_wanted
from orchestrator.cli.main import app
from tests.conftest import REPO

runner = CliRunner()
TINY_JOB = str(REPO / "examples" / "tiny.yaml")


@pytest.mark.parametrize("args, wanted", [
    (["--json"], True), (["--json=true"], True), (["--json=YES"], True), (["--json=1"], True),
    (["--json", "true"], True), (["--json", "on"], True), (["--json=false"], False), (["--json", "no"], False),
    (["--json=0"], False), ([], False), (["--json=maybe"], False),  # a value the parsers refuse, not JSON
    (["--", "--json"], False), (["--", "--json=true"], False),  # after `--`, a file's name
    (["--json", "--json=false"], True),  # on and off: refused as such, but JSON was asked for
    (["m", "--seq-len", "--json=true"], True), (["--out=--json"], False),
])
def test_json_wanted_reads_the_forms_the_parsers_read(args, wanted):
    assert json_wanted(args) is wanted


@pytest.mark.parametrize("args", [
    ["plan", TINY_JOB, "--json=true", "--budget", "abc"],
    ["plan", TINY_JOB, "--json", "yes", "--budget", "abc"],
    ["estimate", "orch/tiny-llama", "--json=true", "--seq-len", "abc"],
    ["estimate", "orch/tiny-llama", "--json=on", "--seq-len=abc"],
    ["runs", "--json=true", "--status", "bogus"],
])
def test_a_refusal_with_json_given_a_value_is_one_json_document(args):
    """`--json=true` was taken as --json, but a refusal left stdout empty."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)
    assert document["exit_code"] == 2 and document["error"], result.stdout


@pytest.mark.parametrize("args", [
    ["plan", TINY_JOB, "--json=false", "--budget", "abc"],
    ["estimate", "orch/tiny-llama", "--json", "false", "--seq-len", "abc"],
])
def test_a_refusal_with_json_turned_off_writes_nothing_on_stdout(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.startswith("error: "), result.output
