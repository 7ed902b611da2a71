"""Published measurements (gpu_catalog/data/published_measurements.csv) as estimator inputs and targets.

Each row keeps its source, date and every setting; `usable: no` rows (settings orch cannot express, or not stated)
stay in the file for the record and are skipped here. The value is compared with what it measured:
- `nvidia-smi` and `card` (the card's capacity at the longest context that fit): the whole estimate;
- `reserved` (torch's allocator peak): the estimate without the CUDA context, which torch never sees;
- `allocated`: without the context and without the allocator's slack (live tensors only);
- `oom`: the estimate must not fit the card (capacity less orch's headroom).
"""

import csv
from dataclasses import dataclass
from pathlib import Path

from gpu_catalog.gpus import DATA_DIR, get_gpu
from trainer.config import JobConfig, config_from_dict
from trainer.foreign_keys import quantization_named

PUBLISHED_CSV = DATA_DIR / "published_measurements.csv"


@dataclass(frozen=True)
class PublishedPoint:
    label: str
    source: str
    model: str  # a Hugging Face id, as get_model knows it
    settings: JobConfig
    gpu: str  # a catalog GPU name, or "" where the card is only known by its size
    capacity_gib: float
    metric: str  # vram | tokens_per_s | oom
    value: float  # GiB, tokens/s, or (oom) the card's capacity in GiB
    measures: str

    @property
    def origin(self) -> str:
        return "published"


def comparable_vram_gib(breakdown_gib: dict[str, float], measures: str) -> float:
    """The part of an estimate's breakdown that a measurement of this kind sees (see the header)."""
    left_out = {"allocated": ("cuda_context", "allocator_slack"), "reserved": ("cuda_context",)}.get(measures, ())
    return sum(v for k, v in breakdown_gib.items() if k not in left_out)


def _flag_values(row: dict) -> dict:
    """The job keys a row sets (empty cells take the job's defaults)."""
    keys = {"method": str, "seq_len": int, "micro_batch": int, "grad_accum": int, "lora_r": int, "lora_dropout": float,
            "attention": str, "loss": str, "optimizer": str}
    values = {k: cast(row[k]) for k, cast in keys.items() if row.get(k, "") != ""}
    for key in ("grad_ckpt", "compile", "qlora_fp32_upcast"):
        if row.get(key):
            values[key] = row[key] == "true"
    if row.get("target_modules"):
        targets = row["target_modules"]
        values["target_modules"] = targets if targets == "all-linear" else targets.split(",")
    if row.get("quantization"):  # spelled as `orch estimate --quantization` reads it (trainer/foreign_keys.py)
        quantized = quantization_named(row["quantization"])
        values["quant_bits"] = quantized.bits
        if quantized.double_quant is not None:
            values["double_quant"] = quantized.double_quant
    return values


def load_points(path: Path = PUBLISHED_CSV, usable_only: bool = True) -> list[PublishedPoint]:
    points = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if usable_only and row["usable"] != "yes":
                continue
            settings = config_from_dict({"model": row["model"], "train_tokens": 1, **_flag_values(row)})
            gpu = row["gpu"]
            capacity = get_gpu(gpu).vram_gib if gpu else float(row["gpu_vram_gib"])
            label = (f"{row['source_id']}: {row['model'].split('/')[-1]} {row['method']} seq {row['seq_len']} "
                     f"x{row['micro_batch']} on {gpu or row['gpu_vram_gib'] + ' GB card'} {row['metric']}")
            points.append(PublishedPoint(label=label, source=row["source_id"], model=row["model"], settings=settings,
                                         gpu=gpu, capacity_gib=capacity, metric=row["metric"],
                                         value=float(row["value_converted"]), measures=row["measures"]))
    return points


def estimate_flags(point: PublishedPoint) -> list[str]:
    """The `orch estimate` flags that state every setting of this point."""
    s = point.settings
    flags = ["--method", s.method, "--seq-len", str(s.seq_len), "--micro-batch", str(s.micro_batch),
             "--grad-accum", str(s.grad_accum), "--grad-ckpt" if s.grad_ckpt is True else "--no-grad-ckpt",
             "--optimizer", s.optimizer, "--attention", s.attention, "--loss", s.loss,
             "--compile" if s.compile else "--no-compile"]
    if s.method != "full":
        flags += ["--lora-r", str(s.lora_r), "--lora-dropout", str(s.lora_dropout),
                  "--target-modules", ",".join(s.target_modules)]
    if s.method == "qlora":
        flags += ["--quant-bits", str(s.quant_bits), "--double-quant" if s.double_quant else "--no-double-quant",
                  "--fp32-upcast" if s.qlora_fp32_upcast else "--no-fp32-upcast"]
    if point.gpu:
        flags += ["--gpu", point.gpu]
    return flags
