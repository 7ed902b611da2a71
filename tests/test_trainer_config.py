import json
import os
import re

import pytest
import yaml
from typer.testing import CliRunner

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from orchestrator.cli.main import app
from tests.conftest import REPO, write_weights
from tests.trainer_helpers import TINY_DATA, hub_accepts, write_job
from trainer.__main__ import main
from trainer.config import MOST_PROBLEMS_SAID, ConfigError, config_from_dict, resolve_tokenizer
from trainer.job_file import load_config

BASE = {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 2, "dataset": "x.jsonl"}


@pytest.mark.parametrize("change, message", [
    ({"learning_rte": 1e-4}, "unknown key `learning_rte`"),
    ({"max_steps": "ten"}, "`max_steps` must be a whole number"),
    ({"packing": "yes"}, "`packing` must be true or false"),
    ({"precision": "fp8"}, "`precision` must be one of auto, bf16, fp16, fp32"),
    ({"grad_ckpt": 0}, "`grad_ckpt` must be one of auto, true, false"),
    ({"eval_fraction": 0.9}, "`eval_fraction` must be in"),
    ({"warmup_steps": -1}, "`warmup_steps` must be 0 or more"),
    ({"dataset_tokens": 10, "dataset_sequences": 10**8}, "`dataset_sequences` 100000000 is more than `dataset_tokens`"),
    ({"max_grad_norm": 1e30}, r"`max_grad_norm` must be at most 1000000, got 1e\+30"),
    ({"save_every_minutes": 1e30}, r"`save_every_minutes` must be at most 1000000000, got 1e\+30"),
    ({"dataset_columns": {"bogus": "output"}}, "bogus is none of orch's names: use messages, conversations, prompt, "
                                               "completion, instruction, input, output, text"),
    ({"dataset_columns": {"answer": "output"}}, "answer is none of orch's names"),  # the mapping written backwards
    ({"dataset_columns": {"instruction": "q", "output": "q"}}, "maps instruction and output to the same column 'q'"),
    ({"tokenizer": "../../x"}, "`tokenizer` '../../x' is no folder here and not a Hugging Face id"),
    ({"tokenizer": "/no/such/tokenizer"}, "`tokenizer` '/no/such/tokenizer' is no folder here"),
])
def test_bad_keys_and_values(change, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({**BASE, **change})


@pytest.mark.parametrize("name", ["gpt2", "Qwen/Qwen2.5-0.5B", "org_1/name.v2-x", "a/b/c", "../x", "org/-x", "x.",
                                  "a--b", "a..b", "org/name.git", "a" * 96, "a" * 97, "org /x", "./tok"])
def test_a_tokenizer_id_is_accepted_as_the_hub_accepts_it(name, tmp_path, monkeypatch):
    """orch's check of a hub id agrees with huggingface_hub's own, which transformers raises at train time. From an
    empty folder: a name that is a folder here (`../x` beside the checkout) is a folder, whatever the hub says."""
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    try:
        config_from_dict({**BASE, "tokenizer": name})
        orch_accepts = True
    except ConfigError as exc:
        assert "`tokenizer`" in str(exc)
        orch_accepts = False
    assert orch_accepts == hub_accepts(name)


def test_a_tokenizer_folder_is_accepted_whatever_its_name(tmp_path):
    folder = tmp_path / "my tokenizer..v1"
    folder.mkdir()
    (folder / "tokenizer.json").write_text("{}")
    assert config_from_dict({**BASE, "tokenizer": str(folder)}).tokenizer == str(folder)


@pytest.mark.parametrize("name", ["./tokenizers/mine", "tokenizers/mine", "../jobs/tokenizers/mine"])
def test_a_relative_tokenizer_folder_is_found_from_the_job_file(tmp_path, monkeypatch, name):
    """As `dataset` is, whatever folder the job is run from: by the config check, the trainer's checks and the
    tokenizer load (here `orch plan`'s token count). A name that is no folder there stays a hub id."""
    from trainer.count_tokens import count
    from trainer.loop import FineTune
    from trainer.random_model import train_tokenizer

    jobs = tmp_path / "project" / "jobs"  # `../jobs/...` names nothing from the working folder, elsewhere/
    train_tokenizer(["hello world", "the opposite of hot is cold"] * 20, 300).save_pretrained(
        jobs / "tokenizers" / "mine")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    config, base_dir = load_config(write_job(jobs, tokenizer=name))
    assert resolve_tokenizer(config.tokenizer, base_dir) == str(jobs / "tokenizers" / "mine")
    FineTune(config, tmp_path / "out", base_dir)  # its checks pass: the tokenizer is reachable
    (jobs / "data.jsonl").write_text("".join(TINY_DATA.read_text().splitlines(keepends=True)[:40]))
    raw = {"model": "org/not-here", "method": "lora", "seq_len": 64, "dataset": "data.jsonl", "tokenizer": name}
    assert count(raw, base_dir)["tokens"] > 0
    assert resolve_tokenizer("org/name", base_dir) == "org/name"


def test_a_whole_count_written_as_a_float_is_that_count():
    """`train_tokens: 5e6` and `micro_batch: 8.0` are counts as YAML writes them; 2.5 steps is not one."""
    config = config_from_dict({**BASE, "max_steps": None, "train_tokens": 5e6, "micro_batch": 8.0})
    assert (config.train_tokens, config.micro_batch) == (5_000_000, 8)
    assert isinstance(config.train_tokens, int) and isinstance(config.micro_batch, int)
    with pytest.raises(ConfigError, match="`micro_batch` must be a whole number, got 2.5"):
        config_from_dict({**BASE, "micro_batch": 2.5})


def test_set_overrides_are_read_as_yaml(tmp_path):
    config, _ = load_config(write_job(tmp_path, lora_r=None), ["max_steps=7", "packing=false", "method=full"])
    assert (config.max_steps, config.packing, config.method) == (7, False, "full")


@pytest.mark.parametrize("changes, message", [
    ({"dataset": "missing.jsonl"}, "dataset file 'missing.jsonl' not found"),
    ({"model": "no-such-org/no-such-model"}, "is no folder here and not in the Hugging Face cache"),  # hub offline
    ({"model": "a" * 5000}, "is no folder here, no Hugging Face id"),  # too long for a path or a hub id
    ({"dataset": "a" * 5000}, "bad config: `dataset` 'aaaa"),  # too long for a path or a hub id: said on reading
    ({"dataset": "no-such-org/no-such-data"}, "dataset 'no-such-org/no-such-data' is no file or folder here"),
    ({"modules_to_save": ["lm_head", "q_norm"]}, "`modules_to_save` names no module of orch/tiny-llama: q_norm"),
    ({"modules_to_save": ["lm_head", "nonexistent"]}, "`modules_to_save` names nonexistent, no module of a decoder"),
    ({"freeze_layers": 2}, "`freeze_layers` applies to method full only"),
    ({"method": "full", "lora_r": None, "freeze_layers": 5},
     "`freeze_layers` 5 is more than orch/tiny-llama can freeze: freeze at most 3"),
    ({"method": "full", "lora_r": None, "freeze_layers": 4},  # every block, the head tied: the final norm alone
     "`freeze_layers` 4 is more than orch/tiny-llama can freeze, and its head is tied to the frozen embeddings"),
    ({"usd_per_hour": 1.0}, "needs both `usd_per_hour` and `budget_usd`"),
    ({"loss": "full", "loss_chunk_tokens": 512}, "`loss_chunk_tokens` sizes the chunks of loss chunked"),
    ({"eval_fraction": 0, "eval_every": 5}, "`eval_every` applies to an evaluation, and this job has none"),
    ({"eval_fraction": 0.0, "eval_batches": 2}, "`eval_batches` applies to an evaluation, and this job has none"),
    ({"attention": "flash_attention_2"}, "needs the flash-attn package"),
    ({"tokenizer": "no-such-org/no-such-tokenizer"}, "tokenizer 'no-such-org/no-such-tokenizer' is no folder here "
                                                     "and not in the Hugging Face cache"),  # hub offline
])
def test_unrunnable_configs_fail_before_any_work(tmp_path, capsys, changes, message):
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, **changes)), "--output", str(output)]) == 2
    assert message in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.skipif(not os.access("/proc", os.W_OK), reason="needs a folder that passes the checks but refuses mkdir")
