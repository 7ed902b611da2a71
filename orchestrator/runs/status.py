"""A run's status and target. A run's status is the trainer's own end state (trainer/status.py) once it ends, plus
the states only the orchestrator knows: launching, running, stopped by the user, failed (died without a word)."""

from enum import Enum

from trainer.status import TrainStatus


class RunStatus(str, Enum):
    LAUNCHING = "launching"
    RUNNING = "running"
    OK = TrainStatus.OK.value
    ERROR = TrainStatus.ERROR.value
    BAD_CONFIG = TrainStatus.BAD_CONFIG.value
    OOM = TrainStatus.OOM.value
    BUDGET_STOPPED = TrainStatus.BUDGET_STOPPED.value
    PREEMPTED = TrainStatus.PREEMPTED.value
    DIVERGED = TrainStatus.DIVERGED.value
    STOPPED = "stopped"  # by the user (`orch stop`): a checkpoint was saved, `orch resume` continues
    FAILED = "failed"  # the trainer died without metrics.json, or the launch never started it

    def is_active(self) -> bool:
        return self in (RunStatus.LAUNCHING, RunStatus.RUNNING)

    def is_resumable(self) -> bool:
        """Ended with work left that a checkpoint may continue."""
        return self in (RunStatus.STOPPED, RunStatus.PREEMPTED, RunStatus.BUDGET_STOPPED, RunStatus.FAILED,
                        RunStatus.ERROR)

    @classmethod
    def of_trainer(cls, status: str) -> "RunStatus":
        """The run's status for the trainer's end: its own, but a Ctrl-C is the user stopping the run."""
        train_status = TrainStatus(status)
        return cls.STOPPED if train_status is TrainStatus.INTERRUPTED else cls(train_status.value)


ACTIVE = tuple(s for s in RunStatus if s.is_active())


class Target(str, Enum):
    LOCAL = "local"  # a child process on this machine
    CLOUD = "cloud"  # through SkyPilot: a cloud VM, or an owned card in an SSH node pool
