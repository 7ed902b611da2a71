"""The budget meter: money counts from the second this process started, so data preparation, the model build, evals
and checkpoints are paid for like training steps are. Two guards share it: before each step the loop asks whether the
step (and the checkpoint a stop saves) would pass the budget, and an alarm ends the process at the budget in any case
(during a slow model build, say), so the spend never passes the budget by more than the time it takes to exit.

The alarm raises BudgetSpent only where the training loop's caller takes it and writes the run's metrics: once the loop
has said it started (`loop_started`). Before that (torch's imports, the data, the model build)
third-party code lies between the alarm and any handler, and some of it turns an exception into its own
(transformers' lazy imports re-raise anything as ModuleNotFoundError, and the import goes on), so in the trainer's own
process the alarm writes metrics.json and ends the process itself, with the budget-stop exit code."""

import os
import signal
import sys
import time
from pathlib import Path

from gpu_catalog.units import seconds_for, usd_for, usd_text
from trainer.jsonio import write_json_atomic
from trainer.status import TrainStatus

EXIT_MARGIN_S = 1.0  # the alarm fires this long before the budget runs out: time to write metrics.json and exit
METER_INTERVAL_S = 5.0  # the promise: a process's spend passes its budget by at most this much time, at its price


# the output folder of the trainer this process is (`python -m trainer`), where the alarm writes metrics.json before
# it ends the process; None where the trainer runs inside another program (a test), which the alarm never ends
_process_output: Path | None = None


class BudgetSpent(Exception):
    """Raised by the alarm when the budget runs out before the loop could stop on its own."""


def end_process_at_budget(output: Path) -> None:
    """Make the alarm end this process (the trainer's own) at the budget wherever it strikes before the training loop,
    writing `output`/metrics.json first: an exception raised there can be caught and turned into another."""
    global _process_output
    _process_output = output


def write_budget_stop(output: Path, cost_usd: float | None, message: str, steps: int | None = 0) -> None:
    """The metrics.json of a run the budget stopped where the loop could not (`steps` None: how many is not known
    here), said on stderr as the loop's own stop is; the launcher records what it cost from it."""
    output.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output / "metrics.json", {"status": TrainStatus.BUDGET_STOPPED, "cost_usd": cost_usd,
                                                "message": message, **({} if steps is None else {"steps": steps})})
    print(f"budget_stopped: {message}", file=sys.stderr, flush=True)


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


LONGEST_ALARM_S = 1e9  # about 32 years: setitimer takes no more than a time_t holds (about 9.2e9 s here), and a
# $30,000 budget on a CPU priced at $0.01 an hour asked for 1e10 s: an OverflowError traceback, the run failed


def _alarm_in(seconds: float) -> None:
    """SIGALRM after `seconds`, at least 1 ms and at most LONGEST_ALARM_S."""
    signal.setitimer(signal.ITIMER_REAL, min(max(0.001, seconds), LONGEST_ALARM_S))


class BudgetMeter:
    def __init__(self, usd_per_hour: float | None, budget_usd: float | None, started_at: float):
        self.usd_per_hour, self.budget_usd, self.started_at = usd_per_hour, budget_usd, started_at
        self._in_loop = False  # whether the training loop has started since the alarm was armed
        self._raised = False  # whether the alarm has raised BudgetSpent into the loop since it was armed

    @property
    def armed(self) -> bool:
        return self.usd_per_hour is not None and self.budget_usd is not None and self.usd_per_hour > 0

    def elapsed_s(self) -> float:
        return time.time() - self.started_at

    def spent_usd(self) -> float | None:
        return usd_for(self.elapsed_s(), self.usd_per_hour) if self.usd_per_hour else None

    def loop_started(self) -> None:
        """The training loop is running: from now the alarm raises BudgetSpent for the loop's caller to take (the
        module's docstring)."""
        self._in_loop = True

    def would_pass(self, more_s: float) -> bool:
        """True when `more_s` seconds from now would carry the spend past the budget."""
        return self.armed and usd_for(self.elapsed_s() + more_s, self.usd_per_hour) > self.budget_usd

    def seconds_left(self) -> float:
        return seconds_for(self.budget_usd, self.usd_per_hour) - self.elapsed_s()

    def arm_alarm(self) -> None:
        """SIGALRM at the budget (less the exit margin). In the loop, it raises BudgetSpent in the main thread; should
        nothing take it there, the trainer's own process ends at the meter interval past the budget. Before the loop,
        that process ends at once; inside another program, it raises."""
        if not self.armed:
            return
        self._in_loop = self._raised = False

        def spent(signum, frame):
            message = (f"this session's budget of {usd_text(self.budget_usd)} ran out after {self.elapsed_s():.1f} s; "
                       "a larger budget continues from the last checkpoint, if any")
            if _process_output is not None and (self._raised or not self._in_loop):
                try:  # a full disk or a closed pipe must not keep the process spending
                    write_budget_stop(_process_output, self.spent_usd(), message, steps=None if self._raised else 0)
                    sys.stdout.flush()
                finally:
                    os._exit(TrainStatus.BUDGET_STOPPED.exit_code)
            if _process_output is not None:  # the last word, should the loop never see the exception
                _alarm_in(self.seconds_left() + METER_INTERVAL_S - EXIT_MARGIN_S)
            self._raised = True
            raise BudgetSpent(message)

        signal.signal(signal.SIGALRM, spent)
        _alarm_in(self.seconds_left() - EXIT_MARGIN_S)

    @staticmethod
    def disarm_alarm() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
