"""GPU specs from data/gpus.csv, and lookup by the names people and clouds use for them."""

import csv
import functools
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from gpu_catalog import checks
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
    """One accelerator model. bf16/fp16 TFLOPS are dense tensor rates (no sparsity; 0 means the card lacks that
    dtype); fp32_tflops is the CUDA cores' rate, which fp32 matmuls run at as PyTorch leaves TF32 off."""

    name: str
    family: str
    vram_gib: float  # the total the driver reports (nvidia-smi): ECC and reserved memory leave less than the label
    mem_bw_gbps: float
    bf16_tflops: float
    fp16_tflops: float
    fp32_tflops: float
    supports_bf16: bool
    compute_capability: str
    tdp_w: float
    street_price_usd: float | None
    kind: str
    source: str
    as_of: str
    aliases: tuple[str, ...] = ()

    def peak_tflops(self, precision: str) -> float:
        """The dense rate matmuls run at in a resolved precision (bf16, fp16 or fp32). A CPU computes at its fp32
        rate whatever the dtype: orch has no figure for its 16-bit paths. bf16 on a card without it, which the
        estimate refuses, is timed at its fp16 rate."""
        if self.kind == "cpu" or precision == "fp32":
            return self.fp32_tflops
        return self.bf16_tflops if precision == "bf16" and self.supports_bf16 else self.fp16_tflops


