"""Options shared by several commands, declared once so their names, types and help never drift apart."""

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperOption

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.units import plain_number
from orchestrator.cli.errors import fail
from orchestrator.cli.limits import (
    DURATION_FORMS,
    SECONDS_FORMS,
    USD_FORMS,
    hours_amount,
    reading_number,
    seconds_amount,
    usd_amount,
    whole_amount,
)
from orchestrator.planner import OBJECTIVES

_typer_type_column = getattr(TyperOption, "display_type_rich", None)  # typer 0.29's; another typer: left as it is


def _type_column(option: TyperOption, ctx: typer.Context) -> str | None:
    """What help prints beside an option: its value's kind (`USD`, `<str>`), and nothing for a flag, which takes no
    value; typer printed its Python type there (`--yes -y <bool>`, `--version <bool>`), read as a value to give."""
    return None if option.is_flag else _typer_type_column(option, ctx)


if _typer_type_column is not None:
    TyperOption.display_type_rich = _type_column  # every command's help, typer's own --help and the root's included


def _path_parser(keep_slash: bool) -> Callable[[str | Path], Path | str]:
    """A path as typed, except that a blank one stays text: typer's own conversion reads '' as Path('.'), so
    `--out ''` wrote into the working folder and other flags' errors quoted '.' where the user typed ''. Where a file
    may be asked for (`keep_slash`), one typed with a trailing slash stays text too: Path drops the slash, and
    `--out new/` wrote a file named `new`."""
    def parse(text: str | Path) -> Path | str:
        if isinstance(text, str) and (not text.strip() or (keep_slash and text.endswith(("/", os.sep)))):
            return text
        return Path(text)

    return parse


def _refusing_kept_text(what: str, slash_refused: bool) -> Callable[..., Any]:
    """The callback that refuses a path the parser kept as text: '' (or spaces), or (`slash_refused`) a file's typed
    as a folder. An option that takes a file or a folder gets the slashed text, to judge by what it writes."""

    def refuse(ctx: typer.Context, param: typer.CallbackParam, value):
        given = value if isinstance(value, (list, tuple)) else (value,)
        kept = [item for item in given if isinstance(item, str)]
        if ctx.resilient_parsing or not kept:
            return value
        name = param.opts[0] if param.param_type_name == "option" else f"the {param.name} argument"
        if not all(item.strip() for item in kept):
            raise fail(f"{name} is empty: give {what}.")
        if slash_refused:
            raise fail(f"{name} {checks.short_repr(kept[0])} ends with a slash, which names a folder: give {what}.")
        return value

    return refuse


def path_option(*param_decls: str, what: str = "a file name", **kwargs) -> Any:
    """typer.Option for a path: '' or spaces are refused as empty, not read as the working folder; a file's path
    ending with a slash is refused, and one for a file or a folder comes as text (`str`, not Path) for the command
    to judge (`orch simulate --generate N --out x/`)."""
    file, folder = "file" in what, "folder" in what
    return typer.Option(*param_decls, parser=_path_parser(keep_slash=file),
                        callback=_refusing_kept_text(what, slash_refused=file and not folder), **kwargs)


def path_argument(what: str = "a file name", **kwargs) -> Any:
    """typer.Argument for a path: '' or spaces are refused as empty, not read as the working folder."""
    return typer.Argument(parser=_path_parser(keep_slash=False),
                          callback=_refusing_kept_text(what, slash_refused=False), **kwargs)


def _read_with(read: Callable[[str, str], float]) -> Callable[..., Any]:
    """The callback that reads an amount option's text with `read` (orch plan's own), naming the flag: one mistake,
    one message, whichever command took it."""

    def convert(ctx: typer.Context, param: typer.CallbackParam, value: str | None):
        if value is None or ctx.resilient_parsing:
            return value
        try:
            return read(value, param.opts[0])
        except UserError as exc:
            raise fail(str(exc)) from None

    return convert


def usd_option(*param_decls: str, help: str, zero_allowed: bool = False, **kwargs) -> Any:
    """typer.Option for US dollars, written as people write them (USD_FORMS); `help` gets the forms appended."""
    read = functools.partial(usd_amount, zero_allowed=zero_allowed)
    return typer.Option(*param_decls, parser=str, callback=_read_with(read), metavar="USD",
                        help=f"{help} Write {USD_FORMS}.", **kwargs)


def hours_option(*param_decls: str, help: str, **kwargs) -> Any:
    """typer.Option for a duration in hours, a unit allowed (DURATION_FORMS); `help` gets the forms appended."""
    return typer.Option(*param_decls, parser=str, callback=_read_with(hours_amount), metavar="HOURS",
                        help=f"{help} Write {DURATION_FORMS}.", **kwargs)


def whole_option(*param_decls: str, **kwargs) -> Any:
    """typer.Option for a whole number, read as `orch plan` reads its `--top` (whole_amount: the digits 0-9, where
    typer's int also took `١٢` and `1_000`)."""
    return typer.Option(*param_decls, parser=str, callback=_read_with(whole_amount), metavar="INTEGER", **kwargs)


def _plain_amount(text: str, flag: str) -> float:
    """A number from a flag, with the digits 0-9 only (plain_number), as money and durations are read."""
    with reading_number(flag, f"{flag} {checks.short_repr(text)} is not a number: write it with the digits 0-9 (no _ "
                              "or , between them)."):
        return plain_number(text.strip())


def number_option(*param_decls: str, **kwargs) -> Any:
    """typer.Option for a number, read as money and durations are (the digits 0-9, where typer's float also took
    `٠٫١` and `0.1_0`); the caller checks the range."""
    return typer.Option(*param_decls, parser=str, callback=_read_with(_plain_amount), metavar="FLOAT", **kwargs)


def seconds_option(*param_decls: str, help: str, **kwargs) -> Any:
    """typer.Option for a duration in seconds, a unit allowed (SECONDS_FORMS); `help` gets the forms appended."""
    return typer.Option(*param_decls, parser=str, callback=_read_with(seconds_amount), metavar="SECONDS",
                        help=f"{help} Write {SECONDS_FORMS}.", **kwargs)


JobArgument = Annotated[Path, path_argument("a job file", help="Job YAML (see examples/).")]
DeadlineOption = Annotated[float | None, hours_option(help="Time until the job must be done.")]
ObjectiveOption = Annotated[str, typer.Option(help=f"Rank by {' or '.join(OBJECTIVES)}.")]
# `--provider` too: `orch catalog offers` took one name as --provider, and plan and launch refused that spelling
ProvidersOption = Annotated[str | None, typer.Option("--providers", "--provider",
                                                     help="Comma list of allowed providers (e.g. local,runpod).")]
SpotOption = Annotated[bool, typer.Option("--spot/--no-spot", help="Allow spot (interruptible) offers.")]
MaxUsdPerHourOption = Annotated[float | None, usd_option(help="Most to pay per GPU-hour, on top of the budget.")]
# how an owned card is priced: `orch plan` takes it (on its own parser), and a launch of what it planned must too
LocalCostOption = Annotated[str | None, typer.Option(help="amortized or marginal (default: the hardware file's).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
