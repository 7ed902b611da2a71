"""The training settings memory and speed depend on: a JobConfig narrowed to one concrete configuration."""

from dataclasses import dataclass, replace

from gpu_catalog.models import LINEAR_MODULES
from trainer.config import JobConfig


@dataclass(frozen=True)
class TrainSettings:
    method: str
    seq_len: int
    micro_batch: int
    grad_ckpt: bool
    optimizer: str = "adamw"
    quant_bits: int = 4
    double_quant: bool = True
    lora_r: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = LINEAR_MODULES
    attention: str = "sdpa"
    grad_accum: int = 1
    use_dora: bool = False
    modules_to_save: tuple[str, ...] = ()

    @property
    def tokens_per_micro_batch(self) -> int:
        return self.seq_len * self.micro_batch

    def with_batch(self, micro_batch: int, grad_ckpt: bool) -> "TrainSettings":
        """The same job at another micro-batch, keeping the effective batch through gradient accumulation."""
        effective = self.micro_batch * self.grad_accum
        return replace(self, micro_batch=micro_batch, grad_accum=max(1, effective // micro_batch), grad_ckpt=grad_ckpt)


def settings_from_job(spec: JobConfig) -> TrainSettings:
    """The job's settings as written; `grad_ckpt: auto` starts off, and auto-fit turns it on where needed."""
    return TrainSettings(
        method=spec.method, seq_len=spec.seq_len, micro_batch=spec.micro_batch, grad_accum=spec.grad_accum,
        grad_ckpt=spec.grad_ckpt is True, optimizer=spec.optimizer, quant_bits=spec.quant_bits,
        double_quant=spec.double_quant, lora_r=spec.lora_r, lora_dropout=spec.lora_dropout,
        target_modules=spec.target_modules, attention=spec.attention, use_dora=spec.use_dora,
        modules_to_save=spec.modules_to_save,
    )
