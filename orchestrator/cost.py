"""Time and money of a fine-tune on one offer: training hours from the estimated throughput plus everything else a
cloud run pays for, cost from the offer's price, and $ per million training tokens so every target compares on one
scale. The parts are kept apart (`Estimate.parts_usd`) so `orch plan` can show where the money goes.

Every run pays for its evaluations too: `eval_batches` forward-only micro-batches before the first step, every
`eval_every` steps and after the last (trainer/loop.py), timed as the speed model times a forward. A cloud run pays
for, besides training:
- start-up on every start: provisioning (~5 min; spot ~7, as capacity is searched), installing the stack (~5 min)
  and downloading the 16-bit checkpoint from the Hugging Face Hub at ~150 MB/s. Documented guesses until a real run
  reports its own: `StartupTimes` measured per provider (orchestrator/startup_times.py) replace them;
- for spot, the expected preemptions, each one a new start plus the work since the last checkpoint (half the
  checkpoint interval on average);
- the idle window after the job, before the VM downs itself (orchestrator/delivery.py), when no launcher downs it
  sooner;
- for a managed (spot) job, SkyPilot's jobs controller: an extra on-demand VM (4+ vCPUs, 4x memory per SkyPilot's
  sky/jobs/constants.py CONTROLLER_RESOURCES) up for the whole run and its 10-minute idle autostop.
A local run starts in ~30 s and reads the cached checkpoint from disk at ~1 GB/s.
"""

import math
from dataclasses import dataclass

from gpu_catalog.models import ModelShape
from gpu_catalog.offer import Offer
from gpu_catalog.units import usd_per_million_tokens
from orchestrator.delivery import Delivery, delivery_for
from orchestrator.estimator.fit import Fit
from orchestrator.estimator.settings import tokens_per_micro_batch
from orchestrator.frozen import quick_init

HUB_DOWNLOAD_BYTES_PER_S = 150e6
LOCAL_START_S = 30.0
DISK_READ_BYTES_PER_S = 1e9
CHECKPOINT_BYTES_PER_PARAM = 2  # checkpoints on the hub are bf16
HOURS_PER_MONTH = 730.0

# The jobs controller's price: AWS m6i.xlarge (4 vCPU, 16 GiB), us-east-1 on-demand list price, 2026-11; SkyPilot
# picks the cheapest VM of CONTROLLER_RESOURCES across the user's clouds, so this is a typical, not a worst, case.
CONTROLLER_USD_PER_HOUR = 0.192
CONTROLLER_IDLE_HOURS = 10 / 60  # sky/jobs/constants.py CONTROLLER_AUTOSTOP idle_minutes
# the end of a cloud run's window kept for its last checkpoint and final weights (the trainer is stopped this long
# before the window ends: launch/sky_task.py), priced so a budget the plan takes leaves the trainer its whole estimate
LAST_SAVE_HOURS = 5 / 60

# Share of spot instances interrupted within a month, the upper edge of the band AWS's Spot Instance Advisor shows
# for the GPU's instance family (https://aws.amazon.com/ec2/spot/instance-advisor/, as quoted for p4d/A100 5-10%,
# g6/L4 <5%, p5/H100 10-20% by thundercompute.com/blog/cloud-gpu-spot-instance-availability, 2026-02-24). GPUs not
# listed take the worst band, 20%. Read as a Poisson rate: preemptions per hour = -ln(1 - share) / 730 h.
SPOT_INTERRUPTED_SHARE_PER_MONTH = {"A100": 0.10, "L4": 0.05, "H100": 0.20, "H200": 0.20}
DEFAULT_SPOT_INTERRUPTED_SHARE = 0.20


@dataclass(frozen=True)
class StartupTimes:
    """Seconds one cloud start spends before training: provisioning and setup. `measured` when a real run reported
    them (orchestrator/startup_times.py), else orch's documented guesses."""

    provision_s: float
    setup_s: float
    measured: bool = False


GUESSED_STARTUP = {False: StartupTimes(provision_s=300.0, setup_s=300.0),
                   True: StartupTimes(provision_s=420.0, setup_s=300.0)}  # keyed by spot


