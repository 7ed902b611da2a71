"""Load the model for a method: 16-bit for full and LoRA, 4-bit NF4 or 8-bit through bitsandbytes for QLoRA; then
peft's LoRA adapters (optionally DoRA, rsLoRA scaling, and modules trained in full beside them), gradient
checkpointing, and frozen lower layers for full fine-tuning."""

import functools
import logging
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig
from transformers.utils import logging as transformers_logging

from gpu_catalog import checks
from gpu_catalog.models import freezable_blocks, get_model
from trainer.attention_mask import share_sdpa_masks
from trainer.config import LINEAR_MODULES, ConfigError, JobConfig
from trainer.model_files import weight_shapes
from trainer.offline_names import is_built_offline

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_precision(config: JobConfig, device: torch.device) -> str:
    """bf16 where the GPU computes it natively (compute capability 8.0+, Ampere on), else fp16 mixed precision; fp32
    on the CPU. torch.cuda.is_bf16_supported() also says yes where bf16 is only emulated (a T4, an RTX 2080), many
    times slower: the estimate, which reads `auto` the same way (supports_bf16 in gpus.csv), planned fp16 there."""
    if config.precision != "auto":
        return config.precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"


def _printable_record(record: logging.LogRecord) -> bool:
    """transformers logs values of a model's config.json as they are: an ESC in one reached the terminal."""
    record.msg, record.args = checks.printable(record.getMessage()), ()
    return True


transformers_logging.get_logger()  # makes the library's own handler, which every transformers.* logger reaches
for _handler in logging.getLogger("transformers").handlers:
    _handler.addFilter(_printable_record)


@functools.lru_cache(maxsize=1)
def model_config(model_name: str):
    """The model's config as transformers builds it; one it cannot build (a `hidden_act` it lacks, `rms_norm_eps:
    tiny`) is bad config, said in one line, where it was a traceback and exit 1. Models orch builds offline are
    Llamas (trainer/random_model.py)."""
    if is_built_offline(model_name):
        return LlamaConfig(num_hidden_layers=1)
    try:
        return AutoConfig.from_pretrained(model_name)
    except Exception as exc:  # noqa: BLE001 - whatever transformers raises for a config it cannot build
        raise ConfigError(_unbuildable(model_name, exc)) from None


def _unbuildable(model_name: str, exc: Exception) -> str:
    """Its first sentence: cut at 160 characters, transformers' words on an unknown model_type ended "an issue with
    the )"."""
    detail = checks.one_line(str(exc).split("\n")[0].split(". ")[0])[:200] or type(exc).__name__
    return (f"model {checks.short_repr(model_name)}: transformers cannot build the model its config.json describes "
            f"({type(exc).__name__}: {detail}): fix config.json, or save the model again with save_pretrained.")


@functools.lru_cache(maxsize=1)
def _meta_model(model_name: str):
    """The model built on the meta device from its config alone: its layout, at no memory and no weight read. Kept
    for the next check of the same model (QLoRA with modules_to_save asks twice); nothing modifies it."""
    config = model_config(model_name)
    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config)
    except Exception as exc:  # noqa: BLE001 - `hidden_act: nope` is a KeyError, a rope type it lacks another
        raise ConfigError(_unbuildable(model_name, exc)) from None


def check_weights_match(model_path: str) -> None:
    """A local model folder's weights of the shapes its config.json builds, said in one line: transformers printed an
    18-line report (with terminal colours, into any log) and stopped with a RuntimeError, exit 1. A pre-quantized
    checkpoint stores packed shapes: transformers judges it."""
    folder = Path(model_path)
    if not folder.is_dir() or getattr(model_config(model_path), "quantization_config", None):
        return
    expected = {name: tuple(tensor.shape) for name, tensor in _meta_model(model_path).state_dict().items()}
    for name, shape in weight_shapes(folder):
        if name in expected and expected[name] != shape:
            raise ConfigError(f"model folder '{folder}': its weight {name} is {_shape(shape)}, where its config.json "
                              f"builds {_shape(expected[name])}: save the weights and the config together "
                              "(save_pretrained), or give the config that belongs to them.")


def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape)) or "a scalar"


def check_quantizable(model_path: str) -> None:
    """bitsandbytes quantizes nn.Linear layers: refuse a model whose blocks have none (GPT-2's Conv1D), before loading
    any weight."""
    model = _meta_model(model_path)
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    if not names - {"lm_head"}:
        raise ValueError(f"method qlora needs nn.Linear layers to quantize, and {model.config.model_type} has none in "
                         "its blocks: use method lora or full for this model.")


def most_frozen_blocks(model_name: str) -> tuple[int, bool] | None:
    """(the decoder blocks a full fine-tune may freeze (freezable_blocks), whether the head is tied): the catalog
    shape's for a model built offline, else its config's; None where there is no config to read here (loading the
    model then says why)."""
    if is_built_offline(model_name):
        shape = get_model(model_name)
        blocks, tied = shape.n_layers, shape.tied_embeddings
    else:
        try:
            config = _meta_model(model_name).config
        except (OSError, ValueError):
            return None
        blocks, tied = config.num_hidden_layers, bool(getattr(config, "tie_word_embeddings", False))
    return freezable_blocks(blocks, tied), tied


