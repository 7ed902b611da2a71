"""Calibration: fit the estimator to measured points, and say how wrong it is before and after, in sample and
cross-validated.

Points come from two origins, kept apart in every output:
- `measured`: orch's own benchmark runs (the user's GPUs, the user's stack);
- `published`: gpu_catalog/data/published_measurements.csv (framework tables and model READMEs, with sources).
Where a GPU and method (or a device kind, for memory) has measured points, they alone are fitted: the user's own
stack wins over anyone else's. Otherwise the published points are, pulled toward the documented defaults.

What is fitted, keeping every other term of the physics as it is:
- speed: the share of dense peak a long, wide micro-batch reaches, per (GPU, method) and per method across GPUs
  (for GPUs without points of their own; fitted from GPU points only, never the CPU's, and from the user's own runs
  only once they span two GPUs); the value that minimises
  the squared log error of tokens/s, by a bounded 1-D search through the estimator itself. Each fit keeps the
  origin of the points that went into it (`measured` or `published`), per GPU and method and per method.
- memory: the CUDA context (GiB) and the allocator slack (share of activations and logits) per device kind, by least
  squares on measured peak minus the estimate's other parts, from points that measured the whole process (NVML /
  nvidia-smi, a card's capacity at the longest context that fit, or on the CPU the process RSS); torch-allocator
  peaks never see the context. Fitted from published points, the "context" is every fixed cost of those stacks that
  orch's breakdown does not name (the reserved-but-unused pool, libraries' kernels), so a plan keeps room for it
  until the user's own runs replace it. From three of the user's own points on, the headroom `fits` keeps: enough
  that the largest remaining under-estimate would still have fitted (other stacks' misses say nothing of that).

The cross-validated error leaves one source out at a time, fits on the rest and scores the held-out source.
"""

import dataclasses
import json
import math
import statistics
import time
from pathlib import Path

from gpu_catalog.checks import short_repr
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import GPU, cpu_gpu, get_gpu, gpu_from_device_name
from gpu_catalog.models import ModelShape, get_model
from gpu_catalog.whole_files import write_text_atomically
from orchestrator.bench.published import PUBLISHED_CSV, PublishedPoint, comparable_vram_gib, load_points
from orchestrator.estimator.calibration import (
    DEFAULT_EFFICIENCY,
    EFFICIENCY_BOUNDS,
    NO_CALIBRATION,
    Calibration,
    device_kind,
    load_calibration,
)
from orchestrator.estimator.memory import ALLOCATOR_SLACK_FRACTION, estimate_memory, memory_overheads
from orchestrator.estimator.settings import settings_from_job
from orchestrator.estimator.speed import estimate_speed
from trainer.config import JobConfig, config_from_dict

CONTEXT_BOUNDS_GIB = (0.3, 2.5)  # what a CUDA process holds before any tensor, across drivers and cards
SLACK_BOUNDS = (0.0, 0.5)
# the headroom `fits` keeps, fitted: at least what run-to-run fragmentation takes (one run cannot show it), at most
# a fifth of the card (beyond that the estimate, not the headroom, needs mending)
HEADROOM_BOUNDS = (0.02, 0.20)
HEADROOM_MIN_POINTS = 3
SEARCH_STEPS = 50
PRIOR_POINTS = 8
MIN_EFFICIENCY_LEVERAGE = 2.0  # the least speed-up, from the lowest share of peak to the highest, a fitted point has
FALLBACK_MIN_MEASURED_GPUS = 2  # the GPUs the user's own runs span before they, not the published points, set the
# share of peak of every GPU without points of its own
WHOLE_PROCESS_MEASURES = ("nvidia-smi", "card", "nvml", "process_rss")


SWEEP_RUNS, LAUNCHED_RUNS = "orch runs", "launched runs"  # the sources of the user's own points


