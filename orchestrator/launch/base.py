"""One interface for every place a run can train: this machine (local.py) or SkyPilot (skypilot.py). Callers ask
`launcher_for(target)` (registry.py) and never branch on where a run is. Launchers report facts (a pid, a device, a
cluster, a job id); the run state machine (lifecycle.py) alone turns facts into a run's status."""

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import IO, Protocol

from orchestrator.runs.store import RunRecord


@dataclass(frozen=True)
class Started:
    """What a launcher learned while starting a run; None means not known (yet)."""

    pid: int | None = None
    device: str | None = None
    cluster: str | None = None
    sky_job_id: int | None = None
    request_id: str | None = None
    output_uri: str | None = None
    provider: str | None = None  # where SkyPilot launched, when it failed over from the planned offer: the run's
    region: str | None = None  # spend is metered at the offer it runs on
    usd_per_hour: float | None = None

    def known(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


STARTED_FACTS = tuple(f.name for f in fields(Started))  # the run record's fields a launcher reports


class NothingLaunched(Exception):
    """A launch the target took and refused before it started any machine (SkyPilot's NoCloudAccessError: no cloud
    set up here): recorded failed at no cost, with no cluster or output place, and tried again by a scheduler's
    later pass, which may find the cloud set up (`sky check`); a refusal of the settings themselves is a UserError."""


class Launcher(Protocol):
    def start(self, record: RunRecord, option, device: str | None, on_fact: Callable[[Started], None]) -> Started:
        """Start (or start again, for a resume) the recorded run. `on_fact` hears each fact as soon as it is known,
        so an interrupted start leaves a record that `orch stop` can act on."""

    def stop(self, record: RunRecord) -> str:
        """Ask the run to stop (it checkpoints where it can); returns what was done, never raises for a run that is
        already gone."""

    def follow(self, record: RunRecord, out: IO[str]) -> None:
        """Copy the run's log to `out` (and the run folder) until the run ends."""

    def is_running(self, record: RunRecord) -> bool:
        """True while the run trains (or is being launched)."""

    def ended_at(self, record: RunRecord) -> float | None:
        """When the target says the run's trainer ended (epoch seconds), where it keeps such a clock; None lets the
        run's last write tell."""

    def billed_after_s(self, record: RunRecord, ended_at: float, now: float) -> float:
        """Seconds the target bills the run's machine after its trainer ended (a cloud VM's idle window before it
        downs itself), which the run's spend counts too."""

    def pull(self, record: RunRecord) -> None:
        """Bring the run's output (metrics.json, steps.jsonl, final/) into its run folder."""

    def recover(self, record: RunRecord) -> Started | None:
        """Facts about a run whose launcher died before recording them; None when there are none to find."""
