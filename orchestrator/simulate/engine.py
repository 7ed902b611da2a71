"""The discrete-event simulation: jobs arrive, the policy (orchestrator/schedule/policy.py, the scheduler's own)
places each one, local cards run one job at a time with a queue each, cloud runs start after their provisioning
(part of the estimate's start-up), spot runs are preempted at a Poisson rate and lose the work since their last
checkpoint. Every job ends exactly once: done or rejected.

Policies: hybrid (the scheduler's), local-only (wait for an owned card), cloud-only (on-demand), cloud-spot
(spot wherever offered). Real run times scatter around the estimate (log-normal), seeded. A card's queue is first
come, first served, so the wait the policy is told is the wait the job gets; jobs arriving at once keep trace
order. The trace streams through: see Simulation.
"""

import heapq
import itertools
import math
import random
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import GPU
from gpu_catalog.offer import Offer
from gpu_catalog.offers import cheapest_offers
from gpu_catalog.owned import OwnedCard, OwnedHardware, hardware_file, owned_offer
from orchestrator.cost import cloud_charges, preemptions_per_hour
from orchestrator.estimator.calibration import NO_CALIBRATION, Calibration
from orchestrator.schedule.policy import JobAsk, LocalSlot, SpotMode, decide
from orchestrator.simulate.shapes import Shape, ShapeCache
from orchestrator.simulate.summary import REJECTED, RunningSummary

POLICIES = ("hybrid", "local-only", "cloud-only", "cloud-spot")
SPOT_MODE = {"hybrid": SpotMode.AUTO, "local-only": SpotMode.NEVER, "cloud-only": SpotMode.NEVER,
             "cloud-spot": SpotMode.ALWAYS}
CLOUD_ONLY = ("cloud-only", "cloud-spot")  # the policies that rent every GPU: owned cards take no job
MAX_LOCAL_CARDS = 1024
# The policy is asked with the 1, then 4 cheapest offers (of each kind, where spot is preferred) before the shape's
# winnable ones: most jobs take the cheapest; a deadline that rules it out leaves one of the next few.
FIRST_OFFERS = (1, 4)
MAX_SPOT_PREEMPTIONS_PER_H = 3600.0  # one a second: no run gets anywhere past it, so a larger rate is a typo
MAX_PREEMPTIONS = 100  # a spot rate so high that runs never reach a checkpoint must still end every job
RUNTIME_SPREAD = 0.15  # sigma of log(actual / estimated run time)


@dataclass(frozen=True)
class SimSettings:
    policy: str = "hybrid"
    seed: int = 0
    # None: the plan's rate for each offer's GPU (cost.preemptions_per_hour), so a simulation and the plans it
    # compares agree (a flat 0.05/h preempted ~350x as often as every plan priced); 0: never
    spot_preemptions_per_h: float | None = None
    checkpoint_interval_h: float = 0.5  # the work a preemption loses is uniform in [0, interval]

    def __post_init__(self):
        problems = []
        if self.policy not in POLICIES:
            problems.append(f"--policy must be one of {', '.join(POLICIES)} or all, got {self.policy!r}")
        try:
            checks.optional_number(self.spot_preemptions_per_h, "--spot-preemptions-per-h", 0,
                                   MAX_SPOT_PREEMPTIONS_PER_H)
        except UserError as exc:  # its range, and a subnormal (1e-320) too near 0 to compute with
            problems.append(str(exc).rstrip("."))
        if not (math.isfinite(self.checkpoint_interval_h) and self.checkpoint_interval_h >= 0):
            problems.append(f"the checkpoint interval must be 0 or more hours, got {self.checkpoint_interval_h}")
        if problems:
            raise UserError("; ".join(problems) + ".")


class _Slot:
    __slots__ = ("slot_id", "offer", "index", "placement", "free_at", "backlog_h", "waiting", "busy_h")

    def __init__(self, slot_id: str, offer: Offer, index: int):
        self.slot_id, self.offer, self.index, self.placement = slot_id, offer, index, f"local {offer.gpu.name}"
        self.free_at = 0.0
        self.backlog_h = 0.0  # estimated hours of the jobs waiting for it
        self.waiting: deque[_Job] = deque()  # first come, first served
        self.busy_h = 0.0


