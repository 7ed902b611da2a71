"""Options shared by several commands, declared once so their names, types and help never drift apart."""

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.planner import OBJECTIVES

JobArgument = Annotated[Path, typer.Argument(help="Job YAML (see examples/).")]
DeadlineOption = Annotated[float | None, typer.Option(help="Hours until the job must be done.")]
ObjectiveOption = Annotated[str, typer.Option(help=f"Rank by {' or '.join(OBJECTIVES)}.")]
ProvidersOption = Annotated[str | None, typer.Option(help="Comma list of allowed providers (e.g. local,lambda).")]
SpotOption = Annotated[bool, typer.Option("--spot/--no-spot", help="Allow spot (interruptible) offers.")]
MaxUsdPerHourOption = Annotated[float | None, typer.Option(help="Most to pay per GPU-hour, on top of the budget.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
