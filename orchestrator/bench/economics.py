"""What a job costs where, and when owning a card beats renting: the Pareto set of (hours, $ per job) and the
break-even utilization, as plain formulas the report and its tests share.

Owned cards are the hardware file's, or, without one, three common desktop cards at their street price over 4
years (labelled as such in the report), so the comparison is there to see before anyone writes the file.

Owning a card for a job of `hours` costs hours x (electricity per hour + purchase / (life x 8760 x utilization)):
the purchase is spread over the hours the card is busy in its life. It beats a cloud offer that charges C for the
same job once utilization > purchase / (life x 8760 x (C / hours - electricity per hour)); never when the
electricity alone costs more than renting.
"""

from typing import NamedTuple

from gpu_catalog.gpus import get_gpu
from gpu_catalog.owned import (
    HOURS_PER_YEAR,
    OwnedCard,
    OwnedHardware,
    default_card,
    load_owned_hardware,
    purchase_usd_per_busy_hour,
)

DEFAULT_OWNED = ("RTX 3090", "RTX 4090", "RTX 5090")


def owned_cards() -> tuple[OwnedHardware, list[OwnedCard], bool]:
    """(hardware, cards, declared): the hardware file's cards, or the default desktop cards (declared False)."""
    hardware = load_owned_hardware()
    if hardware.cards:
        return hardware, list(hardware.cards), True
    return hardware, [default_card(get_gpu(name)) for name in DEFAULT_OWNED], False


def owned_usd_per_job(hours: float, energy_usd_per_hour: float, purchase_usd: float, life_years: float,
                      utilization: float) -> float:
    """A job's cost on an owned card busy `utilization` of the year."""
    return hours * (energy_usd_per_hour + purchase_usd_per_busy_hour(purchase_usd, life_years, utilization))


def break_even_utilization(hours: float, energy_usd_per_hour: float, purchase_usd: float, life_years: float,
                           cloud_usd_per_job: float) -> float | None:
    """The yearly utilization above which owning costs less per job than `cloud_usd_per_job`; None when even the
    electricity costs more. Above 1.0 means never in practice (the card would need more hours than a year has)."""
    margin_usd_per_hour = cloud_usd_per_job / hours - energy_usd_per_hour
    if margin_usd_per_hour <= 0:
        return None
    return purchase_usd / (life_years * HOURS_PER_YEAR * margin_usd_per_hour)


class Point(NamedTuple):
    hours: float
    usd: float


def pareto_front(points: list[Point]) -> list[int]:
    """Indices of the points no other point beats on both hours and dollars (ties kept once), fastest first."""
    order = sorted(range(len(points)), key=lambda i: (points[i].hours, points[i].usd))
    front, best_usd = [], float("inf")
    for i in order:
        if points[i].usd < best_usd:
            front.append(i)
            best_usd = points[i].usd
    return front
