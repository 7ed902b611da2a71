"""What training costs where: $ per million tokens on every target for one job, and when owning a card beats renting.

Owned cards are the hardware file's, or, without one, three common desktop cards at their street price over 4
years (labelled as such in the report), so the comparison is there to see before anyone writes the file.
"""

from gpu_catalog.gpus import get_gpu, load_gpus
from gpu_catalog.models import get_model
from gpu_catalog.offers import cheapest_offers, cloud_offers
from gpu_catalog.owned import HOURS_PER_YEAR, OwnedCard, OwnedHardware, default_card, load_owned_hardware
from gpu_catalog.units import usd_per_million_tokens
from orchestrator.estimator.calibration import load_calibration
from orchestrator.estimator.fit import auto_fit
from orchestrator.estimator.settings import settings_from_job
from trainer.config import JobConfig

DEFAULT_OWNED = ("RTX 3090", "RTX 4090", "RTX 5090")


def owned_cards() -> tuple[OwnedHardware, list[OwnedCard]]:
    hardware = load_owned_hardware()
    cards = list(hardware.cards) or [default_card(get_gpu(name)) for name in DEFAULT_OWNED]
    return hardware, cards


def _entry(gpu: str, target: str, where: str, usd_per_hour: float, fit) -> dict:
    tokens_per_s = fit.speed.tokens_per_s
    return {"gpu": gpu, "target": target, "where": where, "usd_per_hour": usd_per_hour,
            "tokens_per_s": tokens_per_s, "basis": fit.speed.basis,
            "usd_per_million_tokens": usd_per_million_tokens(usd_per_hour, tokens_per_s)}


def price_table(job: JobConfig) -> list[dict]:
    """Per GPU the job fits on: the cheapest cloud on-demand and spot offers, and owned cards amortized and marginal."""
    model, calibration, settings = get_model(job.model), load_calibration(), settings_from_job(job)
    fits = {g.name: auto_fit(model, settings, g, calibration, g.vram_gib) for g in load_gpus()}
    entries = [_entry(o.gpu.name, "cloud spot" if o.spot else "cloud on-demand", f"{o.provider} {o.region}",
                      o.usd_per_hour, fits[o.gpu.name])
               for o in cheapest_offers(list(cloud_offers()[0])) if fits[o.gpu.name].fits]
    hardware, cards = owned_cards()
    for card in cards:
        fit = fits[card.gpu.name]
        if fit.fits:
            for policy in ("amortized", "marginal"):
                entries.append(_entry(card.gpu.name, f"local {policy}", "owned",
                                      hardware.usd_per_hour(card, policy), fit))
    return sorted(entries, key=lambda e: e["usd_per_million_tokens"])


def owned_usd_per_million_tokens(card: OwnedCard, hardware: OwnedHardware, tokens_per_s: float,
                                 utilization: float) -> float:
    """An owned card's $/Mtok if it trains `utilization` of the year: the purchase spread over those hours."""
    energy = hardware.usd_per_hour(card, "marginal")
    purchase = card.purchase_price_usd / (card.life_years * HOURS_PER_YEAR * utilization)
    return usd_per_million_tokens(energy + purchase, tokens_per_s)


def break_even(card: OwnedCard, hardware: OwnedHardware, tokens_per_s: float, cloud: dict) -> float | None:
    """The yearly utilization above which owning `card` costs less per token than `cloud`; None when even the
    card's electricity costs more than renting."""
    cloud_cost_of_an_hour_of_this_card = cloud["usd_per_million_tokens"] * tokens_per_s * 3600 / 1e6
    margin = cloud_cost_of_an_hour_of_this_card - hardware.usd_per_hour(card, "marginal")
    if margin <= 0:
        return None
    return card.purchase_price_usd / (card.life_years * HOURS_PER_YEAR * margin)
