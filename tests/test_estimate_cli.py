"""`orch estimate` exposes every setting that changes memory or speed, names the settings it used, takes the job's
own defaults for flags left out, and says how much of the card a job uses."""

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from orchestrator.cli import display
from orchestrator.cli.main import app
from trainer.config import JobConfig

runner = CliRunner()
BASE = ["estimate", "Llama-3.1-8B", "--method", "qlora", "--seq-len", "2048", "--micro-batch", "1", "--grad-ckpt"]


def _option_names() -> dict[str, str]:
    """Every spelling of `orch estimate`'s options -> the option it spells (--max-seq-length -> seq_len)."""
    import typer.main

    from orchestrator.cli.argv_forms import OTHER_NAMES

    command = typer.main.get_command(app).commands["estimate"]
    names = {opt: param.name for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    return {**names, **{other: names[ours] for other, ours in OTHER_NAMES.items() if ours in names}}


def with_base(*flags) -> list[str]:
    """BASE with `flags` in place of its own values for the same options, however spelled (an option given twice
    with two values is refused)."""
    names = _option_names()
    overridden = {names[flag] for flag in flags if flag in names}
    base, index = [], 1
    while index < len(BASE):
        option = BASE[index]
        takes_value = option in names and index + 1 < len(BASE) and not BASE[index + 1].startswith("--")
        if names.get(option) not in overridden:
            base += BASE[index:index + 1 + takes_value]
        index += 1 + takes_value
    return [BASE[0], *base, *flags]


def estimate(*flags, gpu="RTX 4090"):
    result = runner.invoke(app, [*with_base(*flags), *(["--gpu", gpu] if gpu else []), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_flags_left_out_take_the_jobs_defaults():
    settings = estimate()["settings"]
    defaults = JobConfig(model="-", method="qlora", seq_len=2048)
    for key in ("lora_r", "lora_dropout", "optimizer", "attention", "loss", "loss_chunk_tokens", "quant_bits",
                "double_quant", "qlora_fp32_upcast", "compile"):
        assert settings[key] == getattr(defaults, key), key


def test_every_memory_setting_is_a_flag_and_is_named_in_the_json():
    result = estimate("--lora-dropout", "0", "--loss", "full", "--target-modules", "q_proj,v_proj",
                      "--attention", "flash_attention_2", "--compile", "--optimizer", "adamw_8bit", "--lora-r", "32",
                      "--quant-bits", "4", "--no-qlora-fp32-upcast")
    assert result["settings"] | {"lora_dropout": 0.0, "loss": "full", "target_modules": ["q_proj", "v_proj"],
                                 "attention": "flash_attention_2", "compile": True, "optimizer": "adamw_8bit",
                                 "lora_r": 32, "qlora_fp32_upcast": False} == result["settings"]
    assert result["usage"] == f"{result['vram_gib']:.1f} of 23.99 GiB"  # the RTX 4090 as its driver reports it
    assert {"tokens_per_s", "fits", "breakdown", "vram_gib", "step_terms_s"} <= set(result)


def test_a_job_that_does_not_fit_as_given_is_told_what_auto_fit_finds():
    """A first user asked whether Llama-3.1-8B QLoRA fits a 4090 and read "does not fit (107.9 of 24 GiB)": the
    settings that do fit were behind a flag named on a line below."""
    given = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--method", "qlora", "--gpu", "RTX 4090", "--json"])
    result = json.loads(given.stdout)
    would = result["with_auto_fit"]  # numbers, as a script reads them
    assert not result["fits"] and would["grad_ckpt"] is True
    fitted = json.loads(runner.invoke(app, ["estimate", "Llama-3.1-8B", "--method", "qlora", "--gpu", "RTX 4090",
                                            "--auto-fit", "--json"]).stdout)
    assert fitted["fits"] and {k: fitted["settings"][k] for k in ("micro_batch", "grad_accum", "grad_ckpt")} == \
        {k: would[k] for k in ("micro_batch", "grad_accum", "grad_ckpt")}
    assert would["vram_gib"] == fitted["vram_gib"] and would["tokens_per_s"] == fitted["tokens_per_s"]
    assert "with_auto_fit" not in estimate()  # BASE fits the card as given
    said = " ".join(runner.invoke(app, ["estimate", "Llama-3.1-8B", "--method", "qlora", "--gpu", "RTX 4090"]
                                  ).stdout.split())
    assert "RTX 4090: does not fit as given (" in said and f"{result['tokens_per_s']:,.0f} tokens/s" not in said
    assert (f"with --auto-fit, as plan and launch run it (the effective batch kept): micro-batch "
            f"{would['micro_batch']} x accumulation {would['grad_accum']}, checkpointing on: {would['vram_gib']:.1f} "
            f"GiB, {would['tokens_per_s']:,.0f} tokens/s") in said


def test_minus_zero_is_read_as_zero_not_echoed_as_a_negative_amount():
    assert str(estimate("--lora-dropout", "-0")["settings"]["lora_dropout"]) == "0.0"


@pytest.mark.parametrize("flag, low, high, part, extra", [
    # dropout's copies live in every layer without checkpointing (with it, only the one layer being recomputed,
    # which never coexists with the loss's peak)
    ("--lora-dropout", "0", "0.1", "activations", ("--no-grad-ckpt",)),
    ("--loss", "chunked", "full", "logits", ()),
])
def test_flags_change_the_part_they_should(flag, low, high, part, extra):
    assert estimate(flag, low, *extra)["breakdown"][part] < estimate(flag, high, *extra)["breakdown"][part]


def test_qlora_upcast_adds_two_bytes_per_unquantized_weight():
    on = estimate("--qlora-fp32-upcast")["breakdown"]["weights"]
    off = estimate("--no-qlora-fp32-upcast")["breakdown"]["weights"]
    assert on - off == pytest.approx(1.96, abs=0.02)


def test_compile_is_faster():
    assert estimate("--compile")["tokens_per_s"] > estimate("--no-compile")["tokens_per_s"]


def test_fits_keeps_headroom_below_the_card():
    """A job between the usable share and the whole card does not fit."""
    for seq_len in range(12000, 14000, 128):
        result = estimate("--seq-len", str(seq_len), "--loss", "full", gpu="A100 40GB")
        if result["usable_vram_gib"] < result["vram_gib"] <= result["gpu_vram_gib"]:
            assert result["fits"] is False
            return
    pytest.fail("no sequence length landed in the headroom band")


def test_a_gpu_that_cannot_run_a_setting_is_said_not_to_run_it():
    """FlashAttention-2 or bf16 before Ampere, fp16 on the CPU, any setting on a V100 (today's torch has no kernels
    for it): not a fit, whatever the memory, and no smallest GPU among such cards."""
    t4 = estimate("--attention", "flash_attention_2", gpu="T4")
    assert t4["fits"] is False and "T4 has 7.5: use attention sdpa" in t4["unsupported"]
    assert estimate("--attention", "sdpa", gpu="T4")["unsupported"] is None
    anywhere = estimate("--attention", "flash_attention_2", gpu=None)
    assert anywhere["fits_on"] and not {"T4", "V100 16GB", "V100 32GB"} & set(anywhere["fits_on"])
    sdpa_anywhere = set(estimate("--attention", "sdpa", gpu=None)["fits_on"])
    assert "T4" in sdpa_anywhere and not {"V100 16GB", "V100 32GB"} & sdpa_anywhere
    assert "T4 has none: use precision auto or fp16" in estimate("--precision", "bf16", gpu="T4")["unsupported"]
    assert estimate("--precision", "fp16", gpu="cpu")["unsupported"].startswith("precision fp16 needs a GPU")
    assert estimate("--precision", "bf16", gpu="cpu")["unsupported"] is None
    v100 = estimate("--attention", "sdpa", gpu="V100 32GB")
    assert "no kernels for compute capability 7.0" in v100["unsupported"]
    # the memory alone is said apart: a published V100 run that fit is not an out-of-memory case
    assert v100["fits"] is False and v100["fits_in_memory"] is True and t4["fits_in_memory"] is True
    said = runner.invoke(app, [*BASE, "--attention", "flash_attention_2", "--gpu", "T4"], env={"COLUMNS": "200"})
    assert "T4: does not run: attention flash_attention_2 needs an Ampere or later GPU" in said.stdout
    assert "auto-fit" not in said.stdout


@pytest.mark.parametrize("flags, message", [
    (["--loss", "flash"], "--loss must be one of"),
    (["--lora-dropout", "1.5"], "--lora-dropout must be in"),
])
def test_bad_values_are_one_line_errors(flags, message):
    result = runner.invoke(app, with_base(*flags))
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_other_trainers_spellings_are_understood():
    settings = estimate("--attention", "fa2", "--optimizer", "adamw_torch")["settings"]
    assert settings["attention"] == "flash_attention_2" and settings["optimizer"] == "adamw"
    hf = estimate("--max-seq-length", "512", "--per-device-train-batch-size", "2", "--gradient-accumulation-steps",
                  "8", "--lora-rank", "32", "--gradient-checkpointing")["settings"]
    assert (hf["seq_len"], hf["micro_batch"], hf["grad_accum"], hf["lora_r"], hf["grad_ckpt"]) == (512, 2, 8, 32, True)


@pytest.mark.parametrize("flags, expected", [
    (["--method", "QLoRA", "--optimizer", "AdamW", "--attention", "SDPA", "--precision", "bf16-true"],
     {"method": "qlora", "optimizer": "adamw", "attention": "sdpa", "precision": "bf16"}),
    (["--optimizer", "PagedAdamW8bit", "--attention", "FA2", "--loss", "CEWithChunkedOutputLoss"],
     {"optimizer": "paged_adamw_8bit", "attention": "flash_attention_2", "loss": "chunked"}),
    (["--loss", "liger", "--method", "LoRA"], {"loss": "fused", "method": "lora"}),
])
def test_other_trainers_values_and_capitals_are_read_as_orchs(flags, expected):
    """`AdamW`, `SDPA` or LitGPT's `bf16-true` copied from a published table were refused."""
    settings = estimate(*flags)["settings"]
    assert {k: settings[k] for k in expected} == expected


@pytest.mark.parametrize("precision, said", [
    ("bf16-mixed", "keeps every weight in fp32 under bf16 autocast"),
    ("16-Mixed", "keeps every weight in fp32 under fp16 autocast"),
    ("16-true", "trains fp16 weights with no fp32 copy"),
])
def test_lightnings_precisions_that_name_no_mode_orch_trains_are_refused_with_orchs(precision, said):
    """Read as orch's bf16, `bf16-mixed` counted a 7B full fine-tune's weights, gradients and moments in bf16 (52 GiB,
    "fits" an A100 80GB) where Lightning keeps them in fp32 (~100 GiB); `16-true` was read as orch's fp16, whose
    trained weights are fp32."""
    result = runner.invoke(app, ["estimate", "Llama-2-7b", "--method", "full", "--precision", precision,
                                 "--gpu", "A100-80GB", "--json"])
    assert result.exit_code == 2 and said in json.loads(result.stdout)["error"], result.output
    assert "give bf16 (16-bit weights, Lightning's bf16-true), fp16" in json.loads(result.stdout)["error"]


@pytest.mark.parametrize("quantization, expected", [
    ("nf4", {"method": "qlora", "quant_bits": 4, "double_quant": True}),  # the job's default double quantization
    # LitGPT's: constants kept in fp32, and no peft to upcast the rest (read with the upcast: +5.9 GiB, "no fit")
    ("bnb.nf4", {"method": "qlora", "quant_bits": 4, "double_quant": False, "qlora_fp32_upcast": False}),
    ("bitsandbytes 8-bit", {"method": "qlora", "quant_bits": 8}),  # a table's library and bits
    ("nf4+dq", {"method": "qlora", "quant_bits": 4, "double_quant": True}),
    ("16-bit", {"method": "lora"}),  # an unquantized row's cell
    ("BNB.NF4-DQ", {"method": "qlora", "quant_bits": 4, "double_quant": True}),
    ("int8", {"method": "qlora", "quant_bits": 8}),
    ("none", {"method": "lora"}),
])
def test_quantization_in_one_value_sets_the_method_and_bits(quantization, expected):
    """A table's quantization column (`bnb.nf4`, `int8`, `none`) given as it is written, with no --method."""
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--quantization", quantization, "--json"])
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)["settings"]
    assert {k: settings[k] for k in expected} == expected


@pytest.mark.parametrize("model, quantization", [("unsloth/llama-3-8b-bnb-4bit", "none"),
                                                 ("Qwen/Qwen-7B-Chat-Int4", "none"),
                                                 ("unsloth/llama-3-8b-bnb-4bit", "int8")])
def test_a_checkpoint_stored_quantized_beside_other_bits_is_refused(model, quantization):
    """It was estimated as 16-bit LoRA (`none`) or at 8 bits (`int8`), unsaid, where transformers loads it at its
    stored 4 bits (as --method full is refused)."""
    result = runner.invoke(app, ["estimate", model, "--quantization", quantization, "--json"])
    assert result.exit_code == 2, result.output
    assert f"so it trains at 4 bits whatever --quantization {quantization} says" in json.loads(result.stdout)["error"]


def test_a_method_with_its_bits_that_disagrees_is_said_as_the_method_not_as_a_flag_never_given():
    """`--method "QLoRA (8-bit)" --quantization nf4` read "but --quant-bits 8 was given", a flag no one typed."""
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--method", "QLoRA (8-bit)", "--quantization", "nf4"])
    assert result.exit_code == 2, result.output
    assert "--quantization nf4 means --quant-bits 4, but --method QLoRA (8-bit) means 8: give one of them." in \
        result.stderr


def test_double_quantization_is_counted_and_another_format_is_named_in_the_notes():
    def vram(quantization):
        result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--quantization", quantization, "--json"])
        return json.loads(result.stdout)
    kept, quantized, gptq = vram("bnb.nf4"), vram("bnb.nf4-dq"), vram("gptq-int4")
    assert kept["breakdown"]["weights"] > quantized["breakdown"]["weights"]
    assert gptq["settings"]["qlora_fp32_upcast"] is False and not quantized["notes"]
    assert any("GPTQ" in note and "NF4" in note for note in gptq["notes"])


@pytest.mark.parametrize("flags, message", [
    (["--quantization", "gguf"], "unknown --quantization 'gguf': use nf4, nf4-dq, int8 or none"),
    (["--method", "full", "--quantization", "nf4"], "4-bit frozen weights, and full fine-tuning trains every weight"),
    (["--method", "QLoRA", "--quantization", "none"], "contradicts --method qlora"),
    (["--quantization", "int8", "--quant-bits", "4"], "means --quant-bits 8, but --quant-bits 4 was given"),
    (["--quantization", "bnb.nf4", "--double-quant"], "means --double-quant false, but --double-quant true"),
    (["--method", "DoRA", "--no-use-dora"], "--method DoRA means --use-dora true, but --use-dora false"),
])
def test_a_quantization_or_method_that_contradicts_another_flag_is_refused(flags, message):
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", *flags])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("flags, message", [
    (["--method", "full", "--double-quant"], "--double-quant applies to --method qlora (quantized weights), but "
                                             "--method full was given: give --method qlora, or drop it."),
    (["--method", "LoRA", "--quant-bits", "4", "--no-fp32-upcast"],
     "--quant-bits and --no-fp32-upcast apply to --method qlora (quantized weights), but --method lora was given: "
     "give --method qlora, or drop them."),
    (["--quantization", "none", "--quant-bits", "4"], "--quant-bits applies to --method qlora (quantized weights), "
     "but --quantization none was given: give --quantization nf4 or int8, or drop it."),
    (["--method", "full", "--lora-r", "8"], "--lora-r applies to --method lora and qlora (the adapters), but --method "
                                            "full was given: give --method lora, or drop it."),
    (["--method", "Full-parameter", "--target-modules", "q_proj", "--lora-dropout", "0"],
     "--lora-dropout and --target-modules apply to --method lora and qlora (the adapters), but --method full was "
     "given: give --method lora, or drop them."),
])
def test_a_flag_another_method_trains_with_is_refused_not_dropped(flags, message):
    """`--quant-bits 4 --method lora` was estimated as bf16 LoRA and `--lora-r 8 --method full` as full fine-tuning,
    the flag dropped unsaid, while `--use-dora --method full` was refused."""
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", *flags])
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {message}", result.output


