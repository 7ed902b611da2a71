"""The job YAML: one schema for the trainer and for `orch plan`, with every key's default.

It lives with the trainer because the trainer must stand alone (a config in, metrics.json out, nothing imported from
orchestrator/); orchestrator.job reads jobs through it, so the two can never disagree on a key. Validated before
any work starts, with every problem reported at once. Plain Python: importing it loads no torch.
"""

import codecs
import datetime
import json
import math
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.models import (
    DECODER_MODULE_NAMES,
    LINEAR_MODULES,
    RANDOM_PREFIX,
    could_be_hub_id,
    get_model,
    hub_id,
    is_model_folder,
    written_as_path,
)
from gpu_catalog.names import near_hint
from gpu_catalog.units import MAX_BUDGET_USD, USD_FORMS, TooNearZero, usd_from_text
from trainer.data_formats import COLUMNS
from trainer.foreign_keys import (
    FOREIGN_KEYS,
    LEFT_BEHIND,
    NEVER_CLIPS,
    NO_VALUE,
    OPTIMIZERS_ANY_CASE,
    unknown_key_message,
)
from trainer.model_files import weights_problem
from trainer.offline_names import built_models_folder, is_built_offline

AUTO_SAVE_FRACTION = 0.04  # a killed run loses at most this share of its steps (and at most save_every_minutes)
BYTES_PER_TOKEN_ESTIMATE = 4  # raw text bytes per token for English with a BPE tokenizer: enough for planning


def row_fill(tokens: int | None, sequences: int | None, seq_len: int) -> float | None:
    """The share of `sequences` rows of seq_len tokens that `tokens` real tokens fill (the rest is padding, which the
    GPU runs and a plan prices); None where the data was not counted into rows."""
    return tokens / (sequences * seq_len) if tokens and sequences else None
