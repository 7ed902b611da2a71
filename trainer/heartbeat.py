"""A file the trainer touches every meter interval from its start, so a trainer that dies without a word (SIGKILL,
the OOM killer, a lost machine) while it imports, builds the model or reads the data is known to have stopped
costing money within one interval of that: its launcher takes the end of a run from the trainer's last write
(orchestrator/launch/lifecycle._ended_at), and its other files are written only from the first step on.

The file is also held locked while its trainer lives (the kernel drops the lock when the process ends, however it
ends), so a second trainer started into the same output folder (two launchers that both believed the run had ended)
is refused before it touches anything there, instead of both resuming from one checkpoint and writing every file
twice."""

import contextlib
import fcntl
import os
import threading
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from trainer.meter import METER_INTERVAL_S

HEARTBEAT_FILE = "heartbeat"


class FolderInUse(UserError):
    """Another live trainer holds the output folder: said, and nothing of that run is touched (no refusal is
    recorded in its folder)."""


class Heartbeat:
    def __init__(self, interval_s: float = METER_INTERVAL_S):
        self.interval_s = interval_s
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._file_made: Path | None = None  # the file, where start() made it
        self._made: list[Path] = []  # the folders start() made for the file, deepest first
        self._earlier: tuple[Path, tuple[float, float]] | None = None  # an earlier session's file, (atime, mtime)
        self._lock = None  # the file, open and locked while this trainer lives

    def start(self, output: Path) -> None:
        """Touch output/heartbeat now and then every interval until stop(), from a daemon thread (it never holds
        the process up). A folder that cannot be made, or a touch that fails (a full or read-only disk), is
        skipped: the trainer's own checks and writes say it."""
        path = output / HEARTBEAT_FILE
        existed = path.exists()
        self._made = checks.missing_folders(output)
        try:
            output.mkdir(parents=True, exist_ok=True)
            self._lock = open(path, "a")  # noqa: SIM115 - held open, and locked, until stop()
        except OSError:
            self._made = []
            return
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise FolderInUse(f"--output '{output}' is being written by another trainer now: wait for it to end, or "
                              "give another --output.") from None
        except OSError:  # a file system without locks (a bucket mounted through FUSE): trained unguarded, as before
            pass
        self._file_made = None if existed else path  # an earlier session's (a resume) is not this one's to remove
        if existed:
            earlier = path.stat()
            self._earlier = (path, (earlier.st_atime, earlier.st_mtime))

        def beat() -> None:
            while True:
                try:
                    path.touch()
                except OSError:
                    pass
                if self._stopped.wait(self.interval_s):
                    return

        self._thread = threading.Thread(target=beat, name="orch-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, clear: bool = False) -> None:
        """Stop beating; `clear` (a job refused before any work): remove the file if start() made it, and the folders
        it made if nothing else is in them, as a refusal leaves no output folder behind. An earlier session's file
        gets its times back: `--resume auto` refused once torch is loaded (the job changed since its checkpoint) had
        moved that run's end, which its launcher reads from the file, to now."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        if clear and self._earlier is not None:
            with contextlib.suppress(OSError):
                os.utime(*self._earlier)
        if clear and self._file_made is not None:
            self._file_made.unlink(missing_ok=True)
            for folder in self._made:
                try:
                    folder.rmdir()
                except OSError:  # something else is in it (a refusal recorded for a launcher): it stays
                    break
