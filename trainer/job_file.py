"""A job as its file writes it: read and checked (`load_config`, `read_job_file`), and what it sets that its run could
not or would not do (`job_file_problems`). Judged on what the user wrote, here and not in config_from_dict, which also
reads the complete jobs recorded with runs and results: those hold every key's default, and may name a dataset or a
model folder since moved."""

import os
import shlex
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.models import HUB_LINK, get_model
from gpu_catalog.names import near_file_hint
from trainer.config import (
    DATASET_KEYS,
    ConfigError,
    JobConfig,
    choice_as_orch,
    config_from_dict,
    could_be_hub_id,
    is_text,
    model_folder,
    parse_overrides,
)
from trainer.foreign_keys import checkpoint_quantization, quantization_named
from trainer.offline_names import is_built_offline


def _model_problem(value, base_dir: Path) -> str | None:
    """A `model` that is no folder here, no name the hub could hold and none orch knows offline (`orch import
    --set model="[b]x[/]"`) was written into a job that plan then refused; said here, as of `tokenizer`. Whether the
    folder holds a model, and the hub the id, the model's own checks judge."""
    if is_text(value) and value != value.strip():  # `Llama-3.1-8B ` was taken, ` meta-llama/...` refused
        return (f"`model` {checks.short_repr(value)} has spaces around it, which no model's name or folder has: "
                f"write `model: {value.strip()}`")
    if is_text(value) and (link := HUB_LINK.fullmatch(value)):  # said in a job's words (get_model says it too)
        return (f"`model` {checks.short_repr(value)} is a link to the Hugging Face Hub: give the model's id alone "
                f"(`model: {link['id']}`)")
    if is_text(value) and os.path.isfile(base_dir / checks.user_path(value)):  # `model: data.jsonl`: no hub id
        return (f"`model` {checks.short_repr(value)} is a file, not a model's folder: give the folder holding the "
                "model's config.json (relative to the job file), or its hub id")
    if not is_text(value) or is_built_offline(value) or could_be_hub_id(value):
        return None
    if (folder := model_folder(value, base_dir)) is not None:
        if folder.is_dir() and not os.path.lexists(folder / "config.json"):  # `.`, `./notes`
            return (f"`model` {checks.short_repr(value)} is a folder without a config.json: give the folder a model "
                    "was saved to, or its hub id")
        if folder.is_dir():
            return None  # its config, weights and tokenizer: the model's own checks judge them
        state = "is a file, not a model's folder" if folder.exists() else "does not exist (relative to the job file)"
        return f"`model` folder {checks.short_repr(value)} {state}: give the folder holding the model's config.json"
    if "/" not in value:  # a catalog name written another way (`Llama 3.1 8B`); one with a slash would ask the hub
        try:
            get_model(value)
            return None
        except UserError:
            pass
    if os.path.isdir(base_dir / checks.user_path(value)):  # `.`: a folder, but not a model's
        return (f"`model` {checks.short_repr(value)} is a folder without a config.json: give the folder a model was "
                "saved to, or its hub id")
    return (f"`model` {checks.short_repr(value)} is no folder here, no Hugging Face id (name or org/name of letters, "
            "digits and _ . -) and no model orch knows: give the model's folder (relative to the job file), its hub "
            "id, or a name from `orch catalog models`")


