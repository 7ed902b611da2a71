"""One attention mask for every layer, not one per layer.

The trainer passes position ids, never an attention mask: packed documents (and padding) restart their positions, and
transformers turns the restarts into a block-causal mask so no document attends to another. For `sdpa` that mask is
boolean, and PyTorch's scaled_dot_product_attention converts a boolean mask into an additive one in the query's
dtype at every call: each decoder layer makes its own micro_batch x seq x seq copy and autograd keeps it for the
backward (measured on the CPU: seq^2 x 4 bytes more per layer; 134 MB a layer at 8k tokens in bf16). Built additive
once, in the dtype the attention runs in (autocast's, where it is on), the same tensor reaches every layer and is kept
once. The result is the same: transformers' own mask, only in the form SDPA would have made of it.

Only this process is affected: the trainer registers it for `sdpa` when it loads a model.
"""

import torch
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask


def additive_sdpa_mask(*args, dtype: torch.dtype = torch.float32, **kwargs) -> torch.Tensor | None:
    """transformers' SDPA mask (None where SDPA's own causal flag does), as 0 / the dtype's minimum."""
    mask = sdpa_mask(*args, **kwargs)
    if mask is None or mask.dtype != torch.bool:
        return mask
    device = mask.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)


def share_sdpa_masks() -> None:
    ALL_MASK_ATTENTION_FUNCTIONS.register("sdpa", additive_sdpa_mask)