def _parse_row(row: dict[str, str]) -> GPU:
    return GPU(
        name=row["name"],
        family=row["family"],
        vram_gib=float(row["vram_gib"]),
        mem_bw_gbps=float(row["mem_bw_gbps"]),
        bf16_tflops=float(row["bf16_tflops"]),
        fp16_tflops=float(row["fp16_tflops"]),
        fp32_tflops=float(row["fp32_tflops"]),
        supports_bf16=row["supports_bf16"] == "true",
        compute_capability=row["compute_capability"],
        tdp_w=float(row["tdp_w"]),
        street_price_usd=float(row["street_price_usd"]) if row["street_price_usd"] else None,
        kind=row["kind"],
        source=f"{row['source']}; fp32 rate: {row['fp32_source']}; memory: {row['vram_source']}",
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
    `Tesla V100-SXM2-32GB`, `A100 40GB PCIe`, `RTX 4090 24GB`) whose other words are only those a device name carries
    (DEVICE_NAME_WORDS), where a stated memory size picks the family's variant and must be that card's own. A count
    in front or behind (LitGPT's `1xA10G`, `A100:1`, `RTX 4090 x1`, `RTX 4090 (x2)`) of one is that card; any other
    count is refused, never read as one card, since orch estimates a job on a single GPU. A miss is the user's
    mistake: the error names the nearest GPUs, and what in the name kept it from being one."""
    if not name.strip():
        raise UserError("the GPU name is empty: give one, e.g. 'RTX 4090' (`orch catalog gpus` lists them).")
    if checks.holds_control(name):  # `H100\r` was folded into `H100 SXM` unsaid
        raise UserError(f"the GPU name {checks.short_repr(name)} holds a control character: type the card's name "
                        "alone, e.g. 'RTX 4090'.")
    if any(char.isdigit() and not char.isascii() for char in name):  # `١xA100` was one A100, `٢xA100` two
        raise UserError(f"the GPU name {checks.short_repr(name)} writes a number in other digits than 0-9: write it "
                        "with the digits 0-9 (e.g. 'RTX 4090', '1x A100').")
    odd = sorted(set(NOT_IN_GPU_NAMES.findall(name)))
    # a catalog spelling is never read as a count; punctuation normalize() would fold away (`4090!!!`, `L4;T4`) is not
    gpu, count = (None, 1) if odd else (find_gpu(name), 1)
    if gpu is None and not odd:
        gpu, count = _card_and_count(name)
    if gpu is None:
        if NOT_NVIDIA.search(name) and not NVIDIA_WORDS.search(name):  # `Tesla M4` is NVIDIA's, if no catalog card
            raise UserError(f"orch trains on NVIDIA CUDA GPUs; '{name}' is not one: name an NVIDIA card "
                            "(`orch catalog gpus` lists them).")
        names = [g.name for g in load_gpus()]
        message = unknown_name_message("GPU", name, names, "orch catalog gpus")
        if odd:
            message += f" No GPU's name has {' or '.join(repr(c) for c in odd)} in it."
        elif extra := _extra_words(name):
            message += f" '{' '.join(extra[1])}' after '{extra[0]}' is no part of a GPU's name: name one card."
        elif missing := _missing_variant(name):  # the rows of that card, not the near names of others
            message = f"unknown GPU '{name}'. {missing}"
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
# `2x A100`, `8xH100`, `8×H100`, `(2x) L4`: a count in front; `A10G x 4`, `RTX 4090 x2`, `4090x2`, `A100:8`,
# `RTX 4090 (x2)`, `RTX 4090 (2x)`: a count behind (glued only to a number: `RTX6000` is a card's name, no count)
COUNT_FORMS = (re.compile(r"^\s*\(?\s*(\d{1,6})\s*[x×]\s*\)?\s*(?=\S)", re.IGNORECASE),
               re.compile(r"(?:\s[x×]\s*|(?<=\d)[x×]|\s*:\s*)(\d{1,6})\s*$", re.IGNORECASE),
               re.compile(r"\s*\(\s*[x×]\s*(\d{1,6})\s*\)\s*$", re.IGNORECASE),
               re.compile(r"\s*\(\s*(\d{1,6})\s*[x×]\s*\)\s*$", re.IGNORECASE))
# what a GPU's typed name may hold besides letters, digits and spaces: `A100-80GB`, `H100_SXM`, `RTX 4090 (24 GB)`,
# `A100:1`, `8×H100`. Anything else (`L4;T4`, `4090!!!`, `A100/H100`) is no card's, where normalize() folded it away
NOT_IN_GPU_NAMES = re.compile(r"[^\w\s.()\-:×]")
# Words a device name carries beside the card's own (nvidia-smi's `NVIDIA H100 80GB HBM3`, `Tesla V100-SXM2-32GB`,
# `NVIDIA RTX 6000 Ada Generation`, `... Laptop GPU`): the only words a typed name may have after a card's name. Any
# other (`L4 or T4`, `H100 H200`, `4090 foo`) made the name silently the card its first words name.
DEVICE_NAME_WORDS = re.compile(r"\d+(\.\d+)?gb|hbm\d?e?|pcie|sxm\d?|nvl|nvidia|tesla|geforce|quadro|graphics|"
                               r"generation|gpu|tensor|core|dgxs|fhhl", re.IGNORECASE)  # NVIDIA's `L4 Tensor Core GPU`
# Other makers' accelerators (AMD Instinct MI300X, Intel Gaudi, Google TPU v5e, AWS Trainium, Apple M-series): told
# orch trains on NVIDIA CUDA GPUs rather than that the name is unknown, which reads as a typo to fix
NVIDIA_WORDS = re.compile(r"\b(nvidia|tesla|geforce|quadro|rtx|gtx)\b", re.IGNORECASE)
NOT_NVIDIA = re.compile(r"\b(amd|radeon|instinct|mi\d{2,3}[a-z]?|gaudi\d?|habana|intel|arc|tpu\w*|v[2-6][ep]?|"
                        r"v5litepod\w*|trainium\d?|trn\d|inferentia\d?|apple|m[1-4])\b", re.IGNORECASE)


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
# first words match. `sxm` is what a catalog name without a form word is (A100 80GB, H200). nvidia-smi names the
# V100 of a DGX Station `Tesla V100-DGXS-32GB` (an SXM2 module) and its half-length PCIe card `Tesla V100-FHHL-16GB`.
FORM_WORDS = {"pcie": "pcie", "fhhl": "pcie", "nvl": "nvl", "sxm": "sxm", "sxm2": "sxm", "sxm4": "sxm", "sxm5": "sxm",
              "dgxs": "sxm"}
FORM_LABELS = {"pcie": "PCIe", "nvl": "NVL", "sxm": "SXM"}


def _typed_words(name: str) -> list[str]:
    """A typed name's words, its memory closed up (`RTX 4090 (24 GB)`: `24GB`, so the bare `24` is no word of its
    own that makes the name no card's)."""
    closed = MEMORY_IN_NAME.sub(r"\1GB", name.replace("(", " ").replace(")", " "))
    return re.split(r"[\s-]+", closed.strip())


def _extra_words(name: str) -> tuple[str, list[str]] | None:
    """The first words of a name that name a card, and the words after them, where some are words no device name
    carries; else None. The error says what kept the name from being that card. A word that names another card
    (`Laptop`, `Ti`) or a number is left to the suggestions: those make another card, not a stray word."""
    words = _typed_words(name)
    gpu, after = _leading_card(words)
    stray = [w for w in after if not DEVICE_NAME_WORDS.fullmatch(w)]
    if gpu is None or not stray or {w.lower() for w in stray} & OTHER_CARD_WORDS or any(w.isdigit() for w in stray):
        return None
    return " ".join(words[:len(words) - len(after)]), after


def _card_of_device_name(name: str) -> GPU | None:
    """The card a typed name's first words name, where every word after them is one a device name carries
    (DEVICE_NAME_WORDS); else None."""
    gpu, after = _leading_card(_typed_words(name))
    return gpu if gpu is not None and all(DEVICE_NAME_WORDS.fullmatch(word) for word in after) else None


def _stated_forms(name: str) -> set[str]:
    """The forms (FORM_WORDS) a name's words state: `H100 80GB PCIe` states pcie."""
    return {FORM_WORDS[w] for w in re.split(r"[\s()-]+", name.lower()) if w in FORM_WORDS}


def size_note(typed: str, gpu: GPU) -> str | None:
    """Which memory size a name that states none was read as, where the card it picked is named by its size: an
    `RTX 4060 Ti` (nvidia-smi's name for its 8 GB and its 16 GB card alike) was estimated as the catalog's 16 GB one,
    unsaid, and "fit" where the 8 GB card would not. None where the name states a size, or the card's name has none."""
    if _stated_sizes(typed) or not MEMORY_IN_NAME.search(gpu.name):
        return None
    return (f"--gpu {typed.strip()} is read as the {gpu.name}: a card of that name with other memory is another "
            "card (`orch catalog gpus` lists the sizes the catalog has).")


def _stated_sizes(name: str) -> list[float]:
    """The memory sizes (GB) a name's words state, each once, in order: `A100 40GB 80GB` states two."""
    return list(dict.fromkeys(float(size) for size in MEMORY_IN_NAME.findall(name)))


def _missing_variant(name: str) -> str | None:
    """Why a name all of whose words a device name carries is no catalog card: the form or memory it states is no
    row's of that family (nvidia-smi's `NVIDIA H200 NVL`, `Tesla V100-PCIE-16GB`). Says which rows exist, so the user
    picks one knowing its rates are another card's, rather than reading 'did you mean' as a typo to fix; else None."""
    gpu = _card_of_device_name(name)
    if gpu is None:
        return None
    sizes = [f"{size:g} GB" for size in _stated_sizes(name)]
    if len(sizes) > 1:
        return f"It states {' and '.join(sizes)}: give one of them."
    asked = " ".join([*sizes, *(FORM_LABELS[form] for form in sorted(_stated_forms(name)))])
    if not asked:
        return None
    family = [g for g in load_gpus() if g.family == gpu.family]
    rows = ", ".join(f"{g.name} ({FORM_LABELS[_form(g)] + ', ' if g.kind == 'datacenter' else ''}{g.vram_gib:g} GiB)"
                     for g in family)
    return f"The catalog has no {asked} {gpu.family}: its {gpu.family} rows are {rows}; name one of those."


def _from_long_name(name: str) -> GPU | None:
    """A name with words beyond a catalog name's, all of them words a device name carries (DEVICE_NAME_WORDS): its
    memory, if stated, picks the variant and must be that card's own (a `RTX 4090 48GB` is no catalog card), and a
    form word (PCIe, NVL, SXM) must be the card's own form."""
    sizes = _stated_sizes(name)
    gpu = _card_of_device_name(name)
    if gpu is None or len(sizes) > 1:  # `A100 40GB 80GB`: which?
        return None
    vram_gib = sizes[0] if sizes else None
    if vram_gib is not None:
        gpu = closest_variant(gpu, vram_gib)
    if forms := _stated_forms(name):
        gpu = _of_form(gpu, forms, vram_gib)
    if gpu is None or (vram_gib is not None and abs(gpu.vram_gib - vram_gib) > 0.1 * gpu.vram_gib):
        return None
    return gpu


def _form(gpu: GPU) -> str:
    """A row's form: as its names say it (`H100 PCIe`, `H100 NVL`), else as its datasheet does (`A100 datasheet
    (SXM)`, HGX boards); any other card is a PCIe board (T4, L4, A40, L40S, workstation and consumer cards), which
    `A40 PCIe` named and was refused as an SXM card."""
    spellings = normalize(" ".join((gpu.name, *gpu.aliases)))
    named = next((form for form in ("pcie", "nvl", "sxm") if form in spellings), None)
    return named or ("sxm" if re.search(r"\b(SXM\d?|HGX)\b", gpu.source) else "pcie")


def _of_form(gpu: GPU, forms: set[str], vram_gib: float | None) -> GPU | None:
    """The member of gpu's family of the named form (nearest in memory), or None: the catalog has no such card."""
    if len(forms) > 1:
        return None
    family = [g for g in load_gpus() if g.family == gpu.family and _form(g) in forms]
    if not family:
        return None
    return min(family, key=lambda g: _memory_distance(g, vram_gib or gpu.vram_gib, gpu))


def closest_variant(gpu: GPU, vram_gib: float) -> GPU:
    """The member of gpu's family whose memory is nearest vram_gib: clouds say `A100` for both 40 and 80 GB.
    On a tie the name's own match wins, so `H100 PCIe` stays PCIe."""
    family = [g for g in load_gpus() if g.family == gpu.family]
    return min(family, key=lambda g: _memory_distance(g, vram_gib, gpu))


SAME_SIZE_FRACTION = 0.05  # sizes this close are one size: a card's label (80 GB) and its driver's total (79.65)


def _memory_distance(g: GPU, vram_gib: float, named: GPU) -> tuple[float, bool]:
    """How far g's memory is from vram_gib, sizes within SAME_SIZE_FRACTION counting as equal, then whether g is not
    the card the name named: a catalog's `H100` with 80 GB is the SXM card (79.65 GiB by its driver), not the PCIe
    one nearer 80."""
    gap = abs(g.vram_gib - vram_gib)
    return (0.0 if gap <= SAME_SIZE_FRACTION * vram_gib else gap), g != named


# Trailing words that make another card, not a spelling of this one: 'RTX 4080 Laptop GPU' (12 GiB, a third slower)
# is no RTX 4080, nor 'RTX 3080 Ti' an RTX 3080
OTHER_CARD_WORDS = {"laptop", "mobile", "max", "ti", "super", "d"}


def _leading_card(words: list[str]) -> tuple[GPU | None, list[str]]:
    """The card the longest run of a name's first words names, and the words after them."""
    for end in range(len(words), 0, -1):
        gpu = find_gpu(" ".join(words[:end]))
        if gpu is not None:
            return gpu, words[end:]
    return None, []


def gpu_from_device_name(device_name: str, vram_gib: float | None) -> GPU | None:
    """Match NVML's names ('NVIDIA H100 80GB HBM3', 'Tesla V100-SXM2-32GB') by dropping trailing words, but never a
    word that names another card (OTHER_CARD_WORDS): such a card is unknown, not taken for its namesake. The
    memory picks the family's variant; None keeps the one the name matched. For a machine's own device, which names
    one card; a name a person types is read strictly (get_gpu)."""
    gpu, after = _leading_card(re.split(r"[\s-]+", device_name.strip()))
    if gpu is None:
        return None
    dropped = {word.lower() for word in after}
    if dropped & OTHER_CARD_WORDS or any(word.isdigit() for word in dropped):  # `A100-90`: no A100
        return None
    return gpu if vram_gib is None else closest_variant(gpu, vram_gib)


def cpu_gpu(cores: float | None = None) -> GPU:
    """The CPU as a target for tiny jobs: system RAM as its memory, an fp32 peak from the core count. `cores`: the
    job trains on that many of them (cpu_cores)."""
    all_cores = os.cpu_count() or 1
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / BYTES_PER_GIB
    cpu = GPU(name="CPU", family="CPU", vram_gib=round(ram_gib, 1), mem_bw_gbps=CPU_MEM_BW_GBPS, bf16_tflops=0.0,
              fp16_tflops=0.0, fp32_tflops=all_cores * CPU_TFLOPS_PER_CORE, supports_bf16=False, compute_capability="",
              tdp_w=CPU_POWER_W, street_price_usd=None, kind="cpu",
              source=f"this machine: {all_cores} cores, {ram_gib:.0f} GiB RAM", as_of="")
    return cpu if cores is None else cpu_cores(cpu, cores)


def cpu_share(cores: float) -> float:
    """The part of this machine's CPU that `cores` threads use: a thread past the core count adds no compute."""
    all_cores = os.cpu_count() or 1
    return min(cores, all_cores) / all_cores


def more_threads_than_cores(cpu_threads: int | None) -> str | None:
    """A job file's `cpu_threads` past this machine's cores, said where the CPU is estimated or planned: the file may
    be meant for a larger machine, so it is said, not refused (the flag `--cpu-threads` is refused), but the figures
    are for the cores there are."""
    cores = os.cpu_count() or 1
    if cpu_threads is None or cpu_threads <= cores:
        return None
    return (f"the job's cpu_threads {cpu_threads} is more than this machine's {cores} CPU cores: the CPU's figures "
            f"are for the {cores} it has")


def cpu_cores(cpu: GPU, cores: float) -> GPU:
    """The CPU target when a job trains on `cores` of its cores (its `cpu_threads`, or a scheduler's CPU slot): that
    share of its compute, memory bandwidth and power. The memory stays whole: the job may use all of it."""
    share = cpu_share(cores)
    if share >= 1:
        return cpu
    return replace(cpu, fp32_tflops=cpu.fp32_tflops * share, mem_bw_gbps=cpu.mem_bw_gbps * share,
                   tdp_w=cpu.tdp_w * share, source=f"{cpu.source}; {cores:g} of them for this job")
