"""Bad input in the files orch reads: numbers YAML 1.1 reads as other numbers, dates, files far past any config's
size, keys a run would silently not use (and `orch import` carrying them), a model's context length, and two
messages that said the wrong thing."""

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.models import get_model
from orchestrator.bench.sweep import load_sweep
from orchestrator.cli.main import app
from tests.conftest import REPO
from trainer.config import ConfigError, config_from_dict
from trainer.data import DataError, sequences_for
from trainer.job_file import load_config
from trainer.random_model import train_tokenizer

DATA = REPO / "examples" / "data" / "tiny_instruct.jsonl"
JOB = "model: orch/tiny-llama\nmethod: lora\nseq_len: 64\ntrain_tokens: 1000\n"


def job_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("line", "said"), [
    ("seq_len: 0100", "`seq_len` 0100 has a leading zero, which YAML 1.1 reads as octal (64): write it without the "
                      "zero (100)"),
    ("seq_len: 0800", "`seq_len` 0800 has a leading zero"),  # no octal: was text, where 0700 was 448
    ("warmup_steps: 1:00", "`warmup_steps` 1:00 is a base-60 number to YAML 1.1 (60): write it with the digits 0-9"),
    ("train_tokens: 0x1000", "`train_tokens` 0x1000 is hexadecimal to YAML 1.1 (4096): write it with the digits 0-9"),
    ("train_tokens: 0b11", "`train_tokens` 0b11 is binary to YAML 1.1 (3)"),
    ("learning_rate: 1:00.5", "`learning_rate` 1:00.5 is a base-60 number"),
    ("target_modules: [q_proj, 010]", "`target_modules` 010 has a leading zero"),  # a list's item, said with its key
    # YAML 1.2 reads these as text, and the flags refuse them (`--seq-len 1_024`)
    ("warmup_steps: 1_000", "`warmup_steps` 1_000 has _ between its digits, which YAML 1.2 reads as text: write it "
                            "with the digits alone (1000)"),
    ("learning_rate: 0.000_2", "`learning_rate` 0.000_2 has _ between its digits"),
])
def test_numbers_yaml_11_reads_as_other_numbers_are_refused(tmp_path, line, said):
    """`seq_len: 0100` planned at 64, `train_tokens: 1:30` was 90 and `0x1000` 4096, without a word."""
    with pytest.raises(UserError) as caught:
        load_config(job_file(tmp_path, JOB + line + "\n"))
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_plain_numbers_still_read(tmp_path):
    config, _ = load_config(job_file(tmp_path, JOB + "seed: -0\nwarmup_steps: 3\nlearning_rate: 0.5e-3\n"))
    assert (config.seed, config.warmup_steps, config.learning_rate) == (0, 3, 5e-4)


@pytest.mark.parametrize(("value", "said"), [("010", "010 has a leading zero"), ("0x2", "0x2 is hexadecimal"),
                                             ("1:30", "1:30 is a base-60 number")])
def test_set_values_are_read_as_written(tmp_path, value, said):
    """`--set seq_len=010` was 8; `orch train --set max_steps=0x2` 2, as the flags refuse."""
    with pytest.raises(ConfigError) as caught:
        load_config(job_file(tmp_path, JOB), [f"max_steps={value}"])
    assert str(caught.value).startswith(f"--set max_steps: {said}") and "quote it inside" not in str(caught.value)


def test_imported_configs_and_sweeps_read_numbers_alike(tmp_path):
    source = tmp_path / "axolotl.yaml"
    source.write_text("base_model: meta-llama/Llama-3.1-8B\nadapter: lora\nsequence_len: 2048\nmax_steps: 10\n"
                      "micro_batch_size: 010\n")
    result = CliRunner().invoke(app, ["import", str(source)])
    assert result.exit_code == 2 and "`micro_batch_size` 010 has a leading zero" in result.output
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"dataset: {DATA}\ngrids:\n  - model: orch/tiny-llama\n    method: lora\n    seq_len: [064]\n")
    with pytest.raises(UserError, match="`seq_len` 064 has a leading zero"):
        load_sweep(sweep)


@pytest.mark.parametrize(("line", "said"), [
    ("name: 2024-01-01", "`name` 2024-01-01 is a date to YAML, not text: quote it (`name: '2024-01-01'`)"),
    ("seed: 2001-12-14t21:59:43.10-05:00", "`seed` must be a whole number, got 2001-12-14t21:59:43.10-05:00."),
])
def test_dates_are_said_as_written(tmp_path, line, said):
    """They were said as Python's repr: `datetime.date(2024, 1, 1)`."""
    with pytest.raises(ConfigError) as caught:
        load_config(job_file(tmp_path, JOB + line + "\n"))
    assert said in str(caught.value) and "datetime" not in str(caught.value)


