"""What the simulator knows once per job shape (model, method, seq_len), so a million dispatches do not redo it: the
validated job config, the model, the auto-fits (one per GPU), and the cloud offers that can ever be chosen.

An offer can be dropped for a shape when another offer of the same kind (spot or on-demand) is at least as fast, starts
at least as soon, and costs at least as little per token and for its start-up: then, for any token count, whenever
the dropped offer passes the budget and the deadline, the other passes too and ranks first. The policy's choice is then
the same; only when it finds no cloud option at all does its reason name the rejected offers, and the engine asks
again with every offer (`ShapeCache.all_offers`).

Most jobs take one of the few offers that cost least for their token count, so the engine first asks the policy with
only those (`Shape.cheapest`): every offer left out costs more, so a cloud option found among them is the one the
policy would choose from them all. When none is found there, it asks again with more.

A shape no offer can take (none both fits and launches) gets the same reason from the planner whatever the job's
tokens, budget and deadline; the engine asks with the few offers that give it (`Shape.reason_offers`).
"""

import bisect
import math
from dataclasses import dataclass

from gpu_catalog.models import ModelShape, get_model
from gpu_catalog.offer import Offer
from orchestrator.cost import estimate_on_offer
from orchestrator.delivery import Delivery, delivery_for
from orchestrator.estimator.calibration import Calibration
from orchestrator.estimator.fit import Fit
from orchestrator.estimator.settings import unsupported_on
from orchestrator.planner import FILTER_KINDS, PlanPolicy, job_fit, plan
from trainer.config import JobConfig, config_from_dict

SIM_MICRO_BATCH, SIM_GRAD_ACCUM = 4, 4  # the job config every simulated job asks with; auto-fit adjusts it
COST_ROUNDING = 1e-9  # relative: the planner computes the same costs in another order of operations
AFFINE_PROBE_TOKENS = 10**9  # a token count far from 0, so the per-token terms are exact to float precision


@dataclass
class Shape:
    base: JobConfig  # train_tokens to be replaced per job
    model: ModelShape
    fits: dict[str, Fit]  # by GPU name, shared with the policy
    cloud: list[Offer]  # the offers that can win for this shape, in catalog order
    cost_terms: list[tuple[float, float]]  # per offer in `cloud`: USD per token and USD of start-up
    hour_terms: list[tuple[float, float]]  # per offer in `cloud`: hours per token and hours of start-up
    spot_count: int = 0
    reason_offers: list[Offer] | None = None  # where `cloud` is empty: the offers to ask with (see _reason_offers)

    def spec(self, train_tokens: int) -> JobConfig:
        """The shape's config for `train_tokens`. The config was validated once; this copies its fields rather than
        validate and build a 40-field frozen dataclass again on every dispatch (8 us each, a tenth of the run)."""
        fields = self.base.__dict__.copy()  # a plain copy of a dict is one memcpy, faster than {**fields, ...}
        fields["train_tokens"] = train_tokens
        spec = object.__new__(JobConfig)
        object.__setattr__(spec, "__dict__", fields)
        return spec

    def __post_init__(self):
        terms = [(per_token, startup, index) for index, (per_token, startup) in enumerate(self.cost_terms)]
        spot = [t for t in terms if self.cloud[t[2]].spot]
        on_demand = [t for t in terms if not self.cloud[t[2]].spot]
        groups = {"never": (on_demand,), "always": (spot, on_demand), "auto": (terms,), "spot": (spot,)}
        self._groups = {mode: [(group, *_sole_cheapest(group)) for group in kinds] for mode, kinds in groups.items()}

    def beyond_reach(self, train_tokens: int, budget_usd: float, deadline_h: float | None) -> bool:
        """No offer can take the job: even the cheapest is over the budget, or even the fastest misses the deadline
        (by more than rounding). The engine then asks the policy with every offer at once, for its reason."""
        margin = 1 + COST_ROUNDING
        if not self.cloud or min(train_tokens * a + b for a, b in self.cost_terms) > budget_usd * margin:
            return True
        return deadline_h is not None and min(train_tokens * a + b for a, b in self.hour_terms) > deadline_h * margin

    def cheapest(self, train_tokens: int, count: int, spot_mode: str) -> list[Offer]:
        """The `count` offers that cost least for `train_tokens` (and any within rounding of the last), in catalog
        order: of on-demand offers only when spot is never allowed; `count` of each kind when spot is preferred
        ("always"); spot offers only ("spot")."""
        kept = []
        for group, starts, sole in self._groups[spot_mode]:
            if len(group) <= count:
                kept += [index for _, _, index in group]
                continue
            if count == 1:  # most token counts fall where one offer is the sole cheapest (see _sole_cheapest)
                at = bisect.bisect_right(starts, train_tokens) - 1
                if at >= 0 and sole[at][0] < train_tokens < sole[at][1]:
                    kept.append(sole[at][2])
                    continue
            costs = [train_tokens * per_token + startup for per_token, startup, _ in group]
            cutoff = (min(costs) if count == 1 else sorted(costs)[count - 1]) * (1 + COST_ROUNDING)
            kept += [group[i][2] for i, cost in enumerate(costs) if cost <= cutoff]
        if len(kept) > 1:
            kept.sort()
        return [self.cloud[index] for index in kept]


