"""Where a run's checkpoints are and which are whole, read from their folders and state.json alone: the trainer
checks an --output for an earlier run's checkpoints before it loads torch (trainer/checkpoint.py writes and reads
them, with torch)."""

import json
import re
from pathlib import Path


def checkpoints_dir(output_dir: Path) -> Path:
    return output_dir / "checkpoints"


KEEP_CHECKPOINTS = 2  # the newest whole ones; a cloud's disk is sized for one more (orchestrator/launch/sky_task.py)
REPLACED_SUFFIX = ".old"  # a step's earlier copy while the same step is saved again
FINAL_DIR = "final"  # the trained adapter or model, written once a run ends ok


STATE_FILE = "state.json"
FILE_BYTES_KEY = "file_bytes"  # in state.json: each file's size, so a partly uploaded checkpoint is told from a whole


def step_of(folder: Path) -> int | None:
    """The step a checkpoint folder holds (`step-00000006`, or its `.old` copy), None for any other name."""
    found = re.fullmatch(r"step-(\d+)(?:" + re.escape(REPLACED_SUFFIX) + ")?", folder.name)
    return int(found[1]) if found else None


def is_whole(folder: Path) -> bool:
    """Every file state.json lists is there at its size. A state.json without the list (an older orch wrote it
    after the files, on a local disk) stands for the whole checkpoint."""
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        sizes = state.get(FILE_BYTES_KEY, {})
        return all((folder / name).stat().st_size == size for name, size in sizes.items())
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):  # missing, cut short, not this format
        return False


def step_folders(output_dir: Path) -> list[Path]:
    """Every checkpoint folder, whole or not, newest first; a step saved again and stopped halfway is found in its
    `.old` copy, after the step's own folder."""
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return []
    folders = [f for f in root.iterdir() if step_of(f) is not None and f.is_dir()]
    return sorted(folders, key=lambda f: (step_of(f), not f.name.endswith(REPLACED_SUFFIX)), reverse=True)


def whole_checkpoints(output_dir: Path) -> list[Path]:
    """The whole checkpoints, newest first. The ones after the newest are what a resume falls back to when the
    newest, though whole, cannot be read."""
    return [folder for folder in step_folders(output_dir) if is_whole(folder)]


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest whole checkpoint."""
    return next(iter(whole_checkpoints(output_dir)), None)


def unresumed_problem(output_dir: Path, resume: str) -> str | None:
    """An --output holding an earlier run's checkpoints, without --resume auto: training there from the start would
    replace them. Said before the trainer loads torch or touches the folder (its heartbeat there moved an earlier
    run's last sign of life to now, then removed it)."""
    if resume != "never" or not latest_checkpoint(output_dir):
        return None
    if (output_dir / FINAL_DIR).is_dir():  # "continue it" read as if it had stopped short
        return (f"{output_dir} holds a run that finished (its {FINAL_DIR}/): choose another --output, or pass "
                "--resume auto with more steps or epochs to train it further")
    return (f"{output_dir} holds checkpoints of an earlier run: pass --resume auto to continue it, or choose "
            "another --output")
