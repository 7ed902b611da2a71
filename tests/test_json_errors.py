"""--json refusals: a script that parses stdout gets one JSON document whether the command worked or not. Bad input
left stdout empty (the `error: ...` line on stderr only), while `orch plan --budget 2 --json` printed its whole plan:
three cases for a script to tell apart, one of them a JSONDecodeError."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.cli.plan import run as plan_run

REPO = Path(__file__).resolve().parents[1]
QLORA_JOB = str(REPO / "examples" / "llama31-8b-qlora.yaml")


@pytest.mark.parametrize("args", [
    ["estimate", "foo/bar-7b", "--method", "qlora", "--json"],  # a UserError in the command
    ["estimate", "Llama-3.1-8B", "--seq-len", "nan", "--json"],  # an option's own check, before the command runs
    ["launch", QLORA_JOB, "--budget", "abc", "--json"],  # an amount option's callback
    ["catalog", "gpus", "--jsn", "--json"],  # click's usage error
    ["spend", "--by", "week", "--json"],
])
def test_a_refusal_with_json_is_one_json_document_on_stdout_and_one_line_on_stderr(tmp_path, monkeypatch, args):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    said = json.loads(result.stdout)
    assert said["exit_code"] == 2 and result.stderr.strip() == f"error: {said['error']}"


def test_without_json_a_refusal_leaves_stdout_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["estimate", "Llama-3.1-8B", "--seq-len", "nan"])
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.startswith("error: --seq-len")


def test_a_json_after_the_double_dash_is_a_word_not_the_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["runs", "--", "--json"])
    assert result.exit_code == 2 and result.stdout == ""


@pytest.mark.parametrize("args", [["--budget", "20", "--top", "0", "--json"], ["--budget", "1,5", "--json"],
                                  ["--budjet", "3", "--json"]])
def test_orch_plan_says_a_refusal_as_json_too(capsys, args):
    assert plan_run([QLORA_JOB, *args]) == 2
    out = capsys.readouterr()
    said = json.loads(out.out)
    assert said["exit_code"] == 2 and out.err.strip() == f"error: {said['error']}"


def test_a_plan_that_finds_nothing_is_one_document_with_its_error_in_it(capsys, tmp_path, monkeypatch, sky):
    assert plan_run([QLORA_JOB, "--budget", "2", "--json"]) == 2
    out = capsys.readouterr()
    plan = json.loads(out.out)  # one document: json.loads refuses a second
    assert plan["chosen"] is None and plan["rejected"] and plan["error"].startswith("no target meets the $2.00")
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    launched = CliRunner().invoke(app, ["launch", QLORA_JOB, "--budget", "2", "--json"])
    assert launched.exit_code == 2
    document = json.loads(launched.stdout)
    assert document["run"] is None and document["plan"]["chosen"] is None
    assert document["error"].startswith("no target meets the $2.00") and launched.stderr.count("error:") == 1