def test_an_output_folder_the_system_refuses_is_a_one_line_error(tmp_path, capsys):
    assert main([str(write_job(tmp_path)), "--output", "/proc/orch-output"]) == 2  # /proc: writable, yet no mkdir
    assert capsys.readouterr().err.strip() == "error: --output '/proc/orch-output': folder '/proc' takes no new " \
                                              "file (No such file or directory): choose another folder."


def test_qlora_on_a_model_bitsandbytes_cannot_quantize(tmp_path, capsys):
    model = tmp_path / "gpt2"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2,
                                                   "vocab_size": 100, "n_positions": 64}))
    (model / "tokenizer_config.json").write_text("{}")
    write_weights(model)
    assert main([str(write_job(tmp_path, model=str(model), method="qlora")), "--output", str(tmp_path / "o")]) == 2
    # a folder is refused for its shape before any work, as `orch plan` refuses it (the trainer trained a GPT-2 with
    # every weight missing, then refused it); a hub model in the cache reaches the quantization check
    assert "describes a `gpt2` model" in capsys.readouterr().err and not (tmp_path / "o").exists()
    from trainer.model import check_quantizable

    with pytest.raises(ValueError, match="method qlora needs nn.Linear layers to quantize, and gpt2 has none"):
        check_quantizable(str(model))


@pytest.mark.parametrize("changes, message", [
    ({"model": "random:nonexistent/x"}, "unknown model 'nonexistent/x'"),
    ({"model": "orch/tiny-nonexistent"}, "unknown model 'orch/tiny-nonexistent'"),
    ({"model": "cfg-only"}, "model folder '{base}/cfg-only' holds no tokenizer (none of tokenizer.json, "),
    ({"tokenizer": "empty"}, "`tokenizer` folder '{base}/empty' holds no tokenizer (none of tokenizer.json, "),
])
def test_a_model_or_tokenizer_that_cannot_be_built_is_bad_config(tmp_path, capsys, monkeypatch, changes, message):
    """An unknown `random:` shape, and a folder without tokenizer files (the model's own, or `tokenizer`), failed once
    the run had started: exit 1, status error, and transformers' paragraph about sentencepiece or tiktoken."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg-only").mkdir()
    (tmp_path / "cfg-only" / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 128, "vocab_size": 100}))
    (tmp_path / "empty").mkdir()
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, **changes)), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message.format(base=tmp_path) in err and err.count("\n") == 1
    assert not output.exists()


def test_an_output_folder_holding_other_files_is_refused(tmp_path, capsys):
    """`--output .` in a project (or `--output /`) would put checkpoints/, final/ and metrics.json among its files."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    assert main([str(write_job(tmp_path)), "--output", str(project)]) == 2
    assert "holds files of its own" in capsys.readouterr().err and sorted(p.name for p in project.iterdir()) == [
        "notes.txt"]


@pytest.mark.parametrize("name, text", [("metrics.json", '{"accuracy": 0.9}'), ("steps.jsonl", '{"step": 1}\n'),
                                        ("progress.json", "not json")])
def test_another_programs_file_of_an_orch_name_does_not_make_a_folder_a_run(tmp_path, capsys, name, text):
    """A Hugging Face Trainer's metrics.json (or another logger's steps.jsonl) beside a user's files was taken for an
    earlier run's mark: the trainer replaced it and wrote its checkpoints among them."""
    project = tmp_path / "project"
    project.mkdir()
    (project / name).write_text(text)
    (project / "predictions.csv").write_text("id,pred\n")
    assert main([str(write_job(tmp_path)), "--output", str(project)]) == 2
    assert "holds files of its own" in capsys.readouterr().err and (project / name).read_text() == text
    assert sorted(p.name for p in project.iterdir()) == sorted([name, "predictions.csv"])