def _dataset_problem(key: str, value, base_dir: Path) -> str | None:
    """A `dataset` or `eval_dataset` that is neither a file or folder (relative to the job file's folder, as
    resolve_dataset finds it) nor a name the hub could hold was queued by plan and submit, and refused only when the
    trainer read it, or looked up on the hub first; said here, as of `tokenizer`. A link there (a loop of them, said
    by resolve_dataset as one) is left to the path's own checks."""
    if not is_text(value) or os.path.lexists(base_dir / checks.user_path(value)) or could_be_hub_id(value):
        return None  # a wrong type is said once, above; os.path.lexists is False for a name too long for a path
    if os.path.lexists(from_here := os.path.abspath(checks.user_path(value))):  # `--set dataset=data/x.jsonl`, typed
        # from the shell's folder, was "no file or folder here", though it is one there
        return (f"`{key}` {checks.short_repr(value)} is no file or folder in {checks.short_repr(str(base_dir))}, "
                f"where a job's relative paths start (the job file's folder): give {checks.short_repr(from_here)}")
    return (f"`{key}` {checks.short_repr(value)} is no file or folder here and not a Hugging Face dataset id (name "
            "or org/name of letters, digits and _ . -): give a JSONL, Parquet or CSV file or a folder of them "
            "(relative to the job file), or the dataset's hub id")


def load_config(path: str | Path, overrides: list[str] = ()) -> tuple[JobConfig, Path]:
    """(config, the folder the file is in, against which relative dataset and tokenizer paths resolve)."""
    path = Path(path)
    if not os.path.isfile(path):  # unlike Path.is_file, False for a name too long for the file system
        if loop := checks.symlink_loop(path, "job file"):
            raise ConfigError(str(loop))
        if link := checks.dangling_link(path):
            raise ConfigError(f"job file '{path}' {link}.")
        state = ("is a folder, not a file" if os.path.isdir(path) else
                 "is not a regular file (a device or a pipe)" if os.path.exists(path) else
                 f"does not exist{near_file_hint(path, checks.YAML_SUFFIXES, str(path))}")
        # the examples' datasets are named relative to the job file: one copied alone named a dataset not there
        raise ConfigError(f"job file '{path}' {state}. Copy one from examples/, and its data/ folder beside it.")
    return read_job_file(path, overrides)[1], path.parent


def read_job_file(path: Path, overrides: list[str] = (), missing: dict | None = None) -> tuple[dict, JobConfig]:
    """The job file's mapping, `--set` values applied, and the job it holds, checked. Every command reads job files
    here, so each problem names the file: `bad config: unknown key ...` of `orch report --job a --job b` said neither
    which job nor that it was one. `missing`: values for keys the file leaves out, in the job but not in the mapping
    (`orch estimate` needs no amount to train, and takes --seq-len as a flag)."""
    written = checks.load_yaml(path, "job file", names_data=" whose `dataset:` names it")
    given = parse_overrides(overrides)
    raw = {**written, **given} if isinstance(written, dict) else written
    filled = {key: value for key, value in (missing or {}).items() if key not in raw} if isinstance(raw, dict) else {}
    whole = {**filled, **raw} if isinstance(raw, dict) else raw
    try:
        config = config_from_dict(whole, name=path.stem, base_dir=path.parent)  # each value's own problem first:
        # `budget_usd: .nan` was said to need `usd_per_hour`
        if problems := job_file_problems(whole, path.parent) + warm_up_problems(written, {**filled, **given}, config):
            raise ConfigError("bad config: " + "; ".join(problems) + ".")
        return raw, config
    except UserError as exc:
        where = f"job file '{path}'"
        if given and _fine_without_set(written, path):  # `--set warmup_steps=5` beside the file's warmup_ratio
            where += " with " + " ".join(f"--set {shlex.quote(text.strip())}" for text in overrides)
        raise ConfigError(f"{where}: {exc}") from None


def warm_up_problems(written, given: dict, config: JobConfig) -> list[str]:
    """JobConfig.warm_up_problems of the steps the file itself sets (max_steps, else train_tokens' worth), each
    warm-up said only where the file writes it. Not where --set or the caller (`given`) sets the amount:
    `--set max_steps=2` is how a job is tried, and a smoke run's warm-up is no one's concern; `orch estimate` fills in
    one step for a file that gives train_tokens, and refused each such file with a warm-up (a shipped example). A job
    sized by epochs is held to its steps once its data is counted (orch/job.py, the trainer's loop)."""
    amount = ("max_steps", "train_tokens")  # `max_steps: null` leaves it to epochs, as if not written
    if not isinstance(written, dict) or not any(written.get(k) is not None for k in amount) or \
            any(k in given for k in amount):
        return []
    source = "`max_steps`" if config.max_steps is not None else "`train_tokens` / (micro_batch x grad_accum x seq_len)"
    return [problem for key, problem in config.warm_up_problems(config.planned_steps(0), source).items()
            if key in written]


