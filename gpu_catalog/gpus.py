"""GPU specs from data/gpus.csv, and lookup by the names people and clouds use for them."""

import csv
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from gpu_catalog.errors import UserError
from gpu_catalog.names import normalize, unknown_name_message
from gpu_catalog.units import BYTES_PER_GIB

DATA_DIR = Path(__file__).parent / "data"  # package data, read-only
# Peak fp32 rate of one x86 core with AVX-512 (2 FMA units x 16 lanes x 2 FLOPs at ~1.6 GHz sustained); the CPU
# is for tiny jobs. The trainer measured 9,200 tok/s for the tiny LoRA job on 2 cores, about 30% of this.
CPU_TFLOPS_PER_CORE = 0.1
CPU_POWER_W = 65.0
CPU_MEM_BW_GBPS = 20.0


@dataclass(frozen=True)
class GPU:
    """One accelerator model. TFLOPS are dense tensor rates (no sparsity); 0 means the card lacks that dtype."""

    name: str
    family: str
    vram_gib: float
    mem_bw_gbps: float
    bf16_tflops: float
    fp16_tflops: float
    supports_bf16: bool
    compute_capability: str
    tdp_w: float
    street_price_usd: float | None
    kind: str
    source: str
    as_of: str
    aliases: tuple[str, ...] = ()

    @property
    def train_tflops(self) -> float:
        """The dense rate training runs at: bf16 where the card has it, else fp16 mixed precision."""
        return self.bf16_tflops if self.supports_bf16 else self.fp16_tflops


def _parse_row(row: dict[str, str]) -> GPU:
    return GPU(
        name=row["name"],
        family=row["family"],
        vram_gib=float(row["vram_gib"]),
        mem_bw_gbps=float(row["mem_bw_gbps"]),
        bf16_tflops=float(row["bf16_tflops"]),
        fp16_tflops=float(row["fp16_tflops"]),
        supports_bf16=row["supports_bf16"] == "true",
        compute_capability=row["compute_capability"],
        tdp_w=float(row["tdp_w"]),
        street_price_usd=float(row["street_price_usd"]) if row["street_price_usd"] else None,
        kind=row["kind"],
        source=row["source"],
        as_of=row["as_of"],
        aliases=tuple(a for a in row["aliases"].split("|") if a),
    )


@functools.cache
def load_gpus(path: Path = DATA_DIR / "gpus.csv") -> tuple[GPU, ...]:
    with open(path, newline="") as f:
        return tuple(_parse_row(row) for row in csv.DictReader(f))


@functools.cache
def _index() -> dict[str, GPU]:
    index: dict[str, GPU] = {}
    for gpu in load_gpus():
        for spelling in (gpu.name, *gpu.aliases):
            index.setdefault(normalize(spelling), gpu)
    return index


def find_gpu(name: str) -> GPU | None:
    """The GPU a name or alias means, or None. Exact after normalisation: a cloud's `RTX6000` (Turing) is not ours."""
    return _index().get(normalize(name))


def get_gpu(name: str) -> GPU:
    """A GPU by the name a person types: a catalog name or alias, or a longer name of one (nvidia-smi's
    `Tesla V100-SXM2-32GB`, `A100 40GB PCIe`, `RTX 4090 24GB`) read as gpu_from_device_name reads NVML's, where a
    stated memory size picks the family's variant and must be that card's own. A count of one in front or behind
    (LitGPT's `1xA10G`, `A100:1`, `RTX 4090 x1`) is that card; any other count is refused, never read as one card,
    since orch estimates a job on a single GPU. A miss is the user's mistake: the error names the nearest GPUs."""
    if not name.strip():
        raise UserError("the GPU name is empty: give one, e.g. 'RTX 4090' (`orch catalog gpus` lists them).")
    gpu, count = find_gpu(name), 1  # a catalog spelling is never read as a count
    if gpu is None:
        gpu, count = _card_and_count(name)
    if gpu is None:
        names = [g.name for g in load_gpus()]
        message = unknown_name_message("GPU", name, names, "orch catalog gpus")
        if count != 1:
            message += " Name one GPU: orch plans and estimates a job on a single card."
        raise UserError(message)
    if count != 1:
        raise CountedGPUs(name, gpu, count)
    return gpu


class CountedGPUs(UserError):
    """A name that counts more than one card (`8xH100`): refused where one GPU is meant; a caller that takes a count
    (simulate's --local, a hardware file) reads the card and the count from it instead."""

    def __init__(self, name: str, gpu: GPU, count: int):
        super().__init__(f"'{name}' is {count} GPUs: orch plans and estimates a job on a single card; name one, "
                         f"e.g. '{gpu.name}'.")
        self.gpu, self.count = gpu, count


MEMORY_IN_NAME = re.compile(r"(\d+)\s*GB\b", re.IGNORECASE)
# `2x A100`, `8xH100`, `8×H100`: a count in front; `A10G x 4`, `RTX 4090 x2`, `A100:8`: a count behind
COUNT_FORMS = (re.compile(r"^\s*(\d{1,6})\s*[x×]\s*(?=\S)", re.IGNORECASE),
               re.compile(r"(?:\s[x×]\s*|\s*:\s*)(\d{1,6})\s*$", re.IGNORECASE))


