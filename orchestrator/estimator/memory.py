"""Peak GPU memory of a fine-tune, as a breakdown that sums to the total.

The byte counts follow what PyTorch, peft and bitsandbytes keep alive at the peak of a training step, in the
precision the trainer resolves (`precision`):
- weights: 16-bit (fp32 on the CPU or in fp32, and fp32 master weights for full fine-tuning in fp16); QLoRA
  stores block linears in NF4 (0.5 byte/param plus absmax constants, Dettmers et al. 2023) or int8, and the rest
  (embeddings, head, norms) in 16 bits, or fp32 with `qlora_fp32_upcast` (peft's prepare_model_for_kbit_training);
  peft keeps LoRA adapters in fp32.
- gradients and optimizer state for the trainable parameters only (AdamW: two moments in the parameter's dtype). A
  full fine-tune's `freeze_layers` freezes the embeddings (a tied head with them) and the lowest blocks, which then
  save no activations either: nothing at or below them needs a gradient.
- the step peaks at one of two moments, and the breakdown is that moment's: the start of the loss's backward (every
  activation and the loss's tensors alive) or the end of the backward (every gradient alive, the activations gone).
  The trainer's zero_grad(set_to_none=True) leaves no gradient at the start of a step's first micro-batch, and each
  layer's gradients appear as its activations are freed, so with one micro-batch per step the gradients never meet
  the activations; with accumulation the earlier micro-batches' gradients stay through the next one's forward and
  backward. At the end of a full fine-tune's backward a tied embedding's gradient exists three times for a moment
  (the head's, the lookup's, their sum), and an accumulated one's new gradient sits beside the sum it joins. The
  optimizer step itself adds nothing: AdamW runs fused (trainer/optim.py), with no per-tensor temporaries. Measured
  on the CPU by benchmarks/cpu_grad_memory.py.
- activations: what autograd saves per token per layer for a gated-MLP decoder, derived from the shape, with an
  attention kernel that never materialises the s x s scores (sdpa, flash); `eager` adds them. sdpa and eager take the
  block-causal mask that keeps packed documents apart (orch's trainer passes restarting positions, transformers makes
  the mask): one additive micro_batch x seq x seq tensor shared by every layer, and grouped k and v repeated to every
  head, which the kernel keeps (flash_attention_2 takes the positions and grouped heads as they are). Each RMSNorm
  keeps the fp32 upcast of its input (transformers' LlamaRMSNorm: `x.to(float32)` then `pow`). A frozen linear saves
  no input (autograd keeps a matmul operand only for the other operand's gradient), so only adapted modules keep
  theirs: on a GPU peft casts each adapter's input to the adapters' fp32 and autocast casts it back for x @ A, so
  every adapted module keeps its own 16-bit copy (plus dropout's 1-byte mask); in a bf16 run without autocast (the
  CPU in precision bf16) each keeps its own fp32 copy (and on the CPU a 4-byte dropout mask); in an fp32 run they
  share the input, or each keeps its dropped-out copy and mask. Checked against the bytes autograd saves for a tiny
  transformers Llama with peft (tests/test_memory.py). With checkpointing each layer's input stays, and one layer is
  recomputed at a time in the backward: that starts after the loss's backward has freed the logits, so the recompute
  counts only beyond the loss's peak. With `compile`, inductor's partitioner recomputes cheap pointwise results in the
  backward rather than saving them: each norm keeps its input as it came instead of an fp32 copy, silu(gate) is not
  kept, and (full fine-tuning) the norm outputs and the gate-up product, which the weight gradients read, are
  recomputed (torchtune's Llama 3.2 3B full fine-tune: 60.0 -> 51.0 GiB with compile; this rule: -12 GiB).
- QLoRA with `qlora_fp32_upcast` on a GPU (peft's prepare_model_for_kbit_training casts embeddings, norms and
  lm_head to fp32): autocast leaves an embedding lookup alone, so the embeddings come out fp32 and every residual add
  promotes to fp32 (transformers' RMSNorm returns `weight * x.to(input_dtype)`, an fp32 weight times fp32); the
  checkpointed layer inputs, the norm inputs and, because bitsandbytes' Linear4bit returns its output in its input's
  dtype, the MLP's gate/up/silu are 4 bytes; each adapter saves autocast's own 16-bit copy of its fp32 input; and the
  lm_head matmul saves autocast's 16-bit copy of the fp32 head weight for the input's gradient (vocab x hidden x 2).
- logits, per `loss` (trainer/loss.py): `full` holds micro_batch x seq x vocab logits, 14 bytes each at the loss
  backward (bf16 logits 2 + fp32 log-probs 4 + their gradient 4 + the fp32 logits gradient 4; at 128k-256k
  vocabularies this rivals the activations; transformers up to 4.47 peaks at 14 in the forward too, with an fp32 copy
  of the shifted logits; 4.48+ shifts the labels instead and peaks at 12: 14 is kept, the published HF points being
  the former; fp32 logits, on the CPU or in precision fp32, are the loss's own input and hold 12 in all);
  `chunked` holds the same bytes for one chunk of `loss_chunk_tokens`;
  `fused` (liger-kernel) one chunk of N / ceil(vocab / hidden) tokens (its own rule) plus the input gradient.
- CUDA context, and allocator slack on the tensors that come and go every step. Torch's allocator peaks
  (max_memory_allocated / reserved) see neither the context nor (allocated) the slack; NVML / nvidia-smi see both.
The constants are first principles; `orch calibrate` replaces the context and slack with fitted ones.
"""

