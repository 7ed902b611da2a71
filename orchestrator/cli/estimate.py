"""`orch estimate MODEL ...`: memory (as a breakdown) and, for a GPU, fit and tokens/s of one configuration."""

from typing import Annotated

import typer

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import get_gpu, load_gpus
from gpu_catalog.models import LINEAR_MODULES, get_model
from orchestrator.cli import display
from orchestrator.cli.errors import user_errors
from orchestrator.cli.options import JsonFlag
from orchestrator.estimator.calibration import load_calibration
from orchestrator.estimator.fit import auto_fit
from orchestrator.estimator.memory import estimate_memory
from orchestrator.estimator.settings import TrainSettings
from orchestrator.estimator.speed import estimate_speed
from orchestrator.job import ATTENTION_KERNELS, METHODS, OPTIMIZERS, job_from_dict

REFERENCE_GPU = "H100 SXM"  # memory is the same on any bf16 GPU; used when --gpu is not given


def _settings(method, seq_len, micro_batch, grad_ckpt, optimizer, lora_r, quant_bits, target_modules, attention):
    """Validate through the job schema, so estimate and plan accept and reject exactly the same values."""
    modules = "all-linear" if target_modules == "all-linear" else target_modules.split(",")
    spec = job_from_dict({"model": "-", "method": method, "seq_len": seq_len, "micro_batch": micro_batch,
                              "optimizer": optimizer, "lora_r": lora_r, "quant_bits": quant_bits,
                              "target_modules": modules, "attention": attention, "train_tokens": 1})
    return TrainSettings(method=spec.method, seq_len=spec.seq_len, micro_batch=spec.micro_batch, grad_ckpt=grad_ckpt,
                         optimizer=spec.optimizer, quant_bits=spec.quant_bits, lora_r=spec.lora_r,
                         target_modules=spec.target_modules, attention=spec.attention)


@user_errors
def estimate(
    model: Annotated[str, typer.Argument(help="Hugging Face id, alias (Llama-3.1-8B) or local model folder.")],
    method: Annotated[str, typer.Option(help=f"One of {', '.join(METHODS)}.")] = "lora",
    seq_len: Annotated[int, typer.Option(help="Tokens per sequence.")] = 2048,
    micro_batch: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 1,
    grad_ckpt: Annotated[bool, typer.Option("--grad-ckpt/--no-grad-ckpt", help="Gradient checkpointing.")] = True,
    optimizer: Annotated[str, typer.Option(help=f"One of {', '.join(OPTIMIZERS)}.")] = "adamw",
    lora_r: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    quant_bits: Annotated[int, typer.Option(help="QLoRA weight bits: 4 (NF4) or 8.")] = 4,
    target_modules: Annotated[str, typer.Option(help=f"all-linear or a comma list of {','.join(LINEAR_MODULES)}.")]
    = "all-linear",
    attention: Annotated[str, typer.Option(help=f"One of {', '.join(ATTENTION_KERNELS)}.")] = "sdpa",
    gpu: Annotated[str | None, typer.Option(help="Also say whether it fits and how fast it runs on this GPU.")]
    = None,
    fit: Annotated[bool, typer.Option("--auto-fit", help="With --gpu: find the fastest micro-batch and "
                                                         "checkpointing that fit, keeping the effective batch.")]
    = False,
    as_json: JsonFlag = False,
) -> None:
    """Estimate peak VRAM (with its breakdown) and, with --gpu, fit and training tokens/s."""
    settings = _settings(method, seq_len, micro_batch, grad_ckpt, optimizer, lora_r, quant_bits, target_modules,
                         attention)
    if fit and gpu is None:
        raise UserError("--auto-fit needs --gpu NAME: it fits the job to one GPU's memory.")
    shape = get_model(model)
    target = get_gpu(gpu) if gpu else get_gpu(REFERENCE_GPU)
    calibration = load_calibration()
    memory = estimate_memory(shape, settings, target, calibration)
    result = {"model": shape.name, "method": settings.method, "seq_len": settings.seq_len,
              "micro_batch": settings.micro_batch, "grad_ckpt": settings.grad_ckpt, "optimizer": settings.optimizer,
              "lora_r": settings.lora_r, "params": shape.params, "trainable_params": memory.trainable_params,
              "vram_gib": round(memory.vram_gib, 3),
              "breakdown": {k: round(v, 3) for k, v in memory.breakdown_gib.items()},
              "memory_device": target.name if gpu else "any bf16 GPU"}
    if gpu:
        speed = estimate_speed(shape, settings, target, calibration)
        result.update(gpu=target.name, gpu_vram_gib=target.vram_gib, fits=memory.vram_gib <= target.vram_gib,
                      tokens_per_s=round(speed.tokens_per_s, 1), efficiency=round(speed.efficiency, 3),
                      basis=speed.basis, flops_per_token=speed.flops_per_token)
        if fit:
            chosen = auto_fit(shape, settings, target, calibration, target.vram_gib)
            result["auto_fit"] = chosen.reason or (
                f"micro-batch {chosen.settings.micro_batch} x accumulation {chosen.settings.grad_accum}, "
                f"checkpointing {'on' if chosen.settings.grad_ckpt else 'off'}: {chosen.memory.vram_gib:.1f} GiB, "
                f"{chosen.speed.tokens_per_s:,.0f} tokens/s")
    else:
        fitting = sorted((g for g in load_gpus()
                          if estimate_memory(shape, settings, g, calibration).vram_gib <= g.vram_gib),
                         key=lambda g: (g.vram_gib, g.name))
        result["fits_on"] = [g.name for g in fitting]
        result["smallest_gpu_that_fits"] = fitting[0].name if fitting else None
    display.print_json(result) if as_json else display.show_estimate(result)