class _Job:
    """One job while it is in the simulation; slots, not a dict, as a long local queue holds most of a trace."""

    __slots__ = ("job_id", "arrival_h", "deadline_h", "budget_usd", "shape", "remaining_tokens", "preemptions",
                 "start_h", "cost_usd", "cloud_usd", "reason", "run_h", "estimated_h")

    def __init__(self, row: dict, shape: Shape):
        self.job_id, self.arrival_h, self.deadline_h = row["job_id"], row["arrival_h"], row["deadline_h"]
        self.budget_usd, self.shape, self.remaining_tokens = row["budget_usd"], shape, row["train_tokens"]
        self.preemptions, self.start_h, self.cost_usd, self.reason = 0, None, 0.0, ""
        self.cloud_usd = 0.0  # the part of cost_usd spent in the cloud: a job preempted there may end on a local card
        self.run_h = self.estimated_h = 0.0  # while waiting for a card: its actual and estimated hours


DecisionSink = Callable[[dict], None]


def _cloud_placement(offer: Offer) -> str:
    return f"cloud {offer.gpu.name} {offer.provider}{' spot' if offer.spot else ''}"


class _Watched(list):
    """A list of offers that records whether anyone went through it: the policy reads its cloud offers only when no
    local card takes the job in time, and a decision made without them would be the same with any list."""

    read = False

    def __iter__(self):
        self.read = True
        return super().__iter__()


