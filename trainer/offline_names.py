"""Which model names the trainer builds offline (trainer/random_model.py) rather than downloads: plain Python, so
planning can ask without importing torch."""

from gpu_catalog.models import RANDOM_PREFIX

TINY_PREFIX = "orch/tiny"


def is_built_offline(model_name: str) -> bool:
    return model_name.startswith((TINY_PREFIX, RANDOM_PREFIX))
