"""Model-level checks on the CPU: QLoRA gradients survive an eval pass, packed samples do not see each other, and the
trainer's shared sdpa mask gives transformers' own result."""

import pytest
import torch

from tests.trainer_helpers import TINY_DATA
from trainer.config import config_from_dict
from trainer.data import load_records, record_texts
from trainer.model import load_model
from trainer.random_model import build_random_model


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    config = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "dataset": str(TINY_DATA)})
    texts = record_texts(load_records(config, TINY_DATA.parent).train)
    return str(build_random_model("orch/tiny-llama", texts, 128, seed=0))


def lora_gradients(model, ids):
    model.zero_grad(set_to_none=True)
    model(input_ids=ids, labels=ids).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and "lora_B" not in n}


def test_qlora_gradients_are_the_same_after_an_eval_pass(tiny_model_path):
    """../shared/docs/known-issues.md: on AVX512-BF16 CPUs an eval pass used to zero every later LoRA gradient."""
    config = config_from_dict({"model": "orch/tiny-llama", "method": "qlora", "seq_len": 32, "max_steps": 1,
                               "lora_dropout": 0.0})
    model = load_model(config, tiny_model_path, torch.device("cpu"), "fp32", grad_ckpt=False)
    torch.manual_seed(0)
    for name, param in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero, which would make A's gradients zero too
            torch.nn.init.normal_(param, std=0.02)
    ids = torch.randint(10, 4000, (2, 32))
    before = lora_gradients(model, ids)
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    model.train()
    after = lora_gradients(model, ids)
    assert before and all(g.abs().sum() > 0 for g in after.values())
    assert all(torch.allclose(before[n], after[n], atol=1e-6) for n in before)


def test_packed_samples_do_not_attend_to_each_other(tiny_model_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, attn_implementation="sdpa").eval()
    first, second = torch.randint(10, 4000, (1, 9)), torch.randint(10, 4000, (1, 7))
    packed = torch.cat([first, second], dim=1)
    positions = torch.cat([torch.arange(9), torch.arange(7)]).unsqueeze(0)
    with torch.no_grad():
        # without a KV cache, as in training: transformers only reads packing from position ids when there is none
        alone = model(input_ids=second, use_cache=False).logits
        together = model(input_ids=packed, position_ids=positions, use_cache=False).logits[:, 9:]
        leaky = model(input_ids=packed, use_cache=False).logits[:, 9:]  # plain positions: the samples mix
    assert torch.allclose(alone, together, atol=1e-5)
    assert not torch.allclose(alone, leaky, atol=1e-3)


