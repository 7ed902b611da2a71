"""Where a queued job goes, as a pure function shared by the scheduler and the simulator:

1. A local card that fits the job and meets its deadline, counting the wait for a busy card, takes it (the cheapest
   hours a team has). A busy card that still meets the deadline is waited for; a job without a deadline waits at
   most MAX_WAIT_WITHOUT_DEADLINE_H for one.
2. Otherwise the cheapest cloud offer within the budget (and what is left of the monthly cap) that meets the
   deadline. Spot when the job checkpoints (orch's trainer always does) and the deadline has slack for preemptions;
   on-demand after MAX_SPOT_PREEMPTIONS preemptions. An offer `orch launch` would refuse before any VM (a spot run
   with no storage cloud for its checkpoints, an on-demand one whose output would idle on its VM past the budget:
   the caller's `refusals`) is passed over, else it would be picked and refused again on every pass.
3. Otherwise, late is better than never: the local card that finishes it first. Nothing fits anywhere: rejected.
Every decision carries its reason, which `orch queue --explain` shows.
"""

import itertools
import math
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from gpu_catalog.local import on_cpu_threads
from gpu_catalog.models import ModelShape
from gpu_catalog.offer import Offer
from gpu_catalog.units import duration_text, usd_text
from orchestrator.cost import estimate_on_offer, hours_and_cost
from orchestrator.estimator.calibration import NO_CALIBRATION, Calibration
from orchestrator.estimator.fit import Fit
from orchestrator.estimator.settings import unsupported_on
from orchestrator.frozen import quick_init
from orchestrator.planner import CPU_MAX_HOURS, LaunchRefusals, Option, PlanPolicy, job_fit, no_option_message, plan
from trainer.config import JobConfig

MAX_SPOT_PREEMPTIONS = 2
SPOT_SLACK_FACTOR = 1.5  # spot only if 1.5x its estimated hours still meets the deadline
MAX_WAIT_WITHOUT_DEADLINE_H = 24.0
DEADLINE_SAFETY_FACTOR = 1.2  # local waits are judged at 1.2x their estimate: run times scatter, queues reorder


class SpotMode(str, Enum):
    """Which cloud instances a job may take: spot while it has not been preempted too often and its deadline leaves
    room (auto, the scheduler's), on-demand only (never), spot wherever a spot offer takes it (always)."""

    AUTO = "auto"
    NEVER = "never"
    ALWAYS = "always"


@quick_init
@dataclass(frozen=True)
class LocalSlot:
    """One owned card (or the CPU), and how long until it is free."""

    slot_id: str
    offer: Offer
    busy_for_h: float = 0.0


@quick_init
@dataclass(frozen=True)
class JobAsk:
    job_id: str
    spec: JobConfig
    budget_usd: float
    deadline_h: float | None  # hours from now; None: no deadline
    preemptions: int = 0


@quick_init
@dataclass(frozen=True)
class Decision:
    action: str  # start_local, start_cloud, wait, reject
    reason: str
    slot: LocalSlot | None = None
    option: Option | None = None


class _Local(NamedTuple):
    """A local card the job fits within budget, and when it would finish the job. The Estimate is built only for the
    card the policy picks."""

    finish_h: float  # hours from now
    cost_usd: float
    slot: LocalSlot
    fit: Fit


def _local_options(ask: JobAsk, model: ModelShape, slots: list[LocalSlot], calibration: Calibration,
                   fit_cache: dict[str, Fit]) -> list[_Local]:
    """Every slot the job fits, within budget, soonest finished first (then cheapest)."""
    tokens = ask.spec.resolved_train_tokens()
    found = []
    for slot in slots:
        if unsupported_on(ask.spec, slot.offer.gpu):  # as the planner judges it: FlashAttention-2 on a T4, ...
            continue
        fit = job_fit(ask.spec, model, slot.offer.gpu, calibration, fit_cache)
        if not fit.fits:
            continue
        hours, cost_usd = hours_and_cost(fit, slot.offer, model, tokens)
        if slot.offer.gpu.kind == "cpu" and hours > CPU_MAX_HOURS:  # as the planner judges it: tiny jobs only
            continue
        if cost_usd <= ask.budget_usd:
            found.append(_Local(slot.busy_for_h + hours, cost_usd, slot, fit))
    if len(found) > 1:
        found.sort(key=_finish_then_cost)
    return found


