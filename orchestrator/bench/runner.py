"""Run a sweep's points on this machine, each in its own trainer process (an out-of-memory point cannot poison the
next), skipping points already done. Out-of-memory points are results too."""

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from orchestrator.bench.results import ResultStore
from orchestrator.bench.sweep import Point, Sweep
from orchestrator.home import orch_home
from trainer.offline_names import is_built_offline

POINT_TIMEOUT_S = 3600
RESULT_METRICS = ("status", "message", "tokens_per_s", "step_time_s", "peak_vram_gib", "nvml_peak_used_gib",
                  "gpu_util_mean_pct", "gpu_power_mean_w", "mfu", "train_tokens", "steps", "gpu", "gpu_vram_gib",
                  "driver_version",
                  "versions", "precision", "padding_fraction", "auto_fit_attempts")


def run_point(point: Point, sweep: str, target: str, work_dir: Path) -> dict:
    """Train one point and return its result row (never raises for a failed point: the row says how it failed)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_file = work_dir / "config.yaml"
    config_file.write_text(yaml.safe_dump({**point.config, "name": point.point_id}))
    output = work_dir / "output"
    started = time.time()
    try:
        done = subprocess.run([sys.executable, "-m", "trainer", str(config_file), "--output", str(output), "--resume",
                               "auto"], capture_output=True, text=True, timeout=POINT_TIMEOUT_S)
        tail = (done.stdout + done.stderr)[-2000:]
    except subprocess.TimeoutExpired:
        tail = f"timed out after {POINT_TIMEOUT_S} s"
    metrics_file = output / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {
        "status": "error", "message": f"no metrics.json: {tail}"}
    row = {"point_id": point.point_id, "sweep": sweep, "target": target, "created_at": time.time(),
           "wall_s": time.time() - started, "config": point.config,
           "random_weights": is_built_offline(point.config["model"]),
           **{key: metrics.get(key) for key in RESULT_METRICS}}
    row["metrics"] = metrics
    return row


def run_sweep(sweep: Sweep, store: ResultStore, target: str = "local", work_root: Path | None = None) -> list[dict]:
    """Every point not yet done, with a progress bar and ETA; returns the rows this run produced."""
    work_root = work_root or orch_home() / "bench" / sweep.name
    done = store.done()
    todo = [p for p in sweep.points if p.point_id not in done]
    rows = []
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:  # stdout stays clean for --json
        bar = progress.add_task(f"{sweep.name}: {len(done & {p.point_id for p in sweep.points})} done before",
                                total=len(todo))
        for point in todo:
            progress.update(bar, description=point.label)
            row = run_point(point, sweep.name, target, work_root / point.point_id)
            store.save(row)
            rows.append(row)
            progress.advance(bar)
    return rows
