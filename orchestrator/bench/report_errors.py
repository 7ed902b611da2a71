"""The estimator's error per GPU and method, in sample and cross-validated, for tokens/s and memory.

Calibration corrects the estimator by one factor per GPU and method (an efficiency for speed; for memory the report
uses the same multiplicative form). So, from the uncalibrated (analytic) estimate of each point:
- in sample: the factor is fitted on the group's own points (what a calibration file fitted on them gives);
- leave one GPU out: the factor comes from the same method on the other GPUs only, as for a card never measured;
- leave one source out: from the other sources' points (same GPU and method, else same method), as when one lab's
  setup differs from everyone else's.
Each error is the median of |prediction / measured - 1| over the group's points; a dash where no other group exists.
"""

import math
import statistics

from orchestrator.bench.report_points import METRICS, EstimatePoint


def _factor(points: list[EstimatePoint]) -> float | None:
    """Geometric mean of measured / analytic: the one multiplicative correction with least squared log error."""
    if not points:
        return None
    return math.exp(statistics.fmean(math.log(p.measured / p.analytic) for p in points))


def _median_error(points: list[EstimatePoint], factor_for) -> float | None:
    errors = []
    for p in points:
        factor = factor_for(p)
        if factor is not None:
            errors.append(abs(p.analytic * factor / p.measured - 1))
    return statistics.median(errors) if errors else None


def error_rows(points: list[EstimatePoint]) -> list[dict]:
    """One row per (metric, GPU, method): points, origins, today's error, in sample, leave-one-GPU/source-out."""
    rows = []
    usable = [p for p in points if p.measured > 0 and p.analytic > 0 and p.metric in METRICS]
    for metric, gpu, method in sorted({(p.metric, p.gpu, p.method) for p in usable}):
        group = [p for p in usable if (p.metric, p.gpu, p.method) == (metric, gpu, method)]
        same_method = [p for p in usable if (p.metric, p.method) == (metric, method)]

        in_sample, other_gpus = _factor(group), _factor([q for q in same_method if q.gpu != gpu])

        def other_source(p, group=group, same_method=same_method):
            mine = [q for q in group if q.source != p.source]
            return _factor(mine or [q for q in same_method if q.source != p.source])

        rows.append({
            "metric": metric, "gpu": gpu, "method": method, "points": len(group),
            "origins": sorted({p.origin for p in group}),
            "current": statistics.median(abs(p.estimated / p.measured - 1) for p in group),
            "in_sample": _median_error(group, lambda p, f=in_sample: f),
            "leave_gpu_out": _median_error(group, lambda p, f=other_gpus: f),
            "leave_source_out": _median_error(group, other_source),
        })
    return rows