def _on_job_threads(slots: list[LocalSlot], cpu_threads: int | None) -> list[LocalSlot]:
    """The slots as a job with `cpu_threads` sees them: the CPU's on that share of its cores and price, as the
    planner takes the CPU (the CPU's slots still share one offer)."""
    if cpu_threads is None:
        return slots
    offers: dict[int, Offer] = {}
    return [LocalSlot(slot.slot_id, offers.setdefault(id(slot.offer), on_cpu_threads(slot.offer, cpu_threads)),
                      slot.busy_for_h) for slot in slots]


def _finish_then_cost(local: _Local) -> tuple[float, float]:
    return local.finish_h, local.cost_usd


def _start_or_wait(ask: JobAsk, model: ModelShape, local: _Local, why: str) -> Decision:
    slot = local.slot
    e = estimate_on_offer(local.fit, slot.offer, model, ask.spec.resolved_train_tokens())
    option = Option(slot.offer, e)
    if slot.busy_for_h <= 0:
        return Decision("start_local", f"{why}: free local {slot.offer.gpu.name} ({e.vram_gib:.1f} GiB), "
                                       f"{duration_text(e.hours * 3600)}, {usd_text(e.cost_usd)}", slot, option)
    return Decision("wait", f"{why}: waiting {duration_text(slot.busy_for_h * 3600)} for local {slot.offer.gpu.name}, "
                            f"then {duration_text(e.hours * 3600)}", slot, option)


def _cloud(ask: JobAsk, model: ModelShape, offers: list[Offer], calibration: Calibration, spend_left_usd: float,
           spot_mode: SpotMode, fit_cache: dict[str, Fit], refusals: LaunchRefusals | None, local_offers: list[Offer]
           ) -> tuple[Option | None, str]:
    """The cloud offer for the job within its budget, and the month's spend cap after it, so that the cap is named
    as the block only when the job's own budget takes an offer (it was named, and the job waited for next month,
    when no offer met the budget either). With none, why, as `orch plan` says it over `local_offers` too: the
    cheapest cloud's price was advised where the local CPU at a thousandth of it would do."""
    allow_spot = spot_mode == SpotMode.ALWAYS or \
        (spot_mode == SpotMode.AUTO and ask.preemptions < MAX_SPOT_PREEMPTIONS)
    result = plan(ask.spec, model, offers, PlanPolicy(budget_usd=max(0.0, ask.budget_usd),
                                                      deadline_hours=ask.deadline_h, allow_spot=allow_spot),
                  calibration, fit_cache)
    options = result.options
    if spot_mode == SpotMode.AUTO and ask.deadline_h is not None:  # spot needs slack in the deadline for preemptions
        options = [o for o in options if not o.offer.spot or o.estimate.hours * SPOT_SLACK_FACTOR <= ask.deadline_h]
    refusal = refusals(result.policy.budget_usd, {o.offer: o.estimate.cost_usd for o in result.options}) \
        if refusals is not None else None
    whys = [(o, refusal(o.offer) if refusal is not None else None) for o in options]
    options = [o for o, why in whys if not why]
    if spot_mode == SpotMode.ALWAYS and any(o.offer.spot for o in options):
        options = [o for o in options if o.offer.spot]
    if within_cap := [o for o in options if o.estimate.cost_usd <= spend_left_usd]:
        chosen = within_cap[0]
        if chosen.offer.spot:
            why = "spot: the job checkpoints" + (
                f" and {duration_text(chosen.estimate.hours * 3600)} x {SPOT_SLACK_FACTOR} fits the "
                f"{duration_text(ask.deadline_h * 3600)} deadline" if ask.deadline_h else "")
        elif ask.preemptions >= MAX_SPOT_PREEMPTIONS and spot_mode == SpotMode.AUTO:
            why = f"on-demand after {ask.preemptions} preemptions"
        else:
            why = "on-demand"
        ahead = [(o.offer, why.rstrip(".")) for o, why in itertools.takewhile(lambda entry: entry[0] is not chosen,
                                                                                 whys) if why]
        return chosen, why + _passed_over(ahead, chosen.offer)
    if options:  # within the job's budget, not within what the month has left
        return None, f"the monthly spend cap leaves {usd_text(max(0.0, spend_left_usd))}"
    if refused := [(o.offer, why.rstrip(".")) for o, why in whys if why]:
        said = "; ".join(why for why in _first_refusals(refused) if why)
        return None, f"{said}; no other cloud offer meets the job's budget and deadline"
    if result.options:
        return None, "spot needs more slack than the deadline has"
    every = plan(ask.spec, model, local_offers + offers, result.policy, calibration, fit_cache)
    return None, no_option_message(result if every.options else every)  # a local one the policy passed over: busy