def _sole_cheapest(group: list[tuple[float, float, int]]) -> tuple[list[float], list[tuple[float, float, int]]]:
    """For offers whose cost is per_token x T + startup: the open token ranges (start, end, index) where one offer
    costs less than every other by more than COST_ROUNDING, sorted, with their starts for bisection. Each other offer
    j is that much dearer than i on a half-line of T (both costs are linear), so i's range is an intersection of
    half-lines; the ranges of different offers cannot overlap."""
    ranges = []
    margin = 1 + COST_ROUNDING
    for per_token, startup, index in group:
        start, end = 0.0, math.inf
        for other_per_token, other_startup, other_index in group:
            if other_index == index:
                continue
            slope, offset = other_per_token - margin * per_token, margin * startup - other_startup
            if slope > 0:
                start = max(start, offset / slope)
            elif slope < 0:
                end = min(end, offset / slope)
            elif offset >= 0:  # as dear per token, and not dearer at start-up by the margin: never sole
                end = start
        if start < end:
            ranges.append((start, end, index))
    ranges.sort()
    return [r[0] for r in ranges], ranges


def _affine_terms(fit: Fit, offer: Offer, model: ModelShape, checkpoint_minutes: float
                  ) -> tuple[float, float, float, float]:
    """(hours per token, hours of start-up, USD per token, USD of start-up): the estimate's hours and cost are affine
    in the token count (start-up, controller and idle window fixed; GPU time, the controller's share and expected
    preemptions in proportion), so two evaluations give the terms exactly, whatever the cost model counts."""
    empty, full = (estimate_on_offer(fit, offer, model, tokens, None, checkpoint_minutes)
                   for tokens in (0, AFFINE_PROBE_TOKENS))
    hours_per_token = (full.hours - empty.hours) / AFFINE_PROBE_TOKENS
    usd_per_token = (full.cost_usd - empty.cost_usd) / AFFINE_PROBE_TOKENS
    return hours_per_token, empty.hours, usd_per_token, empty.cost_usd


def _dominates(a: tuple, b: tuple) -> bool:
    """Offer a is no worse than b for any token count: the hours and the cost of T tokens are both
    T x (per-token term) + (start-up term), so a needs each of the four terms no larger than b's."""
    return all(x <= y for x, y in zip(a, b, strict=True))


def winnable(offers: list[Offer], spec: JobConfig, model: ModelShape, calibration: Calibration,
             fits: dict[str, Fit]) -> tuple[list[Offer], list[tuple[float, float]], list[tuple[float, float]]]:
    """The offers (and their cost and hour terms) the job shape fits on that no other offer of the same kind beats
    on speed, start-up and price together (of equals, the first in catalog order stays, as the planner's stable sort
    would pick it)."""
    scored = []
    for index, offer in enumerate(offers):
        fit = job_fit(spec, model, offer.gpu, calibration, fits)
        launchable = offer.is_local or isinstance(delivery_for(offer), Delivery)  # as the planner judges it
        if fit.fits and launchable and unsupported_on(spec, offer.gpu) is None:
            scored.append((index, offer, _affine_terms(fit, offer, model, spec.save_every_minutes)))
    kept, cost_terms, hour_terms = [], [], []
    for index, offer, score in scored:
        beaten = any(other.spot == offer.spot and _dominates(other_score, score)
                     and (other_score != score or other_index < index)
                     for other_index, other, other_score in scored if other_index != index)
        if not beaten:
            kept.append(offer)
            cost_terms.append(score[2:])
            hour_terms.append(score[:2])
    return kept, cost_terms, hour_terms


def _reason_offers(offers: list[Offer], spec: JobConfig, model: ModelShape, calibration: Calibration,
                   fits: dict[str, Fit]) -> list[Offer]:
    """For a shape no offer can take: the offers whose rejections give the planner's own reason. Every offer is out
    for spot, launch or memory, none of which depends on the tokens, budget or deadline; where some are out for
    memory, the reason names the largest GPU the job does not fit (no_option_message), and that GPU alone (with spot
    allowed, and not) gives the same reason, in catalog order so ties fall the same way. Otherwise the reason counts
    every rejection: every offer."""
    picked = set()
    for allow_spot in (True, False):
        result = plan(spec, model, offers, PlanPolicy(budget_usd=math.inf, allow_spot=allow_spot), calibration, fits)
        kinds = {r.kind for r in result.rejected}
        if result.options or "memory" not in kinds or kinds - {"memory", *FILTER_KINDS}:
            return offers
        largest = max((r for r in result.rejected if r.kind == "memory"), key=lambda r: r.offer.gpu.vram_gib)
        picked.add(id(largest.offer))
    return [offer for offer in offers if id(offer) in picked]


class ShapeCache:
    def __init__(self, cloud: list[Offer], calibration: Calibration):
        self.all_offers, self.calibration = cloud, calibration
        self.shapes: dict[tuple[str, str, int], Shape] = {}
        self.models: dict[str, ModelShape] = {}

    def get(self, model_name: str, method: str, seq_len: int) -> Shape:
        key = (model_name, method, seq_len)
        shape = self.shapes.get(key)
        if shape is None:
            base = config_from_dict({"model": model_name, "method": method, "seq_len": seq_len, "train_tokens": 1,
                                     "micro_batch": SIM_MICRO_BATCH, "grad_accum": SIM_GRAD_ACCUM})
            if model_name not in self.models:
                self.models[model_name] = get_model(model_name)
            model, fits = self.models[model_name], {}
            cloud, cost_terms, hour_terms = winnable(self.all_offers, base, model, self.calibration, fits)
            reasons = None if cloud else _reason_offers(self.all_offers, base, model, self.calibration, fits)
            shape = self.shapes[key] = Shape(base, model, fits, cloud, cost_terms, hour_terms,
                                             sum(o.spot for o in cloud), reasons)
        return shape
