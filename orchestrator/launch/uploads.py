"""What SkyPilot's upload of a local folder (a dataset's, a model's, a tokenizer's) leaves behind. It runs
`rsync -a` with a filter (sky/utils/command_runner.py): the folder's .skyignore files where its top holds one, else
its .gitignore files and .git/info/exclude; and -a copies each link as a link. A folder that trains here then
reached the VM without its data files (a `*` .gitignore that keeps data out of git), or with links to nothing (every
file of a Hugging Face cache snapshot is a link into ../../blobs), after the VM was paid for."""

import fnmatch
import os
from pathlib import Path

from gpu_catalog.errors import UserError

SKYIGNORE, GITIGNORE, GIT_EXCLUDE = ".skyignore", ".gitignore", Path(".git") / "info" / "exclude"


def carried_whole(folder: Path, what: str) -> Path:
    """`folder`, refused where SkyPilot's upload would not carry it whole: a link the VM cannot follow (absolute, or
    out of the folder), or an ignore file that names a file the job reads. A file is uploaded as it is."""
    if not folder.is_dir():
        return folder
    if link := _unfollowable_link(folder):
        raise UserError(f"{what} folder {folder} holds {link} -> {os.readlink(link)}, a link SkyPilot uploads as a "
                        "link, which the VM cannot follow: put the file itself there (for a Hugging Face cache "
                        "folder, give the hub id instead: the VM downloads it).")
    if found := _ignoring_file(folder):
        ignore, hidden = found
        fix = "take that pattern out" if ignore.name == SKYIGNORE else \
            f"put an empty {SKYIGNORE} in the folder (SkyPilot then reads no {GITIGNORE}), or remove it"
        raise UserError(f"{what} folder {folder} holds {ignore}, and SkyPilot's upload leaves out the files it names "
                        f"({hidden} among them): {fix}.")
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


def _ignoring_file(folder: Path) -> tuple[Path, Path] | None:
    """The first ignore file SkyPilot's filter reads under `folder` with a pattern that names a file the job reads
    (a visible one: hidden files and folders are no data, weights or tokenizer), and that file. huggingface_hub's
    `*` in the .cache/huggingface/ of every folder it downloads into hides only its own metadata."""
    names = (SKYIGNORE,) if (folder / SKYIGNORE).is_file() else (GITIGNORE,)
    found = [(Path(parent), Path(parent) / name) for parent, _, files in os.walk(folder) for name in names
             if name in files]
    if names == (GITIGNORE,) and (folder / GIT_EXCLUDE).is_file():
        found.append((folder, folder / GIT_EXCLUDE))  # its patterns hold for the whole folder
    for below, ignore in found:
        if hidden := _first_hidden(folder, below, _patterns(ignore)):
            return ignore, hidden
    return None


def _patterns(path: Path) -> list[str]:
    """An ignore file's patterns (not its blank lines, comments or `!` exceptions), each as a name or a path below
    its folder; an unreadable one names everything (rsync's error on the VM's side is no better)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ["*"]
    return [line.strip().strip("/") for line in lines if line.strip() and line.lstrip()[0] not in "#!"]


def _first_hidden(folder: Path, below: Path, patterns: list[str]) -> Path | None:
    """The first visible file under `below` that one of `patterns` names, by its name or its path below `below`."""
    for parent, dirs, files in os.walk(below):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        if any(part.startswith(".") for part in Path(parent).relative_to(folder).parts):
            continue
        for name in files:
            path = Path(parent) / name
            relative = path.relative_to(below).as_posix()
            if not name.startswith(".") and any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(relative, p) or
                                                relative.startswith(f"{p}/") for p in patterns):
                return path
    return None
