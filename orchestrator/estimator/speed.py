"""Training throughput (tokens/s) of a fine-tune on a GPU.

One optimizer step is `grad_accum` micro-steps plus the optimizer update. A micro-step's time is the longer of
what the CPU spends issuing it and what the GPU spends running it, as CUDA runs asynchronously:
- launch (CPU): eager PyTorch issues one kernel per op, each costing CPU time (Python dispatch and the launch),
  KERNEL_S per kernel, counted from the model's layers, adapters and quantized linears. With few tokens per
  micro-batch the GPU finishes each kernel sooner than the next arrives, and this floor is the step time (the
  published 7-8B LoRA loops spend 120-200 ms a micro-step at 256-512 tokens). torch.compile fuses elementwise ops:
  COMPILED_KERNEL_SHARE of the launches remain.
- compute (GPU): FLOPs / (dense peak x efficiency), or the time to stream the weights once per pass if longer. The
  peak is the precision's: the tensor cores' in bf16 or fp16, the CUDA cores' in fp32 (PyTorch leaves TF32 off).
  The efficiency grows with the work per micro-batch: a matmul with few rows (tokens) or a narrow model cannot
  fill the GPU, so efficiency = peak_share(GPU, method) x tokens / (tokens + TOKENS_HALF) x hidden / (hidden +
  HIDDEN_HALF). peak_share is what long, wide micro-batches reach (published 7-14B runs at 4-8k tokens:
  0.45-0.64 of dense peak); `orch calibrate` fits it per GPU and method from measured and published points.
  torch.compile also fuses the elementwise work between matmuls: COMPILE_EFFICIENCY_GAIN.
- dequantize (GPU, QLoRA): every pass unpacks each 4-bit weight to 16 bits before its matmul. The kernels of
  bitsandbytes, torchao and GPTQ reach a fraction of the memory bandwidth: DEQUANT_BYTES_PER_PARAM effective
  bytes per weight per pass (0.5 read + 2 written + 2 read back is 4.5 at full bandwidth; the published QLoRA runs
  spend 35-46 ps per weight per micro-step beyond LoRA, on A100 and RTX 4090 alike).
- the optimizer update is memory-bound: torch's foreach AdamW makes about ADAMW_TENSOR_PASSES reads and writes of
  parameter-sized tensors (moments, the bias-corrected denominator, the update, weight decay); bitsandbytes' 8-bit
  optimizers run one fused kernel. Gradient clipping reads and scales the gradients. Plus a fixed STEP_S of Python
  (zeroing, clipping, the scheduler) per optimizer step. (orch's trainer runs AdamW fused, about 7 passes; the
  published loops it is fitted to mostly ran foreach, so the larger count stays, the cautious side.)

An evaluation micro-batch is a forward alone, timed the same way (FLOPs, one read of the weights, or the launches);
orchestrator/cost.py prices a run's evaluations with it.

FLOPs per token come from gpu_catalog/flops.py, the definition the trainer reports MFU with.
"""

from dataclasses import dataclass

from gpu_catalog.flops import forward_flops_per_token, training_flops_per_token
from gpu_catalog.gpus import GPU
from gpu_catalog.models import ModelShape
from orchestrator.estimator import adapters
from orchestrator.estimator.calibration import Calibration
from orchestrator.estimator.memory import (
    adapter_params,
    frozen_blocks,
    optimizer_state_bytes,
    precision,
    trainable_bytes,
    trainable_params,
    weight_bytes,
)
from orchestrator.estimator.settings import tokens_per_micro_batch
from trainer.config import JobConfig

GB = 1e9
# eager PyTorch costs ~5-20 us of CPU per op (dispatch + launch); HF + peft modules, with Python around every op, sit
# at the high end: the published HF LoRA loops floor at ~5 ms per checkpointed decoder layer per micro-step
KERNEL_S = 20e-6
BLOCK_FORWARD_KERNELS = 25  # two norms, rotary, 4 attention projections + attention, 3 MLP matmuls + act, residuals
ADAPTER_FORWARD_KERNELS = 4  # lora_A, lora_B, scale, add (plus dropout's own where it is on)
QUANTIZED_LINEAR_KERNELS = 4  # per quantized linear per forward: the dequantize, its buffer, the autograd wrapper
BACKWARD_KERNEL_FACTOR = 2  # a backward runs about two kernels per forward one
COMPILED_KERNEL_SHARE = 0.5
COMPILE_EFFICIENCY_GAIN = 1.25  # torchtune's compiled LoRA/QLoRA recipes: ~1.2-1.5x over eager at the same memory
TOKENS_HALF = 200  # tokens per micro-batch at which matmuls reach half of their peak share
HIDDEN_HALF = 1024  # model width at which they do
DEQUANT_BYTES_PER_PARAM = 16
ADAMW_TENSOR_PASSES = 16
EIGHT_BIT_OPTIMIZER_PASSES = 3  # read weight and gradient, write weight; the 1-byte states come on top
CLIP_GRADIENT_PASSES = 3  # the norm reads the gradients, the scaling reads and writes them
STEP_S = 0.010


@dataclass(frozen=True)
class SpeedEstimate:
    tokens_per_s: float
    step_time_s: float
    flops_per_token: float
    efficiency: float  # the achieved share of dense peak at this micro-batch
    basis: str  # "measured" (calibrated peak share), "published", or "analytic" (documented default)
    terms_s: dict[str, float]  # seconds per optimizer step by term
    eval_micro_batch_s: float  # one forward-only micro-batch, as the trainer's evaluation runs it


