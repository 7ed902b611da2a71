"""SkyPilot's local API server, as orch uses it: every SDK call goes through one, and SkyPilot starts it on demand
(about 1 GB, on a fixed port that every HOME on the machine would share). orch gives each HOME its own port, unless
the user points SkyPilot at a server of their own, and stops a server it started as soon as its calls are done."""

import contextlib
import logging
import os
import re
import sys
import zlib
from pathlib import Path

COLOUR_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # SkyPilot's colorama and rich styling (CSI sequences)
PORT_BASE, PORT_SPAN = 47000, 2000  # away from SkyPilot's default 46580, which a user's own server may hold
_PORT_VAR, _ENDPOINT_VAR = "SKYPILOT_API_SERVER_LOCAL_PORT", "SKYPILOT_API_SERVER_ENDPOINT"


def home_port(home: Path | None = None) -> int:
    """One port per HOME, the same every time: two users (or two test HOMEs) never share a server."""
    home = home or Path.home()
    return PORT_BASE + zlib.crc32(str(home.resolve()).encode()) % PORT_SPAN


def _healthy(common) -> bool:
    try:
        return common.get_api_server_status().status == common.ApiServerStatus.HEALTHY
    except Exception:  # noqa: BLE001 - unreachable, refused, disabled: not up
        return False


class SkyLog:
    """Where SkyPilot's own lines go (its server starting, provisioning, a request's log): stderr, as it is when
    written, and without colour codes unless stderr is a terminal. SkyPilot logs to the stdout it found on import,
    colours and all, which mixed its lines into `orch scheduler run --once` output, a file or a `--json` document."""

    def write(self, text: str) -> int:
        stream = sys.stderr
        stream.write(text if stream.isatty() else COLOUR_CODES.sub("", text))
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


SKY_LOG = SkyLog()


def _sky_logs_to_stderr() -> None:
    """Point each of SkyPilot's own stream handlers (not another program's, on the same loggers) at SKY_LOG."""
    names = ["sky", *(name for name in logging.root.manager.loggerDict if name.startswith("sky."))]
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and type(handler).__module__.startswith("sky."):
                handler.setStream(SKY_LOG)


def import_sky():
    """The sky module, every import of it in orch goes through here: this HOME's port is set before SkyPilot first
    works out its server's address, which it then keeps for the process (get_server_url is cached). A task built or
    a cloud checked before the launch made SkyPilot keep its default port, and the launch then went to a server that
    was never started there."""
    if not os.environ.get(_ENDPOINT_VAR) and not os.environ.get(_PORT_VAR):
        os.environ[_PORT_VAR] = str(home_port())
    os.environ.setdefault("SKYPILOT_DISABLE_USAGE_COLLECTION", "1")
    import sky
    from sky.server import common
    from sky.utils import annotations

    annotations.is_on_api_server = False  # in-process calls print plain text, not the API server's payloads
    common.get_server_url.cache_clear()  # an address worked out before this module set the port
    _sky_logs_to_stderr()
    return sky


@contextlib.contextmanager
def api_server():
    """The sky module, with a server of this HOME's own; a server this block started is stopped when it ends."""
    sky = import_sky()
    from sky.server import common

    was_up = _healthy(common)
    try:
        yield sky
    finally:
        # stopped whether or not it answers now: one busy or failing at the end of a scheduler pass was left running
        # (1 GB), and its leftover children held a port every later launch in this HOME needed
        if not was_up and common.is_api_server_local():
            with contextlib.suppress(Exception):
                sky.api_stop()
