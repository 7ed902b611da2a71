"""Read SkyPilot's service-catalog CSVs (schema v8: <cloud>/vms.csv) into Offers, with the csv module so no pandas
or sky import slows planning. Only single-GPU instances count: orch trains on one GPU, and an 8-GPU node bills for 8.
"""

import ast
import csv
import functools
import io
import json
import math
import re
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import GPU, closest_variant, find_gpu
from gpu_catalog.offer import LOCAL_PROVIDER, SSH_POOL_PROVIDER, Offer, sold_on_demand
from gpu_catalog.units import MAX_BUDGET_USD, plain_number

MIB_PER_GIB = 1024
REQUIRED_COLUMNS = {"InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "Region"}
# A provider folder's name is the cloud SkyPilot launches on and a cell in every plan: SkyPilot's are lowercase words
# (aws, gcp, lambda, primeintellect), so markup (`[red]aws`), escapes and capitals are a broken or planted catalog.
# orch's own names for the user's cards are never a cloud: a `local` folder planned a rented A100 as owned.
PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
NOT_CLOUDS = (LOCAL_PROVIDER, SSH_POOL_PROVIDER)


@functools.lru_cache(maxsize=4096)
def _gpu_memory_gib(gpu_info: str) -> float | None:
    """Per-GPU memory from the GpuInfo column (a Python-literal dict in most clouds, JSON in some). A cell neither
    parser reads is unreadable, like any other of the wrong shape: nested too deeply, json raises RecursionError and
    Python's parser SyntaxError, RecursionError or MemoryError (its stack, not the machine's memory)."""
    if not gpu_info:
        return None
    try:
        info = json.loads(gpu_info)
    except (json.JSONDecodeError, RecursionError):
        try:
            info = ast.literal_eval(gpu_info)
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            return None
    try:
        gpus = info.get("Gpus") or [{}]
        size_mib = gpus[0].get("MemoryInfo", {}).get("SizeInMiB")
        gib = float(size_mib) / float(gpus[0].get("Count") or 1) / MIB_PER_GIB if size_mib else None
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, ZeroDivisionError):
        return None  # an optional column of another shape: the GPU name alone then picks the variant
    return gib if gib and math.isfinite(gib) and gib > 0 else None


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


def _fix() -> str:
    """How to mend a broken catalog file where orch reads it: a refresh writes SkyPilot's own folder, which orch does
    not read while ORCH_SKY_CATALOGS names others (the refresh advised there left the same error)."""
    if checks.env_value("ORCH_SKY_CATALOGS"):
        return ("fix or remove it: it is in a folder ORCH_SKY_CATALOGS names (unset that to plan from SkyPilot's own "
                "catalog, which `orch catalog refresh` writes).")
    return "rerun `orch catalog refresh`, or remove it."


class CatalogFileError(UserError):
    """A catalog file that is broken: what is wrong (`problem`), and how to mend it where orch reads it. A file `orch
    catalog refresh --from` reads is the user's own copy, for which refresh names another fix."""

    def __init__(self, problem: str):
        super().__init__(f"{problem}: {_fix()}")
        self.problem = problem


def _amount(row: dict[str, str], column: str, where: str, most: float | None = None) -> float:
    """A row's AcceleratorCount, Price or SpotPrice, at most `most`. Empty or 0 is SkyPilot's "none" (an instance
    without GPUs, a cloud without a spot market); text, NaN, infinity or a negative is a broken file, refused with its
    line rather than read as "none", which hid the row from planning and from `orch catalog offers --dropped` alike.
    A tiny price is a placeholder, not an error: offers.py drops it and `--dropped` lists it."""
    text = row.get(column) or "0"
    try:
        value = plain_number(text)  # float() reads other scripts' digits and `1_0` (ten GPUs) too
    except ValueError:
        value = text
    try:
        return checks.number(value, f"{where} {column}", 0, most)
    except UserError as exc:
        raise CatalogFileError(str(exc).rstrip(".")) from None


def _accelerator_count(row: dict[str, str], where: str) -> float:
    """A whole number of GPUs, or a share of one below 1 (Azure sells a sixth, a third or half of an A10)."""
    count = _amount(row, "AcceleratorCount", where)
    if count > 1 and not count.is_integer():
        raise CatalogFileError(f"{where} AcceleratorCount must be a whole number, or a share of one GPU below 1, "
                               f"got {count:g}")
    return count


