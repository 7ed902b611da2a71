"""The Offer type: one way to get one GPU for an hour, in the cloud or on the user's own card.

It stands alone, so the readers of every price source (SkyPilot's catalog, orch's reference table, the owned-card cost
model) import it without importing each other.
"""

from dataclasses import dataclass
from functools import cached_property

from gpu_catalog.cloud_features import unsupported
from gpu_catalog.gpus import GPU

LOCAL_PROVIDER = "local"
SSH_POOL_PROVIDER = "ssh"  # the user's own cards on other machines, launched through SkyPilot's SSH node pools
# Instances a cloud sells only as spot (or Flex-start) though its catalog lists an on-demand price: Google's A3 High
# with fewer than 8 GPUs (cloud.google.com/compute/docs/accelerator-optimized-machines, consumption options by
# machine type; dstackai/gpuhunt PR #176, 2025-09-13, drops them so). Planned on demand, every zone refuses the VM.
SPOT_ONLY_INSTANCES = frozenset({("gcp", "a3-highgpu-1g")})


def sold_on_demand(provider: str, instance_type: str) -> bool:
    return (provider, instance_type) not in SPOT_ONLY_INSTANCES


@dataclass(frozen=True)
class Offer:
    """One way to get one GPU for an hour. Local cards are offers too, priced by the owned-hardware cost model."""

    gpu: GPU
    provider: str
    region: str
    spot: bool
    usd_per_hour: float
    source: str
    instance_type: str = ""
    # instance_type is a row of SkyPilot's own catalog, so a task may name it: SkyPilot then launches this instance and
    # not the cheapest one with the same accelerator name (Lambda's H100 is both gpu_1x_h100_sxm5 and _pcie)
    sky_instance: bool = False
    accelerator: str = ""  # the provider's own name for the GPU, as SkyPilot requests it (A100-80GB, RTX6000-Ada)
    free_vram_gib: float | None = None  # local cards NVML sees: memory other processes leave free
    device_index: int | None = None  # local cards NVML sees: the CUDA device index
    present: bool = True  # False: a card declared in the hardware file that this machine does not have
    # an owned card's price in two parts, for the simulator, which knows how busy the card was: its power per busy
    # hour, and its purchase over its life per hour of the calendar (0 under cost_policy marginal)
    energy_usd_per_hour: float | None = None
    purchase_usd_per_hour: float = 0.0

    @property
    def unsupported_features(self) -> dict[str, str]:
        """What this offer's cloud cannot do ({SkyPilot feature: reason}), from SkyPilot's own cloud classes."""
        return {} if self.is_local else unsupported(self.provider, self.spot)

    @cached_property
    def is_local(self) -> bool:
        """Asked for every offer of every plan (the simulator: millions of times), so answered once per offer."""
        return self.provider == LOCAL_PROVIDER