def test_the_shared_additive_mask_gives_transformers_own_result(tiny_model_path, monkeypatch):
    """trainer/attention_mask.py changes the form of the sdpa mask, never the attention: the same logits and
    gradients as transformers' boolean mask, on packed samples."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    config = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 32, "max_steps": 1,
                               "lora_dropout": 0.0})
    ids = torch.randint(10, 4000, (2, 16))
    positions = torch.cat([torch.arange(9), torch.arange(7)]).repeat(2, 1)

    def logits_and_gradients():
        torch.manual_seed(0)
        model = load_model(config, tiny_model_path, torch.device("cpu"), "fp32", grad_ckpt=False)
        logits = model(input_ids=ids, position_ids=positions, use_cache=False).logits
        logits.float().square().mean().backward()
        return logits.detach(), [p.grad for p in model.parameters() if p.requires_grad]

    shared_logits, shared_gradients = logits_and_gradients()  # load_model registers the shared mask
    assert ALL_MASK_ATTENTION_FUNCTIONS["sdpa"] is not sdpa_mask
    monkeypatch.setattr("trainer.model.share_sdpa_masks", lambda: None)
    ALL_MASK_ATTENTION_FUNCTIONS.register("sdpa", sdpa_mask)
    own_logits, own_gradients = logits_and_gradients()
    assert torch.allclose(shared_logits, own_logits, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(shared_gradients, own_gradients, strict=True))


def test_full_fine_tuning_can_freeze_the_lower_layers(tiny_model_path):
    config = config_from_dict({"model": "orch/tiny-llama", "method": "full", "seq_len": 32, "max_steps": 1,
                               "freeze_layers": 2})
    model = load_model(config, tiny_model_path, torch.device("cpu"), "fp32", grad_ckpt=False)
    frozen = {name for name, param in model.named_parameters() if not param.requires_grad}
    assert any(name.startswith("model.layers.1.") for name in frozen)
    assert not any(name.startswith("model.layers.2.") for name in frozen)
    assert "model.embed_tokens.weight" in frozen
    # the estimator counts what the trainer trains
    from gpu_catalog.models import get_model
    from orchestrator.estimator.memory import trainable_params
    trained = sum(param.numel() for param in model.parameters() if param.requires_grad)
    assert trainable_params(get_model("orch/tiny-llama"), config) == trained


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_the_estimator_counts_the_weight_bytes_the_trainer_loads(tiny_model_path, precision):
    """Full fine-tuning: bf16 weights as asked, fp32 masters under fp16, fp32 as asked."""
    from gpu_catalog.gpus import cpu_gpu
    from gpu_catalog.models import get_model
    from orchestrator.estimator.memory import weight_bytes
    config = config_from_dict({"model": "orch/tiny-llama", "method": "full", "seq_len": 32, "max_steps": 1,
                               "precision": precision})
    model = load_model(config, tiny_model_path, torch.device("cpu"), precision, grad_ckpt=False)
    loaded = sum(param.numel() * param.element_size() for param in model.parameters())
    assert weight_bytes(get_model("orch/tiny-llama"), config, cpu_gpu()) == pytest.approx(loaded, rel=0.01)


def test_a_model_folder_whose_weights_do_not_match_its_config_is_refused_in_one_line(tiny_model_path, tmp_path,
                                                                                       capsys):
    """transformers printed its 18-line load report, terminal colours and all, into the log, and the run ended with
    a RuntimeError (exit 1)."""
    import json
    import shutil

    from tests.trainer_helpers import write_job
    from trainer.__main__ import main

    folder = tmp_path / "mismatched"
    shutil.copytree(tiny_model_path, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_size": config["hidden_size"] * 2}))
    assert main([str(write_job(tmp_path, model=str(folder), max_steps=1)), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: model folder '{folder}': its weight model.embed_tokens.weight is ") and \
        err.count("\n") == 1 and "\x1b" not in err, err
    assert f"where its config.json builds {config['vocab_size']} x {config['hidden_size'] * 2}" in err


@pytest.mark.parametrize("change, said", [
    ({"model_type": "gpt2"}, "describes a `gpt2` model"),  # plan refused it; the trainer trained, then refused it
    ({"hidden_act": "nope"}, "transformers cannot build the model its config.json describes (KeyError"),
    ({"rope_scaling": {"rope_type": "\x1b[31mx", "factor": 2.0}}, "transformers cannot build the model"),
])
def test_a_model_folder_transformers_cannot_build_is_refused_in_one_line(tiny_model_path, tmp_path, capfd, change,
                                                                         said):
    """Each was a traceback and exit 1 after the data was read, and transformers' log printed the config's ESC."""
    import json
    import shutil

    from tests.trainer_helpers import write_job
    from trainer.__main__ import main

    folder = tmp_path / "changed"
    shutil.copytree(tiny_model_path, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))
    assert main([str(write_job(tmp_path, model=str(folder), max_steps=1)), "--output", str(tmp_path / "out")]) == 2
    out, err = capfd.readouterr()
    assert said in err and "\x1b" not in out + err and "Traceback" not in err, err
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [err.splitlines()[-1]], err


def test_a_cached_model_damaged_since_it_was_built_is_built_again(tmp_path, monkeypatch, capsys):
    """Its weights cut short on disk failed every run of a valid tiny job (the safetensors library's error, exit 1)
    until the cache was found and deleted by hand."""
    from safetensors import safe_open

    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    built = build_random_model("orch/tiny-llama", ["hello world"] * 20, 64, seed=0)
    weights = built / "model.safetensors"
    whole = weights.read_bytes()
    weights.write_bytes(whole[:3000])
    assert build_random_model("orch/tiny-llama", ["hello world"] * 20, 64, seed=0) == built
    assert f"rebuilding the cached model {built.name}: " in capsys.readouterr().err
    assert weights.read_bytes() == whole  # the same seed draws the same weights
    with safe_open(weights, framework="numpy") as read:
        assert "model.embed_tokens.weight" in read.keys()  # noqa: SIM118 - safe_open is no mapping


def test_a_model_larger_than_the_free_memory_is_refused_before_its_build(tmp_path, monkeypatch):
    from trainer import random_model
    from trainer.config import ConfigError

    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    assert random_model.free_memory_bytes("cpu") > 0  # this Linux machine's MemAvailable
    monkeypatch.setattr(random_model, "free_memory_bytes", lambda device: 2**20)
    with pytest.raises(ConfigError, match="random weights takes .* GiB free: build it where there is more memory"):
        build_random_model("orch/tiny-llama", ["hello world"] * 20, 64, seed=0)
    assert not (tmp_path / "cache" / "random-models").exists()


@pytest.mark.parametrize("capability, expected",
                         [((7, 5), "fp16"), ((7, 0), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_precision_takes_bf16_only_where_the_gpu_computes_it(monkeypatch, capability, expected):
    """torch.cuda.is_bf16_supported() says yes on a T4 (7.5), where bf16 is emulated many times slower and the
    estimate plans fp16: `auto` follows the compute capability, as gpus.csv's supports_bf16 does."""
    from trainer.model import resolve_precision

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    auto = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "dataset": str(TINY_DATA),
                             "precision": "auto"})
    assert resolve_precision(auto, torch.device("cuda", 0)) == expected
    assert resolve_precision(auto, torch.device("cpu")) == "fp32"
    chosen = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "dataset": str(TINY_DATA),
                               "precision": "fp16"})
    assert resolve_precision(chosen, torch.device("cuda", 0)) == "fp16"


