"""How long `orch simulate` takes for a large trace (target: 100,000 jobs in under a minute on a 2-core machine).

    .venv/bin/python benchmarks/simulate_speed.py [--jobs 100000] [--policy hybrid] [--json]

Generates the trace, then times the simulation alone (the same engine `orch simulate` runs). Exits 1 over the
target.
"""

import argparse
import json
import sys
import time

from gpu_catalog.offers import cloud_offers
from gpu_catalog.owned import simulated_owned_offer
from orchestrator.simulate.engine import SimSettings, local_cards, simulate
from orchestrator.simulate.trace import generate

TARGET_S = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--policy", default="hybrid")
    parser.add_argument("--local", default="2x RTX4090, 1x A6000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = generate(args.jobs, seed=0)
    cards, clouds = local_cards(args.local, simulated_owned_offer), list(cloud_offers()[0])
    start = time.perf_counter()
    summary, decisions = simulate(rows, cards, clouds, SimSettings(policy=args.policy, seed=0))
    seconds = time.perf_counter() - start
    result = {"jobs": args.jobs, "policy": args.policy, "local": args.local, "seconds": seconds,
              "jobs_per_s": args.jobs / seconds, "ended_once": len(decisions) == args.jobs, "summary": summary}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.jobs:,} jobs, policy {args.policy}, local {args.local}: {seconds:.1f} s "
              f"({result['jobs_per_s']:,.0f} jobs/s); total ${summary['total_cost_usd']:,.0f}, "
              f"{summary['deadline_misses']} deadline misses, mean wait {summary['mean_wait_h']:.2f} h, "
              f"local utilization {summary['local_utilization']:.0%}")
    return 0 if seconds < TARGET_S and result["ended_once"] else 1


if __name__ == "__main__":
    sys.exit(main())
