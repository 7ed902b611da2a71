"""The discrete-event simulation: jobs arrive, the policy (orchestrator/schedule/policy.py, the scheduler's own)
places each one, local cards run one job at a time with a queue each, cloud runs start after their provisioning
(part of the estimate's start-up), spot runs are preempted at a Poisson rate and lose the work since their last
checkpoint. Every job ends exactly once: done or rejected.

Policies: hybrid (the scheduler's), local-only (wait for an owned card), cloud-only (on-demand), cloud-spot
(spot wherever offered). Real run times scatter around the estimate (log-normal), seeded. A card's queue is first
come, first served, so the wait the policy is told is the wait the job gets; priority orders jobs arriving at once.
"""

import heapq
import itertools
import math
import random
from collections import deque
from dataclasses import dataclass, field

from gpu_catalog.gpus import GPU
from gpu_catalog.models import get_model
from gpu_catalog.offer import Offer
from gpu_catalog.offers import cheapest_offers
from orchestrator.estimator.calibration import NO_CALIBRATION, Calibration
from orchestrator.schedule.policy import JobAsk, LocalSlot, decide
from trainer.config import config_from_dict

POLICIES = ("hybrid", "local-only", "cloud-only", "cloud-spot")
SPOT_MODE = {"hybrid": "auto", "local-only": "never", "cloud-only": "never", "cloud-spot": "always"}
RUNTIME_SPREAD = 0.15  # sigma of log(actual / estimated run time)


@dataclass(frozen=True)
class SimSettings:
    policy: str = "hybrid"
    seed: int = 0
    spot_preemptions_per_h: float = 0.05  # one preemption per 20 h of spot time on average
    checkpoint_interval_h: float = 0.5  # the work a preemption loses is uniform in [0, interval]


@dataclass
class _Slot:
    slot_id: str
    offer: Offer
    free_at: float = 0.0
    backlog_h: float = 0.0  # estimated hours of the jobs waiting for it
    waiting: deque = field(default_factory=deque)  # (job, actual hours, estimated hours), first come first served
    busy_h: float = 0.0


@dataclass
class _Job:
    row: dict
    remaining_tokens: int
    preemptions: int = 0
    start_h: float | None = None
    end_h: float | None = None
    cost_usd: float = 0.0
    placement: str = ""
    reason: str = ""


class Simulation:
    def __init__(self, rows: list[dict], local: list[Offer], cloud: list[Offer], settings: SimSettings,
                 calibration: Calibration = NO_CALIBRATION):
        self.settings, self.calibration = settings, calibration
        self.rng = random.Random(settings.seed)
        self.slots = [] if settings.policy in ("cloud-only", "cloud-spot") else \
            [_Slot(f"{o.gpu.name}#{i}", o) for i, o in enumerate(local)]
        self.cloud = [] if settings.policy == "local-only" else cheapest_offers(cloud)
        self.jobs = [_Job(row, row["train_tokens"]) for row in rows]
        self.events: list = []
        self.sequence = itertools.count()
        self.fit_caches: dict[tuple, dict] = {}
        self.models: dict[str, object] = {}

    def _push(self, time_h: float, kind: str, *payload) -> None:
        heapq.heappush(self.events, (time_h, next(self.sequence), kind, payload))

    def run(self) -> list[_Job]:
        for job in self.jobs:
            self._push(job.row["arrival_h"], "arrive", job)
        while self.events:
            now, _, kind, payload = heapq.heappop(self.events)
            getattr(self, f"_on_{kind}")(now, *payload)
        return self.jobs

    # -- decisions ------------------------------------------------------------------------------------------------

    def _ask(self, job: _Job, now: float) -> tuple[JobAsk, object, dict]:
        row = job.row
        spec = config_from_dict({"model": row["model"], "method": row["method"], "seq_len": row["seq_len"],
                                 "train_tokens": max(1, job.remaining_tokens), "micro_batch": 4, "grad_accum": 4})
        deadline = row["deadline_h"] - (now - row["arrival_h"]) if row["deadline_h"] is not None else None
        spent = job.cost_usd
        ask = JobAsk(row["job_id"], spec, max(0.0, row["budget_usd"] - spent), deadline, job.preemptions)
        if row["model"] not in self.models:
            self.models[row["model"]] = get_model(row["model"])
        cache = self.fit_caches.setdefault((row["model"], row["method"], row["seq_len"]), {})
        return ask, self.models[row["model"]], cache

    def _dispatch(self, job: _Job, now: float) -> None:
        ask, model, cache = self._ask(job, now)
        slots = [LocalSlot(s.slot_id, s.offer, max(0.0, s.free_at - now) + s.backlog_h) for s in self.slots]
        decision = decide(ask, model, slots, self.cloud, self.calibration,
                          spot_mode=SPOT_MODE[self.settings.policy], fit_cache=cache)
        job.reason = decision.reason
        if decision.action == "reject":
            job.end_h, job.placement = now, "rejected"
        elif decision.slot is not None:
            slot = next(s for s in self.slots if s.slot_id == decision.slot.slot_id)
            hours = self._actual(decision.option.estimate.hours)
            if slot.free_at <= now and not slot.waiting:
                self._start_local(slot, job, hours, now)
            else:
                slot.waiting.append((job, hours, decision.option.estimate.hours))
                slot.backlog_h += decision.option.estimate.hours
        elif decision.action == "start_cloud":
            self._start_cloud(job, decision.option, now)
        else:  # waiting with no card to wait for: only a spend cap does that, and the simulation has none
            job.end_h, job.placement = now, "rejected"

    def _actual(self, estimated_h: float) -> float:
        return estimated_h * math.exp(self.rng.gauss(0.0, RUNTIME_SPREAD))

    def _start_local(self, slot: _Slot, job: _Job, hours: float, now: float) -> None:
        job.start_h = now if job.start_h is None else job.start_h
        job.placement = f"local {slot.offer.gpu.name}"
        slot.free_at = now + hours
        slot.busy_h += hours
        job.cost_usd += hours * slot.offer.usd_per_hour
        self._push(now + hours, "local_done", slot, job)

    def _start_cloud(self, job: _Job, option, now: float) -> None:
        offer = option.offer
        job.start_h = now if job.start_h is None else job.start_h
        job.placement = f"cloud {offer.gpu.name} {offer.provider}{' spot' if offer.spot else ''}"
        hours = self._actual(option.estimate.hours)
        preempt_after = self.rng.expovariate(self.settings.spot_preemptions_per_h) if offer.spot else math.inf
        if preempt_after < hours:
            job.cost_usd += preempt_after * offer.usd_per_hour
            self._push(now + preempt_after, "preempted", job, preempt_after, hours)
        else:
            job.cost_usd += hours * offer.usd_per_hour
            self._push(now + hours, "cloud_done", job)

    # -- events ---------------------------------------------------------------------------------------------------

    def _on_arrive(self, now: float, job: _Job) -> None:
        self._dispatch(job, now)

    def _on_local_done(self, now: float, slot: _Slot, job: _Job) -> None:
        job.end_h = now
        if slot.waiting:
            waiter, hours, estimated_h = slot.waiting.popleft()
            slot.backlog_h = max(0.0, slot.backlog_h - estimated_h)
            self._start_local(slot, waiter, hours, now)

    def _on_cloud_done(self, now: float, job: _Job) -> None:
        job.end_h = now

    def _on_preempted(self, now: float, job: _Job, ran_h: float, run_h: float) -> None:
        """The run loses its work since the last checkpoint; the job goes back to the policy with one more
        preemption on its count (after enough, the policy moves it to on-demand)."""
        kept_h = max(0.0, ran_h - self.rng.uniform(0, self.settings.checkpoint_interval_h))
        job.remaining_tokens = int(job.remaining_tokens * (1 - kept_h / run_h))
        job.preemptions += 1
        self._dispatch(job, now)


