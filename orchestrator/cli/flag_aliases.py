"""Other trainers' spellings of `orch estimate`'s flag values, so a setting copied from a framework's table or
config (transformers' `optim` and `attn_implementation`, LitGPT's precisions, torchtune's loss and module names,
Qwen-1's and Phi-3's fused linears) is read as the setting orch runs, not refused. Matched without regard to case.
Values not listed pass through unchanged to the job schema, which refuses them with the list of choices."""

from gpu_catalog.errors import UserError
from gpu_catalog.models import ATTENTION_MODULES, LINEAR_MODULES, MLP_MODULES
from trainer.foreign_keys import OPTIMIZERS, PRECISIONS, QUANTIZATIONS

VALUES = {
    "method": {"lora": "lora", "qlora": "qlora", "full": "full", "fft": "full", "full_finetune": "full",
               "full-finetune": "full"},
    "attention": {"fa2": "flash_attention_2", "fa": "flash_attention_2", "flash": "flash_attention_2",
                  "flash_attn": "flash_attention_2", "flash_attn_2": "flash_attention_2",
                  "flash-attn": "flash_attention_2", "flash_attention": "flash_attention_2",
                  "flash-attention-2": "flash_attention_2"},
    # `orch import`'s table (trainer/foreign_keys.py), and the spellings only a published table uses
    "optimizer": {**{name.lower(): ours for name, ours in OPTIMIZERS.items()}, "adam": "adamw",
                  "adamw_apex_fused": "adamw", "paged_adamw_32bit": "adamw", "adamw8bit": "adamw_8bit",
                  "pagedadamw8bit": "paged_adamw_8bit"},
    "loss": {"cross_entropy": "full", "ce": "full", "crossentropyloss": "full", "chunked_ce": "chunked",
             "cewithchunkedoutputloss": "chunked", "chunked_cross_entropy": "chunked", "liger": "fused",
             "fused_linear_cross_entropy": "fused", "flce": "fused"},
    "precision": {**PRECISIONS, "bf16-true": "bf16", "bf16-mixed": "bf16", "16-mixed": "fp16", "16-true": "fp16",
                  "float16": "fp16", "32-true": "fp32", "32": "fp32"},
}
QKV = ("q_proj", "k_proj", "v_proj")
# other names of the linears orch adapts, by framework; `w1`/`w2` below are torchtune's (Llama, Mistral), and
# QWEN1_MODULES Qwen-1's, where they are the two halves of the MLP's input projection
MODULES = {
    "all": LINEAR_MODULES, "all_linear": LINEAR_MODULES, "all-linear": LINEAR_MODULES,
    "attn": ATTENTION_MODULES, "attention": ATTENTION_MODULES, "mlp": MLP_MODULES,
    "qkv_proj": QKV, "query_key_value": QKV, "c_attn": QKV, "wqkv": QKV,  # fused q, k, v (Phi-3, Falcon, Qwen-1)
    "output_proj": ("o_proj",), "dense": ("o_proj",), "wo": ("o_proj",),
    "gate_up_proj": ("gate_proj", "up_proj"),  # Phi-3
    "w1": ("gate_proj",), "w2": ("down_proj",), "w3": ("up_proj",),  # torchtune's Llama
}
QWEN1_MODULES = {"w1": ("up_proj",), "w2": ("gate_proj",), "c_proj": ("o_proj", "down_proj")}  # attn and mlp c_proj


def value(key: str, given):
    """orch's name for a flag's value, where another trainer's spelling of it is known (orch's own names are lower
    case: `AdamW` is adamw)."""
    if not isinstance(given, str) or key not in VALUES:
        return given
    spelled = given.strip().lower()
    return VALUES[key].get(spelled, spelled)


def names_in(given: str) -> list[str]:
    """The names of a comma (or space) list, in brackets or quotes or not: `q_proj,v_proj`, `[q_proj, v_proj]`."""
    return [n.strip(" '\"") for n in given.strip().strip("[]").replace(",", " ").split() if n.strip(" '\"")]


def target_modules(given: str, model: str) -> str | list[str]:
    """`all-linear` or orch's module names, in orch's order, for a comma (or space) list, in brackets or quotes or
    not, of any trainer's names; a name not known is kept, for the schema to refuse it."""
    names = [n.lower() for n in names_in(given)]
    if not names:
        return [given]  # an empty list: the schema says what it needs
    table = {**MODULES, **QWEN1_MODULES} if model.split("/")[-1].lower().startswith("qwen-") else MODULES
    if any(table.get(n) == LINEAR_MODULES for n in names):
        return "all-linear"
    found = {module for name in names for module in table.get(name, (name,))}
    return sorted(found, key=lambda m: (m not in LINEAR_MODULES, LINEAR_MODULES.index(m) if m in LINEAR_MODULES
                                        else 0, m))


def quantization(given: str, method: str | None, quant_bits: int | None, double_quant: bool | None) -> dict:
    """The job keys one `--quantization` value stands for (a table's quantization column in one flag), with the
    method it implies when none is given; refused where it contradicts a flag given beside it."""
    found = QUANTIZATIONS.get(given.strip().lower())
    if found is None:
        raise UserError(f"unknown --quantization {given!r}: use nf4, nf4-dq, int8 or none (LitGPT's bnb.nf4, "
                        "bnb.nf4-dq and bnb.int8 are read too).")
    if found.bits is None:
        if method == "qlora":
            raise UserError(f"--quantization {given} contradicts --method qlora, which quantizes the weights: "
                            "give --quantization nf4 or int8, or --method lora.")
        return {}
    if method not in (None, "qlora"):
        raise UserError(f"--quantization {given} quantizes the frozen weights, which is --method qlora, not "
                        f"{method}: give --method qlora, or --quantization none.")
    if quant_bits is not None and quant_bits != found.bits:
        raise UserError(f"--quantization {given} is {found.bits}-bit but --quant-bits is {quant_bits}: give one.")
    keys = {"method": "qlora", "quant_bits": found.bits}
    if found.double_quant is not None and found.bits == 4:
        if double_quant is not None and double_quant != found.double_quant:
            raise UserError(f"--quantization {given} has {'' if found.double_quant else 'no '}double quantization, "
                            f"but --{'' if double_quant else 'no-'}double-quant was given: give one.")
        keys["double_quant"] = found.double_quant
    return keys


def quantization_note(given: str | None) -> str | None:
    """What the estimate says when `--quantization` names a format orch does not train: its memory is counted as
    orch's bitsandbytes NF4 or int8 at the same bits."""
    found = QUANTIZATIONS.get(given.strip().lower()) if given else None
    if found is None or found.stands_in_for is None:
        return None
    return (f"{found.stands_in_for} is counted as orch's bitsandbytes {'NF4' if found.bits == 4 else 'int8'} "
            f"({found.bits}-bit weights): orch trains that format, not {found.stands_in_for}.")