def _settings_and_notes(model, *flags):
    result = runner.invoke(app, ["estimate", model, *flags, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    return out["settings"], out["notes"]


@pytest.mark.parametrize("model, flags, expected", [
    # a checkpoint stored quantized loads 4-bit whatever the method: LoRA on it is QLoRA
    ("unsloth/Meta-Llama-3.1-8B-bnb-4bit", [], {"method": "qlora", "quant_bits": 4, "qlora_fp32_upcast": True}),
    ("unsloth/Meta-Llama-3.1-8B-bnb-4bit", ["--method", "lora"], {"method": "qlora", "quant_bits": 4}),
    # peft's prepare_model_for_kbit_training leaves a GPTQ model's other weights in 16 bits
    ("Qwen/Qwen-7B-Chat-Int4", [], {"method": "qlora", "quant_bits": 4, "qlora_fp32_upcast": False}),
    ("Qwen/Qwen-7B-Chat-Int4", ["--qlora-fp32-upcast"], {"qlora_fp32_upcast": True}),
    ("Qwen/Qwen-7B-Chat-Int8", [], {"method": "qlora", "quant_bits": 8}),
    ("Llama-3.1-8B", ["--quant-bits", "8"], {"method": "qlora", "quant_bits": 8}),  # QLoRA's flag, no method
    ("Llama-3.1-8B", ["--no-fp32-upcast"], {"method": "qlora", "qlora_fp32_upcast": False}),  # as its other flags
    ("Llama-3.1-8B", ["--method", "DoRA"], {"method": "lora", "use_dora": True}),
    ("Llama-3.1-8B", ["--method", "QDoRA"], {"method": "qlora", "use_dora": True}),
    ("Qwen/Qwen-7B", ["--method", "LoRA (emb)"], {"method": "lora", "modules_to_save": ["embed_tokens", "lm_head"]}),
    ("Llama-3.1-8B", ["--method", "Q-LoRA"], {"method": "qlora"}),
    ("Llama-3.1-8B", ["--method", "Full-parameter"], {"method": "full"}),
    ("Llama-3.1-8B", ["--method", "full_finetune_single_device"], {"method": "full"}),
    ("Llama-3.1-8B", ["--quantization", "4-bit NF4"], {"method": "qlora", "quant_bits": 4}),
    # the bits in the method's cell (LLaMA-Factory's QLoRA rows): `QLoRA (8-bit)` was refused, "did you mean qlora"
    ("Llama-3.1-8B", ["--method", "QLoRA (8-bit)"], {"method": "qlora", "quant_bits": 8}),
    ("Llama-3.1-8B", ["--method", "4-bit QLoRA"], {"method": "qlora", "quant_bits": 4}),
    ("Llama-3.1-8B", ["--method", "qlora-8bit", "--quant-bits", "8"], {"method": "qlora", "quant_bits": 8}),
])
def test_a_tables_method_and_a_quantized_checkpoint_are_read_as_the_job_orch_runs(model, flags, expected):
    settings, _ = _settings_and_notes(model, *flags)
    assert {k: settings[k] for k in expected} == expected


def test_a_model_folder_stored_quantized_is_estimated_as_it_loads(tmp_path, monkeypatch):
    """Its config.json's quantization_config, not its name, says how transformers loads it."""
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
              "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100}
    for name, quantization in (("plainq", {"quant_method": "gptq", "bits": 4}), ("fp8", {"quant_method": "fp8"}),
                               ("floatq", {"quant_method": "gptq", "bits": 4.0})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({**config, "quantization_config": quantization}))
    monkeypatch.chdir(tmp_path)
    settings, _ = _settings_and_notes("plainq")
    assert settings["method"] == "qlora" and settings["quant_bits"] == 4 and not settings["qlora_fp32_upcast"]
    assert _settings_and_notes("floatq")[0] == settings  # 4.0 bits, as a JSON writer may put 4: was `gptq-int4.0`
    result = runner.invoke(app, ["estimate", "fp8"])
    assert result.exit_code == 2 and result.stderr == ("error: 'fp8' is stored quantized (fp8), a format orch neither "
                                                       "estimates nor trains: give the unquantized model.\n")


def test_lora_on_quantized_weights_and_a_format_orch_does_not_train_are_said_in_the_notes():
    _, lora_on_4bit = _settings_and_notes("unsloth/Meta-Llama-3.1-8B-bnb-4bit", "--method", "lora")
    assert any("is QLoRA" in note for note in lora_on_4bit)
    _, gptq = _settings_and_notes("TheBloke/Llama-2-7B-GPTQ")
    assert any("GPTQ int4 is counted as orch's bitsandbytes NF4" in note for note in gptq)
    _, plain = _settings_and_notes("Llama-3.1-8B", "--method", "lora")
    assert plain == []


@pytest.mark.parametrize("flags, expected", [
    (["--attention", "Flash Attention 2", "--optimizer", "torchao.optim.AdamW8bit", "--precision", "torch.bfloat16"],
     {"attention": "flash_attention_2", "optimizer": "adamw_8bit", "precision": "bf16"}),
    (["--attention", "flash-attn-2", "--optimizer", "8-bit AdamW", "--loss",
      "torchtune.modules.loss.CEWithChunkedOutputLoss"],
     {"attention": "flash_attention_2", "optimizer": "adamw_8bit", "loss": "chunked"}),
    (["--attention", "xformers", "--optimizer", "paged_adamw", "--loss", "cut_cross_entropy"],
     {"attention": "sdpa", "optimizer": "adamw", "loss": "fused"}),
    # liger-kernel by its package's and its class's names; LLaMA-Factory's flash_attn values, as --flash_attn reads
    # them; PyTorch's own name for sdpa
    (["--loss", "liger-kernel", "--attention", "disabled"], {"loss": "fused", "attention": "eager"}),
    (["--loss", "liger_kernel.transformers.LigerFusedLinearCrossEntropyLoss", "--attention", "auto"],
     {"loss": "fused", "attention": "sdpa"}),
    (["--attention", "scaled_dot_product_attention"], {"attention": "sdpa"}),
])
def test_spellings_with_other_separators_and_class_paths_are_read_as_orchs(flags, expected):
    settings, _ = _settings_and_notes("Llama-3.1-8B", *flags)
    assert {k: settings[k] for k in expected} == expected


QKV, ALL = ["q_proj", "k_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.mark.parametrize("model, modules, expected", [
    ("Qwen/Qwen-7B", "c_attn", QKV),
    ("Qwen/Qwen-7B", "c_attn,c_proj,w1,w2", ALL),  # Qwen-1's README: its w1, w2 are the MLP's two input halves
    ("Llama-3.1-8B", "q_proj,v_proj,output_proj,w1,w2,w3", ["q_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                            "down_proj"]),  # torchtune's names
    ("Llama-3.1-8B", "w2", ["down_proj"]),
    ("microsoft/Phi-3-mini-4k-instruct", "qkv_proj,gate_up_proj", [*QKV, "gate_proj", "up_proj"]),
    ("Llama-3.1-8B", "[Q_PROJ, V_PROJ]", ["q_proj", "v_proj"]),
    ("Llama-3.1-8B", "q_proj v_proj", ["q_proj", "v_proj"]),
    ("Llama-3.1-8B", "all", ALL),
    ("Llama-3.1-8B", "lora_query,lora_value", ["q_proj", "v_proj"]),  # LitGPT's switches
    ("Llama-3.1-8B", "self_attn.q_proj,self_attn.v_proj", ["q_proj", "v_proj"]),
    ("Qwen/Qwen-7B", "c_attn,attn.c_proj", [*QKV, "o_proj"]),
    # LitGPT's names: `attn.attn` (its fused q, k, v before `attn.qkv`) was read as the whole `attn` group, o_proj too
    ("Llama-3.1-8B", "attn.attn", QKV),
    ("Llama-3.1-8B", "attn.qkv,attn.proj,mlp.fc_1,mlp.fc_2,mlp.proj", ALL),
    ("Llama-3.1-8B", "q,v", ["q_proj", "v_proj"]),  # a table's short names, and the LoRA paper's W_q
    ("Llama-3.1-8B", "W_q,W_k,W_v,W_o,gate,up,down", ALL),
])
def test_other_trainers_module_names_are_read_as_orchs(model, modules, expected):
    result = runner.invoke(app, ["estimate", model, "--target-modules", modules, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["target_modules"] == expected


@pytest.mark.parametrize("modules", ["", "q_proj,bogus", "lm_head"])
def test_a_module_name_no_trainer_uses_is_still_refused(modules):
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--target-modules", modules])
    assert result.exit_code == 2 and "--target-modules must be all-linear or a list drawn from" in result.output


@pytest.mark.parametrize("flag, value", [("--target-modules", "q_proj,,v_proj"),
                                         ("--target-modules", "[q_proj, ,v_proj]"),
                                         ("--modules-to-save", "embed_tokens,")])
def test_an_empty_name_between_commas_is_refused_as_in_providers(flag, value):
    """`q_proj,,v_proj` and `embed_tokens,` were read as if the lost name were not there; `--providers local,,x` is
    refused."""
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", flag, value])
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"error: {flag}: an empty name between commas in {value!r}: give names separated by single commas."), \
        result.output


def test_all_linear_beside_module_names_is_refused():
    """`all-linear,q_proj` was all-linear, the name beside it unsaid."""
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--target-modules", "all-linear,q_proj"])
    assert result.exit_code == 2 and result.stderr.strip() == (
        "error: --target-modules 'all-linear,q_proj': all-linear adapts every linear already: give all-linear alone, "
        "or the module names alone."), result.output


def test_a_module_named_twice_is_refused_in_either_list_as_a_job_file_refuses_it():
    """`--target-modules q_proj,q_proj` was taken once while a job's `target_modules: [q_proj, q_proj]` was refused:
    one mistake, said the same way wherever it is written."""
    for flag, names in (("--target-modules", "q_proj,Q_PROJ"), ("--modules-to-save", "lm_head,lm_head,embed_tokens")):
        result = runner.invoke(app, ["estimate", "Llama-3.1-8B", flag, names])
        assert result.exit_code == 2 and "more than once: give each name once" in result.output, result.output
    settings, _ = _settings_and_notes("Llama-3.1-8B", "--modules-to-save", "lm_head,embed_tokens")
    assert settings["modules_to_save"] == ["lm_head", "embed_tokens"]


def test_the_json_and_the_table_say_which_moment_of_the_step_peaks():
    """A full fine-tune on a few tokens peaks once every gradient exists; the default QLoRA job as its backward
    starts. Scripts read `peak_at`, people the line under the table."""
    assert estimate()["peak_at"] == "backward_start"
    assert estimate("--method", "full", "--seq-len", "16", gpu="H100 SXM")["peak_at"] == "backward_end"
    shown = runner.invoke(app, with_base("--method", "full", "--seq-len", "16"))
    assert shown.exit_code == 0 and "peak as the backward ends" in shown.output


def test_dora_modules_to_save_and_frozen_layers_are_flags_that_change_what_trains():
    plain = estimate("--method", "lora")
    dora = estimate("--method", "lora", "--use-dora", "--modules-to-save", "lm_head")
    assert dora["settings"]["use_dora"] is True and dora["settings"]["modules_to_save"] == ["lm_head"]
    assert dora["trainable_params"] > plain["trainable_params"] and dora["vram_gib"] > plain["vram_gib"]
    full, frozen = estimate("--method", "full"), estimate("--method", "full", "--freeze-layers", "16")
    assert frozen["settings"]["freeze_layers"] == 16
    assert frozen["trainable_params"] < full["trainable_params"] and frozen["tokens_per_s"] > full["tokens_per_s"]


@pytest.mark.parametrize("flags, message", [
    (("--method", "lora", "--freeze-layers", "2"), "--freeze-layers applies to method full only"),
    (("--method", "full", "--use-dora"), "--use-dora applies to methods lora and qlora"),
    (("--method", "full", "--freeze-layers", "33"), "freeze_layers 33 is more than the 32 blocks"),
    (("--lora-r", "4097"), "lora_r 4097 is more than meta-llama/Llama-3.1-8B's width (4096)"),
    (("--loss", "full", "--loss-chunk-tokens", "512"), "--loss-chunk-tokens sizes the chunks of loss chunked"),
    (("--seq-len", "1e308"), "--seq-len must be at most 1048576, got about 10^308."),  # its own bound, by size
    (("--micro-batch", "1e308"), "--micro-batch must be at most 65536, got about 10^308."),
    (("--quant-bits", "1e308"), "--quant-bits must be one of 4, 8; got about 10^308."),
])
def test_a_setting_the_method_does_not_run_is_refused_as_the_trainer_would(flags, message):
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", *flags])
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1


def test_precision_is_a_flag_and_the_json_says_what_auto_resolves_to():
    assert estimate()["settings"]["precision"] == "bf16"  # auto on an RTX 4090
    assert estimate(gpu="V100 16GB")["settings"]["precision"] == "fp16"
    masters = estimate("--method", "full", "--precision", "fp16")
    assert masters["settings"]["precision"] == "fp16"
    assert masters["vram_gib"] > estimate("--method", "full")["vram_gib"]


@pytest.mark.parametrize("model, counts", [("orch/tiny-llama", "1.3 M params, 156 K trainable"),
                                           ("Llama-3.1-8B", "8.03 B params, 41.9 M trainable")])
def test_the_table_says_parameter_counts_in_their_own_unit(monkeypatch, model, counts):
    monkeypatch.setattr(display, "console", Console(width=200))  # one line, whatever width the first import took
    result = runner.invoke(app, ["estimate", model, "--method", "lora", "--lora-r", "16"])
    assert result.exit_code == 0 and counts in result.stdout, result.stdout


@pytest.mark.parametrize(("model", "seq_len", "noted"), [
    ("Llama-2-7b", 8192, True), ("Llama-2-7b", 4096, False), ("random:meta-llama/Llama-2-7b-hf", 8192, False),
    ("Llama-3.1-8B", 8192, False),
])
def test_a_seq_len_past_the_models_context_is_noted_not_refused(model, seq_len, noted):
    flags = ["estimate", model, "--seq-len", str(seq_len)]
    data = json.loads(runner.invoke(app, [*flags, "--json"]).stdout)
    assert bool(data["notes"]) is noted
    shown = runner.invoke(app, flags, env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and ("4096-token context" in shown.stdout) is noted


def test_modules_to_save_count_what_peft_trains_in_full():
    """`q_proj` or `layers.3.mlp.down_proj` saved trained full copies the estimate counted as nothing, and `model`
    or `mlp` (every module under them) was accepted at the adapter's memory. (LoRA on v_proj alone: a module both
    adapted and saved is refused.)"""
    def trainable(modules: str) -> int:
        result = runner.invoke(app, ["estimate", "Llama-3.2-1B", "--method", "lora", "--modules-to-save", modules,
                                     "--target-modules", "v_proj", "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["trainable_params"]

    base = trainable("model.norm") - 2048  # the final norm: hidden weights
    assert trainable("norm") - base == (2 * 16 + 1) * 2048  # peft's suffix match: every norm, each block's two too
    assert trainable("q_proj") - base == 16 * 2048 * 2048  # every block's
    assert trainable("layers.3.mlp.down_proj") - base == 8192 * 2048  # one block's
    assert trainable("model.embed_tokens") - base == 128256 * 2048
    listed = trainable("embed_tokens,lm_head")
    assert trainable("[embed_tokens, lm_head]") == trainable("embed_tokens lm_head") == listed
    for container in ("model", "layers.0", "mlp"):
        refused = runner.invoke(app, ["estimate", "Llama-3.2-1B", "--method", "lora", "--modules-to-save", container])
        assert refused.exit_code == 2 and "which holds other modules" in refused.output


@pytest.mark.parametrize("model, shown, shape", [
    ("llama 3 8b", "unsloth/llama-3-8b", "meta-llama/Llama-3.1-8B"),  # what plan and the trainer load
    ("meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-8B", "meta-llama/Llama-3.1-8B"),
    ("Qwen/Qwen2.5-Math-7B", "Qwen/Qwen2.5-Math-7B", "Qwen/Qwen2.5-7B")])
def test_a_model_sized_by_another_rows_shape_keeps_its_name_and_the_notes_say_whose(model, shown, shape):
    """The header and JSON `model` named the catalog row (another model), with empty notes."""
    data = json.loads(runner.invoke(app, ["estimate", model, "--method", "lora", "--json"]).stdout)
    assert data["model"] == shown
    assert data["notes"] == [f"{shown} is estimated with the shape of {shape}, the catalog's row for it."]


def test_a_job_file_given_to_estimate_is_estimated_with_its_settings_and_the_flags_given_over_them(tmp_path):
    """`orch estimate examples/tiny.yaml` was refused: a newcomer with a job file had to copy each of its settings
    into flags. Its settings are the estimate's, a flag given overrides one, and a flag naming another method leaves
    the file's method settings out rather than refusing them as given."""
    job = tmp_path / "job.yaml"
    job.write_text("model: Llama-3.1-8B\nmethod: qlora\nquant_bits: 4\ndouble_quant: false\nseq_len: 1024\n"
                   "micro_batch: 2\nlora_r: 8\ntarget_modules: [q_proj, v_proj]\noptimizer: adamw_8bit\n"
                   "max_steps: 2\n")
    from_file = json.loads(runner.invoke(app, ["estimate", str(job), "--json"]).stdout)
    as_flags = json.loads(runner.invoke(app, [
        "estimate", "Llama-3.1-8B", "--method", "qlora", "--quant-bits", "4", "--no-double-quant", "--seq-len", "1024",
        "--micro-batch", "2", "--lora-r", "8", "--target-modules", "q_proj,v_proj", "--optimizer", "adamw_8bit",
        "--json"]).stdout)
    assert from_file["settings"] == as_flags["settings"] and from_file["vram_gib"] == as_flags["vram_gib"]
    shorter = json.loads(runner.invoke(app, ["estimate", str(job), "--seq-len", "256", "--json"]).stdout)
    assert shorter["seq_len"] == 256 and shorter["settings"]["lora_r"] == 8
    as_lora = runner.invoke(app, ["estimate", str(job), "--method", "lora", "--json"])
    assert as_lora.exit_code == 0, as_lora.output
    settings = json.loads(as_lora.stdout)["settings"]  # QLoRA's keys left out, the adapters' kept
    assert settings["method"] == "lora" and settings["lora_r"] == 8 and settings["seq_len"] == 1024
    assert "the job file's `method`, `quant_bits`, `double_quant` left out" in json.loads(as_lora.stdout)["notes"][1]
    as_full = json.loads(runner.invoke(app, ["estimate", str(job), "--method", "full", "--json"]).stdout)["settings"]
    assert as_full["method"] == "full" and as_full["lora_r"] == JobConfig.lora_r  # the adapters' left out too
    missing = runner.invoke(app, ["estimate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2, missing.output
    assert "does not exist: give a job file, or a model" in missing.stderr, missing.output
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")  # said as plan says it, not as missing
    looped = runner.invoke(app, ["estimate", str(tmp_path / "loop.yaml")])
    assert looped.exit_code == 2 and "job file" in looped.stderr and "is a symlink loop" in looped.stderr
    job.write_text("model: Llama-3.1-8B\nmethod: lora\nseq_len: 512\nloss_chunk_tokens: 256\nmodules_to_save: []\n"
                   "max_steps: 2\n")
    assert runner.invoke(app, ["estimate", str(job), "--json"]).exit_code == 0  # an empty list: the default
    full_loss = runner.invoke(app, ["estimate", str(job), "--loss", "full"])  # the chunk size is the file's
    assert full_loss.exit_code == 2 and "`loss_chunk_tokens` sizes the chunks" in full_loss.stderr, full_loss.output
    job.write_text("model: Llama-3.1-8B\nmethod: lora\nseq_len: .nan\nmax_steps: 2\n")
    broken = runner.invoke(app, ["estimate", str(job)])
    assert broken.exit_code == 2 and "`seq_len` must be a whole number, got nan" in broken.stderr, broken.output


def test_a_job_file_with_no_amount_or_length_is_estimated_the_flags_giving_the_length(tmp_path):
    """A memory estimate needs no amount to train, and --seq-len may give the length: the file was refused first
    ("say how much to train", "missing required key `seq_len`") whatever the flags gave."""
    job = tmp_path / "job.yaml"
    job.write_text("model: Llama-3.1-8B\nmethod: qlora\n")
    given = runner.invoke(app, ["estimate", str(job), "--seq-len", "1024", "--json"])
    assert given.exit_code == 0, given.output
    as_flags = json.loads(runner.invoke(app, ["estimate", "Llama-3.1-8B", "--method", "qlora", "--seq-len", "1024",
                                              "--json"]).stdout)
    assert json.loads(given.stdout)["vram_gib"] == as_flags["vram_gib"]
    assert json.loads(runner.invoke(app, ["estimate", str(job), "--json"]).stdout)["seq_len"] == 2048  # the default
    job.write_text("model: Llama-3.1-8B\nmethod: qlora\nseq_len: 0\n")  # what the file gives is still checked
    assert "`seq_len` must be above 0" in runner.invoke(app, ["estimate", str(job)]).stderr
    job.write_text("model: Llama-3.1-8B\n")  # no method either: the flags', else the default
    assert json.loads(runner.invoke(app, ["estimate", str(job), "--method", "full", "--json"]).stdout)[
        "method"] == "full"
    assert json.loads(runner.invoke(app, ["estimate", str(job), "--json"]).stdout)["method"] == "lora"
    wrong = runner.invoke(app, ["estimate", str(job), "--method", "bogus"])  # the flag's, not the file's
    assert wrong.exit_code == 2 and wrong.stderr.startswith("error: --method must be one of"), wrong.stderr


def test_cpu_threads_without_the_cpu_is_refused():
    """It was taken with --gpu H100 or no --gpu, and changed nothing."""
    for gpu in ([], ["--gpu", "H100"]):
        result = runner.invoke(app, ["estimate", "orch/tiny-llama", "--cpu-threads", "1", *gpu])
        assert result.exit_code == 2 and "--cpu-threads sets the cores of an estimate on the CPU" in result.stderr
    assert runner.invoke(app, ["estimate", "orch/tiny-llama", "--cpu-threads", "1", "--gpu", "cpu"]).exit_code == 0


def test_a_jobs_cpu_threads_past_this_machines_cores_is_noted(tmp_path):
    """The JSON said the job's 64 threads and estimated this machine's cores; the flag is refused, the job's (which
    may be meant for a larger machine) is said."""
    import os

    import yaml

    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"model": "orch/tiny-llama", "method": "lora", "seq_len": 64,
                                   "cpu_threads": (os.cpu_count() or 1) + 1}))
    result = runner.invoke(app, ["estimate", str(job), "--gpu", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    said = f"the job's cpu_threads {(os.cpu_count() or 1) + 1} is more than this machine's {os.cpu_count() or 1} CPU"
    assert any(note.startswith(said) for note in json.loads(result.stdout)["notes"]), result.stdout


def test_a_cpus_table_names_its_runtime_not_a_cuda_context():
    """`orch estimate --gpu cpu` listed `cuda_context 0.60` for a machine with no CUDA; the JSON keeps its key."""
    cpu = runner.invoke(app, ["estimate", "orch/tiny-llama", "--gpu", "cpu"], env={"COLUMNS": "120"})
    gpu = runner.invoke(app, ["estimate", "orch/tiny-llama", "--gpu", "RTX 4090"], env={"COLUMNS": "120"})
    assert cpu.exit_code == 0 and gpu.exit_code == 0, cpu.output + gpu.output
    assert " runtime " in cpu.stdout and "runtime and slack" in cpu.stdout, cpu.stdout
    assert "cuda_context" not in cpu.stdout and "context and" not in cpu.stdout, cpu.stdout
    assert "cuda_context" in gpu.stdout and " runtime " not in gpu.stdout, gpu.stdout
    as_json = json.loads(runner.invoke(app, ["estimate", "orch/tiny-llama", "--gpu", "cpu", "--json"]).stdout)
    assert "cuda_context" in as_json["breakdown"]


def test_an_organisation_one_letter_off_is_said_by_estimate_as_plan_says_it():
    """`orch estimate meta-lama/Llama-3.1-8B` said only that Llama 3.1's shape stood for it, where plan and launch
    asked whether meta-llama was meant."""
    result = CliRunner().invoke(app, ["estimate", "meta-lama/Llama-3.1-8B", "--json"])
    assert result.exit_code == 0, result.output
    assert any("did you mean 'meta-llama'?" in note for note in json.loads(result.stdout)["notes"])


def test_a_saved_modules_bytes_are_the_dtype_peft_copies_it_in():
    """peft copies a modules_to_save module in the dtype the model has: bf16 on a bf16 GPU, where the estimate
    counted fp32 weights, gradients and moments (3.9 GiB too many for an 8B model's head). The copy's weights,
    gradients and AdamW moments are counted at the copy's own bytes, and the fused loss is not planned on a head
    the copy wraps (the trainer falls back to chunked)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                        num_attention_heads=4, num_key_value_heads=2, vocab_size=256))
    peft_model = get_peft_model(tiny.to(torch.bfloat16), LoraConfig(r=4, target_modules=["q_proj"],
                                                                      modules_to_save=["lm_head"]))
    copied = {p.dtype for n, p in peft_model.named_parameters() if p.requires_grad and "modules_to_save" in n}
    assert copied == {torch.bfloat16}

    def estimate(*flags: str) -> dict:
        result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--method", "lora", "--gpu", "H100",
                                     "--seq-len", "1024", *flags, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    base, saved = estimate(), estimate("--modules-to-save", "lm_head")
    head_params = saved["trainable_params"] - base["trainable_params"]
    assert head_params == 128256 * 4096
    for part, bytes_per_param in (("weights", 2), ("optimizer_state", 4)):
        grown_bytes = (saved["breakdown"][part] - base["breakdown"][part]) * 2**30
        assert grown_bytes == pytest.approx(head_params * bytes_per_param, rel=2e-3)  # the JSON rounds GiB
    fused = estimate("--loss", "fused", "--modules-to-save", "lm_head")
    assert fused["breakdown"] == estimate("--loss", "chunked", "--modules-to-save", "lm_head")["breakdown"]


def test_freezing_every_block_of_a_tied_model_is_refused():
    """Every block frozen and the head tied to the frozen embeddings trained the final norm alone (128 parameters of
    the tiny model), exit 0; the refusal of one more block had said "freeze at most 4"."""
    result = runner.invoke(app, ["estimate", "orch/tiny-llama", "--method", "full", "--freeze-layers", "4"])
    assert result.exit_code == 2 and "freeze_layers 4 freezes every block of orch/tiny-llama, and its head is tied" \
        in " ".join(result.stderr.split()) and "freeze at most 3" in result.stderr, result.output
    kept = runner.invoke(app, ["estimate", "orch/tiny-llama", "--method", "full", "--freeze-layers", "3"])
    assert kept.exit_code == 0, kept.output


@pytest.mark.parametrize("gpu, said", [
    ("NVIDIA GeForce RTX 4060 Ti", "--gpu NVIDIA GeForce RTX 4060 Ti is read as the RTX 4060 Ti 16GB"),
    ("A100", "--gpu A100 is read as the A100 40GB"),
    ("A100 80GB", None),
    ("RTX 4090", None),
])
def test_a_gpu_named_without_its_memory_says_which_size_it_was_read_as(gpu, said):
    """nvidia-smi names the RTX 4060 Ti 8GB and 16GB alike: the name was estimated as the catalog's 16 GB card,
    unsaid, and an 8 GB point "fit"."""
    result = runner.invoke(app, ["estimate", "Llama-3.2-1B", "--gpu", gpu, "--json"])
    notes = [note for note in json.loads(result.stdout)["notes"] if "is read as the" in note]
    assert notes == ([] if said is None else [note for note in notes if note.startswith(said)]) and \
        bool(notes) == (said is not None), notes