def _passed_over(ahead: list[tuple[Offer, str]], chosen: Offer) -> str:
    """The offers ranked above the chosen one that a launch would refuse, with why: `orch queue --explain` said
    "on-demand" of a job that passed over a cheaper on-demand offer."""
    spot, on_demand = _first_refusals(ahead)
    said = ([f"not spot: {spot}"] if spot and not chosen.spot else []) + ([f"not {on_demand}"] if on_demand else [])
    return f" ({'; '.join(said)})" if said else ""


def _first_refusals(refused: list[tuple[Offer, str]]) -> tuple[str | None, str | None]:
    """The first spot offer's refusal, and the first on-demand one's with its cloud and region: a job every offer of
    both kinds was refused for was told only the spot one's, with its advice to launch on-demand (--no-spot)."""
    spot = next((why for offer, why in refused if offer.spot), None)
    on_demand = next((f"{offer.provider} {offer.region}: {why}" for offer, why in refused if not offer.spot), None)
    return spot, on_demand


def _no_local_card(ask: JobAsk, model: ModelShape, slots: list[LocalSlot], calibration: Calibration,
                   fit_cache: dict[str, Fit]) -> str:
    """Why no local card takes the job. A card it fits was left out for its time (the CPU), its cost or a setting,
    and that is said; otherwise the largest card (GPUs before the CPU) is named with what the job needs there: it is
    the closest to fitting, so the shortfall is the least any card has."""
    if not slots:
        return "no local card"
    ranked = sorted(slots, key=_gpu_then_memory, reverse=True)
    fitting = [(slot, fit) for slot in ranked if (fit := job_fit(ask.spec, model, slot.offer.gpu, calibration,
                                                                   fit_cache)).fits]
    for slot, fit in fitting:
        if unsupported_on(ask.spec, slot.offer.gpu) is None:  # fits and runs: its time or its cost left it out
            hours, cost_usd = hours_and_cost(fit, slot.offer, model, ask.spec.resolved_train_tokens())
            if slot.offer.gpu.kind == "cpu" and hours > CPU_MAX_HOURS:
                return f"the local CPU would take {hours:,.1f} h (it takes tiny jobs: {CPU_MAX_HOURS:g} h at most)"
            return (f"the local {slot.offer.gpu.name} fits but costs {usd_text(cost_usd)}, over the "
                    f"{usd_text(ask.budget_usd)} budget")
    if fitting:
        gpu = fitting[0][0].offer.gpu
        return f"no local card runs it ({gpu.name}: {unsupported_on(ask.spec, gpu)})"
    largest = ranked[0].offer.gpu
    fit = job_fit(ask.spec, model, largest, calibration, fit_cache)
    return f"no local card fits (the largest, {largest.name}: {fit.reason.removeprefix('does not fit: ')})"


def _gpu_then_memory(slot: LocalSlot) -> tuple[bool, float]:
    return slot.offer.gpu.kind != "cpu", slot.offer.gpu.vram_gib


