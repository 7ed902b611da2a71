"""Training efficiency (achieved / dense peak FLOPs) per GPU and method: measured where benchmarks/ has calibrated
it, else documented defaults. The data file is written by `orch calibrate` into ORCH_HOME (user state, never into
the installed package); the estimator only reads it.

Defaults: HF transformers + peft training loops commonly reach 35-45% of dense peak on Ampere/Ada for 7-8B LoRA and
full fine-tuning, less for bitsandbytes 4-bit (its dequantization is modelled separately as memory traffic), and a
smaller share of Hopper/Blackwell's much larger peak. They are starting points, flagged `analytic` in every output.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import GPU
from orchestrator.home import orch_home

DEFAULT_EFFICIENCY = {"full": 0.40, "lora": 0.35, "qlora": 0.30}
HOPPER_AND_LATER_FACTOR = 0.8  # compute capability 9.0+: same loop, bigger peak, smaller share of it


@dataclass(frozen=True)
class Calibration:
    """Measured efficiencies by GPU name then method, e.g. {"H100 SXM": {"lora": 0.41}}, and memory overheads by
    device kind, e.g. {"cuda": {"context_gib": 0.9, "slack_fraction": 0.12}}."""

    efficiency: dict[str, dict[str, float]] = field(default_factory=dict)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    source: str = ""

    def memory_overheads(self, gpu: GPU) -> dict[str, float] | None:
        """{"context_gib", "slack_fraction"} measured for this kind of device, or None (use the defaults)."""
        return self.memory.get(device_kind(gpu))

    def efficiency_for(self, gpu: GPU, method: str) -> tuple[float, str]:
        """(efficiency, basis): basis is `measured` when calibrated for this GPU and method, else `analytic`."""
        measured = self.efficiency.get(gpu.name, {}).get(method)
        if measured is not None:
            return measured, "measured"
        factor = HOPPER_AND_LATER_FACTOR if gpu.compute_capability and float(gpu.compute_capability) >= 9 else 1.0
        return DEFAULT_EFFICIENCY[method] * factor, "analytic"


def device_kind(gpu: GPU) -> str:
    return "cpu" if gpu.kind == "cpu" else "cuda"


NO_CALIBRATION = Calibration()  # every GPU and method at its documented default


def calibration_file() -> Path:
    """Where `orch calibrate` writes and the estimator reads: ORCH_CALIBRATION, else ORCH_HOME/calibration.json."""
    return Path(os.environ.get("ORCH_CALIBRATION") or orch_home() / "calibration.json")


def load_calibration(path: Path | None = None) -> Calibration:
    """The calibration file; an empty Calibration when there is none yet."""
    path = path or calibration_file()
    if not path.is_file():
        return NO_CALIBRATION
    text = checks.read_text(path, "calibration file")
    try:
        raw = json.loads(text)
        efficiency = {gpu: {m: _efficiency(v, f"{gpu} {m}") for m, v in methods.items()}
                      for gpu, methods in raw["efficiency"].items()}
        memory = {kind: {k: checks.number(v, f"{kind} {k}", 0, MAX_MEMORY_VALUE) for k, v in values.items()}
                  for kind, values in raw.get("memory", {}).items()}
    except (json.JSONDecodeError, KeyError, AttributeError, TypeError, ValueError) as exc:
        reason = f"no {exc} key" if isinstance(exc, KeyError) else " ".join(str(exc).split()).rstrip(".")
        raise UserError(f"calibration file {path} is malformed ({reason}); rerun `orch calibrate` or delete it.") \
            from None
    return Calibration(efficiency=efficiency, memory=memory, source=str(path))


MAX_MEMORY_VALUE = 1024.0  # GiB of context, or a slack fraction: far above any real value


def _efficiency(value, what: str) -> float:
    """A share of peak FLOPs: above 0 (0 would mean an infinite run time) and at most 1."""
    return float(checks.number(value, f"efficiency of {what}", 0, 1, above=True))
