"""Which model names the trainer builds offline (trainer/random_model.py) rather than downloads, and which names it
cannot reach here: plain Python, so planning can ask without importing torch."""

import os
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.cache import cache_dir
from gpu_catalog.errors import UserError
from gpu_catalog.hub import hub_reachable, in_datasets_cache, in_hub_cache
from gpu_catalog.models import RANDOM_PREFIX

TINY_PREFIX = "orch/tiny"


def built_models_folder() -> Path:
    """Where models built offline are kept, one folder a shape, seed and data (trainer/random_model.py)."""
    return cache_dir() / "random-models"


def is_built_offline(model_name: str) -> bool:
    return model_name.startswith((TINY_PREFIX, RANDOM_PREFIX))


def build_folder_problem(model_name: str) -> str | None:
    """Why a model built offline could not be kept in ORCH_CACHE (a file, a device, a folder it cannot write), or
    None: the trainer's check, asked by the launch and the queue too, before a run is recorded and charged."""
    if not is_built_offline(model_name):
        return None
    try:
        checks.output_folder(cache_dir(), "ORCH_CACHE", parents=True)
    except UserError as exc:
        return str(exc).rstrip(".")
    return None


def model_unreachable(model_name: str) -> str | None:
    """Why this model cannot be loaded here, said before transformers retries the hub for seconds and fails in five
    lines: None when it is built offline, a folder, in the Hugging Face cache, or the hub answers (which then judges
    the name itself)."""
    if is_built_offline(model_name) or os.path.isdir(model_name) or in_hub_cache(model_name, "config.json") \
            or hub_reachable():
        return None
    return (f"model '{model_name}' is no folder here and not in the Hugging Face cache, and the hub cannot be reached "
            "(no network, or HF_HUB_OFFLINE is set): download it first, or give a folder with config.json")


def tokenizer_unreachable(tokenizer: str) -> str | None:
    """Why a `tokenizer` named apart from the model cannot be loaded here (transformers would fail at train time with
    a traceback): None when it is a folder, any file of it is in the hub cache, or the hub answers."""
    if os.path.isdir(tokenizer) or in_hub_cache(tokenizer) or hub_reachable():
        return None
    return (f"tokenizer '{tokenizer}' is no folder here and not in the Hugging Face cache, and the hub cannot be "
            "reached (no network, or HF_HUB_OFFLINE is set): download it first, or give its folder")


def dataset_unreachable(dataset_id: str) -> str | None:
    """Why this hub dataset cannot be read here, said before `datasets` retries the hub and fails in several lines:
    None when it is in the hub cache or datasets' own cache, or the hub answers (which then judges the name)."""
    if in_hub_cache(dataset_id, repo_type="dataset") or in_datasets_cache(dataset_id) or hub_reachable():
        return None
    return (f"'{dataset_id}' is no file or folder here and not in the Hugging Face cache, and the hub cannot "
            "be reached (no network, or HF_HUB_OFFLINE is set): download it first, or give a local file")
