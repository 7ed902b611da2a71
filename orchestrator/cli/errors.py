"""Turn a user's mistake into a short message and exit code 2, inside the command, so tests see what users see."""

import functools
import os
import sys

import typer
from typer.core import DEFAULT_MARKUP_MODE, TyperGroup

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.names import listed
from orchestrator.cli.argv_forms import (
    UnreadableOptions,
    click_options,
    json_wanted,
    left_over_word,
    spelled_as_orch,
)
from orchestrator.cli.display import print_error, print_json
from orchestrator.cli.limits import missing_value_hint
from orchestrator.cli.pipe import reader_left
from orchestrator.cli.serialize import USAGE_ERROR_EXIT_CODE, error_dict
from orchestrator.db import UnusableDatabase

UsageError = typer.BadParameter.__mro__[1]  # click's, in typer's own copy of click (typer exports only its child)
NoSuchOption = next(c for c in UsageError.__subclasses__() if c.__name__ == "NoSuchOption")  # the same copy's


_command_line = {"json": False}  # what the running command line asks, for fail(): set by OneLineUsageErrors.main


class SaidInJson(UserError):
    """A refusal whose --json document the command has written itself, its `error` in it (a launch that found no
    offer: the plan it made; a bench with a refused point: its rows): said on stderr, not as a second document."""


def fail(message: str, as_json: bool | None = None) -> typer.Exit:
    """`error: ...` on stderr and exit 2; with --json, the same as a JSON document on stdout (serialize.error_dict),
    so a script reading stdout parses a refusal too, not an empty stream. `as_json` None: as the command line asks
    (an option's callback refuses before the command has read its --json)."""
    print_error(message)
    if as_json if as_json is not None else _command_line["json"]:
        print_json(error_dict(message))
    return typer.Exit(code=USAGE_ERROR_EXIT_CODE)


def user_errors(command):
    """Decorator: a UserError raised anywhere below a command, or a database file that failed under it (damaged,
    locked by another process), becomes `error: ...` on stderr and exit 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (UserError, UnusableDatabase) as exc:
            raise fail(str(exc), False if isinstance(exc, SaidInJson) else None) from None
        except BrokenPipeError:  # `orch ... | head`: the reader left
            raise reader_left() from None
        except (OSError, RuntimeError) as exc:  # a path the user named that cannot be read or written (say which),
            # or one resolved below without checks.resolved, through a loop of links
            if (said := checks.last_resort(exc)) is None:
                raise
            raise fail(str(said)) from None

    return wrapper


SHOWN_CANDIDATES = 5  # the ids an ambiguous prefix names, listed in its error


def only_match(matches: list, what: str, text: str, how_to_list: str):
    """The one record an id (or a unique prefix of one) names; none or several is the user's to fix. An empty id
    (`orch stop ''`) is said to be empty: "no run matching ''" read as if runs had been searched for one."""
    if not text.strip():
        raise UserError(f"the {what} id is empty: give a {what} id or a unique prefix of one (`{how_to_list}` lists "
                        "them).")
    if not matches and text.strip().lower().rstrip("-") in ("r", "j"):  # the kind alone: every id starts so
        raise UserError(f"'{text}' is only the start of an id: give a {what} id or a unique prefix of one "
                        f"(`{how_to_list}` lists them).")
    if not matches:
        raise UserError(f"no {what} matching '{text}'. List them with `{how_to_list}`.")
    if len(matches) > 1:  # the candidates named, as git names an ambiguous short hash's
        ids = sorted(getattr(match, f"{what}_id") for match in matches)
        shown = ", ".join(ids[:SHOWN_CANDIDATES]) + (f" and {len(ids) - SHOWN_CANDIDATES} more"
                                                     if len(ids) > SHOWN_CANDIDATES else "")
        raise UserError(f"{len(ids)} {what}s matching '{text}' ({shown}): give more of the id.")
    return matches[0]


def options_by_name(command) -> dict:
    """A click command's options by each of their names (`--spot` and `--no-spot` both), as the checks below read
    a command line against them."""
    return {opt: param for param in command.params if getattr(param, "param_type_name", "") == "option"
            for opt in (*param.opts, *param.secondary_opts)}


def repeated_option(command, args: list[str]) -> str | None:
    """Why `args` give one of `command`'s single-valued options twice with different values, or None. click keeps
    the last silently, so `orch submit job.yaml --budget 1 ... --budget 500` queued a $500 job unsaid (`orch plan`,
    on its own parser, refuses the same). The same value twice is harmless."""
    options = {opt: param for opt, param in options_by_name(command).items()
               if not getattr(param, "multiple", False) and not getattr(param, "count", False)}
    given: dict[str, tuple[str, str]] = {}  # the option's name -> (its spelling, its value)
    index = 0
    while index < len(args) and args[index] != "--":
        spelling, has_value, value = args[index].partition("=")
        param = options.get(spelling)
        index += 1
        if param is None:
            continue
        if not param.is_flag and not has_value and index < len(args):
            value, index = args[index], index + 1
        elif param.is_flag:  # --spot or --no-spot: on or off, whichever of its names (`-f`, `--follow`) says it
            value = "off" if spelling in param.secondary_opts else "on"
        first = given.setdefault(param.name, (spelling, value))
        if first[1] != value:
            if param.is_flag:
                return f"{first[0]} and {spelling} both given: give one"
            return f"{spelling} given twice, as {first[1]} and {value}: give it once"
    return None


def option_as_value(command, args: list[str]) -> str | None:
    """Why `args` leave out the value of one of `command`'s options, or None: its next word is another of them.
    `orch estimate m --seq-len --json` read `--json` as the length and said it "is not a whole number", where the
    length is what is missing."""
    options = options_by_name(command)
    index = 0
    while index < len(args) - 1 and args[index] != "--":
        spelling, has_value, _ = args[index].partition("=")
        param, following = options.get(spelling), args[index + 1]
        index += 1
        if param is None or param.is_flag or getattr(param, "count", False) or has_value:
            continue
        if following.partition("=")[0] in options or following == "--help":  # help is no param of its own
            return f"{spelling} is missing its value (the word after it, {following}, is an option): give {spelling} " \
                   f"VALUE{missing_value_hint(spelling)}"
        index += 1  # the value
    last = args[index] if index == len(args) - 1 else ""
    param = options.get(last)  # the last word, an option that takes a value: `--budget $5` reached orch as `--budget`
    if param is not None and not param.is_flag and not getattr(param, "count", False):
        return f"{last} is missing its value: give {last} VALUE{missing_value_hint(last)}"
    return None


def word_after_a_flag(command, args: list[str]) -> str | None:
    """left_over_word for a typer command: None where it takes any number of arguments."""
    arguments = [param for param in command.params if getattr(param, "param_type_name", "") == "argument"]
    if any(param.nargs < 0 for param in arguments):  # a list of arguments takes any word
        return None
    return left_over_word(click_options(command), sum(param.nargs for param in arguments), args)


def _commands_taking(group, option: str):
    """The commands under `group` (as the words that name them) that take `option`; hidden ones are no example."""
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue
        if hasattr(command, "commands"):
            yield from (f"{name} {words}" for words in _commands_taking(command, option))
        elif option in options_by_name(command) or name == "plan" and option in _plan_options():
            yield name


@functools.cache
def _plan_options() -> dict:
    """`orch plan`'s options, which its own parser reads (orchestrator/cli/plan.py): its command declares none."""
    from orchestrator.cli.argv_forms import argparse_options
    from orchestrator.cli.plan import parser

    return argparse_options(parser())