def test_a_date_in_a_sweep_is_said_as_written(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"dataset: {DATA}\ngrids:\n  - model: orch/tiny-llama\n    seq_len: 64\n    method: lora\n"
                     "    tokenizer: 2001-01-01\n  - 2001-01-02: x\n")
    with pytest.raises(UserError, match=r"`tokenizer: 2001-01-01` is a date to YAML"):
        load_sweep(sweep)


def test_a_config_file_far_past_any_configs_size_is_refused_unread(tmp_path, monkeypatch):
    """A 60 MB job was read for 38 s, then accepted."""
    path = job_file(tmp_path, JOB + "#" * checks.MOST_CONFIG_BYTES)
    monkeypatch.setattr(checks, "read_text", lambda *_: pytest.fail("read"))
    with pytest.raises(UserError, match=r"job file '.*' is 1\.0 MiB, and a config is a few KB"):
        load_config(path)


@pytest.mark.parametrize(("lines", "said"), [
    ("method: full\nlora_r: 8\n", "`lora_r` applies to methods lora and qlora (the adapter), and this job's method "
                                  "is full: set method: lora, or drop it"),
    ("method: full\nlora_alpha: 32\nlora_dropout: 0.1\ntarget_modules: [q_proj]\n",
     "`lora_alpha`, `lora_dropout`, `target_modules` apply to methods lora and qlora"),
    ("warmup_steps: 5\nwarmup_ratio: 0.1\n", "`warmup_steps` and `warmup_ratio` are both set, and the run goes by "
                                             "warmup_steps (warmup_ratio is ignored): keep one of them"),
    (f"eval_dataset: {DATA}\neval_fraction: 0.1\n", "`eval_dataset` and `eval_fraction` are both set"),
    ("epochs: 2\n", "`train_tokens` and `epochs` are both set"),
])
def test_keys_the_run_would_not_use_are_refused(tmp_path, lines, said):
    job = JOB.replace("method: lora\n", "") if "method" in lines else JOB
    with pytest.raises(ConfigError) as caught:
        load_config(job_file(tmp_path, job + lines))
    assert said in str(caught.value)


@pytest.mark.parametrize("lines", ["warmup_steps: 0\nwarmup_ratio: 0.1\n", f"eval_dataset: {DATA}\neval_fraction: 0\n",
                                   "method: full\nuse_dora: false\n"])
def test_keys_that_ask_for_nothing_contradict_nothing(tmp_path, lines):
    job = JOB.replace("method: lora\n", "") if "method" in lines else JOB
    assert load_config(job_file(tmp_path, job + lines))


def test_a_jobs_complete_record_still_reads(tmp_path):
    """The queue and runs.db keep every key, defaults included (lora_r 16 under full, epochs beside train_tokens)."""
    config, _ = load_config(job_file(tmp_path, JOB.replace("lora", "full")), ["max_steps=2"])
    assert config_from_dict(json.loads(json.dumps(dataclasses.asdict(config)))) == config


def imported(tmp_path, text: str, *extra):
    source = tmp_path / "foreign.yaml"
    source.write_text(text)
    result = CliRunner().invoke(app, ["import", str(source), "--json", *extra])
    return result.exit_code, json.loads(result.stdout) if result.exit_code == 0 else result.output


@pytest.mark.parametrize(("text", "key"), [
    ("model_name_or_path: meta-llama/Llama-3.1-8B\nstage: sft\nfinetuning_type: full\nlora_rank: 8\ncutoff_len: 512\n"
     "max_steps: 10\n", "lora_rank"),
    ("model_name_or_path: meta-llama/Llama-3.1-8B\nuse_peft: false\nlora_r: 8\nmax_length: 512\nmax_steps: 10\n",
     "lora_r"),
])
def test_import_leaves_the_adapter_of_a_full_fine_tune_out_and_says_so(tmp_path, text, key):
    """The job said `method: full` and `lora_r: 8`, which plan now refuses."""
    code, report = imported(tmp_path, text)
    assert code == 0 and "lora_r" not in report["job"] and report["job"]["method"] == "full"
    assert any(k["key"] == key and "method full" in k["why"] for k in report["not_carried"])


def test_import_takes_one_of_two_warmups_and_the_users_set_wins(tmp_path):
    text = ("model_name_or_path: meta-llama/Llama-3.1-8B\nfinetuning_type: lora\ncutoff_len: 512\nmax_steps: 50\n"
            "warmup_steps: 10\nwarmup_ratio: 0.1\n")
    code, report = imported(tmp_path, text)
    assert code == 0 and report["job"]["warmup_steps"] == 10 and "warmup_ratio" not in report["job"]
    assert {k["key"] for k in report["not_carried"]} == {"warmup_ratio"}
    code, report = imported(tmp_path, text, "--set", "warmup_ratio=0.2")
    assert code == 0 and report["job"]["warmup_ratio"] == 0.2 and "warmup_steps" not in report["job"]
    code, said = imported(tmp_path, text, "--set", "method=full", "--set", "lora_r=8")  # the user's own: refused
    assert code == 2 and "`lora_r` applies to methods lora and qlora" in said


