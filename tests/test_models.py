import json

import pytest

from gpu_catalog.errors import UserError
from gpu_catalog.models import get_model, load_models

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
                                  "meta-llama/Meta-Llama-3-8B"])
def test_lookup_by_id_alias_and_short_name(name):
    assert get_model(name).name == "meta-llama/Llama-3.1-8B"


def test_unknown_model_suggests_near_names():
    with pytest.raises(UserError, match="Did you mean: .*Llama-3.1-8B"):
        get_model("Llama-3.1-9B")


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
    ("unsloth/Llama-3.2-1B-Instruct-bnb-4bit", "meta-llama/Llama-3.2-1B"),
    ("google/gemma-2-9b-it", "google/gemma-2-9b"),
])
def test_a_chat_instruct_or_quantized_release_has_its_base_models_shape(name, base):
    assert get_model(name) == get_model(base)


def test_an_unreachable_hub_is_asked_once_and_the_miss_is_a_clear_error(monkeypatch):
    from gpu_catalog import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens there
    hub.hub_reachable.cache_clear()
    try:
        with pytest.raises(UserError, match="unknown model 'someone/not-a-model'"):
            get_model("someone/not-a-model")
        assert hub.hub_reachable.cache_info().misses == 1
        with pytest.raises(UserError):
            get_model("someone/another-model")
        assert hub.hub_reachable.cache_info().hits >= 1  # not asked again
    finally:
        hub.hub_reachable.cache_clear()