def _fine_without_set(written, path: Path) -> bool:
    """Whether the job file alone is a job with nothing to say against it: then a problem of the job read with its
    --set values is theirs, or of the two together, and is not said of the file alone, which does not hold it."""
    try:
        config_from_dict(written, name=path.stem, base_dir=path.parent)
    except UserError:
        return False
    return not job_file_problems(written, path.parent)


def job_file_problems(raw: dict, base_dir: Path) -> list[str]:
    """What a job file (with its --set values) says that its run could not or would not do, beyond config_from_dict:
    written_problems, and a model or dataset that is no path here nor a hub id. They are judged here, where a job is
    read to be run, and not in config_from_dict, which also reads the jobs recorded with runs and results: a dataset
    or model folder since moved or deleted must not make `orch report` refuse a record."""
    paths = (_model_problem(raw.get("model"), base_dir),
             *(_dataset_problem(key, raw.get(key), base_dir) for key in DATASET_KEYS))
    return written_problems(raw, base_dir) + [problem for problem in paths if problem]


QLORA_KEYS = ("quant_bits", "double_quant", "qlora_fp32_upcast")


def qlora_keys_problem(raw: dict, base_dir: Path | None = None) -> str | None:
    """A job file whose method contradicts its quantization: QLoRA's keys for another method (`method: lora` with
    `quant_bits: 4` was planned and trained as bf16 LoRA, twice the weight memory its writer meant, unsaid), or a
    checkpoint stored quantized (unsloth's `-bnb-4bit`, Qwen's `-Int4`) for lora or full, which transformers loads
    quantized all the same: planned at 16 bits, trained as QLoRA without QLoRA's settings, or not trainable in full.
    A model folder beside `base_dir` says so in its config.json; one stored in a format orch does not know is
    refused for any method. (`orch estimate` flags are not held to this: a what-if may carry a column of settings
    whatever the method.)"""
    method, model = choice_as_orch("method", raw.get("method")), raw.get("model")
    folder = model_folder(model, base_dir) if isinstance(model, str) and base_dir is not None else None
    stored = checkpoint_quantization(model, folder) if isinstance(model, str) else None
    if stored is not None and quantization_named(stored) is None:
        return (f"`model` {checks.short_repr(model)} is stored quantized ({checks.printable(stored)}), a format orch "
                "neither estimates nor trains: give the unquantized model")
    if method not in ("lora", "full"):
        return None
    if stored is not None:
        return (f"`model` {model} is stored quantized ({stored}), and transformers loads it so whatever the method: "
                f"set method: qlora{', or give the unquantized model to train in full' if method == 'full' else ''}")
    given = [key for key in QLORA_KEYS if raw.get(key) is not None]  # `--set quant_bits=null` drops one
    if not given:
        return None
    return (f"{', '.join(f'`{key}`' for key in given)} {'apply' if len(given) > 1 else 'applies'} to method qlora "
            f"(quantized weights), and this job's method is {method}: set method: qlora, or drop "
            f"{'them' if len(given) > 1 else 'it'}")


ADAPTER_KEYS = ("lora_r", "lora_alpha", "lora_dropout", "target_modules")  # the LoRA adapter's shape


