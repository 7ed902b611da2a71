"""The planner: a pure function from (job, model shape, offers, policy) to a Plan that ranks every target that can
run the job within budget and deadline, and says why each other target was rejected. No I/O, inputs unchanged."""

import dataclasses
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from gpu_catalog.errors import UserError
from gpu_catalog.local import on_cpu_threads
from gpu_catalog.models import ModelShape
from gpu_catalog.offer import Offer
from gpu_catalog.units import MAX_BUDGET_USD, MAX_DEADLINE_H, above_texts, duration_text, usd_text
from orchestrator.cost import Estimate, StartupTimes, estimate_on_offer
from orchestrator.delivery import Delivery, NoDelivery, delivery_for
from orchestrator.estimator.calibration import NO_CALIBRATION, Calibration
from orchestrator.estimator.fit import Fit, auto_fit, checkpointing_choices
from orchestrator.estimator.memory import usable_vram_gib
from orchestrator.estimator.settings import settings_from_job, unsupported_in_cloud, unsupported_on
from orchestrator.frozen import quick_init
from trainer.config import JobConfig, row_fill

OBJECTIVES = ("cost", "time")
CPU_MAX_HOURS = 1.0  # the CPU is a target for tiny jobs, not a week-long crawl that is cheap only per hour
FAILOVER_PRICE_BAND = 1.25  # failover offers cost at most this much more per hour than the chosen one
FILTER_KINDS = ("provider", "spot", "launch", "price", "unsupported")  # out before the job's fit is looked at
# the kinds of rejection as the catch-all refusal says them: "rejections: 2 absent, 1 cpu, 217 provider" was jargon,
# and the offers the user's own --target or --providers left out were counted as if they had been tried
KIND_WORDS = {"absent": "declared in the hardware file but not on this machine", "launch": "that a launch would refuse",
              "price": "over --max-usd-per-hour", "unsupported": "that cannot run one of its settings",
              "memory": "too small for it", "busy": "busy", "cpu": "CPU past its time limit",
              "budget": "over budget", "deadline": "past the deadline"}
MAX_FAILOVER_OFFERS = 4  # besides the chosen one: enough to ride out a short capacity gap, short enough to read
# Why `orch launch` would refuse a run on a cloud offer before buying a VM, in its words; None: it would launch it
LaunchRefusal = Callable[[Offer], str | None]
# The LaunchRefusal of a plan: given its budget and each offer's planned cost (an on-demand offer whose output would
# idle on its VM is refused only when that idle time passes the budget)
LaunchRefusals = Callable[[float, dict[Offer, float]], LaunchRefusal]


