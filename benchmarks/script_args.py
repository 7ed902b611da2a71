"""What every script under benchmarks/ does with its command line, as orch's own commands do: a mistake is one
`error:` line and exit 2 (argparse printed its usage above its own, and a ConfigError escaped as a traceback after
minutes of measuring), a name from the command line is echoed without its escapes, and an output file is checked
before any work (cpu_mask_memory.py measured for 43 s, then failed to write)."""

import argparse
import os
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


def file_path(text: str) -> Path:
    """An argparse type for an output file: typed with a trailing slash it names a folder (Path drops the slash, and
    `--out x/` wrote a file named `x`)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a file name")
    if text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{checks.short_repr(text)} ends with a slash, which names a folder: give a "
                                         "file name")
    return Path(text)


def output_file(path: Path | None, flag: str = "--out", suffix: str | None = None,
                inputs: tuple[Path, ...] = ()) -> Path | None:
    """An output file checked before the work that fills it (its folder exists and takes a file; not a folder; the
    `suffix` of what is written; none of the script's `inputs`, which a result written over them destroyed)."""
    if path is not None and suffix and path.suffix.lower() != suffix:
        raise UserError(f"{flag} '{path}': it is written as {suffix[1:].upper()}: give a name ending in {suffix}.")
    return None if path is None else checks.output_file(path, flag, inputs=inputs)


def whole_in(least: int, most: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `least` to `most`."""
    read_least = whole_at_least(least)

    def read(text: str) -> int:
        value = read_least(text)
        if value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}, got {checks.whole_shown(value)}")
        return value
    return read


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
