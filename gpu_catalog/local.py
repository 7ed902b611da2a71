"""The user's own hardware as Offers priced by the owned-hardware cost model: this machine's GPUs (through NVML,
when there is one) and its CPU; cards declared in the hardware file but not seen here; and declared cards in other
machines reached through a SkyPilot SSH node pool (provider `ssh`, region = the pool)."""

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from gpu_catalog.checks import short_repr
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import CPU_POWER_W, GPU, cpu_cores, cpu_gpu, cpu_share, gpu_from_device_name
from gpu_catalog.offer import SSH_POOL_PROVIDER, Offer
from gpu_catalog.owned import COST_POLICIES, OwnedCard, OwnedHardware, default_card, owned_offer
from gpu_catalog.units import BYTES_PER_GIB

NVIDIA_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/dxg")  # the Linux driver, and WSL's GPU bridge


@dataclass(frozen=True)
class LocalGPU:
    """One card NVML sees. `gpu` is None when orch has no specs for it (then it cannot be planned on)."""

    index: int
    device_name: str
    gpu: GPU | None
    vram_gib: float
    used_vram_gib: float
    utilization_pct: float

    @property
    def free_vram_gib(self) -> float:
        return self.vram_gib - self.used_vram_gib


def detect_gpus() -> list[LocalGPU]:
    """Cards on this machine with their memory in use; [] without NVML or a driver (as on a CPU-only box). On Linux
    without an NVIDIA driver (neither /proc/driver/nvidia nor WSL's /dev/dxg) NVML is not even imported."""
    if sys.platform == "linux" and not any(Path(p).exists() for p in NVIDIA_DRIVER_PATHS):
        return []
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        found = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else name
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            vram_gib = memory.total / BYTES_PER_GIB
            found.append(LocalGPU(index=index, device_name=name, gpu=gpu_from_device_name(name, vram_gib),
                                  vram_gib=vram_gib, used_vram_gib=memory.used / BYTES_PER_GIB,
                                  utilization_pct=float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)))
        return found
    finally:
        pynvml.nvmlShutdown()


def local_offers(hardware: OwnedHardware, detected: list[LocalGPU], policy: str | None = None) -> list[Offer]:
    """SSH-pool cards, one offer per card NVML sees, declared cards it does not see (for planning from another
    machine), and the CPU. `policy` overrides the hardware file's cost policy."""
    if policy is not None and policy not in COST_POLICIES:
        raise UserError(f"--local-cost must be one of {', '.join(COST_POLICIES)}, got {short_repr(policy)}.")
    offers = [owned_offer(card, hardware, policy, f"declared in {hardware.source}, SkyPilot SSH node pool "
                          f"{card.ssh_pool}", provider=SSH_POOL_PROVIDER, region=card.ssh_pool,
                          accelerator=card.accelerator)
              for card in hardware.cards if card.ssh_pool]
    declared = {card.gpu.name: card for card in hardware.cards if not card.ssh_pool}
    for local in detected:
        if local.gpu is None:
            continue
        card = declared.get(local.gpu.name) or default_card(local.gpu)
        offers.append(owned_offer(card, hardware, policy, f"NVML device {local.index} ({local.device_name})",
                             free_vram_gib=local.free_vram_gib, device_index=local.index))
    seen = {local.gpu.name for local in detected if local.gpu is not None}
    for card in declared.values():
        if card.gpu.name not in seen:
            offers.append(owned_offer(card, hardware, policy, f"declared in {hardware.source}", present=False))
    cpu_card = OwnedCard(gpu=cpu_gpu(), count=1, purchase_price_usd=0.0, life_years=1.0, utilization=1.0,
                         power_w=CPU_POWER_W, host_power_w=0.0)
    offers.append(owned_offer(cpu_card, hardware, policy, cpu_card.gpu.source))
    return offers


def on_cpu_threads(offer: Offer, threads: float | None) -> Offer:
    """The offer for a job that trains on `threads` of the CPU's cores (its `cpu_threads`; None: torch's choice, all
    of them): the CPU's share of compute and of price. Two jobs sharing the CPU each ran at half its speed, and each
    was priced at all of it. Any other offer as it is."""
    if threads is None or offer.gpu.kind != "cpu":
        return offer
    return replace(offer, gpu=cpu_cores(offer.gpu, threads), usd_per_hour=offer.usd_per_hour * cpu_share(threads))
