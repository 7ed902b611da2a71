"""Turn a user's mistake into a short message and exit code 2, inside the command, so tests see what users see."""

import functools

import typer

from gpu_catalog.errors import UserError
from orchestrator.cli.display import print_error

USAGE_ERROR_EXIT_CODE = 2


def fail(message: str) -> typer.Exit:
    print_error(message)
    return typer.Exit(code=USAGE_ERROR_EXIT_CODE)


def user_errors(command):
    """Decorator: a UserError raised anywhere below a command becomes `error: ...` on stderr and exit 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:  # a path the user named that cannot be read or written: say which, no traceback
            where = f"'{exc.filename}': " if exc.filename else ""
            raise fail(f"{where}{exc.strerror or exc}.") from None

    return wrapper


def only_match(matches: list, what: str, text: str, how_to_list: str):
    """The one record an id (or its unique end) names; none or several is the user's to fix."""
    if len(matches) != 1:
        found = f"no {what}" if not matches else f"{len(matches)} {what}s"
        raise UserError(f"{found} matching '{text}'. List them with `{how_to_list}`.")
    return matches[0]