@dataclasses.dataclass(frozen=True)
class Observation:
    """One measured point, ready for the estimator: its inputs, what was measured, and where it comes from."""

    label: str
    gpu: GPU
    method: str
    model: ModelShape
    settings: JobConfig
    tokens_per_s: float | None
    vram_gib: float | None
    source: str = SWEEP_RUNS  # or LAUNCHED_RUNS, or a published source's id
    origin: str = "measured"  # measured (orch's own runs) or published
    vram_measures: str = "nvml"  # nvml / nvidia-smi / card / process_rss (whole process) or allocated / reserved


def cpu_threads_used(row: dict) -> int | None:
    """The threads a CPU run's metrics say it trained on; None (older rows): all the cores."""
    threads = row.get("cpu_threads")
    return threads if type(threads) is int and threads > 0 else None


def row_gpu(row: dict) -> GPU | None:
    """The device a run's metrics name: a CPU on the threads it trained on."""
    name = row.get("gpu") or ""
    if name.startswith("CPU"):
        return cpu_gpu(cpu_threads_used(row))
    return gpu_from_device_name(name, row.get("gpu_vram_gib") or None)  # unmeasured: the card its name says


def measured_vram(row: dict) -> tuple[float | None, str]:
    """(peak GiB, what it measured): NVML's used memory where sampled, else torch's reserved, else the RSS."""
    peak = row.get("peak_vram_gib") or {}
    for value, kind in ((row.get("nvml_peak_used_gib"), "nvml"), (peak.get("reserved"), "reserved"),
                        (peak.get("process_rss"), "process_rss")):
        if value:
            return value, kind
    return None, "nvml"


def measured_vram_gib(row: dict) -> float | None:
    return measured_vram(row)[0]


def rows_tokens_per_s(real_tokens_per_s: float, padding_fraction) -> float:
    """A run's tokens/s in the estimator's unit. The trainer counts real (non-padding) tokens; the estimator counts
    every token of its seq_len rows, padding included (the GPU runs them all, and a plan prices them so): the real
    rate over the share of the rows that is data (1-3% of the H200 sweep's rows were padding). A row that does not say
    (written before it was recorded) counts as full."""
    known = isinstance(padding_fraction, (int, float)) and 0 <= padding_fraction < 1
    return real_tokens_per_s / (1 - padding_fraction) if known else real_tokens_per_s


def observations(rows: list[dict]) -> list[Observation]:
    """orch's own ok runs that the estimator can describe (a known GPU and model shape), their tokens/s counted as the
    estimator counts them (rows_tokens_per_s). An unstable point's tokens/s (a sweep's `stable: false`) is left out,
    its memory kept: fitted, a 3-step CPU rate became every later CPU estimate's `measured` efficiency."""
    found = []
    for row in rows:
        gpu = row_gpu(row)
        if row.get("status") != "ok" or gpu is None:
            continue
        try:  # a row of this machine's database may name a model folder since deleted: not described, as above
            config = config_from_dict(row["config"])
            model = get_model(config.model)
        except UserError:
            continue
        settings = settings_from_job(config)
        vram, kind = measured_vram(row)
        found.append(Observation(label=f"{config.model} {config.method} seq {config.seq_len} x{config.micro_batch}"
                                       f"{' ckpt' if settings.grad_ckpt else ''} on {gpu.name}",
                                 gpu=gpu, method=config.method, model=model, settings=settings,
                                 source=LAUNCHED_RUNS if row.get("sweep") == LAUNCHED_RUNS else SWEEP_RUNS,
                                 tokens_per_s=rows_tokens_per_s(row["tokens_per_s"], row.get("padding_fraction"))
                                 if row.get("tokens_per_s") and row.get("stable", True) else None,
                                 vram_gib=vram, vram_measures=kind))
    return found


def published_observations(points: list[PublishedPoint] | None = None) -> list[Observation]:
    """The published vram and tokens/s points on a catalog GPU (out-of-memory cases fit nothing)."""
    found = []
    for p in load_points() if points is None else points:
        if p.metric == "oom" or not p.gpu:
            continue
        found.append(Observation(
            label=p.label, gpu=get_gpu(p.gpu), method=p.settings.method, model=get_model(p.model),
            settings=settings_from_job(p.settings), tokens_per_s=p.value if p.metric == "tokens_per_s" else None,
            vram_gib=p.value if p.metric == "vram" else None, source=p.source, origin="published",
            vram_measures=p.measures))
    return found