def test_a_dataset_file_of_no_kind_orch_reads_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "data.txt").write_text('{"text": "hello"}\n')
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, dataset="data.txt")), "--output", str(output)]) == 2
    assert "use a .jsonl, .json, .parquet or .csv file" in capsys.readouterr().err and not output.exists()


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_dataset_that_is_no_file_nor_folder_is_refused_before_any_work(tmp_path, capsys, kind):
    """`--set dataset=/dev/zero` passed the early check: torch was loaded, and the refusal left a metrics.json."""
    if kind == "fifo":
        os.mkfifo(tmp_path / "data.jsonl")
    output = tmp_path / "out"
    dataset = "/dev/zero" if kind == "device" else "data.jsonl"
    assert main([str(write_job(tmp_path, dataset=dataset)), "--output", str(output)]) == 2
    assert f"dataset '{dataset}' is not a file or a folder: use a .jsonl" in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.parametrize("argv, said", [
    (["--resume", "bogus", "job.yaml"], "argument --resume: invalid choice: 'bogus'"),
    ([], "the following arguments are required: config"),
    (["job.yaml", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_a_command_line_mistake_is_one_line_and_exit_2(argv, said, capsys):
    """argparse printed its usage over three more lines first."""
    with pytest.raises(SystemExit) as ended:
        main(argv)
    err = capsys.readouterr().err
    assert ended.value.code == 2 and err.count("\n") == 1 and said in err, err
    assert err.startswith("error: ") and err.endswith("see `python -m trainer --help`.\n")


def test_a_mistyped_job_file_names_the_near_ones_beside_it(tmp_path):
    """`orch plan examples/llama31-8b-qlora.yml` said only "does not exist", beside the .yaml it meant."""
    (tmp_path / "llama-qlora.yaml").write_text("model: x\n")
    with pytest.raises(UserError, match=r"'(.*)/llama-qlora.yml' does not exist \(did you mean `\1/llama-qlora.yaml`"):
        load_config(tmp_path / "llama-qlora.yml")  # named with the folder typed: from here, it is there
    with pytest.raises(UserError, match=r"'.*nowhere/job.yaml' does not exist. Copy one"):
        load_config(tmp_path / "nowhere" / "job.yaml")
    with pytest.raises(UserError, match=r"'.*/other.yaml' does not exist. Copy one"):  # the folder typed is no kin
        load_config(tmp_path / "other.yaml")


def test_an_empty_output_is_said_to_be_empty_not_taken_for_the_default(tmp_path, capsys):
    """`--output ''` was read as no --output, and refused in the words of the default folder the user never gave."""
    assert main([str(write_job(tmp_path)), "--output", ""]) == 2
    assert "--output is empty: give a folder, or leave --output out" in capsys.readouterr().err


def test_a_cache_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """The tiny model is built into ORCH_CACHE: a file there was a NotADirectoryError after the run had started."""
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "job.yaml"))
    assert main([str(write_job(tmp_path)), "--output", str(tmp_path / "out")]) == 2
    assert "ORCH_CACHE" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_an_output_with_checkpoints_needs_resume(tmp_path, capsys):
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, save_every=1, max_steps=1)), "--output", str(output)]) == 0
    assert main([str(write_job(tmp_path, save_every=1, max_steps=1)), "--output", str(output)]) == 2
    assert "pass --resume auto" in capsys.readouterr().err


def test_orch_train_runs_the_trainer(tmp_path):
    result = CliRunner().invoke(app, ["train", str(write_job(tmp_path, max_steps=2)), "--output",
                                      str(tmp_path / "out"), "--set", "seq_len=64"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["config"]["seq_len"] == 64


def test_a_file_that_is_no_job_gets_the_first_few_problems_not_every_line():
    with pytest.raises(ConfigError) as raised:
        config_from_dict({f"line{i}:x:y": i for i in range(40)})
    message = str(raised.value)
    assert message.count("unknown key") == MOST_PROBLEMS_SAID
    assert "and 39 more" in message  # of 44: 40 keys, 3 required keys missing, no amount to train


def test_a_model_in_the_hub_cache_is_loadable_offline(tmp_path, monkeypatch):
    from trainer.offline_names import model_unreachable

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # HF_HUB_OFFLINE is set for every test
    assert "not in the Hugging Face cache" in model_unreachable("some-org/cached-model")
    snapshot = tmp_path / "models--some-org--cached-model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert model_unreachable("some-org/cached-model") is None


def test_a_hub_dataset_offline_is_refused_before_any_work_unless_cached(tmp_path, monkeypatch):
    from trainer.data_sources import dataset_problems

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))  # HF_HUB_OFFLINE is set for every test
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    config = config_from_dict({"model": "orch/tiny", "method": "lora", "seq_len": 64, "dataset": "some-org/ds",
                               "eval_dataset": "other-org/ds", "max_steps": 1})
    problems = dataset_problems(config, tmp_path)
    assert [p.split("'")[:2] for p in problems] == [["dataset ", "some-org/ds"], ["eval_dataset ", "other-org/ds"]]
    assert all("not in the Hugging Face cache" in p for p in problems)
    snapshot = tmp_path / "hub" / "datasets--some-org--ds" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "README.md").write_text("")
    (tmp_path / "datasets" / "other-org___ds").mkdir(parents=True)  # prepared by `datasets` itself
    assert dataset_problems(config, tmp_path) == []



def test_a_price_of_zero_is_free_and_a_negative_one_is_refused():
    assert config_from_dict({**BASE, "usd_per_hour": 0, "budget_usd": 1}).usd_per_hour == 0
    with pytest.raises(ConfigError, match=r"`usd_per_hour` must be 0 or more, got -1"):
        config_from_dict({**BASE, "usd_per_hour": -1, "budget_usd": 1})


