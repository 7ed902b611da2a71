"""Turn a user's mistake into a short message and exit code 2, inside the command, so tests see what users see."""

import functools
import sys

import typer
from typer.core import TyperGroup

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
        except BrokenPipeError:  # `orch ... | head`: the reader left; typer ends quietly, as a pipe's writer should
            raise
        except OSError as exc:  # a path the user named that cannot be read or written: say which, no traceback
            where = f"'{exc.filename}': " if exc.filename else ""
            raise fail(f"{where}{exc.strerror or exc}.") from None

    return wrapper


def only_match(matches: list, what: str, text: str, how_to_list: str):
    """The one record an id (or a unique prefix of one) names; none or several is the user's to fix."""
    if len(matches) != 1:
        found = f"no {what}" if not matches else f"{len(matches)} {what}s"
        raise UserError(f"{found} matching '{text}'. List them with `{how_to_list}`.")
    return matches[0]


class OneLineUsageErrors(TyperGroup):
    """click's own usage mistakes (a flag that is not a number, an unknown option or command, a missing argument) as
    the one `error: ...` line every other mistake gets, with the help to read, instead of a framed block. (Typer
    carries its own copy of click, whose exceptions derive from the public typer.TyperException.)"""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            exit_code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as exc:
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError":  # `orch` alone: the help, already shown, then what is wrong
                print_error(f"give a command: `{ctx.command_path if ctx else 'orch'} COMMAND`, one of those above.")
                sys.exit(exc.exit_code)
            message = exc.format_message().rstrip(".")
            print_error(f"{message}{' See' if message.endswith('?') else '; see'} "
                        f"`{ctx.command_path if ctx else 'orch'} --help`.")
            sys.exit(exc.exit_code)
        except typer.Abort:
            print_error("aborted.")
            sys.exit(1)
        sys.exit(exit_code if isinstance(exit_code, int) else 0)