def never_placed(spec: JobConfig, model: ModelShape, offers: list[Offer], budget_usd: float | None,
                 calibration: Calibration = NO_CALIBRATION) -> str | None:
    """Why no target, local or cloud, would ever take the job, as `orch plan` says it: none trains it within
    `budget_usd` at today's prices (the cheapest that would do, and the budget it needs), or none holds it at all (a
    70B full fine-tune needing 528 GiB). None when one does, or when what stops it may pass (a busy or absent local
    card). The scheduler rejects such a job on its first pass, so `orch submit` refuses it, as plan and launch do."""
    result = plan(spec, model, offers, PlanPolicy(budget_usd=math.inf if budget_usd is None else budget_usd),
                  calibration)
    if result.options or any(r.kind in ("busy", "absent") for r in result.rejected):
        return None
    return no_option_message(result)


def _lateness(finish_h: float, deadline_h: float) -> str:
    """How a local card that misses the deadline misses it: past it, or inside it without the safety margin (a
    negative `h late` read as nonsense)."""
    if finish_h > deadline_h:
        return f", {duration_text((finish_h - deadline_h) * 3600, round_up=True)} late"  # as the deadline is said
    return (f", {duration_text(finish_h * 3600)} of the {duration_text(deadline_h * 3600)} deadline: no "
            f"{DEADLINE_SAFETY_FACTOR:g}x margin for scatter")


def decide(ask: JobAsk, model: ModelShape, slots: list[LocalSlot], cloud_offers: list[Offer],
           calibration: Calibration = NO_CALIBRATION, spend_left_usd: float = math.inf,
           spot_mode: SpotMode = SpotMode.AUTO, fit_cache: dict[str, Fit] | None = None,
           refusals: LaunchRefusals | None = None) -> Decision:
    """Where the job goes now, with its reason. `refusals` says which cloud offers `orch launch` would refuse (the
    scheduler asks SkyPilot's local state); without it, as in the simulator, every offer the planner takes is
    launchable."""
    fit_cache = {} if fit_cache is None else fit_cache
    local_offers = list({id(slot.offer): slot.offer for slot in slots}.values())  # the CPU's slots share one
    slots = _on_job_threads(slots, ask.spec.cpu_threads)  # what the planner does for local_offers
    local = _local_options(ask, model, slots, calibration, fit_cache)
    if ask.deadline_h is None:
        in_time = [entry for entry in local if entry.slot.busy_for_h <= MAX_WAIT_WITHOUT_DEADLINE_H]
    else:
        in_time = [entry for entry in local if entry.finish_h * DEADLINE_SAFETY_FACTOR <= ask.deadline_h]
    if in_time:
        return _start_or_wait(ask, model, in_time[0], "fits locally and meets the deadline" if ask.deadline_h else
                              "fits locally")
    option, why = _cloud(ask, model, cloud_offers, calibration, spend_left_usd, spot_mode, fit_cache, refusals,
                         local_offers) if cloud_offers else (None, "no cloud allowed")
    local_why = _no_local_card(ask, model, slots, calibration, fit_cache) if not local \
        else "no local card meets the deadline" if ask.deadline_h \
        else f"every local card that fits is busy for over {MAX_WAIT_WITHOUT_DEADLINE_H:g} h"
    if option is not None:
        o, e = option.offer, option.estimate
        return Decision("start_cloud", f"{local_why}; {why}: {o.gpu.name} on {o.provider} {o.region}, "
                                       f"{duration_text(e.hours * 3600)}, {usd_text(e.cost_usd)}", option=option)
    if local:
        late = "" if ask.deadline_h is None else _lateness(local[0].finish_h, ask.deadline_h)
        return _start_or_wait(ask, model, local[0], f"{why.rstrip('.')}; late is better than never{late}")
    if why.startswith("the monthly spend cap"):
        return Decision("wait", f"{local_why}; {why}: waiting for next month")
    return Decision("reject", f"{local_why}; {why.rstrip('.')}")
