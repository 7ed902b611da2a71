"""The `orch` program. `orch plan` goes straight to its own lean parser (orchestrator/cli/plan.py), so answering a
plan never pays for the typer app's imports; every other command goes through the typer app."""

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["plan"]:
        from orchestrator.cli.plan import run

        sys.exit(run(argv[1:]))
    from orchestrator.cli.main import app

    app()


if __name__ == "__main__":
    main()
