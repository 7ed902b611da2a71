"""Where orch keeps the user's state: ORCH_HOME (default ~/.local/share/orch) holds runs.db, bench.db, the
calibration that `orch calibrate` writes, a folder per run and per queued job, and a mark per looping scheduler
(schedulers/). Package data stays read-only, so a wheel install works as a source checkout does."""

from pathlib import Path

from gpu_catalog import checks


def orch_home() -> Path:
    return checks.env_path("ORCH_HOME", "~/.local/share/orch")


def runs_db() -> Path:
    """ORCH_HOME's runs database: the runs store's and the job queue's one file."""
    return orch_home() / "runs.db"
