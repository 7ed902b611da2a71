"""Checkpoints: the trainable weights, optimizer, schedule, grad scaler, RNG states and the trainer's own state,
written to a temporary folder and renamed into place, so a kill at any moment leaves the previous one intact.

On a cloud the output folder is a bucket mount that uploads each file on its own, after a delay: a VM lost while a
checkpoint uploads leaves its folder with some files missing or short, beside the whole one before it. So state.json,
written last, records every file's size, and a resume takes the newest checkpoint whose files are all there. One
whose files are there but do not read back (bytes damaged at their size) gives way to the whole one before it."""

import json
import os
import random
import shutil
from pathlib import Path

import torch

from trainer.checkpoint_folders import (
    FILE_BYTES_KEY,
    KEEP_CHECKPOINTS,
    REPLACED_SUFFIX,
    STATE_FILE,
    checkpoints_dir,
    step_folders,
    step_of,
)
from trainer.meter import BudgetSpent


def _rng_states() -> dict:
    states = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_rng(states: dict) -> None:
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(output_dir: Path, step: int, model, optimizer, scheduler, scaler, state: dict) -> Path:
    root = checkpoints_dir(output_dir)
    name = f"step-{step:08d}"
    tmp = root / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    trainable = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    torch.save(trainable, tmp / "trainable.pt")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None, "rng": _rng_states()},
               tmp / "optimizer.pt")
    sizes = {name: (tmp / name).stat().st_size for name in ("trainable.pt", "optimizer.pt")}
    (tmp / STATE_FILE).write_text(json.dumps({**state, FILE_BYTES_KEY: sizes}), encoding="utf-8")
    final = root / name
    # a step saved again (a resumed run stopped before its next step): `latest` names it, so the old copy is moved
    # aside, not deleted, until the new one is in place; a stop between the two leaves one whole copy by that name
    replaced = root / f"{name}{REPLACED_SUFFIX}"
    shutil.rmtree(replaced, ignore_errors=True)
    if final.exists():
        final.rename(replaced)
    tmp.rename(final)
    shutil.rmtree(replaced, ignore_errors=True)
    pointer_tmp = root / "latest.tmp"
    pointer_tmp.write_text(name)
    os.replace(pointer_tmp, root / "latest")
    # a run resumed from an earlier step left its later folders behind (cut short on upload): they are past now
    folders = step_folders(output_dir)
    past, kept = [f for f in folders if step_of(f) > step], [f for f in folders if step_of(f) <= step]
    for old in past + kept[KEEP_CHECKPOINTS:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


class DamagedCheckpoint(Exception):
    """A checkpoint file of the right size that does not read back (a disk or an upload that changed its bytes). Its
    text names the file only: torch's own message advises loading with weights_only=False, which is no fix here."""


def _read_saved(path: Path, name: str):
    try:
        return torch.load(path / name, map_location="cpu", weights_only=True)
    except (BudgetSpent, OSError, MemoryError):  # a stop, a read that failed (a bucket mount), no memory: not damage,
        raise  # and a checkpoint taken for damaged is given up (its later folders are cleared at the next save)
    except Exception as exc:  # noqa: BLE001 - whatever a damaged pickle or zip raises, the file cannot be used
        raise DamagedCheckpoint(f"{name} unreadable: {type(exc).__name__}") from exc


def load_checkpoint(path: Path, model, optimizer, scheduler, scaler) -> dict:
    """Restore everything saved at `path` into the freshly built objects; returns the trainer state. Raises
    DamagedCheckpoint when a file does not read back: whatever was restored by then is overwritten by the checkpoint
    loaded instead (every trainable weight, the optimizer, schedule, scaler and RNG states)."""
    state = _read_state(path)
    trainable = _read_saved(path, "trainable.pt")
    missing = set(trainable) - {n for n, p in model.named_parameters() if p.requires_grad}
    if missing:
        raise ValueError(f"checkpoint {path} does not match this model/method ({len(missing)} unknown weights).")
    model.load_state_dict(trainable, strict=False)
    # every optimizer's state is tensors, numbers and names, read as data alone: a pickle planted in a run folder ran
    # its code at the resume. bitsandbytes' 8-bit ones keep their quantization state as a dict of tensors, and
    # torchao's CPU offload keeps a torch AdamW's state per tensor (tests/test_trainer_recovery.py)
    saved = _read_saved(path, "optimizer.pt")
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    _rate_from_this_schedule(optimizer, scheduler)
    if scaler is not None and saved["scaler"] is not None:
        scaler.load_state_dict(saved["scaler"])
    _restore_rng(saved["rng"])
    return state


def _rate_from_this_schedule(optimizer, scheduler) -> None:
    """The next step's learning rate from the schedule this session built, at the saved step: the saved rate came
    from the saved schedule, so a finished run resumed with a larger max_steps trained its first new step at its
    end's rate (0 for linear decay), and a longer run's decay jumped back."""
    for group, base_lr, rate_at in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base_lr * rate_at(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]  # what get_last_lr() says


def _read_state(path: Path) -> dict:
    """The trainer state in a checkpoint's state.json, its figures checked as the trainer wrote them: the step its
    folder is named for, whole counts from 0, and curves as lists. A state.json edited or damaged at its size was
    trained from: a step of NaN stopped the data loader with a traceback, and -1 trained five steps and counted
    three. Such a checkpoint is damaged: the whole one before it is loaded instead."""
    state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    state.pop(FILE_BYTES_KEY, None)

    def whole(value) -> bool:
        return type(value) is int and value >= 0

    wall_s = state.get("wall_s")
    problems = {"step": state.get("step") != step_of(path) or not whole(state.get("step")),
                "train_tokens": not whole(state.get("train_tokens")),
                "wall_s": type(wall_s) not in (int, float) or not 0 <= wall_s < float("inf"),
                **{key: not isinstance(state.get(key), list) for key in ("loss_curve", "eval_curve")}}
    if bad := next((key for key, problem in problems.items() if problem), None):
        raise DamagedCheckpoint(f"{STATE_FILE}'s {bad} is {json.dumps(state.get(bad))[:40]}")
    return state
