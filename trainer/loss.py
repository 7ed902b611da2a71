"""The training loss of a causal LM, in three ways that give the same number and differ in memory:

- `full`: transformers' own loss: logits for every position in 16 bits, an fp32 copy, fp32 log-probabilities and
  their gradients all exist at once (about 14 bytes per token per vocabulary entry at the loss backward).
- `chunked`: the last hidden states go through the LM head `loss_chunk_tokens` tokens at a time, each chunk under
  activation checkpointing, so only one chunk's logits ever exist; the backward recomputes each chunk's logits.
  Positions without a label (prompt, padding) never reach the head at all.
- `fused`: a fused linear cross-entropy kernel (liger-kernel's) that never writes the logits out; CUDA only, and
  only where liger-kernel is installed. Otherwise it falls back to `chunked` with a one-line notice.

All three return sum(token losses) / n_items, so gradient accumulation is exact whichever is chosen.
"""

import functools

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from trainer.data import IGNORE_INDEX


def causal_lm(model):
    """The transformers model under a peft wrapper (peft injects its adapters in place, so they still run)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _labelled_hidden(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.nn.Module, float | None]:
    """(hidden states of the labelled positions, their next-token labels, the LM head, logit soft-cap)."""
    lm = causal_lm(model)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    hidden = lm.get_decoder()(**inputs, use_cache=False).last_hidden_state
    # position t predicts token t + 1, as transformers' ForCausalLMLoss shifts the labels
    labels = F.pad(batch["labels"], (0, 1), value=IGNORE_INDEX)[:, 1:]
    keep = labels != IGNORE_INDEX
    return hidden[keep], labels[keep], lm.get_output_embeddings(), getattr(lm.config, "final_logit_softcapping", None)


def _chunk_loss_sum(head: torch.nn.Module, softcap: float | None, hidden: torch.Tensor,
                    labels: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits, labels, reduction="sum")


def chunked_loss(model, batch: dict, n_items: int, chunk_tokens: int) -> torch.Tensor:
    hidden, labels, head, softcap = _labelled_hidden(model, batch)
    step = functools.partial(_chunk_loss_sum, head, softcap)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, labels.numel(), chunk_tokens):
        end = start + chunk_tokens
        if torch.is_grad_enabled():
            total = total + checkpoint(step, hidden[start:end], labels[start:end], use_reentrant=False)
        else:
            total = total + step(hidden[start:end], labels[start:end])
    return total / n_items


def _liger_loss():
    """liger-kernel's fused linear cross-entropy class, or None where it is not installed."""
    try:
        from liger_kernel.transformers.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyLoss
    except ImportError:
        return None
    return LigerFusedLinearCrossEntropyLoss


def fused_available(model, device: torch.device) -> str | None:
    """None when the fused kernel can run here, else why not (one line)."""
    if device.type != "cuda":
        return "loss: fused needs a CUDA GPU"
    if _liger_loss() is None:
        return "loss: fused needs liger-kernel (pip install liger-kernel)"
    head = causal_lm(model).get_output_embeddings()
    if type(head) is not torch.nn.Linear:
        return "loss: fused needs a plain linear LM head (an adapter on lm_head is not supported)"
    return None


def fused_loss(model, batch: dict, n_items: int) -> torch.Tensor:
    hidden, labels, head, softcap = _labelled_hidden(model, batch)
    kernel = _liger_loss()(reduction="sum", softcap=softcap)
    return kernel(head.weight, hidden, labels, head.bias) / n_items


def full_loss(model, batch: dict, n_items: int) -> torch.Tensor:
    return model(**batch, use_cache=False, num_items_in_batch=n_items).loss


def loss_function(mode: str, chunk_tokens: int, model, device: torch.device):
    """loss(model, batch, n_items) for this job; `fused` where it cannot run says why and uses `chunked`."""
    if mode == "fused":
        reason = fused_available(model, device)
        if reason is None:
            return fused_loss
        print(f"{reason}; using loss: chunked (same result, a little slower)", flush=True)
        mode = "chunked"
    if mode == "chunked":
        return functools.partial(chunked_loss, chunk_tokens=chunk_tokens)
    return full_loss