def _rows(vms_csv: Path) -> list[dict[str, str]]:
    """The rows of one catalog file, read as UTF-8; a file of another shape, or none to read, is refused with the
    fix where orch reads it (not read_text's "save it as UTF-8": orch wrote the file)."""
    try:
        text = checks.read_text(vms_csv, "SkyPilot catalog")
    except checks.UnreadableFile as exc:
        raise CatalogFileError(exc.problem) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = REQUIRED_COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise CatalogFileError(f"{vms_csv} is not a SkyPilot v8 catalog file (no {', '.join(sorted(missing))})")
        if repeated := checks.repeated(reader.fieldnames):
            raise CatalogFileError(f"{vms_csv} names column {', '.join(repeated)} more than once in its header")
        rows = list(reader)
    except csv.Error as exc:
        line = reader.reader.line_num  # the csv reader's count: DictReader's is of the rows it returned, a line early
        raise CatalogFileError(f"{vms_csv} line {line} is not CSV ({checks.csv_error_text(exc)})") from None
    for number, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise CatalogFileError(f"{vms_csv} line {number} has {len(reader.fieldnames)} columns in its header but "
                                   "not in this row")
    return rows


def _check_names(row: dict[str, str], where: str) -> None:
    """An offer's instance type and region, which a task hands to SkyPilot: each one given, in printable characters
    (an escape sequence or an empty region went into `--json` and the task as they were), without the `/` that
    separates cloud, region and zone in SkyPilot's `infra` (`a/b/c/d` ended a dry run with SkyPilot's bare
    ValueError). Vast's regions hold commas, spaces and any letter (`Bavaria, DE, EU`): those stay."""
    for column in ("InstanceType", "Region"):
        value = row.get(column) or ""
        if not value.strip():
            raise CatalogFileError(f"{where} {column} is empty")
        if not value.isprintable():
            raise CatalogFileError(f"{where} {column} holds a control character ({checks.short_repr(value)})")
        if "/" in value:
            raise CatalogFileError(f"{where} {column} {checks.short_repr(value)} holds a /, which no cloud's names "
                                   "hold")


def provider_name(vms_csv: Path) -> str:
    """The cloud a catalog file's folder names, refused unless it is a plain lowercase cloud name and not orch's own."""
    name = vms_csv.parent.name
    if name in NOT_CLOUDS:
        raise UserError(f"SkyPilot catalog folder '{vms_csv.parent}' is named '{name}', orch's name for your own "
                        "cards, not a cloud: remove it (your cards are declared in orch's hardware file).")
    if not PROVIDER_NAME.fullmatch(name):
        raise UserError(f"SkyPilot catalog folder '{vms_csv.parent}' is not named as a cloud (lowercase letters, "
                        "digits, _ and -, starting with a letter, like aws or lambda): rename or remove it.")
    return name


def read_catalog_dir(catalog_dir: Path) -> list[Offer]:
    """All single-GPU offers (on-demand and spot) in one v8 catalog folder; rows for GPUs orch lacks are skipped,
    and a row given twice (or rows that differ only in columns orch does not read) is one offer, not two."""
    offers = []
    for vms_csv in sorted(catalog_dir.glob("*/vms.csv")):
        provider = provider_name(vms_csv)
        for number, row in enumerate(_rows(vms_csv), start=2):
            where = f"{vms_csv} line {number}:"
            # a whole instance's price (an 8-GPU node, a TPU pod slice), so MAX_BUDGET_USD, the most any price may be,
            # and not the per-GPU plausible range that offers.py drops by: 1e300 $/h is a broken file
            prices = [(spot, _amount(row, column, where, MAX_BUDGET_USD))
                      for spot, column in ((False, "Price"), (True, "SpotPrice"))]
            if not row.get("AcceleratorName") or _accelerator_count(row, where) != 1:
                continue
            gpu = resolve_gpu(row["AcceleratorName"], row["InstanceType"], _gpu_memory_gib(row.get("GpuInfo", "")))
            if gpu is None:
                continue
            _check_names(row, where)
            common = dict(gpu=gpu, provider=provider, region=row.get("Region", ""),
                          instance_type=row["InstanceType"], accelerator=row["AcceleratorName"],
                          source=f"SkyPilot catalog {vms_csv}", sky_instance=True)
            offers.extend(Offer(**common, spot=spot, usd_per_hour=price) for spot, price in prices
                          if price > 0 and (spot or sold_on_demand(provider, row["InstanceType"])))
    return list(dict.fromkeys(offers))
