"""What the trainer measures about itself: GPU memory, utilization and power sampled through NVML in a background
thread; torch's peak allocated/reserved memory; the GPU's dense peak (from gpu_catalog) for MFU; library versions."""

import os
import platform
import resource
import threading
from importlib import metadata

import torch

from gpu_catalog.gpus import cpu_gpu, gpu_from_device_name
from gpu_catalog.units import BYTES_PER_GIB

SAMPLE_INTERVAL_S = 0.5


def _nvml_handle(pynvml, device: torch.device):
    """NVML's handle for torch's device. NVML counts physical GPUs while CUDA_VISIBLE_DEVICES renumbers them for
    torch, so the card is found by its UUID; by index only when torch has no UUID for it."""
    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    if uuid is not None:
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
        except pynvml.NVMLError:
            pass
    return pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)


class NvmlSampler:
    """Samples one GPU's used memory, utilization and power until stopped; silent where NVML is absent."""

    def __init__(self, device: torch.device):
        self.samples: list[tuple[float, float, float]] = []  # (used GiB, util %, power W)
        self._stop = threading.Event()
        self._thread = None
        self._nvml = None
        if device.type != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = _nvml_handle(pynvml, device)
            self._nvml = pynvml
        except Exception:  # noqa: BLE001 - no library, no driver or no device: nothing to sample
            self._nvml = None

    @property
    def available(self) -> bool:
        return self._nvml is not None

    @property
    def driver_version(self) -> str | None:
        if not self.available:
            return None
        version = self._nvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else version

    def _sample(self) -> None:
        nvml = self._nvml
        while not self._stop.is_set():
            memory = nvml.nvmlDeviceGetMemoryInfo(self._handle)
            util = nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu
            power_w = nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000
            self.samples.append((memory.used / BYTES_PER_GIB, float(util), power_w))
            self._stop.wait(SAMPLE_INTERVAL_S)

    def start(self) -> "NvmlSampler":
        if self.available:
            self._thread = threading.Thread(target=self._sample, daemon=True, name="nvml-sampler")
            self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.samples:
            return {"nvml_peak_used_gib": None, "gpu_util_mean_pct": None, "gpu_power_mean_w": None,
                    "nvml_samples": 0, "driver_version": self.driver_version}
        used, util, power = zip(*self.samples, strict=True)
        return {"nvml_peak_used_gib": max(used), "gpu_util_mean_pct": sum(util) / len(util),
                "gpu_power_mean_w": sum(power) / len(power), "nvml_samples": len(self.samples),
                "driver_version": self.driver_version}


def device_description(device: torch.device, precision: str) -> tuple[str, float | None, float]:
    """(name, dense peak TFLOPS for the precision trained in, memory GiB) of the training device; peak None when
    orch has no specs for the card."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        vram_gib = torch.cuda.get_device_properties(device).total_memory / BYTES_PER_GIB
        gpu = gpu_from_device_name(name, vram_gib)
        return name, gpu.peak_tflops(precision) if gpu else None, vram_gib
    threads, cores = torch.get_num_threads(), os.cpu_count() or 1
    cpu = cpu_gpu(threads)  # the peak of the cores the run trained on: MFU against all of them undercounted
    used = f"{threads} of {cores} cores" if threads < cores else f"{cores} cores"
    return f"CPU ({platform.processor() or platform.machine()}, {used})", cpu.peak_tflops(precision), cpu.vram_gib


def peak_memory(device: torch.device) -> dict:
    if device.type == "cuda":
        return {"allocated": torch.cuda.max_memory_allocated(device) / BYTES_PER_GIB,
                "reserved": torch.cuda.max_memory_reserved(device) / BYTES_PER_GIB}
    return {"allocated": None, "reserved": None,
            "process_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / BYTES_PER_GIB}


def versions() -> dict:
    found = {}
    for package in ("torch", "transformers", "peft", "bitsandbytes", "accelerate"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found
