import json
import re

import pytest
from typer.testing import CliRunner

from gpu_catalog.errors import UserError
from gpu_catalog.models import get_model, hub_id, load_models
from orchestrator.cli.main import app
from trainer.config import ConfigError, config_from_dict

REQUIRED = ["meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-70b-hf",
            "meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-3B", "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B",
            "mistralai/Mistral-7B-v0.3", "mistralai/Mistral-Nemo-Base-2407", "google/gemma-2-2b", "google/gemma-2-9b",
            "google/gemma-2-27b", "Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-72B", "Qwen/Qwen3-8B",
            "microsoft/Phi-3-mini-4k-instruct", "microsoft/phi-4", "01-ai/Yi-1.5-34B"]


def test_required_families_are_present():
    assert set(REQUIRED) <= {m.name for m in load_models()}


def test_names_are_unique_and_sourced():
    names = [m.name for m in load_models()]
    assert len(names) == len(set(names))
    assert all(m.source for m in load_models())


@pytest.mark.parametrize("model", load_models(), ids=lambda m: m.name)
def test_shape_reproduces_the_published_parameter_count(model):
    # a wrong layer count, width or vocab shows up as a parameter count off by far more than 2%
    assert model.computed_params == pytest.approx(model.params, rel=0.02)


@pytest.mark.parametrize("name", ["meta-llama/Llama-3.1-8B", "Llama-3.1-8B", "llama-3.1-8b-instruct",
                                  "meta-llama/Meta-Llama-3-8B", "META-LLAMA/llama-3.1-8b"])
def test_lookup_by_id_alias_and_short_name(name):
    assert get_model(name).name == "meta-llama/Llama-3.1-8B"


def test_unknown_model_suggests_near_names():
    with pytest.raises(UserError, match="Did you mean: .*Llama-3.1-8B"):
        get_model("Llama-3.1-9B")


@pytest.mark.parametrize("name, shape", [("unsloth/Llama-3.2-1B-Instruct-bnb-4bit", "meta-llama/Llama-3.2-1B"),
                                         ("NousResearch/Meta-Llama-3-8B", "meta-llama/Llama-3.1-8B")])
def test_a_copy_under_another_org_has_the_shape_of_what_it_copies(name, shape):
    assert get_model(name).name == shape


@pytest.mark.parametrize("name", ["TinyLlama", "tinyllama", "unsloth/tinyllama-bnb-4bit", "tiny_llama"])
def test_tinyllama_is_never_orchs_own_toy(name):
    """`orch/tiny-llama`'s name and TinyLlama's are one key once normalised: TinyLlama was estimated as the 1.3M toy
    (2 GiB, 236,873 tokens/s on a T4). orch's own shapes answer to their full id and `tiny` only."""
    assert get_model(name).name == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
    assert hub_id(name.split("/")[-1]) != "orch/tiny-llama"
    assert get_model("tiny").name == get_model("orch/tiny-llama").name == "orch/tiny-llama"


def test_spaces_around_orchs_own_name_are_dropped_and_its_org_names_only_its_own_models():
    """`'orch/tiny-llama '` (a space at its end) and `orch/tiny‐llama` (U+2010, another hyphen) were sized as
    TinyLlama-1.1B, one key with it once normalised, and `orch train` built a random 1.1B model for the toy's job."""
    assert get_model("orch/tiny-llama ").name == hub_id(" orch/tiny-llama ") == "orch/tiny-llama"
    job = config_from_dict({"model": "orch/tiny-llama ", "method": "lora", "seq_len": 64, "max_steps": 1})
    assert job.model == "orch/tiny-llama"
    for name in ("orch/tiny\u2010llama", "orch/tinyllama", "orch/TinyLlama-1.1B-Chat-v1.0"):
        with pytest.raises(UserError, match=f"unknown model '{name}'") as error:
            get_model(name)
        assert "Hugging Face Hub" not in str(error.value)  # orch's own are built here, never downloaded


