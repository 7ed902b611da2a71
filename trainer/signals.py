"""Stop requests: SIGTERM (a spot preemption) and Ctrl-C. The first Ctrl-C asks the loop to finish its step, write a
checkpoint and exit 130; a second Ctrl-C raises KeyboardInterrupt at once. Checkpoints are renamed into place whole
(trainer/checkpoint.py), so stopping at once never loses one written before."""

import signal

from trainer.status import TrainStatus


class StopRequests:
    """Why the run should stop at the end of this step, or None."""

    def __init__(self):
        self.reason: TrainStatus | None = None
        self._previous = (signal.SIG_DFL, signal.SIG_DFL)

    def _on_sigterm(self, signum, frame) -> None:
        self.reason = TrainStatus.PREEMPTED

    def _on_sigint(self, signum, frame) -> None:
        if self.reason is TrainStatus.INTERRUPTED:
            raise KeyboardInterrupt
        self.reason = TrainStatus.INTERRUPTED
        print("\nstopping after this step, with a checkpoint (Ctrl-C again to stop at once)", flush=True)

    def install(self) -> None:
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm), signal.signal(signal.SIGINT, self._on_sigint)

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._previous[0])
        signal.signal(signal.SIGINT, self._previous[1])