@pytest.mark.parametrize("change, message", [
    ({"micro_batch": 65536, "grad_accum": 65536}, "`micro_batch` x `grad_accum` = 4294967296 sequences a step: at "
                                                  "most 65536, lower one of them"),
    ({"attention": "flash_attention_2", "precision": "fp32"}, "attention flash_attention_2 runs in bf16 or fp16 only"),
])
def test_settings_that_do_not_go_together_are_refused(change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict({**BASE, **change})


def test_the_trainer_refuses_fp16_on_the_cpu(tmp_path, capsys):
    """fp16 needs CUDA's loss scaler: on the CPU it trained without one, and torch said so only in a warning."""
    job = write_job(tmp_path, precision="fp16", max_steps=1)
    assert main([str(job), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "precision fp16 needs a CUDA GPU" in err[0], err


@pytest.mark.parametrize("key, near", [("learning_rat", "`learning_rate`"), ("max_step", "`max_steps`"),
                                       ("lora_alfa", "`lora_alpha`"), ("epoch", "`epochs`")])
def test_a_misspelt_key_names_orchs_nearest_keys(key, near):
    """The README promises near matches for unknown names; a job's keys had none."""
    with pytest.raises(ConfigError, match=f"unknown key `{key}` \\(did you mean {near}"):
        config_from_dict({**BASE, key: 1})


def test_orch_train_set_with_a_misspelt_key_says_which_was_meant(tmp_path):
    result = CliRunner().invoke(app, ["train", str(write_job(tmp_path)), "--output", str(tmp_path / "out"),
                                      "--set", "max_step=5"])
    assert result.exit_code == 2 and "unknown key `max_step` (did you mean `max_steps`" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_the_unknown_key_message_names_the_nearest_of_the_keys_it_is_given():
    from trainer.foreign_keys import unknown_key_message

    keys = ["learning_rate", "max_steps", "warmup_steps", "warmup_ratio", "lora_r"]
    assert unknown_key_message("learning_rat", keys) == "unknown key `learning_rat` (did you mean `learning_rate`?)"
    assert unknown_key_message("warmup", keys).endswith("(did you mean `warmup_steps` or `warmup_ratio`?)")
    assert unknown_key_message("colour", keys) == "unknown key `colour`"  # far from all: no guess
    assert unknown_key_message(3, ["fp32"]) == "unknown key `3`"  # too short: inside too many keys to pick one
    assert unknown_key_message("sequence_len", keys) == "`sequence_len` is axolotl's name: use `seq_len`"


def test_a_set_key_given_twice_with_two_values_is_refused(tmp_path):
    """`--set max_steps=2 --set max_steps=3` trained 3 steps, unsaid; the same value twice is harmless."""
    result = CliRunner().invoke(app, ["train", str(write_job(tmp_path)), "--output", str(tmp_path / "out"),
                                      "--set", "max_steps=2", "--set", "max_steps=3"])
    assert result.exit_code == 2 and "--set max_steps given twice, as 2 and 3: give it once" in result.output
    assert not (tmp_path / "out").exists()


def test_every_field_of_an_axolotl_dataset_entry_that_is_not_carried_is_listed():
    """data_files, ds_type, train_on_split and a type orch does not know vanished unsaid, though `orch import`
    promises every key not carried over; the fields that are carried (and a type orch reads by shape) are not."""
    from trainer import foreign_keys

    entry = {"path": "d.jsonl", "type": "[red]bogus", "data_files": ["x.jsonl"], "ds_type": "json",
             "train_on_split": "validation", "name": "c", "split": "train", "shards": None}
    left = dict(foreign_keys.left_behind_inside("datasets", [entry]))
    assert set(left) == {"datasets.type", "datasets.data_files", "datasets.ds_type", "datasets.train_on_split"}
    assert "'[red]bogus'" in left["datasets.type"] and "dataset_split" in left["datasets.train_on_split"]
    custom = {"path": "d.jsonl", "type": {"field_instruction": "q", "field_output": "a", "format": "{q}"}}
    assert foreign_keys.left_behind_inside("datasets", [custom]) == [
        ("datasets.type.format", "orch has no such setting: it renders a custom type's parts its own way")]
    chat = {"path": "d.jsonl", "type": "chat_template", "field_messages": "turns", "roles_to_train": ["gpt"]}
    assert [key for key, _ in foreign_keys.left_behind_inside("datasets", [chat])] == ["datasets.roles_to_train"]
    assert foreign_keys.left_behind_inside("datasets", [{"path": "d.jsonl", "type": "alpaca"}]) == []
    assert [key for key, _ in foreign_keys.left_behind_inside("test_datasets", [{"path": "e", "split": "test"}])] \
        == ["test_datasets.split"]
    assert foreign_keys.left_behind_inside("datasets", [entry, entry]) == []  # the whole key is listed instead


@pytest.mark.parametrize(("written", "loaded"), [
    ("tiny", "orch/tiny-llama"), ("Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B"),
    ("Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),  # the Instruct release, not the base row's id
    ("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B"), ("gpt2", "gpt2"), ("random:tiny", "random:tiny"),
])
def test_a_bare_catalog_name_is_the_hub_id_it_stands_for(written, loaded):
    """`model: tiny` planned and launched (plan reads the shape by its alias), then the trainer refused it: it loads
    by id."""
    assert config_from_dict({"model": written, "method": "lora", "seq_len": 64, "train_tokens": 1}).model == loaded


@pytest.mark.parametrize("method, keys, said", [
    ("lora", {"quant_bits": 4}, "`quant_bits` applies to method qlora (quantized weights), and this job's method is "
                                "lora: set method: qlora, or drop it"),
    ("full", {"double_quant": True, "qlora_fp32_upcast": False}, "`double_quant`, `qlora_fp32_upcast` apply to "
                                                                 "method qlora"),
])
def test_a_job_file_that_sets_qlora_keys_for_another_method_is_refused(tmp_path, method, keys, said):
    """`method: lora` with `quant_bits: 4` was planned and trained as bf16 LoRA, twice the weights' memory."""
    job = tmp_path / "job.yaml"
    base = {"model": "orch/tiny-llama", "seq_len": 64, "max_steps": 1}
    job.write_text(yaml.safe_dump({**base, "method": method, **keys}))
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(job)
    assert load_config(job, [f"{key}=null" for key in keys])[0].method == method
    job.write_text(yaml.safe_dump({**base, "method": "qlora", **keys}))
    assert load_config(job)[0].method == "qlora"


@pytest.mark.parametrize("model, method, said", [
    ("unsloth/Meta-Llama-3.1-8B-bnb-4bit", "lora", "is stored quantized (nf4), and transformers loads it so whatever "
                                                   "the method: set method: qlora."),
    ("Qwen/Qwen-7B-Chat-Int4", "full", "set method: qlora, or give the unquantized model to train in full"),
])
def test_a_checkpoint_stored_quantized_is_refused_for_lora_and_full(tmp_path, model, method, said):
    """unsloth's `-bnb-4bit` with `method: lora` was planned at 16 bits and trained as QLoRA without its settings."""
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"model": model, "method": method, "seq_len": 64, "max_steps": 1}))
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(job)
    job.write_text(yaml.safe_dump({"model": model, "method": "qlora", "seq_len": 64, "max_steps": 1}))
    assert load_config(job)[0].method == "qlora"


QUANTIZED_CONFIG = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
                    "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100}


@pytest.mark.parametrize("quantization_config, method, said", [
    ({"quant_method": "gptq", "bits": 4}, "lora", "is stored quantized (gptq-int4), and transformers loads it so"),
    ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "full", "stored quantized (nf4), and transformers"),
    ({"quant_method": "fp8"}, "qlora", "is stored quantized (fp8), a format orch neither estimates nor trains"),
    ({"quant_method": "gptq", "bits": 3}, "qlora", "is stored quantized (gptq 3-bit), a format orch neither"),
])
def test_a_model_folder_stored_quantized_is_found_by_its_config(tmp_path, quantization_config, method, said):
    """Only the name was read: a folder named plainq holding a GPTQ checkpoint was planned as bf16 LoRA."""
    (tmp_path / "plainq").mkdir()
    (tmp_path / "plainq" / "config.json").write_text(json.dumps({**QUANTIZED_CONFIG,
                                                                 "quantization_config": quantization_config}))
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"model": "plainq", "method": method, "seq_len": 64, "max_steps": 1}))
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(job)


