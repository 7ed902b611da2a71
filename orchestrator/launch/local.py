"""The local launcher: the trainer as a child process in the run's own folder, in its own session so it outlives
the CLI (`--detach`), on one chosen GPU (CUDA_VISIBLE_DEVICES) or on the CPU."""

import codecs
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.local import LocalGPU, detect_gpus
from orchestrator.launch.base import Started
from orchestrator.runs.store import RunRecord
from trainer.config import JobConfig, model_folder, resolve_dataset, resolve_tokenizer
from trainer.job_file import read_job_file
from trainer.run_env import RUN_ID_ENV

LOG_NAME = "train.log"
RUN_JOB_NAME = "job.yaml"  # the run folder's copy of the job, with local dataset paths absolute: what it trains
CPU_DEVICE = "cpu"  # the device column of a run on the CPU; its CUDA_VISIBLE_DEVICES is ""


DATA_KEYS = ("dataset", "eval_dataset")


def read_job(job_path: Path) -> tuple[dict, dict[str, Path]]:
    """The job file's mapping, and its datasets (training, eval), model and tokenizer folder that are local paths
    (relative to the job file). The file is read again when a run starts (a queued job's copy, a resumed run's), so
    it is checked as a job file is on first reading: UTF-8, no repeated key, and settings the trainer takes."""
    raw, config = read_job_file(job_path)
    return raw, local_paths(raw, config.tokenizer, job_path.parent)


def local_paths(raw: dict, tokenizer: str | None, job_dir: Path) -> dict[str, Path]:
    """The datasets (training, eval), model and tokenizer folder of the job mapping `raw` that are paths on this
    machine, absolute: what a run reads, and no output may replace."""
    local = {key: (job_dir / raw[key]).resolve() for key in DATA_KEYS
             if isinstance(raw.get(key), str) and (job_dir / raw[key]).exists()}
    if (model := model_folder(raw["model"], job_dir)) is not None and model.exists():
        local["model"] = model  # the trainer runs in another folder than the job file's
    tokenizer = resolve_tokenizer(tokenizer, job_dir)
    if tokenizer is not None and os.path.isdir(tokenizer):  # a folder here, not a hub id
        local["tokenizer"] = Path(tokenizer).resolve()
    return local


def job_json(spec: JobConfig, job_dir: Path) -> str:
    """The job as runs.db and the queue keep it, with relative dataset paths and `tokenizer` folder made absolute (a
    `model` folder already is, by config_from_dict): the scheduler and the cloud launcher read it from other folders
    than the job file's (a queued job sent to a cloud looked for its dataset beside the queue's copy, and was
    rejected)."""
    local = {key: str(path) for key in DATA_KEYS if (path := resolve_dataset(getattr(spec, key), job_dir, key))}
    return json.dumps({**dataclasses.asdict(spec), **local, "tokenizer": resolve_tokenizer(spec.tokenizer, job_dir)})


def keep_name(raw: dict, job_path: Path) -> None:
    """A copy of the job (the run folder's job.yaml, the VM's) keeps the name its file gave it: named by its own
    stem, a run of `tiny.yaml` trained and wrote metrics.json as `job`."""
    raw.setdefault("name", checks.name_from_stem(job_path.stem))


def run_job_file(job_path: Path, run_dir: Path, settings: dict | None = None) -> Path:
    """The job as the run trains it: the user's file, with relative dataset, model and tokenizer paths made
    absolute, and the `settings` its plan chose for the target (Option.fitted_settings; a queued job's copy has no
    plan yet)."""
    raw, local = read_job(job_path)
    raw.update((key, str(path)) for key, path in local.items())
    raw.update(settings or {})
    keep_name(raw, job_path)
    target = run_dir / RUN_JOB_NAME
    target.write_text(checks.dump_yaml(raw, sort_keys=False), encoding="utf-8")
    return target


def trainer_command(run_dir: Path, usd_per_hour: float, budget_left_usd: float) -> list[str]:
    """The trainer with its budget stop armed with what is left of the budget: it checkpoints and stops before the
    spend passes it, counting from the second the process starts."""
    return [sys.executable, "-m", "trainer", str(run_dir / RUN_JOB_NAME), "--output", str(run_dir / "output"),
            "--resume", "auto", "--set", f"usd_per_hour={usd_per_hour}", "--set", f"budget_usd={budget_left_usd}"]


def pick_device(gpu_name: str, need_vram_gib: float, detected: list[LocalGPU]) -> str:
    """The run's device: the CPU target takes the CPU; a GPU target takes the card with most free memory among
    those of the planned model."""
    if gpu_name == "CPU":
        return CPU_DEVICE
    cards = [d for d in detected if d.gpu is not None and d.gpu.name == gpu_name and d.free_vram_gib >= need_vram_gib]
    if not cards:
        raise UserError(f"no {gpu_name} on this machine has {need_vram_gib:.1f} GiB free now. A card in another "
                        "machine needs `ssh_pool:` in the hardware file (SkyPilot SSH node pool), or run orch there.")
    return str(max(cards, key=lambda d: d.free_vram_gib).index)


