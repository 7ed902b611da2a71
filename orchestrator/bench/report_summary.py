"""The report's summary for one job: what `orch plan` recommends under the budget and deadline, the fastest and the
cheapest target, every target's hours and dollars, the Pareto set, and when each owned card beats renting.

The recommendation is the planner's own (orchestrator/cli/planning.py's plan_job): the report never ranks targets its
own way. Hours and dollars per job are the planner's estimates (orchestrator/cost.py), start-up included.
"""

import dataclasses
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from gpu_catalog.errors import UserError
from gpu_catalog.owned import owned_offer
from gpu_catalog.units import MAX_BUDGET_USD, percent_text
from orchestrator.bench.economics import Point, break_even_utilization, owned_cards, pareto_front
from orchestrator.cli.planning import plan_job
from orchestrator.estimator.calibration import load_calibration
from orchestrator.planner import PlanPolicy, no_option_message, plan

METHODS = ("full", "lora", "qlora")
RUNNABLE = ("ok", "budget", "deadline")  # targets that can run the job, within the limits or not


@dataclass(frozen=True)
class TargetRow:
    target: str  # what a reader calls it: "A10G aws us-east-1 spot", "local CPU"
    gpu: str
    where: str  # local or cloud
    spot: bool
    usd_per_hour: float
    tokens_per_s: float | None
    vram_gib: float | None
    hours: float | None
    usd_per_job: float | None
    usd_per_million_tokens: float | None
    basis: str  # the estimator's: measured (calibrated from measurements) or analytic
    verdict: str  # ok, or the planner's rejection kind (budget, deadline, memory, cpu, ...)
    reason: str
    price_source: str  # where the $/h comes from, with its date
    chosen: bool = False


def _row(offer, estimate, verdict: str, reason: str, chosen: bool = False) -> TargetRow:
    name = "local " + offer.gpu.name if offer.is_local else \
        f"{offer.gpu.name} {offer.provider} {offer.region}{' spot' if offer.spot else ''}"
    return TargetRow(target=name, gpu=offer.gpu.name, where="local" if offer.is_local else "cloud", spot=offer.spot,
                     usd_per_hour=offer.usd_per_hour, tokens_per_s=estimate.tokens_per_s if estimate else None,
                     vram_gib=estimate.vram_gib if estimate else None, hours=estimate.hours if estimate else None,
                     usd_per_job=estimate.cost_usd if estimate else None,
                     usd_per_million_tokens=estimate.usd_per_million_tokens if estimate else None,
                     basis=estimate.basis if estimate else "analytic", verdict=verdict, reason=reason,
                     price_source=offer.source, chosen=chosen)


def _break_even(spec, model, rows: list[TargetRow]) -> list[dict]:
    """Per owned card: the job on it (planned like any target), the cheapest cloud offer that can run it, and the
    utilization at which owning wins."""
    hardware, cards, declared = owned_cards()
    clouds = [r for r in rows if r.where == "cloud" and r.verdict in RUNNABLE]
    in_time = [r for r in clouds if r.verdict != "deadline"] or clouds
    cloud = min(in_time, key=lambda r: r.usd_per_job, default=None)
    offers = [owned_offer(card, hardware, "amortized", "owned card") for card in cards]
    owned_plan = plan(spec, model, offers, PlanPolicy(budget_usd=math.inf), load_calibration())
    estimates = {o.offer.gpu.name: o.estimate for o in owned_plan.options}
    result = []
    for card in cards:
        estimate = estimates.get(card.gpu.name)
        entry = {"card": card.gpu.name, "declared": declared, "purchase_usd": card.purchase_price_usd,
                 "life_years": card.life_years, "energy_usd_per_hour": hardware.usd_per_hour(card, "marginal"),
                 "hours": estimate.hours if estimate else None, "basis": estimate.basis if estimate else "analytic",
                 "cloud": cloud.target if cloud else None, "cloud_usd_per_job": cloud.usd_per_job if cloud else None,
                 "utilization": None, "verdict": "does not fit" if estimate is None else "no cloud offer"}
        if estimate and cloud:
            utilization = break_even_utilization(estimate.hours, entry["energy_usd_per_hour"], card.purchase_price_usd,
                                                 card.life_years, cloud.usd_per_job)
            entry["utilization"] = utilization
            entry["verdict"] = "never: its electricity alone costs more" if utilization is None else \
                "never: needs more than a full year of use" if utilization > 1 else f"above {percent_text(utilization)}"
        result.append(entry)
    return result


