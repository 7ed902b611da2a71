"""Training throughput (tokens/s) of a fine-tune on a GPU.

A step takes the longer of its matmul time (FLOPs / (dense peak x efficiency)) and the time to stream the weights
from memory once per pass, plus the memory-bound extras: QLoRA's dequantization of every weight in every pass, and
the optimizer's update spread over the accumulation steps, and a fixed launch overhead.

FLOPs per token come from gpu_catalog/flops.py, the definition the trainer reports MFU with.
"""

from dataclasses import dataclass

from gpu_catalog.flops import training_flops_per_token
from gpu_catalog.gpus import GPU
from gpu_catalog.models import ModelShape
from orchestrator.estimator import adapters
from orchestrator.estimator.calibration import Calibration
from orchestrator.estimator.memory import (
    HALF_BYTES,
    adapter_params,
    optimizer_state_bytes_per_param,
    quantized_bytes_per_param,
    trainable_bytes_per_param,
    trainable_params,
    weight_bytes,
)
from orchestrator.estimator.settings import TrainSettings

GB = 1e9
# Python, the optimizer call and kernel launches cost time however small the model: ~10 ms a step plus ~1 ms a layer
# (dozens of launches each, forward and backward). Negligible at 8B, dominant for the tiny CPU example on a GPU.
STEP_OVERHEAD_S = 0.010
STEP_OVERHEAD_S_PER_LAYER = 0.001


@dataclass(frozen=True)
class SpeedEstimate:
    tokens_per_s: float
    step_time_s: float
    flops_per_token: float
    model_flops_per_token: float
    efficiency: float
    basis: str  # "measured" (calibrated efficiency) or "analytic" (documented default)


def flops_per_token(model: ModelShape, settings: TrainSettings) -> tuple[float, float]:
    """(hardware FLOPs with recompute, model FLOPs without) per training token, for these settings."""
    adapters = 0 if settings.method == "full" else adapter_params(model, settings)
    return training_flops_per_token(model, settings.method, settings.seq_len, adapters, settings.grad_ckpt,
                                    eager_attention=settings.attention == "eager")


def _optimizer_traffic_bytes(model: ModelShape, settings: TrainSettings, gpu: GPU) -> float:
    """Bytes the optimizer step reads and writes: weights and states both ways, gradients once."""
    per_param = 3 * trainable_bytes_per_param(settings, gpu) + 2 * optimizer_state_bytes_per_param(settings, gpu)
    return trainable_params(model, settings) * per_param


def estimate_speed(model: ModelShape, settings: TrainSettings, gpu: GPU, calibration: Calibration) -> SpeedEstimate:
    hardware_flops, model_flops = flops_per_token(model, settings)
    efficiency, basis = calibration.efficiency_for(gpu, settings.method)
    bandwidth = gpu.mem_bw_gbps * GB
    tokens = settings.tokens_per_micro_batch
    passes = 3 if settings.grad_ckpt else 2
    compute_s = tokens * hardware_flops / (gpu.train_tflops * 1e12 * efficiency)
    weight_stream_s = passes * weight_bytes(model, settings, gpu) / bandwidth
    step_s = max(compute_s, weight_stream_s)
    if settings.method == "qlora":  # read the packed weight, write and re-read a 16-bit copy, every pass
        dequant_bytes = quantized_bytes_per_param(settings) + 2 * HALF_BYTES
        step_s += passes * model.block_linear_params * dequant_bytes / bandwidth
    step_s += _optimizer_traffic_bytes(model, settings, gpu) / bandwidth / settings.grad_accum
    step_s += adapters.offload_step_s(trainable_params(model, settings), settings) / settings.grad_accum
    step_s += STEP_OVERHEAD_S + STEP_OVERHEAD_S_PER_LAYER * model.n_layers
    return SpeedEstimate(tokens_per_s=tokens / step_s, step_time_s=step_s, flops_per_token=hardware_flops,
                         model_flops_per_token=model_flops, efficiency=efficiency, basis=basis)
