"""Start-up measured by real cloud runs, by provider: the hook that replaces orch's guessed provisioning and setup
times (orchestrator/cost.py) once a run reports its own. The launcher calls `record_startup` when a run's first
training step is logged (provisioning = launch request to VM up; setup = VM up to the trainer's start); the
planner reads the median of the last runs per provider. Kept under ORCH_HOME, never in package data."""

import json
from pathlib import Path

from orchestrator.cost import StartupTimes
from orchestrator.home import orch_home

KEEP_LAST = 20  # enough for a stable median, short enough to follow a provider that got faster


def startup_file() -> Path:
    return orch_home() / "startup_times.json"


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, unreadable, or not JSON: nothing measured, the guesses apply
        return {}
    return data if isinstance(data, dict) else {}


def record_startup(provider: str, provision_s: float, setup_s: float, path: Path | None = None) -> None:
    """Keep one run's measured start-up; finite, non-negative seconds only."""
    if not all(0 <= s < float("inf") for s in (provision_s, setup_s)):
        raise ValueError(f"start-up seconds must be finite and >= 0, got {provision_s}, {setup_s}")
    path = path or startup_file()
    data = _read(path)
    runs = data.get(provider, []) + [{"provision_s": provision_s, "setup_s": setup_s}]
    data[provider] = runs[-KEEP_LAST:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def load_startup_times(path: Path | None = None) -> dict[str, StartupTimes]:
    """The median measured start-up per provider; providers never measured are absent (the guesses apply)."""
    times, measured = {}, _read(path or startup_file())
    if measured:
        import statistics  # 3 ms of imports (fractions, decimal, random) a plan without measured runs skips
    for provider, runs in measured.items():
        try:
            provision = statistics.median(float(r["provision_s"]) for r in runs)
            setup = statistics.median(float(r["setup_s"]) for r in runs)
        except (TypeError, KeyError, ValueError, statistics.StatisticsError):
            continue
        times[provider] = StartupTimes(provision_s=provision, setup_s=setup, measured=True)
    return times
