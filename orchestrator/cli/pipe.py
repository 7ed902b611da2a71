"""How orch ends when the reader of its output left first (`orch runs | head -1`): silently, with the status a shell
shows for a writer killed by SIGPIPE (141, as `git log | head -1` ends). rich's console raised SystemExit(1) and
click exited 1 for a print's BrokenPipeError: 1, orch's exit code for a failure, with nothing said."""

import os
import signal
import sys

CLOSED_PIPE_EXIT_CODE = 128 + signal.SIGPIPE


def reader_left() -> SystemExit:
    """The exit to raise: stdout is pointed at /dev/null first, so the interpreter's last flush of what is still
    buffered meets no closed pipe (it printed `Exception ignored ... BrokenPipeError`)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return SystemExit(CLOSED_PIPE_EXIT_CODE)
