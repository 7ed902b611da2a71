"""`orch spend [--by month|provider|job] [--json]`: what every recorded run has cost, recoveries included, and what
the runs still going have cost so far. Runs are refreshed first, as `orch runs` does: a run whose trainer died unseen
counted as still going, growing without end, while `orch runs` recorded its end."""

from typing import Annotated

import typer

from gpu_catalog.errors import UserError
from orchestrator.cli import display
from orchestrator.cli.errors import user_errors
from orchestrator.cli.options import JsonFlag
from orchestrator.cli.runs import refreshed_runs
from orchestrator.home import orch_home
from orchestrator.spend import GROUPS, spend_by


@user_errors
def spend_command(
    by: Annotated[str, typer.Option(help=f"Group by {', '.join(GROUPS)}.")] = "month",
    as_json: JsonFlag = False,
) -> None:
    """Sum the spend of every run by month, provider or job."""
    by = by.strip().lower()  # `--by Provider`: choices are read in any case, as a job file's are
    if by not in GROUPS:
        raise UserError(f"--by must be one of {', '.join(GROUPS)}, got {by!r}.")
    rows = spend_by(refreshed_runs(), by)
    if as_json:  # dollars unrounded, as `orch runs --json` has them: a CPU run's $0.00004 is not 0.0
        display.print_json({"by": by, "total_usd": sum(r.usd for r in rows),
                            "rows": [{by: r.key, "runs": r.runs, "usd": r.usd, "active_runs": r.active_runs}
                                     for r in rows]})
    else:
        display.show_spend_rows(by, rows, orch_home())
