"""A job file as `orch plan` reads it: the YAML through the one job schema (trainer/config.py's JobConfig, plain
Python), so planner and trainer accept exactly the same keys. This module adds what planning needs on top: the
dataset checked and sized in tokens (orchestrator/data_size.py), so the planner itself does no I/O."""

import dataclasses
import functools
import os
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.names import near_file_hint
from orchestrator.data_size import DataSize, dataset_size
from trainer.config import CHOICES, JobConfig, config_from_dict, resolve_dataset
from trainer.data_sources import FILE_KINDS, FILE_KINDS_HINT
from trainer.job_file import load_config

METHODS = CHOICES["method"]
OPTIMIZERS = CHOICES["optimizer"]
ATTENTION_KERNELS = CHOICES["attention"]

__all__ = ["METHODS", "OPTIMIZERS", "ATTENTION_KERNELS", "DataSize", "job_from_dict", "load_job", "load_sized_job"]


def check_dataset(spec: JobConfig, base_dir: Path) -> None:
    """A dataset (or eval dataset) written as a file (`data/x.jsonl`, `./x`, `/x`) must exist, and hold data: a typo
    is caught at plan or submit, not hours later."""
    for key, name in (("dataset", spec.dataset), ("eval_dataset", spec.eval_dataset)):
        path = resolve_dataset(name, base_dir, key)
        if name is not None and path is None and looks_like_a_file(name):
            if link := checks.dangling_link(base_dir / checks.user_path(name)):
                raise UserError(f"{key} '{name}' {link}.")
            near = near_file_hint(base_dir / checks.user_path(name), FILE_KINDS, name)  # `tiny_instruc.jsonl`
            raise UserError(f"{key} '{name}' does not exist (relative paths start at the job file's folder, "
                            f"{base_dir}){': ' + near.strip()[1:-1] if near else '.'}")
        if path is not None and path.is_file() and path.stat().st_size == 0:
            need = "a job needs data to train on" if key == "dataset" else "an evaluation needs records to score"
            raise UserError(f"{key} '{path}' is empty: {need}.")
        if path is not None and path.exists() and not (path.is_file() or path.is_dir()):  # /dev/zero, a pipe
            raise UserError(f"{key} '{path}' is not a file or a folder: {FILE_KINDS_HINT}.")


def looks_like_a_file(dataset: str) -> bool:
    """A path rather than a Hugging Face id (`owner/name`): a data file suffix, or a start only paths have."""
    return Path(dataset).suffix.lower() in FILE_KINDS or dataset.startswith(("/", ".", "~"))


def _with_dataset_size(spec: JobConfig, base_dir: Path) -> tuple[JobConfig, DataSize | None]:
    check_dataset(spec, base_dir)
    size = dataset_size(spec, base_dir)
    if size is not None and size.tokens is None and spec.train_tokens is None and spec.max_steps is None:
        raise UserError(f"cannot size dataset '{spec.dataset}': {size.detail}. Add `dataset_tokens: N` (tokens in "
                        "one epoch) to the job, or `train_tokens: N` in place of any `epochs` (a job takes one).")
    if size is None or size.tokens is None or spec.dataset_tokens is not None:
        return spec, size
    spec = dataclasses.replace(spec, dataset_tokens=size.tokens,
                               dataset_sequences=spec.dataset_sequences or size.sequences)
    _check_epochs_warm_up(spec)
    return spec, size


def _check_epochs_warm_up(spec: JobConfig) -> None:
    """A job sized by epochs, its warm-up held to its steps once its data is counted, as a file's max_steps or
    train_tokens is held as it is read: `epochs: 1` beside `warmup_steps: 1000000` planned and trained 67 steps at
    about no learning rate. Counted over every sequence (the eval share among them), so it is refused only where the
    trainer, which counts the training sequences alone, refuses it too."""
    if spec.dataset_sequences is not None and (problem := spec.epochs_warm_up_problem(
            spec.dataset_sequences, f"at most {spec.dataset_sequences:,} sequences")):
        raise UserError(problem)


def job_from_dict(raw: dict, name: str = "job", base_dir: Path = Path(".")) -> JobConfig:
    return _with_dataset_size(config_from_dict(raw, name=name, base_dir=base_dir), base_dir)[0]


@functools.lru_cache(maxsize=16)
def _sized(path: str, mtime_ns: int) -> tuple[JobConfig, DataSize | None]:
    spec, base_dir = load_config(path)
    return _with_dataset_size(spec, base_dir)


def load_sized_job(path: str | os.PathLike) -> tuple[JobConfig, DataSize | None]:
    """The job with `dataset_tokens` (and, where it was tokenized or is an unpacked JSON-lines file, the rows:
    `dataset_sequences`) filled in where its data could be sized, and how it was sized."""
    path = Path(path)
    if not os.path.isfile(path):  # False, not OSError, for a name too long for the file system (Path.is_file raises)
        return load_config(path)  # raises the one "does not exist" error
    # absolute, its links kept: the job's relative paths are read from the folder the user named it in, as train,
    # launch and submit read them (resolved, a linked job's plan sized the data beside the link's target instead)
    return _sized(os.path.abspath(path), path.stat().st_mtime_ns)


def load_job(path: str | os.PathLike) -> JobConfig:
    return load_sized_job(path)[0]