LOOP_SAID = "is a symlink loop (too many levels of symbolic links): fix or remove the link."


@pytest.mark.parametrize("key", ["dataset", "eval_dataset"])
def test_a_dataset_that_is_a_symlink_loop_is_said_to_be_one(tmp_path, capsys, key):
    """Python 3.11's Path.resolve() raises RuntimeError for a loop of links: `orch train` printed its traceback."""
    (tmp_path / "loop").symlink_to("loop-2")
    (tmp_path / "loop-2").symlink_to("loop")
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, eval_fraction=None)), "--output", str(output), "--set", f"{key}=loop"]) == 2
    assert capsys.readouterr().err == f"error: `{key}` '{tmp_path / 'loop'}' {LOOP_SAID}\n"
    assert not output.exists()


def test_the_trainer_says_a_symlink_loop_no_check_caught_in_one_line(tmp_path, capsys, monkeypatch):
    """The last resort, for a path resolved where no check looked: Python's RuntimeError, said as orch says it."""
    (tmp_path / "loop").symlink_to("loop")

    def resolving(*args):
        return (tmp_path / "loop").resolve()

    monkeypatch.setattr("trainer.__main__.load_config", resolving)
    assert main([str(write_job(tmp_path))]) == 2
    assert capsys.readouterr().err == f"error: '{tmp_path / 'loop'}' {LOOP_SAID}\n"


def test_a_job_file_that_is_a_symlink_loop_is_not_said_to_be_missing(tmp_path):
    (tmp_path / "job.yaml").symlink_to("job.yaml")
    with pytest.raises(ConfigError, match=re.escape(f"job file '{tmp_path / 'job.yaml'}' {LOOP_SAID}")):
        load_config(tmp_path / "job.yaml")


@pytest.mark.parametrize("change, said", [
    ({"lora_r": [1] * 20_000}, "`lora_r` must be a whole number, got [1, 1, 1, 1, 1, 1, ...]"),
    ({"packing": {f"k{n}": [[[n]]] for n in range(20_000)}},
     "`packing` must be true or false, got {'k0': [[[...]]], 'k1': [[[...]]], 'k10': [[[...]]], 'k100': [[[...]]], "
     "...}"),
    ({"name": "x" * 20_000}, f"`name` '{'x' * 60}…{'x' * 20}' is not allowed"),
    ({"modules_to_save": [f"m{n}" for n in range(20_000)]}, "names m0, m1, m2, m3, m4 and 19,995 more, no module"),
    ({"dataset_columns": {f"c{n}": "x" for n in range(20_000)}}, "c0, c1, c10, c100, c1000 and 19,995 more is none"),
], ids=["list", "mapping", "text", "modules", "columns"])
def test_a_long_value_is_shown_cut(change, said):
    """Each value was echoed whole: a list of 20,000 made a 60 KB message."""
    with pytest.raises(ConfigError) as error:
        config_from_dict({**BASE, **change})
    assert said in str(error.value) and len(str(error.value)) < 400, str(error.value)[:500]


def bomb(levels: int) -> str:
    """YAML whose each level names the one below ten times: 10**levels values from a few hundred bytes."""
    names = "abcdefgh"[:levels]
    return "[&a [x, x, x, x, x, x, x, x, x, x], " + ", ".join(
        f"&{name} [{', '.join([f'*{below}'] * 10)}]" for below, name in zip(names, names[1:], strict=False)) + "]"


def test_yaml_aliases_that_expand_too_far_are_refused(tmp_path):
    """Seven levels (319 bytes) stood for ten million values: 20 s and 1.2 GB to print them in the error. A block
    reused with `<<: *base`, a list named a few times and a list that names itself still load."""
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(BASE) + f"lora_r: {bomb(4)}\n")
    with pytest.raises(UserError, match=r"job file '.*job.yaml' at line \d+, column \d+: YAML aliases expand past "
                                        r"10000 values: write the values out\.$"):
        load_config(job)
    with pytest.raises(ConfigError, match="YAML aliases expand past 10000 values"):
        load_config(write_job(tmp_path), [f"lora_r={bomb(4)}"])
    job.write_text("base: &base {lora_r: 8, lora_alpha: 16}\n" + "".join(
        f"copy{n}: {{<<: *base, seq_len: {n}}}\n" for n in range(100)) + f"lists: {bomb(3)}\nitself: &me [*me]\n")
    raw = checks.load_yaml(job)
    assert raw["copy99"] == {"lora_r": 8, "lora_alpha": 16, "seq_len": 99} and raw["itself"][0] is raw["itself"]


@pytest.mark.parametrize("change, said, wrong", [
    ({"grad_ckpt": "true"}, "`grad_ckpt` must be one of auto, true, false; got 'true': it is quoted, so it is read as "
                            "text; write it without quotes (`grad_ckpt: true`)", {"grad_ckpt": "maybe"}),
    ({"micro_batch": "4"}, "`micro_batch` must be a whole number, got '4': it is quoted, so it is read as text; write "
                           "it without quotes (`micro_batch: 4`)", {"micro_batch": "4.5"}),
    ({"learning_rate": "2e-4"}, "write it without quotes (`learning_rate: 2e-4`)", {"learning_rate": "fast"}),
    ({"train_tokens": "1e6"}, "write it without quotes (`train_tokens: 1e6`)", {"train_tokens": "[1]"}),
    ({"packing": "false"}, "write it without quotes (`packing: false`)", {"packing": "0"}),
    ({"quant_bits": "8"}, "write it without quotes (`quant_bits: 8`)", {"quant_bits": "3"}),
])
def test_a_value_quoted_by_mistake_is_told_to_lose_its_quotes(change, said, wrong):
    """`grad_ckpt: 'true'` read "must be one of auto, true, false; got 'true'", as if it were right. Text that would
    be wrong unquoted too gets no such advice."""
    with pytest.raises(ConfigError) as caught:
        config_from_dict({**BASE, "method": "qlora", **change})
    assert said in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        config_from_dict({**BASE, "method": "qlora", **wrong})
    assert "without quotes" not in str(caught.value)