def estimated_vram(o: Observation, calibration: Calibration) -> float:
    """The estimate of what this point measured (see comparable_vram_gib)."""
    return comparable_vram_gib(estimate_memory(o.model, o.settings, o.gpu, calibration).breakdown_gib,
                               o.vram_measures)


def _log_error(obs: list[Observation], calibration: Calibration) -> float:
    return sum(math.log(estimate_speed(o.model, o.settings, o.gpu, calibration).tokens_per_s / o.tokens_per_s) ** 2
               for o in obs)


def _golden_section(error, low: float, high: float) -> float:
    """The minimum of a unimodal function on [low, high]."""
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(SEARCH_STEPS):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if error(a) < error(b):
            high = b
        else:
            low = a
    return (low + high) / 2


def fit_efficiency(obs: list[Observation], gpu_name: str, method: str) -> float:
    return _golden_section(lambda e: _log_error(obs, Calibration(efficiency={gpu_name: {method: e}})),
                           *EFFICIENCY_BOUNDS)


def fit_method_efficiency(obs: list[Observation], method: str) -> float:
    """One peak share for a method across GPUs (Hopper and later scaled as in calibration.py)."""
    return _golden_section(lambda e: _log_error(obs, Calibration(method_efficiency={method: e})), *EFFICIENCY_BOUNDS)


def fit_memory(obs: list[Observation]) -> dict[str, float] | None:
    """Least squares for measured = rest + context + slack * (activations + logits), over whole-process peaks;
    None with fewer than two points. With HEADROOM_MIN_POINTS or more, also the headroom `fits` keeps on this kind
    of device: enough that the largest under-estimate among the runs would still have fitted."""
    points = []
    for o in obs:
        if o.vram_gib is None or o.vram_measures not in WHOLE_PROCESS_MEASURES:
            continue
        parts = estimate_memory(o.model, o.settings, o.gpu).breakdown_gib
        dynamic = parts["activations"] + parts["logits"]
        rest = sum(parts.values()) - parts["cuda_context"] - ALLOCATOR_SLACK_FRACTION * dynamic
        points.append((dynamic, o.vram_gib - rest, rest))
    if len(points) < 2:
        return None
    n = len(points)
    mean_x, mean_y = sum(x for x, _, _ in points) / n, sum(y for _, y, _ in points) / n
    var_x = sum((x - mean_x) ** 2 for x, _, _ in points)
    slack = sum((x - mean_x) * (y - mean_y) for x, y, _ in points) / var_x if var_x > 0 else ALLOCATOR_SLACK_FRACTION
    slack = min(max(slack, SLACK_BOUNDS[0]), SLACK_BOUNDS[1])
    context = min(max(mean_y - slack * mean_x, CONTEXT_BOUNDS_GIB[0]), CONTEXT_BOUNDS_GIB[1])
    fitted = {"context_gib": context, "slack_fraction": slack}
    if n >= HEADROOM_MIN_POINTS:
        under = max((y + rest) / (rest + context + slack * x) - 1 for x, y, rest in points)
        fitted["headroom_fraction"] = min(max(under / (1 + under), HEADROOM_BOUNDS[0]), HEADROOM_BOUNDS[1])
    return fitted


def _shrunk(fitted: float, group: list[Observation], prior: float) -> float:
    """A fit from published points only, pulled toward the documented default as if the default were PRIOR_POINTS
    points of its own: two points from one stack do not move a GPU's estimate far, forty do. The user's own runs are
    taken as they are."""
    if any(o.origin == "measured" for o in group):
        return fitted
    return (len(group) * fitted + PRIOR_POINTS * prior) / (len(group) + PRIOR_POINTS)


