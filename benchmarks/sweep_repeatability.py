"""Whether a sweep measures the same tokens/s twice: the sweep runs N times (default 2) from scratch, each in its
own ORCH_HOME (results database and work folders), on this machine, and every point's tokens/s is compared across
the runs (target: within 15%).

    .venv/bin/python benchmarks/sweep_repeatability.py [benchmarks/sweeps/tiny-cpu.yaml] [--runs 2] [--json]
                                                       [--out benchmarks/results/tiny-cpu-repeatability.json]

A point's spread is (largest - smallest) / smallest of its median tokens/s over the runs. Exits 1 when a point is
over TARGET_SPREAD or did not end `ok` in every run. Each sweep is the CLI a user runs (`orch bench SWEEP --db ...
--out ....jsonl`), so the figure is the one `orch report` would show.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.script_args import Parser, file_path, output_file, run
from orchestrator.bench.sweep import Point, load_sweep

REPO = Path(__file__).resolve().parent.parent
TARGET_SPREAD = 0.15


def run_sweep(sweep: Path, folder: Path, index: int) -> dict[str, dict]:
    """One fresh sweep; its rows by point id."""
    rows_file, home = folder / f"run-{index}.jsonl", folder / f"home-{index}"
    command = [sys.executable, "-m", "orchestrator.cli.main", "bench", str(sweep), "--db", str(home / "bench.db"),
               "--out", str(rows_file), "--json"]
    home.mkdir()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "ORCH_HOME": str(home)})  # its own work folders too
    if done.returncode != 0:
        raise SystemExit(f"orch bench failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    rows = [json.loads(line) for line in rows_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["point_id"]: row for row in rows}


def compare(runs: list[dict[str, dict]]) -> list[dict]:
    """Per point: each run's tokens/s, status and stability, and the spread across runs."""
    points = []
    for point_id in sorted(set().union(*runs)):
        rows = [run.get(point_id, {}) for run in runs]
        rates = [row.get("tokens_per_s") for row in rows]
        ok = all(row.get("status") == "ok" and rate for row, rate in zip(rows, rates, strict=True))
        spread = (max(rates) - min(rates)) / min(rates) if ok else None
        config = next(row["config"] for row in rows if row.get("config"))
        points.append({"point_id": point_id, "label": Point(point_id, config).label, "tokens_per_s": rates,
                       "statuses": [row.get("status") for row in rows], "stable": [row.get("stable") for row in rows],
                       "spread": spread})
    return points


def main() -> int:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", nargs="?", type=Path, default=REPO / "benchmarks" / "sweeps" / "tiny-cpu.yaml")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--out", type=file_path, help="also write the result as JSON here")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2: one run has nothing to compare with")
    if not args.sweep.is_file():
        parser.error(f"no sweep file {args.sweep}")
    sweep = load_sweep(args.sweep)  # a bad sweep is one line now, not `orch bench failed (exit 2)` after a run
    output_file(args.out, inputs=(args.sweep, sweep.dataset))  # before the sweeps, not after them
    started = time.time()
    with tempfile.TemporaryDirectory() as folder:
        runs = [run_sweep(args.sweep.resolve(), Path(folder), i) for i in range(args.runs)]
    points = compare(runs)
    spreads = [p["spread"] for p in points if p["spread"] is not None]
    result = {"sweep": str(args.sweep), "runs": args.runs, "date": time.strftime("%Y-%m-%d", time.gmtime(started)),
              "command": " ".join(["python", "benchmarks/sweep_repeatability.py", *sys.argv[1:]]),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
              "wall_s": round(time.time() - started, 1), "target_spread": TARGET_SPREAD,
              "largest_spread": max(spreads) if spreads else None, "points": points}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for p in points:
            rates = ", ".join(f"{r:,.0f}" if r else "-" for r in p["tokens_per_s"])
            spread = f"{p['spread']:.1%}" if p["spread"] is not None else "not ok in every run"
            print(f"{p['label']}: tokens/s {rates}; spread {spread}")
        print(f"largest spread {result['largest_spread']:.1%} (target {TARGET_SPREAD:.0%}) over {args.runs} runs, "
              f"{result['wall_s']:.0f} s" if spreads else "no point ended ok in every run")
    failed = len(spreads) < len(points) or any(s > TARGET_SPREAD for s in spreads)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(main))
