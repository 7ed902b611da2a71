"""Read SkyPilot's service-catalog CSVs (schema v8: <cloud>/vms.csv) into Offers, with the csv module so no pandas
or sky import slows planning. Only single-GPU instances count: orch trains on one GPU, and an 8-GPU node bills for 8.
"""

import ast
import csv
import functools
import json
from pathlib import Path

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import GPU, closest_variant, find_gpu
from gpu_catalog.offer import Offer

MIB_PER_GIB = 1024
REQUIRED_COLUMNS = {"InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "Region"}


@functools.lru_cache(maxsize=4096)
def _gpu_memory_gib(gpu_info: str) -> float | None:
    """Per-GPU memory from the GpuInfo column (a Python-literal dict in most clouds, JSON in some)."""
    if not gpu_info:
        return None
    try:
        info = json.loads(gpu_info)
    except json.JSONDecodeError:
        try:
            info = ast.literal_eval(gpu_info)
        except (ValueError, SyntaxError):
            return None
    gpus = info.get("Gpus") or [{}]
    size_mib = gpus[0].get("MemoryInfo", {}).get("SizeInMiB")
    count = float(gpus[0].get("Count") or 1)
    return float(size_mib) / count / MIB_PER_GIB if size_mib else None


def resolve_gpu(accelerator: str, instance_type: str, memory_gib: float | None) -> GPU | None:
    """Our GPU for a catalog row: the name picks the family; memory and the instance name pick the variant."""
    gpu = find_gpu(accelerator)
    if gpu is None:
        return None
    if memory_gib:
        gpu = closest_variant(gpu, memory_gib)
    if gpu.family == "H100" and "pcie" in instance_type.lower():
        gpu = find_gpu("H100 PCIe")
    return gpu


def _price(text: str | None) -> float | None:
    try:
        price = float(text) if text else None
    except ValueError:
        return None
    return price if price and price > 0 else None


def read_catalog_dir(catalog_dir: Path) -> list[Offer]:
    """All single-GPU offers (on-demand and spot) in one v8 catalog folder; rows for GPUs orch lacks are skipped."""
    offers = []
    for vms_csv in sorted(catalog_dir.glob("*/vms.csv")):
        provider = vms_csv.parent.name
        with open(vms_csv, newline="") as f:
            reader = csv.DictReader(f)
            missing = REQUIRED_COLUMNS - set(reader.fieldnames or ())
            if missing:
                raise UserError(f"{vms_csv} is not a SkyPilot v8 catalog file (no {', '.join(sorted(missing))}): "
                                "rerun `orch catalog refresh`, or remove it.")
            for row in reader:
                if not row.get("AcceleratorName") or _price(row.get("AcceleratorCount")) != 1:
                    continue
                gpu = resolve_gpu(row["AcceleratorName"], row["InstanceType"], _gpu_memory_gib(row.get("GpuInfo", "")))
                if gpu is None:
                    continue
                common = dict(gpu=gpu, provider=provider, region=row.get("Region", ""),
                              instance_type=row["InstanceType"], accelerator=row["AcceleratorName"],
                              source=f"SkyPilot catalog {vms_csv}")
                for spot, column in ((False, "Price"), (True, "SpotPrice")):
                    price = _price(row.get(column))
                    if price is not None:
                        offers.append(Offer(**common, spot=spot, usd_per_hour=price))
    return offers
