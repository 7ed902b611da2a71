"""`orch`: plan fine-tunes across your own GPUs and the clouds. Run `orch --help`."""

from importlib import metadata
from typing import Annotated

import typer

from orchestrator.cli import catalog, plan
from orchestrator.cli.bench import bench_command, calibrate_command, report_command
from orchestrator.cli.errors import OneLineUsageErrors, owned_elsewhere
from orchestrator.cli.estimate import estimate
from orchestrator.cli.import_config import import_command
from orchestrator.cli.launch import launch_command
from orchestrator.cli.queue import cancel_command, queue_command, scheduler_app, submit_command
from orchestrator.cli.runs import logs_command, pull_command, resume_command, runs_command, stop_command
from orchestrator.cli.simulate import simulate_command
from orchestrator.cli.spend import spend_command
from orchestrator.cli.train import train_command

app = typer.Typer(help="orch: does a fine-tune fit, how long will it take, what will it cost here versus there.",
                  no_args_is_help=True, pretty_exceptions_enable=False, cls=OneLineUsageErrors, rich_markup_mode=None)


def _show_version(value: bool) -> None:
    if value:
        print(f"orch {metadata.version('orch')}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                               help="Show orch's version and exit.")] = False) -> None:
    """orch: does a fine-tune fit, how long will it take, what will it cost here versus there."""
app.add_typer(catalog.app, name="catalog")
app.command("estimate")(estimate)


@app.command("plan", context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
             add_help_option=False)
def plan_command(ctx: typer.Context) -> None:
    """Rank every local and cloud target for a job under a budget and an optional deadline (`orch plan --help`)."""
    raise typer.Exit(plan.run(ctx.args, lambda option: owned_elsewhere(ctx.find_root().command, option, "orch plan")))


app.command("import")(import_command)
app.command("train")(train_command)
app.command("launch")(launch_command)
app.command("runs")(runs_command)
app.command("logs")(logs_command)
app.command("stop")(stop_command)
app.command("resume")(resume_command)
app.command("pull")(pull_command)
app.command("submit")(submit_command)
app.command("queue")(queue_command)
app.command("cancel")(cancel_command)
app.add_typer(scheduler_app, name="scheduler")
app.command("simulate")(simulate_command)
app.command("spend")(spend_command)
app.command("bench")(bench_command)
app.command("calibrate")(calibrate_command)
app.command("report")(report_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
