"""Where orch keeps the user's state: ORCH_HOME (default ~/.local/share/orch) holds runs.db, bench.db, the
calibration that `orch calibrate` writes, a folder per run and per queued job, and a mark per looping scheduler
(schedulers/). Package data stays read-only, so a wheel install works as a source checkout does."""

import os
import re
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import DATA_DIR

# ORCH_HOME's folders of one entry per run and per queued job, with what each entry is, for the fix
STATE_FOLDERS = {"runs": "run", "jobs": "queued job"}


def orch_home() -> Path:
    """ORCH_HOME, refused at once where its runs/ or jobs/ is no folder: a launch planned, printed the plan, then
    failed making the run's folder with Python's bare 'Not a directory'."""
    home = checks.env_path("ORCH_HOME", "~/.local/share/orch", made_here=True)  # not the root: runs.db was made in /
    for name in STATE_FOLDERS:
        if os.path.exists(home / name) and not os.path.isdir(home / name):
            raise _not_a_folder(home, name)
    return home


def state_folder(name: str) -> Path:
    """ORCH_HOME's `name` folder (STATE_FOLDERS), made if missing, before anything is recorded in it: a queued job
    was inserted, then its folder failed, and the job stayed queued pointing at the user's live file."""
    home = orch_home()
    folder = home / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # made a file since orch_home() looked, or a file above it
        raise _not_a_folder(home, name) from None
    except OSError as exc:
        raise UserError(f"cannot make {folder}: {exc.strerror or exc}. Set ORCH_HOME to a folder orch can write."
                        ) from None
    return folder


def _not_a_folder(home: Path, name: str) -> UserError:
    return UserError(f"ORCH_HOME's {name} ({home / name}) is not a folder: orch keeps a folder per "
                     f"{STATE_FOLDERS[name]} there. Move it away, or set ORCH_HOME to another folder.")


def runs_db() -> Path:
    """ORCH_HOME's runs database: the runs store's and the job queue's one file."""
    return orch_home() / "runs.db"


QUEUED_COPY = re.compile(r"j-[0-9a-f]{8}")  # the folder of a queued job's copy: jobs/<job id>/


def beside(database: Path, path: str) -> str:
    """A queued job's copy (`<home>/jobs/<job id>/job.yaml`) as it is in the home of `database`, whatever home it
    was written in: a moved home's queued jobs were rejected for a file "that does not exist" (it was there, moved),
    and a copied home's trained the original's. Any other path is kept as written: a run's job (a launch's is the
    user's own file), or an ended job's row of an older orch (an open job's names its copy, queue._job)."""
    written = Path(path)
    if written.parent.parent.name == "jobs" and QUEUED_COPY.fullmatch(written.parent.name):
        return str(Path(database).parent / "jobs" / written.parent.name / written.name)
    return path


def output_file(path: Path | str, what: str = "--out", **checked) -> Path:
    """checks.output_file (`checked`: its inputs, force, suffixes, read_folders), and not among orch's own records:
    `--out ~/.local/share/orch/runs/<run>/job.yaml --force` replaced a run's job, which `orch resume` then trained
    and charged."""
    _outside_state(Path(path), what)
    return checks.output_file(path, what, **checked)


def output_folder(path: Path | str, what: str = "--out", **checked) -> Path:
    """checks.output_folder, and not among orch's own records (a run's folder, a queued job's): a `--output` there
    wrote over the run's checkpoints."""
    _outside_state(Path(path), what)
    return checks.output_folder(path, what, **checked)


def _outside_state(path: Path, what: str) -> None:
    """`path` is neither ORCH_HOME's runs/ or jobs/ nor in one: orch's records, which only orch writes; nor in the
    data orch ships (gpu_catalog/data: GPUs, models, prices, the calibration every estimate reads), which `orch
    calibrate --out .../calibration.json --force` replaced and `orch report --out` filled with plots."""
    if checks.read_folder_holding(path, (DATA_DIR,)) is not None:
        raise UserError(f"{what} '{path}' is in {DATA_DIR}, the data orch ships and every estimate reads: write "
                        "outside it.")
    try:
        home = orch_home()
    except UserError:  # no usable home: nothing of orch's to protect, and a command that needs it says so itself
        return
    for name, entry in STATE_FOLDERS.items():
        if checks.read_folder_holding(path, (home / name,)) is not None:
            where = "is" if checks.same_file(path, home / name) else "is in"
            raise UserError(f"{what} '{path}' {where} {home / name}, where orch keeps a folder per {entry} "
                            "(ORCH_HOME): write outside it.")
