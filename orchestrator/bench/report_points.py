"""Every number the estimator can be checked against, as one kind of row: (origin, source, point, gpu, method,
metric, measured, estimated), with what the calibration `orch calibrate` fits would estimate in sample and
cross-validated.

Origins: `measured` (orch's own sweeps and launched runs, with GPU, driver and date) and `published` (the calibration
data from public sources, gpu_catalog/data/published_measurements.csv, with its source; skipped when the file is
not there). The published file is read by orchestrator/bench/published.py and turned into estimator inputs by
calibrate.published_observations, as `orch calibrate` and benchmarks/score_estimator.py do: one reader of that file,
and every estimate, fit and error here is calibrate's own (point_errors, fit, cross_validated_errors), so the report
and `orch calibrate` print the same figures for the same points.
"""

import datetime
import functools
import logging
from collections import defaultdict
from dataclasses import dataclass

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import cpu_gpu, find_gpu
from gpu_catalog.models import get_model
from orchestrator.bench.calibrate import (
    Observation,
    cpu_threads_used,
    cross_validated_errors,
    fit,
    observations,
    point_errors,
    published_observations,
    rows_tokens_per_s,
)
from orchestrator.bench.published import PUBLISHED_CSV, load_points
from orchestrator.estimator.calibration import Calibration
from orchestrator.estimator.memory import estimate_memory
from orchestrator.estimator.settings import settings_from_job
from orchestrator.estimator.speed import estimate_speed
from trainer.config import config_from_dict

METRICS = ("tokens_per_s", "vram_gib")
UNITS = {"tokens_per_s": "tokens/s", "vram_gib": "GiB"}
# point_errors' keys for each metric: (measured, estimated)
_ERROR_KEYS = {"tokens_per_s": ("tokens_per_s", "est_tokens_per_s"), "vram_gib": ("vram_gib", "est_vram_gib")}


@dataclass(frozen=True)
class EstimatePoint:
    origin: str  # measured or published
    source: str  # "sweep tiny-cpu, CPU, driver -, 2026-12-01" or the published source's id
    point: str  # what was run: model, method, sequence length, micro-batch, GPU
    gpu: str
    method: str
    metric: str  # tokens_per_s (tokens/s) or vram_gib (GiB)
    estimated: float  # with the current calibration: what orch says today
    measured: float
    # with `orch calibrate`'s fit of every bench row and published point (in sample), of all but this point's GPU,
    # and of all but its source (calibrate's leave-one-source-out); None for launched runs, which calibrate never fits
    in_sample: float | None = None
    leave_gpu_out: float | None = None
    leave_source_out: float | None = None


def _model(name: str):
    try:
        return get_model(name)
    except UserError:
        return None


def _date(timestamp) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d") if timestamp else "-"


def _published() -> list[Observation]:
    """The published points calibrate fits (usable rows on a catalog GPU); none when the file is absent."""
    return published_observations(load_points(PUBLISHED_CSV)) if PUBLISHED_CSV.is_file() else []


def _leave_gpu_out(obs: tuple[Observation, ...]) -> list[dict]:
    """point_errors of each observation under calibrate's fit of the other GPUs' points: a card never measured."""
    scored: list[dict | None] = [None] * len(obs)
    for gpu in sorted({o.gpu.name for o in obs}):
        held = [i for i, o in enumerate(obs) if o.gpu.name == gpu]
        rows = point_errors([obs[i] for i in held], fit([o for o in obs if o.gpu.name != gpu]))
        for i, row in zip(held, rows, strict=True):
            scored[i] = row
    return scored


def _by_source(obs: tuple[Observation, ...]) -> list[dict]:
    """calibrate's cross_validated_errors, one row per observation in order: it scores one source at a time, that
    source's points in the order given, each row naming its source."""
    rows = defaultdict(list)
    for row in cross_validated_errors(list(obs)):
        rows[row["source"]].append(row)
    return [rows[o.source].pop(0) for o in obs]


@functools.cache
def _fitted(obs: tuple[Observation, ...]) -> tuple[list[dict], list[dict], list[dict]]:
    """Per observation, in order: point_errors under calibrate's fit of every point (in sample), of all but its GPU,
    and of all but its source. The fits are the slow part of a report (seconds) and depend on the points alone, so a
    report built again in one process on the same points (the tests build many) fits once."""
    # tens of seconds on a small machine, where the report had said nothing until it was written
    logging.getLogger("orch.progress").info("scoring the estimator on %d measured points, fitted with each GPU and "
                                            "each source left out in turn...", len(obs))
    return point_errors(list(obs), fit(list(obs))), _leave_gpu_out(obs), _by_source(obs)


def _fitted_points(labelled: list[tuple[Observation, str]], calibration: Calibration) -> list[EstimatePoint]:
    """The bench rows and published points, each estimated today, in sample and cross-validated, by calibrate."""
    obs = tuple(o for o, _ in labelled)
    today = point_errors(list(obs), calibration)
    in_sample, gpu_out, source_out = _fitted(obs)
    points = []
    for (o, source), now, fitted, other_gpus, other_sources in zip(labelled, today, in_sample, gpu_out, source_out,
                                                                   strict=True):
        for metric, (measured_key, estimated_key) in _ERROR_KEYS.items():
            if now[measured_key]:
                points.append(EstimatePoint(
                    o.origin, source, o.label, o.gpu.name, o.method, metric, now[estimated_key], now[measured_key],
                    fitted[estimated_key], other_gpus[estimated_key], other_sources[estimated_key]))
    return points


def _run_points(runs: list[dict], calibration: Calibration) -> list[EstimatePoint]:
    """Launched runs with today's estimate (orch calibrate does not fit them)."""
    points = []
    for run in runs:
        if run["status"] != "ok":
            continue
        gpu = cpu_gpu(cpu_threads_used(run["metrics"] or {})) if run["gpu"] == "CPU" else find_gpu(run["gpu"])
        model = _model(run["job"].get("model", ""))
        if gpu is None or model is None:
            continue
        config = config_from_dict(run["job"])
        settings = settings_from_job(config)
        source = f"run {run['run_id']}, {run['gpu']} {run['provider']}, {_date(run['created_at'])}"
        point = f"{config.model} {config.method} seq {config.seq_len} x{config.micro_batch} on {gpu.name}"
        if run.get("tokens_per_s"):
            points.append(EstimatePoint("measured", source, point, gpu.name, config.method, "tokens_per_s",
                                        estimate_speed(model, settings, gpu, calibration).tokens_per_s,
                                        rows_tokens_per_s(float(run["tokens_per_s"]),
                                                          (run.get("metrics") or {}).get("padding_fraction"))))
        if run.get("peak_vram_gib"):
            points.append(EstimatePoint("measured", source, point, gpu.name, config.method, "vram_gib",
                                        estimate_memory(model, settings, gpu, calibration).vram_gib,
                                        float(run["peak_vram_gib"])))
    return points


def estimate_points(rows: list[dict], runs: list[dict], calibration: Calibration) -> list[EstimatePoint]:
    """Sweep rows, published measurements and launched runs, each estimated with the current calibration; the first
    two also with the calibration orch calibrate fits from them, in sample and cross-validated."""
    labelled = [(o, f"sweep {row.get('sweep')}, {row.get('gpu') or '-'}, driver {row.get('driver_version') or '-'}"
                    f", {_date(row.get('created_at'))}") for row in rows for o in observations([row])]
    labelled += [(o, o.source) for o in _published()]
    return _fitted_points(labelled, calibration) + _run_points(runs, calibration)
