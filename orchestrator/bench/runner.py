"""Run a sweep's points on this machine, each in its own trainer process (an out-of-memory point cannot poison the
next), skipping points already done. Out-of-memory points are results too.

A point runs in rounds of `measured_steps` timed steps until its tokens/s is stable (orchestrator/bench/stability.py)
or `max_measured_steps` were timed; the row's tokens/s is the median of every timed step, with its spread (its MFU
is of that median), and a point that never settled says so in `message`. Each round is a fresh process (the
trainer has no "stop when stable"), so each leaves out its own warm-up. A point the trainer refuses as bad config is
recorded as `bad_config` with the trainer's reason, and, as an error, is not done: the next run tries it again.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from gpu_catalog import checks
from orchestrator.bench.results import ResultStore
from orchestrator.bench.stability import MIN_STEPS_FOR_INTERVAL, Stability, step_rates, summarize_rates
from orchestrator.bench.sweep import Point, Sweep
from orchestrator.home import orch_home
from trainer.offline_names import is_built_offline
from trainer.status import TrainStatus

POINT_TIMEOUT_S = 3600
RESULT_METRICS = ("status", "message", "tokens_per_s", "step_time_s", "peak_vram_gib", "nvml_peak_used_gib",
                  "gpu_util_mean_pct", "gpu_power_mean_w", "mfu", "train_tokens", "steps", "gpu", "gpu_vram_gib",
                  "driver_version",
                  "versions", "precision", "padding_fraction", "auto_fit_attempts")


def _train(config: dict, work_dir: Path, cpu_threads: int | None = None) -> tuple[dict, Path]:
    """One trainer process; (its metrics, its output folder). Never raises for a failed run. `cpu_threads` fixes
    torch's CPU threads: on a shared CPU, threads that spin-wait against other processes made one tiny point
    swing tenfold between steps (measured here: 2 threads 15-160 tok/s, 1 thread 200-340 tok/s, same load)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(cpu_threads), "MKL_NUM_THREADS": str(cpu_threads)} \
        if cpu_threads else None
    work_dir.mkdir(parents=True, exist_ok=True)
    config_file = work_dir / "config.yaml"
    config_file.write_text(checks.dump_yaml(config))
    output = work_dir / "output"
    try:
        done = subprocess.run([sys.executable, "-m", "trainer", str(config_file), "--output", str(output)],
                              capture_output=True, text=True, timeout=POINT_TIMEOUT_S, env=env)
        tail, stderr, exit_code = (done.stdout + done.stderr)[-2000:], done.stderr, done.returncode
    except subprocess.TimeoutExpired:
        tail, stderr, exit_code = f"timed out after {POINT_TIMEOUT_S} s", "", None
    metrics_file = output / "metrics.json"
    if metrics_file.is_file():
        return json.loads(metrics_file.read_text()), output
    if exit_code == TrainStatus.BAD_CONFIG.exit_code:  # refused before training: its one `error: ...` line says why
        said = next((line for line in reversed(stderr.splitlines()) if line.startswith("error: ")), tail)
        return {"status": TrainStatus.BAD_CONFIG.value, "message": said.removeprefix("error: ").strip()}, output
    return {"status": TrainStatus.ERROR.value, "message": f"no metrics.json: {tail}"}, output


def run_point(point: Point, sweep: str, target: str, work_dir: Path, warmup_steps: int = 1,
              measured_steps: int | None = None, max_measured_steps: int | None = None,
              stable_within: float = 0.05, cpu_threads: int | None = None) -> dict:
    """Train one point until its tokens/s is stable and return its result row (never raises for a failed point:
    the row says how it failed)."""
    # a measurement is of fresh processes only: what an earlier, killed or other-database run of this point left
    # behind would otherwise be resumed (no step trained) and its steps read as this run's
    shutil.rmtree(work_dir, ignore_errors=True)
    measured_steps = measured_steps or max(1, point.config.get("max_steps", 2) - warmup_steps)
    max_measured_steps = max(max_measured_steps or measured_steps, measured_steps)
    started, rates, rounds = time.time(), [], 0
    while True:
        config = {**point.config, "name": point.point_id, "max_steps": warmup_steps + measured_steps,
                  "timing_warmup_steps": warmup_steps}
        metrics, output = _train(config, work_dir / f"round-{rounds}", cpu_threads)
        rounds += 1
        if metrics.get("status") != "ok":
            break
        rates += step_rates(output / "steps.jsonl", warmup_steps)
        stability = summarize_rates(rates)
        if stability is None or stability.is_stable(stable_within) or len(rates) >= max_measured_steps:
            break
    row = {"point_id": point.point_id, "sweep": sweep, "target": target, "created_at": time.time(),
           "wall_s": time.time() - started, "config": point.config,
           "random_weights": is_built_offline(point.config["model"]),
           "cpu_threads": metrics.get("cpu_threads") or cpu_threads,  # what a CPU run trained on (calibrate's peak)
           **{key: metrics.get(key) for key in RESULT_METRICS}}
    stability = summarize_rates(rates) if metrics.get("status") == "ok" else None
    if stability is not None:
        last_round = metrics.get("tokens_per_s")
        # the trainer's MFU is of the last round's mean rate, which one stalled step drags down: this one is of the
        # median the row reports (MFU is proportional to tokens/s)
        if metrics.get("mfu") is not None and last_round:
            row["mfu"] = metrics["mfu"] * stability.tokens_per_s / last_round
        row.update(tokens_per_s=stability.tokens_per_s, tokens_per_s_last_round=last_round,
                   tokens_per_s_spread=stability.spread, tokens_per_s_interval=stability.interval,
                   timed_steps=stability.timed_steps, rounds=rounds, stable=stability.is_stable(stable_within))
        if not row["stable"]:
            row["message"] = unstable_message(stability, stable_within)
    row["metrics"] = metrics
    return row