from dataclasses import dataclass
from functools import cached_property

from gpu_catalog.gpus import GPU
from gpu_catalog.models import ModelShape
from gpu_catalog.units import BYTES_PER_GIB
from orchestrator.estimator import adapters
from orchestrator.estimator.calibration import NO_CALIBRATION, Calibration
from orchestrator.estimator.settings import tokens_per_micro_batch
from trainer.config import JobConfig

FP32_BYTES = 4
HALF_BYTES = 2
NF4_BYTES_PER_PARAM = 0.5
NF4_CONSTANT_BITS = {False: 32 / 64, True: 8 / 64 + 32 / (64 * 256)}  # absmax per 64-block; double-quantized
INT8_BYTES_PER_PARAM = 1.0
# Optimizer state per trainable parameter: torch's AdamW keeps two moments in the parameter's own dtype (fp32 for
# peft's adapters, bf16 for full fine-tuning in bf16); bitsandbytes' 8-bit states are 1 byte per moment.
EIGHT_BIT_STATE_BYTES = {"adamw_8bit": 2, "paged_adamw_8bit": 2, "lion_8bit": 1}
LOSS_FP32_BYTES_PER_LOGIT = 12  # fp32 log-probs + their gradient + the fp32 logits gradient, beside the logits
EAGER_ATTENTION_BYTES_PER_SCORE = 6  # fp32 softmax output + bf16 probabilities, per head per key
MASKED_ATTENTION = ("sdpa", "eager")  # take a seq x seq mask and repeated k/v; flash_attention_2 takes positions
CUDA_CONTEXT_GIB = 0.75  # CUDA context, cuBLAS and kernel workspaces: what a process holds before any tensor
# the trainer's process on the CPU target beside its tensors: torch, transformers, peft, datasets and the tokenizer
# loaded (0.38 GiB of RSS for the imports alone), and what reading the data leaves resident. `make demo` on this
# project's 2-core CPU machine (2026-12-03): peak 0.79 GiB of process RSS, about 0.2 GiB of it the tensors counted here
CPU_RUNTIME_GIB = 0.6
ALLOCATOR_SLACK_FRACTION = 0.10  # caching-allocator fragmentation of the per-step tensors (activations, logits)
# `fits` leaves this share of the card free: allocator fragmentation peaks, the display, NCCL/cuDNN workspaces that
# come and go. PyTorch's caching allocator commonly strands 3-8% of a card under varying shapes.
FIT_HEADROOM_FRACTION = 0.05

COMPONENTS = ("weights", "gradients", "optimizer_state", "activations", "logits", "allocator_slack", "cuda_context")


@dataclass(frozen=True)
class MemoryEstimate:
    breakdown_gib: dict[str, float]
    params: int
    trainable_params: int
    peak_phase: str  # "backward_start" or "backward_end": where the step peaks, and what the breakdown describes

    @cached_property
    def vram_gib(self) -> float:
        """The total, summed once: the planner and the policy read it for every offer of every job."""
        return sum(self.breakdown_gib.values())


def adapter_params(model: ModelShape, settings: JobConfig) -> int:
    shapes = model.linear_shapes()
    lora = model.n_layers * sum(settings.lora_r * (shapes[m][0] + shapes[m][1]) for m in settings.target_modules)
    return lora + adapters.extra_adapter_params(model, settings)


