"""How a training process ends: one enum the trainer writes into metrics.json and exits with, and the orchestrator
reads back (orchestrator/runs/status.py builds the run's status on it), so no status is a bare string compared in
many modules and no exit code is remembered in two places. Plain Python: no torch."""

from enum import Enum


class TrainStatus(str, Enum):
    OK = "ok"
    ERROR = "error"
    BAD_CONFIG = "bad_config"
    OOM = "oom"
    BUDGET_STOPPED = "budget_stopped"
    PREEMPTED = "preempted"  # SIGTERM, as a spot preemption or `orch stop` sends: a checkpoint was saved
    INTERRUPTED = "interrupted"  # Ctrl-C: a checkpoint was saved, the resume command printed
    DIVERGED = "diverged"  # a loss or gradient norm not finite: the same settings diverge again, so no retry

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]

    @property
    def deserves_restart(self) -> bool:
        """Only a preemption is worth another start: bad config, OOM, a spent budget and a divergence would end the
        same way."""
        return self is TrainStatus.PREEMPTED


_EXIT_CODES = {TrainStatus.OK: 0, TrainStatus.ERROR: 1, TrainStatus.BAD_CONFIG: 2, TrainStatus.OOM: 3,
               TrainStatus.BUDGET_STOPPED: 4, TrainStatus.PREEMPTED: 5, TrainStatus.DIVERGED: 6,
               TrainStatus.INTERRUPTED: 130}