@pytest.mark.parametrize("name, shape", [
    ("unsloth/llama-3-8b-bnb-4bit", "meta-llama/Llama-3.1-8B"), ("Llama-3-8B-Instruct", "meta-llama/Llama-3.1-8B"),
    ("meta-llama/Meta-Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-70B"),
    ("unsloth/Llama-3.2-1B-Instruct-unsloth-bnb-4bit", "meta-llama/Llama-3.2-1B"),
    ("Qwen/Qwen1.5-14B-Chat", "Qwen/Qwen-14B"), ("Qwen/Qwen3-8B-FP8", "Qwen/Qwen3-8B"),
    ("microsoft/Phi-3-mini-128k-instruct", "microsoft/Phi-3-mini-4k-instruct"),
    ("CodeLlama-7b", "meta-llama/Llama-2-7b-hf"), ("codellama/CodeLlama-34b-Instruct-hf", "codellama/CodeLlama-34b-hf"),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "Qwen/Qwen2.5-7B"),
    ("unsloth/Mistral-7B-v0.2", "mistralai/Mistral-7B-v0.3"), ("Qwen/Qwen2.5-Coder-7B-Instruct", "Qwen/Qwen2.5-7B"),
    ("Qwen/Qwen2.5-Math-1.5B", "Qwen/Qwen2.5-1.5B"), ("Llama 3.3 (70B)", "meta-llama/Llama-3.1-70B"),
    ("Phi-4 (14B)", "microsoft/phi-4"), ("Phi-3.5 mini", "microsoft/Phi-3-mini-4k-instruct")])
def test_releases_published_tables_name_resolve_to_their_shape(name, shape):
    """Unsloth's, Qwen1.5's and CodeLlama's names in published benchmarks were unknown models."""
    assert get_model(name).name == shape
    assert get_model("CodeLlama-7b").context_tokens is None  # Llama-2's shape, not its 4096 positions (16384)


@pytest.mark.parametrize("name, kind", [
    ("meta-llama/Llama-3.2-11B-Vision-Instruct", "vision-language"), ("Qwen/Qwen2-VL-7B-Instruct", "vision-language"),
    ("google/gemma-3-12b-it", "vision-language"), ("unsloth/gemma-3-4b-it-bnb-4bit", "vision-language"),
    ("mistralai/Mistral-Small-3.1-24B-Instruct-2503", "vision-language"),
    ("mistralai/Mixtral-8x7B-v0.1", "mixture-of-experts"), ("Qwen/Qwen3-30B-A3B", "mixture-of-experts")])
def test_a_vision_or_mixture_of_experts_name_is_told_why_no_model_is_offered(name, kind):
    """The 11B vision model was offered Llama-3.2-1B, another model's estimate."""
    with pytest.raises(UserError, match=f"its name says a {kind} model") as error:
        get_model(name)
    assert "Did you mean" not in str(error.value)


@pytest.mark.parametrize("name", ["microsoft/phi-2", "tiiuae/falcon-7b", "EleutherAI/pythia-1b", "gpt2",
                                  "EleutherAI/gpt-neo-1.3B", "stabilityai/stablelm-base-alpha-3b", "facebook/opt-1.3b",
                                  "bigscience/bloom-7b1"])
def test_a_model_whose_mlp_has_no_gate_is_told_so_by_name(name):
    """phi-2 and falcon-7b (published tables' models) were offered the nearest catalog name, another model."""
    with pytest.raises(UserError, match="its name says a model whose MLP has no gate") as error:
        get_model(name)
    assert "Did you mean" not in str(error.value)


@pytest.mark.parametrize("name", ["tiiuae/Falcon3-7B-Base", "stabilityai/stablelm-2-1_6b", "microsoft/Phi-3-mini",
                                  "optimum/x", "mistralai/Mistral-7B-v0.1"])
def test_gated_namesakes_of_ungated_families_are_not_called_ungated(name):
    from gpu_catalog.models import NOT_DENSE_TEXT

    found = NOT_DENSE_TEXT.search(name)
    assert found is None or found.lastgroup != "ungated"


def test_unknown_hub_id_offline_is_a_clear_error():
    with pytest.raises(UserError, match="unknown model 'someone/not-a-model'"):
        get_model("someone/not-a-model")


