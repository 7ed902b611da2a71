"""What runs have cost, summed by month, provider and job: `orch spend`. A finished run counts what the runs store
recorded for it; a run still going counts its spend so far (its price since its launch, plus the jobs controller for
a managed spot job, up to its cap), so recoveries and start-up are in. A cloud run's spend never passes what its
VM's guards let it spend (cap_usd), so a run whose end orch has not heard of stops counting there. Pure: `orch
spend` refreshes the runs' states first, as `orch runs` does."""

import calendar
import time
from dataclasses import dataclass

from gpu_catalog.units import usd_for
from orchestrator.cost import CONTROLLER_IDLE_HOURS, CONTROLLER_USD_PER_HOUR
from orchestrator.runs.status import Target
from orchestrator.runs.store import RunRecord
from trainer.meter import METER_INTERVAL_S

GROUPS = ("month", "provider", "job")


def billed_usd_per_hour(record: RunRecord) -> float:
    """What an hour of the run costs: the GPU, plus the jobs controller's VM for a managed spot job."""
    managed = record.target is Target.CLOUD and record.spot
    return record.usd_per_hour + (CONTROLLER_USD_PER_HOUR if managed else 0.0)


def cap_usd(record: RunRecord) -> float:
    """The most a run can cost. A cloud run: its budget. The VM's wall-clock guard counts from the launch request and
    leaves out of its window what is paid after the trainer stops (the idle window before the VM downs itself, the
    jobs controller's idle autostop: sky_task.guard_for), so a run whose end orch has not heard of has cost at most
    this. A local run: its budget and one meter interval, where its trainer's meter ends it (trainer/meter.py); a
    run whose folder was deleted, its trainer's last write gone with it, was charged until somebody looked (142% of
    its budget)."""
    if record.target is Target.CLOUD:
        return record.budget_usd
    return record.budget_usd + usd_for(METER_INTERVAL_S, billed_usd_per_hour(record))


def metered_usd(record: RunRecord, wall_s: float, idle_s: float = 0.0) -> float:
    """What `wall_s` seconds of the run (all its sessions) cost at its price, never past its cap; `idle_s`: the
    seconds its machine was billed after the trainer ended, before it went down (launcher.billed_after_s), and a
    managed job's controller its idle window, as the plan counts them (cost._spend)."""
    usd = usd_for(wall_s, billed_usd_per_hour(record))
    if idle_s:
        usd += usd_for(idle_s, record.usd_per_hour)
        if record.target is Target.CLOUD and record.spot:
            usd += CONTROLLER_IDLE_HOURS * CONTROLLER_USD_PER_HOUR
    return min(usd, cap_usd(record))


def run_cost_usd(record: RunRecord, session_s: float, idle_s: float) -> float:
    """The run's cost once a session ends: the earlier sessions' recorded cost, each at the price it ran at (a
    resume plans again: prices move; earlier time with no cost recorded at this price), plus this one's, never past
    the run's cap."""
    earlier_usd = record.cost_usd if record.cost_usd is not None else metered_usd(record, record.wall_s or 0.0)
    return min(earlier_usd + metered_usd(record, session_s, idle_s), cap_usd(record))


def spend_usd(record: RunRecord, now: float | None = None) -> float:
    """The run's spend: recorded when it ended, else so far (earlier sessions of a resumed run included, as they were
    recorded), never past its cap (cap_usd): the trainer's meter stops a local run there and a cloud run's guards
    stop its VM, so more is a run whose end nobody has recorded yet (a crash, a reboot), not spend. Capped at the
    budget alone, a running local run showed less than the same run recorded once it ended. What an ended run
    recorded is its measure, not capped."""
    if not record.status.is_active():
        return record.cost_usd or 0.0
    return run_cost_usd(record, _session_s(record, now), 0.0)


def wall_s_so_far(record: RunRecord, now: float | None = None) -> float | None:
    """The run's wall time: recorded when it ended, else its earlier sessions' and this one's so far, the span
    spend_usd prices (the hours `orch runs` showed were the earlier sessions' alone, beside a live cost)."""
    if not record.status.is_active():
        return record.wall_s
    return (record.wall_s or 0.0) + _session_s(record, now)


def _session_s(record: RunRecord, now: float | None) -> float:
    started = record.started_at or record.created_at  # billing starts with the launch request
    return max(0.0, (now or time.time()) - started)


@dataclass(frozen=True)
class SpendRow:
    key: str
    runs: int
    usd: float
    active_runs: int


def month_of(timestamp_s: float) -> str:
    """The calendar month a moment falls in, in UTC as clouds bill: `orch spend` by month and the scheduler's
    --monthly-cap count the same month."""
    return time.strftime("%Y-%m", time.gmtime(timestamp_s))


def month_start_s(now: float) -> float:
    """The first second of the UTC calendar month `now` falls in."""
    year, month = time.gmtime(now)[:2]
    return float(calendar.timegm((year, month, 1, 0, 0, 0)))


def month_spend_usd(records: list[RunRecord], now: float) -> float:
    """This UTC calendar month's cloud spend, which the scheduler's --monthly-cap bounds: what ended cloud runs cost,
    and what running ones may still cost, their budget stop (their estimate let the runs started under the cap spend
    past it). Owned cards are placed first whatever the month's spend, so their runs are not counted against it."""
    total, this_month = 0.0, month_of(now)
    for run in records:
        if month_of(run.created_at) == this_month and run.target is Target.CLOUD:
            total += run.budget_usd if run.status.is_active() else (run.cost_usd or 0.0)
    return total


def _key(record: RunRecord, group: str) -> str:
    if group == "month":
        return month_of(record.created_at)
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
