"""Whether the Hugging Face hub can be asked at all. Offline, the hub's clients retry every request for seconds,
and a plan, a report or a scoring run asks about dozens of models and datasets: one quick connection, once a
process, answers for all of them."""

import functools
import os
from pathlib import Path

HUB_CONNECT_TIMEOUT_S = 3.0


@functools.cache
def hub_reachable() -> bool:
    """False under HF_HUB_OFFLINE, or when the hub (HF_ENDPOINT) takes no connection within the timeout."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=HUB_CONNECT_TIMEOUT_S).close()
    except (OSError, TypeError):
        return False
    return True


def _hf_home() -> Path:
    """Where Hugging Face's libraries keep their caches unless told otherwise (HF_HUB_CACHE, HF_DATASETS_CACHE)."""
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface"))


def in_hub_cache(repo_id: str, filename: str = "*", repo_type: str = "model") -> bool:
    """Whether a repository's file (any file by default) is in the hub cache on this machine, read from the cache's
    own layout (the files huggingface_hub's try_to_load_from_cache reads): importing huggingface_hub would cost a
    plan a third of a second."""
    hub = os.environ.get("HF_HUB_CACHE") or _hf_home() / "hub"
    snapshots = Path(hub).expanduser() / f"{repo_type}s--{repo_id.replace('/', '--')}" / "snapshots"
    # os.path.isdir is False (Path's methods raise) for a name too long for the file system
    return os.path.isdir(snapshots) and any(snapshots.glob(f"*/{filename}"))


def in_datasets_cache(dataset_id: str) -> bool:
    """Whether `datasets` has this hub dataset prepared on this machine (its own cache, `owner___name`), which it
    reads offline without the hub's copy."""
    cache = os.environ.get("HF_DATASETS_CACHE") or _hf_home() / "datasets"
    return os.path.isdir(Path(cache).expanduser() / dataset_id.replace("/", "___"))