@pytest.mark.parametrize("saved", [["embed_tokens"], ["lm_head"], ["embed_tokens", "lm_head"]])
def test_fp16_saved_modules_train_in_fp32_and_leave_the_residual_stream_fp16(tiny_model_path, saved):
    """The grad scaler refuses fp16 gradients, so the copies train in fp32; an fp32 embedding copy's lookup then made
    every layer's input fp32, twice what the estimate counts, until its output was cast back."""
    config = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 32, "max_steps": 1,
                               "precision": "fp16", "modules_to_save": saved})
    model = load_model(config, tiny_model_path, torch.device("cpu"), "fp16", grad_ckpt=False)
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}
    layer_inputs = []
    first_layer = model.get_base_model().model.layers[0]
    first_layer.register_forward_pre_hook(lambda module, args, kwargs: layer_inputs.append(
        (args[0] if args else kwargs["hidden_states"]).dtype), with_kwargs=True)
    with torch.autocast("cpu", dtype=torch.float16):  # as the trainer runs fp16 on a GPU
        model(input_ids=torch.randint(0, 100, (1, 16)))
    assert layer_inputs == [torch.float16]


@pytest.mark.parametrize("damage", ["tokenizer.json", "config.json", "tokenizer_config.json", "missing config.json"])
def test_a_cached_models_damaged_json_files_are_built_again_too(tmp_path, monkeypatch, capsys, damage):
    """A tokenizer.json cut short was blamed on "the tokenizer in" the cache folder, a damaged config.json on the
    tokenizer too, and a missing config.json left the folder for the build's rename to fail on."""
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    built = build_random_model("orch/tiny-llama", ["hello world"] * 20, 64, seed=0)
    name = damage.removeprefix("missing ")
    whole = (built / name).read_bytes()
    if damage.startswith("missing"):
        (built / name).unlink()
    else:
        (built / name).write_bytes(whole[:20])
    assert build_random_model("orch/tiny-llama", ["hello world"] * 20, 64, seed=0) == built
    assert f"rebuilding the cached model {built.name}: its {name} does not read" in capsys.readouterr().err
    assert (built / name).read_bytes() == whole


def test_a_tokenizer_larger_than_the_models_vocabulary_is_refused_before_any_step(tiny_model_path, tmp_path):
    """A folder whose config.json says vocab_size 100 beside a 677-token tokenizer failed its first step with a bare
    IndexError (exit 1, status error), and its plan passed."""
    import dataclasses
    import json
    import shutil

    from trainer.config import ConfigError
    from trainer.prepared import prepare

    folder = tmp_path / "small-vocab"
    shutil.copytree(tiny_model_path, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": 100}))
    job = config_from_dict({"model": str(folder), "method": "lora", "seq_len": 128, "dataset": str(TINY_DATA),
                            "max_steps": 1})
    with pytest.raises(ConfigError, match=r"has [\d,]+ tokens, more than the 100 embedding rows of model"):
        prepare(job, TINY_DATA.parent, build_model=False, local_only=True)
    assert prepare(dataclasses.replace(job, model=tiny_model_path), TINY_DATA.parent, build_model=False,
                   local_only=True).train


@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
def test_the_weights_load_straight_onto_the_training_device(tiny_model_path, monkeypatch, method):
    """Loaded whole on the host and then moved, a 14B model's 27.6 GiB of bf16 weights overran a cloud VM's 32 GB of
    RAM before they reached its GPU: transformers puts each weight on the device as it reads it."""
    from transformers import AutoModelForCausalLM

    placed, read = [], AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained",
                        lambda *args, **kwargs: placed.append(kwargs.get("device_map")) or read(*args, **kwargs))
    config = config_from_dict({"model": "orch/tiny-llama", "method": method, "seq_len": 32, "max_steps": 1})
    model = load_model(config, tiny_model_path, torch.device("cpu"), "fp32", grad_ckpt=False)
    assert placed == [{"": torch.device("cpu")}]
    assert {p.device.type for p in model.parameters()} == {"cpu"}


@pytest.mark.parametrize(("change", "said"), [
    ({"model_type": "foobar"}, "has model type `foobar` but Transformers does not recognize this architecture):"),
    ({"dtype": "float7"}, "(AttributeError: module 'torch' has no attribute 'float7'):"),
])
def test_a_plans_count_refuses_a_model_config_transformers_cannot_build(tiny_model_path, tmp_path, change, said):
    """Planned and launched, charged, then refused by the trainer, in words cut mid-sentence; a bad dtype was said to
    be the tokenizer's fault (the tokenizer reads the same config.json)."""
    import json
    import shutil

    from trainer.config import ConfigError
    from trainer.count_tokens import count

    folder = tmp_path / "changed"
    shutil.copytree(tiny_model_path, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(ConfigError) as refused:
        count({"model": str(folder), "method": "lora", "seq_len": 64, "dataset": str(TINY_DATA)}, tmp_path)
    assert "transformers cannot build the model its config.json describes" in str(refused.value)
    assert said in str(refused.value) and "tokenizer" not in str(refused.value), refused.value
