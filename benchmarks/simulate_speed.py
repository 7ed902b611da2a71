"""How long and how much memory `orch simulate` takes for a large trace, every policy side by side (target: 1,000,000
jobs in under 60 s of CPU and 500 MiB peak RSS each, on a 2-core machine).

    PYTHONPATH=. .venv/bin/python benchmarks/simulate_speed.py [--jobs 1000000] [--policy all] [--json]

Each policy runs in its own process, so its peak RSS (resource.getrusage) is its own: the trace is generated as it is
read, the engine keeps its summary online, and each decision is written to a CSV in a temporary folder as the job ends,
as `orch simulate --out` does. CPU seconds are the process's own (user + system), which the other work on a shared
machine disturbs less than wall seconds; both are reported. Exits 1 when a policy is over a target or loses a job.
"""

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.script_args import Parser, run, whole_at_least, whole_in
from orchestrator.simulate.trace import MAX_GENERATED_JOBS

TARGET_CPU_S = 60.0
TARGET_PEAK_MIB = 500.0
POLICIES = ("hybrid", "local-only", "cloud-only", "cloud-spot")


def _one(policy: str, jobs: int, local: str, seed: int) -> dict:
    """Runs in the child: simulate one policy over a generated trace, decisions streamed to a CSV."""
    from gpu_catalog.offers import cloud_offers
    from gpu_catalog.owned import simulated_owned_offer
    from orchestrator.simulate.engine import SimSettings, local_cards, simulate
    from orchestrator.simulate.summary import DECISION_COLUMNS
    from orchestrator.simulate.trace import generate

    start_wall_s, start_cpu_s = time.perf_counter(), time.process_time()
    cards, clouds = local_cards(local, simulated_owned_offer), list(cloud_offers()[0])
    with tempfile.TemporaryDirectory() as folder, open(Path(folder) / "decisions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(DECISION_COLUMNS)
        decisions = 0

        def write(row: dict) -> None:  # as orch simulate --out writes them
            nonlocal decisions
            decisions += 1
            writer.writerow(row.values())

        summary = simulate(generate(jobs, seed=seed), cards, clouds, SimSettings(policy=policy, seed=seed),
                           on_decision=write)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"policy": policy, "jobs": jobs, "cpu_s": usage.ru_utime + usage.ru_stime,
            "sim_cpu_s": time.process_time() - start_cpu_s, "wall_s": time.perf_counter() - start_wall_s,
            "peak_mib": usage.ru_maxrss / 1024, "ended_once": decisions == jobs == summary["jobs"],
            "summary": summary}


def main() -> int:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=whole_in(1, MAX_GENERATED_JOBS), default=1_000_000)
    parser.add_argument("--policy", default="all", choices=(*POLICIES, "all"))
    parser.add_argument("--local", default="2x RTX4090, 1x A6000")
    parser.add_argument("--seed", type=whole_at_least(0), default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_one(args.policy, args.jobs, args.local, args.seed)))
        return 0
    from gpu_catalog.owned import simulated_owned_offer
    from orchestrator.simulate.engine import local_cards

    local_cards(args.local, simulated_owned_offer)  # a card orch does not know: one line, before the children
    results = []
    for policy in POLICIES if args.policy == "all" else (args.policy,):
        child = subprocess.run([sys.executable, __file__, "--child", "--policy", policy, "--jobs", str(args.jobs),
                                "--local", args.local, "--seed", str(args.seed)], capture_output=True, text=True)
        if child.returncode != 0:
            results.append({"policy": policy, "jobs": args.jobs, "error": child.stderr.strip().splitlines()[-1:]})
            continue
        result = json.loads(child.stdout)
        result["within_target"] = (result["cpu_s"] < TARGET_CPU_S and result["peak_mib"] < TARGET_PEAK_MIB
                                   and result["ended_once"])
        results.append(result)
    ok = all(r.get("within_target") for r in results)
    if args.json:
        print(json.dumps({"jobs": args.jobs, "local": args.local,
                          "targets": {"cpu_s": TARGET_CPU_S, "peak_mib": TARGET_PEAK_MIB},
                          "ended_once": all(r.get("ended_once") for r in results),
                          "seconds": sum(r.get("cpu_s", 0.0) for r in results),  # CPU, all policies together
                          "within_target": ok, "results": results}, indent=2))
    else:
        print(f"{args.jobs:,} jobs, local {args.local}; targets < {TARGET_CPU_S:g} s CPU, < {TARGET_PEAK_MIB:g} MiB")
        print(f"{'policy':<11} {'CPU s':>7} {'wall s':>7} {'peak MiB':>9} {'jobs/s':>8} {'total $':>12} "
              f"{'misses':>8}  verdict")
        for r in results:
            if "error" in r:
                print(f"{r['policy']:<11} failed: {' '.join(r['error'])}")
                continue
            s = r["summary"]
            print(f"{r['policy']:<11} {r['cpu_s']:7.1f} {r['wall_s']:7.1f} {r['peak_mib']:9.0f} "
                  f"{r['jobs'] / r['cpu_s']:8,.0f} {s['total_cost_usd']:12,.0f} {s['deadline_misses']:8,}  "
                  f"{'ok' if r['within_target'] else 'OVER TARGET' if r['ended_once'] else 'LOST JOBS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run(main))
