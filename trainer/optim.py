"""Optimizers and the learning-rate schedule. 8-bit and paged optimizers come from bitsandbytes; the paged ones move
their state to CPU memory under GPU memory pressure (the stack's form of optimizer offload)."""

import math

import torch

from trainer.config import JobConfig

MIN_LR_FRACTION = 0.1  # cosine decay ends at a tenth of the peak learning rate


def build_optimizer(config: JobConfig, model, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs = {"lr": config.learning_rate, "weight_decay": config.weight_decay}
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, fused=device.type == "cuda", **kwargs)
    import bitsandbytes as bnb

    optimizer_class = {"adamw_8bit": bnb.optim.AdamW8bit, "paged_adamw_8bit": bnb.optim.PagedAdamW8bit,
                       "lion_8bit": bnb.optim.Lion8bit}[config.optimizer]
    return optimizer_class(params, **kwargs)


def build_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up, then cosine decay to MIN_LR_FRACTION of the peak."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
