"""python -m trainer CONFIG [--output DIR] [--set KEY=VALUE ...] [--resume auto] [--auto-fit]

Exit codes (trainer/status.py): 0 ok, 1 error, 2 bad config, 3 out of memory, 4 budget stopped, 5 preempted
(SIGTERM), 130 stopped by Ctrl-C (the first writes a checkpoint; a second stops at once).
metrics.json in the output folder says the same, and more.
"""

import argparse
import errno
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.units import usd_text
from trainer.checkpoint_folders import STATE_FILE, step_folders, unresumed_problem
from trainer.config import check_model_and_tokenizer, read_folders
from trainer.data_sources import dataset_problems
from trainer.heartbeat import HEARTBEAT_FILE, FolderInUse, Heartbeat
from trainer.job_file import load_config
from trainer.jsonio import write_json_atomic
from trainer.meter import (
    EXIT_MARGIN_S,
    BudgetMeter,
    BudgetSpent,
    end_process_at_budget,
    process_start_time,
    write_budget_stop,
)
from trainer.run_env import RUN_ID, RUN_ID_ENV
from trainer.status import TrainStatus


def _resume_command(args, output: Path) -> str:
    """What continues this run: `orch resume RUN` for a run orch launched (its record carries the spend and what is
    left of the budget; `orch train` by hand trained outside it, with the whole budget again), else `orch train`."""
    if RUN_ID.fullmatch(run_id := os.environ.get(RUN_ID_ENV, "")):
        return f"orch resume {run_id}"
    overrides = "".join(f" --set {shlex.quote(v)}" for v in args.set)
    return f"orch train {shlex.quote(args.config)} --output {shlex.quote(str(output))} --resume auto{overrides}"


def _fresh_folder(output: str | None) -> Path | None:
    """--output as a launcher gives it before the trainer could check it (the job file itself refused): only a folder
    not made yet under one that is, or an empty one, is taken for the launcher's own; a user's, holding files, or a
    path under a missing folder is not written into."""
    path = Path(output) if output else None
    try:
        if path is None or not path.parent.is_dir() or path.is_symlink():
            return None
        return path if not path.exists() or path.is_dir() and not any(path.iterdir()) else None
    except OSError:  # a path the system cannot look at (a name too long): no folder of the launcher's
        return None


def _record_refusal(output: Path, message: str) -> None:
    """A run orch launched keeps why its trainer refused the job in metrics.json, as a refusal found once the data is
    read does: its launcher may not be its parent (a detached launch, the scheduler, a cloud VM) and reads the end
    from there, so a job checked before the model loads ended as `failed` with no reason, not `bad_config`."""
    try:  # refused before its --output was checked (the job file itself): the launcher gave a folder of its own
        output.mkdir(parents=True, exist_ok=True)
        write_json_atomic(output / "metrics.json", {"status": TrainStatus.BAD_CONFIG, "message": message})
    except OSError:  # the folder the refusal may be about: stderr has said it
        pass


def _stopped_before_training(output: Path, meter: BudgetMeter, message: str) -> int:
    """The budget ran out before the training loop started (nothing left, or, inside another program, the imports
    outlasted it): the run still ends as every run does, with metrics.json and exit code 4, so the launcher records
    what it cost."""
    BudgetMeter.disarm_alarm()
    write_budget_stop(output, meter.spent_usd(), message)
    return TrainStatus.BUDGET_STOPPED.exit_code


def _unwritable_output(exc: OSError, output: Path) -> bool:
    """Whether a write into the output folder failed: one named there, or a full or read-only disk (a full disk's
    error names no file)."""
    if exc.filename is None:
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
    return Path(exc.filename).resolve().is_relative_to(output.resolve())


class _OneLineParser(argparse.ArgumentParser):
    """A mistake on the command line in one line, as every other refusal (argparse printed its usage first, four
    lines for `--resume bogus`)."""

    def error(self, message: str):
        self.exit(TrainStatus.BAD_CONFIG.exit_code, f"error: {message}; see `{self.prog} --help`.\n")


