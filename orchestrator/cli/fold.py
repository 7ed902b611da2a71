"""Plain lines folded at a terminal's width, in one place for display.say and for what `orch plan` prints without
loading rich (it answers in a fraction of a second): at a terminal a line wider than it is folded at spaces, its later
lines indented (the terminal cut words in two and went back to the first column); a pipe, a log or a script gets
each line whole, to grep."""

import shutil
import sys
import textwrap

from gpu_catalog.checks import printable

FOLDED_INDENT = "  "  # a folded line's later lines start this much further in, so they read as its continuation


def folded(line: str, width_columns: int) -> str:
    """`line` folded at spaces into lines of `width_columns` at most, each after the first indented past the first's
    own indent. A word wider than that (a path, a URL) stays whole, for copying; a hyphenated name (`j-1dea99f5`,
    `llama31-8b-qlora`) is never cut at its hyphens."""
    indent = line[:len(line) - len(line.lstrip(" "))] + FOLDED_INDENT
    return textwrap.fill(line, width_columns, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False)


def note(text: str) -> None:
    """A line for people on stderr, printable, folded at the terminal's width (COLUMNS where set) when stderr is
    one."""
    text = printable(text)
    if sys.stderr.isatty():
        width_columns = shutil.get_terminal_size().columns
        text = "\n".join(folded(line, width_columns) for line in text.split("\n"))
    print(text, file=sys.stderr)
