"""Every target a job could run on: the cloud offers plus this user's local cards and CPU, in one list."""

from dataclasses import dataclass

from gpu_catalog.local import LocalGPU, detect_gpus, local_offers
from gpu_catalog.offer import Offer
from gpu_catalog.offers import cloud_offers
from gpu_catalog.owned import OwnedHardware, load_owned_hardware


@dataclass(frozen=True)
class Targets:
    offers: tuple[Offer, ...]
    dropped: tuple[Offer, ...]  # cloud rows with implausible prices, kept to be reported
    hardware: OwnedHardware
    detected: tuple[LocalGPU, ...]


def gather_targets(local_cost_policy: str | None = None) -> Targets:
    """Reads the catalogs, the hardware file and NVML: the I/O that the planner itself never does."""
    kept, dropped = cloud_offers()
    hardware = load_owned_hardware()
    detected = detect_gpus()
    local = local_offers(hardware, detected, local_cost_policy)
    return Targets(offers=tuple(local) + kept, dropped=dropped, hardware=hardware, detected=tuple(detected))
