"""Where a GPU can be had and at what price: cloud offers and the user's own cards, as one Offer type.

Cloud offers come from SkyPilot's catalog CSVs (the user's ~/.sky/catalogs, or folders named in ORCH_SKY_CATALOGS)
and from orch's curated reference table for clouds those lack. Implausible prices are dropped, never planned on.
"""

import csv
import functools
import os
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.cache import cached
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import DATA_DIR, get_gpu
from gpu_catalog.offer import Offer, sold_on_demand
from gpu_catalog.skypilot_catalog import read_catalog_dir

MIN_PLAUSIBLE_USD_PER_HOUR = 0.05  # below this a row is a placeholder (mithril lists an A100 at $0.01/h)
MAX_PLAUSIBLE_USD_PER_HOUR = 100.0  # no single GPU rents for more
PLACEHOLDER_FRACTION_OF_MEDIAN = 0.1  # a price under a tenth of the GPU's on-demand median is a placeholder
MIN_OFFERS_FOR_MEDIAN_RULE = 3


def reference_offers(path: Path = DATA_DIR / "reference_offers.csv") -> list[Offer]:
    """orch's curated table: public list prices for the large clouds the offline SkyPilot copy lacks."""
    offers = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            gpu = get_gpu(row["gpu"])
            source = f"{row['source']} (as of {row['as_of']})"
            common = dict(gpu=gpu, provider=row["provider"], region=row["region"], instance_type=row["instance_type"],
                          accelerator=row["accelerator"])
            if sold_on_demand(row["provider"], row["instance_type"]):
                offers.append(Offer(**common, spot=False, usd_per_hour=float(row["usd_per_hour"]), source=source))
            if row["spot_usd_per_hour"]:
                spot_price = float(row["spot_usd_per_hour"])
                offers.append(Offer(**common, spot=True, usd_per_hour=spot_price, source=source))
    return offers


def sky_catalog_dir() -> Path:
    """Where SkyPilot keeps its catalog (schema v8, what skypilot 0.14 reads)."""
    return Path.home() / ".sky" / "catalogs" / "v8"


def skypilot_catalog_dirs() -> list[Path]:
    """Catalog folders in SkyPilot's v8 layout: ORCH_SKY_CATALOGS (os.pathsep-separated), else SkyPilot's own. A
    folder named twice (or by two spellings), or a cloud in two folders, is refused: each offer was counted twice."""
    if named := checks.env_value("ORCH_SKY_CATALOGS"):
        folders = [checks.user_path(p) for p in named.split(os.pathsep) if p]
        if not folders:  # only separators: read as unset, it planned on SkyPilot's own catalog unsaid
            raise UserError(f"ORCH_SKY_CATALOGS is {named!r}, which names no folder: give folders separated by "
                            f"'{os.pathsep}', or unset it to read SkyPilot's own catalog.")
        if missing := [str(folder) for folder in folders if not folder.is_dir()]:
            raise UserError(f"ORCH_SKY_CATALOGS names {', '.join(missing)}, which is not a folder: give folders in "
                            "SkyPilot's catalog layout (PROVIDER/vms.csv), or unset it.")
        if empty := [str(folder) for folder in folders if not any(folder.glob("*/vms.csv"))]:  # named: not a default
            raise UserError(f"ORCH_SKY_CATALOGS names {', '.join(empty)}, which holds no PROVIDER/vms.csv: give "
                            "folders in SkyPilot's catalog layout, or unset it to read SkyPilot's own.")
        resolved = [folder.resolve() for folder in folders]
        if twice := next((str(f) for f, r in zip(folders, resolved, strict=True) if resolved.count(r) > 1), None):
            raise UserError(f"ORCH_SKY_CATALOGS names {twice} more than once: list each folder once.")
        found: dict[str, Path] = {}  # a cloud's catalog in two folders: each offer would count twice
        for folder in folders:
            for provider in sorted(vms.parent.name for vms in folder.glob("*/vms.csv")):
                if provider in found:
                    raise UserError(f"ORCH_SKY_CATALOGS: {provider} has a catalog in both {found[provider]} and "
                                    f"{folder}: keep one of them.")
                found[provider] = folder
        return folders
    return [sky_catalog_dir()] if sky_catalog_dir().is_dir() else []


def _median(values: list[float]) -> float:
    """statistics.median, without the 3 ms its import (fractions, decimal, random) adds to every plan."""
    ordered = sorted(values)
    return (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2


def split_plausible(offers: list[Offer]) -> tuple[list[Offer], list[Offer]]:
    """(kept, dropped): drop placeholder and absurd prices so the planner never picks a $0.01/h A100."""
    on_demand: dict[str, list[float]] = {}
    for offer in offers:
        if not offer.spot:
            on_demand.setdefault(offer.gpu.name, []).append(offer.usd_per_hour)
    floors = {gpu: max(MIN_PLAUSIBLE_USD_PER_HOUR, PLACEHOLDER_FRACTION_OF_MEDIAN * _median(prices))
              for gpu, prices in on_demand.items() if len(prices) >= MIN_OFFERS_FOR_MEDIAN_RULE}
    kept, dropped = [], []
    for offer in offers:
        floor = floors.get(offer.gpu.name, MIN_PLAUSIBLE_USD_PER_HOUR)
        plausible = floor <= offer.usd_per_hour <= MAX_PLAUSIBLE_USD_PER_HOUR
        (kept if plausible or offer.is_local else dropped).append(offer)
    return kept, dropped


# The code that reads the catalogs, and the type it reads them into, key their cache as the catalogs do: a rule it
# gains (a price cap) applies to a catalog an older orch already read and cached, and a field Offer gains is never
# missing from offers an older orch cached
READER_FILES = tuple(Path(__file__).with_name(name) for name in ("skypilot_catalog.py", "gpus.py", "offer.py"))


@functools.cache
def cloud_offers() -> tuple[tuple[Offer, ...], tuple[Offer, ...]]:
    """(kept, dropped) cloud offers. A provider found in a SkyPilot catalog replaces its reference rows."""
    dirs = skypilot_catalog_dirs()
    sources = [DATA_DIR / "gpus.csv", *READER_FILES, *(f for d in dirs for f in d.glob("*/vms.csv"))]
    catalog_offers = cached(sources, lambda: [offer for d in dirs for offer in read_catalog_dir(d)], Offer)
    catalog_providers = {o.provider for o in catalog_offers}
    curated = [o for o in reference_offers() if o.provider not in catalog_providers]
    kept, dropped = split_plausible(catalog_offers + curated)
    return tuple(kept), tuple(dropped)


def cheapest_offers(offers: list[Offer]) -> list[Offer]:
    """The cheapest offer per (GPU, spot): the only ones a cost-ranked plan can pick (the same GPU runs as fast)."""
    best: dict[tuple, Offer] = {}
    for offer in offers:
        key = (offer.gpu.name, offer.spot)
        if key not in best or offer.usd_per_hour < best[key].usd_per_hour:
            best[key] = offer
    return list(best.values())
