"""The memory-efficient losses give the same loss and gradients as transformers' own; QLoRA keeps the weights outside
its quantized linears in the compute dtype unless told to upcast them."""

import pytest
import torch

from tests.trainer_helpers import TINY_DATA
from trainer.config import config_from_dict
from trainer.data import IGNORE_INDEX, file_records, record_texts
from trainer.loss import chunked_loss, full_loss, loss_function
from trainer.model import load_model
from trainer.random_model import build_random_model


@pytest.fixture(scope="module")
def tiny_model_path():
    texts = record_texts(file_records(TINY_DATA))
    return str(build_random_model("orch/tiny-llama", texts, 128, seed=0))


def _batch(seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, 4000, (2, 48), generator=generator)
    labels = ids.clone()
    labels[0, :11] = IGNORE_INDEX  # a prompt without labels
    labels[1, 40:] = IGNORE_INDEX  # padding
    positions = torch.arange(48).repeat(2, 1)
    return {"input_ids": ids, "labels": labels, "position_ids": positions}


def _loss_and_grads(model, loss_fn, batch, n_items):
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model, batch, n_items)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("method", ["lora", "full"])
@pytest.mark.parametrize("chunk_tokens", [7, 1024])
def test_chunked_loss_and_gradients_equal_the_full_loss(tiny_model_path, method, chunk_tokens):
    config = config_from_dict({"model": "orch/tiny-llama", "method": method, "seq_len": 48, "max_steps": 1,
                               "lora_dropout": 0.0})
    model = load_model(config, tiny_model_path, torch.device("cpu"), "fp32", grad_ckpt=False)
    torch.manual_seed(0)
    for name, param in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero, which would leave A without gradient
            torch.nn.init.normal_(param, std=0.02)
    batch = _batch()
    n_items = int((batch["labels"] != IGNORE_INDEX).sum()) + 5  # a step's count spans other micro-batches too
    full, full_grads = _loss_and_grads(model, full_loss, batch, n_items)
    chunked, chunked_grads = _loss_and_grads(
        model, lambda m, b, n: chunked_loss(m, b, n, chunk_tokens=chunk_tokens), batch, n_items)
    assert full.item() > 0
    assert torch.allclose(full, chunked, rtol=1e-5)
    assert full_grads and full_grads.keys() == chunked_grads.keys()
    for name, grad in full_grads.items():
        assert torch.allclose(grad, chunked_grads[name], rtol=1e-4, atol=1e-6), name


def test_fused_falls_back_to_chunked_on_the_cpu(tiny_model_path, capsys):
    config = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 48, "max_steps": 1})
    model = load_model(config, tiny_model_path, torch.device("cpu"), "fp32", grad_ckpt=False)
    loss_fn = loss_function("fused", 64, model, torch.device("cpu"))
    assert "using loss: chunked" in capsys.readouterr().out
    model.eval()
    with torch.no_grad():
        batch = _batch(1)
        assert torch.allclose(loss_fn(model, batch, 50), full_loss(model, batch, 50), rtol=1e-5)


@pytest.mark.parametrize("upcast", [False, True])
def test_qlora_upcast_is_a_setting(tiny_model_path, upcast):
    config = config_from_dict({"model": "orch/tiny-llama", "method": "qlora", "seq_len": 32, "max_steps": 1,
                               "qlora_fp32_upcast": upcast, "precision": "bf16"})
    model = load_model(config, tiny_model_path, torch.device("cpu"), "bf16", grad_ckpt=False)
    embedding = model.get_base_model().get_input_embeddings().weight
    assert embedding.dtype == (torch.float32 if upcast else torch.bfloat16)
    assert not embedding.requires_grad