def _adapter_count(model: ModelShape, settings: JobConfig) -> int:
    """Adapter parameters a pass runs beside the base weights: none in full fine-tuning, where every weight trains."""
    return 0 if settings.method == "full" else adapter_params(model, settings)


def flops_per_token(model: ModelShape, settings: JobConfig) -> tuple[float, float]:
    """(hardware FLOPs with recompute, model FLOPs without) per training token, for these settings."""
    return training_flops_per_token(model, settings.method, settings.seq_len, _adapter_count(model, settings),
                                    settings.grad_ckpt,
                                    eager_attention=settings.attention == "eager",
                                    frozen_layers=frozen_blocks(model, settings))


def block_forward_kernels(model: ModelShape, settings: JobConfig) -> float:
    """Kernel launches of one decoder block's forward, fewer where compiled."""
    forward = BLOCK_FORWARD_KERNELS
    if settings.method != "full":
        forward += len(settings.target_modules) * (ADAPTER_FORWARD_KERNELS + (settings.lora_dropout > 0))
    if settings.method == "qlora":
        forward += len(model.linear_shapes()) * QUANTIZED_LINEAR_KERNELS
    return forward * (COMPILED_KERNEL_SHARE if settings.compile else 1.0)


def kernels_per_micro_step(model: ModelShape, settings: JobConfig) -> float:
    """Kernel launches of one forward and backward, counted per decoder block."""
    trained = model.n_layers - frozen_blocks(model, settings)  # frozen blocks run no backward
    return block_forward_kernels(model, settings) * (
        model.n_layers + trained * (BACKWARD_KERNEL_FACTOR + settings.grad_ckpt))


def efficiency(model: ModelShape, settings: JobConfig, peak_share: float, gpu: GPU) -> float:
    """The share of dense peak this micro-batch's matmuls reach (at most 1). A narrow model leaves a GPU's many SMs
    idle; a CPU's few cores fill at any width."""
    tokens = tokens_per_micro_batch(settings)
    share = peak_share * (COMPILE_EFFICIENCY_GAIN if settings.compile else 1.0)
    width = 1.0 if gpu.kind == "cpu" else model.hidden / (model.hidden + HIDDEN_HALF)
    return min(1.0, share * tokens / (tokens + TOKENS_HALF) * width)


def optimizer_traffic_bytes(model: ModelShape, settings: JobConfig, gpu: GPU) -> float:
    """Bytes one optimizer update (with gradient clipping) reads and writes."""
    weights = trainable_bytes(model, settings, gpu)
    if settings.optimizer == "adamw":
        update = ADAMW_TENSOR_PASSES * weights
    else:
        update = EIGHT_BIT_OPTIMIZER_PASSES * weights + 2 * optimizer_state_bytes(model, settings, gpu)
    return update + CLIP_GRADIENT_PASSES * weights


def _micro_batch_terms(model: ModelShape, settings: JobConfig, gpu: GPU, flops_per_token: float, achieved: float,
                       passes: int, kernels: float) -> dict[str, float]:
    """Seconds one micro-batch spends by term, for `passes` over the weights (forward, backward, a recompute): the
    GPU's compute or weight streaming, QLoRA's dequantization, and the launches the GPU does not hide."""
    bandwidth = gpu.mem_bw_gbps * GB
    peak_flops = gpu.peak_tflops(precision(settings, gpu)) * 1e12  # fp32 on a GPU: its CUDA cores, not tensor cores
    compute_s = tokens_per_micro_batch(settings) * flops_per_token / (peak_flops * achieved)
    dequantize_s = 0.0
    if settings.method == "qlora":
        dequantize_s = passes * model.block_linear_params * DEQUANT_BYTES_PER_PARAM / bandwidth
    gpu_s = max(compute_s, passes * weight_bytes(model, settings, gpu) / bandwidth)
    launch_s = kernels * KERNEL_S
    return {"compute": gpu_s, "dequantize": dequantize_s,
            "launch_beyond_gpu": max(0.0, launch_s - gpu_s - dequantize_s)}


def estimate_speed(model: ModelShape, settings: JobConfig, gpu: GPU, calibration: Calibration) -> SpeedEstimate:
    hardware_flops, _ = flops_per_token(model, settings)
    peak_share, basis = calibration.efficiency_for(gpu, settings.method)
    achieved = efficiency(model, settings, peak_share, gpu)
    micro = _micro_batch_terms(model, settings, gpu, hardware_flops, achieved, passes=3 if settings.grad_ckpt else 2,
                               kernels=kernels_per_micro_step(model, settings))
    terms = {k: v * settings.grad_accum for k, v in micro.items()}
    terms["optimizer"] = optimizer_traffic_bytes(model, settings, gpu) / (gpu.mem_bw_gbps * GB) + STEP_S
    terms["offload"] = adapters.offload_step_s(trainable_params(model, settings), settings)  # CPU-offloaded states
    step_s = sum(terms.values())
    # an evaluation micro-batch: the forward alone, one pass over the weights and the forward's launches
    forward_flops = forward_flops_per_token(model, settings.seq_len, _adapter_count(model, settings),
                                            settings.attention == "eager")
    evaluation = _micro_batch_terms(model, settings, gpu, forward_flops, achieved, passes=1,
                                    kernels=model.n_layers * block_forward_kernels(model, settings))
    return SpeedEstimate(tokens_per_s=tokens_per_micro_batch(settings) * settings.grad_accum / step_s,
                         step_time_s=step_s, flops_per_token=hardware_flops,
                         efficiency=achieved, basis=basis, terms_s=terms, eval_micro_batch_s=sum(evaluation.values()))
