"""Which runs a live process is starting now: an advisory lock on a file in the run's folder, held while its launcher
works and dropped by the kernel when that process ends, however it ends (a SIGKILL too).

A run found `launching` with no trainer and no launch request was failed once a grace period had passed since its
start. A cloud launch can take longer than that before SkyPilot takes its request (the API server starting, the task's
files staged), and failing it then let a scheduler start its job a second time while the first launch went on. A
run whose launcher still holds this lock is left alone, however long it takes; one whose launcher died is not held.
"""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".launching"  # in the run folder; opened not inheritable, so no trainer or API server keeps it held


@contextmanager
def held(run_dir: str) -> Iterator[None]:
    """Hold the run's launching lock for the block. Only the one process that moved the run to `launching` takes it,
    and the others only look for a moment (`in_progress`), so the wait is at most that moment."""
    with open(Path(run_dir) / LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def in_progress(run_dir: str) -> bool:
    """Whether a live process holds the run's launching lock now."""
    try:
        lock = open(Path(run_dir) / LOCK_NAME, "rb")
    except OSError:  # never launched since locks were kept, or its folder is gone: nothing holds it
        return False
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False