def _card_and_count(name: str) -> tuple[GPU | None, int]:
    """The card a longer name means and how many of it the name counts (1 without a count). Tables of runs put the
    count beside the name; read as trailing words it was silently one card. Each form is tried until the rest names
    a card, so `2 x 4090` is two RTX 4090s, not 4090 of a card named `2`."""
    counts = []
    for form in COUNT_FORMS:
        found = form.search(name)
        if found:
            counts.append(int(found.group(1)))
            gpu = _from_long_name(name[:found.start()] + name[found.end():])
            if gpu is not None:
                return gpu, counts[-1]
    if counts:  # a count beside no card: unknown, not the count's words dropped to reach one
        return None, counts[0]
    return _from_long_name(name), 1


# Words that name a card's form, which changes its rates: `H100 80GB PCIe` is the PCIe card, not the SXM one its
# first words match. `sxm` is what a catalog name without a form word is (A100 80GB, H200).
FORM_WORDS = {"pcie": "pcie", "nvl": "nvl", "sxm": "sxm", "sxm2": "sxm", "sxm4": "sxm", "sxm5": "sxm"}


def _from_long_name(name: str) -> GPU | None:
    """A name with words beyond a catalog name's: its memory, if stated, picks the variant and must be that card's
    own (a `RTX 4090 48GB` is no catalog card), and a form word (PCIe, NVL, SXM) must be the card's own form."""
    stated = MEMORY_IN_NAME.search(name)
    vram_gib = float(stated.group(1)) if stated else None
    # `RTX 4090 (24 GB)`: closed up to `24GB`, so the bare `24` is not a dropped number that makes the name no card's
    words = MEMORY_IN_NAME.sub(r"\1GB", name.replace("(", " ").replace(")", " "))
    gpu = gpu_from_device_name(words, vram_gib)
    forms = {FORM_WORDS[w] for w in re.split(r"[\s()-]+", name.lower()) if w in FORM_WORDS}
    if gpu is not None and forms:
        gpu = _of_form(gpu, forms, vram_gib)
    if gpu is None or (vram_gib is not None and abs(gpu.vram_gib - vram_gib) > 0.1 * gpu.vram_gib):
        return None
    return gpu


def _form(gpu: GPU) -> str:
    spellings = normalize(" ".join((gpu.name, *gpu.aliases)))
    return next((form for form in ("pcie", "nvl") if form in spellings), "sxm")


def _of_form(gpu: GPU, forms: set[str], vram_gib: float | None) -> GPU | None:
    """The member of gpu's family of the named form (nearest in memory), or None: the catalog has no such card."""
    if len(forms) > 1:
        return None
    family = [g for g in load_gpus() if g.family == gpu.family and _form(g) in forms]
    if not family:
        return None
    return min(family, key=lambda g: (abs(g.vram_gib - (vram_gib or gpu.vram_gib)), g != gpu))


def closest_variant(gpu: GPU, vram_gib: float) -> GPU:
    """The member of gpu's family whose memory is nearest vram_gib: clouds say `A100` for both 40 and 80 GB.
    On a tie the name's own match wins, so `H100 PCIe` stays PCIe."""
    family = [g for g in load_gpus() if g.family == gpu.family]
    return min(family, key=lambda g: (abs(g.vram_gib - vram_gib), g != gpu))


# Trailing words that make another card, not a spelling of this one: 'RTX 4080 Laptop GPU' (12 GiB, a third slower)
# is no RTX 4080, nor 'RTX 3080 Ti' an RTX 3080
OTHER_CARD_WORDS = {"laptop", "mobile", "max", "ti", "super", "d"}


def gpu_from_device_name(device_name: str, vram_gib: float | None) -> GPU | None:
    """Match NVML's names ('NVIDIA H100 80GB HBM3', 'Tesla V100-SXM2-32GB') by dropping trailing words, but never a
    word that names another card (OTHER_CARD_WORDS): such a card is unknown, not taken for its namesake. The
    memory picks the family's variant; None keeps the one the name matched."""
    words = re.split(r"[\s-]+", device_name.strip())
    for end in range(len(words), 0, -1):
        gpu = find_gpu(" ".join(words[:end]))
        if gpu is not None:
            dropped = {word.lower() for word in words[end:]}
            if dropped & OTHER_CARD_WORDS or any(word.isdigit() for word in dropped):  # `A100-90`: no A100
                return None
            return gpu if vram_gib is None else closest_variant(gpu, vram_gib)
    return None


def cpu_gpu() -> GPU:
    """The CPU as a target for tiny jobs: system RAM as its memory, an fp32 peak from the core count."""
    cores = os.cpu_count() or 1
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / BYTES_PER_GIB
    tflops = cores * CPU_TFLOPS_PER_CORE
    return GPU(name="CPU", family="CPU", vram_gib=round(ram_gib, 1), mem_bw_gbps=CPU_MEM_BW_GBPS, bf16_tflops=0.0,
               fp16_tflops=tflops, supports_bf16=False, compute_capability="", tdp_w=CPU_POWER_W,
               street_price_usd=None, kind="cpu", source=f"this machine: {cores} cores, {ram_gib:.0f} GiB RAM",
               as_of="")
