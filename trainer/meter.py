"""The budget meter: money counts from the second this process started, so data preparation, the model build, evals
and checkpoints are paid for like training steps are. Two guards share it: before each step the loop asks whether the
step (and the checkpoint a stop saves) would pass the budget, and an alarm ends the process at the budget in any case
(during a slow model build, say), so the spend never passes the budget by more than the time it takes to exit."""

import os
import signal
import time
from pathlib import Path

from gpu_catalog.units import SECONDS_PER_HOUR, usd_for, usd_text

EXIT_MARGIN_S = 1.0  # the alarm fires this long before the budget runs out: time to write metrics.json and exit
METER_INTERVAL_S = 5.0  # the promise: a process's spend passes its budget by at most this much time, at its price


class BudgetSpent(Exception):
    """Raised by the alarm when the budget runs out before the loop could stop on its own."""


def process_start_time() -> float:
    """When this process began (epoch seconds), from /proc: the launcher starts paying then, not when Python has
    imported torch. Measured back from now through the uptime clock (10 ms steps), not from the boot time (whole
    seconds, so up to a second early). Elsewhere, the first call's time."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22: start time
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - max(0.0, uptime_s - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


class BudgetMeter:
    def __init__(self, usd_per_hour: float | None, budget_usd: float | None, started_at: float):
        self.usd_per_hour, self.budget_usd, self.started_at = usd_per_hour, budget_usd, started_at

    @property
    def armed(self) -> bool:
        return self.usd_per_hour is not None and self.budget_usd is not None and self.usd_per_hour > 0

    def elapsed_s(self) -> float:
        return time.time() - self.started_at

    def spent_usd(self) -> float | None:
        return usd_for(self.elapsed_s(), self.usd_per_hour) if self.usd_per_hour else None

    def would_pass(self, more_s: float) -> bool:
        """True when `more_s` seconds from now would carry the spend past the budget."""
        return self.armed and usd_for(self.elapsed_s() + more_s, self.usd_per_hour) > self.budget_usd

    def seconds_left(self) -> float:
        return self.budget_usd / self.usd_per_hour * SECONDS_PER_HOUR - self.elapsed_s()

    def arm_alarm(self) -> None:
        """SIGALRM at the budget (less the exit margin) raises BudgetSpent in the main thread."""
        if not self.armed:
            return

        def spent(signum, frame):
            raise BudgetSpent(f"this session's budget of {usd_text(self.budget_usd)} ran out after "
                              f"{self.elapsed_s():.1f} s; a larger budget continues from the last checkpoint, if any")

        signal.signal(signal.SIGALRM, spent)
        signal.setitimer(signal.ITIMER_REAL, max(0.001, self.seconds_left() - EXIT_MARGIN_S))

    @staticmethod
    def disarm_alarm() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
