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


def stdout_file() -> tuple[int, int] | None:
    """What stdout's descriptor points at, to tell later whether it was pointed at /dev/null; None where orch was
    started with stdout closed (`orch runs >&-`)."""
    try:
        found = os.fstat(1)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def final_exit(exit: SystemExit, stdout_at_start: tuple[int, int] | None) -> SystemExit:
    """The exit orch ends with: one that rich's console or click raised for a reader that left ends as reader_left's
    does. `orch --help | head` exited 1, with nothing said: a group's help is printed by rich, whose console points
    stdout at /dev/null and raises SystemExit(1) on a BrokenPipeError, and a command's by click, which wraps stdout
    in its PacifyFlushWrapper and exits 1, both before any orch code can catch it."""
    null = os.stat(os.devnull)
    if exit.code == 1 and (stdout_file() == (null.st_dev, null.st_ino) != stdout_at_start
                           or type(sys.stdout).__name__ == "PacifyFlushWrapper"):
        return SystemExit(CLOSED_PIPE_EXIT_CODE)
    return exit