def trainable_bytes_per_param(settings: JobConfig, gpu: GPU) -> int:
    """Bytes of one trainable parameter, and of its gradient: fp32 for peft's adapters."""
    return full_weight_bytes(settings, gpu) if settings.method == "full" else FP32_BYTES


def saved_module_bytes_per_param(settings: JobConfig, gpu: GPU) -> int:
    """Bytes of a modules_to_save copy's parameter: peft copies the module in the dtype it has, 16-bit under bf16 (an
    8B model's head and its AdamW moments counted at fp32 were 3.9 GiB too many), fp32 where QLoRA's upcast made the
    embeddings, head and norms fp32, on the CPU, and under fp16, whose copies the trainer upcasts for the grad scaler
    (trainer/model.py)."""
    upcast = settings.method == "qlora" and settings.qlora_fp32_upcast
    return HALF_BYTES if precision(settings, gpu) == "bf16" and not upcast else FP32_BYTES


def trainable_bytes(model: ModelShape, settings: JobConfig, gpu: GPU) -> float:
    """Bytes of every trainable parameter, as many as of their gradients: the full model's weights, or the adapters
    in fp32 beside the modules_to_save copies in theirs."""
    if settings.method == "full":
        return trainable_params(model, settings) * full_weight_bytes(settings, gpu)
    saved = adapters.saved_module_params(model, settings.modules_to_save)
    return (adapter_params(model, settings) - saved) * FP32_BYTES + saved * saved_module_bytes_per_param(settings, gpu)


def optimizer_state_bytes(model: ModelShape, settings: JobConfig, gpu: GPU) -> float:
    """The optimizer's state on the device: AdamW's two moments in each parameter's own dtype (torch keeps them so),
    an 8-bit optimizer's fixed bytes a parameter, nothing where the CPU holds it."""
    if adapters.offloads_optimizer(settings):
        return 0.0
    if settings.optimizer in EIGHT_BIT_STATE_BYTES:
        return trainable_params(model, settings) * EIGHT_BIT_STATE_BYTES[settings.optimizer]
    return 2 * trainable_bytes(model, settings, gpu)


def frozen_blocks(model: ModelShape, settings: JobConfig) -> int:
    """Decoder blocks a full fine-tune keeps frozen (`freeze_layers`, with the embeddings): at most all of them."""
    return min(settings.freeze_layers, model.n_layers) if settings.method == "full" else 0


def frozen_params(model: ModelShape, settings: JobConfig) -> int:
    """The embeddings (and a head tied to them) and the frozen blocks' linears and norms."""
    if not frozen_blocks(model, settings):
        return 0
    block = model.block_linear_params // model.n_layers + 2 * model.hidden
    return model.embedding_params + frozen_blocks(model, settings) * block


def head_trains(model: ModelShape, settings: JobConfig) -> bool:
    """A full fine-tune trains the LM head unless it is tied to embeddings that freeze_layers keeps frozen."""
    return settings.method == "full" and not (model.tied_embeddings and frozen_blocks(model, settings))


def trainable_params(model: ModelShape, settings: JobConfig) -> int:
    if settings.method != "full":
        return adapter_params(model, settings)
    frozen = frozen_params(model, settings)  # counted from the shape, so what is left is too
    return model.computed_params - frozen if frozen else model.params


def precision(settings: JobConfig, gpu: GPU) -> str:
    """The precision the trainer runs (trainer/model.py resolve_precision): the job's own, or for `auto` bf16 where
    the GPU has it, fp16 mixed precision where it does not, fp32 on the CPU."""
    if settings.precision != "auto":
        return settings.precision
    if gpu.kind == "cpu":
        return "fp32"
    return "bf16" if gpu.supports_bf16 else "fp16"


def activation_bytes(settings: JobConfig, gpu: GPU) -> int:
    """16-bit activations (and base weights) under bf16 or fp16, 4 bytes in fp32."""
    return FP32_BYTES if precision(settings, gpu) == "fp32" else HALF_BYTES


def autocast(settings: JobConfig, gpu: GPU) -> bool:
    """The trainer runs a GPU's forward under 16-bit autocast unless the job asks for fp32."""
    return gpu.kind != "cpu" and precision(settings, gpu) != "fp32"


