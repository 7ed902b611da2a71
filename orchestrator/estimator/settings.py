"""The settings memory and speed depend on are the job's own: the estimator reads a trainer.config.JobConfig, so
there is one list of keys and one set of defaults for the trainer, `orch plan` and `orch estimate`.

These helpers read a JobConfig as one concrete configuration (`grad_ckpt: auto` is a choice auto-fit makes, so the
estimate of a job as written starts with it off)."""

from dataclasses import replace

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import GPU
from gpu_catalog.models import RANDOM_PREFIX, ModelShape, freezable_blocks, get_model, org_typo_note
from trainer.config import JobConfig

# FlashAttention-2 runs on Ampere, Ada and Hopper and later (flash-attn's README, 2024-12); on a T4 or V100 its
# kernel refuses at the first step, after the machine is paid for
FLASH_ATTENTION_MIN_CAPABILITY = 8.0
# torch 2.11 and later (orch pins 2.13) build their CUDA 12.8 and 13.0 wheels, PyPI's, for Turing (7.5) and later
# only: on a V100 (7.0) every kernel fails with "no kernel image is available" (pytorch RELEASE.md support matrix;
# pytorch/pytorch#172352, 2026-01)
TORCH_MIN_CAPABILITY = 7.5


def settings_from_job(spec: JobConfig) -> JobConfig:
    """The job with checkpointing resolved to on or off, as the trainer starts it."""
    return replace(spec, grad_ckpt=spec.grad_ckpt is True)


def job_model(spec: JobConfig) -> ModelShape:
    """The job's model shape (a UserError for a model orch does not describe), refusing a setting the shape cannot
    take: freezing more blocks than the model has, or a LoRA rank above its width (an adapter's rank is at most its
    linears' smaller side, so the rest is parameters and memory that add no rank: `lora_r: 65536` on a 128-wide
    model moved a CPU job to a cloud T4)."""
    model = get_model(spec.model)
    most = freezable_blocks(model.n_layers, model.tied_embeddings)
    if spec.method == "full" and spec.freeze_layers > most:
        if spec.freeze_layers <= model.n_layers:
            raise UserError(f"freeze_layers {spec.freeze_layers} freezes every block of {model.name}, and its head is "
                            f"tied to the frozen embeddings: only the final norm would train; freeze at most {most}.")
        raise UserError(f"freeze_layers {spec.freeze_layers} is more than the {model.n_layers} blocks of "
                        f"{model.name}: freeze at most {most}.")
    if spec.method != "full" and spec.lora_r > model.hidden:
        raise UserError(f"lora_r {spec.lora_r} is more than {model.name}'s width ({model.hidden}), the most rank "
                        f"an adapter of it can have: use at most {model.hidden}.")
    return model


def model_notes(spec: JobConfig, model: ModelShape) -> list[str]:
    """Warnings, not refusals, about the job's model that plan and launch say (on stderr, and in --json's notes)."""
    return [note for note in (org_typo_note(spec.model), context_note(spec, model)) if note]


def context_note(spec: JobConfig, model: ModelShape) -> str | None:
    """A warning, not a refusal, for a seq_len past the model's context: transformers trains there without a word,
    but a rotary model has never seen those positions (quality falls), and a long-context fine-tune on purpose is
    the user's call. Random weights (`random:`) are built with room for any seq_len."""
    if model.context_tokens is None or spec.seq_len <= model.context_tokens or spec.model.startswith(RANDOM_PREFIX):
        return None
    return (f"seq_len {spec.seq_len} is past {model.name}'s {model.context_tokens}-token context (its config's "
            "positions): it never trained on later ones, so quality drops; lower seq_len or pick a longer-context "
            "model.")


def unsupported_in_cloud(spec: JobConfig) -> str | None:
    """A setting whose package the cloud VM's setup cannot install (orchestrator/launch/remote_env.py installs the
    others a job's settings import), or None: flash-attn has no wheel on PyPI for the torch the VM gets and builds
    from source for hours, so the trainer refused the job there (trainer/requirements.py) after the VM was paid for.
    The planner offers no cloud target for it, and pre-flight refuses a launch of it."""
    if spec.attention == "flash_attention_2":
        return ("attention flash_attention_2 needs flash-attn, which a cloud VM's setup does not install (no wheel "
                "for its torch; building one from source takes hours): use `attention: sdpa`")
    return None


def unsupported_on(spec: JobConfig, gpu: GPU) -> str | None:
    """Why the trainer cannot run the job on this device at all (not a matter of memory), or None: the planner
    offers no such target, and `orch estimate` says so instead of a speed. bf16 on a T4 or V100 is emulated, many
    times slower than the estimate; fp16 needs CUDA's loss scaler."""
    on_cpu = gpu.kind == "cpu"
    if not on_cpu and float(gpu.compute_capability or 0) < TORCH_MIN_CAPABILITY:
        return (f"torch 2.11+ has no kernels for compute capability {gpu.compute_capability} (needs "
                f"{TORCH_MIN_CAPABILITY}+, Turing or later)")
    if spec.attention == "flash_attention_2" and on_cpu:
        return "attention flash_attention_2 needs a GPU: use attention sdpa"
    if spec.attention == "flash_attention_2" and float(gpu.compute_capability or 0) < FLASH_ATTENTION_MIN_CAPABILITY:
        return (f"attention flash_attention_2 needs an Ampere or later GPU (compute capability 8.0+), "
                f"{gpu.name} has {gpu.compute_capability}: use attention sdpa")
    if spec.precision == "fp16" and on_cpu:
        return "precision fp16 needs a GPU (its loss scaler runs on CUDA): use precision auto or bf16 on the CPU"
    if spec.precision == "bf16" and not on_cpu and not gpu.supports_bf16:
        return (f"precision bf16 needs a GPU with bf16 (Ampere or later), {gpu.name} has none: use precision auto "
                "or fp16")
    return None


def tokens_per_micro_batch(spec: JobConfig) -> int:
    return spec.seq_len * spec.micro_batch


def with_batch(spec: JobConfig, micro_batch: int, grad_ckpt: bool) -> JobConfig:
    """The same job at another micro-batch, keeping the effective batch through gradient accumulation."""
    return replace(spec, micro_batch=micro_batch, grad_accum=max(1, spec.effective_batch // micro_batch),
                   grad_ckpt=grad_ckpt)