class Simulation:
    """One pass over a trace. Rows are taken as simulated time reaches them; each job's decision row goes to
    `on_decision` when the job ends (in order of end time) and into the running summary; nothing per job is kept."""

    def __init__(self, local: list[Offer], cloud: list[Offer], settings: SimSettings,
                 calibration: Calibration = NO_CALIBRATION, on_decision: DecisionSink | None = None):
        self.settings, self.calibration, self.on_decision = settings, calibration, on_decision
        self.spot_mode = SPOT_MODE[settings.policy]
        self.rng = random.Random(settings.seed)
        self.slots = [] if settings.policy in CLOUD_ONLY else \
            [_Slot(f"{o.gpu.name}#{i}", o, i) for i, o in enumerate(local)]
        self.slot_by_id = {s.slot_id: s for s in self.slots}
        kinds: dict[int, list[_Slot]] = {}
        for slot in self.slots:
            kinds.setdefault(id(slot.offer), []).append(slot)
        self.slot_kinds = list(kinds.values())
        self.kinds_in_card_order = all(a[-1].index < b[0].index for a, b in itertools.pairwise(self.slot_kinds))
        self.cloud = [] if settings.policy == "local-only" else cheapest_offers(cloud)
        self.cloud_placements = {id(o): _cloud_placement(o) for o in self.cloud}  # every offer the policy is given
        self.shapes = ShapeCache(self.cloud, calibration)
        self.events: list = []  # (time_h, sequence, handler, args)
        self.sequence = 0
        # an owned card's purchase is paid by the hour of the calendar, busy or not: spread over the hardware
        # file's utilization instead, a card the simulation kept 70-96% busy cost 2-3x too much, and hybrid came out
        # dearer than cloud-only in the report that found owning the card pays
        self.summary = RunningSummary(len(self.slots), sum(s.offer.purchase_usd_per_hour for s in self.slots))

    def _push(self, time_h: float, handler, *args) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (time_h, self.sequence, handler, args))

    def run(self, rows: Iterable[dict]) -> dict:
        """Arrivals come before other events at the same hour, in trace order (the trace is sorted by arrival)."""
        events, rows = self.events, iter(rows)
        row = next(rows, None)
        while row is not None or events:
            if row is not None and (not events or row["arrival_h"] <= events[0][0]):
                job = _Job(row, self.shapes.get(row["model"], row["method"], row["seq_len"]))
                self.summary.arrived(job.arrival_h)
                self._dispatch(job, job.arrival_h)
                row = next(rows, None)
            else:
                now, _, handler, args = heapq.heappop(events)
                handler(now, *args)
        self.summary.local_busy_h = sum(s.busy_h for s in self.slots)
        return self.summary.result()

    # -- decisions ------------------------------------------------------------------------------------------------

    def _ask(self, job: _Job, now: float) -> JobAsk:
        """A deadline that has already passed (a preempted job sent back late) leaves the policy no deadline to meet:
        the job is finished as it would be without one, and counts as a miss when it ends."""
        deadline = None
        if job.deadline_h is not None:
            left_h = job.deadline_h - (now - job.arrival_h)
            deadline = left_h if left_h > 0 else None
        budget_usd = job.budget_usd - job.cost_usd
        return JobAsk(job.job_id, job.shape.spec(max(1, job.remaining_tokens)),
                      budget_usd if budget_usd > 0 else 0.0, deadline, job.preemptions)

    def _dispatch(self, job: _Job, now: float) -> None:
        ask, shape = self._ask(job, now), job.shape
        slots = self._local_slots(now)
        decision = self._decide(ask, shape, slots)
        job.reason = decision.reason
        if decision.action == "reject":
            self._end(job, now, REJECTED)
        elif decision.slot is not None:
            slot = self.slot_by_id[decision.slot.slot_id]
            estimated_h = decision.option.estimate.hours
            hours = self._actual(estimated_h)
            if slot.free_at <= now and not slot.waiting:
                self._start_local(slot, job, hours, now)
            else:
                job.run_h, job.estimated_h = hours, estimated_h
                job.budget_usd = job.remaining_tokens = None  # a local run is never sent back: free them for the wait
                slot.waiting.append(job)
                slot.backlog_h += estimated_h
        elif decision.action == "start_cloud":
            self._start_cloud(job, decision.option, now)
        else:  # waiting with no card to wait for: only a spend cap does that, and the simulation has none
            self._end(job, now, REJECTED)

    def _local_slots(self, now: float) -> list[LocalSlot]:
        """The least busy card of each kind (the first of equals), in card order: the policy ranks a card by when it
        would finish the job, so another card of the same kind that is busier can never be its choice. Cards of one
        kind usually sit together (local_cards makes them so), and then the kinds' order is the cards' order."""
        chosen = []
        for kind in self.slot_kinds:
            best, best_busy_h = None, 0.0
            for slot in kind:
                busy_for_h = slot.free_at - now
                busy_for_h = (busy_for_h if busy_for_h > 0 else 0.0) + slot.backlog_h
                if best is None or busy_for_h < best_busy_h:
                    best, best_busy_h = slot, busy_for_h
            chosen.append(LocalSlot(best.slot_id, best.offer, best_busy_h))
        if len(chosen) > 1 and not self.kinds_in_card_order:
            chosen.sort(key=self._card_index)
        return chosen

    def _card_index(self, slot: LocalSlot) -> int:
        return self.slot_by_id[slot.slot_id].index

    def _decide(self, ask: JobAsk, shape: Shape, slots: list[LocalSlot]):
        """The policy's decision, asked first with the cheapest offers, then the shape's winnable ones, then all
        (shapes.py says why each answer equals the policy's over all offers). A decision stands when the policy did
        not look at the cloud offers (a local card in time), or chose one from them, except a spot-always on-demand
        choice while some spot offer was left out."""
        if not shape.cloud:  # no offer can take the job: the few that give the policy's reason (shapes.py)
            return decide(ask, shape.model, slots, shape.reason_offers, self.calibration, spot_mode=self.spot_mode,
                          fit_cache=shape.fits)
        always, tokens = self.spot_mode == SpotMode.ALWAYS, ask.spec.train_tokens
        tried = 0
        for offers in self._offer_lists(shape, tokens):
            if (tried and len(offers) == tried) or (not offers and offers is not self.cloud):
                continue  # the same list again; or an empty one, which the policy reads as "no cloud allowed"
            watched, tried = _Watched(offers), len(offers)
            decision = decide(ask, shape.model, slots, watched, self.calibration, spot_mode=self.spot_mode,
                              fit_cache=shape.fits)
            if not watched.read:
                return decision
            if decision.action == "start_cloud" and (
                    not always or decision.option.offer.spot or sum(o.spot for o in offers) == shape.spot_count):
                return decision
            if offers is not self.cloud and shape.beyond_reach(tokens, ask.budget_usd, ask.deadline_h):
                return decide(ask, shape.model, slots, self.cloud, self.calibration, spot_mode=self.spot_mode,
                              fit_cache=shape.fits)  # no option anywhere: every offer, for the policy's reason
        return decision

    def _offer_lists(self, shape: Shape, train_tokens: int):
        """Ever larger lists of cloud offers, each holding the one before (FIRST_OFFERS says why). Where spot is
        preferred, the cheapest spot offer alone comes first: when it takes the job, the policy would choose it from
        any list (it keeps spot options only, where there are any, and takes the cheapest)."""
        if self.spot_mode == SpotMode.ALWAYS:
            yield shape.cheapest(train_tokens, 1, "spot")
        for count in FIRST_OFFERS:
            yield shape.cheapest(train_tokens, count, self.spot_mode)
        yield shape.cloud
        yield self.cloud

    def _actual(self, estimated_h: float) -> float:
        return estimated_h * math.exp(self.rng.gauss(0.0, RUNTIME_SPREAD))

    def _start_local(self, slot: _Slot, job: _Job, hours: float, now: float) -> None:
        job.start_h = now if job.start_h is None else job.start_h
        slot.free_at = now + hours
        slot.busy_h += hours
        energy = slot.offer.energy_usd_per_hour
        job.cost_usd += hours * (slot.offer.usd_per_hour if energy is None else energy)  # its purchase: the span's
        self._push(now + hours, self._on_local_done, slot, job)

    def _start_cloud(self, job: _Job, option, now: float) -> None:
        offer, estimate = option.offer, option.estimate
        job.start_h = now if job.start_h is None else job.start_h
        # the estimate's expected recovery is left out: the simulation draws the preemptions themselves
        planned_h = estimate.hours - estimate.recovery_hours
        hours = self._actual(planned_h)
        startup_h = estimate.startup_hours * hours / planned_h
        rate = self.settings.spot_preemptions_per_h
        rate = preemptions_per_hour(offer) if rate is None else rate
        preempt_after = self.rng.expovariate(rate) if offer.spot and rate > 0 else math.inf
        # the estimate's other parts: a preempted VM saves nothing and idles not at all, while the controller runs on
        controller_usd_per_hour, ending_usd = cloud_charges(estimate.parts_usd)
        usd_per_hour = offer.usd_per_hour + controller_usd_per_hour
        preempted = preempt_after < hours
        spent_usd = preempt_after * usd_per_hour if preempted else hours * usd_per_hour + ending_usd
        job.cost_usd += spent_usd
        job.cloud_usd += spent_usd
        if preempted:
            self._push(now + preempt_after, self._on_preempted, job, preempt_after - startup_h, hours - startup_h)
        else:
            self._push(now + hours, self._on_cloud_done, job, self.cloud_placements[id(offer)])

    def _end(self, job: _Job, now: float, placement: str) -> None:
        """A rejected job counts as rejected only: counted late as well, it was one failure shown twice."""
        missed = placement != REJECTED and job.deadline_h is not None and now - job.arrival_h > job.deadline_h
        self.summary.ended(placement, job.arrival_h, job.start_h, now, job.cost_usd, job.cloud_usd, missed,
                           job.preemptions)
        if self.on_decision is not None:
            self.on_decision({
                "job_id": job.job_id, "arrival_h": job.arrival_h, "placement": placement, "start_h": job.start_h,
                "end_h": now, "wait_h": None if job.start_h is None else job.start_h - job.arrival_h,
                "cost_usd": round(job.cost_usd, 4), "cloud_usd": round(job.cloud_usd, 4), "deadline_h": job.deadline_h,
                "missed_deadline": missed, "preemptions": job.preemptions, "reason": job.reason})

    # -- events ---------------------------------------------------------------------------------------------------

    def _on_local_done(self, now: float, slot: _Slot, job: _Job) -> None:
        self._end(job, now, slot.placement)
        if slot.waiting:
            waiter = slot.waiting.popleft()
            slot.backlog_h = max(0.0, slot.backlog_h - waiter.estimated_h)
            self._start_local(slot, waiter, waiter.run_h, now)

    def _on_cloud_done(self, now: float, job: _Job, placement: str) -> None:
        self._end(job, now, placement)

    def _on_preempted(self, now: float, job: _Job, trained_h: float, train_h: float) -> None:
        """The run loses its work since the last checkpoint; the job goes back to the policy with one more
        preemption on its count (after enough, the policy moves it to on-demand). `trained_h` of the run's
        `train_h` past its start-up had passed (negative: preempted while starting, nothing trained)."""
        kept_h = max(0.0, trained_h - self.rng.uniform(0, self.settings.checkpoint_interval_h))
        job.remaining_tokens = int(job.remaining_tokens * (1 - kept_h / train_h))
        job.preemptions += 1
        if job.preemptions >= MAX_PREEMPTIONS:
            job.reason = f"gave up after {job.preemptions} preemptions"
            self._end(job, now, REJECTED)
        else:
            self._dispatch(job, now)