def summarize(jobs: list[_Job], slots_count: int, busy_h: float) -> dict:
    done = [j for j in jobs if j.placement != "rejected"]
    waits = [j.start_h - j.row["arrival_h"] for j in done if j.start_h is not None]
    missed = [j for j in jobs if j.row["deadline_h"] is not None and
              (j.placement == "rejected" or j.end_h - j.row["arrival_h"] > j.row["deadline_h"])]
    span = max((j.end_h for j in jobs), default=0.0) - min((j.row["arrival_h"] for j in jobs), default=0.0)
    local_cost = sum(j.cost_usd for j in done if j.placement.startswith("local"))
    return {
        "jobs": len(jobs), "completed": len(done), "rejected": len(jobs) - len(done),
        "total_cost_usd": sum(j.cost_usd for j in jobs), "local_cost_usd": local_cost,
        "cloud_cost_usd": sum(j.cost_usd for j in jobs) - local_cost,
        "deadline_misses": len(missed), "mean_wait_h": sum(waits) / len(waits) if waits else 0.0,
        "local_utilization": busy_h / (slots_count * span) if slots_count and span > 0 else 0.0,
        "preemptions": sum(j.preemptions for j in jobs), "makespan_h": span,
    }


def simulate(rows: list[dict], local: list[Offer], cloud: list[Offer], settings: SimSettings,
             calibration: Calibration = NO_CALIBRATION) -> tuple[dict, list[dict]]:
    """(summary, one decision row per job)."""
    sim = Simulation(rows, local, cloud, settings, calibration)
    jobs = sim.run()
    summary = summarize(jobs, len(sim.slots), sum(s.busy_h for s in sim.slots))
    decisions = [{"job_id": j.row["job_id"], "arrival_h": j.row["arrival_h"], "placement": j.placement,
                  "start_h": j.start_h, "end_h": j.end_h,
                  "wait_h": None if j.start_h is None else j.start_h - j.row["arrival_h"],
                  "cost_usd": round(j.cost_usd, 4), "deadline_h": j.row["deadline_h"],
                  "missed_deadline": j.row["deadline_h"] is not None and (
                      j.placement == "rejected" or j.end_h - j.row["arrival_h"] > j.row["deadline_h"]),
                  "preemptions": j.preemptions, "reason": j.reason} for j in jobs]
    return summary, decisions


def local_cards(text: str, offer_for) -> list[Offer]:
    """"2x RTX4090, 1x A6000" -> one local offer per card (offer_for(GPU) prices it)."""
    from gpu_catalog.errors import UserError
    from gpu_catalog.gpus import get_gpu

    cards: list[Offer] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        count, _, name = part.partition("x ") if "x " in part else ("1", "", part)
        if not count.strip().isdigit():
            raise UserError(f"--local: '{part}' is not 'N x GPU' (e.g. '2x RTX4090').")
        gpu: GPU = get_gpu(name.strip())
        cards += [offer_for(gpu)] * int(count)
    return cards