def startup_hours(offer: Offer, model_params: int, times: StartupTimes | None = None) -> float:
    """One start, before the first training step."""
    checkpoint_bytes = model_params * CHECKPOINT_BYTES_PER_PARAM
    if offer.is_local:
        return (LOCAL_START_S + checkpoint_bytes / DISK_READ_BYTES_PER_S) / 3600
    times = times or GUESSED_STARTUP[offer.spot]
    return (times.provision_s + times.setup_s + hub_download_s(model_params)) / 3600


def hub_download_s(model_params: int) -> float:
    """Seconds a cloud start spends fetching the model's weights from the Hugging Face Hub: the trainer's own work,
    after the VM is up and set up."""
    return model_params * CHECKPOINT_BYTES_PER_PARAM / HUB_DOWNLOAD_BYTES_PER_S


def _poisson_rate_per_hour(share_per_month: float) -> float:
    return -math.log(1 - share_per_month) / HOURS_PER_MONTH


SPOT_PREEMPTIONS_PER_HOUR = {family: _poisson_rate_per_hour(share)
                             for family, share in SPOT_INTERRUPTED_SHARE_PER_MONTH.items()}
DEFAULT_SPOT_PREEMPTIONS_PER_HOUR = _poisson_rate_per_hour(DEFAULT_SPOT_INTERRUPTED_SHARE)


def preemptions_per_hour(offer: Offer) -> float:
    """Expected preemptions per hour of a spot VM (0 on-demand), from the monthly interrupted share."""
    if not offer.spot:
        return 0.0
    return SPOT_PREEMPTIONS_PER_HOUR.get(offer.gpu.family, DEFAULT_SPOT_PREEMPTIONS_PER_HOUR)


@quick_init
@dataclass(frozen=True)
class Estimate:
    """Everything the planner ranks on, for one job on one offer, with the settings auto-fit chose. `hours` is the
    wall-clock from launch to the end of training; `cost_usd` the whole spend, its parts in `parts_usd`."""

    vram_gib: float
    breakdown: dict[str, float]
    peak_at: str  # the moment of the step the breakdown describes (memory.MemoryEstimate.peak_phase)
    tokens_per_s: float
    hours: float
    startup_hours: float
    cost_usd: float
    usd_per_million_tokens: float
    basis: str
    micro_batch: int
    grad_accum: int
    grad_ckpt: bool
    parts_usd: dict[str, float]
    expected_preemptions: float = 0.0
    recovery_hours: float = 0.0  # of `hours`: restarting after the expected preemptions (spot)
    startup_measured: bool = False