def find_trainer_pid(run_dir: str) -> int | None:
    """The live trainer of a run folder, from the process table: how a run is found again when whoever started it
    died before recording its pid."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if is_trainer_of((entry / "cmdline").read_bytes(), run_dir):
                    return int(entry.name)
            except OSError:
                continue
    return None


def is_trainer_of(cmdline: bytes, run_dir: str) -> bool:
    """Whether a process's command line (/proc/PID/cmdline: arguments ended by NULs) is trainer_command's for this
    run folder: `-m trainer <run_dir>/job.yaml`, each one a whole argument. A substring test matched any process
    whose command line held the folder's text (`sleep` for a run_dir of `sleep`, everything for `/`), and stop
    would SIGTERM that process's group."""
    args, job = cmdline.split(b"\0"), os.fsencode(Path(run_dir) / RUN_JOB_NAME)
    return any(args[i:i + 3] == [b"-m", b"trainer", job] for i in range(len(args)))


class LocalLauncher:
    def __init__(self):
        self._processes: dict[str, subprocess.Popen] = {}
        self._log_starts: dict[str, int] = {}  # where the session this launcher started begins in the run's log

    def start(self, record: RunRecord, option, device: str | None, on_fact: Callable[[Started], None]) -> Started:
        device = device or record.device or pick_device(record.gpu, record.est_vram_gib or 0.0, detect_gpus())
        run_dir = Path(record.run_dir)
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "" if device == CPU_DEVICE else device, "PYTHONUNBUFFERED": "1",
               RUN_ID_ENV: record.run_id}
        with open(run_dir / LOG_NAME, "ab") as log:
            self._log_starts[record.run_id] = log.tell()
            process = subprocess.Popen(trainer_command(run_dir, record.usd_per_hour, record.budget_left_usd), env=env,
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        self._processes[record.run_id] = process
        started = Started(pid=process.pid, device=device)
        on_fact(started)  # recorded at once: a Ctrl-C before the launch recorded it running left a trainer unknown
        return started

    def _own_trainer(self, record: RunRecord) -> subprocess.Popen | None:
        """The trainer this launcher started for the run's current session: the one whose pid the record holds. One
        it started for an earlier session (the run since resumed by `orch resume` or another scheduler) is not it:
        asked, its exit ended the run while the new trainer trained, and a scheduler started it a third time."""
        process = self._processes.get(record.run_id)
        if process is None or process.pid == record.pid:
            return process
        process.poll()  # reaped, so no zombie outlives the run
        del self._processes[record.run_id]
        return None

    def is_running(self, record: RunRecord) -> bool:
        """True while the run's trainer process lives (a reused pid running something else does not count)."""
        process = self._own_trainer(record)
        if process is not None:
            return process.poll() is None
        if not record.pid:
            return False
        try:
            cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes()
        except OSError:
            return False
        return is_trainer_of(cmdline, record.run_dir)

    def ended_at(self, record: RunRecord) -> float | None:
        """No clock of its own: the trainer's last write in the run folder tells (lifecycle._ended_at)."""
        return None

    def billed_after_s(self, record: RunRecord, ended_at: float, now: float) -> float:
        """This machine's time is metered while the trainer runs, not after."""
        return 0.0

    def stop(self, record: RunRecord) -> str:
        """SIGTERM, as a spot preemption sends: the trainer checkpoints and exits."""
        if not self.is_running(record):
            return f"run {record.run_id} is not running"
        os.killpg(record.pid, signal.SIGTERM)
        return f"stopping {record.run_id}: it checkpoints, then exits; `orch resume {record.run_id}` continues it"

    def follow(self, record: RunRecord, out: IO[str], poll_s: float = 0.2) -> None:
        """Copy the run's log to `out` until the trainer exits: from where this launcher's session began (a resumed
        run's earlier sessions, "stopped by SIGTERM ... Resume with", read as if it had stopped again), else whole."""
        # decoded across reads: a character whose bytes two reads split was shown as two U+FFFD
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with open(Path(record.run_dir) / LOG_NAME, "rb") as log:
            log.seek(self._log_starts.get(record.run_id, 0))
            while True:
                chunk = log.read()
                if chunk:
                    out.write(decoder.decode(chunk))
                    out.flush()
                if not self.is_running(record):
                    out.write(decoder.decode(log.read(), final=True))
                    break
                time.sleep(poll_s)
        process = self._own_trainer(record)
        if process is not None:
            process.wait()

    def pull(self, record: RunRecord) -> None:
        """A local run writes straight into its run folder: nothing to bring home."""

    def recover(self, record: RunRecord) -> Started | None:
        """The run's trainer, found in the process table by its run folder."""
        pid = find_trainer_pid(record.run_dir)
        return Started(pid=pid, device=record.device or CPU_DEVICE) if pid is not None else None