def main(argv: list[str] | None = None, started_at: float | None = None, own_process: bool = False) -> int:
    """`started_at`: when the budget starts counting (the process's start when run as `python -m trainer`).
    `own_process`: the trainer is this process, so the budget alarm may end it wherever it strikes before the loop
    (trainer/meter.py); a program that calls main (a test) is never ended by it."""
    parser = _OneLineParser(prog="python -m trainer", description="Fine-tune one model on one GPU (or CPU).")
    parser.add_argument("config", help="job YAML (the same file `orch plan` reads)")
    parser.add_argument("--output", help="output folder (default: outputs/<job name>)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--resume", default="never", choices=["auto", "never"],
                        help="auto: continue from the output folder's latest checkpoint, if any")
    parser.add_argument("--auto-fit", action="store_true",
                        help="on out-of-memory, retry at half the micro-batch, then with checkpointing")
    args = parser.parse_args(argv)
    heartbeat, checked_output, refused = Heartbeat(), None, False
    try:
        if args.output is not None and not args.output.strip():  # '' was read as no --output: the default's
            raise UserError("--output is empty: give a folder, or leave --output out for outputs/<job name>.")
        config, base_dir = load_config(args.config, args.set)
        check_model_and_tokenizer(config, base_dir)
        output = checks.output_folder(args.output or Path("outputs") / config.name, "--output",
                                      parents=args.output is None, read_folders=read_folders(config, base_dir))
        try:
            check_run_folder(output)
            unresumed = unresumed_problem(output, args.resume)
        except PermissionError as exc:  # a traceback, and orch recorded the run failed ("killed?")
            raise UserError(f"cannot read {exc.filename or output} ({exc.strerror}): make the output folder "
                            "readable.") from None
        if unresumed:
            raise UserError(f"cannot train: {unresumed}.")
        checked_output = output
        heartbeat.start(output)
        meter = BudgetMeter(config.usd_per_hour, config.budget_usd, started_at or time.time())
        if own_process:
            end_process_at_budget(output)
        if meter.would_pass(EXIT_MARGIN_S):  # nothing left to spend: say so without loading torch
            return _stopped_before_training(output, meter, f"the budget of {usd_text(config.budget_usd)} was spent "
                                                           "before training could start")
        # a local dataset orch cannot read (`--set dataset=/etc/passwd`), said before torch's seconds of imports; the
        # hub's are asked in the loop's own check, as it trains
        if problems := dataset_problems(config, base_dir, reach_hub=False):
            raise UserError(f"cannot train: {'; '.join(problems)}.")
        # bitsandbytes warns on CPUs with AVX512-BF16 that the optional `kernels` package is missing; its fallback is
        # the path orch tests (known-issues.md), so the note is only noise in a run's log
        logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
        meter.arm_alarm()  # importing torch and friends takes seconds, and far longer on a loaded machine
        try:
            from trainer.loop import FineTune  # torch and friends load only once the config is good

            result = FineTune(config, output, base_dir, resume=args.resume, auto_fit=args.auto_fit,
                              started_at=meter.started_at).run()
            refused = result["status"] == TrainStatus.BAD_CONFIG  # its metrics.json, for launchers, is all it leaves
        except BudgetSpent as exc:  # inside another program: the alarm struck before the loop took the meter over
            return _stopped_before_training(output, meter, str(exc))
        except OSError as exc:  # metrics.json, or a step's record, not writable: the folder went read-only or full
            if not _unwritable_output(exc, output):
                raise
            print(checks.one_line(f"error: the output folder {output} could not be written ({exc.strerror or exc}): "
                                  "make it writable or free space, then resume (--resume auto)"), file=sys.stderr)
            return TrainStatus.ERROR.exit_code
    except UserError as exc:
        print(f"error: {checks.one_line(str(exc))}", file=sys.stderr)
        refused = True
        if isinstance(exc, FolderInUse):  # the folder is the live trainer's: nothing is recorded in it
            return TrainStatus.BAD_CONFIG.exit_code
        if os.environ.get(RUN_ID_ENV) and (where := checked_output or _fresh_folder(args.output)):
            _record_refusal(where, str(exc))
        return TrainStatus.BAD_CONFIG.exit_code
    except RuntimeError as exc:  # a path resolved through a loop of links where no check looked: said as orch says it
        if (loop := checks.symlink_loop_from(exc)) is None:
            raise
        print(f"error: {checks.one_line(str(loop))}", file=sys.stderr)
        refused = True
        return TrainStatus.BAD_CONFIG.exit_code
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once; every checkpoint written before is whole
        print(checks.printable(f"\nstopped. Resume from the last checkpoint with: {_resume_command(args, output)}"),
              file=sys.stderr)
        return TrainStatus.INTERRUPTED.exit_code
    finally:  # a job refused before any work leaves nothing behind (but what its launcher reads)
        heartbeat.stop(clear=refused)
    if result["status"] in (TrainStatus.INTERRUPTED, TrainStatus.PREEMPTED):  # Ctrl-C, or a SIGTERM (`kill`)
        what = "interrupted" if result["status"] == TrainStatus.INTERRUPTED else _said(TrainStatus.PREEMPTED)
        print(checks.printable(f"{what} at step {result['steps']}, checkpoint saved. Resume with: "
                                f"{_resume_command(args, output)}"), file=sys.stderr)
    elif result["status"] != TrainStatus.OK:
        message = result.get("message") or ""  # one line; metrics.json keeps it whole
        label = "error" if result["status"] == TrainStatus.BAD_CONFIG else _said(TrainStatus(result["status"]))
        print(checks.one_line(f"{label}: {message}").rstrip(": "), file=sys.stderr)
    # a refusal once the data is read is said in its one line, as those before it are; its metrics.json is for the
    # launchers, and `orch train` removes it (no summary then points at a file that is gone)
    if result["status"] != TrainStatus.BAD_CONFIG:
        print(summary_line(result, output), flush=True)
    return TrainStatus(result["status"]).exit_code