def simulate(rows: Iterable[dict], local: list[Offer], cloud: list[Offer], settings: SimSettings,
             calibration: Calibration = NO_CALIBRATION, on_decision: DecisionSink | None = None) -> dict:
    """The summary of one policy over the trace; each job's decision row goes to `on_decision` as the job ends."""
    return Simulation(local, cloud, settings, calibration, on_decision).run(rows)


def declared_cards(hardware: OwnedHardware, cards: Iterable[OwnedCard], fix: str) -> list[Offer]:
    """One owned offer per card the hardware file declares, as `--local` gives them, and within the same cap: 200
    pools of 1,024 cards each simulated for minutes where --local refused 1,025. `fix`: how the command goes on."""
    cards = list(cards)
    if (count := sum(card.count for card in cards)) > MAX_LOCAL_CARDS:  # counted before a million offers are made
        raise UserError(f"the hardware file ({hardware_file()}) declares {count:,} cards, past the "
                        f"{MAX_LOCAL_CARDS:,} the simulator models: {fix}.")
    return [owned_offer(card, hardware, None, "owned card") for card in cards for _ in range(card.count)]


def local_cards(text: str | None, offer_for) -> list[Offer]:
    """"2x RTX4090, 1x A6000" -> one local offer per card (offer_for(GPU) prices it); None (no --local) -> none. A
    text of no card ('' or ',,,') or an empty entry (",," or a trailing comma) is refused: it names no card, and is
    more likely a card left out than nothing."""
    from gpu_catalog.gpus import CountedGPUs, get_gpu

    if text is None:
        return []
    if not text.replace(",", "").strip():
        raise UserError("--local: give at least one card, e.g. '2x RTX4090' (or leave --local out for none).")
    if ";" in text:
        raise UserError(f"--local: {checks.short_repr(text)} separates entries with ';': separate them with commas, "
                        "e.g. '2x RTX4090, 1x A6000'.")
    cards: list[Offer] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise UserError("--local: an entry between commas is empty; give 'N x GPU' entries separated by single "
                            "commas, e.g. '2x RTX4090, 1x A6000'.")
        if any(char.isdigit() and not char.isascii() for char in part):  # `٢x RTX4090` was read as one card
            raise UserError(f"--local: {checks.short_repr(part)} writes a number in other digits than 0-9: write it "
                            "with the digits 0-9 (e.g. '2x RTX4090').")
        # `2x RTX 4090`, `2 x A6000`: a count in front; any other entry is one GPU's name (`rtx 4090` holds an `x `)
        found = re.fullmatch(r"([0-9]+)\s*[x×]\s+(\S.*)", part, re.IGNORECASE)
        count, name = (found[1], found[2]) if found else ("1", part)
        # a count that is no whole number (`2.5x A6000`, `nanx A6000`, `1e308x`) was looked up as a GPU's name
        miscounted = not found and re.fullmatch(r"[0-9.]+(?:e[-+]?[0-9]+)?\s*[x×]\s+\S.*", part, re.IGNORECASE)
        if int(count) == 0 or re.match(r"-?[0-9]+\s", name) or part.startswith("-") or miscounted:
            raise UserError(f"--local: '{part}' is not 'N x GPU' with N of 1 or more (e.g. '2x RTX4090').")
        try:
            gpu: GPU = get_gpu(name.strip())
        except CountedGPUs as counted:  # `2xA10G`, `RTX 4090 x2`: the count written another way
            if found:  # `2x H100 (x2)`: two counts, one entry
                raise UserError(f"--local: '{part}' gives its count twice: write it once (e.g. '4x H100').") from None
            gpu, count = counted.gpu, str(counted.count)
        if given := sum(card.gpu == gpu for card in cards):  # summed unsaid, and past the cap 1024 at a time
            raise UserError(f"--local: {gpu.name} is given more than once: give its cards in one entry, "
                            f"e.g. '{given + int(count)}x {gpu.name}'.")
        if len(cards) + int(count) > MAX_LOCAL_CARDS:  # in all: a cap per kind let 36 kinds bring 36,864
            raise UserError(f"--local: {len(cards) + int(count):,} cards is past the {MAX_LOCAL_CARDS:,} the "
                            "simulator models; give fewer.")
        cards += [offer_for(gpu)] * int(count)
    return cards
