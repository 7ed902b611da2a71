"""Synthetic benchmark rows for tests: what an H100 would report if the estimator, with a known calibration, were
exactly right. Made here from the estimator itself, never measured, and never written to benchmarks/results/."""

from gpu_catalog.gpus import get_gpu
from gpu_catalog.models import get_model
from orchestrator.estimator.calibration import Calibration
from orchestrator.estimator.memory import estimate_memory
from orchestrator.estimator.settings import settings_from_job
from orchestrator.estimator.speed import estimate_speed
from trainer.config import config_from_dict

TRUTH = Calibration(efficiency={"H100 SXM": {"lora": 0.52, "qlora": 0.31}},
                    memory={"cuda": {"context_gib": 1.4, "slack_fraction": 0.25}})
H100_NAME, H100_VRAM_GIB = "NVIDIA H100 80GB HBM3", 79.6


def synthetic_rows(truth: Calibration = TRUTH, device: tuple[str, str, float] = ("H100 SXM", H100_NAME, H100_VRAM_GIB)
                   ) -> list[dict]:
    """DEVICE: the catalog's name of the GPU, the name its driver reports, and its memory (GiB)."""
    catalog_name, device_name, device_vram_gib = device
    rows = []
    for model in ("meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.1-8B"):
        for method in ("lora", "qlora"):
            for seq_len in (512, 2048):
                config = {"model": model, "method": method, "seq_len": seq_len, "micro_batch": 2, "max_steps": 10,
                          "dataset": "data.jsonl", "grad_ckpt": seq_len > 1000}
                settings = settings_from_job(config_from_dict(config))
                shape, gpu = get_model(model), get_gpu(catalog_name)
                rows.append({
                    "point_id": f"{model}-{method}-{seq_len}", "sweep": "synthetic", "target": "local",
                    "created_at": 0.0, "status": "ok", "config": config, "gpu": device_name,
                    "gpu_vram_gib": device_vram_gib, "random_weights": True,
                    "tokens_per_s": estimate_speed(shape, settings, gpu, truth).tokens_per_s,
                    "nvml_peak_used_gib": estimate_memory(shape, settings, gpu, truth).vram_gib,
                    "peak_vram_gib": {"allocated": None, "reserved": None}, "mfu": 0.3})
    oom_config = {"model": "meta-llama/Llama-3.1-8B", "method": "full", "seq_len": 4096, "micro_batch": 8,
                  "max_steps": 10, "dataset": "data.jsonl"}
    rows.append({"point_id": "oom", "sweep": "synthetic", "target": "local", "created_at": 0.0, "status": "oom",
                 "config": oom_config, "gpu": device_name, "gpu_vram_gib": device_vram_gib, "random_weights": True,
                 "tokens_per_s": None, "peak_vram_gib": {"allocated": 79.1, "reserved": 79.3}, "mfu": None})
    return rows