def missing_modules(model_name: str, wanted: tuple[str, ...]) -> list[str]:
    """The names in `wanted` that match no module, by peft's rule (the whole name or its dotted end): peft silently
    trains nothing for such a name."""
    if not wanted:
        return []
    try:
        keys = [name for name, _ in _meta_model(model_name).named_modules()]
    except (OSError, ValueError):  # no config to read here: loading the model says why, in the run's own error
        return []
    return [w for w in wanted if not any(key == w or key.endswith("." + w) for key in keys)]


def _disable_cpu_weight_repacking(model) -> None:
    """On CPUs with AVX512-BF16, bitsandbytes repacks a Linear4bit weight the first time it runs in eval mode without
    gradients, and from then on trains through a kernel with no autograd: LoRA gradients silently become zero after
    an eval pass (../shared/docs/known-issues.md). Turning the repacking off keeps training on the autograd path."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def _quantization_config(config: JobConfig, compute_dtype: torch.dtype):
    from transformers import BitsAndBytesConfig

    if config.quant_bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype,
                              bnb_4bit_use_double_quant=config.double_quant)


def _freeze_lower_layers(model, n_layers: int) -> None:
    model.get_input_embeddings().requires_grad_(False)
    for layer in model.model.layers[:n_layers]:
        layer.requires_grad_(False)


def _prepare_quantized(model, fp32_upcast: bool, grad_ckpt: bool, ckpt_kwargs: dict) -> None:
    """Freeze the quantized model for adapter training. peft's prepare_model_for_kbit_training also casts every
    16-bit weight left outside the quantized linears (embeddings, LM head, norms) to fp32: +2 bytes a parameter,
    1.96 GiB on Llama-3.1-8B, of little use with bf16 compute. `qlora_fp32_upcast: false` skips the cast."""
    if fp32_upcast:
        from peft import prepare_model_for_kbit_training

        prepare_model_for_kbit_training(model, use_gradient_checkpointing=grad_ckpt,
                                        gradient_checkpointing_kwargs=ckpt_kwargs)
        return
    model.requires_grad_(False)
    if grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)
        model.enable_input_require_grads()


def compile_blocks(model) -> None:
    """torch.compile each decoder block in place (as torchtune does): the module tree, its state dict and the
    chunked loss's direct call into the decoder all stay as they are, and every block shares one compiled graph."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    for block in lm.get_decoder().layers:
        block.compile()


def load_model(config: JobConfig, model_path: str, device: torch.device, precision: str, grad_ckpt: bool):
    """The model ready to train, on `device`."""
    dtype = DTYPES[precision]
    # fp16 cannot hold trainable weights (the grad scaler needs fp32 masters): full fine-tuning then loads fp32
    weight_dtype = torch.float32 if precision == "fp16" and config.method == "full" else dtype
    # straight onto the device, a shard at a time: loaded whole on the host first, a 14B model's 27.6 GiB of bf16
    # weights overran a cloud GPU VM's 32 GB of RAM before it reached the GPU
    kwargs = {"dtype": weight_dtype, "attn_implementation": config.attention, "device_map": {"": device}}
    if config.attention == "sdpa":
        share_sdpa_masks()  # one additive mask for all layers instead of a copy in each (trainer/attention_mask.py)
    if config.method == "qlora":
        kwargs.update(quantization_config=_quantization_config(config, dtype))
    model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    model.config.use_cache = False
    ckpt_kwargs = {"use_reentrant": False}
    if config.method == "qlora":
        _prepare_quantized(model, config.qlora_fp32_upcast, grad_ckpt, ckpt_kwargs)
        if device.type == "cpu":
            _disable_cpu_weight_repacking(model)
    elif grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)
    if config.method == "full":
        if config.freeze_layers:
            _freeze_lower_layers(model, config.freeze_layers)
        return model
    from peft import LoraConfig, get_peft_model

    # every linear layer: peft's own "all-linear", which also covers fused layouts (Phi-3's qkv_proj, gate_up_proj)
    targets = "all-linear" if set(config.target_modules) == set(LINEAR_MODULES) else list(config.target_modules)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM", use_dora=config.use_dora,
                      use_rslora=config.use_rslora, modules_to_save=list(config.modules_to_save) or None)
    model = get_peft_model(model, lora)
    if precision == "fp16" and config.modules_to_save:
        _fp32_saved_modules(model)
    return model


def _fp32_saved_modules(model) -> None:
    """peft keeps modules_to_save copies in fp16, whose gradients the grad scaler refuses: they train in fp32. An fp32
    embedding copy's lookup, which autocast leaves alone, then made the whole residual stream fp32 (twice the memory
    the estimate counts): its output is cast back to fp16."""
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    model.get_input_embeddings().register_forward_hook(
        lambda module, args, output: output.half() if output.dtype == torch.float32 else output)