def _preferred(group: list[Observation]) -> list[Observation]:
    """The user's own sweeps where there are any (each point's rate timed until stable, nothing else running on
    purpose), else the runs they launched (a whole run's mean rate, however loaded the machine: four demo runs on a
    busy CPU fitted its LoRA share to the bound, 0.05, and a sweep's point went from -28% to -89%), else the
    published points."""
    measured = [o for o in group if o.origin == "measured"]
    return [o for o in measured if o.source != LAUNCHED_RUNS] or measured or group


def _fallback_group(group: list[Observation]) -> list[Observation]:
    """The points a method's share of peak on GPUs without points of their own is fitted from: the user's own runs
    (their sweeps where there are any, else their launched runs: _preferred) where they span
    FALLBACK_MIN_MEASURED_GPUS GPUs, else the published points. Three runs on one H200 had moved
    every other GPU's estimate, labelled `measured`, though nothing had run on them: one card's share of its peak
    (its memory bandwidth against its FLOPs) says little of another's. Empty where neither is there: the documented
    default stays."""
    preferred = _preferred(group)
    if _basis(preferred) == "published" or len({o.gpu.name for o in preferred}) >= FALLBACK_MIN_MEASURED_GPUS:
        return preferred
    return [o for o in group if o.origin == "published"]


def _basis(group: list[Observation]) -> str:
    return "measured" if any(o.origin == "measured" for o in group) else "published"


def tells_efficiency(o: Observation) -> bool:
    """Whether the point's speed depends on the share of peak enough to fit it: its estimate at the highest share
    is at least MIN_EFFICIENCY_LEVERAGE times that at the lowest. A tiny model on a large GPU is bound by kernel
    launches, not FLOPs: fitted, it pushed the share to a bound (1.0) and every real model on that GPU 60% faster."""
    low, high = (estimate_speed(o.model, o.settings, o.gpu, Calibration(efficiency={o.gpu.name: {o.method: e}}))
                 .tokens_per_s for e in EFFICIENCY_BOUNDS)
    return high >= MIN_EFFICIENCY_LEVERAGE * low


def fit(obs: list[Observation]) -> Calibration:
    timed = [o for o in obs if o.tokens_per_s and tells_efficiency(o)]
    efficiency: dict[str, dict[str, float]] = {}
    efficiency_basis: dict[str, dict[str, str]] = {}
    for gpu_name, method in sorted({(o.gpu.name, o.method) for o in timed}):
        group = _preferred([o for o in timed if o.gpu.name == gpu_name and o.method == method])
        prior = NO_CALIBRATION.efficiency_for(group[0].gpu, method)[0]
        fitted = _shrunk(fit_efficiency(group, gpu_name, method), group, prior)
        efficiency.setdefault(gpu_name, {})[method] = round(fitted, 4)
        efficiency_basis.setdefault(gpu_name, {})[method] = _basis(group)
    method_efficiency: dict[str, float] = {}
    method_basis: dict[str, str] = {}
    # the fallback for GPUs without points of their own, fitted from GPU points only: a CPU's share of its nominal
    # peak says nothing about a GPU's, so CPU runs neither move the GPUs' estimates nor make them `measured`
    on_gpus = [o for o in timed if device_kind(o.gpu) == "cuda"]
    for method in sorted({o.method for o in on_gpus}):
        if not (group := _fallback_group([o for o in on_gpus if o.method == method])):
            continue
        fitted = _shrunk(fit_method_efficiency(group, method), group, DEFAULT_EFFICIENCY[method])
        method_efficiency[method] = round(fitted, 4)
        method_basis[method] = _basis(group)  # what went into this method's fit, not any point of any method
    memory: dict[str, dict[str, float]] = {}
    memory_basis: dict[str, str] = {}
    for kind in sorted({device_kind(o.gpu) for o in obs}):
        group = _memory_group(obs, kind)
        fitted = fit_memory(group)
        if not fitted:
            continue
        if _basis(group) == "published":
            slack, context = memory_overheads(group[0].gpu, NO_CALIBRATION)
            fitted = {"context_gib": _shrunk(fitted["context_gib"], group, context),
                      "slack_fraction": _shrunk(fitted["slack_fraction"], group, slack)}
        memory[kind] = {k: round(v, 4) for k, v in fitted.items()}
        memory_basis[kind] = _basis(group)
    return Calibration(efficiency=efficiency, memory=memory, efficiency_basis=efficiency_basis,
                       method_efficiency=method_efficiency, method_basis=method_basis, memory_basis=memory_basis)


