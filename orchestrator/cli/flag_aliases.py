"""Other trainers' spellings of `orch estimate`'s flag values, so a setting copied from a framework's table or
config (transformers' `optim` and `attn_implementation`, LitGPT's precisions, torchtune's loss and module names,
Qwen-1's and Phi-3's fused linears) is read as the setting orch runs, not refused. Matched without regard to case,
spaces, hyphens, underscores and brackets (`Flash Attention 2`, `flash-attn-2`), and a class path by its last part
(`torchao.optim.AdamW8bit`, `torch.bfloat16`). Values not listed pass through unchanged to the job schema, which
refuses them with the list of choices."""

from gpu_catalog.checks import repeated, short_repr
from gpu_catalog.errors import UserError
from gpu_catalog.models import LINEAR_MODULES, in_linear_order
from gpu_catalog.names import squeezed
from trainer.config import CHOICES
from trainer.foreign_keys import FLASH_ATTN, LOSSES, MODULES, OPTIMIZERS_ANY_CASE, PRECISIONS

VALUES = {
    # Qwen's README (Q-LoRA, Full-parameter), torchtune's recipe names
    "method": {"fft": "full", "full_finetune": "full", "full_parameter": "full", "full_fine_tuning": "full",
               "full_finetune_single_device": "full", "lora_finetune_single_device": "lora", "lora_finetune": "lora"},
    # xformers' memory-efficient kernel is the one sdpa runs where flash cannot; LLaMA-Factory's flash_attn values
    # (`disabled`; `auto`, transformers' own choice: sdpa), read here as the `--flash_attn` option reads them
    "attention": {**FLASH_ATTN, "auto": "sdpa", "scaled_dot_product_attention": "sdpa", "pytorch_sdpa": "sdpa",
                  "xformers": "sdpa", "fa2": "flash_attention_2", "fa": "flash_attention_2",
                  "flash": "flash_attention_2", "flash_attn": "flash_attention_2", "flash_attn_2": "flash_attention_2",
                  "flash_attention": "flash_attention_2"},
    # `orch import`'s tables (trainer/foreign_keys.py, which the job file reads too), and the spellings only a
    # published table uses
    "optimizer": {**OPTIMIZERS_ANY_CASE, "adam": "adamw",
                  "8bit_adamw": "adamw_8bit"},
    "loss": LOSSES,
    "precision": {**PRECISIONS, "bf16-true": "bf16", "float16": "fp16", "32-true": "fp32", "32": "fp32"},
}
# Lightning's (LitGPT's) precisions that name no mode orch trains: read as orch's bf16 and fp16, `bf16-mixed` counted
# 16-bit weights where Lightning keeps fp32 ones (a 7B full fine-tune: 52 GiB said to fit an 80 GB card, where the
# run needs ~100), and orch's fp16 keeps frozen weights in fp16, where 16-mixed keeps them fp32 and 16-true trains
# 16-bit ones with no fp32 copy
_ORCH_PRECISIONS = ("give bf16 (16-bit weights, Lightning's bf16-true), fp16 (fp16 frozen weights and fp32 trained "
                    "ones, under fp16 autocast) or fp32")
NOT_ORCHS = {"precision": {
    "bf16-mixed": f"Lightning's bf16-mixed keeps every weight in fp32 under bf16 autocast, which orch does not train: "
                  f"{_ORCH_PRECISIONS}",
    "16-mixed": f"Lightning's 16-mixed keeps every weight in fp32 under fp16 autocast, which orch does not train: "
                f"{_ORCH_PRECISIONS}",
    "16-true": f"Lightning's 16-true trains fp16 weights with no fp32 copy, which orch does not: {_ORCH_PRECISIONS}"}}
# other names of the linears orch adapts (MODULES, `orch import`'s table), and QWEN1_MODULES Qwen-1's, where `w1`/`w2`
# are the two halves of the MLP's input projection
QWEN1_MODULES = {"w1": ("up_proj",), "w2": ("gate_proj",), "c_proj": ("o_proj", "down_proj"),  # attn and mlp c_proj
                 "attn.c_proj": ("o_proj",), "mlp.c_proj": ("down_proj",)}
DOTTED = ("optimizer", "loss", "precision")  # values that may come as a class path: the class is the last part


# each table by squeezed spelling, with orch's own names in it, so `flash-attention-2` finds flash_attention_2
SQUEEZED = {key: {**{squeezed(ours): ours for ours in CHOICES[key] if isinstance(ours, str)},
                  **{squeezed(theirs): ours for theirs, ours in table.items()}} for key, table in VALUES.items()}


def value(key: str, given):
    """orch's name for a flag's value, where another trainer's spelling of it is known (orch's own names are lower
    case: `AdamW` is adamw)."""
    if not isinstance(given, str) or key not in VALUES:
        return given
    spelled = given.strip().lower()
    if spelled in NOT_ORCHS.get(key, {}):
        raise UserError(f"--{key.replace('_', '-')} {spelled}: {NOT_ORCHS[key][spelled]}.")
    if spelled in VALUES[key]:
        return VALUES[key][spelled]
    name = spelled.rsplit(".", 1)[-1] if key in DOTTED else spelled
    return SQUEEZED[key].get(squeezed(name), given)  # not known: as typed, for the schema to refuse and echo


def names_in(given: str) -> list[str]:
    """The names of a comma (or space) list, in brackets or quotes or not: `q_proj,v_proj`, `[q_proj, v_proj]`."""
    return [n.strip(" '\"") for n in given.strip().strip("[]").replace(",", " ").split() if n.strip(" '\"")]


def listed(given: str, flag: str) -> list[str]:
    """names_in for a flag's list, refusing an empty entry (`q_proj,,v_proj`, `embed_tokens,`): a name lost between
    commas, as `--providers` refuses it; and a name given twice (`q_proj,q_proj`), as a job file's list refuses it.
    A list with no name at all is left to the job schema."""
    names = names_in(given)
    if names and any(not entry.strip(" '\"") for entry in given.strip().strip("[]").split(",")):
        raise UserError(f"{flag}: an empty name between commas in {short_repr(given)}: give names separated by single "
                        "commas.")
    if twice := repeated(name.lower() for name in names):
        raise UserError(f"{flag} names {short_repr(twice[0])} more than once: give each name once.")
    return names


def _modules(name: str, table: dict) -> tuple[str, ...]:
    """orch's modules for one name; a module path (`self_attn.q_proj`, Qwen-1's `attn.c_proj`) by its whole name,
    else by its last part; an unknown name as it is, for the schema to refuse."""
    for key in (name, name.rsplit(".", 1)[-1]):
        if key in table:
            return table[key]
        if key in LINEAR_MODULES:
            return (key,)
    return (name,)


def target_modules(given: str, model: str) -> str | list[str]:
    """`all-linear` or orch's module names, in orch's order, for a comma (or space) list, in brackets or quotes or
    not, of any trainer's names; a name not known is kept, for the schema to refuse it."""
    names = [n.lower() for n in listed(given, "--target-modules")]
    if not names:
        return [given]  # an empty list: the schema says what it needs
    table = {**MODULES, **QWEN1_MODULES} if model.split("/")[-1].lower().startswith("qwen-") else MODULES
    if every := [n for n in names if table.get(n) == LINEAR_MODULES]:
        if len(every) < len(names):  # `all-linear,q_proj` was all-linear, the names beside it unsaid
            raise UserError(f"--target-modules {short_repr(given)}: {every[0]} adapts every linear already: give "
                            f"{every[0]} alone, or the module names alone.")
        return "all-linear"
    found = {module for name in names for module in _modules(name, table)}
    return in_linear_order(found)