CHOICES = {
    "method": ("full", "lora", "qlora"),
    "optimizer": ("adamw", "adamw_8bit", "paged_adamw_8bit", "lion_8bit", "adamw_cpu_offload"),
    "attention": ("sdpa", "flash_attention_2", "eager"),
    "grad_ckpt": ("auto", True, False),
    "quant_bits": (4, 8),
    "precision": ("auto", "bf16", "fp16", "fp32"),
    "lr_scheduler": ("cosine", "linear", "constant", "constant_with_warmup"),
    "report_to": ("none", "tensorboard", "wandb"),
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
    dataset: str | None = None  # JSON(L), Parquet or CSV file, a folder of them, or a Hugging Face dataset id
    dataset_tokens: int | None = None  # override: `orch plan` otherwise counts (local) or looks up (hub) the size
    # the training sequences one epoch packs into (filled in where `orch plan` counts the data; an override too): the
    # trainer runs epochs x sequences // effective batch steps of seq_len-token rows, padding included
    dataset_sequences: int | None = None
    # -- data and settings users bring from other trainers (README "Your data") --
    dataset_config: str | None = None  # a hub dataset's config (subset) name
    dataset_split: str = "train"
    dataset_columns: tuple[tuple[str, str], ...] = ()  # from {orch_name: dataset_column}, e.g. {output: answer}
    eval_dataset: str | None = None  # a separate eval file or dataset (else eval_fraction is held out)
    eval_split: str | None = None  # eval split of eval_dataset (default train), or of dataset when no eval_dataset
    completion_only_loss: bool = True  # false: loss on every token, prompts and user turns included
    lr_scheduler: str = "cosine"  # transformers' get_scheduler names
    warmup_ratio: float = 0.0  # of the planned steps; warmup_steps wins when set
    neftune_noise_alpha: float | None = None  # NEFTune: uniform noise on embeddings in training, e.g. 5
    use_dora: bool = False
    use_rslora: bool = False  # LoRA scale alpha/sqrt(r) instead of alpha/r
    modules_to_save: tuple[str, ...] = ()  # trained in full next to the adapter: embed_tokens, lm_head for new tokens
    report_to: str = "none"  # tensorboard (output/tensorboard) or wandb (WANDB_PROJECT, WANDB_MODE=offline)
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
    save_every: int | None = None  # steps between checkpoints; default: AUTO_SAVE_FRACTION of the run's steps
    save_every_minutes: float = 30.0  # and at least this often, so a kill never loses more
    log_every: int = 10
    timing_warmup_steps: int = 1  # steps left out of tokens/s and step time: allocation, kernel selection, compile
    num_workers: int = 0
    cpu_threads: int | None = None  # torch's CPU threads: on the CPU, the cores the job trains on; default torch's
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

    @property
    def holds_out_eval(self) -> bool:
        """Whether eval is a share of the training data (no `eval_dataset` nor `eval_split` names a set of its own)."""
        return self.eval_dataset is None and self.eval_split is None

    def held_out(self, sequences: int) -> int:
        """How many of `sequences` the trainer holds out for eval (batches.split_eval draws which): `eval_fraction` of
        them, at least one where there is a share and two to split; none where eval has a set of its own."""
        if not self.holds_out_eval or self.eval_fraction <= 0 or sequences < 2:
            return 0
        return max(1, round(sequences * self.eval_fraction))

    def planned_steps(self, n_train: int) -> int:
        """Optimizer steps the trainer runs over `n_train` training sequences: max_steps, else train_tokens' worth of
        full rows, else whole effective batches of each epoch (the last partial batch of an epoch is left out)."""
        if self.max_steps is not None:
            return self.max_steps
        if self.train_tokens is not None:
            return max(1, math.ceil(self.train_tokens / (self.effective_batch * self.seq_len)))
        return max(1, int(self.epochs * (n_train // self.effective_batch)))

    def warm_up_problems(self, steps: int, source: str) -> dict[str, str]:
        """Each warm-up key that reaches the last of the run's `steps` (`source`: where that count comes from), with
        what is wrong: the learning rate never leaves its warm-up (`warmup_steps: 1000000` trained a 4-step run at
        about 0 and ended ok), or no step is timed (the run recorded no tokens/s). lr_scheduler constant has no
        warm-up (transformers' get_constant_schedule takes none); a warmup_ratio is below 1, so never reaches it."""
        problems = {}
        if 0 < steps <= self.warmup_steps and self.lr_scheduler != "constant":
            problems["warmup_steps"] = (f"`warmup_steps` {self.warmup_steps} is not below the run's {steps:,} steps "
                                        f"({source}): its learning rate would never leave the warm-up; lower it, or "
                                        "give warmup_ratio")
        if 0 < steps <= self.timing_warmup_steps and self.timing_warmup_steps > JobConfig.timing_warmup_steps:
            problems["timing_warmup_steps"] = (f"`timing_warmup_steps` {self.timing_warmup_steps} leaves none of the "
                                               f"run's {steps:,} steps ({source}) timed: lower it, or leave it out")
        return problems

    def epochs_warm_up_problem(self, sequences: int, said: str) -> str | None:
        """warm_up_problems of a job sized by epochs, its steps counted over `sequences` (`said`: how the message
        names them), as one sentence; None for a job whose max_steps or train_tokens sets its amount, held to it as
        its file is read (job_file.warm_up_problems)."""
        if self.max_steps is not None or self.train_tokens is not None:
            return None
        warm = self.warm_up_problems(self.planned_steps(sequences),
                                     f"`epochs` {self.epochs:g} x {said} / {self.effective_batch} a step")
        return "; ".join(warm.values()) + "." if warm else None

    def resolved_train_tokens(self) -> int:
        """Tokens to train on, as the GPU processes them (every row is seq_len tokens, padding included, which is
        what the speed estimate's tokens/s counts): max_steps worth, else train_tokens, else the steps the trainer
        runs over the counted sequences (`dataset_sequences`: an unpacked dataset of short samples is mostly
        padding, and pricing its real tokens said 2,850 rows of 2,048 cost what 66 packed rows do), else the
        dataset's tokens times epochs. max_steps comes first as in the trainer's loop (planned_steps), so a plan
        prices the steps that run: a job may hold both (`--set max_steps=2` on a job with train_tokens, to try it),
        and the run stops at max_steps. train_tokens is run in whole steps, as the trainer runs it (`train_tokens:
        1` was priced as 1 token, and trained a step of 2,048)."""
        if self.max_steps is not None or self.train_tokens is not None:
            return self.planned_steps(0) * self.effective_batch * self.seq_len
        if self.dataset_sequences is not None:
            return self.planned_steps(self.dataset_sequences) * self.effective_batch * self.seq_len
        if self.dataset_tokens is not None:
            tokens = int(self.dataset_tokens * self.epochs)
            if tokens < 1:
                raise ConfigError(f"job '{self.name}' trains on 0 tokens ({self.dataset_tokens} tokens x "
                                  f"{self.epochs:g} epochs): give a dataset with data in it, or more epochs.")
            return tokens
        raise ConfigError(f"cannot size dataset '{self.dataset}' here. "
                          "Add `dataset_tokens: N` (tokens in one epoch) or `train_tokens: N` to the job.")


_TYPES = {f.name: f.type for f in fields(JobConfig)}
_INT_KEYS = {k for k, t in _TYPES.items() if t in (int, int | None)} - set(CHOICES)
_FLOAT_KEYS = {k for k, t in _TYPES.items() if t in (float, float | None)}
_BOOL_KEYS = {k for k, t in _TYPES.items() if t is bool}
_STR_KEYS = {k for k, t in _TYPES.items() if t in (str, str | None)} - set(CHOICES)
NAME_LIST_KEYS = tuple(k for k, t in _TYPES.items() if t == tuple[str, ...])  # modules_to_save, target_modules
_POSITIVE = {"seq_len", "micro_batch", "grad_accum", "lora_r", "lora_alpha", "max_steps", "train_tokens",
             "dataset_tokens", "dataset_sequences", "epochs", "learning_rate", "eval_batches", "eval_every",
             "save_every", "save_every_minutes", "log_every", "max_grad_norm", "neftune_noise_alpha",
             "loss_chunk_tokens", "cpu_threads"}
MAX_SEQ_LEN = 2**20  # tokens per sequence: past any one-GPU fine-tune (and the simulator's traces share it)
# above these a run is a typo, not a choice: a rank past any model's width, a batch no GPU holds
# and an adapter scale (alpha / r) or a decay (lr x weight_decay per step) that blows the weights up
MOST_STEPS = 10**9
MIN_SEQ_LEN = 2  # a sequence's loss is on each token after the first
_MAXIMUM = {"learning_rate": 1.0, "epochs": 10_000.0, "seq_len": MAX_SEQ_LEN, "micro_batch": 2**16,
            "grad_accum": 2**16, "lora_r": 2**16, "loss_chunk_tokens": MAX_SEQ_LEN, "lora_alpha": 2**16,
            "weight_decay": 1.0, "budget_usd": MAX_BUDGET_USD, "usd_per_hour": MAX_BUDGET_USD, "num_workers": 1024,
            "cpu_threads": 1024,
            "neftune_noise_alpha": 1000.0,  # the NEFTune paper's alphas are 5 to 15
            "max_grad_norm": NEVER_CLIPS,
            "save_every_minutes": 1_000_000_000,  # about 1,900 years: `never` for sweeps and benchmarks, and no further
            # optimizer steps: a billion is years of a GPU at a step a ms; `warmup_steps: 1e15` held the learning rate
            # near 0 for a whole 49-step run, and `timing_warmup_steps: 1e12` never measured tokens/s
            **dict.fromkeys(("max_steps", "warmup_steps", "eval_every", "save_every", "log_every",
                             "timing_warmup_steps", "eval_batches"), MOST_STEPS)}
_USD_KEYS = {"budget_usd", "usd_per_hour"}  # dollars, written as the flags take them (usd_from_text)
MAX_EFFECTIVE_BATCH = 2**16  # sequences per optimizer step (micro_batch x grad_accum): far past any fine-tune's
MOST_PROBLEMS_SAID = 5
DATASET_KEYS = ("dataset", "eval_dataset")  # a file or folder (relative to the job file's folder), or a hub id
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
LARGEST_COUNT = 2**53  # whole numbers above this lose precision as JSON and overflow SQLite's 64-bit integers


def _is_choice(value, choices: tuple) -> bool:
    """`value` is one of `choices`, of the same type: `0 in (True, False)` holds in Python, and `grad_ckpt: 0` meant
    nothing the user wrote."""
    return any(value == choice and type(value) is type(choice) for choice in choices)


LONGEST_UNQUOTED = 100  # characters: a longer text value is no number or boolean quoted by mistake


def choice_as_orch(key: str, value):
    """A choice as orch names it: written in another case (`method: QLoRA`, `precision: BF16`) or, for the optimizer,
    by another trainer (`adamw_torch`), as `orch estimate`'s flags already take them. Anything else as it came, for
    the checks to judge."""
    if key not in CHOICES or not isinstance(value, str):
        return value
    spelled = value.strip().lower()
    spelled = OPTIMIZERS_ANY_CASE.get(spelled, spelled) if key == "optimizer" else spelled
    return spelled if spelled in CHOICES[key] else value


def _dollars(key: str, value):
    """A money key's text (`budget_usd: $20`, `'20 USD'`) as the number it stands for, read as `--budget` reads it:
    it was "must be a number" here. Any other value as it came, for the checks to judge (text that is no amount is
    then said to be one, with the forms)."""
    if key not in _USD_KEYS or not isinstance(value, str):
        return value
    try:
        return usd_from_text(value)
    except TooNearZero as exc:  # said as the flags say it, not as text that is no amount
        raise ConfigError(f"`{key}` {exc}") from None
    except ValueError:
        return value


def _quoted_by_mistake(key: str, value) -> str:
    """`: write it without quotes` for a text value that is what the key takes once YAML reads it unquoted
    (`micro_batch: '4'`, `grad_ckpt: 'true'`, `learning_rate: '2e-4'`): "must be a whole number, got '4'" read as if
    the value were right. Empty for any other value."""
    if not isinstance(value, str) or key in _STR_KEYS or len(value) > LONGEST_UNQUOTED:  # text keys take text
        return ""
    try:
        unquoted = _whole(checks.parse_yaml(value, f"`{key}`"))
    except UserError:
        return ""
    number = isinstance(unquoted, (int, float)) and not isinstance(unquoted, bool)
    fits = (key in CHOICES and _is_choice(unquoted, CHOICES[key]), key in _BOOL_KEYS and isinstance(unquoted, bool),
            key in _INT_KEYS and number and isinstance(unquoted, int), key in _FLOAT_KEYS and number)
    if not any(fits):
        return ""
    written = str(unquoted).lower() if isinstance(unquoted, bool) else value.strip()  # `yes` is YAML 1.1's true
    return f": it is quoted, so it is read as text; write it without quotes (`{key}: {written}`)"


def _unknown_key_problem(key, value=NO_VALUE) -> str:
    """What to say of a key orch does not have, from `orch import`'s tables (trainer/foreign_keys.py): another
    trainer's name for an orch key, a key orch leaves to itself (`output_dir`) with what to do instead, or a key
    torchtune nests (`lr` of `optimizer: {lr: ...}`) by its last part; else the nearest orch keys."""
    if not isinstance(key, str) or not key.strip():  # YAML reads `~:` as null, `1:` as a number: said as written
        number = isinstance(key, (int, float)) and not isinstance(key, bool)
        return f"a key must be a name, got {key if number else json.dumps(key)}: write the key's name before its colon"
    if key in LEFT_BEHIND:
        return f"unknown key `{key}`: {LEFT_BEHIND[key]}"
    nested = [(name, entry) for name, entry in FOREIGN_KEYS.items() if "." in name and name.rsplit(".", 1)[-1] == key]
    if key not in FOREIGN_KEYS and len({entry.orch for _, entry in nested}) == 1:  # `_component_` ends several
        name, entry = nested[0]
        return f"unknown key `{key}`: use `{entry.orch}` ({' and '.join(entry.trainers)}'s `{name}`)"
    return unknown_key_message(key, _TYPES, value)


_RANGES = {"lora_dropout": (0, 1), "eval_fraction": (0, 0.5), "warmup_ratio": (0, 1)}  # [low, high)


FOREIGN_CONFIG_KEYS = 3  # another trainer's names, no `model`: a whole config of theirs, for `orch import`


def _problems(raw: dict) -> list[str]:
    unknown = [key for key in raw if key not in _TYPES]
    # a whole axolotl or LLaMA-Factory config named as a job: five key-by-key hints and "and 26 more", where one
    # command converts it all
    if "model" not in raw and len(foreign := [k for k in unknown if k in FOREIGN_KEYS or k in LEFT_BEHIND]) >= \
            FOREIGN_CONFIG_KEYS:
        return [f"it is another trainer's config ({checks.first_few(foreign)}), not an orch job: `orch import` "
                "converts it (`orch import CONFIG --out job.yaml`), listing what it leaves out"]
    # only the first few are said (config_from_dict): the near names of 20,000 keys took 17 s to find, for "and 19995
    # more"; each one past those counts toward that number
    problems = [_unknown_key_problem(key, raw[key]) for key in unknown[:MOST_PROBLEMS_SAID]]
    problems += ["unknown key"] * (len(unknown) - len(problems))
    problems += [f"missing required key `{k}`" for k in ("model", "method", "seq_len") if raw.get(k) is None]
    wrong = {key: problem for key, value in raw.items()
             if value is not None and key in _TYPES and (problem := value_problem(key, value))}
    problems += wrong.values()
    if not any(raw.get(k) is not None for k in ("train_tokens", "max_steps", "dataset")):
        problems.append("say how much to train: `train_tokens: N`, `max_steps: N`, or `dataset: PATH` (with `epochs`)")
    # a value already said to be wrong is not judged again with the method: `freeze_layers: -1` under lora was also
    # told that freeze_layers is for method full, beside the point
    valid = {key: value for key, value in raw.items() if key not in wrong}
    return problems + _method_problems(valid) + _pair_problems(valid)


def _yaml_bool_note(value) -> str:
    """Why a name came as true or false: YAML 1.1 reads an unquoted yes, no, on or off so (`output: yes`)."""
    if not isinstance(value, bool):
        return ""
    return f" ({_yaml_words(value)}: quote a name that is one of those words)"


def _yaml_words(value: bool) -> str:
    """The words YAML 1.1 reads as `value`, unquoted: `no` was said to read as true where `yes` did."""
    return f"YAML reads an unquoted {'yes or on as true' if value else 'no or off as false'}"


def value_problem(key: str, value) -> str | None:
    """What is wrong with one key's value seen alone, or None: --set's keys are checked so before they join the
    file's, and a mistake there is said of --set, not of a job file that does not hold it."""
    unquote = _quoted_by_mistake(key, value)
    if key in _USD_KEYS and isinstance(value, str):  # text _dollars could not read
        return f"`{key}` {checks.short_repr(value)} is not an amount of US dollars: write {USD_FORMS}"
    if key in _INT_KEYS and (isinstance(value, bool) or not isinstance(value, int)):
        return f"`{key}` must be a whole number, got {checks.short_repr(value)}{unquote}"
    if key in _FLOAT_KEYS and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"`{key}` must be a number, got {checks.short_repr(value)}{unquote}"
    if key in _BOOL_KEYS and not isinstance(value, bool):
        return f"`{key}` must be true or false, got {checks.short_repr(value)}{unquote}"
    if key in _STR_KEYS and isinstance(value, datetime.date):  # `name: 2024-01-01`, said as written
        return f"`{key}` {value} is a date to YAML, not text: quote it (`{key}: '{value}'`)"
    if key in _STR_KEYS and not isinstance(value, str):
        return f"`{key}` must be a string, got {checks.short_repr(value)}{_yaml_bool_note(value)}"
    if key in _STR_KEYS and not is_text(value):
        return (f"`{key}` must be a name or a path, not empty and without control characters, got "
                f"{checks.short_repr(value)}")
    if key in _STR_KEYS and (inner := checks.in_own_quotes(value)) is not None:
        return (f"`{key}` {checks.short_repr(value)} holds its own quotes, which no name or path has: "
                f"write it without them (`{key}: {inner}`)")
    if key in _FLOAT_KEYS and isinstance(value, float) and not math.isfinite(value):
        return f"`{key}` must be a finite number, got {checks.short_repr(value)}"
    if key in _FLOAT_KEYS and (tiny := checks.too_small_text(value)):
        return f"`{key}` {tiny}"
    shown = checks.whole_shown(value) if isinstance(value, int) and not isinstance(value, bool) else value
    # the sign before the size (`lora_r: -1e308` was said to be too large); a choice's own list says more
    signed = isinstance(value, (int, float)) and key not in CHOICES
    if key in _POSITIVE and signed and value <= 0:
        return f"`{key}` must be above 0, got {shown}"
    if key in _INT_KEYS | _FLOAT_KEYS and key != "seed" and signed and value < 0:
        return f"`{key}` must be 0 or more, got {shown}"
    if key == "seq_len" and value < MIN_SEQ_LEN:  # it packed 0 sequences, said as "lower the batch or seq_len"
        return f"`seq_len` must be at least {MIN_SEQ_LEN}: a one-token sequence has no next token to learn, got {shown}"
    if key in _MAXIMUM and value > _MAXIMUM[key]:  # the key's own bound first: `seq_len: 1e308` is past 1048576
        return f"`{key}` must be at most {_MAXIMUM[key]}, got {shown}"
    if key in _INT_KEYS and abs(value) > LARGEST_COUNT:
        return f"`{key}` is too large: at most {LARGEST_COUNT}, got {shown}"
    if key == "name" and not checks.SAFE_NAME.fullmatch(value):
        return f"`name` {checks.short_repr(value)} is not allowed: use {checks.SAFE_NAME_RULE}"
    if key in CHOICES and not _is_choice(value, CHOICES[key]):
        choices = [str(c).lower() for c in CHOICES[key]]
        near = near_hint(value, choices, limit=1) if isinstance(value, str) and not unquote else ""  # `cosin`
        got = shown if isinstance(value, int) and not isinstance(value, bool) else checks.short_repr(value)
        # `report_to: no` came as false, said as "got false" with no way out
        word = f" ({_yaml_words(value)}: write one of the choices)" if isinstance(value, bool) else ""
        return f"`{key}` must be one of {', '.join(choices)}; got {got}{near}{unquote}{word}"
    if key in _RANGES and not _RANGES[key][0] <= value < _RANGES[key][1]:  # NaN and below 0 said above
        return f"`{key}` must be in [{_RANGES[key][0]}, {_RANGES[key][1]}), got {shown}"
    if key in _FLOAT_KEYS and (big := checks.beyond_floats_text(value)):  # no bound of its own said it
        return f"`{key}` {big}"
    return None


def _whole_above_zero(*values) -> bool:
    """Each a whole number above 0 (a value said wrong on its own is not judged again beside another)."""
    return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)


def _pair_problems(raw: dict) -> list[str]:
    """Settings each fine alone that do not go together: a step of billions of sequences (auto-fit would try every
    micro-batch dividing it), more sequences than tokens, a timing warm-up as long as the run, and FlashAttention-2 in
    fp32, which transformers refuses as it loads the model."""
    problems = []
    micro_batch, grad_accum = raw.get("micro_batch", 1), raw.get("grad_accum", 1)
    if _whole_above_zero(micro_batch, grad_accum) and micro_batch * grad_accum > MAX_EFFECTIVE_BATCH:
        problems.append(f"`micro_batch` x `grad_accum` = {micro_batch * grad_accum} sequences a step: at most "
                        f"{MAX_EFFECTIVE_BATCH}, lower one of them")
    tokens, sequences = raw.get("dataset_tokens"), raw.get("dataset_sequences")
    if _whole_above_zero(tokens, sequences) and sequences > tokens:  # 10 tokens in 10^8 rows priced the job at $173
        problems.append(f"`dataset_sequences` {sequences} is more than `dataset_tokens` {tokens}, and each sequence "
                        "holds at least one token: fix either, or leave both out for `orch plan` to count them")
    # the run ended ok with no tokens/s for launch to record; the default's one step is left as it is (a one-step
    # smoke run measures nothing either way, and a job written back whole, as the queue keeps it, names it)
    warmup, steps = raw.get("timing_warmup_steps"), raw.get("max_steps")
    if _whole_above_zero(warmup, steps) and warmup >= steps and warmup > JobConfig.timing_warmup_steps:
        problems.append(f"`timing_warmup_steps` {warmup} leaves none of the run's {steps} steps (`max_steps`) timed: "
                        "set it below max_steps, or leave it out")
    if raw.get("attention") == "flash_attention_2" and raw.get("precision") == "fp32":
        problems.append("attention flash_attention_2 runs in bf16 or fp16 only: use precision auto, bf16 or fp16, or "
                        "attention sdpa")
    return problems


def _method_problems(raw: dict) -> list[str]:
    """Keys that only one kind of method runs: refused here, so plan and estimate refuse what the trainer would."""
    given = [key for key in ("use_dora", "use_rslora", "modules_to_save") if raw.get(key)]
    if raw.get("method") == "full" and given:
        keys = " and ".join(f"`{key}`" for key in given)
        many = len(given) > 1
        return [f"{keys} {'apply' if many else 'applies'} to methods lora and qlora, and the method is full: use "
                f"method lora, or drop {'them' if many else 'it'}"]
    if raw.get("method") in ("lora", "qlora") and raw.get("freeze_layers"):
        return ["`freeze_layers` applies to method full only (LoRA and QLoRA freeze every base weight already)"]
    return []


def is_text(value) -> bool:
    """A name, column or path as text: not empty, and no control characters to reach a terminal."""
    return isinstance(value, str) and bool(value.strip()) and checks.printable(value) == value


def _columns(value) -> tuple[tuple[str, str], ...] | None:
    if value is None:
        return ()
    if isinstance(value, list | tuple) and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
        value = dict(value)  # the pairs metrics.json records
    if isinstance(value, dict) and all(is_text(k) and is_text(v) for k, v in value.items()):
        return tuple(sorted(value.items()))
    return None


def whole_counts(raw: dict) -> dict:
    """A job's counts written as whole floats (`micro_batch: 1.0`, `--set grad_accum=1e3`) as the ints they are: a job
    `orch import` writes holds `grad_accum: 1000`, not `1000.0`."""
    return {key: _whole(value) if key in _INT_KEYS else value for key, value in raw.items()}


def _whole(value):
    """A count written as a float that is whole (`train_tokens: 5e6`, `micro_batch: 8.0`, as YAML and JSON give
    them) as the int it is, however large (`1e20` is then too large, not "no whole number"); anything else as it
    came, for the checks to judge."""
    whole = isinstance(value, float) and math.isfinite(value) and value.is_integer()
    return int(value) if whole else value


def _column_problem(columns: tuple[tuple[str, str], ...]) -> str | None:
    """A mapping whose orch-side name is none of orch's would rename a column to a key no shape reads, and the run
    would fail later on every record with a message about its shape, not about this key."""
    if unknown := [name for name, _ in columns if name not in COLUMNS]:
        return (f"`dataset_columns` maps orch's names to your columns ({{output: answer}}), and "
                f"{checks.first_few(unknown)} is none of orch's names: use {', '.join(COLUMNS)}")
    if shared := checks.repeated(column for _, column in columns):
        names = [name for name, column in columns if column == shared[0]]
        return (f"`dataset_columns` maps {' and '.join(names)} to the same column {shared[0]!r}, so one text would "
                "be both: map each to a column of its own")
    return None


def _tokenizer_problem(value, base_dir: Path) -> str | None:
    """transformers takes a tokenizer name that is neither a folder nor a hub id for a hub id and fails at train
    time with a traceback; said here, before any work."""
    if not is_text(value) or os.path.isdir(base_dir / checks.user_path(value)):  # a wrong type is said once, above
        return None
    if os.path.isfile(base_dir / checks.user_path(value)):  # `tokenizer: data.csv`: planned, then failed in train
        return (f"`tokenizer` {checks.short_repr(value)} is a file, not a tokenizer's folder: give the folder "
                "holding its tokenizer.json (relative to the job file) or its hub id, or leave it out")
    if could_be_hub_id(value):
        return None
    return (f"`tokenizer` {checks.short_repr(value)} is no folder here and not a Hugging Face id (name or org/name of "
            "letters, digits and _ . -): give the tokenizer's folder (relative to the job file) or its hub id, or "
            "leave it out to use the model's own")


def _names(value) -> tuple[str, ...] | None:
    """Module names as peft matches them (`lm_head`, `model.embed_tokens`): Python identifiers joined by dots."""
    names = [value] if isinstance(value, str) else value if value is not None else []
    return tuple(names) if isinstance(names, list) and all(isinstance(n, str) and MODULE_NAME.fullmatch(n)
                                                           for n in names) else None


def _is_decoder_module(name: str) -> bool:
    """The name's last dotted part is a module a decoder has, or a block's index (`layers.3`): a typo such as
    `embed_token` passed plan and a cloud launch's pre-flight, and stopped the trainer on the VM."""
    last = name.split(".")[-1]
    return last in DECODER_MODULE_NAMES or last.isdigit()


CONTAINER_MODULES = frozenset({"model", "transformer", "layers", "h", "self_attn", "attn", "mlp"})


def _is_container(name: str) -> bool:
    """A module that holds others (the model, its blocks, a block, its attention or MLP): saved, each is trained in
    full, which the estimate of an adapter job does not count."""
    last = name.split(".")[-1]
    return last in CONTAINER_MODULES or last.isdigit()


def _repeated(names: tuple[str, ...] | None) -> str | None:
    """The first name listed more than once: peft would take it once, but the estimate counted each entry (twice the
    trainable parameters), so a repeat is refused rather than silently priced wrong."""
    return next((name for i, name in enumerate(names or ()) if name in names[:i]), None)


def _target_modules(value) -> tuple[str, ...] | None:
    if value in (None, "all-linear"):
        return LINEAR_MODULES
    names = [value] if isinstance(value, str) else value
    if isinstance(names, list) and names and all(n in LINEAR_MODULES for n in names):
        return tuple(names)
    return None


# a split as `datasets` reads it: a name (its NamedSplit rule, ^\w+(\.\w+)*$) with an optional slice, `+` between;
# `[bold]x[/bold]` was planned and launched, and `datasets` refused it on the VM. A slice or a sum works only for a hub
# dataset read whole: a bounded job streams (a stream takes whole splits), and a local one's files are read by name
SPLIT_NAME = r"\w+(?:\.\w+)*"
WHOLE_SPLIT = re.compile(SPLIT_NAME)  # a split's name alone: no slice, no sum
# a slice as datasets.ReadInstruction reads one: [FROM:TO], each a whole number or a percent, and a rounding after it
# (`train[::2]` and `train[:1.5%]` passed plan and submit, and failed on the VM)
_SLICE = r"(?:\[(?:-?\d+%?)?:(?:-?\d+%?)?\])?(?:\((?:closest|pct1_dropremainder)\))?"
SPLIT = re.compile(rf"{SPLIT_NAME}{_SLICE}(?:\+{SPLIT_NAME}{_SLICE})*")


def _naming_problems(raw: dict, base_dir: Path) -> list[str]:
    """What is wrong with the keys that name things (the modules an adapter targets or trains in full, the dataset's
    columns, the tokenizer), which no one type judges: a job's, or one `--set` value's alone."""
    problems = []
    targets = _target_modules(raw.get("target_modules"))
    if targets is None:
        problems.append(f"`target_modules` must be all-linear or a list drawn from {', '.join(LINEAR_MODULES)}, got "
                        f"{checks.short_repr(raw.get('target_modules'))}")
    columns, to_save = _columns(raw.get("dataset_columns")), _names(raw.get("modules_to_save"))
    if columns is None:
        given = raw.get("dataset_columns")
        booleans = [v for pair in given.items() for v in pair if isinstance(v, bool)] if isinstance(given, dict) else []
        problems.append("`dataset_columns` maps orch's names to your columns, each a name: {instruction: question, "
                        f"output: answer}}, got {checks.short_repr(given)}"
                        + (_yaml_bool_note(booleans[0]) if booleans else ""))
    elif column_problem := _column_problem(columns):
        problems.append(column_problem)
    if tokenizer_problem := _tokenizer_problem(raw.get("tokenizer"), base_dir):
        problems.append(tokenizer_problem)
    if to_save is None:
        problems.append("`modules_to_save` must be a list of module names, e.g. [embed_tokens, lm_head]")
    elif unknown := [n for n in to_save if not _is_decoder_module(n)]:
        problems.append(f"`modules_to_save` names {checks.first_few(unknown)}, no module of a decoder model: name "
                        "whole modules such as embed_tokens or lm_head")
    elif containers := [n for n in to_save if _is_container(n)]:
        problems.append(f"`modules_to_save` names {checks.first_few(containers)}, which holds other modules: it "
                        "would train all of them in full (method: full does that); name the modules themselves, "
                        "such as embed_tokens or lm_head")
    # a module both adapted and saved whole: peft's copy replaced the adapter, and the estimate counted both
    if targets and to_save and (both := [n for n in to_save if n.rsplit(".", 1)[-1] in targets]):
        problems.append(f"`modules_to_save` names {checks.first_few(both)}, which `target_modules` adapts with LoRA: "
                        "peft would train it whole instead; drop it from one of the two (modules_to_save is for "
                        "modules no adapter reaches, such as embed_tokens or lm_head)")
    for key, names in (("target_modules", targets), ("modules_to_save", to_save)):
        if repeated := _repeated(names):
            problems.append(f"`{key}` names {repeated} more than once: list each module once")
    for key in ("dataset_split", "eval_split"):
        if is_text(split := raw.get(key)) and not SPLIT.fullmatch(split):
            problems.append(f"`{key}` {checks.short_repr(split)} is no split name: `datasets` takes words of letters, "
                            "digits and _ (train, validation, test), joined by dots, with a slice [FROM:TO] of whole "
                            "numbers or percents (train[:10%], train[-100:]) and `+` between splits")
    split = raw.get("dataset_split")
    if is_text(split) and not WHOLE_SPLIT.fullmatch(split) and any(raw.get(key) is not None for key in
                                                                       ("max_steps", "train_tokens")):
        problems.append(f"`dataset_split` {checks.short_repr(split)} slices or sums splits, and a job bounded by "
                        "max_steps or train_tokens streams its dataset, a whole split at a time: give the split's "
                        "name alone (the bound caps how much of it trains)")
    return problems


def config_from_dict(raw: dict, name: str = "job", base_dir: Path = Path(".")) -> JobConfig:
    """The job, checked; `base_dir` is the job file's folder, where a relative `tokenizer` folder is looked for."""
    if not isinstance(raw, dict):
        raise ConfigError(f"a job must be a mapping of keys to values (model: ..., method: ..., seq_len: ...); this "
                          f"one is {checks.not_a_mapping(raw)}.")
    raw = {key: value if key in _INT_KEYS else _dollars(key, choice_as_orch(key, value))
           for key, value in whole_counts(raw).items()}
    problems = _problems(raw) + _naming_problems(raw, base_dir)
    if len(problems) > MOST_PROBLEMS_SAID:  # a file that is not a job at all: the first few say enough
        problems = problems[:MOST_PROBLEMS_SAID] + [f"and {len(problems) - MOST_PROBLEMS_SAID} more"]
    if problems:
        raise ConfigError("bad config: " + "; ".join(problems) + ".")
    values = {k: v for k, v in raw.items() if v is not None}
    values.update(target_modules=_target_modules(raw.get("target_modules")),
                  dataset_columns=_columns(raw.get("dataset_columns")),
                  modules_to_save=_names(raw.get("modules_to_save")))
    if isinstance(values["model"], str):  # a folder beside the job, absolute; a bare catalog name, the id it stands for
        folder = model_folder(values["model"], base_dir)
        values["model"] = str(folder) if folder is not None else hub_id(values["model"], base_dir)
    if "name" not in values:
        values["name"] = checks.name_from_stem(name)  # from the file name: made safe, not refused
    return JobConfig(**values)


def parse_override(text: str) -> tuple[str, object]:
    """`--set key=value`, the value read as YAML (so `max_steps=20` is a number and `packing=false` a bool)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set takes KEY=VALUE, got {checks.short_repr(text)}.")
    if not value.strip():  # `--set lora_r=$R` with R unset meant the default, unsaid; `null` says so
        raise ConfigError(f"--set {key.strip()}= gives no value: write --set {key.strip()}=VALUE, or "
                          f"{key.strip()}=null to leave the key at its default.")
    try:
        return key.strip(), checks.parse_yaml(value, f"--set {key.strip()}")
    except checks.NumberNotAsWritten as exc:  # a number, said as one: quoting it would not help
        raise ConfigError(str(exc)) from None
    except UserError as exc:  # `[red]x[/]` starts a YAML list: say how to give it as text
        raise ConfigError(f"{str(exc).rstrip('.')}: to give it as text, quote it inside the value, e.g. "
                          f"--set '{key.strip()}=\"...\"'.") from None


def resolve_dataset(name: str | None, base_dir: Path, key: str = "") -> Path | None:
    """A dataset as a local file or folder (relative to the job file's folder), or None for a hub id; a loop of
    symbolic links is refused (said of `key`, where given), not taken for a hub id."""
    if name is None:
        return None
    try:
        path = checks.resolved(base_dir / checks.user_path(name), key and f"`{key}`")
    except UserError as exc:
        raise ConfigError(str(exc)) from None
    return path if os.path.exists(path) else None  # Path.exists raises for a name too long for the file system


def model_folder(name: str, base_dir: Path) -> Path | None:
    """The `model` as a local folder, absolute, or None for a hub id, catalog name or `random:` shape. Relative paths
    start at the job file's folder, as `dataset`'s do: a name written as a path (written_as_path), or one naming a model
    folder there (with its config.json), is that path. `./real` was read from the current folder, so a job planned
    beside it was rejected when the scheduler, or `orch plan` from elsewhere, looked for it;
    `meta-llama/Llama-3.1-8B` stays an id unless such a model folder is beside the job (as transformers, too, would
    load the folder), and a folder of notes named `Llama-3.1-8B` does not hide the catalog's model."""
    if name.startswith(RANDOM_PREFIX):
        return None
    path = base_dir / checks.user_path(name)
    return Path(os.path.abspath(path)) if written_as_path(name) or is_model_folder(name, path) else None


def read_folders(config: JobConfig, base_dir: Path) -> tuple[Path, ...]:
    """The folders a run of `config` reads whole (a dataset folder, the model's, the tokenizer's): no output may be
    one or go into one, where the next run read its files as data (`--output DATASET/out`)."""
    tokenizer = resolve_tokenizer(config.tokenizer, base_dir)
    # a model built offline is read from its own folder among the built ones (`--output` there was taken)
    model = built_models_folder() if is_built_offline(config.model) else model_folder(config.model, base_dir)
    paths = (resolve_dataset(config.dataset, base_dir, "dataset"),
             resolve_dataset(config.eval_dataset, base_dir, "eval_dataset"), model,
             Path(tokenizer) if tokenizer else None)
    return tuple(path for path in paths if path is not None and path.is_dir())


def resolve_tokenizer(name: str | None, base_dir: Path) -> str | None:
    """The `tokenizer` as transformers loads it. Relative paths start at the job file's folder, as `dataset`'s do: a
    name written as a path (absolute, or starting with . or ~), or one naming a folder there, is that folder; any
    other name is a hub id, passed on as written."""
    if name is None:
        return None
    path = base_dir / checks.user_path(name)
    return os.path.abspath(path) if name.startswith(("/", ".", "~")) or os.path.isdir(path) else name


# The settings that make a run what it is: its weights, its data and their order, its schedule. Each checkpoint
# records them (run_identity) and a resume must keep them (identity_changes). The rest may change between the sessions
# of one run: how long it trains, its budget, logging, eval and checkpoint cadence, workers, the attention kernel and
# loss implementation, checkpointing, and the micro-batch split of the step (auto-fit changes it).
RUN_IDENTITY_KEYS = ("model", "method", "tokenizer", "dataset", "dataset_config", "dataset_split", "dataset_columns",
                     "eval_dataset", "eval_split", "eval_fraction", "completion_only_loss", "seq_len", "packing",
                     "seed", "optimizer", "learning_rate", "lr_scheduler", "warmup_ratio", "warmup_steps",
                     "weight_decay", "max_grad_norm", "neftune_noise_alpha", "lora_r", "lora_alpha", "lora_dropout",
                     "target_modules", "use_dora", "use_rslora", "modules_to_save", "quant_bits", "double_quant",
                     "qlora_fp32_upcast", "freeze_layers", "precision")
_IDENTITY_LABELS = {"effective_batch": "micro_batch x grad_accum"}
MOST_CHANGES_SAID = 3


def run_identity(config: JobConfig, base_dir: Path) -> dict:
    """What identifies the run `config` trains, as a checkpoint's state.json keeps it: local data and tokenizer as
    the folders they resolve to (a job file elsewhere, or with paths made absolute, names the same data)."""
    identity = {key: getattr(config, key) for key in RUN_IDENTITY_KEYS}
    identity["effective_batch"] = config.effective_batch  # the data order's step size, however it is split
    for key in ("dataset", "eval_dataset"):
        if (local := resolve_dataset(identity[key], base_dir, key)) is not None:
            identity[key] = str(local)
    identity["tokenizer"] = resolve_tokenizer(config.tokenizer, base_dir)
    return json.loads(json.dumps(identity))  # tuples as lists, as read back from JSON


def identity_changes(saved, current: dict) -> list[str]:
    """How `current` differs from a checkpoint's record (`lora_r 8 there, 4 here`). A checkpoint of an older orch has
    no record, and a key it did not record is unknown: neither counts as a difference."""
    if not isinstance(saved, dict):
        return []
    changes = [f"{_IDENTITY_LABELS.get(key, key)} {_shown(saved[key])} there, {_shown(value)} here"
               for key, value in current.items() if key in saved and saved[key] != value]
    if len(changes) > MOST_CHANGES_SAID:
        changes = changes[:MOST_CHANGES_SAID] + [f"and {len(changes) - MOST_CHANGES_SAID} more"]
    return changes


def _shown(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, list):
        return json.dumps(value, separators=(",", ":"))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _override_problem(key: str, value) -> str | None:
    """What is wrong with `--set key=value` alone: `--set max_step=2` was blamed on the job file (`job file
    'tiny.yaml': bad config: unknown key max_step`), where the user looked for it in vain."""
    if key not in _TYPES:
        return _unknown_key_problem(key, value)
    value = _whole(value) if key in _INT_KEYS else _dollars(key, choice_as_orch(key, value))
    if value is None:
        return None
    # the tokenizer is left to the job: a relative folder is looked for beside the job file, which --set does not know
    naming = [p for p in _naming_problems({key: value}, Path(".")) if key != "tokenizer"]
    return value_problem(key, value) or next(iter(naming), None)


def parse_overrides(overrides) -> dict:
    """Every `--set key=value`, each key once (of two values the last was kept silently), each value checked alone
    (_override_problem), so a mistake is said of --set."""
    given: dict = {}
    for text in overrides:
        key, value = parse_override(text)
        if problem := _override_problem(key, value):
            raise ConfigError(f"--set {text.strip()}: {problem}.")
        if key in given and given[key] != value:
            raise ConfigError(f"--set {key} given twice, as {checks.short_repr(given[key])} and "
                              f"{checks.short_repr(value)}: give it once.")
        given[key] = value
    return given


# the files transformers builds a tokenizer from: its own serialization and config, a sentencepiece model, and the
# vocabularies of the older BPE and WordPiece tokenizers
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")


def _check_config_json(path: Path) -> None:
    """A model folder's config.json as transformers reads it: JSON, with no byte-order mark before it (orch's own
    reader skips one; transformers' json.loads stops at it). One that cannot be read (no permission) is said so:
    plan and train ended in a PermissionError traceback."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read model config '{path}': {exc.strerror or exc}; make it readable.") from None
    if data.startswith(codecs.BOM_UTF8):
        raise ConfigError(f"{path} starts with a byte-order mark, which transformers cannot read: save it as UTF-8 "
                          "without one.")
    try:
        json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({checks.one_line(str(exc))[:100]}): fix it, or save the model "
                          "again with save_pretrained.") from None


def check_model_and_tokenizer(config: JobConfig, base_dir: Path) -> None:
    """A model or tokenizer that cannot be built is bad config, said in one line before torch loads: a `random:` (or
    tiny) model must name a shape orch knows, a model folder must hold weights that read, and the folder the
    tokenizer loads from (`tokenizer`, else the model's own folder) must hold a tokenizer. Each failed after the run
    had started, as an error: an unknown shape, transformers' OSError for a folder without weights, or its
    paragraph about sentencepiece for a folder with config and weights only."""
    if is_built_offline(config.model):
        get_model(config.model)  # UserError for a shape it does not know: "unknown model ..."
    model_dir = model_folder(config.model, base_dir)
    has_config = model_dir is not None and (model_dir / "config.json").is_file()
    if has_config:
        _check_config_json(model_dir / "config.json")  # a broken one was blamed on the tokenizer that loads it
        get_model(str(model_dir))  # a shape orch cannot train (GPT-2's): refused by plan, trained and then refused
    _check_tokenizer_folder(config, base_dir)
    if has_config and (problem := weights_problem(model_dir)):
        raise ConfigError(f"{problem}.")


def _check_tokenizer_folder(config: JobConfig, base_dir: Path) -> None:
    """The folder the tokenizer loads from holds one (check_model_and_tokenizer)."""
    folder = resolve_tokenizer(config.tokenizer, base_dir) or (None if is_built_offline(config.model) else
                                                               config.model)
    if folder is None or not os.path.isdir(folder) or any(os.path.isfile(os.path.join(folder, name))
                                                          for name in TOKENIZER_FILES):
        return  # a hub id, or a folder with a tokenizer: the trainer's own checks judge it
    files = ", ".join(TOKENIZER_FILES)
    if config.tokenizer is not None:
        raise ConfigError(f"`tokenizer` folder '{folder}' holds no tokenizer (none of {files}): give the folder a "
                          "tokenizer was saved to, or its hub id.")
    raise ConfigError(f"model folder '{folder}' holds no tokenizer (none of {files}): save the model's tokenizer "
                      "there, or name one with `tokenizer: FOLDER_OR_HUB_ID`.")
