"""`dataset` and `eval_dataset` are checked when a job is read, as `tokenizer` is: a file or folder (relative to the
job file's folder), or a name the Hugging Face Hub could hold. Anything else was queued by plan, submit and launch
--dry-run and refused only at train time (`eval_dataset` after a look-up on the hub)."""

import re

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli.main import app
from tests.trainer_helpers import TINY_DATA, hub_accepts, write_job
from trainer.__main__ import main
from trainer.config import ConfigError, config_from_dict, parse_overrides
from trainer.job_file import load_config

BASE = {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 2, "dataset": str(TINY_DATA)}
SAID = "is no file or folder here and not a Hugging Face dataset id"
KEYS = ["dataset", "eval_dataset"]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", ["[red]MARKX[/red]/ds", "[red]MARKX[/red]", "../x", "/no/such/data.jsonl",
                                   "~/no-such-data.jsonl", "./nowhere.jsonl", "a" * 5000, "org/name.git", "a--b",
                                   "a/b/c", "org /x"])
def test_a_name_that_is_neither_a_path_nor_a_hub_id_is_refused_when_the_job_is_read(tmp_path, key, value):
    with pytest.raises(ConfigError) as exc:
        load_config(write_job(tmp_path, **{key: value}, eval_fraction=None))
    message = str(exc.value)
    assert f"`{key}`" in message and SAID in message and "\n" not in message
    assert "relative to the job file" in message and "hub id" in message


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", ["tatsu-lab/alpaca", "squad", "org_1/name.v2-x", "a" * 96,
                                   "data/missing.jsonl", "missing.jsonl"])  # the last two: said later, as before
def test_a_name_the_hub_could_hold_is_accepted(tmp_path, key, value):
    assert getattr(load_config(write_job(tmp_path, **{key: value}, eval_fraction=None))[0], key) == value


def test_a_recorded_job_whose_dataset_is_gone_still_reads(tmp_path):
    """config_from_dict also reads the jobs kept with runs and results (orch report, orch calibrate): a dataset moved
    or deleted since is no reason to refuse the record; a job is judged on it when it is read to be run."""
    gone = str(tmp_path / "deleted" / "data.jsonl")
    assert config_from_dict({**BASE, "dataset": gone, "eval_dataset": gone}).dataset == gone


@pytest.mark.parametrize("key", KEYS)
def test_orch_agrees_with_the_hub_on_which_names_are_ids(tmp_path, monkeypatch, key):
    """From an empty folder, where no name is a path: orch accepts a name exactly when huggingface_hub would."""
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    job_folder = tmp_path / "jobs"
    job_folder.mkdir()
    for name in ["gpt2", "Qwen/Qwen2.5-0.5B", "a/b/c", "../x", "org/-x", "x.", "a--b", "a..b", "org/name.git",
                 "a" * 96, "a" * 97, "org /x", "./data", "[red]x[/red]"]:
        try:
            load_config(write_job(job_folder, **{key: name}, eval_fraction=None))
            orch_accepts = True
        except ConfigError:
            orch_accepts = False
        assert orch_accepts == hub_accepts(name), name


@pytest.mark.parametrize("key", KEYS)
def test_files_and_folders_are_found_from_the_job_file_whatever_their_name(tmp_path, monkeypatch, key):
    """As resolve_dataset finds them (the trainer's reading): relative to the job file's folder, not the current
    one; a name no hub id could be (spaces, `..`, a leading `./` or `../`) is fine when it is there."""
    jobs, elsewhere = tmp_path / "jobs", tmp_path / "elsewhere"
    (jobs / "my data..v1").mkdir(parents=True)
    (jobs / "my data..v1" / "train.jsonl").write_text(TINY_DATA.read_text())
    (tmp_path / "shared.jsonl").write_text(TINY_DATA.read_text())
    elsewhere.mkdir()
    (elsewhere / "here-only.jsonl").write_text(TINY_DATA.read_text())
    monkeypatch.chdir(elsewhere)
    for name in ["my data..v1", "./my data..v1/train.jsonl", "../shared.jsonl", str(tmp_path / "shared.jsonl")]:
        job = write_job(jobs, **{key: name}, eval_fraction=None)
        assert getattr(load_config(job)[0], key) == name
    job = write_job(jobs, **{key: "./here-only.jsonl"}, eval_fraction=None)  # beside the current folder only:
    # "no file or folder here" said nothing of where it was looked for, and it is one in the folder the user is in
    with pytest.raises(ConfigError, match=re.escape(f"`{key}` './here-only.jsonl' is no file or folder in '{jobs}', "
                                                    "where a job's relative paths start (the job file's folder): "
                                                    f"give '{elsewhere / 'here-only.jsonl'}'")):
        load_config(job)
    (elsewhere / "here-only.jsonl").unlink()
    with pytest.raises(ConfigError, match=f"`{key}` './here-only.jsonl' {SAID}"):
        load_config(job)


@pytest.mark.parametrize("key", KEYS)
def test_set_values_are_checked_with_the_job_not_alone(tmp_path, monkeypatch, key):
    """A --set value is checked alone from the current folder, which is not where a relative path is looked for:
    a dataset beside the job file is fine, and a bad name is still refused, once the job is read."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "beside.jsonl").write_text(TINY_DATA.read_text())
    monkeypatch.chdir(tmp_path)
    assert parse_overrides([f"{key}=./beside.jsonl"]) == {key: "./beside.jsonl"}
    job = write_job(jobs, eval_fraction=None)
    assert getattr(load_config(job, [f"{key}=./beside.jsonl"])[0], key) == "./beside.jsonl"
    with pytest.raises(ConfigError, match=f"`{key}` '../x' {SAID}"):
        load_config(job, [f"{key}=../x"])


@pytest.mark.parametrize("key", KEYS)
def test_the_trainer_refuses_it_at_once(tmp_path, capsys, key):
    """`orch train --set dataset=../x` was said only once torch had loaded, the name no file and not in the cache."""
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, eval_fraction=None)), "--output", str(output), "--set", f"{key}=../x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"`{key}` '../x' {SAID}" in err, err
    assert not output.exists()


@pytest.mark.parametrize("key, value", [("dataset", "[red]MARKX[/red]/ds"), ("eval_dataset", "[red]MARKX[/red]")])
@pytest.mark.parametrize("command", [["plan"], ["submit"], ["launch", "--dry-run"]])
def test_plan_submit_and_dry_run_refuse_it_in_one_line(tmp_path, monkeypatch, key, value, command):
    """The audit's jobs: `[red]MARKX[/red]/ds` as `dataset` was queued; as `eval_dataset`, looked up on the hub."""
    monkeypatch.chdir(tmp_path)
    job = tmp_path / "j-mark.yaml"
    job.write_text(yaml.safe_dump({"name": "tiny", "model": "orch/tiny-llama", "method": "lora", "seq_len": 256,
                                   "train_tokens": 100000, "dataset": str(TINY_DATA), key: value}))
    args = [*command[:1], str(job), "--budget", "1", *command[1:]]
    if command[0] == "launch":
        args += ["--out", str(tmp_path / "task.yaml")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"`{key}` '{value}' {SAID}" in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "task.yaml").exists()
    if command[0] == "submit":
        listed = CliRunner().invoke(app, ["queue"])
        assert "tiny" not in listed.stdout, listed.output
