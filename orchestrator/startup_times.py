"""Start-up measured by real cloud runs, by provider: the hook that replaces orch's guessed provisioning and setup
times (orchestrator/cost.py) once a run reports its own. The launcher calls `record_startup` when a run's first
training step is logged (provisioning = launch request to VM up; setup = VM up to the trainer's start); the
planner reads the median of the last runs per provider. Kept under ORCH_HOME, never in package data."""

from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from orchestrator.cost import StartupTimes
from orchestrator.home import orch_home
from trainer.jsonio import write_json_atomic

KEEP_LAST = 20  # enough for a stable median, short enough to follow a provider that got faster
# a start-up longer than a week (a launch waiting days for capacity) is no measure of the next one; past it, a
# hand-edited 1e9 s made every plan's cost negative or infinite
MOST_STARTUP_S = 7 * 24 * 3600


def startup_file() -> Path:
    return orch_home() / "startup_times.json"


def _read(path: Path) -> dict[str, list[dict]]:
    """Each provider's measured runs, only those whose seconds are finite and from 0 to MOST_STARTUP_S. The file is
    orch's own and safe to lose: one that is missing, not a regular file (a pipe waited forever, /dev/zero filled
    memory), not UTF-8 or not JSON (NaN included) measured nothing, and the guesses apply."""
    try:
        data = checks.parse_json(checks.read_text(path, "start-up times"), "start-up times")
    except UserError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {provider: kept for provider, runs in data.items() if (kept := _usable(runs))}


def _usable(runs) -> list[dict]:
    """The runs of one provider that are a measurement: NaN passed every budget check and won the ranking at $NaN,
    and a negative start-up made a run's cost negative."""
    def seconds(value) -> bool:  # NaN and inf fail the range (a 400-digit whole number fails it too, unconverted)
        return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= MOST_STARTUP_S

    if not isinstance(runs, list):
        return []
    return [{"provision_s": run["provision_s"], "setup_s": run["setup_s"]} for run in runs
            if isinstance(run, dict) and seconds(run.get("provision_s")) and seconds(run.get("setup_s"))]


def record_startup(provider: str, provision_s: float, setup_s: float, path: Path | None = None) -> None:
    """Keep one run's measured start-up; finite, non-negative seconds only (one past MOST_STARTUP_S is not kept).
    Written whole through a rename, which also replaces a file that was not a regular one (a pipe) with a good one."""
    if not all(0 <= s < float("inf") for s in (provision_s, setup_s)):
        raise ValueError(f"start-up seconds must be finite and >= 0, got {provision_s}, {setup_s}")
    path = path or startup_file()
    data = _read(path)
    runs = data.get(provider, []) + _usable([{"provision_s": provision_s, "setup_s": setup_s}])
    data[provider] = runs[-KEEP_LAST:]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)


def load_startup_times(path: Path | None = None) -> dict[str, StartupTimes]:
    """The median measured start-up per provider; providers never measured are absent (the guesses apply)."""
    times, measured = {}, _read(path or startup_file())
    if measured:
        import statistics  # 3 ms of imports (fractions, decimal, random) a plan without measured runs skips
    for provider, runs in measured.items():  # each checked by _read: finite, in range, at least one
        provision = statistics.median(float(r["provision_s"]) for r in runs)
        setup = statistics.median(float(r["setup_s"]) for r in runs)
        times[provider] = StartupTimes(provision_s=provision, setup_s=setup, measured=True)
    return times