def test_a_sweep_grid_of_full_points_may_not_sweep_the_adapter(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"dataset: {DATA}\nsettings: {{lora_r: 16}}\ngrids:\n  - model: orch/tiny-llama\n"
                     "    method: [lora, full]\n    seq_len: 64\n")
    points = load_sweep(sweep).points  # settings' adapter keys are for the points that have one
    assert [p.config.get("lora_r") for p in points] == [16, None]
    sweep.write_text(f"dataset: {DATA}\ngrids:\n  - model: orch/tiny-llama\n    method: [lora, full]\n    seq_len: 64\n"
                     "    lora_r: [8, 16]\n")
    with pytest.raises(UserError, match="`lora_r` applies to methods lora and qlora"):
        load_sweep(sweep)


@pytest.mark.parametrize("value", [-1, 0, 1.5, "big", True, [4096]])
def test_a_model_configs_context_must_be_a_whole_number(tmp_path, value):
    """`max_position_embeddings: -1` was taken for no context, and the plan's note on it went unsaid."""
    config = {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 128,
              "vocab_size": 100, "max_position_embeddings": value}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="`max_position_embeddings` must be"):
        get_model(str(tmp_path))


def test_a_wrong_value_is_not_also_judged_with_the_method():
    with pytest.raises(ConfigError) as caught:
        config_from_dict(yaml.safe_load(JOB + "freeze_layers: -1\n"))
    assert str(caught.value) == "bad config: `freeze_layers` must be 0 or more, got -1."


def test_chats_with_no_assistant_turn_are_said_to_have_nothing_to_train_on():
    """Said as "packs into 0 training sequences ... lower the batch or seq_len"."""
    tokenizer = train_tokenizer(["hello world", "user assistant"] * 20, vocab_size=300)
    config = config_from_dict(yaml.safe_load(JOB))
    with pytest.raises(DataError, match="has no token to train on: the loss is on a chat's assistant turns"):
        sequences_for([{"messages": [{"role": "user", "content": "hi"}]}], config, tokenizer)


@pytest.mark.parametrize(("lines", "said"), [
    ("budget_usd: .nan\n", "`budget_usd` must be a finite number, got nan"),
    ("dataset_tokens: 1e20\n", "`dataset_tokens` is too large: at most 9007199254740992, got 100000000000000000000"),
    ("dataset_tokens: 1e300\n", "got about 10^300"),
])
def test_a_value_is_judged_before_the_keys_around_it(tmp_path, lines, said):
    """`budget_usd: .nan` alone was said only to need `usd_per_hour`, and `1e20` tokens to be no whole number."""
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(job_file(tmp_path, JOB + lines))


@pytest.mark.parametrize("name", ["tiny_instruct.jsonl", "train.CSV", "rows.parquet"])
def test_a_dataset_given_as_the_job_file_is_said_to_be_one(tmp_path, name):
    """`orch plan examples/data/tiny_instruct.jsonl` said "not valid YAML at line 2, column 1", nothing of the mix-up;
    a .json job file is still read."""
    data = tmp_path / name
    data.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n')
    result = CliRunner().invoke(app, ["plan", str(data), "--budget", "1"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert f"is a {data.suffix.lower()} file, a dataset's kind: give a job file (YAML" in result.stderr
    job = tmp_path / "job.json"
    job.write_text(json.dumps(yaml.safe_load((REPO / "examples" / "tiny.yaml").read_text())))
    assert load_config(job)[0].model == "orch/tiny-llama"


@pytest.mark.parametrize("command", [["import", "{data}"], ["bench", "{data}"], ["estimate", "{data}"],
                                     ["catalog", "local"]])
def test_a_dataset_given_where_any_config_goes_is_said_to_be_one(tmp_path, monkeypatch, command):
    """Only the job file said so: `orch import ds.jsonl` and `orch bench ds.jsonl` said "not valid YAML at line 2", a
    hardware file of rows the same, and `orch estimate ds.jsonl` "unknown model", with Llama names offered."""
    data = tmp_path / "ds.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n')
    monkeypatch.setenv("ORCH_HARDWARE", str(data))
    result = CliRunner().invoke(app, [word.format(data=data) for word in command])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    said = "is a file, and neither a known model name nor a model folder" if command[0] == "estimate" else \
        "is a .jsonl file, a dataset's kind: give a "
    assert said in result.stderr, result.stderr


def test_the_suffixes_no_config_has_are_the_trainers_dataset_kinds():
    from trainer.data_sources import FILE_KINDS

    assert set(checks.DATASET_SUFFIXES) == set(FILE_KINDS) - {".json"}  # a .json config is read