def unstable_message(stability: Stability, stable_within: float) -> str:
    """Why a point's tokens/s is not stable: too few timed steps for an interval (it read "median +-4% ... wider
    than 50%" of 3 steps), or an interval wider than the sweep allows."""
    if stability.timed_steps < MIN_STEPS_FOR_INTERVAL:
        return (f"unstable: {stability.timed_steps} timed steps, fewer than the {MIN_STEPS_FOR_INTERVAL} a median's "
                "interval needs: raise max_measured_steps")
    known = f"+-{stability.interval:.0%} (95%)" if stability.interval is not None else "with no interval"
    return (f"unstable: tokens/s median {known} after {stability.timed_steps} timed steps, wider than "
            f"{stable_within:.0%}")


class PointsRemaining(ProgressColumn):
    """The time the sweep's points left take, at the mean time of the points done, counting down from the last one's
    end. rich's TimeRemainingColumn measures the speed of the last 30 s, and a point takes minutes: its ETA stood
    still, or showed -:--:--, between points."""

    def __init__(self, clock=time.monotonic):
        super().__init__()
        self.clock = clock

    def render(self, task: Task) -> Text:
        done, started_at, done_at = task.completed, task.fields.get("started_at"), task.fields.get("done_at")
        if task.total is None or not done or started_at is None or done_at is None:
            return Text("ETA -:--:--", style="progress.remaining")
        left_s = max(0.0, (done_at - started_at) / done * (task.total - done) - (self.clock() - done_at))
        minutes, seconds = divmod(round(left_s), 60)
        return Text(f"ETA {minutes // 60}:{minutes % 60:02d}:{seconds:02d}", style="progress.remaining")


def run_sweep(sweep: Sweep, store: ResultStore, target: str = "local", work_root: Path | None = None) -> list[dict]:
    """Every point not yet done, with a progress bar and ETA; returns the rows this run produced."""
    work_root = work_root or orch_home() / "bench" / sweep.name
    done = store.done()
    todo = [p for p in sweep.points if p.point_id not in done]
    rows = []
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn(), PointsRemaining())
    # stdout stays clean for --json; a log or a pipe gets no bar's last frame. Descriptions are markup: a model path's
    # `[red]` or `:x:` is escaped, not shown styled
    console = Console(stderr=True, emoji=False)
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        bar = progress.add_task(f"{sweep.name}: {len(done & {p.point_id for p in sweep.points})} done before",
                                total=len(todo), started_at=time.monotonic())
        for point in todo:
            progress.update(bar, description=escape(point.label))
            row = run_point(point, sweep.name, target, work_root / point.point_id, sweep.warmup_steps,
                            sweep.measured_steps, sweep.max_measured_steps, sweep.stable_within, sweep.cpu_threads)
            store.save(row)
            rows.append(row)
            progress.update(bar, advance=1, done_at=time.monotonic())
            if not console.is_terminal:  # a log or a pipe: a line a point, where it saw nothing for minutes
                console.print(f"{len(rows)}/{len(todo)} {point.label}: {_outcome(row)}", highlight=False,
                              markup=False, soft_wrap=True)
            if _refused_the_data(row, sweep.dataset):  # every point reads it: each would start a trainer to be told
                break
    return rows


def _outcome(row: dict) -> str:
    """A finished point in a few words: its status, and its tokens/s where it has one, said unstable where the
    sweep's table will say so (the line said `ok` of a point the table then called unstable)."""
    rate = row.get("tokens_per_s")
    unstable = " (unstable, see its row)" if row.get("stable") is False else ""
    return row["status"] + (f", {rate:,.0f} tokens/s{unstable}" if rate else "")


def _refused_the_data(row: dict, dataset: Path | str) -> bool:
    """A point the trainer refused for a fault of the sweep's data file itself (a line that is no JSON record, text
    that is no UTF-8), which every point reads alike: the rest would each pay a trainer's start (10 s on a CPU, more
    with a GPU model) to be refused the same way, so the sweep stops there. A sweep checks only the start of its data
    before it runs (sweep.load_sweep). A refusal that may be the point's own (its columns, its tokenizer, its
    seq_len) stops nothing."""
    # a folder's fault is said of the file in it (`dataset data/x.jsonl line 1: ...` for a sweep's `dataset: data`)
    file_fault = re.compile(rf"dataset {re.escape(str(dataset))}(?:/\S+)? (?:line \d+: not a JSON record|"
                            r"(?:line \d+ )?is not UTF-8 text)")
    return row["status"] == TrainStatus.BAD_CONFIG and bool(file_fault.search(row.get("message") or ""))