def _above_zero(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def overridden_keys(raw: dict) -> list[tuple[str, str]]:
    """(the key the run goes by, the key it then ignores) for each pair `raw` sets both of: warmup_steps over
    warmup_ratio (optim.warmup_steps), a separate eval set (eval_dataset, or eval_split of the dataset) over
    eval_fraction, and train_tokens over epochs (resolved_train_tokens). A 0 warm-up or held-out fraction asks for
    nothing, so it contradicts nothing. max_steps over both train_tokens and epochs is left alone: `--set
    max_steps=2` on a job is how a run is tried."""
    pairs = []
    if _above_zero(raw.get("warmup_steps")) and _above_zero(raw.get("warmup_ratio")):
        pairs.append(("warmup_steps", "warmup_ratio"))
    if (eval_set := next((k for k in ("eval_dataset", "eval_split") if raw.get(k) is not None), None)) and \
            _above_zero(raw.get("eval_fraction")):
        pairs.append((eval_set, "eval_fraction"))
    if raw.get("train_tokens") is not None and raw.get("epochs") is not None:
        pairs.append(("train_tokens", "epochs"))
    return pairs


def idle_keys(raw: dict) -> list[tuple[str, str, str]]:
    """(key, why its run would not use it, what would) for each key a job as written sets beside a setting that
    leaves it idle: the chunk size of a full loss, and an evaluation's schedule and size without an eval set.
    `orch import` leaves them behind with the reason; a job file is refused for them."""
    idle = []
    if raw.get("loss_chunk_tokens") is not None and choice_as_orch("loss", raw.get("loss")) == "full":
        idle.append(("loss_chunk_tokens", "sizes the chunks of loss chunked, and this job's loss is full",
                     "set loss: chunked"))
    if raw.get("eval_fraction") == 0 and raw.get("eval_dataset") is None and raw.get("eval_split") is None:
        # an eval_split alone is a split of the training dataset's: an eval set (TRL's dataset_test_split)
        idle += [(key, "applies to an evaluation, and this job has none (eval_fraction 0, no eval_dataset or "
                       "eval_split)",
                  "hold out an eval set") for key in ("eval_every", "eval_batches") if raw.get(key) is not None]
    return idle


def written_key_problems(raw: dict) -> list[str]:
    """Keys a job file (with its --set values) writes that its run would silently not use: the adapter's under method
    full, as `orch estimate --method full --lora-r 8` refuses them, the ignored key of each overridden pair, the loss
    chunk of a full loss, an evaluation's keys without an eval set, and half of a budget stop.
    Judged on what the user wrote, as qlora_keys_problem is, not in config_from_dict: a job's complete record (the
    queue's, a run's metrics.json) holds every key's default, lora_r 16 under method full and epochs 1 beside
    train_tokens included."""
    problems = []
    given = [key for key in ADAPTER_KEYS if raw.get(key) is not None]
    if given and choice_as_orch("method", raw.get("method")) == "full":
        problems.append(f"{', '.join(f'`{key}`' for key in given)} {'apply' if len(given) > 1 else 'applies'} to "
                        f"methods lora and qlora (the adapter), and this job's method is full: set method: lora, or "
                        f"drop {'them' if len(given) > 1 else 'it'}")
    problems += [f"`{used}` and `{ignored}` are both set, and the run goes by {used} ({ignored} is ignored): keep one "
                 "of them" for used, ignored in overridden_keys(raw)]
    problems += [f"`{key}` {why}: drop it, or {fix}" for key, why, fix in idle_keys(raw)]
    if (raw.get("budget_usd") is None) != (raw.get("usd_per_hour") is None):
        problems.append("a budget stop needs both `usd_per_hour` and `budget_usd` (`orch launch` sets both): give "
                        "both, or neither")
    return problems


def written_problems(raw: dict, base_dir: Path | None = None) -> list[str]:
    """What a job as written (a file with its --set values, an imported config) says that its run would not do:
    QLoRA keys without QLoRA (or a model stored quantized, its folder found from `base_dir`), and the keys
    written_key_problems names."""
    return [problem for problem in (qlora_keys_problem(raw, base_dir), *written_key_problems(raw)) if problem]
