"""What runs have cost, summed by month, provider and job: `orch spend`. A finished run counts what the runs store
recorded for it; a run still going counts its spend so far (its price since its launch, plus the jobs
controller for a managed spot job), so recoveries and start-up are in. Reads the runs store, writes nothing."""

import time
from dataclasses import dataclass

from gpu_catalog.units import usd_for
from orchestrator.cost import CONTROLLER_USD_PER_HOUR
from orchestrator.runs.status import Target
from orchestrator.runs.store import RunRecord

GROUPS = ("month", "provider", "job")


def billed_usd_per_hour(record: RunRecord) -> float:
    """What an hour of the run costs: the GPU, plus the jobs controller's VM for a managed spot job."""
    managed = record.target is Target.CLOUD and record.spot
    return record.usd_per_hour + (CONTROLLER_USD_PER_HOUR if managed else 0.0)


def spend_usd(record: RunRecord, now: float | None = None) -> float:
    """The run's spend: recorded when it ended, else so far (earlier sessions of a resumed run included)."""
    if not record.status.is_active():
        return record.cost_usd or 0.0
    started = record.started_at or record.created_at  # billing starts with the launch request
    seconds = (record.wall_s or 0.0) + max(0.0, (now or time.time()) - started)
    return usd_for(seconds, billed_usd_per_hour(record))


@dataclass(frozen=True)
class SpendRow:
    key: str
    runs: int
    usd: float
    active_runs: int


def _key(record: RunRecord, group: str) -> str:
    if group == "month":
        return time.strftime("%Y-%m", time.gmtime(record.created_at))
    if group == "provider":
        return record.provider
    return record.job_name


def spend_by(records: list[RunRecord], group: str, now: float | None = None) -> list[SpendRow]:
    """One row per month, provider or job, dearest first (months in order)."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    totals: dict[str, list] = {}
    for record in records:
        row = totals.setdefault(_key(record, group), [0, 0.0, 0])
        row[0] += 1
        row[1] += spend_usd(record, now)
        row[2] += record.status.is_active()
    rows = [SpendRow(key, runs, usd, active) for key, (runs, usd, active) in totals.items()]
    return sorted(rows, key=(lambda r: r.key) if group == "month" else (lambda r: (-r.usd, r.key)))