def eval_hours(fit: Fit, train_tokens: int) -> float:
    """The trainer's evaluations (trainer/loop.py): `eval_batches` forward-only micro-batches before the first step,
    every `eval_every` steps and after the last one, fewer where the held-out share of a sized dataset is smaller;
    none without an eval set."""
    settings = fit.settings
    if not (settings.eval_dataset or settings.eval_fraction > 0):
        return 0.0
    batches = settings.eval_batches
    if settings.dataset_tokens and not settings.eval_dataset:  # dataset_tokens counts the training split
        held_out = settings.dataset_tokens * settings.eval_fraction / (1 - settings.eval_fraction)
        batches = min(batches, math.ceil(held_out / tokens_per_micro_batch(settings)))
    steps = math.ceil(train_tokens / (settings.effective_batch * settings.seq_len))
    every = settings.eval_every
    passes = 1 + (steps // every if every else 0) + (0 if every and steps % every == 0 else 1)
    return passes * batches * fit.speed.eval_micro_batch_s / 3600


def _spend(offer: Offer, delivery: Delivery | None, train_h: float, eval_h: float, startup_h: float,
           recovery_h: float) -> dict:
    """The spend's parts; a managed job's controller is up for the run's whole time, then its idle window."""
    price = offer.usd_per_hour
    parts = {"train": train_h * price, "eval": eval_h * price, "startup": startup_h * price,
             "recovery": recovery_h * price}
    if delivery is not None:
        parts["last_save"] = LAST_SAVE_HOURS * price
        parts["idle"] = delivery.idle_hours() * price
        if delivery.managed:
            controller_h = train_h + eval_h + startup_h + recovery_h + LAST_SAVE_HOURS + CONTROLLER_IDLE_HOURS
            parts["controller"] = controller_h * CONTROLLER_USD_PER_HOUR
    return parts


def cloud_charges(parts_usd: dict[str, float]) -> tuple[float, float]:
    """What a cloud run pays beside its VM's hours, from its estimate's parts, for the simulator, which draws how long
    each run takes: (US dollars an hour while it runs: a managed job's controller; US dollars once it ends: the last
    save, the idle window before autodown and the controller's own last save and idle window)."""
    controller_usd_per_hour = CONTROLLER_USD_PER_HOUR if "controller" in parts_usd else 0.0
    ending_usd = (parts_usd.get("last_save", 0.0) + parts_usd.get("idle", 0.0)
                  + controller_usd_per_hour * (LAST_SAVE_HOURS + CONTROLLER_IDLE_HOURS))
    return controller_usd_per_hour, ending_usd


def _run(fit: Fit, offer: Offer, model: ModelShape, train_tokens: int, times: StartupTimes | None,
         checkpoint_minutes: float) -> tuple[float, float, float, float, dict[str, float]]:
    """(hours, start-up hours, expected preemptions, their recovery hours, the spend's parts): the arithmetic that
    estimate_on_offer and hours_and_cost share, so the two agree to the last bit. A run that is not spot is never
    preempted: its preemptions and recovery are 0.0 without the arithmetic (which gives exactly that at a rate of 0),
    and a local run has no delivery to look up; the simulator asks millions of times."""
    startup = startup_hours(offer, model.params, times)
    train_h, eval_h = train_tokens / fit.speed.tokens_per_s / 3600, eval_hours(fit, train_tokens)
    if offer.spot:
        preemptions = preemptions_per_hour(offer) * (train_h + eval_h)
        recovery_h = preemptions * (startup + checkpoint_minutes / 60 / 2)
    else:
        preemptions = recovery_h = 0.0
    delivery = None if offer.is_local else delivery_for(offer)
    parts = _spend(offer, delivery if isinstance(delivery, Delivery) else None, train_h, eval_h, startup, recovery_h)
    return train_h + eval_h + startup + recovery_h, startup, preemptions, recovery_h, parts


def hours_and_cost(fit: Fit, offer: Offer, model: ModelShape, train_tokens: int,
                   times: StartupTimes | None = None, checkpoint_minutes: float = 30.0) -> tuple[float, float]:
    """estimate_on_offer's hours and cost_usd alone, for a caller that ranks several offers and keeps one (the
    scheduling policy's local cards, for every job the simulator places): the Estimate is not built."""
    hours, _, _, _, parts = _run(fit, offer, model, train_tokens, times, checkpoint_minutes)
    return hours, sum(parts.values())


def estimate_on_offer(fit: Fit, offer: Offer, model: ModelShape, train_tokens: int,
                      times: StartupTimes | None = None, checkpoint_minutes: float = 30.0) -> Estimate:
    """Hours and the whole spend of a fitting configuration on one offer. `times`: measured start-up for this
    provider, when a run has reported one; `checkpoint_minutes`: how much work a preemption loses at most."""
    tokens_per_s, settings, memory = fit.speed.tokens_per_s, fit.settings, fit.memory
    hours, startup, preemptions, recovery_h, parts = _run(fit, offer, model, train_tokens, times, checkpoint_minutes)
    return Estimate(
        vram_gib=memory.vram_gib,
        breakdown=memory.breakdown_gib,
        peak_at=memory.peak_phase,
        tokens_per_s=tokens_per_s,
        hours=hours,
        startup_hours=startup,
        cost_usd=sum(parts.values()),
        usd_per_million_tokens=usd_per_million_tokens(offer.usd_per_hour, tokens_per_s),
        basis=fit.speed.basis,
        micro_batch=settings.micro_batch,
        grad_accum=settings.grad_accum,
        grad_ckpt=settings.grad_ckpt,
        parts_usd=parts,
        expected_preemptions=preemptions,
        recovery_hours=recovery_h,
        startup_measured=bool(times and times.measured),
    )
