"""Configs from other trainers: their key names get orch's in the error, and `orch import` carries them over (or
says why not); an imported axolotl and LLaMA-Factory config train."""

import json
import re

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from gpu_catalog.errors import UserError
from orchestrator.cli.main import app
from orchestrator.foreign_config import translate
from tests.conftest import write_weights
from tests.trainer_helpers import TINY_DATA
from trainer.__main__ import main
from trainer.config import ConfigError, config_from_dict

BASE = {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 1}
AXOLOTL = {
    "base_model": "orch/tiny-llama", "model_type": "LlamaForCausalLM", "load_in_4bit": False, "adapter": "lora",
    "datasets": [{"path": str(TINY_DATA), "type": "alpaca"}], "val_set_size": 0.05, "output_dir": "./out",
    "sequence_len": 64, "sample_packing": True, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.05,
    "lora_target_linear": True, "gradient_accumulation_steps": 1, "micro_batch_size": 2, "num_epochs": 1,
    "max_steps": 3, "optimizer": "adamw_torch", "lr_scheduler": "cosine", "learning_rate": 0.003,
    "train_on_inputs": False, "bf16": "auto", "gradient_checkpointing": False, "warmup_steps": 1,
    "special_tokens": {"pad_token": "<|pad|>"}, "wandb_entity": None,
}
LLAMA_FACTORY = {
    "model_name_or_path": "orch/tiny-llama", "stage": "sft", "do_train": True, "finetuning_type": "lora",
    "lora_rank": 8, "lora_target": "all", "dataset": "alpaca_en_demo", "template": "llama3", "cutoff_len": 64,
    "max_samples": 1000, "output_dir": "saves/tiny", "logging_steps": 1, "save_steps": 500, "plot_loss": True,
    "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "learning_rate": 3.0e-3,
    "num_train_epochs": 1.0, "max_steps": 3, "lr_scheduler_type": "cosine", "warmup_ratio": 0.1, "bf16": False,
    "val_size": 0.05,
}


@pytest.mark.parametrize("key, message", [
    ("sequence_len", "`sequence_len` is axolotl's name: use `seq_len`"),
    ("cutoff_len", "`cutoff_len` is LLaMA-Factory's name: use `seq_len`"),
    ("max_length", "`max_length` is TRL's name: use `seq_len`"),
    ("gradient_accumulation_steps", "is the name in axolotl, LLaMA-Factory, TRL and torchtune: use `grad_accum`"),
    ("lora_rank", "`lora_rank` is LLaMA-Factory's name: use `lora_r`"),
    ("per_device_train_batch_size", "use `micro_batch`"),
    ("load_in_4bit", "use `method: qlora`"),
    ("enable_activation_checkpointing", "`enable_activation_checkpointing` is torchtune's name: use `grad_ckpt`"),
])
def test_another_trainers_key_names_orchs(key, message):
    with pytest.raises(ConfigError, match=message.replace("`", ".")):
        config_from_dict({**BASE, key: 1})


def test_an_unknown_key_of_no_trainer_stays_unknown():
    with pytest.raises(ConfigError, match="unknown key `colour`"):
        config_from_dict({**BASE, "colour": "blue"})


def test_llama_factory_quantization_makes_qlora_whatever_the_key_order():
    job = translate({"quantization_bit": 4, "finetuning_type": "lora", "stage": "sft"}).job
    assert (job["method"], job["quant_bits"]) == ("qlora", 4)


def test_llama_factorys_bitsandbytes_quantization_method_is_orchs_qlora_and_another_is_refused():
    """`quantization_method: bitsandbytes` was listed as "orch has no such setting", though orch's QLoRA is it."""
    translation = translate({"quantization_bit": 4, "quantization_method": "bitsandbytes", "finetuning_type": "lora",
                             "stage": "sft"})
    assert (translation.job["method"], translation.not_carried) == ("qlora", [])
    with pytest.raises(UserError, match="quantization method 'hqq': orch's QLoRA quantizes with bitsandbytes"):
        translate({"quantization_bit": 4, "quantization_method": "hqq", "finetuning_type": "lora", "stage": "sft"})


def test_trls_model_config_keys_are_carried():
    """TRL's ModelConfig names the dtype and the 4-bit type its own way; they were unknown keys."""
    result = translate({"model_name_or_path": "x/y", "torch_dtype": "bfloat16", "bnb_4bit_quant_type": "nf4",
                        "load_in_4bit": True, "use_bnb_nested_quant": False})
    assert {k: result.job[k] for k in ("precision", "method", "quant_bits", "double_quant")} == \
        {"precision": "bf16", "method": "qlora", "quant_bits": 4, "double_quant": False}
    left = dict(translate({"bnb_4bit_quant_type": "fp4"}).not_carried)
    assert "NF4" in left["bnb_4bit_quant_type"]


def test_torchtune_nested_keys_are_carried():
    raw = {"model": {"_component_": "torchtune.models.llama3_1.lora_llama3_1_8b", "lora_rank": 16, "lora_alpha": 32,
                     "lora_attn_modules": ["q_proj", "v_proj"]},
           "tokenizer": {"max_seq_len": 2048}, "batch_size": 2, "optimizer": {"lr": 3e-4}, "epochs": 1,
           "enable_activation_checkpointing": True, "dtype": "bf16"}
    translation = translate(raw)
    assert translation.job == {"method": "lora", "model": "meta-llama/Llama-3.1-8B", "lora_r": 16, "lora_alpha": 32,
                               "target_modules": ["q_proj", "v_proj"], "seq_len": 2048, "micro_batch": 2,
                               "learning_rate": 3e-4, "epochs": 1, "grad_ckpt": True, "precision": "bf16"}
    assert translation.not_carried == []


@pytest.mark.parametrize("raw", [
    {"model": {"lora_rank": 8}, "model.lora_rank": 16},
    {"model.lora_rank": 16, "model": {"lora_rank": 8}},
])
def test_a_key_written_both_nested_and_dotted_is_refused_whichever_comes_first(raw):
    """The later of the two won unsaid: swapping two lines of the file turned rank 16 into rank 8."""
    with pytest.raises(UserError, match=r"`model.lora_rank` is set twice, once nested and once as a dotted key"):
        translate(raw)


def test_trl_sft_config_names():
    job = translate({"model_name_or_path": "m", "dataset_name": "trl-lib/Capybara", "dataset_train_split": "train",
                     "max_length": 1024, "completion_only_loss": False, "use_peft": True, "lora_r": 16,
                     "optim": "adamw_8bit", "report_to": "tensorboard", "neftune_noise_alpha": 5}).job
    assert job == {"model": "m", "dataset": "trl-lib/Capybara", "dataset_split": "train", "seq_len": 1024,
                   "completion_only_loss": False, "method": "lora", "lora_r": 16, "optimizer": "adamw_8bit",
                   "report_to": "tensorboard", "neftune_noise_alpha": 5}


