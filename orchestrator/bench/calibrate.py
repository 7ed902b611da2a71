"""Calibration: fit the estimator to measured benchmark results, and say how wrong it was before and after.

- Speed: one efficiency per (GPU, method), the value that minimises the squared log error of the estimated tokens/s
  over that GPU's and method's points (a bounded 1-D search through the estimator itself, so every other term of the
  speed model stays as it is).
- Memory: the CUDA context (GiB) and the allocator slack (fraction of activations and logits) per device kind, by
  least squares on measured peak minus the estimate's static parts. The measured peak is NVML's used memory where
  sampled (what the card really had to hold), else torch's reserved memory; on the CPU, the process RSS.

The result is a data file (gpu_catalog/data/calibration.json) that the estimator reads: no import, no code change.
"""

import dataclasses
import json
import math
import time
from pathlib import Path

from gpu_catalog.gpus import GPU, cpu_gpu, gpu_from_device_name
from gpu_catalog.models import get_model
from orchestrator.estimator.calibration import NO_CALIBRATION, Calibration, device_kind
from orchestrator.estimator.memory import estimate_memory
from orchestrator.estimator.settings import settings_from_job
from orchestrator.estimator.speed import estimate_speed
from trainer.config import config_from_dict

EFFICIENCY_BOUNDS = (0.01, 1.0)
SEARCH_STEPS = 60


@dataclasses.dataclass(frozen=True)
class Observation:
    """One measured point, ready for the estimator: its inputs and what was measured."""

    label: str
    gpu: GPU
    method: str
    model: object
    settings: object
    tokens_per_s: float | None
    vram_gib: float | None


def row_gpu(row: dict) -> GPU | None:
    name = row.get("gpu") or ""
    if name.startswith("CPU"):
        return cpu_gpu()
    return gpu_from_device_name(name, row.get("gpu_vram_gib") or 80.0)


def measured_vram_gib(row: dict) -> float | None:
    peak = row.get("peak_vram_gib") or {}
    return row.get("nvml_peak_used_gib") or peak.get("reserved") or peak.get("process_rss")


def observations(rows: list[dict]) -> list[Observation]:
    """The ok rows the estimator can describe (a known GPU and model shape)."""
    found = []
    for row in rows:
        gpu = row_gpu(row)
        if row.get("status") != "ok" or gpu is None:
            continue
        config = config_from_dict(row["config"])
        settings = settings_from_job(config)
        found.append(Observation(label=f"{config.model} {config.method} seq {config.seq_len} x{config.micro_batch}"
                                       f"{' ckpt' if settings.grad_ckpt else ''} on {gpu.name}",
                                 gpu=gpu, method=config.method, model=get_model(config.model), settings=settings,
                                 tokens_per_s=row.get("tokens_per_s"), vram_gib=measured_vram_gib(row)))
    return found


def _log_error(obs: list[Observation], calibration: Calibration) -> float:
    return sum(math.log(estimate_speed(o.model, o.settings, o.gpu, calibration).tokens_per_s / o.tokens_per_s) ** 2
               for o in obs)


def fit_efficiency(obs: list[Observation], gpu_name: str, method: str) -> float:
    """Golden-section search on log error (unimodal in the efficiency: faster with every increase)."""
    low, high = EFFICIENCY_BOUNDS
    ratio = (math.sqrt(5) - 1) / 2

    def error(efficiency: float) -> float:
        return _log_error(obs, Calibration(efficiency={gpu_name: {method: efficiency}}))

    for _ in range(SEARCH_STEPS):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if error(a) < error(b):
            high = b
        else:
            low = a
    return (low + high) / 2


def fit_memory(obs: list[Observation]) -> dict[str, float] | None:
    """Least squares for measured = static + context + slack * dynamic; None with fewer than two points."""
    pairs = []
    for o in obs:
        if o.vram_gib is None:
            continue
        parts = estimate_memory(o.model, o.settings, o.gpu).breakdown_gib
        dynamic = parts["activations"] + parts["logits"]
        static = sum(v for k, v in parts.items() if k != "cuda_overhead")
        pairs.append((dynamic, o.vram_gib - static))
    if len(pairs) < 2:
        return None
    n = len(pairs)
    mean_x, mean_y = sum(x for x, _ in pairs) / n, sum(y for _, y in pairs) / n
    var_x = sum((x - mean_x) ** 2 for x, _ in pairs)
    slack = max(0.0, sum((x - mean_x) * (y - mean_y) for x, y in pairs) / var_x) if var_x > 0 else 0.0
    return {"context_gib": max(0.0, mean_y - slack * mean_x), "slack_fraction": slack}


def fit(rows: list[dict]) -> Calibration:
    obs = observations(rows)
    efficiency: dict[str, dict[str, float]] = {}
    for gpu_name, method in sorted({(o.gpu.name, o.method) for o in obs}):
        group = [o for o in obs if o.gpu.name == gpu_name and o.method == method and o.tokens_per_s]
        if group:
            efficiency.setdefault(gpu_name, {})[method] = round(fit_efficiency(group, gpu_name, method), 4)
    memory = {}
    for kind in sorted({device_kind(o.gpu) for o in obs}):
        fitted = fit_memory([o for o in obs if device_kind(o.gpu) == kind])
        if fitted:
            memory[kind] = {k: round(v, 4) for k, v in fitted.items()}
    return Calibration(efficiency=efficiency, memory=memory)


def errors(rows: list[dict], calibration: Calibration) -> list[dict]:
    """Per point: measured and estimated tokens/s and VRAM, and the relative error of each."""
    table = []
    for o in observations(rows):
        speed = estimate_speed(o.model, o.settings, o.gpu, calibration).tokens_per_s
        vram = estimate_memory(o.model, o.settings, o.gpu, calibration).vram_gib
        table.append({"point": o.label, "tokens_per_s": o.tokens_per_s, "est_tokens_per_s": speed,
                      "tokens_per_s_error": speed / o.tokens_per_s - 1 if o.tokens_per_s else None,
                      "vram_gib": o.vram_gib, "est_vram_gib": vram,
                      "vram_error": vram / o.vram_gib - 1 if o.vram_gib else None})
    return table


def calibrate(rows: list[dict], out: Path, sources: list[str] = ()) -> dict:
    """Fit, write the data file, and return the before/after error of every point."""
    calibration = fit(rows)
    out.write_text(json.dumps({"fitted_at": time.strftime("%Y-%m-%d %H:%M"), "points": len(observations(rows)),
                               "sources": list(sources), "efficiency": calibration.efficiency,
                               "memory": calibration.memory}, indent=2) + "\n")
    before, after = errors(rows, NO_CALIBRATION), errors(rows, calibration)
    return {"calibration": str(out), "efficiency": calibration.efficiency, "memory": calibration.memory,
            "points": [{**b, "est_tokens_per_s_after": a["est_tokens_per_s"], "tokens_per_s_error_after":
                        a["tokens_per_s_error"], "est_vram_gib_after": a["est_vram_gib"],
                        "vram_error_after": a["vram_error"]} for b, a in zip(before, after, strict=True)]}
