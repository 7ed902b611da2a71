"""Auto-fit: the fastest micro-batch and checkpointing choice that fits a GPU, keeping the effective batch through
gradient accumulation; or the reason nothing fits."""

from dataclasses import dataclass

from gpu_catalog.gpus import GPU
from gpu_catalog.models import ModelShape
from orchestrator.estimator.calibration import Calibration
from orchestrator.estimator.memory import MemoryEstimate, estimate_memory
from orchestrator.estimator.settings import with_batch
from orchestrator.estimator.speed import SpeedEstimate, estimate_speed
from trainer.config import JobConfig


@dataclass(frozen=True)
class Fit:
    """The chosen settings with their memory and speed, or (settings None) the smallest tried and why it fails."""

    settings: JobConfig | None
    memory: MemoryEstimate
    speed: SpeedEstimate | None
    reason: str = ""

    @property
    def fits(self) -> bool:
        return self.settings is not None


def micro_batch_candidates(settings: JobConfig) -> list[int]:
    """Divisors of the effective batch, largest first, so accumulation makes up exactly the same batch."""
    effective = settings.effective_batch
    return [m for m in range(effective, 0, -1) if effective % m == 0]


def checkpointing_choices(grad_ckpt) -> tuple[bool, ...]:
    """What auto-fit may pick for checkpointing: either, where the job leaves it `auto` (None: a flag not given);
    only what the job says otherwise (`--no-grad-ckpt --auto-fit` turned it on)."""
    return (False, True) if grad_ckpt in ("auto", None) else (bool(grad_ckpt),)


MOST_GIB_DECIMALS = 3  # a MiB: figures closer than that are said as equal, the comparison already made


def needed_and_usable_gib(needed_gib: float, usable_gib: float) -> tuple[str, str]:
    """Both figures with the fewest decimals (one at least) that keep them apart: `needs 15.2 GiB ..., has 15.2 GiB`
    read as a bug where 15.21 was 11 MiB over the 15.20 usable."""
    for decimals in range(1, MOST_GIB_DECIMALS + 1):
        needed, usable = f"{needed_gib:.{decimals}f}", f"{usable_gib:.{decimals}f}"
        if needed != usable:
            break
    return needed, usable


def fit_numbers(fit: "Fit") -> dict:
    """The fitted batch, checkpointing, memory and speed as numbers a script reads (display words them), or the
    reason nothing fits."""
    if fit.settings is None:
        return {"reason": fit.reason}
    return {"micro_batch": fit.settings.micro_batch, "grad_accum": fit.settings.grad_accum,
            "grad_ckpt": fit.settings.grad_ckpt, "vram_gib": round(fit.memory.vram_gib, 3),
            "tokens_per_s": round(fit.speed.tokens_per_s, 1)}


def auto_fit(model: ModelShape, settings: JobConfig, gpu: GPU, calibration: Calibration,
             vram_limit_gib: float, ckpt_choices: tuple[bool, ...] = (False, True)) -> Fit:
    best: Fit | None = None
    smallest: MemoryEstimate | None = None
    for grad_ckpt in ckpt_choices:
        for micro_batch in micro_batch_candidates(settings):
            candidate = with_batch(settings, micro_batch, grad_ckpt)
            memory = estimate_memory(model, candidate, gpu, calibration)
            if smallest is None or memory.vram_gib < smallest.vram_gib:
                smallest = memory
            if memory.vram_gib > vram_limit_gib:
                continue
            speed = estimate_speed(model, candidate, gpu, calibration)
            if best is None or speed.tokens_per_s > best.speed.tokens_per_s:
                best = Fit(candidate, memory, speed)
            break  # smaller micro-batches at this checkpointing choice only use less memory and run slower
    if best is not None:
        return best
    ckpt = "with" if True in ckpt_choices else "without"
    needed, usable = needed_and_usable_gib(smallest.vram_gib, vram_limit_gib)
    reason = f"does not fit: needs {needed} GiB at micro-batch 1 {ckpt} checkpointing, has {usable} GiB"
    return Fit(None, smallest, None, reason)