def _memory_group(obs: list[Observation], kind: str) -> list[Observation]:
    """The points a memory kind's overheads are fitted from: whole-process peaks, orch's own where it has any."""
    return _preferred([o for o in obs if device_kind(o.gpu) == kind and o.vram_gib
                       and o.vram_measures in WHOLE_PROCESS_MEASURES])


def _memory_fitted_from(obs: list[Observation], kind: str) -> str:
    """What a memory kind was fitted on, as people read it (`6 runs on H200`): fitted from a session orch ships,
    every CUDA card's answer changed on a machine that never ran one, labelled only `measured`."""
    group = _memory_group(obs, kind)
    gpus = sorted({o.gpu.name for o in group})
    what = "runs" if _basis(group) == "measured" else "published points"
    return f"{len(group)} {what} on {', '.join(gpus[:3])}{f' and {len(gpus) - 3} more' if len(gpus) > 3 else ''}"


def calibration_json(calibration: Calibration, points: int, sources: list[str]) -> dict:
    """The calibration file's content (calibration.py reads it)."""
    return {"fitted_at": time.strftime("%Y-%m-%d %H:%M"), "points": points, "sources": list(sources),
            "efficiency": calibration.efficiency, "efficiency_basis": calibration.efficiency_basis,
            "method_efficiency": calibration.method_efficiency, "method_basis": calibration.method_basis,
            "memory": calibration.memory, "memory_basis": calibration.memory_basis}


def point_errors(obs: list[Observation], calibration: Calibration) -> list[dict]:
    """Per point: measured and estimated tokens/s and VRAM, and the relative error of each."""
    table = []
    for o in obs:
        speed = estimate_speed(o.model, o.settings, o.gpu, calibration).tokens_per_s if o.tokens_per_s else None
        vram = estimated_vram(o, calibration) if o.vram_gib else None
        table.append({"point": o.label, "source": o.source, "origin": o.origin, "tokens_per_s": o.tokens_per_s,
                      "est_tokens_per_s": speed, "tokens_per_s_error": speed / o.tokens_per_s - 1 if speed else None,
                      "vram_gib": o.vram_gib, "est_vram_gib": vram,
                      "vram_error": vram / o.vram_gib - 1 if vram else None})
    return table


def errors(rows: list[dict], calibration: Calibration) -> list[dict]:
    """point_errors of orch's own benchmark rows."""
    return point_errors(observations(rows), calibration)


def cross_validated_errors(obs: list[Observation]) -> list[dict]:
    """Each source's points scored by a calibration fitted without that source."""
    table = []
    for source in sorted({o.source for o in obs}):
        held_out = [o for o in obs if o.source == source]
        table += point_errors(held_out, fit([o for o in obs if o.source != source]))
    return table


def error_summary(table: list[dict]) -> dict:
    """Median |error| and share within 10% / 20%, for VRAM and tokens/s, per origin."""
    summary = {}
    for origin in sorted({r["origin"] for r in table}):
        for metric in ("vram", "tokens_per_s"):
            errs = [abs(r[f"{metric}_error"]) for r in table
                    if r["origin"] == origin and r[f"{metric}_error"] is not None]
            if errs:
                summary[f"{origin} {metric}"] = {"points": len(errs), "median_abs_error": statistics.median(errs),
                                                 "within_10": sum(e <= 0.10 for e in errs) / len(errs),
                                                 "within_20": sum(e <= 0.20 for e in errs) / len(errs)}
    return summary


