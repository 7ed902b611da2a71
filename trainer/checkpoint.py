"""Checkpoints: the trainable weights, optimizer, schedule, grad scaler, RNG states and the trainer's own state,
written to a temporary folder and renamed into place, so a kill at any moment leaves the previous one intact."""

import json
import os
import random
import shutil
from pathlib import Path

import torch

KEEP_CHECKPOINTS = 2


def checkpoints_dir(output_dir: Path) -> Path:
    return output_dir / "checkpoints"


REPLACED_SUFFIX = ".old"  # a step's earlier copy while the same step is saved again


def latest_checkpoint(output_dir: Path) -> Path | None:
    pointer = checkpoints_dir(output_dir) / "latest"
    if not pointer.is_file():
        return None
    path = checkpoints_dir(output_dir) / pointer.read_text().strip()
    for candidate in (path, path.with_name(path.name + REPLACED_SUFFIX)):  # stopped while saving its step again
        if (candidate / "state.json").is_file():
            return candidate
    return None


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
    (tmp / "state.json").write_text(json.dumps(state))
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
    for old in sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith((".tmp", REPLACED_SUFFIX))
                      )[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def saved_identity(path: Path) -> dict | None:
    """The record of the run a checkpoint belongs to (config.run_identity, in its state.json); None when it has none
    (written by an older orch) or cannot be read (loading it says why)."""
    try:
        identity = json.loads((path / "state.json").read_text()).get("job")
    except (OSError, ValueError, AttributeError):
        return None
    return identity if isinstance(identity, dict) else None


def load_checkpoint(path: Path, model, optimizer, scheduler, scaler) -> dict:
    """Restore everything saved at `path` into the freshly built objects; returns the trainer state."""
    trainable = torch.load(path / "trainable.pt", map_location="cpu", weights_only=True)
    missing = set(trainable) - {n for n, p in model.named_parameters() if p.requires_grad}
    if missing:
        raise ValueError(f"checkpoint {path} does not match this model/method ({len(missing)} unknown weights).")
    model.load_state_dict(trainable, strict=False)
    saved = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)  # our own file: trusted
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    if scaler is not None and saved["scaler"] is not None:
        scaler.load_state_dict(saved["scaler"])
    _restore_rng(saved["rng"])
    return json.loads((path / "state.json").read_text())