def full_weight_bytes(settings: JobConfig, gpu: GPU) -> int:
    """Bytes per parameter of trainable full-fine-tuning weights: bf16 as loaded; fp16 mixed precision needs fp32
    master weights (the trainer loads them in fp32), and fp32 is fp32."""
    return HALF_BYTES if precision(settings, gpu) == "bf16" else FP32_BYTES


def quantized_bytes_per_param(settings: JobConfig) -> float:
    if settings.quant_bits == 8:
        return INT8_BYTES_PER_PARAM
    return NF4_BYTES_PER_PARAM + NF4_CONSTANT_BITS[settings.double_quant] / 8


def weight_bytes(model: ModelShape, settings: JobConfig, gpu: GPU) -> float:
    """Bytes of all weights on the device: the base model (quantized or not) plus the LoRA adapters."""
    if settings.method == "full":
        return model.params * full_weight_bytes(settings, gpu)
    adapters = trainable_bytes(model, settings, gpu)
    if settings.method == "qlora":
        unquantized = model.params - model.block_linear_params
        unquantized_bytes = FP32_BYTES if settings.qlora_fp32_upcast else activation_bytes(settings, gpu)
        quantized = model.block_linear_params * quantized_bytes_per_param(settings)
        return quantized + unquantized * unquantized_bytes + adapters
    return model.params * activation_bytes(settings, gpu) + adapters


def fp32_residual(settings: JobConfig, gpu: GPU) -> bool:
    """QLoRA with `qlora_fp32_upcast` on a GPU: peft's prepare_model_for_kbit_training leaves the embeddings and norms
    in fp32, autocast does not touch an embedding lookup, and every residual add then promotes to fp32 (see header)."""
    return settings.method == "qlora" and settings.qlora_fp32_upcast and autocast(settings, gpu)


def residual_bytes(settings: JobConfig, gpu: GPU) -> int:
    """Bytes per element of the residual stream (each layer's input): fp32 under QLoRA's upcast, else activations'."""
    return FP32_BYTES if fp32_residual(settings, gpu) else activation_bytes(settings, gpu)


def _layer_bytes_per_token(model: ModelShape, settings: JobConfig, gpu: GPU) -> float:
    """What autograd keeps for one decoder layer per token, in bytes, without checkpointing (see the header)."""
    h, i = model.hidden, model.intermediate
    q_width, kv_width = model.n_heads * model.head_dim, model.n_kv_heads * model.head_dim
    act_bytes, residual = activation_bytes(settings, gpu), residual_bytes(settings, gpu)
    compiled = settings.compile  # inductor recomputes pointwise work in the backward instead of saving it (header)
    # each RMSNorm saves the fp32 upcast of its input; compiled, the fused norm keeps the input as it came
    total = 2 * h * (residual if compiled else FP32_BYTES)
    # the gated MLP's gate, up and silu(gate) (compiled: silu is recomputed from gate): bitsandbytes returns a 4-bit
    # linear's output in its input's dtype, so under the fp32 residual these are fp32 too
    total += (2 if compiled else 3) * i * residual
    # q, k, v and the attention kernel's output; transformers' sdpa (under the mask orch's packed positions make)
    # and eager attention repeat grouped k and v to every head first, and the kernel keeps the copies (header); one
    # shared k/v head (multi-query) repeats as a view, no copy
    repeated = settings.attention in MASKED_ATTENTION and 1 < model.n_kv_heads < model.n_heads
    kv_saved = q_width if repeated else kv_width
    total += (q_width + 2 * kv_saved + q_width) * act_bytes
    if settings.method == "full":  # every weight needs its input: both norm outputs, o_proj's and down_proj's
        weight_inputs = q_width if compiled else 2 * h + q_width + i  # compiled: norms and product recomputed
        return total + weight_inputs * act_bytes + _eager_bytes(model, settings)
    shapes = model.linear_shapes()
    # peft casts each adapter's input to its fp32 weights: under autocast, autocast casts it back to 16 bits for
    # x @ A, so the adapter computes and keeps 16-bit tensors; without autocast they are fp32
    adapter_bytes = act_bytes if autocast(settings, gpu) else FP32_BYTES
    mask_bytes = 0 if settings.lora_dropout == 0 else 1 if gpu.kind != "cpu" else adapter_bytes  # CUDA's bool mask
    if act_bytes < FP32_BYTES or settings.lora_dropout > 0:
        # a cast (autocast's, or to fp32 from 16-bit weights) or dropout makes each adapted module its own copy of
        # its input (and dropout's mask); none of them shares the norm's output
        inputs = sum(shapes[m][0] for m in settings.target_modules) * (adapter_bytes + mask_bytes)
    else:  # fp32 throughout, no dropout: the adapters read the very tensors the layer saves or passes on
        read = {"q_proj": ("norm1", h), "k_proj": ("norm1", h), "v_proj": ("norm1", h), "o_proj": ("attn", q_width),
                "gate_proj": ("norm2", h), "up_proj": ("norm2", h), "down_proj": ("product", i)}
        inputs = sum(dict(read[m] for m in settings.target_modules).values()) * act_bytes
    lowrank = len(settings.target_modules) * settings.lora_r * adapter_bytes  # each x @ A
    return total + inputs + lowrank + _eager_bytes(model, settings)