def test_local_folder_config(tmp_path):
    config = {"hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "intermediate_size": 512, "vocab_size": 1000, "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = get_model(str(tmp_path))
    assert (model.n_layers, model.hidden, model.head_dim, model.vocab) == (2, 256, 64, 1000)
    assert model.params == model.computed_params > 0


@pytest.mark.parametrize("change, said", [
    ({"rope_theta": -1}, "`rope_theta` must be above 0, got -1"),
    ({"rope_parameters": {"rope_theta": 0, "rope_type": "default"}}, "`rope_parameters.rope_theta` must be above 0"),
    ({"rope_parameters": {"full_attention": {"rope_theta": -5.0}}}, "`rope_parameters.full_attention.rope_theta`"),
    ({"rms_norm_eps": -1e30}, "`rms_norm_eps` must be above 0 and below 1, got -1e+30"),
    ({"rms_norm_eps": 1.5}, "`rms_norm_eps` must be above 0 and below 1"),
])
def test_a_model_config_number_no_model_has_is_refused(tmp_path, change, said):
    """`rope_theta: -1` built a model that trained to a NaN loss at its first step, blamed on the learning rate."""
    config = {"hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 512,
              "vocab_size": 1000, "rope_theta": 10000.0, "rms_norm_eps": 1e-5}
    (tmp_path / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(UserError, match=re.escape(said)):
        get_model(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert get_model(str(tmp_path)).n_layers == 2


# config.json as Hugging Face publishes these models (sizes and the fields that could trip a check), for the rows of
# the catalog they describe
REAL_CONFIGS = {
    "meta-llama/Llama-3.1-8B": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                                "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
                                "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False},
    "Qwen/Qwen2.5-0.5B": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896,
                          "intermediate_size": 4864, "num_attention_heads": 14, "num_hidden_layers": 24,
                          "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True,
                          "use_sliding_window": False, "max_window_layers": 21},
    "mistralai/Mistral-7B-v0.3": {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
                                  "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
                                  "num_key_value_heads": 8, "vocab_size": 32768, "head_dim": None,
                                  "sliding_window": None, "tie_word_embeddings": False},
    "google/gemma-7b": {"architectures": ["GemmaForCausalLM"], "model_type": "gemma", "hidden_size": 3072,
                        "head_dim": 256, "intermediate_size": 24576, "num_attention_heads": 16,  # 16 x 256 != 3072
                        "num_hidden_layers": 28, "num_key_value_heads": 16, "vocab_size": 256000},
    "microsoft/Phi-3-mini-4k-instruct": {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3",
                                         "hidden_size": 3072, "intermediate_size": 8192, "num_attention_heads": 32,
                                         "num_hidden_layers": 32, "num_key_value_heads": 32, "vocab_size": 32064,
                                         "tie_word_embeddings": False, "auto_map": {"AutoConfig": "phi3"}},
}
SHAPE_FIELDS = ("n_layers", "hidden", "n_heads", "n_kv_heads", "head_dim", "intermediate", "vocab")


@pytest.mark.parametrize("hf_id", REAL_CONFIGS)
def test_a_real_config_saved_with_a_bom_reads_as_its_catalog_shape(tmp_path, hf_id):
    """Windows editors save a UTF-8 BOM, which json refuses ("Unexpected UTF-8 BOM"); it is no part of the JSON."""
    (tmp_path / "config.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(REAL_CONFIGS[hf_id]).encode())
    model, row = get_model(str(tmp_path)), get_model(hf_id)
    assert [getattr(model, f) for f in SHAPE_FIELDS] == [getattr(row, f) for f in SHAPE_FIELDS]


GOOD = REAL_CONFIGS["meta-llama/Llama-3.1-8B"]
IMPOSSIBLE_CONFIGS = {
    "more-kv-heads": ({**GOOD, "num_key_value_heads": 64}, "`num_key_value_heads` (64) must divide"),
    "kv-heads-not-dividing": ({**GOOD, "num_key_value_heads": 5}, "`num_key_value_heads` (5) must divide"),
    "heads-not-dividing-hidden": ({**GOOD, "hidden_size": 2048, "num_attention_heads": 30, "num_key_value_heads": 30},
                                  "`num_attention_heads` (30) must divide `hidden_size` (2048) when `head_dim` is not"),
    "mixtral": ({**GOOD, "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "num_local_experts": 8,
                 "num_experts_per_tok": 2}, "mixture-of-experts model (`num_local_experts`: 8): orch estimates dense"),
    "mixtral-experts-left-to-default": ({**GOOD, "model_type": "mixtral"}, "mixture-of-experts model (`model_type`"),
    "qwen2-moe": ({**REAL_CONFIGS["Qwen/Qwen2.5-0.5B"], "architectures": ["Qwen2MoeForCausalLM"],
                   "model_type": "qwen2_moe", "num_experts": 60, "moe_intermediate_size": 1408},
                  "mixture-of-experts model (`num_experts`: 60)"),
    # phi-2's config: sized as a gated MLP it was 3.6B parameters for its 2.8B
    "phi-2": ({"architectures": ["PhiForCausalLM"], "model_type": "phi", "hidden_size": 2560,
               "intermediate_size": 10240, "num_attention_heads": 32, "num_hidden_layers": 32, "vocab_size": 51200},
              "describes a `phi` model, whose MLP has no gate"),
    # the kind told by the architecture alone, or by an old Falcon's model type (both were sized as gated)
    "phi-by-architecture": ({**GOOD, "architectures": ["PhiForCausalLM"], "model_type": None},
                            "describes a `phi` model, whose MLP has no gate"),
    "refinedweb": ({**GOOD, "architectures": ["RWForCausalLM"], "model_type": "RefinedWebModel"},
                   "describes a `RefinedWebModel` model, whose MLP has no gate"),
    "nemotron": ({**GOOD, "architectures": ["NemotronForCausalLM"], "model_type": "nemotron"},
                 "describes a `nemotron` model, whose MLP has no gate"),
    "mamba": ({**GOOD, "architectures": ["MambaForCausalLM"], "model_type": "mamba"},
              "describes a `mamba` model, which is no transformer"),
    "masked-lm": ({**GOOD, "architectures": ["BertForMaskedLM"]},
                  '`architectures` names "BertForMaskedLM", not a causal language model'),
    "llava": ({"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "text_config": GOOD},
              'a vision-language model (`architectures`: "LlavaForConditionalGeneration")'),
    "vision-config": ({"text_config": GOOD, "vision_config": {"hidden_size": 1024}},
                      "a vision-language model (it has a `vision_config`)"),
    "tie-yes": ({**GOOD, "tie_word_embeddings": "yes"}, '`tie_word_embeddings` must be true or false (booleans are '
                'true/false in JSON), got "yes"'),
    "moe-by-architecture": ({**GOOD, "architectures": ["MixtralForCausalLM"]},
                            'mixture-of-experts model (`architectures`: "MixtralForCausalLM")'),
    # a quantization said in the wrong type: 3.0, "8" and NaN bits were read as int4, the text "false" as 4-bit
    "gptq-bits-text": ({**GOOD, "quantization_config": {"quant_method": "gptq", "bits": "8"}},
                       "`quantization_config.bits` must be a whole number"),
    "gptq-bits-nan": (json.dumps(GOOD)[:-1] + ', "quantization_config": {"quant_method": "gptq", "bits": NaN}}',
                      "`quantization_config.bits` must be a whole number, got nan"),
    "bnb-4bit-text": ({**GOOD, "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": "false",
                                                        "load_in_8bit": True}},
                      '`quantization_config.load_in_4bit` must be true or false (booleans are true/false in JSON), '
                      'got "false"'),
    "hidden-twice": (json.dumps(GOOD)[:-1] + ', "hidden_size": 8192}', "`hidden_size` is given twice"),
    # a list or a mapping as the kind ended in "unhashable type", a traceback, in every command that sized the model
    "model-type-list": ({**GOOD, "model_type": ["llama"]}, "`model_type` must be the model's kind as text"),
    "text-config-model-type-mapping": ({"text_config": {**GOOD, "model_type": {"a": 1}}},
                                       "`model_type` must be the model's kind as text"),
}


@pytest.mark.parametrize("name", IMPOSSIBLE_CONFIGS)
@pytest.mark.parametrize("prefix", ["", "random:"])
def test_an_impossible_or_unsupported_config_is_one_error_naming_file_and_field(tmp_path, name, prefix):
    """Each was estimated as if a dense Llama (the last `hidden_size` winning, "yes" read as tied embeddings)."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    config, message = IMPOSSIBLE_CONFIGS[name]
    (tmp_path / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    with pytest.raises(UserError, match=re.escape(message)):
        get_model(prefix + str(tmp_path))
    result = CliRunner().invoke(app, ["estimate", prefix + str(tmp_path)])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'config.json'}")


def test_local_folder_without_transformer_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "resnet"}))
    with pytest.raises(UserError, match="not a decoder-only transformer config"):
        get_model(str(tmp_path))


def test_a_config_with_a_number_python_cannot_read_is_one_error(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 1' + "0" * 5000 + "}")
    with pytest.raises(UserError, match="config.json: a number of thousands of digits, too long to read"):
        get_model(str(tmp_path))


@pytest.mark.parametrize("name, base", [
    ("Qwen/Qwen-7B-Chat-Int4", "Qwen/Qwen-7B"),
    ("meta-llama/Meta-Llama-3-8B-Instruct", "meta-llama/Llama-3.1-8B"),
    ("google/gemma-2-9b-it", "google/gemma-2-9b"),
])
def test_a_chat_instruct_or_quantized_release_has_its_base_models_shape(name, base):
    release, base_model = get_model(name), get_model(base)
    assert [getattr(release, f) for f in (*SHAPE_FIELDS, "params", "name")] == \
        [getattr(base_model, f) for f in (*SHAPE_FIELDS, "params", "name")]


def test_an_unreachable_hub_is_asked_once_and_the_miss_is_a_clear_error(monkeypatch):
    from gpu_catalog import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens there
    hub.hub_reachable.cache_clear()
    try:
        with pytest.raises(UserError, match="unknown model 'someone/not-a-model'.* The Hugging Face Hub cannot be "
                                            "reached from here .* give the folder"):
            get_model("someone/not-a-model")
        assert hub.hub_reachable.cache_info().misses == 1
        with pytest.raises(UserError):
            get_model("someone/another-model")
        assert hub.hub_reachable.cache_info().hits >= 1  # not asked again
    finally:
        hub.hub_reachable.cache_clear()


@pytest.mark.parametrize(("variable", "value", "said"), [
    ("HF_ENDPOINT", "https://huggingface.co:99999", "HF_ENDPOINT='https://huggingface.co:99999' is no URL to connect "
                                                    "to (Port out of range"),
    ("HF_ENDPOINT", "http://[::1", "(Invalid IPv6 URL)"),
    ("HF_ENDPOINT", "huggingface", "HF_ENDPOINT='huggingface' is no URL to connect to: set it as https://HOST"),
])
def test_a_hub_endpoint_that_names_no_host_is_one_line(monkeypatch, variable, value, said):
    """urllib's ValueError on a port past 65535 was a traceback in plan, launch, submit, train and report."""
    from gpu_catalog import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(variable, value)
    hub.hub_reachable.cache_clear()
    try:
        with pytest.raises(UserError) as refused:
            hub.hub_reachable()
        assert said in str(refused.value)
    finally:
        hub.hub_reachable.cache_clear()


@pytest.mark.parametrize("variable", ["HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE"])
def test_a_hugging_face_cache_in_no_users_home_is_one_line(monkeypatch, variable):
    """`~nouser/x` was pathlib's RuntimeError, a traceback from `orch train` that left its output folder behind."""
    from gpu_catalog import hub

    monkeypatch.setenv(variable, "~no-such-user-here/x")
    with pytest.raises(UserError, match=f"{variable}='~no-such-user-here/x': there is no such user's home folder"):
        hub.in_hub_cache("org/model") if variable != "HF_DATASETS_CACHE" else hub.in_datasets_cache("org/data")
    if variable == "HF_HOME":  # a cache's own variable overrides it, and it is not read then
        monkeypatch.setenv("HF_HUB_CACHE", "/nowhere/hub")
        monkeypatch.setenv("HF_DATASETS_CACHE", "/nowhere/datasets")
        assert not hub.in_hub_cache("org/model") and not hub.in_datasets_cache("org/data")


def test_every_catalog_model_but_orchs_own_states_its_context():
    """The context a `seq_len` is checked against comes from the model's config.json (max_position_embeddings)."""
    missing = [m.name for m in load_models() if m.context_tokens is None and not m.name.startswith("orch/")]
    assert missing == []


@pytest.mark.parametrize(("name", "context"), [
    ("meta-llama/Llama-2-7b-hf", 4096), ("Llama-2-7b", 4096), ("TheBloke/Llama-2-7b-hf-GPTQ", 4096),
    ("unsloth/Llama-3.2-1B-bnb-4bit", 131072),
    # another release with the same shape: its context is not the row's (Phi-3.5-mini has 131072, Qwen2.5-7B-Instruct
    # 32768, Qwen3-8B-Base 32768), so none is claimed
    ("microsoft/Phi-3.5-mini-instruct", None), ("Qwen/Qwen2.5-7B-Instruct", None), ("Qwen/Qwen3-8B-Base", None),
])
def test_a_context_is_claimed_only_for_the_release_the_row_describes(name, context):
    assert get_model(name).context_tokens == context


@pytest.mark.parametrize(("extra", "context"), [
    ({"max_position_embeddings": 4096}, 4096), ({"seq_length": 2048}, 2048), ({"n_positions": 1024}, 1024),
    ({}, None), ({"max_position_embeddings": None}, None), ({"max_position_embeddings": 2048.0}, 2048),
])
def test_a_local_configs_context_is_its_own(tmp_path, extra, context):
    config = {"hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 512,
              "vocab_size": 1000, **extra}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert get_model(str(tmp_path)).context_tokens == context


# Bare names whose catalog alias named no repository on the Hub (microsoft/Phi-3.5-mini, meta-llama/Llama-3.3-70B,
# Qwen/Qwen-1.8B, mistralai/Mistral-7B-v0.2): the trainer's download on the VM would fail after provisioning
@pytest.mark.parametrize("name, downloaded, shape", [
    ("phi-3.5-mini", "microsoft/Phi-3.5-mini-instruct", "microsoft/Phi-3-mini-4k-instruct"),
    ("Llama-3.3-70B", "meta-llama/Llama-3.3-70B-Instruct", "meta-llama/Llama-3.1-70B"),
    ("Qwen-1.8B", "Qwen/Qwen-1_8B", "Qwen/Qwen-1_8B"),
    ("Mistral-7B-v0.2", "mistral-community/Mistral-7B-v0.2", "mistralai/Mistral-7B-v0.3"),
    ("Phi-3-mini-128k", "microsoft/Phi-3-mini-128k-instruct", "microsoft/Phi-3-mini-4k-instruct")])
def test_a_release_published_only_as_instruct_answers_to_its_bare_name(name, downloaded, shape):
    assert hub_id(name) == downloaded
    assert get_model(name).name == get_model(downloaded).name == shape


@pytest.mark.parametrize("name", ["tiny-llama", "Tiny-Llama"])
def test_orchs_toy_name_without_its_org_is_refused_naming_both_models(name):
    """`model: tiny-llama` (the README's orch/tiny-llama without `orch/`) planned and trained the 1.1B TinyLlama."""
    for resolve in (get_model, hub_id):
        with pytest.raises(UserError, match=r"could be orch/tiny-llama \(orch's 1.3M-parameter test model, also "
                                            r"`tiny`\) or TinyLlama/TinyLlama-1.1B-Chat-v1.0 \(1.1B parameters\)"):
            resolve(name)


@pytest.mark.parametrize("name", ["'Llama-3.1-8B'", '"meta-llama/Llama-3.1-8B"', "`tiny`"])
def test_a_model_name_in_its_own_quotes_is_refused(name):
    """normalize() folded the quotes away, so the name matched a catalog row while the job kept them."""
    result = CliRunner().invoke(app, ["estimate", name])
    assert result.exit_code == 2 and "holds its own quotes" in result.stderr


def test_a_job_whose_model_holds_its_own_quotes_is_refused():
    with pytest.raises(ConfigError, match=r"holds its own quotes, .* \(`model: meta-llama/Llama-3.1-8B`\)"):
        config_from_dict({"model": "'meta-llama/Llama-3.1-8B'", "method": "lora", "seq_len": 64, "max_steps": 1})


@pytest.mark.parametrize("name, said", [
    ("https://huggingface.co/meta-llama/Llama-3.1-8B", r"is a link to the Hugging Face Hub: give the model's id alone "
                                                       r"\(meta-llama/Llama-3.1-8B\)"),
    ("hf://Qwen/Qwen2.5-7B", r"give the model's id alone \(Qwen/Qwen2.5-7B\)"),
    ("http://example.com/meta-llama/Llama-3.1-8B", "is a link, not a model: give its Hugging Face id"),
    ("random:random:orch/tiny-llama", r"says `random:` twice: write it once \(random:orch/tiny-llama\)"),
])
def test_a_link_or_a_doubled_random_prefix_is_refused_not_read_by_its_last_part(name, said):
    """Matched by their last part, both were sized as another model: a link to anywhere as the model it ended in,
    and `random:random:orch/tiny-llama` as TinyLlama-1.1B, 800 times the toy."""
    with pytest.raises(UserError, match=said):
        get_model(name)


def test_a_folder_a_mirror_saved_under_the_hubs_name_is_read_as_a_folder(tmp_path, monkeypatch):
    folder = tmp_path / "huggingface.co" / "meta-llama" / "Llama-3.1-8B"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(REAL_CONFIGS["meta-llama/Llama-3.1-8B"]), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert get_model("huggingface.co/meta-llama/Llama-3.1-8B").source == f"{folder.relative_to(tmp_path)}/config.json"


@pytest.mark.parametrize("name", ["./nosuchdir", "../models/x", "/no/such/model"])
def test_a_path_that_is_not_there_is_told_as_a_missing_folder(name):
    """`./nosuchdir` was an "unknown model" with near catalog names offered."""
    with pytest.raises(UserError, match=f"model folder '{re.escape(name)}' does not exist"):
        get_model(name)


@pytest.mark.parametrize("name, shape", [
    ("google/gemma-3-1b-it", "google/gemma-3-1b-pt"), ("Llama-3.1-405B", "meta-llama/Llama-3.1-405B"),
    ("mistralai/Mistral-Small-24B-Instruct-2501", "mistralai/Mistral-Small-24B-Base-2501"),
    ("huggyllama/llama-65b", "huggyllama/llama-65b"), ("huggyllama/llama-7b", "meta-llama/Llama-2-7b-hf"),
    ("Qwen/Qwen1.5-4B-Chat", "Qwen/Qwen1.5-4B"), ("Qwen/QwQ-32B", "Qwen/Qwen2.5-32B"),
    ("Qwen/Qwen2.5-Coder-32B-Instruct", "Qwen/Qwen2.5-32B"), ("codellama/CodeLlama-70b-Instruct-hf",
                                                               "codellama/CodeLlama-70b-hf")])
def test_widely_tuned_releases_are_known_offline(name, shape):
    """Gemma 3 1B, Mistral Small 3, Llama 3.1 405B, the LLaMA-1 sizes of the QLoRA paper, Qwen1.5 and the Qwen2.5
    Coder and QwQ releases were `unknown model` here, where the Hub cannot be read."""
    assert get_model(name).name == shape


@pytest.mark.parametrize("name", ["Orch/Tiny-Llama", "ORCH/TINY-LLAMA"])
def test_orchs_own_model_in_another_case_is_the_one_the_trainer_builds_offline(name):
    """`model: Orch/Tiny-Llama` was planned with the tiny shape, then the launched trainer looked for it on the hub
    and the run failed."""
    from trainer.offline_names import is_built_offline

    assert hub_id(name) == "orch/tiny-llama" and is_built_offline(hub_id(name))
    assert hub_id("Meta-Llama/Llama-3.1-8B") == "Meta-Llama/Llama-3.1-8B"  # a hub id: as written, the hub judges it


@pytest.mark.parametrize("name, near", [("meta-lama/Llama-3.1-8B", "meta-llama"), ("Qwenn/Qwen2.5-7B", "qwen"),
                                        ("unsloth/Llama-3.1-8B", None), ("NousResearch/Llama-2-7b-hf", None),
                                        ("meta-llama/Llama-3.1-8B", None), ("someone/my-finetune", None),
                                        ("random:meta-lama/Llama-3.1-8B", None),
                                        ("HuggingFaceH4/zephyr-7b-beta", None), ("google-t5/t5-small", None),
                                        ("deepseek/some-model", None)])
def test_an_org_a_letter_away_from_a_known_one_is_said_to_be_a_likely_typo(name, near):
    """`meta-lama/Llama-3.1-8B` was planned silently with Llama 3.1's shape; the typo showed only on the target."""
    from gpu_catalog.models import org_typo_note

    note = org_typo_note(name)
    assert (note is None) if near is None else f"did you mean '{near}'?" in note


def test_plan_says_the_org_typo_note(tmp_path, capsys):
    from orchestrator.cli.plan import run

    job = tmp_path / "job.yaml"
    job.write_text("name: typo\nmodel: meta-lama/Llama-3.1-8B\nmethod: qlora\nseq_len: 2048\ntrain_tokens: 1000000\n")
    assert run([str(job), "--budget", "50", "--json"]) == 0
    out = capsys.readouterr()
    assert any("did you mean 'meta-llama'?" in note for note in json.loads(out.out)["notes"])
    assert "note: 'meta-lama' is no organisation" in out.err


def test_a_model_folders_broken_config_is_named_before_its_tokenizer_is_loaded(tmp_path):
    """A config.json that was no JSON (or began with a byte-order mark) was reported as a tokenizer that could not be
    loaded, with the fix to give another tokenizer."""
    from trainer.config import check_model_and_tokenizer, config_from_dict

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "tokenizer.json").write_text("{}")
    job = config_from_dict({"model": "./m", "method": "lora", "seq_len": 64, "train_tokens": 100}, base_dir=tmp_path)
    for text, said in (("{not json", "config.json is not valid JSON (Expecting property name"),
                       ("\ufeff{}", "config.json starts with a byte-order mark, which transformers cannot read")):
        (tmp_path / "m" / "config.json").write_text(text, encoding="utf-8")
        with pytest.raises(UserError, match=re.escape(said)):
            check_model_and_tokenizer(job, tmp_path)


def test_a_model_folders_unreadable_files_are_said_so(tmp_path, monkeypatch):
    """A config.json its user may not read ended plan and train in a PermissionError traceback, and an unreadable
    model.safetensors was said not to exist. (Root reads every file, so the refusal is made as the OS makes it.)"""
    import errno
    import os
    import pathlib

    from trainer import model_files
    from trainer.config import check_model_and_tokenizer, config_from_dict

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    job = config_from_dict({"model": "./m", "method": "lora", "seq_len": 64, "train_tokens": 100}, base_dir=tmp_path)
    real_read = pathlib.Path.read_bytes

    def denied(path):
        if path.name == "config.json":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(pathlib.Path, "read_bytes", denied)
    with pytest.raises(UserError, match=re.escape("config.json': Permission denied; make it readable.")):
        check_model_and_tokenizer(job, tmp_path)
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(b"x")
    real_access = os.access
    monkeypatch.setattr(model_files.os, "access", lambda path, mode: path != weights and real_access(path, mode))
    assert model_files._safetensors_problem(weights) == "cannot be read (no permission): make it readable"


def test_a_model_folder_is_said_as_a_folder_and_its_linked_config_as_a_link(tmp_path, monkeypatch):
    """`orch estimate .` was an unknown model's name with Llama models suggested for it; a config.json that is a
    loop of links or a link to nothing was said to be missing."""
    monkeypatch.chdir(tmp_path)
    for name in (".", ".."):
        with pytest.raises(UserError, match=re.escape(f"{name} has no config.json: point at a Hugging Face model")):
            get_model(name)
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "config.json").symlink_to("config.json")
    with pytest.raises(UserError, match="is a symlink loop"):
        get_model("./loop")
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone" / "config.json").symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(UserError, match=re.escape(f"is a link to {tmp_path / 'nowhere.json'}, which does not exist")):
        get_model("./gone")


@pytest.mark.parametrize("make, said", [
    (lambda path: path.mkdir(), "config.json' is a folder, not a file"),
    (lambda path: path.symlink_to("/nonexistent"), "is a link to /nonexistent, which does not exist"),
    (lambda path: __import__("os").mkfifo(path), "is not a regular file (a device or a pipe)"),
])
def test_a_folder_whose_config_is_no_file_is_that_folder_not_a_hub_id(tmp_path, monkeypatch, make, said):
    """`orch estimate mdl/x` called such a folder an unknown model the hub could not be asked for."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mdl" / "x").mkdir(parents=True)
    make(tmp_path / "mdl" / "x" / "config.json")
    with pytest.raises(UserError, match=re.escape(said)):
        get_model("mdl/x")
