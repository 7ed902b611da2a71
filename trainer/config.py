"""The job YAML: one schema for the trainer and for `orch plan`, with every key's default.

It lives with the trainer because the trainer must stand alone (a config in, metrics.json out, nothing imported from
orchestrator/); orchestrator.job reads jobs through it, so the two can never disagree on a key. Validated before
any work starts, with every problem reported at once. Plain Python: importing it loads no torch.
"""

from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from gpu_catalog.errors import UserError
from gpu_catalog.models import LINEAR_MODULES

BYTES_PER_TOKEN_ESTIMATE = 4  # raw text bytes per token for English with a BPE tokenizer: enough for planning
CHOICES = {
    "method": ("full", "lora", "qlora"),
    "optimizer": ("adamw", "adamw_8bit", "paged_adamw_8bit", "lion_8bit"),
    "attention": ("sdpa", "flash_attention_2", "eager"),
    "grad_ckpt": ("auto", True, False),
    "quant_bits": (4, 8),
    "precision": ("auto", "bf16", "fp16", "fp32"),
    "loss": ("full", "chunked", "fused"),
}


class ConfigError(UserError):
    """A bad config: the message lists every problem and how to fix it."""


@dataclass(frozen=True)
class JobConfig:
    model: str
    method: str
    seq_len: int
    name: str = "job"
    tokenizer: str | None = None  # default: the model's own
    dataset: str | None = None  # JSONL, Parquet or CSV path, or a Hugging Face dataset id
    dataset_tokens: int | None = None
    epochs: float = 1.0
    train_tokens: int | None = None
    max_steps: int | None = None
    micro_batch: int = 4
    grad_accum: int = 1
    grad_ckpt: str | bool = "auto"  # auto: off; `--auto-fit` turns it on after an out-of-memory
    optimizer: str = "adamw"
    quant_bits: int = 4
    double_quant: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = LINEAR_MODULES
    attention: str = "sdpa"
    precision: str = "auto"  # bf16 where the GPU has it, else fp16; fp32 on the CPU
    packing: bool = True
    freeze_layers: int = 0  # full fine-tuning: keep the embeddings and the lowest N blocks frozen
    learning_rate: float = 2e-4
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_fraction: float = 0.05
    eval_batches: int = 20
    eval_every: int | None = None
    save_every: int | None = None
    save_every_minutes: float = 30.0
    log_every: int = 10
    timing_warmup_steps: int = 1  # steps left out of tokens/s and step time: allocation, kernel selection, compile
    num_workers: int = 0
    merge_adapter: bool = False
    usd_per_hour: float | None = None  # with budget_usd: stop, with a checkpoint, before the spend passes the cap
    budget_usd: float | None = None
    seed: int = 0
    loss: str = "chunked"  # full: transformers' loss; chunked: logits a chunk at a time; fused: liger-kernel (CUDA)
    loss_chunk_tokens: int = 1024  # tokens per chunk of the chunked loss
    compile: bool = False  # torch.compile each decoder block (fewer kernel launches; the first steps compile)
    # QLoRA: peft's prepare_model_for_kbit_training casts embeddings, head and norms to fp32 (what HF + peft stacks
    # run, and safer under fp16); false keeps them in the compute dtype: 2 bytes a parameter less (1.96 GiB at 8B)
    qlora_fp32_upcast: bool = True

    @property
    def effective_batch(self) -> int:
        """Sequences per optimizer step; auto-fit keeps it while trading micro-batch for accumulation."""
        return self.micro_batch * self.grad_accum

    def resolved_train_tokens(self) -> int:
        """Tokens to train on: train_tokens, else max_steps worth, else the dataset's tokens times epochs."""
        if self.train_tokens is not None:
            return self.train_tokens
        if self.max_steps is not None:
            return self.max_steps * self.effective_batch * self.seq_len
        if self.dataset_tokens is not None:
            return int(self.dataset_tokens * self.epochs)
        raise ConfigError(f"cannot size dataset '{self.dataset}': it is not a local file. "
                          "Add `dataset_tokens: N` (tokens in one epoch) or `train_tokens: N` to the job.")