@pytest.mark.parametrize("key, value, said", [
    ("lr", 2e-4, "unknown key `lr`: use `learning_rate` (torchtune's `optimizer.lr`)"),
    ("max_seq_len", 512, "unknown key `max_seq_len`: use `seq_len` (torchtune's `tokenizer.max_seq_len`)"),
    ("output_dir", "out", "unknown key `output_dir`: orch chooses the output folder: `orch train JOB --output DIR`"),
    ("deepspeed", "ds.json", "unknown key `deepspeed`: orch trains on one GPU"),
])
def test_an_unknown_key_orch_import_knows_gets_its_note(key, value, said):
    """`lr` and `output_dir` got a bare "unknown key" in a job file, while `orch import` says what to do instead and
    the README promises the nearest key."""
    with pytest.raises(ConfigError) as caught:
        config_from_dict({**BASE, key: value})
    assert said in str(caught.value)


@pytest.mark.parametrize("change, read", [
    ({"method": "QLoRA"}, {"method": "qlora"}), ({"method": " Full "}, {"method": "full"}),
    ({"precision": "BF16"}, {"precision": "bf16"}), ({"grad_ckpt": "AUTO"}, {"grad_ckpt": "auto"}),
    ({"optimizer": "adamw_torch"}, {"optimizer": "adamw"}), ({"optimizer": "AdamW"}, {"optimizer": "adamw"}),
    ({"optimizer": "bitsandbytes.optim.PagedAdamW8bit"}, {"optimizer": "paged_adamw_8bit"}),
])
def test_a_choice_in_another_case_or_another_trainers_optimizer_name_is_orchs_own(change, read):
    """`method: QLoRA` and `optimizer: adamw_torch` were refused in a job file, though `orch estimate --method QLoRA
    --optimizer adamw_torch` takes them."""
    config = config_from_dict({**BASE, **change})
    assert {key: getattr(config, key) for key in read} == read


def test_a_method_in_another_case_is_held_to_its_quantization_keys(tmp_path):
    """`method: LoRA` with `quant_bits: 4` is the LoRA job that trains at 16 bits, refused as `method: lora` is."""
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({**BASE, "method": "LoRA", "quant_bits": 4}))
    with pytest.raises(ConfigError, match="`quant_bits` applies to method qlora"):
        load_config(job)


@pytest.mark.parametrize("written", ["$20", "'$20'", "20usd", "20 USD", "' $20 usd '", "$ 20", "$20.0"])
def test_money_keys_take_dollars_as_the_flags_do(written):
    """`budget_usd: $20` (text to YAML) was "must be a number" while `--budget $20` was read; one reader reads both."""
    raw = checks.parse_yaml(f"budget_usd: {written}\nusd_per_hour: {written}", "job")
    config = config_from_dict({**BASE, **raw})
    assert (config.budget_usd, config.usd_per_hour) == (20, 20)


@pytest.mark.parametrize("written, message", [
    # a comma not in whole groups of three is a decimal comma in some locales: refused with the forms, not guessed
    ("'$1,8'", r"`budget_usd` '\$1,8' is not an amount of US dollars: write 20, 20\.5, \$20, \$1,800 or 20usd\.$"),
    ("20eur", r"`budget_usd` '20eur' is not an amount of US dollars: write 20"),
    ("'٢٠'", r"`budget_usd` '٢٠' is not an amount of US dollars"),
    ("'1_000'", r"`budget_usd` '1_000' is not an amount of US dollars"),
    ("''", r"`budget_usd` '' is not an amount of US dollars"),
    ("$nan", r"`budget_usd` must be a finite number, got nan\.$"),
    ("$inf", r"`budget_usd` must be a finite number, got inf\.$"),
    ("$-5", r"`budget_usd` must be 0 or more, got -5"),
    ("$2e7", r"`budget_usd` must be at most 10000000"),
])
def test_a_money_key_that_is_no_amount_of_dollars_says_how_to_write_one(written, message):
    raw = checks.parse_yaml(f"budget_usd: {written}", "job")
    with pytest.raises(ConfigError, match=message):
        config_from_dict({**BASE, **raw, "usd_per_hour": 1})


@pytest.mark.parametrize("written, usd", [("'$1,800'", 1800), ("12,500.50 USD", 12500.5), ("'$1,000,000'", 1e6)])
def test_a_money_key_takes_thousands_in_groups_of_three(written, usd):
    """orch's tables print `$1,800`; written back in a job it was refused."""
    assert config_from_dict({**BASE, **checks.parse_yaml(f"budget_usd: {written}", "job")}).budget_usd == usd


def test_a_money_key_is_text_or_a_number_and_no_other_yaml_value():
    """YAML reads `$20` and `20usd` as text and `20` as a number, all dollars; a boolean or a list is none."""
    for written in ("$20", "20usd", "20"):
        assert config_from_dict({**BASE, **checks.parse_yaml(f"usd_per_hour: {written}", "job"),
                                 "budget_usd": 1}).usd_per_hour == 20
    for written, shown in (("yes", "true"), ("[20]", r"\[20\]")):
        with pytest.raises(ConfigError, match=rf"`usd_per_hour` must be a number, got {shown}\.$"):
            config_from_dict({**BASE, **checks.parse_yaml(f"usd_per_hour: {written}", "job"), "budget_usd": 1})


def test_money_in_a_job_and_in_set_reads_as_on_the_command_line(tmp_path, capsys):
    """Reached through the trainer: a bad amount is one line and exit 2; `--set budget_usd=$20` is read."""
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, budget_usd="$18,00", usd_per_hour="2usd")), "--output", str(output)]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and "`budget_usd` '$18,00' is not an amount of US dollars" in error
    config, _ = load_config(write_job(tmp_path), ["budget_usd=$20", "usd_per_hour=2 USD"])
    assert (config.budget_usd, config.usd_per_hour) == (20, 2)


@pytest.mark.parametrize("text, said", [
    (yaml.safe_dump({**BASE, "learning_rat": 1e-4}), "bad config: unknown key `learning_rat` (did you mean "),
    ("[1, 2]\n", "a job must be a mapping of keys to values"),
    # YAML's `no`: "got false" said nothing of how to write it
    (yaml.safe_dump(BASE) + "report_to: no\n", "bad config: `report_to` must be one of none, tensorboard, wandb; got "
                                                 "false (YAML reads an unquoted no or off as false: write one "
                                                 "of the choices)"),
    ("", "a job must be a mapping of keys to values"),
])
def test_a_bad_job_file_is_named_in_its_error(tmp_path, text, said):
    """`orch report --job a.yaml --job b.yaml` said "bad config: unknown key ..." of neither; plan, launch, submit and
    train read job files through load_config, so each names the file there."""
    job = tmp_path / "typo.yaml"
    job.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(job)
    assert str(error.value).startswith(f"job file '{job}': {said}"), str(error.value)
    result = CliRunner().invoke(app, ["plan", str(job), "--budget", "5"])
    assert result.exit_code == 2 and f"job file '{job}': {said}" in result.output, result.output