@quick_init
@dataclass(frozen=True)
class PlanPolicy:
    budget_usd: float
    deadline_hours: float | None = None
    objective: str = "cost"
    providers: frozenset[str] | None = None  # None: every provider
    allow_spot: bool = True
    cpu_max_hours: float = CPU_MAX_HOURS
    max_usd_per_hour: float | None = None  # caps the hourly price on top of the budget
    # asked of each cloud offer when the plan is launched (it reads SkyPilot's enabled storage clouds): a spot run
    # with no bucket for its checkpoints is refused at launch, so it is no option then
    launch_refusal: LaunchRefusal | None = None

    def __post_init__(self):
        problems = []
        if self.max_usd_per_hour is not None and not 0 < self.max_usd_per_hour < float("inf"):
            problems.append(f"--max-usd-per-hour must be above 0, got {self.max_usd_per_hour}")
        if self.budget_usd != self.budget_usd or self.budget_usd < 0:  # NaN, or below 0
            problems.append(f"--budget must be 0 or more USD, got {self.budget_usd}")
        if self.deadline_hours is not None and self.deadline_hours <= 0:
            problems.append(f"--deadline must be above 0 hours, got {self.deadline_hours}")
        if self.objective not in OBJECTIVES:
            problems.append(f"--objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if problems:
            raise UserError("; ".join(problems) + ".")


@quick_init
@dataclass(frozen=True)
class Option:
    """A target that can take the job. Cloud options carry how the output comes home (`delivery`) and the cheapest
    equivalent offers SkyPilot may fail over to (`failover`: same GPU, spot and delivery, other regions or clouds,
    within the price band and the budget); `worst_cost_usd` is the spend at the dearest of them."""

    offer: Offer
    estimate: Estimate
    delivery: Delivery | None = None
    failover: tuple[Offer, ...] = ()
    worst_cost_usd: float | None = None

    @property
    def offers(self) -> tuple[Offer, ...]:
        """The chosen offer first, then its failover offers: SkyPilot's ordered resources."""
        return (self.offer, *self.failover)

    @property
    def fitted_settings(self) -> dict:
        """The job keys auto-fit chose for this target (the effective batch kept): the run's job file carries them,
        or it trains the job's own micro-batch, which the plan found does not fit (and was not what it priced)."""
        return {"micro_batch": self.estimate.micro_batch, "grad_accum": self.estimate.grad_accum,
                "grad_ckpt": self.estimate.grad_ckpt}


@quick_init
@dataclass(frozen=True)
class Rejected:
    """A target that cannot take the job. `kind`: provider, spot, absent, launch (the cloud lacks a feature orch's
    task needs), price (over --max-usd-per-hour), unsupported (the device cannot run a setting: flash_attention_2
    before Ampere), memory, busy, cpu, budget or deadline.
    `vram_gib` is what the job needs there: the chosen configuration's, or the smallest tried when nothing fits."""

    offer: Offer
    kind: str
    reason: str
    vram_gib: float
    estimate: Estimate | None = None


@quick_init
@dataclass(frozen=True)
class Plan:
    spec: JobConfig
    policy: PlanPolicy
    train_tokens: int
    options: tuple[Option, ...]
    rejected: tuple[Rejected, ...]
    # where no GPU holds the job: the lighter methods that fit the largest GPU tried, (method, GiB) each
    lighter_fits: tuple[tuple[str, float], ...] = ()

    @property
    def chosen(self) -> Option | None:
        return self.options[0] if self.options else None


def _judge(spec: JobConfig, offer: Offer, delivery: Delivery | NoDelivery | None, fit: Fit,
           estimate: Estimate | None, policy: PlanPolicy) -> tuple[str, str] | None:
    """(kind, reason) when the offer is out, None when it is a valid option. Checks run cheapest-to-explain first.
    `delivery`: the cloud offer's (delivery_for), None for a local one."""
    if policy.providers is not None and offer.provider not in policy.providers:
        return "provider", f"provider {offer.provider} not allowed (allowed: {', '.join(sorted(policy.providers))})"
    if offer.spot and not policy.allow_spot:
        return "spot", "spot not allowed"
    if isinstance(delivery, NoDelivery):
        return "launch", delivery.reason
    if not offer.is_local and policy.launch_refusal is not None and (refused := policy.launch_refusal(offer)):
        return "launch", refused
    if unsupported := unsupported_on(spec, offer.gpu) or (None if offer.is_local else unsupported_in_cloud(spec)):
        return "unsupported", unsupported
    if policy.max_usd_per_hour is not None and offer.usd_per_hour > policy.max_usd_per_hour:
        return "price", (f"over --max-usd-per-hour: {_usd_at_least(offer.usd_per_hour)}/h > "
                         f"{usd_text(policy.max_usd_per_hour)}/h")
    if not fit.fits:
        return "memory", fit.reason
    if offer.is_local and not offer.present:  # after the fit: an SSH node pool for a card the job misses is no help
        return "absent", (f"{offer.gpu.name} is declared in the hardware file but not on this machine (it would take "
                          f"{estimate.hours:.3g} h, {usd_text(estimate.cost_usd)}): add `ssh_pool: NAME` to it to "
                          "train there through a SkyPilot SSH node pool")
    return _misses(offer, estimate, fit.memory.vram_gib, policy)


def _misses(offer: Offer, estimate: Estimate, vram_gib: float, policy: PlanPolicy) -> tuple[str, str] | None:
    """(kind, reason) when an offer the job fits (in `vram_gib`, with `estimate`) is still out: busy, the CPU's time
    limit, the budget or the deadline; None when it takes the job. Also asked of the offers --max-usd-per-hour took
    out, which of them the job would otherwise run on (no_option_message)."""
    if offer.free_vram_gib is not None and vram_gib > offer.free_vram_gib:
        needs_gib, free_gib = above_texts(vram_gib, offer.free_vram_gib)
        return "busy", f"busy: needs {needs_gib} GiB, {free_gib} GiB free"
    if offer.gpu.kind == "cpu" and estimate.hours > policy.cpu_max_hours:
        hours, limit_h = above_texts(estimate.hours, policy.cpu_max_hours)
        return "cpu", f"CPU is for tiny jobs: would take {hours} h (limit {limit_h} h)"
    if estimate.cost_usd > policy.budget_usd:
        # rounded up: `$0.00010 > $0.00010` for a $0.0001018 estimate
        return "budget", f"over budget: {_usd_at_least(estimate.cost_usd)} > {usd_text(policy.budget_usd)}"
    if policy.deadline_hours is not None and estimate.hours > policy.deadline_hours:
        return "deadline", f"misses deadline: {_time_above(estimate.hours, policy.deadline_hours)}"
    return None


def job_fit(spec: JobConfig, model: ModelShape, gpu, calibration: Calibration, cache: dict[str, Fit]) -> Fit:
    """Auto-fit of one job on one GPU model, kept in `cache` by GPU name (the CPU's with its peak: on a job's share
    of its cores it is slower): the planner and the scheduling policy ask for the same fits again and again.
    `grad_ckpt: auto` lets auto-fit choose; true or false is kept."""
    key = gpu.name if gpu.kind != "cpu" else f"{gpu.name} {gpu.fp32_tflops:g}"
    fit = cache.get(key)
    if fit is None:
        usable = usable_vram_gib(gpu, calibration)
        fit = cache[key] = auto_fit(model, settings_from_job(spec), gpu, calibration, usable,
                                    checkpointing_choices(spec.grad_ckpt))
    return fit


def _failover_options(valid: list[tuple[Offer, Estimate, Delivery | None]]) -> list[Option]:
    """Each valid (offer, estimate, delivery) as an Option, with the cheapest equivalent offers SkyPilot may fail over
    to (the dearer the later): valid ones of the same GPU, spot and delivery in other regions or clouds, within the
    price band. Each Option is built once: the simulator plans millions of jobs."""
    peers: dict[tuple, list[tuple]] = {}
    if len(valid) > 1:
        for entry in sorted(valid, key=_usd_per_hour):
            peers.setdefault((entry[0].gpu.name, entry[0].spot), []).append(entry)
    options = []
    for offer, estimate, delivery in valid:
        if offer.is_local or offer.provider == "ssh":
            failover, worst_usd = (), None
        elif len(valid) == 1:  # no other offer to fail over to
            failover, worst_usd = (), estimate.cost_usd
        else:
            failover, worst_usd = _failover(offer, estimate, delivery, peers[(offer.gpu.name, offer.spot)])
        options.append(Option(offer, estimate, delivery, failover, worst_usd))
    return options


def _usd_per_hour(entry: tuple) -> float:
    return entry[0].usd_per_hour


def _failover(offer: Offer, estimate: Estimate, delivery: Delivery | None, peers: list[tuple]
              ) -> tuple[tuple[Offer, ...], float]:
    """(the failover offers, the spend at the dearest of them and the chosen one). `peers`: the valid entries of the
    same GPU and spot, cheapest first."""
    ceiling = offer.usd_per_hour * FAILOVER_PRICE_BAND
    picked, worst_usd, seen = [], estimate.cost_usd, {(offer.provider, offer.region)}
    for other, other_estimate, other_delivery in peers:
        if len(picked) == MAX_FAILOVER_OFFERS or other.usd_per_hour > ceiling:
            break
        where = (other.provider, other.region)
        if where not in seen and other_delivery == delivery:
            seen.add(where)
            picked.append(other)
            worst_usd = max(worst_usd, other_estimate.cost_usd)
    return tuple(picked), worst_usd


def _by_cost(option: Option) -> tuple[float, float]:
    return option.estimate.cost_usd, option.estimate.hours


def _by_time(option: Option) -> tuple[float, float]:
    return option.estimate.hours, option.estimate.cost_usd


# `--objective time`: an option this near the fastest is as fast (an estimate scatters by far more, and start-up is
# guessed): 88% more was paid for one second of 756
TIME_TIE_FRACTION = 0.02
TIME_TIE_HOURS = 10 / 3600


def _cheapest_of_the_fastest_first(options: list[Option]) -> None:
    """`options`, sorted by time, with those as fast as the first (TIME_TIE_*) ranked by cost among themselves."""
    near = options[0].estimate.hours * (1 + TIME_TIE_FRACTION) + TIME_TIE_HOURS
    tied = sum(1 for option in options if option.estimate.hours <= near)  # a prefix: the list is sorted by time
    options[:tied] = sorted(options[:tied], key=_by_cost)


def rows_tokens_done(spec: JobConfig, tokens_done: int) -> int:
    """The real tokens a run has trained (what it records), in the unit of the job's tokens and of tokens/s: its
    rows' tokens, padding included, where the data was counted (over the share of the rows that is data). Taken
    from the rows' total as they were, a resumed unpacked run 90% done was priced as 2% done."""
    fill = row_fill(spec.dataset_tokens, spec.dataset_sequences, spec.seq_len)
    return round(tokens_done / fill) if fill and fill < 1 else tokens_done


def plan(spec: JobConfig, model: ModelShape, offers: list[Offer], policy: PlanPolicy,
         calibration: Calibration = NO_CALIBRATION, fit_cache: dict[str, Fit] | None = None,
         startup_times: dict[str, StartupTimes] | None = None, tokens_done: int = 0) -> Plan:
    """Rank every offer for the job. Auto-fit runs once per GPU model (`fit_cache`, when given, keeps the fits of
    one job shape across calls: the simulator plans the same shapes again and again); each offer then only adds its
    price. `startup_times`: start-up measured by earlier runs, by provider (orchestrator/startup_times.py).
    `tokens_done`: what a resumed run has trained already; only the rest is priced."""
    # pure: a local dataset was sized when the job was loaded
    train_tokens = max(spec.resolved_train_tokens() - rows_tokens_done(spec, tokens_done), 0)
    fits: dict[str, Fit] = {} if fit_cache is None else fit_cache
    times = startup_times or {}
    checkpoint_minutes = spec.save_every_minutes
    valid, rejected = [], []
    if spec.cpu_threads is not None:  # the CPU on the job's share of its cores
        offers = [on_cpu_threads(offer, spec.cpu_threads) for offer in offers]
    for offer in offers:
        fit = job_fit(spec, model, offer.gpu, calibration, fits)
        estimate = (estimate_on_offer(fit, offer, model, train_tokens, times.get(offer.provider),
                                      checkpoint_minutes) if fit.fits else None)
        delivery = None if offer.is_local else delivery_for(offer)
        verdict = _judge(spec, offer, delivery, fit, estimate, policy)
        if verdict is None:
            valid.append((offer, estimate, delivery))
        else:
            rejected.append(Rejected(offer, *verdict, vram_gib=fit.memory.vram_gib, estimate=estimate))
    options = _failover_options(valid)
    if len(options) > 1:
        options.sort(key=_by_cost if policy.objective == "cost" else _by_time)
        if policy.objective == "time":
            _cheapest_of_the_fastest_first(options)
    lighter = _lighter_fits(spec, model, rejected, calibration) if not options else ()
    return Plan(spec=spec, policy=policy, train_tokens=train_tokens, options=tuple(options),
                rejected=tuple(rejected), lighter_fits=lighter)


def nearest_misses(memory: list[Rejected]) -> list[Rejected]:
    """The targets too small for the job that the nearest miss is told from: its GPUs, the CPU only where none was
    planned (a machine's RAM past every GPU's memory made the CPU "the largest" GPU)."""
    return [r for r in memory if r.offer.gpu.kind != "cpu"] or memory


LIGHTER_METHODS = {"full": ("lora", "qlora"), "lora": ("qlora",), "qlora": ()}


def _lighter_fits(spec: JobConfig, model: ModelShape, rejected: list, calibration: Calibration
                  ) -> tuple[tuple[str, float], ...]:
    """Where the job fits no GPU for its memory alone, the lighter methods that fit the largest GPU tried, with the
    GiB each needs there: "Try method qlora" was said of a 405B full fine-tune that no GPU holds under QLoRA either."""
    memory = [r for r in rejected if r.kind == "memory"]
    if not memory or {r.kind for r in rejected} - {"memory", *FILTER_KINDS}:  # as no_option_message says it
        return ()
    gpu = max((r.offer.gpu for r in nearest_misses(memory)), key=lambda g: g.vram_gib)
    fits = [(method, job_fit(dataclasses.replace(spec, method=method), model, gpu, calibration, {}))
            for method in LIGHTER_METHODS.get(spec.method, ())]
    return tuple((method, fit.memory.vram_gib) for method, fit in fits if fit.fits)


def no_option_message(result: Plan) -> str:
    """Why nothing was chosen, naming the nearest miss and what to change."""
    by_kind = {}
    for r in result.rejected:
        by_kind.setdefault(r.kind, []).append(r)
    budget, deadline = result.policy.budget_usd, result.policy.deadline_hours
    if capped := [r for r in by_kind.get("price", []) if r.estimate is not None
                  and _misses(r.offer, r.estimate, r.vram_gib, result.policy) is None]:
        # the price cap alone took out offers that run the job: raising it is the fix, whatever the other offers
        # were rejected for (the one V100's missing kernels was named instead)
        o = min(capped, key=lambda r: r.offer.usd_per_hour).offer
        where = "local" if o.is_local else f"{o.provider} ({o.region}{', spot' if o.spot else ''})"
        return (f"no target that can run this job is within --max-usd-per-hour "
                f"{usd_text(result.policy.max_usd_per_hour)}/h: raise --max-usd-per-hour to at least "
                f"{_usd_at_least(o.usd_per_hour)}/h ({o.gpu.name} on {where}).")
    if money := by_kind.get("budget", []) + by_kind.get("deadline", []):
        # the deadline decides which fix can work: a budget raise helps only if some target finishes in time
        in_time = [r for r in money if deadline is None or r.estimate.hours <= deadline]
        if in_time:
            cheapest = min(in_time, key=lambda r: r.estimate.cost_usd)
            o, e = cheapest.offer, cheapest.estimate
            limits = f"the {usd_text(budget)} budget" + (f" and the {duration_text(deadline * 3600)} deadline"
                                                         if deadline else "")
            raise_it = f"Raise --budget to at least {_usd_at_least(e.cost_usd).lstrip('$')}{_on_demand(o, in_time)}" \
                f"{', extend --deadline' if deadline else ''}, or train" if e.cost_usd <= MAX_BUDGET_USD else \
                f"That is more than any --budget (at most {MAX_BUDGET_USD:,.0f}): train"  # no raise can do it
            return (f"no target meets {limits}: the cheapest{' in time' if deadline else ''} is {o.gpu.name} on "
                    f"{o.provider} ({o.region}{', spot' if o.spot else ''}) at {usd_text(e.cost_usd)} for "
                    f"{duration_text(e.hours * 3600)}. {raise_it} on fewer tokens.")  # its cost as its row says it,
            # the budget to give rounded up: $2.5634 is the row's $2.56, and a budget of 2.56 still refused it
        fastest = min(money, key=lambda r: r.estimate.hours)
        o, e = fastest.offer, fastest.estimate
        extend = f"Extend --deadline to at least {duration_text(e.hours * 3600, round_up=True)}, or train" \
            if e.hours <= MAX_DEADLINE_H else f"That is past any --deadline (at most {MAX_DEADLINE_H:,} h): train"
        return (f"no target meets the {duration_text(deadline * 3600)} deadline at any price: the fastest is "
                f"{o.gpu.name} on {o.provider} at {duration_text(e.hours * 3600)} ({usd_text(e.cost_usd)}). {extend} "
                "on fewer tokens.")
    if "memory" in by_kind and not set(by_kind) - {"memory", *FILTER_KINDS}:
        # the nearest miss, of the targets planned: "the largest" was said of the H200 beside a B200 in the catalog
        # no cloud offered, and of the CPU as a GPU under `--target local`
        misses = nearest_misses(by_kind["memory"])
        largest = max(misses, key=lambda r: r.offer.gpu.vram_gib)
        lighter = " or ".join(f"method {method} ({vram_gib:.1f} GiB there)" for method, vram_gib in result.lighter_fits)
        here = all(r.offer.is_local for r in misses)
        what = "target" if largest.offer.gpu.kind == "cpu" else "GPU"
        return (f"the job fits no {what}{' here' if here else ''} ({largest.reason} on {largest.offer.gpu.name}, the "
                f"largest {'here' if here else 'offered'}). Try {f'{lighter}, ' if lighter else ''}a shorter seq_len, "
                "or a smaller model.")
    # a device's missing feature is the reason only where no price cap took other offers out too
    # the reason most targets give: an axolotl job's flash_attention_2 was refused for the local CPU's reason
    # ("needs a GPU") while every cloud GPU refused it for the VM's setup
    if "unsupported" in by_kind and not set(by_kind) - (set(FILTER_KINDS) - {"price"}):
        reasons = Counter(r.reason for r in by_kind["unsupported"]).most_common()
        # "of the N that cannot run it": the table's count of rejections takes in the other kinds too (44 there, 39
        # here, unexplained)
        others = f" (said by {reasons[0][1]} of the {len(by_kind['unsupported'])} targets that cannot run it; `orch " \
            "plan --json` gives each one's reason)" if len(reasons) > 1 else ""
        return f"no target can run this job: {reasons[0][0]}{others}."
    tried = [f"{len(by_kind[kind])} {words}{_most_said(by_kind, kind)}" for kind, words in KIND_WORDS.items()
             if kind in by_kind]
    chosen_out = sum(len(by_kind.get(kind, [])) for kind in ("provider", "spot"))
    left_out = f" ({chosen_out} left out by --target, --providers or --no-spot)" if chosen_out else ""
    return (f"no target can run this job: {'; '.join(tried) or 'none was tried'}{left_out}; see the table above or "
            "--json for each reason.")


def _on_demand(cheapest: Offer, in_time: list) -> str:
    """Where the cheapest of `in_time` is a cloud's spot offer, the least budget for an on-demand one, which `orch
    launch` takes where no storage cloud is enabled (plan does not load SkyPilot to ask): a user gave the budget the
    plan said, and launch refused it for a dearer on-demand offer."""
    if not cheapest.spot or cheapest.is_local:
        return ""
    on_demand = [r for r in in_time if not r.offer.spot or r.offer.is_local]
    if not on_demand:
        return ""
    least = _usd_at_least(min(r.estimate.cost_usd for r in on_demand)).lstrip("$")
    return f" (it is spot: {least} for an on-demand offer, which `orch launch` takes without a storage cloud)"


def _most_said(by_kind: dict, kind: str) -> str:
    """The reason most of the largest kind of rejection give, said after its count: a job imported with axolotl's
    flash_attention was refused "39 that cannot run one of its settings; see the table above", whose five rows
    named the CPU's reason and the T4's, not the cloud VMs' (28 of the 39). Among the kinds tried (what --providers
    or --no-spot left out is counted apart), and only where that reason is most of the kind's."""
    counts = sorted((len(by_kind[k]) for k in KIND_WORDS if k in by_kind), reverse=True)
    if len(by_kind[kind]) != counts[0] or counts[0] < 2 or counts[1:2] == counts[:1]:
        return ""
    reason, said_by = Counter(r.reason for r in by_kind[kind]).most_common(1)[0]
    if 2 * said_by <= counts[0]:
        return ""
    return f" ({'each' if said_by == counts[0] else f'{said_by} of them'}: {reason})"


def _time_above(hours: float, limit_hours: float) -> str:
    """`hours > limit`, each in the unit it reads in (a 5 s deadline read "0.01 h > 0.00 h"); where the two read the
    same, in the limit's unit with the decimals that show the gap."""
    shown, limit_shown = duration_text(hours * 3600), duration_text(limit_hours * 3600)
    if shown == limit_shown:
        unit, per_hour = ("h", 1) if limit_hours >= 1 else ("min", 60) if limit_hours * 60 >= 1 else ("s", 3600)
        shown, limit_shown = (f"{text} {unit}" for text in above_texts(hours * per_hour, limit_hours * per_hour))
    return f"{shown} > {limit_shown}"


def _usd_at_least(value: float) -> str:
    """`value` as usd_text shows it, rounded up at its last digit: a cap raised to the amount shown then takes the
    offer in (a $0.00972/h CPU shown as $0.0097/h stayed out)."""
    shown = usd_text(value)
    if "e" in shown:  # below a billionth of a dollar: no digit to round at
        return shown
    scale = 10 ** len(shown.rpartition(".")[2])
    return usd_text(math.ceil(round(value * scale, 6)) / scale)  # round: 0.207 * 1000 is 207.00000000000003
