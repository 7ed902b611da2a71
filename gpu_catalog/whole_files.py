"""Files written whole or not at all: under a partial name, then renamed over their own, so a failure or a kill
midway (a full disk, a file-size limit, SIGKILL) leaves the earlier file, not a cut-off one. `orch calibrate` wrote
calibration.json in place: a write cut short lost the calibration, and every later estimate refused the rest."""

import os
from pathlib import Path

from gpu_catalog.errors import UserError

PARTIAL = ".partial"  # the suffix a file is written under before its rename


def write_atomically(path: Path, write) -> object:
    """write(partial path), then rename it to `path`; returns what write returns. An OSError is one line naming the
    file (the error itself named none: "File too large.")."""
    partial = path.with_name(path.name + PARTIAL)
    try:
        result = write(partial)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {path} ({exc.strerror}); check the disk and the folder's permissions.") \
            from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return result


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda partial: partial.write_text(text, encoding="utf-8"))
