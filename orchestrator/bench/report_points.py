"""Every number the estimator can be checked against, as one kind of row: (origin, source, gpu, method, metric,
estimated, measured), plus the uncalibrated estimate the cross-validation starts from.

Origins: `measured` (orch's own sweeps and launched runs, with GPU, driver and date) and `published` (the calibration
data from public sources, gpu_catalog/data/published_measurements.csv, with its citation; skipped when the file is
not there). `estimate_points` is the one adapter to change when the estimator or that file changes shape.
"""

import csv
import datetime
from dataclasses import dataclass

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import DATA_DIR, cpu_gpu, find_gpu
from gpu_catalog.models import get_model
from orchestrator.bench.calibrate import observations
from orchestrator.estimator.calibration import NO_CALIBRATION, Calibration
from orchestrator.estimator.memory import estimate_memory
from orchestrator.estimator.settings import settings_from_job
from orchestrator.estimator.speed import estimate_speed
from trainer.config import ConfigError, config_from_dict

PUBLISHED_CSV = DATA_DIR / "published_measurements.csv"
METRICS = ("tokens_per_s", "vram_gib")


@dataclass(frozen=True)
class EstimatePoint:
    origin: str  # measured or published
    source: str  # "sweep tiny-cpu, CPU, driver -, 2026-12-01" or the citation
    gpu: str
    method: str
    metric: str  # tokens_per_s or vram_gib
    estimated: float  # with the current calibration: what orch says today
    measured: float
    analytic: float  # with no calibration: what cross-validation corrects


def _model(name: str):
    try:
        return get_model(name)
    except UserError:
        return None


def _date(timestamp) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d") if timestamp else "-"


def _pairs(model, settings, gpu, calibration: Calibration, tokens_per_s, vram_gib):
    """(metric, estimated, measured, analytic) for whichever of the two were measured."""
    if tokens_per_s:
        yield ("tokens_per_s", estimate_speed(model, settings, gpu, calibration).tokens_per_s, float(tokens_per_s),
               estimate_speed(model, settings, gpu, NO_CALIBRATION).tokens_per_s)
    if vram_gib:
        yield ("vram_gib", estimate_memory(model, settings, gpu, calibration).vram_gib, float(vram_gib),
               estimate_memory(model, settings, gpu, NO_CALIBRATION).vram_gib)


def _published(calibration: Calibration) -> list[EstimatePoint]:
    """Rows of the published-measurements file that name a known GPU and model; none when the file is absent."""
    if not PUBLISHED_CSV.is_file():
        return []
    points = []
    with open(PUBLISHED_CSV, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            gpu, model = find_gpu(row.get("gpu") or ""), _model(row.get("model") or "")
            if gpu is None or model is None:
                continue
            try:
                config = config_from_dict({"max_steps": 1, **{k: _number(v) for k, v in row.items() if k in (
                    "model", "method", "seq_len", "micro_batch", "grad_ckpt", "lora_r") and v not in ("", None)}})
            except ConfigError:
                continue
            source = row.get("citation") or row.get("source") or "published"
            for metric, est, measured, analytic in _pairs(model, settings_from_job(config), gpu, calibration,
                                                          _number(row.get("tokens_per_s")),
                                                          _number(row.get("vram_gib") or row.get("peak_vram_gib"))):
                points.append(EstimatePoint("published", source, gpu.name, config.method, metric, est, measured,
                                            analytic))
    return points


def _number(text):
    if text in ("", None) or not isinstance(text, str):
        return text
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _run_points(runs: list[dict], calibration: Calibration) -> list[EstimatePoint]:
    points = []
    for run in runs:
        if run["status"] != "ok":
            continue
        gpu = cpu_gpu() if run["gpu"] == "CPU" else find_gpu(run["gpu"])
        model = _model(run["job"].get("model", ""))
        if gpu is None or model is None:
            continue
        config = config_from_dict(run["job"])
        source = f"run {run['run_id']}, {run['gpu']} {run['provider']}, {_date(run['created_at'])}"
        for metric, est, measured, analytic in _pairs(model, settings_from_job(config), gpu, calibration,
                                                      run.get("tokens_per_s"), run.get("peak_vram_gib")):
            points.append(EstimatePoint("measured", source, gpu.name, config.method, metric, est, measured, analytic))
    return points


def estimate_points(rows: list[dict], runs: list[dict], calibration: Calibration) -> list[EstimatePoint]:
    """Sweep rows, launched runs and published measurements, each point estimated with and without calibration."""
    points = []
    for row in rows:
        for o in observations([row]):
            source = (f"sweep {row.get('sweep')}, {row.get('gpu') or '-'}, driver {row.get('driver_version') or '-'}"
                      f", {_date(row.get('created_at'))}")
            for metric, est, measured, analytic in _pairs(o.model, o.settings, o.gpu, calibration, o.tokens_per_s,
                                                          o.vram_gib):
                points.append(EstimatePoint("measured", source, o.gpu.name, o.method, metric, est, measured,
                                            analytic))
    return points + _run_points(runs, calibration) + _published(calibration)
