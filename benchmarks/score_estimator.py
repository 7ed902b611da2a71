"""Score orch's estimator on the published measurements (gpu_catalog/data/published_measurements.csv), through the
same path a user takes: `orch estimate MODEL --flag value ... --json`, with each point's settings as flags.

Three scorings:
- `defaults`: no calibration at all (the documented constants);
- `in-sample`: the calibration fitted from every published point (what orch ships);
- `leave-one-source-out`: each source scored with a calibration fitted from the other sources only, the honest
  estimate of the error on measurements orch has never seen.
Reports, per scoring: VRAM median |error| and share within 10%/20%; tokens/s median |error|, median signed error and
share within 20%; out-of-memory cases agreed.

    python benchmarks/score_estimator.py [--json] [--points] [--write-calibration gpu_catalog/data/calibration.json]

--write-calibration writes the in-sample calibration: the one orch ships as package data.
"""

import json
import os
import statistics
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from benchmarks.script_args import Parser, file_path, output_file, run
from orchestrator.bench.calibrate import calibration_json, fit, published_observations
from orchestrator.bench.published import (
    PUBLISHED_CSV,
    PublishedPoint,
    comparable_vram_gib,
    estimate_flags,
    load_points,
)
from orchestrator.cli.main import app
from orchestrator.estimator.calibration import NO_CALIBRATION, Calibration
from orchestrator.estimator.memory import FIT_HEADROOM_FRACTION

RUNNER = CliRunner()
REPO = Path(__file__).resolve().parents[1]


@contextmanager
def calibration_in_use(calibration: Calibration, folder: Path):
    """Point ORCH_CALIBRATION at this calibration for the estimates made inside the block."""
    path = folder / "calibration.json"
    path.write_text(json.dumps(calibration_json(calibration, points=0, sources=[])), encoding="utf-8")
    previous = os.environ.get("ORCH_CALIBRATION")
    os.environ["ORCH_CALIBRATION"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("ORCH_CALIBRATION")
        else:
            os.environ["ORCH_CALIBRATION"] = previous


def estimate_json(point: PublishedPoint) -> dict:
    args = ["estimate", point.model, *estimate_flags(point), "--json"]
    result = RUNNER.invoke(app, args)
    if result.exit_code != 0:
        raise SystemExit(f"orch {' '.join(args)} failed: {result.output.strip()}")
    return json.loads(result.output)


def score_point(point: PublishedPoint) -> dict:
    est = estimate_json(point)
    row = {"point": point.label, "source": point.source, "metric": point.metric, "measured": point.value}
    if point.metric == "tokens_per_s":
        row["estimated"] = est["tokens_per_s"]
    elif point.metric == "vram":
        row["estimated"] = comparable_vram_gib(est["breakdown"], point.measures)
    else:  # oom: the card is given by its capacity
        fits = est["vram_gib"] <= point.capacity_gib * (1 - FIT_HEADROOM_FRACTION)
        row.update(estimated=est["vram_gib"], agreed=not fits)
        return row
    row["error"] = row["estimated"] / point.value - 1
    return row


def summary(rows: list[dict]) -> dict:
    def errors(metric):
        return [r["error"] for r in rows if r["metric"] == metric]

    vram, speed, oom = errors("vram"), errors("tokens_per_s"), [r["agreed"] for r in rows if r["metric"] == "oom"]

    def share(values, bound):
        return sum(abs(e) <= bound for e in values) / len(values) if values else None

    def median_abs(values):
        return statistics.median(abs(e) for e in values) if values else None

    return {"vram_points": len(vram), "vram_median_abs_error": median_abs(vram), "vram_within_10": share(vram, 0.10),
            "vram_within_20": share(vram, 0.20), "speed_points": len(speed),
            "tokens_per_s_median_abs_error": median_abs(speed),
            "tokens_per_s_median_signed_error": statistics.median(speed) if speed else None,
            "tokens_per_s_within_20": share(speed, 0.20), "oom_cases": len(oom), "oom_agreed": sum(oom)}


def score(points: list[PublishedPoint], calibration: Calibration, folder: Path) -> list[dict]:
    with calibration_in_use(calibration, folder):
        return [score_point(p) for p in points]


def leave_one_source_out(points: list[PublishedPoint], folder: Path) -> list[dict]:
    rows = []
    for source in sorted({p.source for p in points}):
        others = [p for p in points if p.source != source]
        calibration = fit(published_observations(others))
        rows += score([p for p in points if p.source == source], calibration, folder)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--points", action="store_true", help="list every point's error too")
    parser.add_argument("--write-calibration", type=file_path,
                        help="write the calibration fitted from every point here (a .json file)")
    args = parser.parse_args(argv)
    output_file(args.write_calibration, "--write-calibration", ".json")  # before the fit, not after it
    points = load_points()
    if args.write_calibration:
        observed = published_observations(points)
        data = calibration_json(fit(observed), len(observed), [str(PUBLISHED_CSV.relative_to(REPO))])
        args.write_calibration.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scorings = {"defaults": score(points, NO_CALIBRATION, folder),
                    "in-sample": score(points, fit(published_observations(points)), folder),
                    "leave-one-source-out": leave_one_source_out(points, folder)}
    report = {name: summary(rows) for name, rows in scorings.items()}
    if args.points:
        report["points"] = scorings
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print_table(report, scorings if args.points else None)
    return 0


def _pct(value) -> str:
    return "-" if value is None else f"{value:+.1%}" if value < 0 else f"{value:.1%}"


def print_table(report: dict, scorings: dict | None) -> None:
    names = [n for n in report if n != "points"]
    lines = [("", *names)]
    first = report[names[0]]
    lines += [(f"VRAM median |error| ({first['vram_points']} points)",
               *(_pct(report[n]["vram_median_abs_error"]) for n in names)),
              ("VRAM within ±10%", *(_pct(report[n]["vram_within_10"]) for n in names)),
              ("VRAM within ±20%", *(_pct(report[n]["vram_within_20"]) for n in names)),
              (f"tokens/s median |error| ({first['speed_points']} points)",
               *(_pct(report[n]["tokens_per_s_median_abs_error"]) for n in names)),
              ("tokens/s median signed error", *(_pct(report[n]["tokens_per_s_median_signed_error"]) for n in names)),
              ("tokens/s within ±20%", *(_pct(report[n]["tokens_per_s_within_20"]) for n in names)),
              ("out-of-memory cases agreed", *(f"{report[n]['oom_agreed']} of {report[n]['oom_cases']}"
                                               for n in names))]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        print("  ".join(str(cell).ljust(w) if i == 0 else str(cell).rjust(w)
                        for i, (cell, w) in enumerate(zip(line, widths, strict=True))))
    if scorings:
        for name, rows in scorings.items():
            print(f"\n{name}:")
            for r in rows:
                detail = f"{r['error']:+.1%}" if "error" in r else ("agreed" if r["agreed"] else "DISAGREED")
                print(f"  {r['point']}: measured {r['measured']:,.2f}, estimated {r['estimated']:,.2f} ({detail})")


if __name__ == "__main__":
    sys.exit(run(main))
