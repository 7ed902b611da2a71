"""The hybrid question: on a trace of jobs, what do local-only, cloud-only and hybrid scheduling cost, how many
deadlines do they miss, how long do jobs wait, and how busy are the owned cards? The simulator answers
(orchestrator/simulate), called here in one place only."""

from pathlib import Path

from gpu_catalog.offer import Offer
from gpu_catalog.offers import cloud_offers
from gpu_catalog.owned import OwnedHardware
from orchestrator.bench.economics import owned_cards
from orchestrator.estimator.calibration import load_calibration
from orchestrator.simulate.engine import SimSettings, declared_cards, simulate
from orchestrator.simulate.trace import read_trace

DEFAULT_TRACE = Path("benchmarks/traces/team-week.csv")  # in a source checkout; elsewhere pass --trace
POLICIES = ("local-only", "cloud-only", "hybrid")
SUMMARY_KEYS = ("jobs", "completed", "rejected", "total_cost_usd", "deadline_misses", "mean_wait_h",
                "local_utilization", "makespan_h")


def hybrid_cards() -> tuple[OwnedHardware, list[Offer], bool]:
    """(hardware, one offer per owned card, declared): the cards the hybrid question simulates, the report's own;
    refused past the simulator's cap, which `orch report` asks before any work."""
    hardware, cards, declared = owned_cards()
    return hardware, declared_cards(hardware, cards, "declare fewer, or leave the hybrid section out (run orch "
                                    "report outside orch's source folder, without --trace)"), declared


def compare_policies(trace: Path, seed: int = 0) -> dict:
    """{"trace", "cards", "policies": {policy: the simulator's summary}}; the owned cards are the report's."""
    hardware, local, declared = hybrid_cards()
    clouds, calibration = list(cloud_offers()[0]), load_calibration()
    summaries = {}
    for policy in POLICIES:
        summary = simulate(read_trace(trace), local, clouds, SimSettings(policy=policy, seed=seed), calibration)
        summaries[policy] = {k: summary[k] for k in SUMMARY_KEYS}
    return {"trace": str(trace), "jobs": summaries[POLICIES[0]]["jobs"], "cards": [o.gpu.name for o in local],
            "cards_declared": declared, "cost_policy": hardware.cost_policy, "policies": summaries}
