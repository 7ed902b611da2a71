"""What SkyPilot's upload of a local folder (a dataset's, a model's, a tokenizer's) leaves behind. It runs
`rsync -a` with a filter (sky/utils/command_runner.py): the folder's .skyignore files where its top holds one, else
its .gitignore files and .git/info/exclude; and -a copies each link as a link. A folder that trains here then
reached the VM without its data files (a `*` .gitignore that keeps data out of git), or with links to nothing (every
file of a Hugging Face cache snapshot is a link into ../../blobs), after the VM was paid for."""

import os
from pathlib import Path

from gpu_catalog.errors import UserError

SKYIGNORE, GITIGNORE, GIT_EXCLUDE = ".skyignore", ".gitignore", Path(".git") / "info" / "exclude"


def carried_whole(folder: Path, what: str) -> Path:
    """`folder`, refused where SkyPilot's upload would not carry it whole: a link the VM cannot follow (absolute, or
    out of the folder), or an ignore file that names anything. A file is uploaded as it is."""
    if not folder.is_dir():
        return folder
    if link := _unfollowable_link(folder):
        raise UserError(f"{what} folder {folder} holds {link} -> {os.readlink(link)}, a link SkyPilot uploads as a "
                        "link, which the VM cannot follow: put the file itself there (for a Hugging Face cache "
                        "folder, give the hub id instead: the VM downloads it).")
    if ignore := _ignoring_file(folder):
        fix = "empty it" if ignore.name == SKYIGNORE else \
            f"put an empty {SKYIGNORE} in the folder (SkyPilot then reads no {GITIGNORE}), or remove it"
        raise UserError(f"{what} folder {folder} holds {ignore}, and SkyPilot's upload leaves out the files it names: "
                        f"{fix}.")
    return folder


def _unfollowable_link(folder: Path) -> Path | None:
    """The first link under `folder` whose target the VM's copy cannot reach: an absolute one, or one leading out of
    the folder (a relative link within it is copied as it is, and still holds)."""
    top = folder.resolve()
    for parent, names, files in os.walk(folder):
        for name in (*names, *files):
            path = Path(parent) / name
            if path.is_symlink():
                target = os.readlink(path)
                if os.path.isabs(target) or top not in (Path(parent) / target).resolve().parents:
                    return path
    return None


def _ignoring_file(folder: Path) -> Path | None:
    """The first ignore file SkyPilot's filter reads under `folder` that names anything."""
    names = (SKYIGNORE,) if (folder / SKYIGNORE).is_file() else (GITIGNORE,)
    candidates = [Path(parent) / name for parent, _, files in os.walk(folder) for name in names if name in files]
    if names == (GITIGNORE,):
        candidates.append(folder / GIT_EXCLUDE)
    return next((path for path in candidates if path.is_file() and _names_anything(path)), None)


def _names_anything(path: Path) -> bool:
    """An ignore file with a pattern in it (not only blank lines and comments)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:  # unreadable here: rsync's own error on the VM's side is no better, say it here
        return True
    return any(line.strip() and not line.lstrip().startswith("#") for line in lines)
