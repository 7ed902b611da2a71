"""Time and money of a fine-tune on one offer: training hours from the estimated throughput plus start-up, cost from
the offer's price, and $ per million training tokens so every target compares on one scale.

Start-up, documented guesses until launches record real ones: a cloud VM takes ~5 min to provision (spot ~7, as
capacity is searched), ~5 min to install orch and its stack, then downloads the 16-bit checkpoint from the Hugging
Face Hub at ~150 MB/s; a local run starts in ~30 s and reads the cached checkpoint from disk at ~1 GB/s.
"""

from dataclasses import dataclass

from gpu_catalog.models import ModelShape
from gpu_catalog.offer import Offer
from gpu_catalog.units import usd_per_million_tokens
from orchestrator.estimator.fit import Fit

CLOUD_PROVISION_S = {False: 300.0, True: 420.0}  # keyed by spot
CLOUD_SETUP_S = 300.0
HUB_DOWNLOAD_BYTES_PER_S = 150e6
LOCAL_START_S = 30.0
DISK_READ_BYTES_PER_S = 1e9
CHECKPOINT_BYTES_PER_PARAM = 2  # checkpoints on the hub are bf16


def startup_hours(offer: Offer, model_params: int) -> float:
    checkpoint_bytes = model_params * CHECKPOINT_BYTES_PER_PARAM
    if offer.is_local:
        seconds = LOCAL_START_S + checkpoint_bytes / DISK_READ_BYTES_PER_S
    else:
        seconds = CLOUD_PROVISION_S[offer.spot] + CLOUD_SETUP_S + checkpoint_bytes / HUB_DOWNLOAD_BYTES_PER_S
    return seconds / 3600


@dataclass(frozen=True)
class Estimate:
    """Everything the planner ranks on, for one job on one offer, with the settings auto-fit chose."""

    vram_gib: float
    breakdown: dict[str, float]
    tokens_per_s: float
    hours: float
    startup_hours: float
    cost_usd: float
    usd_per_million_tokens: float
    basis: str
    micro_batch: int
    grad_accum: int
    grad_ckpt: bool


def estimate_on_offer(fit: Fit, offer: Offer, model: ModelShape, train_tokens: int) -> Estimate:
    """Hours and cost of a fitting configuration on one offer."""
    tokens_per_s = fit.speed.tokens_per_s
    startup = startup_hours(offer, model.params)
    hours = train_tokens / tokens_per_s / 3600 + startup
    return Estimate(
        vram_gib=fit.memory.vram_gib,
        breakdown=fit.memory.breakdown_gib,
        tokens_per_s=tokens_per_s,
        hours=hours,
        startup_hours=startup,
        cost_usd=hours * offer.usd_per_hour,
        usd_per_million_tokens=usd_per_million_tokens(offer.usd_per_hour, tokens_per_s),
        basis=fit.speed.basis,
        micro_batch=fit.settings.micro_batch,
        grad_accum=fit.settings.grad_accum,
        grad_ckpt=fit.settings.grad_ckpt,
    )
