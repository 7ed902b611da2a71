"""`orch train CONFIG`: run the trainer here, in its own process, so orch itself never imports torch."""

import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from orchestrator.cli.errors import user_errors
from trainer.config import load_config


@user_errors
def train_command(
    config: Annotated[Path, typer.Argument(help="Job YAML (the same file `orch plan` reads).")],
    output: Annotated[Path | None, typer.Option(help="Output folder (default: outputs/<job name>).")] = None,
    set_values: Annotated[list[str] | None, typer.Option("--set", help="Override a key: KEY=VALUE (repeatable).")]
    = None,
    resume: Annotated[str, typer.Option(help="auto: continue from the output's latest checkpoint.")] = "never",
    auto_fit: Annotated[bool, typer.Option("--auto-fit", help="On out-of-memory, retry at half the micro-batch, "
                                                              "then with checkpointing.")] = False,
) -> None:
    """Fine-tune on this machine's GPU (or CPU); writes metrics.json, checkpoints and the adapter or model."""
    config_values, _ = load_config(config, set_values or [])  # a bad job fails here, before a process starts
    checks.output_folder(output or Path("outputs") / config_values.name, "--output", parents=output is None)
    if resume not in ("auto", "never"):
        raise UserError(f"--resume must be auto or never, got {resume!r}.")
    # `--flag=value` and `--` before the file: a value or a file name that starts with `-` (`--output -inf`) stays
    # a value, not an option the trainer's parser refuses with its own usage block
    command = [sys.executable, "-m", "trainer", f"--resume={resume}"]
    if output is not None:
        command.append(f"--output={output}")
    command += [f"--set={value}" for value in set_values or []]
    if auto_fit:
        command.append("--auto-fit")
    command += ["--", str(config)]
    raise typer.Exit(_run_forwarding_signals(command))


def _run_forwarding_signals(command: list[str]) -> int:
    """Run the trainer in its own session and pass each Ctrl-C on to it: the first makes it checkpoint and exit 130,
    a second stops it at once. (subprocess.call would kill the trainer on the first, before its checkpoint.)"""
    process = subprocess.Popen(command, start_new_session=True)
    # its own session keeps the terminal's Ctrl-C from reaching it twice; a hang-up or SIGTERM here is passed on as
    # SIGTERM (checkpoint, then exit), so closing the terminal leaves no trainer running on its own
    forwarded = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM, signal.SIGHUP: signal.SIGTERM}
    previous = {mine: signal.signal(mine, lambda signum, frame: process.send_signal(forwarded[signum]))
                for mine in forwarded}
    try:
        return process.wait()
    finally:
        for mine, handler in previous.items():
            signal.signal(mine, handler)