@pytest.mark.parametrize("change, near", [
    ({"lr_scheduler": "cosin"}, "(did you mean `cosine`?)"),
    ({"optimizer": "adamw_8bt"}, "(did you mean `adamw_8bit`?)"),
    ({"attention": "flash"}, "(did you mean `flash_attention_2`?)"),
])
def test_a_misspelt_choice_comes_with_its_near_match(change, near):
    """Every choice was listed, the one meant not pointed at, as a misspelt key's is."""
    with pytest.raises(ConfigError) as error:
        config_from_dict({**BASE, **change})
    assert near in str(error.value), str(error.value)
    with pytest.raises(ConfigError) as error:
        config_from_dict({**BASE, "optimizer": "zzz"})
    assert "did you mean" not in str(error.value)  # nothing near: no guess


JOB = {"model": "-", "method": "lora", "seq_len": 128, "train_tokens": 1}


def test_a_folder_named_like_a_catalog_model_is_no_model_without_its_config(tmp_path):
    """A folder of notes named `Llama-3.1-8B` beside the job hid the catalog's model: the job failed, the folder
    having no config.json. Only a model folder (or a name written as a path) is read as one."""
    (tmp_path / "Llama-3.1-8B").mkdir()
    (tmp_path / "Llama-3.1-8B" / "notes.txt").write_text("runs to try", encoding="utf-8")
    config = config_from_dict({**JOB, "model": "Llama-3.1-8B"}, base_dir=tmp_path)
    assert config.model == "meta-llama/Llama-3.1-8B"
    (tmp_path / "Llama-3.1-8B" / "config.json").write_text("{}", encoding="utf-8")
    assert config_from_dict({**JOB, "model": "Llama-3.1-8B"}, base_dir=tmp_path).model == str(
        tmp_path / "Llama-3.1-8B")


def test_a_money_key_too_near_0_is_said_so_not_as_no_amount():
    """`budget_usd: "$1e-400"` was said to be no amount of US dollars, where the flags say the number reads as 0."""
    with pytest.raises(ConfigError, match=re.escape("`budget_usd` 1e-400 is too near 0 to compute with")):
        config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 1,
                          "budget_usd": "$1e-400", "usd_per_hour": 1})


@pytest.mark.parametrize("split", ["train[:50]", "train[:10%]+test"])
def test_a_sliced_split_is_taken_for_a_hub_dataset_read_whole_and_refused_where_it_streams(split):
    """A slice or a sum of splits works for a hub dataset `datasets` reads whole, and was refused there; a job
    bounded by max_steps streams its dataset, whole splits only, and took the slice to fail on it."""
    job = {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "dataset": "org/ds", "dataset_split": split}
    assert config_from_dict({**job, "epochs": 1}).dataset_split == split
    with pytest.raises(ConfigError, match=re.escape("a job bounded by max_steps or train_tokens streams its dataset")):
        config_from_dict({**job, "max_steps": 5})


def test_only_the_unknown_keys_said_are_looked_up_and_the_rest_are_counted(monkeypatch):
    """Each unknown key's near names were found, 20,000 of them in 17 s, for five said and "and 19997 more"."""
    from trainer import config as config_module

    looked_up = []
    real = config_module._unknown_key_problem
    monkeypatch.setattr(config_module, "_unknown_key_problem", lambda key, value: looked_up.append(key) or
                        real(key, value))
    raw = {"model": "orch/tiny-llama", "method": "lora", **{f"bad_key_{n}": 1 for n in range(100)}}
    with pytest.raises(ConfigError, match=r"unknown key `bad_key_4`[^;]*; and 97 more\.$"):
        config_from_dict(raw)
    assert looked_up == [f"bad_key_{n}" for n in range(5)]


def test_a_timing_warmup_as_long_as_the_run_is_refused():
    """`timing_warmup_steps: 100` in a 3-step run ended ok with tokens_per_s null, so launch, calibrate and report
    had no measurement of it; the default warm-up of a one-step smoke run is left as it is."""
    job = {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 3}
    with pytest.raises(ConfigError, match=r"`timing_warmup_steps` 3 leaves none of the run's 3 steps"):
        config_from_dict({**job, "timing_warmup_steps": 3})
    assert config_from_dict({**job, "timing_warmup_steps": 2}).timing_warmup_steps == 2
    assert config_from_dict({**job, "max_steps": 1}).max_steps == 1
    assert config_from_dict({**job, "max_steps": 1, "timing_warmup_steps": 1}).max_steps == 1  # as the queue keeps it


@pytest.mark.parametrize(("amount", "warm_up", "said"), [
    ({"max_steps": 4}, {"warmup_steps": 10**9}, "`warmup_steps` 1000000000 is not below the run's 4 steps (`max_"),
    ({"train_tokens": 8192}, {"warmup_steps": 4}, "`warmup_steps` 4 is not below the run's 4 steps (`train_tokens` /"),
    ({"train_tokens": 8192}, {"timing_warmup_steps": 1000}, "`timing_warmup_steps` 1000 leaves none of the run's 4 "
                                                            "steps (`train_tokens` /"),
])
def test_a_warm_up_that_reaches_the_last_step_a_job_file_sets_is_refused(tmp_path, amount, warm_up, said):
    """`warmup_steps: 1000000000` trained a 4-step run at a learning rate of about 0 and ended ok; beside
    train_tokens, `timing_warmup_steps: 1000` left the run with no tokens/s. `--set max_steps=2`, a job tried, is
    left alone."""
    from trainer.job_file import read_job_file

    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({"model": "orch/tiny-llama", "method": "lora", "seq_len": 256, "micro_batch": 8,
                                    **amount, **warm_up}), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        read_job_file(path)
    assert said in str(refused.value), refused.value
    if "warmup_steps" in warm_up:  # a timing warm-up past max_steps is config_from_dict's, --set or not
        assert read_job_file(path, ["max_steps=2"])[1].max_steps == 2
    path.write_text(yaml.safe_dump({"model": "orch/tiny-llama", "method": "lora", "seq_len": 256, "micro_batch": 8,
                                    "train_tokens": 8192 * 1000, **warm_up}), encoding="utf-8")
    if warm_up.get("warmup_steps", 0) < 4000:  # of 4,000 steps: a warm-up of 4, and a timing one of 1,000, are kept
        assert read_job_file(path)[1].warmup_steps == warm_up.get("warmup_steps", 0)
    if "warmup_steps" in warm_up:  # lr_scheduler constant takes no warm-up: nothing to outlast the run
        path.write_text(yaml.safe_dump({"model": "orch/tiny-llama", "method": "lora", "seq_len": 256, "micro_batch": 8,
                                        "lr_scheduler": "constant", **amount, **warm_up}), encoding="utf-8")
        assert read_job_file(path)[1].lr_scheduler == "constant"


