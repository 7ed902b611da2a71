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


def trained_steps(output_dir: Path) -> int:
    """The steps an --output's run has trained: its newest whole checkpoint's, or a finished run's own (its final/ and
    an ok metrics.json), which may be past its last checkpoint. 0 with neither."""
    latest = latest_checkpoint(output_dir)
    steps = step_of(latest) if latest else 0
    if (output_dir / FINAL_DIR).is_dir():
        try:
            metrics = json.loads((output_dir / "metrics.json").read_text(encoding="utf-8"))
            if metrics.get("status") == "ok" and isinstance(metrics.get("steps"), int):
                steps = max(steps, metrics["steps"])
        except (OSError, ValueError, AttributeError, RecursionError):  # none, cut short, not this format
            pass
    return steps


def fewer_steps_problem(output_dir: Path, planned_steps: int) -> str | None:
    """A resume planned to fewer steps than its --output's run trained: it failed at the loader ("__len__() should
    return >= 0"), and where the run had finished past its last checkpoint it trained nothing and wrote that
    checkpoint's weights over its final/. Said before torch loads, so the folder is left as it was."""
    trained = trained_steps(output_dir)
    if planned_steps >= trained:
        return None
    return (f"{output_dir} holds a run trained to step {trained}, past the {planned_steps} step"
            f"{'s' * (planned_steps != 1)} this job plans (its max_steps, train_tokens or epochs): give it at least "
            f"{trained} steps to train on, or choose another --output")


def saved_identity(path: Path) -> dict | None:
    """The record of the run a checkpoint belongs to (config.run_identity, in its state.json); None when it has none
    (written by an older orch) or cannot be read (loading it says why). Plain Python: `orch resume` compares it with
    the run's job before it starts anything."""
    try:
        identity = json.loads((path / STATE_FILE).read_text(encoding="utf-8")).get("job")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return identity if isinstance(identity, dict) else None