# what only an orch run leaves in its output folder, so a folder holding one is an earlier run's (to resume, or to be
# refused for its checkpoints): what the trainer writes from its first step on (steps.jsonl, progress.json, then
# checkpoints/latest) and at its end or refusal (metrics.json), and the start time a hand-launched cloud task keeps
# there (orchestrator/launch/sky_task.py run_script STARTED_AT_MARKER)
RUN_MARKS = ("checkpoints/latest", ".orch_started_at")  # names only orch gives
# names other tools give too (a Hugging Face Trainer's metrics.json, another logger's steps.jsonl): an earlier run's
# only with the fields orch writes in them, else the folder is another program's and was written over
WRITTEN_MARKS = {"metrics.json": ("status",), "progress.json": ("step", "planned_steps"),
                 "steps.jsonl": ("step", "step_time_s", "sequences")}
MARK_READ_BYTES = 1 << 20  # a mark's first MiB holds its first record: a larger file is read no further
# what a run can leave before any mark: the log a cloud run's script tees there as the trainer starts (sky_task.py
# run_script), the trainer's heartbeat, the trackers' folders and W&B's run id (trainer/trackers.py), a crash's
# traceback. A user's folder can hold these names too (`wandb/` in any project W&B logs from), so they prove no run:
# they are only not in the way.
EARLY_RUN_FILES = ("train.log", HEARTBEAT_FILE, "wandb", "wandb-run-id", "tensorboard", "error.log")


def check_run_folder(output: Path) -> None:
    """The trainer fills its output folder and replaces its own files there: a folder that already holds something
    else (`--output .` in a project, `--output /`) is refused, so no run ever writes among a user's files. An
    earlier run's folder is known by orch's own marks, not by a name any project may have (`wandb/`, `final/`)."""
    if not output.is_dir() or any((output / name).exists() for name in RUN_MARKS) or any(
            _orch_wrote(output / name, fields) for name, fields in WRITTEN_MARKS.items()) or any(
            (folder / STATE_FILE).is_file() for folder in step_folders(output)):  # a checkpoint orch saved
        return
    if any(entry.name not in EARLY_RUN_FILES for entry in output.iterdir()):
        raise UserError(f"--output '{output}' holds files of its own: give a new or empty folder, or an earlier "
                        "run's output.")


def _orch_wrote(path: Path, fields: tuple[str, ...]) -> bool:
    """The file (a JSON object; for .jsonl, its first line) holds the fields orch writes there. Only a file is read:
    a pipe named metrics.json waited for a writer for ever."""
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as handle:
            text = handle.read(MARK_READ_BYTES).decode("utf-8", errors="replace")
        record = json.loads(text.lstrip().split("\n", 1)[0] if path.suffix == ".jsonl" else text)
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or not all(field in record for field in fields):
        return False
    # every metrics.json orch writes, a refusal's too, says how the run ended, in orch's words
    return "status" not in fields or record["status"] in {status.value for status in TrainStatus}


def _said(status: TrainStatus) -> str:
    """A status as the run's log says it: the trainer cannot tell a spot preemption from `orch stop` (both send
    SIGTERM), and a stopped run's log saying `preempted` read as a cloud's doing."""
    return "stopped by SIGTERM (a spot preemption or `orch stop`)" if status is TrainStatus.PREEMPTED else status.value


def _eval_step_text(result: dict) -> str:
    """Where the perplexity shown is not the end's, the step it was measured at: a run stopped before its first
    eval after training showed the untrained model's perplexity as if it were the result."""
    curve = result.get("eval_curve") or []
    if not curve or curve[-1][0] == result.get("steps"):
        return ""
    return " (before training)" if curve[-1][0] == 0 else f" (at step {curve[-1][0]})"


def summary_line(result: dict, output: Path) -> str:
    """The end of a run, readable at 80 columns: what it did, then how fast and what this session cost (folded
    between items where it would pass 80), then where its metrics are. Steps and tokens are the run's; speed and cost
    are this process's own, from its start: a resumed run's earlier sessions are not in them, so they are said to be
    this session's (orch's run summary below it gives the run's, all sessions together: 349 tok/s sat unlabelled
    above its 396)."""
    width_chars = 80
    parts = [_said(TrainStatus(result["status"]))]
    if result.get("steps") is not None:
        parts.append(f"{result['steps']} step{'' if result['steps'] == 1 else 's'}")
    if result.get("train_tokens"):
        parts.append(f"{result['train_tokens']:,} tokens")
    if result.get("eval_perplexity"):
        parts.append(f"eval perplexity {result['eval_perplexity']:.2f}{_eval_step_text(result)}")
    session = [f"{result['tokens_per_s']:,.0f} tok/s" if result.get("tokens_per_s") else None,
               usd_text(result["cost_usd"]) if result.get("cost_usd") is not None else None]
    if said := " and ".join(part for part in session if part):
        parts.append(f"{said} this session")
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + len(", ") + len(part) < width_chars:  # room for the comma a fold adds
            lines[-1] += f", {part}"
        else:
            lines[-1] += ","
            lines.append(f"  {part}")
    lines.append(f"metrics: {output / 'metrics.json'}")
    return "\n".join(checks.printable(line) for line in lines)  # a folder named by a user: escapes written out


if __name__ == "__main__":
    sys.exit(main(started_at=process_start_time(), own_process=True))
