"""`orch`: plan fine-tunes across your own GPUs and the clouds. Run `orch --help`."""

import typer

from orchestrator.cli import catalog
from orchestrator.cli.bench import bench_command, calibrate_command, report_command
from orchestrator.cli.estimate import estimate
from orchestrator.cli.import_config import import_command
from orchestrator.cli.launch import launch_command
from orchestrator.cli.plan import plan_command
from orchestrator.cli.queue import cancel_command, queue_command, scheduler_app, submit_command
from orchestrator.cli.runs import logs_command, resume_command, runs_command, stop_command
from orchestrator.cli.simulate import simulate_command
from orchestrator.cli.train import train_command

app = typer.Typer(help="orch: does a fine-tune fit, how long will it take, what will it cost here versus there.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(catalog.app, name="catalog")
app.command("estimate")(estimate)
app.command("plan")(plan_command)
app.command("import")(import_command)
app.command("train")(train_command)
app.command("launch")(launch_command)
app.command("runs")(runs_command)
app.command("logs")(logs_command)
app.command("stop")(stop_command)
app.command("resume")(resume_command)
app.command("submit")(submit_command)
app.command("queue")(queue_command)
app.command("cancel")(cancel_command)
app.add_typer(scheduler_app, name="scheduler")
app.command("simulate")(simulate_command)
app.command("bench")(bench_command)
app.command("calibrate")(calibrate_command)
app.command("report")(report_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
