"""The `orch` program. `orch plan` goes straight to its own lean parser (orchestrator/cli/plan.py), so answering a
plan never pays for the typer app's imports; every other command goes through the typer app."""

import os
import sys

MIN_COLUMNS = 40  # narrower, rich's tables raised (COLUMNS=5) and typer's help printed nothing (COLUMNS=0)


def _usable_columns() -> None:
    """COLUMNS as the terminal libraries read it, raised to MIN_COLUMNS where it is set below that (or is no number):
    a table or help wider than the pane wraps, as the terminal wraps any line."""
    columns = os.environ.get("COLUMNS")
    if columns is not None and not (columns.strip().isdigit() and int(columns) >= MIN_COLUMNS):
        os.environ["COLUMNS"] = str(MIN_COLUMNS)


def main() -> None:
    _usable_columns()
    argv = sys.argv[1:]
    if argv[:1] == ["plan"]:
        from orchestrator.cli.plan import run

        sys.exit(run(argv[1:]))
    from orchestrator.cli.main import app

    app()


if __name__ == "__main__":
    main()
