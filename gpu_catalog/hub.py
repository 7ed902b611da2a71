"""Whether the Hugging Face hub can be asked at all. Offline, the hub's clients retry every request for seconds,
and a plan, a report or a scoring run asks about dozens of models and datasets: one quick connection, once a
process, answers for all of them."""

import functools
import os
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError

HUB_CONNECT_TIMEOUT_S = 3.0


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE says not to ask the hub."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


@functools.cache
def hub_reachable() -> bool:
    """False under HF_HUB_OFFLINE, or when the hub (HF_ENDPOINT) takes no connection within the timeout."""
    import socket

    if hub_offline():
        return False
    try:
        socket.create_connection(_endpoint(), timeout=HUB_CONNECT_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def hub_address() -> str:
    """The hub's host and port, as a message names them."""
    host, port = _endpoint()
    return f"{host}:{port}"


def _endpoint() -> tuple[str, int]:
    """HF_ENDPOINT's host and port; a value that names none is the user's to fix (a port past 65535 or not a number,
    a bracket left open: urllib's ValueError was a traceback in every command that asks the hub)."""
    from urllib.parse import urlparse

    text = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    try:
        endpoint = urlparse(text)
        host, port = endpoint.hostname, endpoint.port or (80 if endpoint.scheme == "http" else 443)
    except ValueError as exc:
        host, port, why = None, 0, f" ({exc})"
    else:
        why = ""
    if not host:
        raise UserError(f"HF_ENDPOINT={checks.short_repr(text)} is no URL to connect to{why}: set it as "
                        "https://HOST[:PORT], or unset it for https://huggingface.co.")
    return host, port


def _hf_cache(variable: str, under_home: str) -> Path:
    """A cache of Hugging Face's libraries: `variable` (HF_HUB_CACHE, HF_DATASETS_CACHE) where it is set, else
    `under_home` in HF_HOME, read as orch reads its own folders' variables (`~nouser/x` was a traceback); HF_HOME is
    not read where the cache's own variable overrides it."""
    if checks.env_value(variable):
        return checks.env_path(variable, "")
    return checks.env_path("HF_HOME", "~/.cache/huggingface") / under_home


def in_hub_cache(repo_id: str, filename: str = "*", repo_type: str = "model") -> bool:
    """Whether a repository's file (any file by default) is in the hub cache on this machine, read from the cache's
    own layout (the files huggingface_hub's try_to_load_from_cache reads): importing huggingface_hub would cost a
    plan a third of a second."""
    snapshots = _hf_cache("HF_HUB_CACHE", "hub") / f"{repo_type}s--{repo_id.replace('/', '--')}" / "snapshots"
    # os.path.isdir is False (Path's methods raise) for a name too long for the file system
    return os.path.isdir(snapshots) and any(snapshots.glob(f"*/{filename}"))


def in_datasets_cache(dataset_id: str) -> bool:
    """Whether `datasets` has this hub dataset prepared on this machine (its own cache, `owner___name`), which it
    reads offline without the hub's copy."""
    return os.path.isdir(_hf_cache("HF_DATASETS_CACHE", "datasets") / dataset_id.replace("/", "___"))
