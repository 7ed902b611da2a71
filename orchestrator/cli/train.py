"""`orch train CONFIG`: run the trainer here, in its own process, so orch itself never imports torch."""

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from orchestrator import home
from orchestrator.cli.errors import user_errors
from orchestrator.cli.options import path_argument, path_option
from trainer.config import read_folders
from trainer.job_file import load_config
from trainer.status import TrainStatus


@user_errors
def train_command(
    config: Annotated[Path, path_argument("a job file", help="Job YAML (the same file `orch plan` reads).")],
    output: Annotated[Path | None, path_option("--output", what="a folder name",
                                               help="Output folder (default: outputs/<job name>).")] = None,
    set_values: Annotated[list[str] | None, typer.Option("--set", help="Override a key: KEY=VALUE (repeatable).")]
    = None,
    resume: Annotated[str, typer.Option(help="auto: continue from the output's latest checkpoint.")] = "never",
    auto_fit: Annotated[bool, typer.Option("--auto-fit", help="On out-of-memory, retry at half the micro-batch, "
                                                              "then with checkpointing.")] = False,
) -> None:
    """Fine-tune on this machine's GPU (or CPU); writes metrics.json, checkpoints and the adapter or model."""
    config_values, base_dir = load_config(config, set_values or [])  # a bad job fails here, before a process starts
    folder = home.output_folder(output or Path("outputs") / config_values.name, "--output", parents=output is None,
                                  read_folders=read_folders(config_values, base_dir))
    chosen = resume.strip().lower()  # `--resume AUTO`: choices are read in any case, as a job file's are
    if chosen not in ("auto", "never"):
        raise UserError(f"--resume must be auto or never, got {checks.short_repr(resume)}.")
    # `--flag=value` and `--` before the file: a value or a file name that starts with `-` (`--output -inf`) stays
    # a value, not an option the trainer's parser refuses with its own usage block
    command = [sys.executable, "-m", "trainer", f"--resume={chosen}"]
    if output is not None:
        command.append(f"--output={output}")
    command += [f"--set={value}" for value in set_values or []]
    if auto_fit:
        command.append("--auto-fit")
    command += ["--", str(config)]
    entries_before, made = _folder_state(folder)
    exit_code = _run_forwarding_signals(command)
    if exit_code == TrainStatus.BAD_CONFIG.exit_code:
        _clear_refusal(folder, entries_before, made)
    raise typer.Exit(exit_code)


def _folder_state(folder: Path) -> tuple[set[str] | None, list[Path]]:
    """What the output folder holds before the trainer starts (None: it cannot be listed), and the folders the
    trainer will make for it (the folder and its missing parents, deepest first)."""
    made = checks.missing_folders(folder)
    try:
        return (set() if made else set(os.listdir(folder))), made
    except OSError:
        return None, made


def _clear_refusal(folder: Path, entries_before: set[str] | None, made: list[Path]) -> None:
    """A job the trainer refuses once it reads the data (a record it cannot use, a file that packs into too few
    sequences) ends with a bad_config metrics.json in the output folder, for the launchers that read it. Here the
    refusal's one line said it all, and a refusal leaves no files: that metrics.json goes, and so does each folder
    made for it once empty. Only when metrics.json is all the trainer added: a folder that was there before stays,
    and so does everything else in it."""
    try:
        added = set(os.listdir(folder)) - entries_before if entries_before is not None else None
    except OSError:  # no folder: refused before it was made
        return
    if added != {"metrics.json"}:
        return
    (folder / "metrics.json").unlink()
    for path in made:
        try:
            path.rmdir()
        except OSError:  # not empty: something else is in it now
            return


def _run_forwarding_signals(command: list[str]) -> int:
    """Run the trainer in its own session and pass each Ctrl-C on to it: the first makes it checkpoint and exit 130,
    a second stops it at once. (subprocess.call would kill the trainer on the first, before its checkpoint.)"""
    process = subprocess.Popen(command, start_new_session=True, preexec_fn=_ends_with(os.getpid()))
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


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _ends_with(parent_pid: int):
    """What the trainer's process runs before it starts: on Linux, the kernel sends it SIGTERM (checkpoint, then
    exit) when `orch train` dies, even by SIGKILL, which no handler here sees: the trainer went on alone in its own
    session, with nobody to forward a Ctrl-C. A parent already gone by then is caught by its pid. Elsewhere, None."""
    if not sys.platform.startswith("linux"):
        return None

    def set_up() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)

    return set_up
