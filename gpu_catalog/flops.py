"""Training FLOPs per token of a decoder with a known shape: shared by the estimator (to predict speed) and the
trainer (to report MFU), so prediction and measurement use one definition.

For N matmul weights (blocks + LM head; the embedding lookup has none):
- forward 2N plus causal attention 2 * layers * (heads * head_dim) * seq (eager computes the masked half too);
- backward twice the forward for full fine-tuning; frozen weights in LoRA/QLoRA need only the input gradient (2N),
  attention still needs both halves, and adapters cost 6 FLOPs per parameter in all;
- checkpointing recomputes the decoder blocks' forward once more. Model FLOPs (MFU's numerator) leave it out.
- a full fine-tune with its lowest `frozen_layers` blocks (and the embeddings) frozen runs no backward through them:
  nothing below needs a gradient. A tied head is frozen with the embeddings and needs only its input gradient.
"""

from gpu_catalog.models import ModelShape


def attention_flops_per_token(model: ModelShape, seq_len: int, eager: bool = False) -> float:
    causal = 2 * model.n_layers * model.n_heads * model.head_dim * seq_len
    return 2 * causal if eager else causal


def forward_flops_per_token(model: ModelShape, seq_len: int, adapter_params: int = 0,
                            eager_attention: bool = False) -> float:
    """One forward pass (what an evaluation runs): 2 FLOPs per matmul weight and adapter parameter, plus attention."""
    matmul_weights = model.block_linear_params + model.vocab * model.hidden
    return 2 * matmul_weights + 2 * adapter_params + attention_flops_per_token(model, seq_len, eager_attention)


def training_flops_per_token(model: ModelShape, method: str, seq_len: int, adapter_params: int = 0,
                             grad_ckpt: bool = False, eager_attention: bool = False,
                             frozen_layers: int = 0) -> tuple[float, float]:
    """(hardware FLOPs with recompute, model FLOPs without) per training token."""
    head_weights = model.vocab * model.hidden
    attention = attention_flops_per_token(model, seq_len, eager_attention)
    block_forward = 2 * model.block_linear_params + attention
    trained_share = 1.0
    if method == "full":
        forward = forward_flops_per_token(model, seq_len, 0, eager_attention)
        trained_share = 1 - min(frozen_layers, model.n_layers) / model.n_layers
        head_backward = 2 * head_weights * (1 if frozen_layers and model.tied_embeddings else 2)
        backward = 2 * block_forward * trained_share + head_backward
    else:
        forward = forward_flops_per_token(model, seq_len, adapter_params, eager_attention)
        backward = 2 * (model.block_linear_params + head_weights) + 2 * attention + 4 * adapter_params
    recompute = block_forward * trained_share if grad_ckpt else 0
    return forward + backward + recompute, forward + backward
