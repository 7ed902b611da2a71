"""Which model names the trainer builds offline (trainer/random_model.py) rather than downloads: plain Python, so
planning can ask without importing torch."""

from pathlib import Path

from gpu_catalog.hub import hub_reachable, in_hub_cache
from gpu_catalog.models import RANDOM_PREFIX

TINY_PREFIX = "orch/tiny"


def is_built_offline(model_name: str) -> bool:
    return model_name.startswith((TINY_PREFIX, RANDOM_PREFIX))


def model_unreachable(model_name: str) -> str | None:
    """Why this model cannot be loaded here, said before transformers retries the hub for seconds and fails in five
    lines: None when it is built offline, a folder, in the Hugging Face cache, or the hub answers (which then judges
    the name itself)."""
    if is_built_offline(model_name) or Path(model_name).is_dir() or in_hub_cache(model_name, "config.json") \
            or hub_reachable():
        return None
    return (f"model '{model_name}' is no folder here and not in the Hugging Face cache, and the hub cannot be reached "
            "(no network, or HF_HUB_OFFLINE is set): download it first, or give a folder with config.json")