def fits_at_bounds(calibration: Calibration) -> list[str]:
    """The values fitted from the user's own runs that stopped at an end of their search range: no value inside
    it explains those runs (a mistyped or foreign measurement), so the fit is the bound, not a measurement."""
    def at_bound(value: float, bounds: tuple[float, float]) -> bool:
        return min(abs(value - bound) for bound in bounds) <= 1e-3 * max(bounds)

    found = [f"efficiency {gpu} {method} {value:g}" for gpu, methods in calibration.efficiency.items()
             for method, value in methods.items()
             if calibration.efficiency_basis.get(gpu, {}).get(method) == "measured"
             and at_bound(value, EFFICIENCY_BOUNDS)]
    for kind, values in calibration.memory.items():  # the tops only: a small context or no slack is ordinary
        if calibration.memory_basis.get(kind) == "measured":
            found += [f"memory {kind} {key} {values[key]:g}" for key, bounds in
                      (("context_gib", CONTEXT_BOUNDS_GIB), ("slack_fraction", SLACK_BOUNDS))
                      if at_bound(values[key], (bounds[1], bounds[1]))]
    return found


def _left_out(rows: list[dict]) -> str:
    """Why no row is fitted, said of the first ok one (a GPU name orch does not know), else that none ended ok."""
    ok = [row for row in rows if row.get("status") == "ok"]
    if not ok:
        return "none ended ok"
    gpu = ok[0].get("gpu")
    if row_gpu(ok[0]) is None:
        return f"the first ok one ran on {short_repr(gpu)}, a GPU `orch catalog gpus` does not list"
    return f"the first ok one trains {short_repr((ok[0].get('config') or {}).get('model'))}, a model orch cannot read"


def _in_effect() -> Calibration | None:
    """What the estimator read until now, said beside what replaces it; None where it cannot be read (a damaged
    file, which `--out FILE --force` replaces, is no reason to refuse the fit)."""
    try:
        return load_calibration()
    except UserError:
        return None


def calibrate(rows: list[dict], out: Path, sources: list[str] = ()) -> dict:
    """Fit from orch's own runs and the published points, write the data file, and return the error of every
    measured point before and after, with the in-sample and leave-one-source-out error of all points."""
    measured = observations(rows)
    if rows and not measured:
        raise UserError(f"none of the {len(rows)} result rows is an ok run on a GPU orch knows ({_left_out(rows)}), "
                        "so nothing of yours would be fitted: nothing written. Calibrate from `orch bench` runs that "
                        "ended ok.")
    obs = measured + published_observations()
    in_effect = _in_effect()
    calibration = fit(obs)
    sources = [*sources, str(PUBLISHED_CSV)]  # where it is, as the others are named
    write_text_atomically(out, json.dumps(calibration_json(calibration, len(obs), sources), indent=2) + "\n")
    before, after = point_errors(measured, NO_CALIBRATION), point_errors(measured, calibration)
    return {"calibration": str(out), "sources": sources, "rows": len(rows), "rows_used": len(measured),
            "at_bounds": fits_at_bounds(calibration),
            "speed_rows_left_out": sum(1 for o in measured if o.tokens_per_s and not tells_efficiency(o)),
            "efficiency": calibration.efficiency, "memory": calibration.memory,
            "memory_basis": calibration.memory_basis, "method_efficiency": calibration.method_efficiency,
            "method_efficiency_before": in_effect.method_efficiency if in_effect else {},
            "memory_before": in_effect.memory if in_effect else {},
            "memory_fitted_from": {kind: _memory_fitted_from(obs, kind) for kind in calibration.memory},
            "in_sample": error_summary(point_errors(obs, calibration)),
            "leave_one_source_out": error_summary(cross_validated_errors(obs)),
            "points": [{**b, "est_tokens_per_s_after": a["est_tokens_per_s"], "tokens_per_s_error_after":
                        a["tokens_per_s_error"], "est_vram_gib_after": a["est_vram_gib"],
                        "vram_error_after": a["vram_error"]} for b, a in zip(before, after, strict=True)]}