def _eager_bytes(model: ModelShape, settings: JobConfig) -> float:
    """Eager attention materialises the scores: fp32 softmax and 16-bit probabilities per head per key."""
    return model.n_heads * settings.seq_len * EAGER_ATTENTION_BYTES_PER_SCORE if settings.attention == "eager" else 0


def activation_bytes_total(model: ModelShape, settings: JobConfig, gpu: GPU) -> float:
    """Checkpointing keeps only each layer's input, and recomputes one layer at a time in the backward pass; that
    recompute starts after the loss's backward has freed the logits, so only what it holds beyond the loss's peak
    adds to the step's peak. Without checkpointing every layer's tensors are alive at the loss. Blocks that
    `freeze_layers` keeps frozen (with the embeddings) save nothing: no gradient is needed at or below them."""
    act = activation_bytes(settings, gpu)
    trained = model.n_layers - frozen_blocks(model, settings)
    tokens = tokens_per_micro_batch(settings)
    per_layer = _layer_bytes_per_token(model, settings, gpu) * tokens
    head_inputs = model.hidden * (FP32_BYTES + act) * tokens  # final norm's fp32 upcast and the lm_head's input
    # QLoRA: bitsandbytes dequantizes one weight at a time into a 16-bit buffer, in the layers' forward and backward
    largest_linear = max(i * o for i, o in model.linear_shapes().values())
    dequantized = largest_linear * HALF_BYTES if settings.method == "qlora" else 0
    # the block-causal mask that keeps packed documents apart: one additive micro_batch x seq x seq tensor that every
    # layer reads and keeps (trainer/attention_mask.py), alive until the first layer's backward
    masked = settings.attention in MASKED_ATTENTION and trained
    mask = settings.micro_batch * settings.seq_len ** 2 * act if masked else 0
    if settings.grad_ckpt:
        recompute = max(0.0, per_layer + dequantized - loss_bytes(model, settings, gpu)) if trained else 0.0
        return trained * model.hidden * residual_bytes(settings, gpu) * tokens + head_inputs + mask + recompute
    return trained * per_layer + head_inputs + mask + dequantized


def gradient_transient_bytes(model: ModelShape, settings: JobConfig, gpu: GPU) -> float:
    """Full fine-tuning: what the end of the backward holds beside the gradients. A tied embedding's gradient comes
    twice (the head's and the lookup's) and autograd sums them into a third tensor before it lands in .grad; with
    accumulation the last new gradient of the table sits beside the accumulated one it is added to."""
    if not head_trains(model, settings):
        return 0.0
    tied_sum = 2 if model.tied_embeddings else 0  # a frozen tied table never reaches here
    copies = tied_sum + (1 if settings.grad_accum > 1 else 0)
    return copies * model.vocab * model.hidden * trainable_bytes_per_param(settings, gpu)


def loss_mode(settings: JobConfig, gpu: GPU) -> str:
    """The loss the trainer really runs: `fused` needs a CUDA GPU and a plain linear head, and falls back to `chunked`
    on the CPU and where modules_to_save wraps the head (trainer/loss.py fused_available)."""
    wrapped_head = any(name.split(".")[-1] in adapters.HEAD_MODULES for name in settings.modules_to_save)
    return "chunked" if settings.loss == "fused" and (gpu.kind == "cpu" or wrapped_head) else settings.loss


