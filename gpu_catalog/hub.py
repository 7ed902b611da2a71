"""Whether the Hugging Face hub can be asked at all. Offline, the hub's clients retry every request for seconds,
and a plan, a report or a scoring run asks about dozens of models and datasets: one quick connection, once a
process, answers for all of them."""

import functools
import os

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
