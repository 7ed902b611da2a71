"""The estimator's error per GPU and method and per origin, today, in sample and cross-validated, for tokens/s and
memory.

Each point carries its estimates (orchestrator/bench/report_points.py): today's (the current calibration file), and
those of the calibration `orch calibrate` fits from every bench row and published point (in sample), from all but the
point's GPU (leave one GPU out: a card never measured) and from all but its source (calibrate's leave one source out).
An error is |estimate / measured - 1|; a group's is the median over its points, a dash where no point has that
estimate (these fits leave launched runs out, which `orch calibrate` fits only where no sweep measured their GPU
and method, so launched runs have today's error only).
The per-origin summary is calibrate's own error_summary of the same errors: the figures `orch calibrate` prints.
"""

import statistics

from orchestrator.bench.calibrate import error_summary
from orchestrator.bench.report_points import METRICS, EstimatePoint

COLUMNS = ("estimated", "in_sample", "leave_gpu_out", "leave_source_out")
_SUMMARY_METRIC = {"tokens_per_s": "tokens_per_s", "vram_gib": "vram"}  # error_summary's names


def point_error(p: EstimatePoint, column: str = "estimated") -> float | None:
    """estimate / measured - 1 for one of the point's estimates; None where it has none."""
    estimate = getattr(p, column)
    return None if estimate is None else estimate / p.measured - 1


def _usable(points: list[EstimatePoint]) -> list[EstimatePoint]:
    return [p for p in points if p.measured > 0 and p.metric in METRICS]


def _median_abs(points: list[EstimatePoint], column: str) -> float | None:
    errors = [abs(e) for p in points if (e := point_error(p, column)) is not None]
    return statistics.median(errors) if errors else None


def error_rows(points: list[EstimatePoint]) -> list[dict]:
    """One row per (metric, GPU, method): points, origins, and the median |error| of each estimate."""
    usable = _usable(points)
    rows = []
    for metric, gpu, method in sorted({(p.metric, p.gpu, p.method) for p in usable}):
        group = [p for p in usable if (p.metric, p.gpu, p.method) == (metric, gpu, method)]
        rows.append({"metric": metric, "gpu": gpu, "method": method, "points": len(group),
                     "origins": sorted({p.origin for p in group}), "current": _median_abs(group, "estimated"),
                     **{column: _median_abs(group, column) for column in COLUMNS[1:]}})
    return rows


def origin_summary(points: list[EstimatePoint]) -> dict[str, dict]:
    """Per estimate (today, in sample, leave GPU out, leave source out): calibrate's error_summary, keyed
    "ORIGIN METRIC" (median |error|, share within 10% and 20%)."""
    usable = _usable(points)
    summary = {}
    for column in COLUMNS:
        table = [{"origin": p.origin, **{f"{name}_error": point_error(p, column) if p.metric == metric else None
                                         for metric, name in _SUMMARY_METRIC.items()}} for p in usable]
        summary[column] = error_summary(table)
    return summary