def test_a_one_token_sequence_is_refused_as_such():
    """`seq_len: 1` packed no sequence, and the advice was to lower the batch or seq_len, which cannot help."""
    job = {"model": "orch/tiny-llama", "method": "lora", "max_steps": 3}
    with pytest.raises(ConfigError, match="`seq_len` must be at least 2: a one-token sequence has no next token"):
        config_from_dict({**job, "seq_len": 1})
    assert config_from_dict({**job, "seq_len": 2}).seq_len == 2


def test_an_output_among_the_models_built_offline_is_refused(tmp_path, monkeypatch):
    """`--output` inside the built tiny model's folder trained and wrote checkpoints into the folder it read; a
    local model folder's was refused."""
    from trainer.__main__ import main
    from trainer.offline_names import built_models_folder

    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 1,
                                   "dataset": str(REPO / "examples" / "data" / "tiny_instruct.jsonl")}))
    inside = built_models_folder() / "orch--tiny-llama-0123456789ab" / "out"
    inside.parent.mkdir(parents=True)
    assert main([str(job), "--output", str(inside)]) == 2 and not inside.exists()


def test_a_module_both_adapted_and_saved_whole_is_refused():
    """peft's modules_to_save copy of q_proj replaced its LoRA (the adapter held none), and the estimate counted
    both."""
    job = {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 1}
    with pytest.raises(ConfigError, match=r"`modules_to_save` names q_proj, which `target_modules` adapts with LoRA"):
        config_from_dict({**job, "modules_to_save": ["q_proj"]})
    assert config_from_dict({**job, "modules_to_save": ["q_proj"], "target_modules": ["v_proj"]}).modules_to_save
    assert config_from_dict({**job, "modules_to_save": ["lm_head"]}).modules_to_save == ("lm_head",)


def test_another_trainers_whole_config_named_as_a_job_points_to_orch_import():
    """A LLaMA-Factory config given to plan got five key-by-key hints and "and 26 more", where `orch import`
    converts it all."""
    raw = {"model_name_or_path": "meta-llama/Llama-3.2-1B", "stage": "sft", "finetuning_type": "lora",
           "lora_target": "all", "cutoff_len": 2048, "per_device_train_batch_size": 1}
    with pytest.raises(ConfigError, match=r"it is another trainer's config \(model_name_or_path, .*\), not an orch "
                                          r"job: `orch import` converts it"):
        config_from_dict(raw)
    with pytest.raises(ConfigError, match="`cutoff_len` is LLaMA-Factory's name") as one_slip:
        config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 1,
                          "cutoff_len": 64})
    assert "orch import" not in str(one_slip.value)


@pytest.mark.parametrize("split, read", [("train[::2]", False), ("train[:1.5%]", False), ("train[abc]", False),
                                         ("train[5]", False), ("train[:10%](pct1_dropremainder)", True),
                                         ("train[-100:]", True), ("train[10:20]+test", True)])
def test_a_split_is_read_as_datasets_reads_one(split, read):
    """`train[::2]` passed plan and submit, and datasets refused it on the VM; its own rounding form was refused."""
    job = {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "dataset": "org/data", "epochs": 1,
           "dataset_tokens": 1000, "dataset_split": split}
    if read:
        assert config_from_dict(job).dataset_split == split
    else:
        with pytest.raises(ConfigError, match="is no split name"):
            config_from_dict(job)


def test_a_null_amount_in_a_job_file_is_no_amount_the_warm_up_is_held_to(tmp_path):
    """`max_steps: null` (what `orch import` says to --set to leave a key at its default) was read as setting the
    amount, the run as 1 step, and a warm-up of 10 refused."""
    from trainer.job_file import read_job_file

    path = tmp_path / "job.yaml"
    (tmp_path / "data.jsonl").write_text('{"text": "hello world"}\n', encoding="utf-8")
    path.write_text(yaml.safe_dump({"model": "orch/tiny-llama", "method": "lora", "seq_len": 256, "epochs": 1,
                                    "dataset": "data.jsonl", "warmup_steps": 10, "max_steps": None,
                                    "train_tokens": None}), encoding="utf-8")
    assert read_job_file(path)[1].warmup_steps == 10


def test_a_warm_up_past_the_steps_its_epochs_make_is_refused_once_the_data_is_counted(tmp_path, monkeypatch):
    """`epochs: 1` beside `warmup_steps: 1000000` planned with no note and trained 67 steps at a learning rate of
    about 0, ended ok: only a file's own max_steps or train_tokens was held to its warm-up. The plan counts every
    sequence and the trainer the training ones; a warm-up within the run is kept by both."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    job = write_job(tmp_path, max_steps=None, epochs=1, warmup_steps=10**6, cpu_threads=1)
    planned = CliRunner().invoke(app, ["plan", str(job), "--budget", "5"])
    assert planned.exit_code == 2, planned.output
    assert re.fullmatch(r"error: `warmup_steps` 1000000 is not below the run's [\d,]+ steps \(`epochs` 1 x at most "
                        r"[\d,]+ sequences / \d+ a step\): its learning rate would never leave the warm-up; lower "
                        r"it, or give warmup_ratio\.\n", planned.stderr), planned.stderr
    assert main([str(job), "--output", str(tmp_path / "out")]) == 2
    assert "its learning rate would never leave the warm-up" in \
        json.loads((tmp_path / "out" / "metrics.json").read_text())["message"]
    job = write_job(tmp_path, max_steps=None, epochs=1, warmup_steps=2, cpu_threads=1)
    assert CliRunner().invoke(app, ["plan", str(job), "--budget", "5"]).exit_code == 0