def owned_elsewhere(group, option: str, command_path: str) -> str | None:
    """An unknown option that other commands take, said to be theirs (every one of them), or None: `orch estimate
    --set` was offered --method, the nearest spelling, which sets nothing like it. `command_path`: `orch estimate`."""
    root, _, this = command_path.partition(" ")  # `scheduler run`, as _commands_taking names it
    takers = sorted(words for words in _commands_taking(group, option) if words != this)
    if not takers:
        return None
    return f"No such option: {option} for `{command_path}`; it is an option of " \
           f"{listed(f'`{root} {words}`' for words in takers)}"


class OneLineUsageErrors(TyperGroup):
    """click's own usage mistakes (a flag that is not a number, an unknown option or command, a missing argument) as
    the one `error: ...` line every other mistake gets, with the help to read, instead of a framed block. (Typer
    carries its own copy of click, whose exceptions derive from the public typer.TyperException.)

    A group lists its commands in rich's panels, whole; a command's own help is click's plain one (the app's
    `rich_markup_mode=None`): rich's option panel gave the help text a 24-column strip at 80 columns, a flag's `--no-`
    name a column of its own, and `orch estimate --help` ran to 110 lines, where `orch plan --help` reads as this."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rich_markup_mode = DEFAULT_MARKUP_MODE

    def resolve_command(self, ctx, args):
        """The subcommand, with its options as orch spells them (argv_forms: `--lora_r`, `--compile false`), once
        they give no option twice (repeated_option)."""
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:  # for a usage error click raises with no context (`--json=maybe`): its command's help,
            # kept where main reads it (the top group's), so `orch catalog gpus` is named, not the group it is under
            ctx.find_root().command.resolved_path = f"{ctx.command_path} {name}"
        if command is not None and not hasattr(command, "commands"):  # a group checks its own subcommand
            try:
                typed, rest = rest, spelled_as_orch(click_options(command), rest)
                why = option_as_value(command, rest) or repeated_option(command, rest) or \
                    word_after_a_flag(command, typed)  # as typed: an option named as the user wrote it
            except UnreadableOptions as unreadable:
                why = str(unreadable)
            if why:
                raise UsageError(why, ctx=command.make_context(name, [], parent=ctx, resilient_parsing=True))
        return name, command, rest

    def parse_args(self, ctx, args):
        """The group's own options; one of a command's given before that command (`orch --json runs`) is said to go
        after it, where click offered only the group's (`Possible options: --version`)."""
        try:
            return super().parse_args(ctx, args)
        except NoSuchOption as exc:
            named = next((arg for arg in args if arg in self.commands), None)  # the command given, if any
            takers = sorted(_commands_taking(self, exc.option_name), key=lambda words: words.split()[0] != named)
            if not takers:
                raise
            raise UsageError(f"{exc.message}: options go after the command, as in `{ctx.command_path} {takers[0]} "
                             f"{exc.option_name}`", ctx=ctx) from None

    def get_params(self, ctx):
        """The group's options, typer's --install-completion among them, refusing in one line a shell startup file
        it cannot edit."""
        params = super().get_params(ctx)
        for param in params:
            if param.name == "install_completion" and getattr(param.callback, "func", None) is not _install_completion:
                param.callback = functools.partial(_install_completion, param.callback)
        return params

    def _main_shell_completion(self, ctx_args, prog_name, complete_var=None):
        """What the shell's completion script asks for; a request it could not have made is one line, exit 2, never a
        traceback into the user's shell: COMP_CWORD that is no number (click's int() raised), or an instruction
        typer does not have (its "Invalid completion instruction.", exit 1)."""
        from typer._completion_shared import Shells

        variable = complete_var or f"_{prog_name}_COMPLETE".replace("-", "_").upper()
        asked = os.environ.get(variable)
        kind, _, shell = (asked or "").partition("_")
        if asked and (kind not in ("source", "complete") or shell not in {known.value for known in Shells}):
            print_error(f"{variable}={checks.short_repr(asked)} is no completion request orch answers: the completion "
                        "script `orch --show-completion` prints sets it (as complete_bash, source_zsh, ...).")
            sys.exit(USAGE_ERROR_EXIT_CODE)
        try:
            super()._main_shell_completion(ctx_args, prog_name, complete_var)
        except ValueError:
            print_error(f"shell completion: COMP_CWORD={checks.short_repr(os.environ.get('COMP_CWORD', ''))} is no "
                        "word number; the completion script `orch --show-completion` prints sets it.")
            sys.exit(USAGE_ERROR_EXIT_CODE)

    def _whose_option(self, exc, ctx, message: str) -> str:
        return owned_elsewhere(self, exc.option_name, ctx.command_path) or message

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        # for fail(): a refusal made before the command has read its --json (an option's callback, a usage error)
        _command_line["json"] = json_wanted(list(kwargs.get("args") or (args[0] if args else None) or sys.argv[1:]))
        try:
            return self._main(*args, standalone_mode=standalone_mode, **kwargs)
        finally:
            _command_line["json"] = False

    def _main(self, *args, standalone_mode: bool = True, **kwargs):
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
            path = ctx.command_path if ctx else getattr(self, "resolved_path", "orch")
            if isinstance(exc, NoSuchOption) and ctx is not None:
                message = self._whose_option(exc, ctx, message)
            fail(f"{message}{' See' if message.endswith('?') else '; see'} `{path} --help`.")
            sys.exit(exc.exit_code)
        except typer.Abort:  # Ctrl-C where a command does not catch it (click turns it into Abort), a prompt's too:
            print_error("interrupted.")  # exit 130, as every Ctrl-C orch handles itself ("aborted.", 1, said less)
            sys.exit(130)
        sys.exit(exit_code if isinstance(exit_code, int) else 0)


def _install_completion(install, ctx, param, value):
    """typer's install, which edits the shell's startup file (~/.bashrc, ~/.zshrc, fish's or PowerShell's profile):
    one that is not UTF-8, is a folder, or cannot be written ended in a traceback."""
    try:
        return install(ctx, param, value)
    except UnicodeDecodeError:
        raise fail("--install-completion: your shell's startup file (~/.bashrc for bash, ~/.zshrc for zsh) is not "
                   "UTF-8: fix it, or add what `orch --show-completion` prints to it by hand.") from None
    except OSError as exc:
        where = f" {checks.printable(str(exc.filename))}" if exc.filename else ""
        raise fail(f"--install-completion cannot write{where} ({exc.strerror or exc}): fix that, or add what "
                   "`orch --show-completion` prints to your shell's startup file by hand.") from None