def fused_chunk_tokens(model: ModelShape, tokens: int) -> int:
    """liger-kernel's fused linear cross-entropy chunk: the next power of two above N / ceil(vocab / hidden)."""
    ratio = -(-model.vocab // model.hidden)
    return 1 << max(0, (-(-tokens // ratio) - 1).bit_length())


def loss_bytes(model: ModelShape, settings: JobConfig, gpu: GPU) -> float:
    """What the loss holds at its peak, beyond the activations: the logits and their gradients (see the header)."""
    act, tokens, mode = activation_bytes(settings, gpu), tokens_per_micro_batch(settings), loss_mode(settings, gpu)
    # 16-bit logits sit beside the loss's fp32 tensors; fp32 logits (the CPU, precision fp32) are the loss's own
    # fp32 input, upcast to nothing, and their gradient is the fp32 one already counted (orch's CPU runs hold 12)
    per_logit = LOSS_FP32_BYTES_PER_LOGIT + (act if act < FP32_BYTES else 0)
    # an fp32 lm_head under autocast: the matmul saves autocast's 16-bit copy of the weight for the input's gradient
    head_copy = model.vocab * model.hidden * act if fp32_residual(settings, gpu) else 0
    if mode == "full":
        return tokens * model.vocab * per_logit + head_copy
    # a trainable head's weight gradient exists from the first chunk's backward on, beside every layer's activations
    # (the full loss frees its logits' fp32 tensors before the head's backward makes it, so there the logits peak)
    if mode == "chunked":
        head_gradient = model.vocab * model.hidden * act if head_trains(model, settings) else 0
        return min(tokens, settings.loss_chunk_tokens) * model.vocab * per_logit + head_copy + head_gradient
    head_gradient = model.vocab * model.hidden * FP32_BYTES if head_trains(model, settings) else 0  # liger's, fp32
    return fused_chunk_tokens(model, tokens) * model.vocab * (act + FP32_BYTES) + tokens * model.hidden * act \
        + head_gradient


def headroom_fraction(gpu: GPU, calibration: Calibration = NO_CALIBRATION) -> float:
    """The share of the card `fits` leaves free: fitted from the user's runs on this kind of device where
    `orch calibrate` had enough of them, else FIT_HEADROOM_FRACTION."""
    fitted = calibration.memory_overheads(gpu) or {}
    return fitted.get("headroom_fraction", FIT_HEADROOM_FRACTION)


def usable_vram_gib(gpu: GPU, calibration: Calibration = NO_CALIBRATION) -> float:
    """What a job may plan to use on this card: all of it but the headroom."""
    return gpu.vram_gib * (1 - headroom_fraction(gpu, calibration))


def memory_overheads(gpu: GPU, calibration: Calibration) -> tuple[float, float]:
    """(allocator slack as a share of the per-step tensors, CUDA context GiB): fitted where calibrated."""
    fitted = calibration.memory_overheads(gpu)
    if fitted:
        return fitted["slack_fraction"], fitted["context_gib"]
    return ALLOCATOR_SLACK_FRACTION, CPU_RUNTIME_GIB if gpu.kind == "cpu" else CUDA_CONTEXT_GIB


def estimate_memory(model: ModelShape, settings: JobConfig, gpu: GPU,
                    calibration: Calibration = NO_CALIBRATION) -> MemoryEstimate:
    trainable = trainable_params(model, settings)
    slack, context = memory_overheads(gpu, calibration)
    gradients = trainable_bytes(model, settings, gpu)
    activations, logits = activation_bytes_total(model, settings, gpu), loss_bytes(model, settings, gpu)
    # the two moments a step can peak at (see the header): the loss's backward, every activation alive, and the end
    # of the backward, every gradient alive; the breakdown is the larger one's
    start = {"gradients": gradients if settings.grad_accum > 1 else 0.0, "activations": activations,
             "logits": logits, "allocator_slack": slack * (activations + logits)}
    end = {"gradients": gradients + gradient_transient_bytes(model, settings, gpu), "activations": 0.0,
           "logits": 0.0, "allocator_slack": 0.0}
    phase = "backward_end" if sum(end.values()) > sum(start.values()) else "backward_start"
    parts = {
        "weights": weight_bytes(model, settings, gpu),
        "optimizer_state": optimizer_state_bytes(model, settings, gpu),
        **(end if phase == "backward_end" else start),
        "cuda_context": context * BYTES_PER_GIB,
    }
    return MemoryEstimate(breakdown_gib={k: parts[k] / BYTES_PER_GIB for k in COMPONENTS},
                          params=model.params, trainable_params=trainable, peak_phase=phase)
