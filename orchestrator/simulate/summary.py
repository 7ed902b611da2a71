"""What a simulation reports, kept online: running sums as each job ends, and a bounded series of the spend over time
for the plot, so memory does not grow with the trace."""

import math
from dataclasses import dataclass, field

# cloud_usd: the part of cost_usd spent in the cloud (all of it for a cloud placement; a spot run's preempted
# attempts for a job that then ended on a local card)
DECISION_COLUMNS = ("job_id", "arrival_h", "placement", "start_h", "end_h", "wait_h", "cost_usd", "cloud_usd",
                    "deadline_h", "missed_deadline", "preemptions", "reason")
REJECTED = "rejected"
SERIES_MAX_POINTS = 2000  # per placement; a plot 9 inches wide shows no more


class _Series:
    __slots__ = ("points", "total", "last", "count", "stride")

    def __init__(self):
        self.points: list[tuple[float, float]] = []
        self.total, self.last, self.count, self.stride = 0.0, None, 0, 1


class SpendSeries:
    """Cumulative spend by the hour jobs end, one series per kind of placement (local, cloud). Jobs end in time order;
    when a series holds 2 x max_points points, every other one is dropped and later ones are kept at half the rate,
    so the series stays evenly spread and bounded. The last point is always the total."""

    def __init__(self, max_points: int = SERIES_MAX_POINTS):
        self.max_points = max_points
        self.by_placement = {"local": _Series(), "cloud": _Series()}

    def add(self, where: str, end_h: float, cost_usd: float) -> None:
        series = self.by_placement[where]
        series.total += cost_usd
        series.last = (end_h, series.total)
        series.count += 1
        if (series.count - 1) % series.stride:
            return
        series.points.append(series.last)
        if len(series.points) >= 2 * self.max_points:
            series.points = series.points[::2]
            series.stride *= 2

    def series(self) -> dict[str, tuple[list[float], list[float]]]:
        """(hours, cumulative USD) per placement, ending at the total."""
        out = {}
        for where, series in self.by_placement.items():
            points = series.points + ([series.last] if series.points and series.points[-1] != series.last else [])
            out[where] = ([p[0] for p in points], [p[1] for p in points])
        return out


@dataclass
class RunningSummary:
    """The summary of a simulation, updated once per job as it ends (see `result` for the fields)."""

    slots_count: int
    purchase_usd_per_hour: float = 0.0  # the owned cards' purchase over their life, per hour of the span
    jobs: int = 0
    completed: int = 0
    total_cost_usd: float = 0.0
    local_cost_usd: float = 0.0
    deadline_misses: int = 0
    wait_sum_h: float = 0.0
    waits: int = 0
    preemptions: int = 0
    first_arrival_h: float = math.inf
    last_end_h: float = -math.inf
    local_busy_h: float = 0.0
    spend: SpendSeries = field(default_factory=SpendSeries)

    def arrived(self, arrival_h: float) -> None:
        self.jobs += 1
        self.first_arrival_h = min(self.first_arrival_h, arrival_h)

    def ended(self, placement: str, arrival_h: float, start_h: float | None, end_h: float, cost_usd: float,
              cloud_usd: float, missed: bool, preemptions: int) -> None:
        """A job's end; `cloud_usd` of its `cost_usd` was spent in the cloud, wherever it ended: a job preempted there
        and finished on an owned card had its spot spend counted as the card's."""
        self.total_cost_usd += cost_usd
        self.deadline_misses += missed
        self.preemptions += preemptions
        self.last_end_h = max(self.last_end_h, end_h)
        if placement == REJECTED:
            return
        self.completed += 1
        self.local_cost_usd += cost_usd - cloud_usd
        for where, usd in (("local", cost_usd - cloud_usd), ("cloud", cloud_usd)):
            if usd or placement.startswith(where):
                self.spend.add(where, end_h, usd)
        if start_h is not None:
            self.wait_sum_h += start_h - arrival_h
            self.waits += 1

    def result(self) -> dict:
        """The jobs' costs (an owned card's: its power), plus owning the cards over the span (`ownership_usd`), in
        the local and total cost."""
        span = self.last_end_h - self.first_arrival_h if self.jobs else 0.0
        ownership_usd = self.purchase_usd_per_hour * span
        return {
            "jobs": self.jobs, "completed": self.completed, "rejected": self.jobs - self.completed,
            "total_cost_usd": self.total_cost_usd + ownership_usd,
            "local_cost_usd": self.local_cost_usd + ownership_usd, "ownership_usd": ownership_usd,
            "cloud_cost_usd": self.total_cost_usd - self.local_cost_usd,
            "deadline_misses": self.deadline_misses, "mean_wait_h": self.wait_sum_h / self.waits if self.waits else 0.0,
            # at most 1: busy hours summed job by job can pass the span by a rounding error (1.0000000000000002)
            "local_utilization": min(1.0, self.local_busy_h / (self.slots_count * span))
            if self.slots_count and span > 0 else 0.0,
            "preemptions": self.preemptions, "makespan_h": span,
        }