def import_and_train(tmp_path, raw, *extra):
    source, job = tmp_path / "foreign.yaml", tmp_path / "job.yaml"
    source.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["import", str(source), "--out", str(job), *extra, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert main([str(job), "--output", str(tmp_path / "out")]) == 0
    return report, json.loads((tmp_path / "out" / "metrics.json").read_text())


def test_an_axolotl_config_is_imported_and_trains(tmp_path):
    report, metrics = import_and_train(tmp_path, AXOLOTL)
    assert metrics["status"] == "ok" and metrics["steps"] == 3
    assert report["job"]["seq_len"] == 64 and report["job"]["micro_batch"] == 2
    assert {"model_type", "output_dir", "special_tokens.pad_token"} <= {k["key"] for k in report["not_carried"]}


def test_a_llama_factory_config_is_imported_with_its_dataset_given_and_trains(tmp_path):
    report, metrics = import_and_train(tmp_path, LLAMA_FACTORY, "--set", f"dataset={TINY_DATA}")
    assert metrics["status"] == "ok" and metrics["steps"] == 3 and metrics["config"]["lora_r"] == 8
    reasons = {k["key"]: k["why"] for k in report["not_carried"]}
    assert "dataset" not in reasons and "template" in reasons  # given with --set: no longer left behind


def test_an_import_missing_required_keys_says_what_to_add(tmp_path):
    source = tmp_path / "foreign.yaml"
    source.write_text(yaml.safe_dump({"lora_rank": 8, "finetuning_type": "lora"}))
    result = CliRunner().invoke(app, ["import", str(source)])
    assert result.exit_code == 2 and "missing required key `model`" in result.output and "--set" in result.output


def test_the_source_name_in_the_header_cannot_add_keys_or_escapes(tmp_path):
    """The header names the imported file; a newline or an ESC in that name stays inside the one comment line."""
    source = tmp_path / "x\nmax_steps: 1\n#\x1b[31m.yaml"
    source.write_text(yaml.safe_dump(AXOLOTL))
    out = tmp_path / "job.yaml"
    result = CliRunner().invoke(app, ["import", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# imported from ") and not any(line.startswith("#") for line in lines[1:])
    assert "\x1b" not in out.read_text() and yaml.safe_load(out.read_text()).get("max_steps") == AXOLOTL["max_steps"]


@pytest.mark.parametrize("key, value", [
    ("train_on_inputs", "false"), ("train_on_inputs", "no"), ("train_on_inputs", ["x"]),
    ("fp16", "true"), ("bf16", "yes"), ("flash_attention", "true"), ("flash_attention", 5), ("use_peft", 1),
    ("wandb_project", ["a"]), ("dataset_text_field", 5), ("additional_target", 5), ("additional_target", [1]),
    ("lora_target", 1), ("flash_attn", "fa3"), ("torch_compile", "auto"),  # axolotl's `auto` failed the import
])
def test_a_value_of_the_wrong_type_is_listed_not_converted(key, value):
    """A quoted 'false' is truthy: read as a boolean it turned the setting around, and other values were dropped
    unsaid. Each is listed as not carried over instead (a quantization's is refused: see below)."""
    translation = translate({key: value})
    assert translation.job == {} and [k for k, _ in translation.not_carried] == [key], translation


def test_real_booleans_lists_and_auto_are_carried():
    job = translate({"train_on_inputs": False, "load_in_4bit": True, "bf16": "auto", "flash_attention": True,
                     "wandb_project": "p", "additional_target": ["embed_tokens", "lm_head"],
                     "lora_target": "q_proj, v_proj"}).job
    assert job == {"completion_only_loss": True, "method": "qlora", "quant_bits": 4, "precision": "auto",
                   "attention": "flash_attention_2", "report_to": "wandb",
                   "modules_to_save": ["embed_tokens", "lm_head"], "target_modules": ["q_proj", "v_proj"]}
    # TRL's quantization type alone quantizes nothing (load_in_4bit does); Liger's switch is the fused loss
    assert translate({"bnb_4bit_quant_type": "nf4", "use_liger_kernel": True, "torch_compile": True}).job == {
        "loss": "fused", "compile": True}
    assert translate({"additional_target": "embed_tokens,lm_head", "flash_attn": "sdpa"}).job == {
        "modules_to_save": ["embed_tokens", "lm_head"], "attention": "sdpa"}


@pytest.mark.parametrize("value", [["embed_tokens", "lm_head"], 5])
def test_llama_factorys_additional_target_as_a_list_or_a_number_imports(tmp_path, value):
    """`additional_target: [embed_tokens, lm_head]` was a traceback (a list has no split)."""
    source = tmp_path / "foreign.yaml"
    source.write_text(yaml.safe_dump({**LLAMA_FACTORY, "additional_target": value}))
    result = CliRunner().invoke(app, ["import", str(source), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    carried = "additional_target" not in {k["key"] for k in report["not_carried"]}
    assert carried == isinstance(value, list) and report["job"].get("modules_to_save") == (value if carried else None)


def run_import(tmp_path, raw, *extra):
    source = tmp_path / "foreign.yaml"
    source.write_text(yaml.safe_dump(raw, sort_keys=False))
    return CliRunner().invoke(app, ["import", str(source), *extra])


@pytest.mark.parametrize("raw, message", [
    ({"load_in_4bit": True, "load_in_8bit": True},
     "`load_in_4bit: true` and `load_in_8bit: true` set orch's `quant_bits` to different values (4 and 8)"),
    ({"base_model": "meta-llama/Llama-3.1-8B", "model_name_or_path": "Qwen/Qwen2.5-7B"},
     '`base_model: "meta-llama/Llama-3.1-8B"` and `model_name_or_path: "Qwen/Qwen2.5-7B"` set orch\'s `model`'),
    ({"max_length": 2048, "max_seq_length": 1024},
     "`max_length: 2048` and `max_seq_length: 1024` set orch's `seq_len` to different values"),
    ({"lora_r": 8, "lora_rank": 16}, "`lora_r: 8` and `lora_rank: 16` set orch's `lora_r` to different values"),
    ({"finetuning_type": "full", "quantization_bit": 4}, "set orch's `method` to different values"),
])
def test_two_keys_that_set_one_setting_differently_are_refused_naming_both(tmp_path, raw, message):
    """The later key won silently: 4- and 8-bit wrote quant_bits 8, two model names trained one of them."""
    out = tmp_path / "job.yaml"
    result = run_import(tmp_path, {**raw, "sequence_len": 64}, "--out", str(out))
    assert result.exit_code == 2 and message in result.output and len(result.output.splitlines()) == 1, result.output
    assert not out.exists()


def test_the_same_value_under_two_names_is_one_setting():
    job = translate({"base_model": "m", "model_name_or_path": "m", "max_length": 2048, "max_seq_length": 2048.0,
                     "adapter": "lora", "load_in_4bit": True, "lora_r": 8, "lora_rank": 8}).job
    assert job == {"model": "m", "seq_len": 2048, "method": "qlora", "quant_bits": 4, "lora_r": 8}
    with pytest.raises(UserError, match="`max_length: 2048` and `max_seq_length: 1024`"):
        translate({"max_length": 2048, "max_seq_length": 1024})


def test_axolotl_lora_target_linear_adds_every_linear_module_to_a_target_list():
    """axolotl unites the two (lora_target_modules plus every linear module): the list alone was written before."""
    job = translate({"lora_target_linear": True, "lora_target_modules": ["q_proj", "v_proj"]}).job
    assert job == {"target_modules": "all-linear"}


@pytest.mark.parametrize("raw", [
    {"stage": "dpo"}, {"stage": "ppo"}, {"stage": "rm"}, {"stage": "kto"}, {"rl": "dpo", "adapter": "lora"},
    {"rl": "grpo"}, {"reward_model": True}, {"loss": {"_component_": "torchtune.rlhf.loss.DPOLoss"}},
])
def test_a_config_for_preference_or_reward_training_is_refused(tmp_path, raw):
    """`stage: dpo` was imported as a supervised job, with only "orch has no such setting" said of the stage."""
    result = run_import(tmp_path, {"model_name_or_path": "orch/tiny-llama", "cutoff_len": 64, "max_steps": 1, **raw})
    key = next(iter(raw))
    assert result.exit_code == 2 and "orch only does supervised fine-tuning" in result.output, result.output
    assert f"`{key}" in result.output and len(result.output.splitlines()) == 1


@pytest.mark.parametrize("stage", ["sft2", "Sft", 3])
def test_a_stage_llama_factory_does_not_have_is_said_to_be_none(tmp_path, stage):
    """`stage: sft2` was called preference or reward training."""
    result = run_import(tmp_path, {"model_name_or_path": "orch/tiny-llama", "cutoff_len": 64, "stage": stage})
    assert result.exit_code == 2 and "is no LLaMA-Factory stage (one of pt, sft, rm" in result.output, result.output


def test_llama_factory_sft_is_orchs_own_training_and_pt_says_what_data_it_needs():
    assert translate(LLAMA_FACTORY).not_carried == translate({**LLAMA_FACTORY, "stage": None}).not_carried
    reasons = dict(translate({**LLAMA_FACTORY, "stage": "pt"}).not_carried)
    assert "records are `text`" in reasons["stage"]


def test_import_refuses_to_replace_an_existing_out_file_without_force(tmp_path):
    """A job edited by hand after an import was overwritten by the next one, unasked."""
    out = tmp_path / "job.yaml"
    out.write_text("# my edits\n")
    result = run_import(tmp_path, AXOLOTL, "--out", str(out))
    assert result.exit_code == 2 and "already exists: pass --force" in result.output, result.output
    assert out.read_text() == "# my edits\n"
    result = run_import(tmp_path, AXOLOTL, "--out", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["seq_len"] == AXOLOTL["sequence_len"]


def test_a_count_given_as_a_whole_float_is_written_as_a_whole_number(tmp_path):
    """`--set grad_accum=1e3` wrote `grad_accum: 1000.0` into the job."""
    out = tmp_path / "job.yaml"
    result = run_import(tmp_path, AXOLOTL, "--set", "grad_accum=1e3", "--set", "micro_batch=2.0", "--out", str(out))
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(out.read_text())
    assert (written["grad_accum"], written["micro_batch"]) == (1000, 2) and "1000.0" not in out.read_text()
    assert type(written["grad_accum"]) is int and type(written["micro_batch"]) is int


@pytest.mark.parametrize("model, said", [
    ("[bold red]x[/]", "`model` '[bold red]x[/]' is no folder here, no Hugging Face id"),
    ("../../no-such-folder", "`model` folder '../../no-such-folder' does not exist"),
    (".", "is a folder without a config.json: give the folder a model was saved to")])
def test_a_model_no_job_can_load_is_refused_and_nothing_is_written(tmp_path, model, said):
    """The model was the one path-like key not judged: the import wrote it, and `orch plan` refused the job."""
    out = tmp_path / "job.yaml"
    result = run_import(tmp_path, {**AXOLOTL, "base_model": model}, "--out", str(out))
    assert result.exit_code == 2 and said in result.stderr, result.output
    assert not out.exists()


def test_force_without_an_out_file_is_refused(tmp_path):
    """--force alone did nothing, in silence: the --out it was meant for was likely left out."""
    result = run_import(tmp_path, {"model_name_or_path": "orch/tiny-llama", "cutoff_len": 64}, "--force")
    assert result.exit_code == 2 and "--force replaces an existing --out file: give --out FILE" in result.output


def test_a_refused_import_quotes_the_note_that_has_the_fix(tmp_path):
    """A LLaMA-Factory dataset name is left behind, so the job has no data and is refused for "say how much to
    train": the refusal says the name was not carried over and how to give the data, not only on success."""
    source = tmp_path / "lf.yaml"
    source.write_text(yaml.safe_dump({k: v for k, v in LLAMA_FACTORY.items() if k != "max_steps"}))
    result = CliRunner().invoke(app, ["import", str(source)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert '"alpaca_en_demo"' in result.output and "--set dataset=PATH_OR_ID" in result.output
    given = CliRunner().invoke(app, ["import", str(source), "--set", f"dataset={TINY_DATA}", "--set", "lora_r=0"])
    assert given.exit_code == 2 and "alpaca_en_demo" not in given.output  # given: the note is no longer the fix


LITGPT = {"checkpoint_dir": "checkpoints/meta-llama/Llama-3.2-1B", "out_dir": "out/finetune/lora", "lora_r": 8,
          "lora_alpha": 16, "data": {"class_path": "litgpt.data.Alpaca2k"},
          "train": {"global_batch_size": 8, "micro_batch_size": 2, "max_seq_length": 512, "epochs": 1}}


def test_a_refused_litgpt_import_says_only_shared_keys_were_read_and_how_to_give_the_rest(tmp_path):
    """A LitGPT config was refused with "missing required key `model`; `seq_len` ...": its checkpoint_dir and
    train.max_seq_length vanished unsaid, and nothing said orch does not translate LitGPT's configs."""
    result = run_import(tmp_path, LITGPT)
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "This is a LitGPT config, which orch reads only for the keys it shares with" in said
    assert "(lora_alpha, lora_r, method)" in said
    assert "--set model=meta-llama/Llama-3.2-1B (LitGPT's `checkpoint_dir`: 'checkpoints/meta-llama/Llama-3.2-1B')" \
        in said and "--set seq_len=512 (LitGPT's `train.max_seq_length`: 512)" in said
    given = run_import(tmp_path, LITGPT, "--set", "model=orch/tiny-llama", "--set", "seq_len=64")
    assert given.exit_code == 2 and "--set model=" not in given.output and "--set dataset=PATH_OR_ID" in given.output


def test_a_torchtune_model_builder_orch_does_not_read_is_said_when_the_import_is_refused(tmp_path):
    """`model._component_: x` left the job without model and method, and the refusal said only "missing required key
    `model`", without the note that says what orch reads and what to give."""
    result = run_import(tmp_path, {"model": {"_component_": "mymodels.build_it"}, "tokenizer": {"max_seq_len": 64},
                                   "dataset": {"_component_": "torchtune.datasets.alpaca_dataset"}, "epochs": 1,
                                   "optimizer": {"_component_": "torch.optim.AdamW", "lr": 3e-4}},
                        "--set", f"dataset={TINY_DATA}")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert said.count("'mymodels.build_it' is no torchtune model builder orch reads") == 1, said
    assert "give --set method=METHOD and --set model=HUB_ID" in said


def test_axolotls_wandb_project_is_listed_with_the_variable_to_set():
    """orch has no W&B project key: the project name would be lost unsaid, the runs going to the default project."""
    translation = translate({"wandb_project": "foo"})
    assert translation.job == {"report_to": "wandb"}
    (key, why), = translation.not_carried
    assert key == "wandb_project" and "WANDB_PROJECT=foo where" in why
    (_, why), = translate({"wandb_project": '$(touch pwned)" x'}).not_carried  # pasted, the `$(...)` ran
    assert """WANDB_PROJECT='$(touch pwned)" x' where""" in why


def test_an_axolotl_dataset_entrys_fields_orch_does_not_read_are_listed():
    """Only path, type, name, split and the chat fields of a `datasets:` entry are read: the rest vanished unsaid."""
    from orchestrator.foreign_config import translate

    raw = {"base_model": "meta-llama/Llama-3.1-8B", "adapter": "lora", "sequence_len": 512,
           "datasets": [{"path": "data.jsonl", "type": "bogus", "data_files": ["a.jsonl"], "ds_type": "json",
                         "train_on_split": "train"}]}
    translation = translate(raw)
    listed = {key for key, _ in translation.not_carried}
    assert {"datasets.data_files", "datasets.ds_type", "datasets.train_on_split", "datasets.type"} <= listed
    assert translation.job["dataset"] == "data.jsonl"


@pytest.mark.parametrize("mappings, listed", [({"role": "from", "content": "value"}, False),
                                             ({"role": "role", "content": "content"}, False),
                                             ({"role": "speaker", "content": "text"}, True)])
def test_a_chat_datasets_turn_keys_are_listed_only_where_orch_does_not_read_them(mappings, listed):
    """`message_property_mappings: {role: from, content: value}` is ShareGPT, which orch reads as it is: it was
    listed as "no such setting", as if the records could not be read."""
    raw = {"base_model": "meta-llama/Llama-3.1-8B", "adapter": "lora", "sequence_len": 512,
           "datasets": [{"path": "data.jsonl", "type": "chat_template", "field_messages": "conversations",
                         "message_property_mappings": mappings}]}
    keys = [key for key, _ in translate(raw).not_carried]
    assert ("datasets.message_property_mappings" in keys) is listed, keys


def test_an_axolotl_dataset_entry_written_as_one_mapping_is_read_as_a_list_of_one():
    """`datasets: {path: ..., type: alpaca}` was flattened to `datasets.path` and `datasets.type` and dropped: with
    --set epochs=1 the import said only "say how much to train", never naming `datasets`."""
    raw = {"base_model": "meta-llama/Llama-3.1-8B", "adapter": "lora", "sequence_len": 512,
           "datasets": {"path": "data.jsonl", "type": "alpaca", "ds_type": "json"}}
    translation = translate(raw)
    assert translation.job["dataset"] == "data.jsonl"
    assert [key for key, _ in translation.not_carried] == ["datasets.ds_type"]


def test_a_set_key_given_twice_with_two_values_is_refused(tmp_path):
    """`orch import --set k=1 --set k=2` kept the last silently, where `orch train` refuses it."""
    config = tmp_path / "axolotl.yaml"
    config.write_text("base_model: meta-llama/Llama-3.1-8B\nadapter: lora\nsequence_len: 512\nmax_steps: 10\n"
                      "datasets:\n  - path: data.jsonl\n    type: alpaca\n", encoding="utf-8")
    (tmp_path / "data.jsonl").write_text(TINY_DATA.read_text())
    twice = CliRunner().invoke(app, ["import", str(config), "--set", "lora_r=8", "--set", "lora_r=16"])
    assert twice.exit_code == 2 and "--set lora_r given twice, as 8 and 16" in twice.stderr, twice.output
    same = CliRunner().invoke(app, ["import", str(config), "--set", "lora_r=8", "--set", "lora_r=8"])
    assert same.exit_code == 0 and "lora_r: 8" in same.stdout, same.output


def test_a_dataset_beside_the_source_config_is_found_from_the_imported_job(tmp_path, monkeypatch):
    """`data/train.jsonl` beside an axolotl config in another folder was written as it was, and `orch plan` of the
    imported job said the dataset does not exist."""
    (tmp_path / "src" / "data").mkdir(parents=True)
    (tmp_path / "src" / "data" / "train.jsonl").write_text(TINY_DATA.read_text())
    (tmp_path / "out").mkdir()
    source = tmp_path / "src" / "axolotl.yaml"
    source.write_text(yaml.safe_dump({**AXOLOTL, "datasets": [{"path": "data/train.jsonl", "type": "alpaca"}]}))
    monkeypatch.chdir(tmp_path)
    for out, written in ((tmp_path / "out" / "job.yaml", str(tmp_path / "src" / "data" / "train.jsonl")),
                         (tmp_path / "job.yaml", "src/data/train.jsonl")):
        result = CliRunner().invoke(app, ["import", str(source), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert yaml.safe_load(out.read_text())["dataset"] == written
        assert CliRunner().invoke(app, ["plan", str(out), "--budget", "1"]).exit_code == 0


@pytest.mark.parametrize("dataset", ["data/missing.jsonl", "./nowhere", "/no/such/file.parquet"])
def test_a_dataset_written_as_a_file_that_is_nowhere_is_refused_before_the_job_is_written(tmp_path, dataset):
    """`--set dataset=data/missing.jsonl` wrote a job (exit 0) that `orch plan` then refused: the import judged the
    dataset by written_problems alone, which leaves datasets out, and `data/x.jsonl` passed for a hub id."""
    source = tmp_path / "axolotl.yaml"
    source.write_text(yaml.safe_dump(AXOLOTL))
    out = tmp_path / "job.yaml"
    result = CliRunner().invoke(app, ["import", str(source), "--set", f"dataset={dataset}", "--out", str(out)])
    said = re.search("does not exist \\(relative paths start at|is no file or folder here", result.stderr)
    assert result.exit_code == 2 and said, result.output
    assert not out.exists()


def test_a_model_folder_beside_the_source_config_is_found_from_the_imported_job(tmp_path, monkeypatch):
    """`base_model: ./real` was written as it was, so the job's model was looked for beside the imported job (and the
    scheduler rejected it), while its dataset and tokenizer paths were moved; a hub id stays an id."""
    from trainer.config import model_folder

    (tmp_path / "src" / "real").mkdir(parents=True)
    (tmp_path / "src" / "real" / "config.json").write_text(json.dumps({  # a shape orch trains, as plan asks
        "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 128, "vocab_size": 100}))
    (tmp_path / "src" / "real" / "tokenizer.json").write_text("{}")  # plan, and so import, refuse a model without one
    write_weights(tmp_path / "src" / "real")  # or without weights
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    for name in ("./real", "real"):
        source = tmp_path / "src" / "axolotl.yaml"
        source.write_text(yaml.safe_dump({**AXOLOTL, "base_model": name}))
        for out, written in ((tmp_path / "out" / "job.yaml", str(tmp_path / "src" / "real")),
                             (tmp_path / "job.yaml", "./src/real")):
            result = CliRunner().invoke(app, ["import", str(source), "--out", str(out), "--force"])
            assert result.exit_code == 0, result.output
            model = yaml.safe_load(out.read_text())["model"]
            assert model == written and model_folder(model, out.parent) == tmp_path / "src" / "real", (name, model)
    source.write_text(yaml.safe_dump(AXOLOTL))  # orch/tiny-llama: nothing of that name beside the config
    result = CliRunner().invoke(app, ["import", str(source), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["job"]["model"] == "orch/tiny-llama", result.output


def test_an_import_whose_qlora_keys_meet_another_method_is_refused_as_plan_would(tmp_path):
    source = tmp_path / "axolotl.yaml"
    source.write_text(yaml.safe_dump({**AXOLOTL, "adapter": "qlora", "load_in_4bit": True}))
    result = CliRunner().invoke(app, ["import", str(source), "--set", "method=lora"])
    assert result.exit_code == 2 and "to method qlora (quantized weights)" in result.output, result.output


def test_a_misspelled_key_is_listed_with_the_key_it_is_a_typo_of(tmp_path):
    """`learning_rat` imported with only "orch has no such setting", so the job trained at the default rate unsaid.
    A typo names the key meant (orch's, or another trainer's orch reads); a real key orch has no use for gets no
    guess (axolotl's `model_type` is not a typo of `model`)."""
    source = tmp_path / "axolotl.yaml"
    source.write_text(yaml.safe_dump({**AXOLOTL, "learning_rate": None, "learning_rat": 0.001}))
    result = CliRunner().invoke(app, ["import", str(source)])
    assert result.exit_code == 0, result.output
    assert "learning_rat: orch has no such setting: did you mean `learning_rate`?" in result.stderr
    reasons = dict(translate({"sequnce_len": 64, "optimizer": {"lrr": 0.1}, "model_type": "x"}).not_carried)
    assert reasons == {"sequnce_len": "orch has no such setting: did you mean `sequence_len`?",
                       "optimizer.lrr": "orch has no such setting: did you mean `optimizer.lr`?",
                       "model_type": "orch has no such setting"}


# torchtune's recipes/configs/llama3_1/8B_qlora_single_device.yaml, the keys orch reads (as published)
TORCHTUNE_QLORA = {
    "model": {"_component_": "torchtune.models.llama3_1.qlora_llama3_1_8b",
              "lora_attn_modules": ["q_proj", "v_proj", "k_proj", "output_proj"], "apply_lora_to_mlp": True,
              "apply_lora_to_output": False, "lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0},
    "tokenizer": {"_component_": "torchtune.models.llama3.llama3_tokenizer", "max_seq_len": None},
    "checkpointer": {"_component_": "torchtune.training.FullModelHFCheckpointer",
                     "checkpoint_dir": "/tmp/Meta-Llama-3.1-8B-Instruct/"},
    "dataset": {"_component_": "torchtune.datasets.alpaca_cleaned_dataset"}, "batch_size": 2,
    "optimizer": {"_component_": "torch.optim.AdamW", "fused": True, "weight_decay": 0.01, "lr": 3e-4},
    "loss": {"_component_": "torchtune.modules.loss.CEWithChunkedOutputLoss"}, "epochs": 1,
    "gradient_accumulation_steps": 16, "log_every_n_steps": 1, "dtype": "bf16", "enable_activation_checkpointing": True,
}


def test_torchtunes_qlora_recipe_imports_as_qlora_of_its_model(tmp_path):
    """The recipe as published was refused (`output_proj` copied as it was); given the target list, it became
    `method: lora` with model._component_ (the one key that says QLoRA) listed as "no such setting"."""
    result = run_import(tmp_path, TORCHTUNE_QLORA, "--set", f"dataset={TINY_DATA}", "--set", "seq_len=2048", "--json")
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)["job"]
    assert {k: job[k] for k in ("method", "quant_bits", "model", "target_modules", "loss", "log_every")} == {
        "method": "qlora", "quant_bits": 4, "model": "meta-llama/Llama-3.1-8B", "target_modules": "all-linear",
        "loss": "chunked", "log_every": 1}


def test_torchtune_module_names_and_builders_are_orchs():
    job = translate({"model": {"_component_": "torchtune.models.qwen2_5.lora_qwen2_5_0_5b",
                               "lora_attn_modules": ["q_proj", "output_proj"]},
                     "loss": {"_component_": "torch.nn.CrossEntropyLoss"}}).job
    assert job == {"method": "lora", "model": "Qwen/Qwen2.5-0.5B", "target_modules": ["q_proj", "o_proj"],
                   "loss": "full"}
    assert translate({"model": {"_component_": "torchtune.models.llama3_1.llama3_1_8b"}}).job["method"] == "full"
    unknown = translate({"model": {"_component_": "torchtune.models.llama3_2_vision.lora_llama3_2_vision_11b"}})
    assert unknown.job == {"method": "lora"}
    assert "--set model=" in dict(unknown.not_carried)["model._component_"]
    output = dict(translate({"model": {"apply_lora_to_output": True}}).not_carried)["model.apply_lora_to_output"]
    assert "lm_head" in output


def test_a_refused_torchtune_import_says_to_give_data_and_seq_len(tmp_path):
    """The recipe's `max_seq_len: null` and its dataset builder were dropped unsaid: the refusal said only "missing
    required key `seq_len`"."""
    result = run_import(tmp_path, TORCHTUNE_QLORA)
    assert result.exit_code == 2 and "--set seq_len=N" in result.output and "--set dataset=" in result.output


@pytest.mark.parametrize("raw", [{"optimizer": "paged_adamw_32bit"}, {"optim": "paged_adamw_32bit"},
                                 {"optim": "adamw_apex_fused"}])
def test_a_paged_32bit_optimizer_is_adamw_in_import_and_in_a_job(raw):
    """axolotl's qlora.yml and TRL take paged_adamw_32bit; `orch estimate` read it as adamw, import and a job file
    refused it."""
    assert translate(raw).job == {"optimizer": "adamw"}
    assert config_from_dict({**BASE, "optimizer": next(iter(raw.values()))}).optimizer == "adamw"


@pytest.mark.parametrize(("raw", "said"), [({"optimizer": "paged_adamw_32bit"}, "as adamw, unpaged"),
                                           ({"optim": "paged_lion_8bit"}, "as lion_8bit, unpaged"),
                                           ({"optim": "adamw_apex_fused"}, None)])
def test_a_paged_optimizer_trained_unpaged_is_listed(raw, said):
    """paged_adamw_32bit became adamw with nothing said: its paging, chosen to survive memory spikes, was gone."""
    (key, value), = raw.items()
    listed = translate(raw).not_carried
    assert listed == ([(key, f"{value} is carried over {said}: orch pages only paged_adamw_8bit's states, so these "
                             "stay on the GPU, where the plan counts them (--set optimizer=paged_adamw_8bit pages "
                             "8-bit ones)")] if said else [])


def test_trls_attn_implementation_is_orchs_attention():
    assert translate({"attn_implementation": "flash_attention_2"}).job == {"attention": "flash_attention_2"}
    assert [k for k, _ in translate({"attn_implementation": "flash_attention_3"}).not_carried] == \
        ["attn_implementation"]


# LLaMA-Factory's examples/train_qlora/llama3_lora_sft_otfq.yaml (as published)
LLAMA_FACTORY_OTFQ = {
    "model_name_or_path": "meta-llama/Meta-Llama-3-8B-Instruct", "quantization_bit": 4,
    "quantization_method": "bitsandbytes", "trust_remote_code": True, "stage": "sft", "do_train": True,
    "finetuning_type": "lora", "lora_rank": 8, "lora_target": "all", "dataset": "identity,alpaca_en_demo",
    "template": "llama3", "cutoff_len": 2048, "max_samples": 1000, "overwrite_cache": True,
    "preprocessing_num_workers": 16, "output_dir": "saves/llama3-8b/lora/sft", "logging_steps": 10, "save_steps": 500,
    "plot_loss": True, "overwrite_output_dir": True, "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 8, "learning_rate": 1.0e-4, "num_train_epochs": 3.0, "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.1, "bf16": True, "ddp_timeout": 180000000,
}


def test_llama_factory_defaults_and_max_samples_are_carried_or_said(tmp_path):
    """The job took orch's lora_alpha 32 and dropout 0.05 where LLaMA-Factory uses 2 x rank and 0, held 5% out, and
    packed; max_samples (the source trained on 1000 samples) was "no such setting": the whole dataset was trained."""
    result = run_import(tmp_path, LLAMA_FACTORY_OTFQ, "--set", "dataset=tatsu-lab/alpaca", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    defaults = {d["key"]: d["value"] for d in report["source_defaults"]}
    # grad_ckpt: LLaMA-Factory checkpoints unless disable_gradient_checkpointing; a job estimated without it did not
    # fit a card the source trains on
    assert defaults == {"lora_alpha": 16, "lora_dropout": 0.0, "packing": False, "eval_fraction": 0.0,
                        "grad_ckpt": True}
    assert {k: report["job"][k] for k in defaults} == defaults and report["job"]["method"] == "qlora"
    why = {k["key"]: k["why"] for k in report["not_carried"]}
    assert "at most 1000 samples" in why["max_samples"] and "--set max_steps=N" in why["max_samples"]
    assert "dataset" not in why  # given with --set
    capped = run_import(tmp_path, LLAMA_FACTORY_OTFQ, "--set", "dataset=tatsu-lab/alpaca", "--set", "max_steps=10",
                        "--set", "lora_r=16", "--json")
    report = json.loads(capped.stdout)
    assert "max_samples" not in {k["key"] for k in report["not_carried"]} and report["job"]["lora_alpha"] == 32


def test_a_source_default_is_marked_in_the_written_job(tmp_path):
    out = tmp_path / "job.yaml"
    result = run_import(tmp_path, LLAMA_FACTORY_OTFQ, "--set", "dataset=tatsu-lab/alpaca", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "lora_alpha: 16  # (source default) LLaMA-Factory's lora_alpha default: 2 x lora_rank" in out.read_text()
    assert "lora_alpha: 16 (LLaMA-Factory's lora_alpha default: 2 x lora_rank)" in result.stderr
    assert yaml.safe_load(out.read_text())["lora_alpha"] == 16


# TRL's examples/cli_configs/example_config.yaml (as published)
TRL_EXAMPLE = {"model_name_or_path": "Qwen/Qwen2.5-0.5B", "dataset_name": "stanfordnlp/imdb", "report_to": "none",
               "learning_rate": 0.0001, "lr_scheduler_type": "cosine"}


def test_a_trl_config_takes_trls_defaults_for_what_it_leaves_out(tmp_path):
    """No max_length and no use_peft were "missing required key": TRL trains in full at 1024 tokens."""
    result = run_import(tmp_path, TRL_EXAMPLE, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    defaults = {d["key"]: d["value"] for d in report["source_defaults"]}
    assert defaults["method"] == "full" and defaults["seq_len"] == 1024 and defaults["epochs"] == 3.0
    assert "learning_rate" not in defaults and report["job"]["learning_rate"] == 0.0001  # the config's own
    peft = translate({**TRL_EXAMPLE, "use_peft": True, "load_in_4bit": True})
    assert dict((k, v) for k, v, _ in peft.source_defaults(peft.job))["double_quant"] is False


@pytest.mark.parametrize("strategy, evaluates", [("steps", True), ("epoch", True), ("no", False)])
def test_a_trl_config_that_evaluates_does_so_on_trls_test_split(tmp_path, strategy, evaluates):
    """`eval_strategy: steps` was "no such setting", and the job evaluated on nothing: TRL evaluates on
    dataset_test_split, `test` unless given, and keeps eval_steps."""
    raw = {"model_name_or_path": "Qwen/Qwen2.5-0.5B", "dataset_name": "trl-lib/Capybara", "use_peft": True,
           "max_length": 512, "eval_strategy": strategy, "eval_steps": 50}
    result = run_import(tmp_path, raw, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    left = {entry["key"] for entry in report["not_carried"]}
    assert "eval_strategy" not in left
    assert (report["job"].get("eval_split"), report["job"].get("eval_every")) == (("test", 50) if evaluates else
                                                                                 (None, None))
    assert ("eval_steps" in left) is not evaluates
    given = translate({**raw, "dataset_test_split": "validation"})
    assert "eval_split" not in dict((k, v) for k, v, _ in given.source_defaults(given.job))


def test_a_config_of_no_one_trainer_takes_orchs_defaults():
    translation = translate({"base_model": "m", "lora_target": "q_proj"})  # axolotl's key and LLaMA-Factory's
    assert translation.trainer is None and translation.source_defaults(translation.job) == []


def test_a_lora_rank_says_lora_whatever_one_key_suggests_of_the_trainer():
    """`max_seq_length` alone made the config TRL's, whose default method is full: a LoRA config became a full
    fine-tune at several times the memory and cost."""
    result = translate({"model_name_or_path": "Qwen/Qwen2.5-0.5B", "max_seq_length": 2048, "lora_r": 16,
                        "lora_alpha": 16})
    assert result.job["method"] == "lora" and result.trainer is None


def test_trls_use_peft_false_is_a_full_fine_tune():
    result = translate({"model_name_or_path": "Qwen/Qwen2.5-0.5B", "dataset_name": "x/y", "use_peft": False,
                        "max_length": 512})
    assert result.job["method"] == "full"


@pytest.mark.parametrize("setting, said", [("max_step=2", "unknown key `max_step` (did you mean `max_steps`?)"),
                                           ("seq_len=abc", "`seq_len` must be a whole number, got 'abc'")])
def test_a_set_mistake_on_import_is_said_of_set(tmp_path, setting, said):
    """`orch import cfg.yaml --set max_step=2` said "the imported job is not one orch can train", as if the config
    held the typo."""
    config = tmp_path / "axolotl.yaml"
    config.write_text("base_model: meta-llama/Llama-3.1-8B\nsequence_len: 1024\nadapter: lora\n")
    result = CliRunner().invoke(app, ["import", str(config), "--set", setting])
    assert result.exit_code == 2 and result.stderr == f"error: --set {setting}: {said}.\n", result.stderr


LF_LORA = {"model_name_or_path": "meta-llama/Llama-3.1-8B", "stage": "sft", "finetuning_type": "lora",
           "cutoff_len": 1024, "per_device_train_batch_size": 2, "num_train_epochs": 1}
AXOLOTL_LORA = {"base_model": "meta-llama/Llama-3.1-8B", "adapter": "lora", "sequence_len": 1024}
TORCHTUNE_LORA_BUILDER = "torchtune.models.llama3_1.lora_llama3_1_8b"


@pytest.mark.parametrize("raw, said", [
    ({**LF_LORA, "quantization_bit": float("nan")}, "`quantization_bit: NaN`: nan is not a finite number of bits"),
    ({**LF_LORA, "quantization_bit": float("inf")}, "`quantization_bit: Infinity`: inf is not a finite number"),
    ({**LF_LORA, "quantization_bit": 3}, "`quantization_bit: 3`: 3-bit quantization is none orch trains"),
    ({**LF_LORA, "quantization_bit": 16}, "16-bit quantization is none orch trains"),
    ({**LF_LORA, "quantization_bit": 0}, "0-bit quantization is none orch trains"),
    ({**LF_LORA, "quantization_bit": 10**310}, "-bit quantization is none orch trains"),  # past a float: a traceback
    ({**LF_LORA, "quantization_bit": "nf4"}, "'nf4' is not a finite number of bits"),
    # LLaMA-Factory compares the bits with the numbers 4 and 8, so a quoted 4 quantizes nothing there
    ({**LF_LORA, "quantization_bit": "4"}, "'4' is quoted, so it is text, no number of bits: write it unquoted"),
    ({**LF_LORA, "quantization_bit": " 4 "}, "' 4 ' is quoted, so it is text"),
    ({**LF_LORA, "quantization_bit": "4.0"}, "'4.0' is quoted, so it is text"),
    ({**LF_LORA, "quantization_bit": True}, "true is not a finite number of bits"),
    ({**AXOLOTL_LORA, "load_in_4bit": "true"}, "`load_in_4bit: \"true\"`: 'true' is not a YAML boolean"),
    ({**AXOLOTL_LORA, "load_in_8bit": "yes"}, "`load_in_8bit: \"yes\"`: 'yes' is not a YAML boolean"),
    ({"model": {"_component_": TORCHTUNE_LORA_BUILDER, "quantize_base": "true"}, "tokenizer": {"max_seq_len": 64}},
     "`model.quantize_base: \"true\"`: 'true' is not a YAML boolean"),
])
def test_a_quantization_orch_cannot_train_is_refused_not_dropped(tmp_path, raw, said):
    """`quantization_bit: .nan` or `3` beside `finetuning_type: lora` was listed as not carried over and the job
    written as `method: lora`, exit 0: a QLoRA config trained as 16-bit LoRA, at another memory and cost, unsaid. So
    was axolotl's quoted `load_in_4bit: "true"` (true to axolotl's parser). Each is one line, exit 2, nothing
    written, saying what orch can quantize to."""
    out = tmp_path / "job.yaml"
    result = run_import(tmp_path, raw, "--set", f"dataset={TINY_DATA}", "--out", str(out))
    assert result.exit_code == 2 and said in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists(), result.output
    fix = "orch quantizes to 4 or 8 bits" if "quantization_bit" in raw else "write true or false, unquoted"
    assert fix in result.output, result.output


def test_torchtunes_target_keys_are_carried_together_or_not_at_all(tmp_path):
    """`lora_attn_modules: [1, 2]` was listed as not carried over beside `apply_lora_to_mlp: true`, and the job
    written to train the MLP's adapters alone, exit 0: another set of modules, at another memory and speed."""
    out = tmp_path / "job.yaml"
    raw = {"model": {"_component_": TORCHTUNE_LORA_BUILDER, "lora_attn_modules": [1, 2], "apply_lora_to_mlp": True},
           "tokenizer": {"max_seq_len": 64}}
    result = run_import(tmp_path, raw, "--set", f"dataset={TINY_DATA}", "--out", str(out))
    assert result.exit_code == 2 and "is not a list of module names" in result.output, result.output
    assert "so neither is carried over alone" in result.output and not out.exists(), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("value, bits", [(4, 4), (8, 8), (4.0, 4)])  # a quoted "8" is text (refused above)
def test_a_quantization_bit_orch_trains_is_qlora_at_those_bits(value, bits):
    assert translate({**LF_LORA, "quantization_bit": value}).job["quant_bits"] == bits


def test_torchtunes_quantize_base_is_qlora_and_its_false_is_lora():
    """torchtune's qlora_ builders are its lora_ ones with quantize_base=True: written on a lora_ builder it was
    listed as "no such setting" and the job trained 16-bit LoRA. A qlora_ builder with quantize_base false trains
    LoRA in torchtune (the keyword overrides the builder's): a disagreement, not QLoRA."""
    def job(builder, quantize_base):
        return translate({"model": {"_component_": f"torchtune.models.llama3_1.{builder}",
                                    "quantize_base": quantize_base}}).job
    assert {k: job("lora_llama3_1_8b", True)[k] for k in ("method", "quant_bits")} == {"method": "qlora",
                                                                                       "quant_bits": 4}
    assert job("lora_llama3_1_8b", False)["method"] == "lora" and "quant_bits" not in job("lora_llama3_1_8b", False)
    assert job("qlora_llama3_1_8b", True)["method"] == "qlora"
    with pytest.raises(UserError, match="and `model.quantize_base: false` set orch's `method` to different values"):
        job("qlora_llama3_1_8b", False)
    # an adapter key's plain LoRA beside a quantization is still QLoRA
    assert translate({"adapter": "lora", "load_in_4bit": True}).job["method"] == "qlora"


@pytest.mark.parametrize("source, changes, note", [
    (AXOLOTL, {"adapter": "ia3"}, "`adapter` was not carried over: orch has no method 'ia3'"),
    (AXOLOTL, {"datasets": [{"path": str(TINY_DATA), "type": "alpaca"}] * 2, "max_steps": None},
     "`datasets` was not carried over: datasets: orch reads one dataset"),
    (LLAMA_FACTORY, {"finetuning_type": "freeze"}, "`finetuning_type` was not carried over: orch has no method"),
])
def test_a_refused_import_quotes_the_note_of_the_key_it_could_not_carry(tmp_path, source, changes, note):
    """`adapter: ia3` was refused as "missing required key `method`" and two axolotl datasets as "say how much to
    train", with the dropped key's note, which says why, left out."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in {**source, **changes}.items() if v is not None}))
    result = CliRunner().invoke(app, ["import", str(config)])
    assert result.exit_code == 2 and note in result.stderr, result.output


@pytest.mark.parametrize("key, value, message", [
    ("train_on_inputs", False, "`train_on_inputs` is axolotl's name: use `completion_only_loss: true`"),
    ("train_on_inputs", True, "use `completion_only_loss: false`"),
    ("use_peft", False, "`use_peft` is TRL's name: use `method: full`"),
    ("load_in_4bit", True, "use `method: qlora, quant_bits: 4`"),
    ("load_in_4bit", False, "`load_in_4bit` is the name in axolotl and TRL, and `false` asks for what orch does by "
                            "default: drop it"),
    ("flash_attention", False, "and `false` asks for what orch does by default: drop it"),
])
def test_another_trainers_key_is_said_with_what_its_value_means(key, value, message):
    """A fixed hint per key told `train_on_inputs: false` to write `completion_only_loss: false`, the opposite."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict({**BASE, key: value})


@pytest.mark.parametrize("key", ["val_set_size", "val_size"])
def test_an_eval_split_given_as_a_count_is_listed_not_taken_for_a_share(key):
    """A whole number is a count of records to datasets' train_test_split: carried as eval_fraction 100, the import
    was refused for a key the config never wrote."""
    assert translate({key: 0.05}).job == {"eval_fraction": 0.05}
    for value in (100, 0.6, "10%"):
        translation = translate({key: value})
        assert translation.job == {} and [k for k, _ in translation.not_carried] == [key], translation
    assert "a count of records held out" in translate({key: 100}).not_carried[0][1]


def test_a_key_yaml_reads_as_null_or_a_number_is_named_as_the_file_writes_it():
    """`~: x` was listed as `None: orch has no such setting`, Python's word for it."""
    assert [key for key, _ in translate({None: "x", 1: "y"}).not_carried] == ["null", "1"]


def test_an_imported_setting_no_cloud_can_run_is_said_with_the_job(tmp_path):
    """axolotl's `flash_attention: true` is carried as flash_attention_2, which no cloud VM installs: the job was
    written without a word, and `orch plan` then found no target."""
    config = tmp_path / "ax.yaml"
    config.write_text("base_model: meta-llama/Llama-3.1-8B\nadapter: lora\nsequence_len: 2048\nflash_attention: "
                      "true\nmax_steps: 10\n")
    result = CliRunner().invoke(app, ["import", str(config), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["job"]["attention"] == "flash_attention_2"
    assert document["notes"] and "only your own GPUs can run this job" in document["notes"][0]
    plain = CliRunner().invoke(app, ["import", str(config)])
    assert "note: attention flash_attention_2 needs flash-attn" in plain.stderr


def test_the_keys_not_carried_over_are_folded_at_spaces_and_keep_to_a_line_each(tmp_path, monkeypatch):
    """At 80 columns the terminal cut a reason mid-word (`pads each to se` / `q_len`); a key holding a line break
    printed a line of its own."""
    from orchestrator.cli import display

    monkeypatch.setattr(display, "err_console", Console(width=60, force_terminal=True, record=True))
    display.show_import("", None, [("pad_to_sequence_len", "orch packs sequences (`packing: true`) or pads each "
                                                           "to seq_len"), ("a\nb", "orch has no such setting")])
    said = display.err_console.export_text()
    lines = said.splitlines()
    assert "    true`) or pads each to seq_len" in lines and "  a\\nb: orch has no such setting" in lines, said
    assert max(map(len, lines)) <= 60, said


def test_a_config_of_many_keys_not_carried_lists_the_first_fifty_and_json_all(tmp_path):
    """A config of 75,000 unknown keys printed 75,000 lines."""
    source = tmp_path / "big.yaml"
    source.write_text(yaml.safe_dump({"base_model": "meta-llama/Llama-3.1-8B", "adapter": "lora", "max_steps": 5,
                                      "sequence_len": 1024,
                                      **{f"unknown_{n}": n for n in range(60)}}))
    said = CliRunner().invoke(app, ["import", str(source)]).stderr
    assert "60 key(s) not carried over:" in said and "  and 10 more: `--json` lists them all" in said, said
    assert len([line for line in said.splitlines() if line.startswith("  unknown_")]) == 50
    listed = json.loads(CliRunner().invoke(app, ["import", str(source), "--json"]).stdout)["not_carried"]
    assert len([entry for entry in listed if "unknown_" in str(entry)]) == 60


def test_a_foreign_configs_numbers_are_read_as_its_trainer_reads_them(tmp_path):
    """axolotl reads `sequence_len: 2_048` with PyYAML, as 2048: the import refused it, as orch's own files refuse
    it (YAML 1.2 reads it as text, and the flags refuse it)."""
    source = tmp_path / "ax.yaml"
    source.write_text("base_model: meta-llama/Llama-3.2-1B\nsequence_len: 2_048\nadapter: lora\nmax_steps: 5\n")
    result = CliRunner().invoke(app, ["import", str(source), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["job"]["seq_len"] == 2048


def test_a_refusal_of_the_imported_job_names_the_sources_key_and_value(tmp_path):
    """A LLaMA-Factory `lora_target` with a module orch does not target was refused as orch's `target_modules`, a
    key the user never wrote, without the bad value."""
    result = run_import(tmp_path, {"model_name_or_path": "meta-llama/Llama-3.2-1B", "finetuning_type": "lora",
                                   "max_steps": 5, "lora_target": "q_proj, bogus_proj"})
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "got ['q_proj', 'bogus_proj']" in result.stderr
    assert "(`target_modules` is the source's `lora_target`)" in result.stderr


@pytest.mark.parametrize("key, value, said", [("num_epochs", {}, "`epochs` must be a number, got {}"),
                                              ("micro_batch_size", {"a": {"b": [1]}}, "`micro_batch` must be a whole"),
                                              ("learning_rate", {}, "`learning_rate` must be a number, got {}"),
                                              ("max_steps", {}, "`max_steps` must be a whole number, got {}"),
                                              ("lora_alpha", {"a": 1}, "`lora_alpha` must be a whole number")])
def test_a_mapping_under_a_key_of_one_value_is_refused_as_that_key(tmp_path, key, value, said):
    """`num_epochs: {}` vanished unsaid (the default trained), and `micro_batch_size: {a: {b: [1]}}` became an unknown
    setting `micro_batch_size.a.b`."""
    source = tmp_path / "axolotl.yaml"
    source.write_text(yaml.safe_dump({**AXOLOTL, key: value}))
    result = CliRunner().invoke(app, ["import", str(source)])
    assert result.exit_code == 2 and said in result.stderr, result.output


@pytest.mark.parametrize(("config", "named"), [
    ('base_model: meta-llama/Llama-3.2-1B\nadapter: lora\nsequence_len: 512\ndatasets: [{path: "", type: alpaca}]\n',
     "datasets"),
    ('model_name_or_path: meta-llama/Llama-3.2-1B\nuse_peft: true\nmax_length: 512\ndataset_name: ""\n',
     "dataset_name"),
])
def test_an_empty_dataset_path_is_refused_not_read_as_the_configs_folder(tmp_path, config, named):
    """Joined to the config's folder, an empty path became `dataset: .` (the folder of the YAML configs)."""
    source = tmp_path / "source.yaml"
    source.write_text(config)
    result = CliRunner().invoke(app, ["import", str(source)])
    assert result.exit_code == 2 and "`dataset` must be a name or a path, not empty" in result.stderr
    assert f"the source's `{named}`" in result.stderr, result.output


def test_an_axolotl_adapter_left_empty_is_a_full_fine_tune_whatever_rank_is_beside_it(tmp_path):
    """`adapter:` empty beside `lora_r: 16` was imported as LoRA; axolotl trains such a config in full."""
    raw = {"base_model": "meta-llama/Llama-3.2-1B", "adapter": None, "lora_r": 16, "sequence_len": 512}
    result = run_import(tmp_path, raw, "--set", f"dataset={TINY_DATA}", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["job"]["method"] == "full"
    assert translate({**raw, "adapter": "lora"}).job["method"] == "lora"


@pytest.mark.parametrize("builders", [1, 2], ids=["one-builder", "a-list-of-two"])
@pytest.mark.parametrize("packed, packing", [(False, False), (True, True), (None, False)])
def test_torchtunes_packed_dataset_setting_is_carried_whatever_data_the_job_is_given(tmp_path, packed, packing,
                                                                                      builders):
    """`dataset.packed: False` was dropped once `--set dataset=` was given, and the job trained packed, orch's
    default; torchtune's builders pack only when told, so a config without it trained unpacked too. A list of
    builders (concatenated) packs where each says so: their `packed: True` was written as the unpacked default."""
    dataset = {"_component_": "torchtune.datasets.alpaca_cleaned_dataset", **({} if packed is None else
                                                                              {"packed": packed})}
    dataset = dataset if builders == 1 else [dataset] * builders
    raw = {"model": {"_component_": "torchtune.models.llama3_1.lora_llama3_1_8b"}, "tokenizer": {"max_seq_len": 512},
           "dataset": dataset}
    result = run_import(tmp_path, raw, "--set", f"dataset={TINY_DATA}", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["job"]["packing"] is packing


def test_torchtune_builders_that_disagree_on_packing_are_listed_not_taken_for_the_unpacked_default(tmp_path):
    """`packed: True` beside a builder without it (a mix torchtune's ConcatDataset refuses) was imported as the
    builders' unpacked default, the `packed: True` dropped unsaid."""
    builder = {"_component_": "torchtune.datasets.alpaca_cleaned_dataset"}
    raw = {"model": {"_component_": "torchtune.models.llama3_1.lora_llama3_1_8b"}, "tokenizer": {"max_seq_len": 512},
           "dataset": [{**builder, "packed": True}, builder]}
    result = run_import(tmp_path, raw, "--set", f"dataset={TINY_DATA}", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "packing" not in report["job"] and not any(d["key"] == "packing" for d in report["source_defaults"])
    assert {"key": "dataset.packed", "why": "the builders say packed true, false, a mix torchtune refuses: give --set "
            "packing=true or false"} in report["not_carried"]


def test_a_config_whose_warm_up_outlasts_its_steps_is_refused_as_plan_would_refuse_the_job(tmp_path):
    """A source's smoke test (max_steps 5, warmup_steps 10) was written as a job that `orch plan` then refused."""
    (tmp_path / "data.jsonl").write_text('{"instruction": "a", "input": "", "output": "b"}\n')
    raw = {"base_model": "meta-llama/Llama-3.2-1B", "adapter": "lora", "sequence_len": 512, "max_steps": 5,
           "warmup_steps": 10, "datasets": [{"path": str(tmp_path / "data.jsonl"), "type": "alpaca"}]}
    refused = run_import(tmp_path, raw)
    assert refused.exit_code == 2 and "`warmup_steps` 10 is not below the run's 5 steps" in refused.stderr
    assert run_import(tmp_path, raw, "--set", "warmup_steps=2").exit_code == 0
    assert run_import(tmp_path, {**raw, "lr_scheduler": "constant"}).exit_code == 0  # it takes no warm-up


LLAMA_FACTORY_BASE = {"model_name_or_path": "meta-llama/Llama-3.2-1B", "stage": "sft", "finetuning_type": "lora",
                      "cutoff_len": 512, "num_train_epochs": 1.0}


def test_llama_factorys_eval_dataset_name_is_left_behind_as_its_dataset_name_is():
    """`eval_dataset: alpaca_en_demo` names an entry of LLaMA-Factory's data/dataset_info.json: carried as a hub id,
    the imported job's plan refused it, and its val_size was dropped for it."""
    translation = translate({**LLAMA_FACTORY_BASE, "eval_dataset": "alpaca_en_demo", "val_size": 0.1})
    assert "eval_dataset" not in translation.job and translation.job["eval_fraction"] == 0.1
    assert ("eval_dataset", "LLaMA-Factory's dataset name \"alpaca_en_demo\" points into its data/dataset_info.json: "
            "give the file or hub id with --set eval_dataset=PATH_OR_ID") in translation.not_carried


@pytest.mark.parametrize(("raw", "job", "listed"), [
    ({"quantization_bit": 4, "double_quantization": False}, {"double_quant": False}, []),
    ({"quantization_bit": 4, "quantization_type": "fp4"}, {}, ["quantization_type"]),
    ({"quantization_bit": 4, "quantization_type": "nf4"}, {}, []),
    ({"neat_packing": True}, {"packing": True}, []),
    ({"neat_packing": False}, {"packing": False}, []),  # the source default: it packs only for stage pt
])
def test_llama_factorys_quantization_and_packing_keys_are_read_as_it_reads_them(raw, job, listed):
    """`double_quantization: false` and `quantization_type: fp4` were "no such setting" (the job kept double
    quantization, and NF4, unsaid); `neat_packing: false` turned packing on, as if it set it."""
    translation = translate({**LLAMA_FACTORY_BASE, **raw})
    settled = {**translation.job, **{key: value for key, value, _ in translation.source_defaults(translation.job)}}
    assert job.items() <= settled.items(), settled
    assert [key for key, _ in translation.not_carried if key in raw] == listed


def test_torchtunes_cap_per_epoch_is_not_the_runs_cap_and_transformers_unset_max_steps_is_unset():
    """max_steps_per_epoch 100 with 3 epochs trained 100 steps, a third; `max_steps: -1`, TrainingArguments' default
    in every config dumped from it, was refused as a step count below 1."""
    translation = translate({"max_steps_per_epoch": 100, "epochs": 3})
    assert "max_steps" not in translation.job and translation.job["epochs"] == 3
    assert any(key == "max_steps_per_epoch" and "--set max_steps=N (epochs x 100)" in why
               for key, why in translation.not_carried)
    unset = translate({**LLAMA_FACTORY_BASE, "max_steps": -1})
    assert "max_steps" not in unset.job and unset.job["epochs"] == 1.0


def test_a_step_count_below_one_is_a_share_of_the_run_listed_with_the_count_to_give():
    """transformers reads logging_steps, save_steps and eval_steps below 1 as a share of the run's steps: `save_steps:
    0.25` refused the whole import as "must be a whole number"; whole counts are carried as they were."""
    translation = translate({**LLAMA_FACTORY_BASE, "save_steps": 0.25, "eval_steps": 0.5, "logging_steps": 10})
    assert "save_every" not in translation.job and "eval_every" not in translation.job
    assert translation.job["log_every"] == 10
    why = dict(translation.not_carried)
    assert "0.25 as a share of the run's steps" in why["save_steps"] and "--set save_every=N" in why["save_steps"]
    assert "--set eval_every=N" in why["eval_steps"]


@pytest.mark.parametrize(("train_on_input", "completion_only_loss"), [(True, False), (False, True)])
def test_a_torchtune_builders_train_on_input_is_the_jobs_loss(train_on_input, completion_only_loss):
    """`dataset.train_on_input: True` trained on the prompts too; once --set dataset= named the data it vanished,
    unlisted, and the job trained on the responses alone."""
    raw = {"dataset": {"_component_": "torchtune.datasets.instruct_dataset", "source": "json",
                       "data_files": "data.jsonl", "train_on_input": train_on_input}}
    assert translate(raw).job["completion_only_loss"] is completion_only_loss


def test_axolotls_bnb_kwargs_and_tokenizer_config_and_trls_one_element_targets_are_read():
    """Each was "orch has no such setting" or refused, though orch has it: the job kept double quantization on, or
    the model's own tokenizer; TRL's CLI writes `--lora_target_modules all-linear` as a one-element list."""
    axolotl = translate({"base_model": "meta-llama/Llama-3.2-1B", "adapter": "qlora", "load_in_4bit": True,
                         "bnb_config_kwargs": {"bnb_4bit_use_double_quant": False, "bnb_4bit_quant_type": "fp4"},
                         "tokenizer_config": "./tok"})
    assert axolotl.job["double_quant"] is False and axolotl.job["tokenizer"] == "./tok"
    assert [key for key, _ in axolotl.not_carried] == ["bnb_config_kwargs.bnb_4bit_quant_type"]  # FP4: not orch's
    assert translate({"lora_target_modules": ["all-linear"]}).job == {"target_modules": "all-linear"}


def test_trls_default_test_split_is_not_given_to_a_dataset_of_one_file():
    """A file has no test split: the imported job's plan refused the `eval_split: test` import had added."""
    for name, split in (("data.jsonl", None), ("trl-lib/Capybara", "test")):
        translation = translate({"model_name_or_path": "x/y", "dataset_name": name, "eval_strategy": "steps"})
        defaults = {key: value for key, value, _ in translation.source_defaults(translation.job)}
        assert defaults.get("eval_split") == split, defaults


def test_a_list_of_datasets_is_left_behind_with_how_to_give_one():
    """torchtune's list of builders (trained concatenated) was refused as "`dataset` must be a string, got
    [{'_component_': ...}]": a Python repr, and no word of what to give."""
    listed = translate({"dataset": [{"_component_": "torchtune.datasets.alpaca_cleaned_dataset"},
                                    {"_component_": "torchtune.datasets.slimorca_dataset"}]})
    assert "dataset" not in listed.job
    assert ("dataset", "a list of 2 datasets, trained as one, and orch trains on one dataset: give a file or folder "
            "of them all, or a hub id, with --set dataset=PATH_OR_ID") in listed.not_carried


@pytest.mark.parametrize("changes, expected", [
    ({}, {"max_grad_norm": 1_000_000, "weight_decay": 0.01}),
    ({"clip_grad_norm": None}, {"max_grad_norm": 1_000_000}),
    ({"clip_grad_norm": 0.5}, {"max_grad_norm": 0.5}),
    ({"optimizer": {"_component_": "torch.optim.AdamW", "lr": 3e-4, "weight_decay": 0.1}}, {"weight_decay": 0.1}),
    ({"optimizer": {"_component_": "bitsandbytes.optim.PagedAdamW8bit", "lr": 3e-4}}, {"weight_decay": 0.01}),
    ({"optimizer": {"_component_": "torch.optim.Adam", "lr": 3e-4}}, {"weight_decay": None}),
])
def test_torchtunes_clipping_and_adamws_decay_are_carried_as_torchtune_trains(tmp_path, changes, expected):
    """`clip_grad_norm: null` (or none) is no clipping in torchtune's recipes, and the job clipped at orch's 1.0; an
    AdamW without weight_decay decays at 0.01, and the job at orch's 0.0. Neither was listed."""
    raw = {**TORCHTUNE_QLORA, "optimizer": {"_component_": "torch.optim.AdamW", "lr": 3e-4}, **changes}
    result = run_import(tmp_path, raw, "--set", f"dataset={TINY_DATA}", "--set", "seq_len=2048", "--json")
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)["job"]
    assert {key: job.get(key) for key in expected} == expected


def test_trls_null_max_length_is_no_truncation_not_its_default(tmp_path):
    """`max_length: null`, TRL's "truncate nothing", was imported as `seq_len: 1024  # (source default)`."""
    raw = {"model_name_or_path": "orch/tiny-llama", "dataset_name": str(TINY_DATA), "use_peft": True,
           "max_length": None, "num_train_epochs": 1}
    refused = run_import(tmp_path, raw)
    assert refused.exit_code == 2, refused.output
    assert "`max_length` was not carried over: TRL truncates nothing when it is null, and orch trains at one " \
           "sequence length: give --set seq_len=N (tokens)." in refused.stderr
    result = run_import(tmp_path, raw, "--set", "seq_len=512", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["job"]["seq_len"] == 512, result.output
    assert json.loads(run_import(tmp_path, {**raw, "max_length": 2048}, "--json").stdout)["job"]["seq_len"] == 2048
