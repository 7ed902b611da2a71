"""What every script under benchmarks/ does with its command line, as orch's own commands do: a mistake is one
`error:` line and exit 2 (argparse printed its usage above its own, and a ConfigError escaped as a traceback after
minutes of measuring), a name from the command line is echoed without its escapes, and an output file is checked
before any work (cpu_mask_memory.py measured for 43 s, then failed to write)."""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"  # a default --out lands here whatever the working folder


def say_error(message: str) -> None:
    """One `error:` line on stderr, escapes shown, not sent to the terminal."""
    print(f"error: {checks.one_line(checks.printable(message))}", file=sys.stderr)


class Parser(argparse.ArgumentParser):
    """argparse with its mistakes said in one line, exit 2 (`--help` still prints the usage)."""

    def error(self, message: str):
        say_error(f"{message} (see --help)")
        sys.exit(2)


def output_file(path: Path | None, flag: str = "--out") -> Path | None:
    """An output file checked before the work that fills it (its folder exists and takes a file; not a folder)."""
    return None if path is None else checks.output_file(path, flag)


def whole_at_least(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `least` (`--runs 0` failed inside statistics.median)."""
    def read(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{checks.short_repr(text)} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value
    return read


def run(main: Callable[[], int]) -> int:
    """main(), with a UserError (a ConfigError among them) said as one line, exit 2."""
    try:
        return main()
    except UserError as exc:
        say_error(str(exc))
        return 2
