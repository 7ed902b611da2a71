"""What DoRA, rsLoRA, modules_to_save and a CPU-offloaded optimizer add to a LoRA job's memory and time: small pure
terms that memory.py and speed.py add to theirs.

- DoRA (peft `use_dora`) learns one magnitude per output feature of every adapted linear: n_layers x sum(out).
- rsLoRA (peft `use_rslora`) only rescales the adapter by alpha/sqrt(r): no parameters, no memory.
- modules_to_save trains a full copy of each named module next to the frozen original: embeddings and the head are
  vocab x hidden each (a tied head is untied by the copy), a block's linear in x out, a norm hidden. Other names
  (a model's own, such as Qwen-1's c_attn) are not in the shape and count 0.
- adamw_cpu_offload (torchao's CPUOffloadOptimizer) keeps AdamW's two fp32 moments and the fp32 master copy in CPU
  memory: no optimizer state on the GPU, and per step the gradients go to the host and the updated weights come back,
  and the CPU runs the AdamW step.
"""

from gpu_catalog.models import ModelShape

HEAD_MODULES = ("lm_head", "embed_out")  # the LM head, by the names peft matches
FULL_COPY_MODULES = ("embed_tokens", "wte", *HEAD_MODULES)  # vocab x hidden each
NORM_MODULES = ("norm", "input_layernorm", "post_attention_layernorm")  # hidden each (`norm`: the final one)
OFFLOAD_OPTIMIZER = "adamw_cpu_offload"
HOST_LINK_BYTES_PER_S = 25e9  # PCIe 4.0 x16: 32 GB/s per direction on paper, ~25 GB/s measured by pinned copies
CPU_ADAMW_BYTES_PER_S = 20e9  # a CPU AdamW step streams ~32 bytes/param (fp32 param, grad, 2 moments, read+write)
CPU_ADAMW_BYTES_PER_PARAM = 32
FP32_BYTES = 4


def dora_params(model: ModelShape, target_modules: tuple[str, ...], use_dora: bool) -> int:
    if not use_dora:
        return 0
    shapes = model.linear_shapes()
    return model.n_layers * sum(shapes[m][1] for m in target_modules)


def saved_module_params(model: ModelShape, modules_to_save: tuple[str, ...]) -> int:
    """peft matches a module by its whole name or its last dotted part (`model.embed_tokens` is the embeddings), in
    every block unless the name holds a block's index (`layers.3.mlp.down_proj`); by the end of the name, so `norm`
    alone is every norm (each block's two and the final one: it was counted as the final one alone), where
    `model.norm` is the final one."""
    shapes = model.linear_shapes()
    total = 0
    for name in modules_to_save:
        parts = name.split(".")
        blocks = 1 if any(part.isdigit() for part in parts) else model.n_layers
        if parts[-1] in FULL_COPY_MODULES:
            total += model.vocab * model.hidden
        elif parts[-1] in shapes:
            total += blocks * shapes[parts[-1]][0] * shapes[parts[-1]][1]
        elif parts == ["norm"]:
            total += (2 * model.n_layers + 1) * model.hidden
        elif parts[-1] in NORM_MODULES:
            total += (1 if parts[-1] == "norm" else blocks) * model.hidden
    return total


def extra_adapter_params(model: ModelShape, settings) -> int:
    """Trainable parameters a LoRA job has beyond its A and B matrices."""
    return (dora_params(model, settings.target_modules, settings.use_dora)
            + saved_module_params(model, settings.modules_to_save))


def offloads_optimizer(settings) -> bool:
    return settings.optimizer == OFFLOAD_OPTIMIZER


def offload_step_s(trainable_params: int, settings) -> float:
    """Seconds per optimizer step that the CPU offload adds: gradients down, weights up, the CPU's AdamW step."""
    if not offloads_optimizer(settings):
        return 0.0
    transfer_s = 2 * trainable_params * FP32_BYTES / HOST_LINK_BYTES_PER_S
    return transfer_s + trainable_params * CPU_ADAMW_BYTES_PER_PARAM / CPU_ADAMW_BYTES_PER_S
