"""Optimizers and the learning-rate schedule. 8-bit and paged optimizers come from bitsandbytes; the paged ones move
their state to CPU memory under GPU memory pressure. `adamw_cpu_offload` is torchao's CPUOffloadOptimizer: AdamW
whose fp32 moments live in (pinned) CPU memory and step on the CPU, trading a host transfer per step for 8 bytes per
trainable parameter of GPU memory. Schedules are transformers' get_scheduler, under the names users know."""

import math

import torch

from trainer.config import JobConfig


def build_optimizer(config: JobConfig, model, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs = {"lr": config.learning_rate, "weight_decay": config.weight_decay}
    if config.optimizer == "adamw_cpu_offload" and device.type == "cuda":
        from torchao.optim import CPUOffloadOptimizer

        return CPUOffloadOptimizer(params, torch.optim.AdamW, fused=True, **kwargs)
    if config.optimizer in ("adamw", "adamw_cpu_offload"):  # on the CPU the state is in CPU memory already
        return torch.optim.AdamW(params, fused=device.type in ("cuda", "cpu"), **kwargs)  # no per-tensor temporaries
    import bitsandbytes as bnb

    optimizer_class = {"adamw_8bit": bnb.optim.AdamW8bit, "paged_adamw_8bit": bnb.optim.PagedAdamW8bit,
                       "lion_8bit": bnb.optim.Lion8bit}[config.optimizer]
    return optimizer_class(params, **kwargs)


def warmup_steps(config: JobConfig, total_steps: int) -> int:
    """warmup_steps when set, else warmup_ratio of the planned steps (rounded up, as transformers does)."""
    return config.warmup_steps or math.ceil(config.warmup_ratio * total_steps)


def build_scheduler(optimizer: torch.optim.Optimizer, config: JobConfig, total_steps: int):
    from transformers import get_scheduler

    return get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=warmup_steps(config, total_steps),
                         num_training_steps=total_steps)
