"""Files written whole or not at all: under a partial name, then renamed over their own, so a failure or a kill
midway (a full disk, a file-size limit, SIGKILL) leaves the earlier file, not a cut-off one. `orch calibrate` wrote
calibration.json in place: a write cut short lost the calibration, and every later estimate refused the rest."""

import os
import secrets
from pathlib import Path

from gpu_catalog.errors import UserError

PARTIAL = ".partial"  # the suffix a file is written under before its rename
NAME_MAX_BYTES = 255  # a file name's limit on Linux's file systems


def partial_path(path: Path) -> Path:
    """A hidden name beside `path` that no file of the user's has: `OUT.partial` was removed where one stood, and a
    folder of that name failed the write after all the work, named as a file the user never gave."""
    tag = f"{os.getpid()}-{secrets.token_hex(4)}{PARTIAL}"
    name = f".{path.name}.{tag}"
    return path.with_name(name if len(os.fsencode(name)) <= NAME_MAX_BYTES else f".orch-{tag}")  # a long name's own


def replace_whole(path: Path, write) -> object:
    """write(partial path), then rename it to `path`; returns what write returns. On any failure the partial file
    goes and the error is raised as it is (for a caller that undoes more than the one file)."""
    partial = partial_path(path)
    try:
        result = write(partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return result


def write_atomically(path: Path, write) -> object:
    """replace_whole, with an OSError said in one line naming the file (the error itself named none: "File too
    large.")."""
    try:
        return replace_whole(path, write)
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror}); check the disk and the folder's permissions.") \
            from None


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda partial: partial.write_text(text, encoding="utf-8"))
