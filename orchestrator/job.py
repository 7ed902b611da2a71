"""A job file as `orch plan` reads it: the YAML through the one job schema (trainer/config.py's JobConfig, plain
Python), so planner and trainer accept exactly the same keys. This module adds what planning needs on top:
a local dataset sized in tokens when the file is read, so the planner itself does no I/O."""

import dataclasses
import os
from pathlib import Path

from gpu_catalog.errors import UserError
from trainer.config import BYTES_PER_TOKEN_ESTIMATE, CHOICES, JobConfig, config_from_dict, dataset_path, load_config
from trainer.data import FILE_KINDS

METHODS = CHOICES["method"]
OPTIMIZERS = CHOICES["optimizer"]
ATTENTION_KERNELS = CHOICES["attention"]

__all__ = ["METHODS", "OPTIMIZERS", "ATTENTION_KERNELS", "job_from_dict", "load_job"]


def _with_dataset_size(spec: JobConfig, base_dir: Path) -> JobConfig:
    """A local dataset without `dataset_tokens` gets a size estimated from its bytes. A dataset written as a file
    (`data/x.jsonl`, `./x`, `/x`) must exist, and hold data: a typo is caught at plan or submit, not hours later."""
    path = dataset_path(spec, base_dir)
    if spec.dataset is not None and path is None and _looks_like_a_file(spec.dataset):
        raise UserError(f"dataset '{spec.dataset}' does not exist (relative paths start at the job file's folder, "
                        f"{base_dir}).")
    if path is not None and path.is_file() and path.stat().st_size == 0:
        raise UserError(f"dataset '{path}' is empty: a job needs data to train on.")
    if spec.dataset_tokens is not None or path is None or not path.is_file():
        return spec
    return dataclasses.replace(spec, dataset_tokens=int(path.stat().st_size / BYTES_PER_TOKEN_ESTIMATE))


def _looks_like_a_file(dataset: str) -> bool:
    """A path rather than a Hugging Face id (`owner/name`): a data file suffix, or a start only paths have."""
    return Path(dataset).suffix.lower() in FILE_KINDS or dataset.startswith(("/", ".", "~"))


def job_from_dict(raw: dict, name: str = "job", base_dir: Path = Path(".")) -> JobConfig:
    return _with_dataset_size(config_from_dict(raw, name=name), base_dir)


def load_job(path: str | os.PathLike) -> JobConfig:
    spec, base_dir = load_config(path)
    return _with_dataset_size(spec, base_dir)