def _capacity(spec, model, offers) -> list[dict]:
    """Per GPU among the targets and per method: the memory the job needs there and its speed, planned like the job
    itself (auto-fit may trade micro-batch for accumulation and turn on checkpointing), beside the card's memory.
    `runs`: whether the planner takes any offer of that GPU, budget aside; where it takes none, `rejected_kind` and
    `rejected` give its reason (a card torch has no kernels for, bf16 or flash-attention it lacks, memory, the CPU's
    time limit) and the speed is left out: the planner never runs the job there, whatever the card's memory."""
    rows = []
    for method in METHODS:
        variant = dataclasses.replace(spec, method=method)
        result = plan(variant, model, list(offers), PlanPolicy(budget_usd=math.inf), load_calibration())
        taken = {option.offer.gpu.name: option for option in result.options}
        refused = {}
        for rejected in result.rejected:
            refused.setdefault(rejected.offer.gpu.name, rejected)
        for gpu in dict.fromkeys(offer.gpu.name for offer in offers):
            if option := taken.get(gpu):
                rows.append({"gpu": gpu, "method": method, "capacity_gib": option.offer.gpu.vram_gib,
                             "vram_gib": option.estimate.vram_gib, "tokens_per_s": option.estimate.tokens_per_s,
                             "fits": True, "runs": True, "rejected_kind": "", "rejected": "",
                             "basis": option.estimate.basis})
            else:
                rejected = refused[gpu]
                rows.append({"gpu": gpu, "method": method, "capacity_gib": rejected.offer.gpu.vram_gib,
                             "vram_gib": rejected.vram_gib, "tokens_per_s": None,
                             "fits": rejected.estimate is not None, "runs": False,
                             "rejected_kind": rejected.kind, "rejected": rejected.reason, "basis": "analytic"})
    return sorted(rows, key=lambda r: (r["capacity_gib"], r["gpu"], METHODS.index(r["method"])))


def job_summary(job: Path, budget_usd: float | None, deadline_h: float | None, spot: bool = True) -> dict:
    """Everything the report says about one job, as plain data (the --json output and the tables' source)."""
    budget = MAX_BUDGET_USD if budget_usd is None else budget_usd  # no budget: the largest one a user may give
    model, targets, result = plan_job(job, budget, deadline_h, "cost", spot, None)
    chosen = result.chosen
    rows = [_row(o.offer, o.estimate, "ok", "", chosen=o is chosen) for o in result.options]
    rows += [_row(r.offer, r.estimate, r.kind, r.reason) for r in result.rejected]
    runnable = [r for r in rows if r.verdict in RUNNABLE and r.hours is not None]
    if not runnable:  # nothing to compare: its plots had no point to draw (matplotlib's traceback, exit 1)
        raise UserError(f"job {job}: {no_option_message(result)}")
    front = pareto_front([Point(r.hours, r.usd_per_job) for r in runnable])
    fastest = min(runnable, key=lambda r: (r.hours, r.usd_per_job), default=None)
    cheapest = min(runnable, key=lambda r: (r.usd_per_job, r.hours), default=None)
    return {
        "job": str(job), "name": result.spec.name, "model": result.spec.model, "method": result.spec.method,
        "train_tokens": result.train_tokens, "budget_usd": budget_usd, "deadline_h": deadline_h,
        "recommended": asdict(next(r for r in rows if r.chosen)) if chosen else None,
        "fastest": asdict(fastest) if fastest else None, "cheapest": asdict(cheapest) if cheapest else None,
        "pareto": [runnable[i].target for i in front],
        "targets": [asdict(r) for r in sorted(rows, key=lambda r: (r.usd_per_job is None, r.usd_per_job or 0))],
        "break_even": _break_even(result.spec, model, rows),
        "capacity": _capacity(result.spec, model, targets.offers),
    }
