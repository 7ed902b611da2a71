"""The local launcher: the trainer as a child process in the run's own folder, in its own session so it outlives
the CLI (`--detach`), on one chosen GPU (CUDA_VISIBLE_DEVICES) or on the CPU."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from gpu_catalog.local import LocalGPU
from orchestrator.runs.store import RunRecord

LOG_NAME = "train.log"


DATA_KEYS = ("dataset", "eval_dataset")


def read_job(job_path: Path) -> tuple[dict, dict[str, Path]]:
    """The job file's mapping, and its datasets (training, eval) that are local paths (relative to the job file)."""
    raw = yaml.safe_load(job_path.read_text())
    local = {key: (job_path.parent / raw[key]).resolve() for key in DATA_KEYS
             if isinstance(raw.get(key), str) and (job_path.parent / raw[key]).exists()}
    return raw, local


def run_job_file(job_path: Path, run_dir: Path) -> Path:
    """The job as the run trains it: the user's file, with relative dataset paths made absolute."""
    raw, local = read_job(job_path)
    raw.update((key, str(path)) for key, path in local.items())
    target = run_dir / "job.yaml"
    target.write_text(yaml.safe_dump(raw, sort_keys=False))
    return target


def trainer_command(run_dir: Path, usd_per_hour: float, budget_usd: float) -> list[str]:
    """The trainer with its budget stop armed: it checkpoints and stops before the spend passes the budget."""
    return [sys.executable, "-m", "trainer", str(run_dir / "job.yaml"), "--output", str(run_dir / "output"),
            "--resume", "auto", "--set", f"usd_per_hour={usd_per_hour}", "--set", f"budget_usd={budget_usd}"]


def pick_device(gpu_name: str, need_vram_gib: float, detected: list[LocalGPU]) -> str:
    """CUDA_VISIBLE_DEVICES for the run: the CPU target hides every GPU; a GPU target takes the card with most free
    memory among those of the planned model."""
    if gpu_name == "CPU":
        return ""
    cards = [d for d in detected if d.gpu is not None and d.gpu.name == gpu_name and d.free_vram_gib >= need_vram_gib]
    if not cards:
        raise RuntimeError(f"no {gpu_name} on this machine has {need_vram_gib:.1f} GiB free now. A card in another "
                           "machine needs `ssh_pool:` in the hardware file (SkyPilot SSH node pool), or run orch "
                           "there.")
    return str(max(cards, key=lambda d: d.free_vram_gib).index)


def start(record: RunRecord, cuda_visible_devices: str) -> subprocess.Popen:
    run_dir = Path(record.run_dir)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": cuda_visible_devices, "PYTHONUNBUFFERED": "1"}
    log = open(run_dir / LOG_NAME, "ab")  # noqa: SIM115 - the child owns it from here
    return subprocess.Popen(trainer_command(run_dir, record.usd_per_hour, record.budget_usd), env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def is_running(record: RunRecord) -> bool:
    """True while the run's trainer process lives (a reused pid running something else does not count)."""
    if not record.pid:
        return False
    try:
        cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return record.run_dir in cmdline


def stop(record: RunRecord) -> None:
    """SIGTERM, as a spot preemption sends: the trainer checkpoints and exits."""
    if is_running(record):
        os.killpg(record.pid, signal.SIGTERM)


def follow(record: RunRecord, process: subprocess.Popen | None, out, poll_s: float = 0.2) -> None:
    """Copy the run's log to `out` until the trainer exits."""
    with open(Path(record.run_dir) / LOG_NAME, "rb") as log:
        while True:
            chunk = log.read()
            if chunk:
                out.write(chunk.decode(errors="replace"))
                out.flush()
            finished = process.poll() is not None if process is not None else not is_running(record)
            if finished:
                out.write(log.read().decode(errors="replace"))
                return
            time.sleep(poll_s)
