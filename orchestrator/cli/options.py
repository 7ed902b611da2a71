"""Options shared by several commands, declared once so their names, types and help never drift apart."""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.errors import fail
from orchestrator.planner import OBJECTIVES


def _path_or_blank(text: str | Path) -> Path | str:
    """A path as typed, except that a blank one stays text: typer's own conversion reads '' as Path('.'), so
    `--out ''` wrote into the working folder and other flags' errors quoted '.' where the user typed ''."""
    return text if isinstance(text, str) and not text.strip() else Path(text)


def _refusing_blank(what: str) -> Callable[..., Any]:
    """The callback that refuses a path option or argument given as '' (or spaces), naming the flag."""

    def refuse(ctx: typer.Context, param: typer.CallbackParam, value):
        given = value if isinstance(value, (list, tuple)) else (value,)
        if not ctx.resilient_parsing and any(isinstance(item, str) for item in given):  # _path_or_blank kept it
            name = param.opts[0] if param.param_type_name == "option" else f"the {param.name} argument"
            raise fail(f"{name} is empty: give {what}.")
        return value

    return refuse


def path_option(*param_decls: str, what: str = "a file name", **kwargs) -> Any:
    """typer.Option for a path: '' or spaces are refused as empty, not read as the working folder."""
    return typer.Option(*param_decls, parser=_path_or_blank, callback=_refusing_blank(what), **kwargs)


def path_argument(what: str = "a file name", **kwargs) -> Any:
    """typer.Argument for a path: '' or spaces are refused as empty, not read as the working folder."""
    return typer.Argument(parser=_path_or_blank, callback=_refusing_blank(what), **kwargs)


JobArgument = Annotated[Path, path_argument("a job file", help="Job YAML (see examples/).")]
DeadlineOption = Annotated[float | None, typer.Option(help="Hours until the job must be done.")]
ObjectiveOption = Annotated[str, typer.Option(help=f"Rank by {' or '.join(OBJECTIVES)}.")]
ProvidersOption = Annotated[str | None, typer.Option(help="Comma list of allowed providers (e.g. local,runpod).")]
SpotOption = Annotated[bool, typer.Option("--spot/--no-spot", help="Allow spot (interruptible) offers.")]
MaxUsdPerHourOption = Annotated[float | None, typer.Option(help="Most to pay per GPU-hour, on top of the budget.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
