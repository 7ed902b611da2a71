"""When a sweep point's tokens/s is stable enough to report: per-step rates from the trainer's steps.jsonl, warm-up
left out, summarised by their median and spread.

A step's rate is its real tokens over its time. The median resists the odd step that a busy machine stretches (one
slow step used to decide a 4-step point). The spread is the interquartile range over the median; the point is stable
when the median's 95% interval (McGill, Tukey and Larsen's notch: median +- 1.57 IQR / sqrt(n)) is within
`stable_within` of it.
"""

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

NOTCH_FACTOR = 1.57  # McGill, Tukey & Larsen (1978), "Variations of box plots": 95% interval of a median
MIN_STEPS_FOR_INTERVAL = 4


@dataclass(frozen=True)
class Stability:
    tokens_per_s: float  # median of the timed steps' rates
    spread: float  # interquartile range / median
    interval: float | None  # half-width of the median's 95% interval / median; None from one step
    timed_steps: int

    def is_stable(self, within: float) -> bool:
        return self.timed_steps >= MIN_STEPS_FOR_INTERVAL and self.interval is not None and self.interval <= within


def step_rates(steps_file: Path, warmup_steps: int) -> list[float]:
    """Tokens/s of each step after the first `warmup_steps` of this process; [] when the file is missing."""
    if not steps_file.is_file():
        return []
    lines = [json.loads(line) for line in steps_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [s["tokens"] / s["step_time_s"] for s in lines[warmup_steps:] if s.get("step_time_s") and s.get("tokens")]


def summarize_rates(rates: list[float]) -> Stability | None:
    if not rates:
        return None
    median = statistics.median(rates)
    if len(rates) < 2:
        return Stability(median, 0.0, None, len(rates))  # no interval (inf is not JSON: bench.db could not hold it)
    q1, _, q3 = statistics.quantiles(rates, n=4, method="inclusive")
    iqr = q3 - q1
    return Stability(median, iqr / median, NOTCH_FACTOR * iqr / math.sqrt(len(rates)) / median, len(rates))
