"""The one exception type for a user's mistake: the CLI prints its message and exits 2, never a traceback.

It lives in the lowest package so the catalog, the job spec and the planner all raise the same type.
"""

import re

# a library's styling in its own messages (SkyPilot's `\x1b[1msky check\x1b[0m`): shown escaped, it read as noise
_STYLING = re.compile(r"\x1b\[[0-9;]*m")


class UserError(ValueError):
    """Bad input that the user can fix: an unknown name, a malformed file. The message says what to change."""


def one_line(exc: BaseException) -> str:
    """An exception for a status line or a log: a UserError's own message (written for people), else the type and
    the message's first line without the terminal styling a library put in it, or the type alone when there is no
    message."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, UserError) and first:
        return first
    first = _STYLING.sub("", first)
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