_TYPES = {f.name: f.type for f in fields(JobConfig)}
_INT_KEYS = {k for k, t in _TYPES.items() if t in (int, int | None)} - set(CHOICES)
_FLOAT_KEYS = {k for k, t in _TYPES.items() if t in (float, float | None)}
_BOOL_KEYS = {k for k, t in _TYPES.items() if t is bool}
_STR_KEYS = {k for k, t in _TYPES.items() if t in (str, str | None)} - set(CHOICES)
_POSITIVE = {"seq_len", "micro_batch", "grad_accum", "lora_r", "lora_alpha", "max_steps", "train_tokens",
             "dataset_tokens", "epochs", "learning_rate", "eval_batches", "eval_every", "save_every",
             "save_every_minutes", "log_every", "max_grad_norm", "usd_per_hour", "loss_chunk_tokens"}


def _problems(raw: dict) -> list[str]:
    problems = [f"unknown key `{k}`" for k in raw if k not in _TYPES]
    problems += [f"missing required key `{k}`" for k in ("model", "method", "seq_len") if raw.get(k) is None]
    for key, value in raw.items():
        if value is None or key not in _TYPES:
            continue
        if key in _INT_KEYS and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"`{key}` must be a whole number, got {value!r}")
        elif key in _FLOAT_KEYS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            problems.append(f"`{key}` must be a number, got {value!r}")
        elif key in _BOOL_KEYS and not isinstance(value, bool):
            problems.append(f"`{key}` must be true or false, got {value!r}")
        elif key in _STR_KEYS and not isinstance(value, str):
            problems.append(f"`{key}` must be a string, got {value!r}")
        elif key in CHOICES and value not in CHOICES[key]:
            problems.append(f"`{key}` must be one of {', '.join(str(c).lower() for c in CHOICES[key])}; got {value!r}")
        elif key in _POSITIVE and isinstance(value, (int, float)) and value <= 0:
            problems.append(f"`{key}` must be above 0, got {value}")
        elif key in _INT_KEYS | _FLOAT_KEYS and key != "seed" and isinstance(value, (int, float)) and value < 0:
            problems.append(f"`{key}` must be 0 or more, got {value}")
    for key, low, high in (("lora_dropout", 0, 1), ("eval_fraction", 0, 0.5)):
        value = raw.get(key)
        if isinstance(value, (int, float)) and not low <= value < high:
            problems.append(f"`{key}` must be in [{low}, {high}), got {value}")
    if not any(raw.get(k) is not None for k in ("train_tokens", "max_steps", "dataset")):
        problems.append("say how much to train: `train_tokens: N`, `max_steps: N`, or `dataset: PATH` (with `epochs`)")
    return problems


def _target_modules(value) -> tuple[str, ...] | None:
    if value in (None, "all-linear"):
        return LINEAR_MODULES
    names = [value] if isinstance(value, str) else value
    if isinstance(names, list) and names and all(n in LINEAR_MODULES for n in names):
        return tuple(names)
    return None


def config_from_dict(raw: dict, name: str = "job") -> JobConfig:
    if not isinstance(raw, dict):
        raise ConfigError("a job must be a YAML mapping of keys to values (model: ..., method: ..., seq_len: ...).")
    problems = _problems(raw)
    targets = _target_modules(raw.get("target_modules"))
    if targets is None:
        problems.append(f"`target_modules` must be all-linear or a list drawn from {', '.join(LINEAR_MODULES)}")
    if problems:
        raise ConfigError("bad config: " + "; ".join(problems) + ".")
    values = {k: v for k, v in raw.items() if v is not None}
    values.update(target_modules=targets)
    values.setdefault("name", name)
    return JobConfig(**values)


def parse_override(text: str) -> tuple[str, object]:
    """`--set key=value`, the value read as YAML (so `max_steps=20` is a number and `packing=false` a bool)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set takes KEY=VALUE, got {text!r}.")
    return key.strip(), yaml.safe_load(value)


def dataset_path(config: JobConfig, base_dir: Path) -> Path | None:
    """The dataset as a local file (relative to the job file's folder), or None for a hub id."""
    if config.dataset is None:
        return None
    path = (base_dir / Path(config.dataset).expanduser()).resolve()
    return path if path.exists() else None


def load_config(path: str | Path, overrides: list[str] = ()) -> tuple[JobConfig, Path]:
    """(config, the folder the file is in, against which relative dataset paths resolve)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"job file '{path}' does not exist. Copy one from examples/ to start.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"job file '{path}' is not valid YAML{where}: {getattr(exc, 'problem', exc)}.") from None
    if isinstance(raw, dict):
        raw.update(parse_override(o) for o in overrides)
    return config_from_dict(raw, name=path.stem), path.parent
