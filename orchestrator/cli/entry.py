"""The `orch` program. `orch plan` goes straight to its own lean parser (orchestrator/cli/plan.py), so answering a
plan never pays for the typer app's imports; every other command goes through the typer app."""

import os
import sys

MIN_COLUMNS = 40  # narrower, rich's tables raised (COLUMNS=5, a narrow pane) and typer's help printed nothing (0)
MAX_COLUMNS = 1000  # wider, help took 17 s (COLUMNS=10000000) or ran out of memory (99999999999): no screen is


def _usable_columns() -> None:
    """COLUMNS, which rich (orch's tables, typer's help) reads before the terminal, raised to MIN_COLUMNS where it is
    set below that, or where it is unset and the terminal is that narrow (a table or help wider than the pane wraps,
    as the terminal wraps any line), and lowered to MAX_COLUMNS where it is set wider. Set here, before any console
    exists, it holds for every one of them."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns and not (columns.isascii() and columns.isdigit()):  # `abc`, or `٣`, which rich reads as 3
        del os.environ["COLUMNS"]
    width = int(columns) if columns.isascii() and columns.isdigit() else _terminal_columns()
    if width is not None and not MIN_COLUMNS <= width <= MAX_COLUMNS:
        os.environ["COLUMNS"] = str(min(max(width, MIN_COLUMNS), MAX_COLUMNS))


def _terminal_columns() -> int | None:
    """The width of the first of stdout, stderr and stdin that is a terminal, as rich finds it (`orch runs | less`
    still draws for the terminal stderr is); None where none is."""
    for fd in (1, 2, 0):
        try:
            return os.get_terminal_size(fd).columns
        except OSError:
            continue
    return None


def main() -> None:
    _usable_columns()
    from orchestrator.cli.pipe import final_exit, stdout_file

    stdout_at_start = stdout_file()
    try:
        _command(sys.argv[1:])
    except SystemExit as exc:
        raise final_exit(exc, stdout_at_start) from None


def _command(argv: list[str]) -> None:
    """Runs the command; it always ends by SystemExit (typer's app does, and `orch plan` is made to)."""
    if argv[:1] == ["plan"]:
        from orchestrator.cli.plan import run

        sys.exit(run(argv[1:], _option_owners))
    from orchestrator.cli.main import app

    app()


def _option_owners(option: str) -> str | None:
    """Which other commands take an option given to plan: typer and every command are loaded for that mistake only."""
    import typer.main

    from orchestrator.cli.errors import owned_elsewhere
    from orchestrator.cli.main import app

    return owned_elsewhere(typer.main.get_command(app), option, "orch plan")


if __name__ == "__main__":
    main()
