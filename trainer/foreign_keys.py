"""Keys other trainers use for orch's settings: the config check names orch's key for a foreign one ("`sequence_len`
is axolotl's name: use `seq_len`"), and `orch import` carries values over with the same table.

Key names from the projects' own configs and docs (checked 2026-12): axolotl's config reference and examples
(sequence_len, micro_batch_size, adapter, load_in_4bit, lora_target_linear, datasets: [{path, type}]),
LLaMA-Factory's examples/train_lora/*.yaml (cutoff_len, finetuning_type, lora_rank, lora_target, quantization_bit),
TRL's SFTConfig and ScriptArguments (max_length, per_device_train_batch_size, optim, lr_scheduler_type,
dataset_name, dataset_train_split) and torchtune's recipes/configs (batch_size, enable_activation_checkpointing,
model.lora_rank, tokenizer.max_seq_len, optimizer.lr; nested keys are written with dots).

The defaults those trainers use for a key a config leaves out (SOURCE_DEFAULTS) are from LLaMA-Factory's
hparams/finetuning_args.py and data_args.py, TRL's SFTConfig and ModelConfig, axolotl's config schema, transformers'
TrainingArguments and torchtune's LoRA model builders (checked 2026-12).
"""

import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from gpu_catalog.checks import dump_yaml, short_repr
from gpu_catalog.errors import UserError
from gpu_catalog.models import ATTENTION_MODULES, LINEAR_MODULES, MLP_MODULES, get_model, hub_id
from gpu_catalog.names import listed, near_hint, squeezed
from trainer.data_formats import FILE_KINDS, SHAPES, TURN_KEYS

AXOLOTL, LLAMA_FACTORY, TRL, TORCHTUNE = "axolotl", "LLaMA-Factory", "TRL", "torchtune"
OPTIMIZERS = {"adamw_torch": "adamw", "adamw_torch_fused": "adamw", "adamw": "adamw", "adamw_hf": "adamw",
              "adamw_bnb_8bit": "adamw_8bit", "adamw_8bit": "adamw_8bit", "paged_adamw_8bit": "paged_adamw_8bit",
              "lion_8bit": "lion_8bit", "paged_lion_8bit": "lion_8bit", "torch.optim.AdamW": "adamw",
              "bitsandbytes.optim.PagedAdamW8bit": "paged_adamw_8bit", "bitsandbytes.optim.AdamW8bit": "adamw_8bit",
              # 32-bit AdamW whatever the kernel: paging moves its states to the CPU only when the GPU runs out, and
              # apex's fused kernel runs the same update; the job file, `orch import` and `orch estimate` all read
              # these through this one table
              "paged_adamw_32bit": "adamw", "paged_adamw": "adamw", "adamw_apex_fused": "adamw"}
# the same names in any case (`AdamW_torch`), as the job file and `orch estimate --optimizer` match them
OPTIMIZERS_ANY_CASE = {name.lower(): ours for name, ours in OPTIMIZERS.items()}
SCHEDULERS = {"cosine": "cosine", "linear": "linear", "constant": "constant",
              "constant_with_warmup": "constant_with_warmup",
              "torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup": "cosine"}
METHODS = {"lora": "lora", "qlora": "qlora", "full": "full", None: "full", "": "full"}
PRECISIONS = {"bf16": "bf16", "fp16": "fp16", "fp32": "fp32", "float32": "fp32", "bfloat16": "bf16"}
FLASH_ATTN = {"fa2": "flash_attention_2", "sdpa": "sdpa", "disabled": "eager"}  # LLaMA-Factory's flash_attn
ATTN_IMPLEMENTATIONS = {"sdpa": "sdpa", "flash_attention_2": "flash_attention_2", "eager": "eager"}  # transformers'
# Loss names -> orch's `loss` (lower case; a class path by its last part): torchtune's loss classes, and the spellings
# `orch estimate --loss` reads from published tables. torchtune's LinearCrossEntropyLoss and Apple's cut
# cross-entropy never hold the whole logits either.
LOSSES = {"cross_entropy": "full", "ce": "full", "crossentropyloss": "full", "chunked_ce": "chunked",
          "cewithchunkedoutputloss": "chunked", "chunked_cross_entropy": "chunked", "liger": "fused",
          "fused_linear_cross_entropy": "fused", "flce": "fused", "liger_fused_linear_cross_entropy": "fused",
          "liger_kernel": "fused", "ligerfusedlinearcrossentropyloss": "fused",
          "linearcrossentropyloss": "fused", "cut_cross_entropy": "fused", "cce": "fused"}
QKV = ("q_proj", "k_proj", "v_proj")
# other names of the linears orch adapts, by framework: torchtune's (`output_proj`, and `w1`/`w2`/`w3` of its Llama
# and Mistral), fused q, k, v (Phi-3, Falcon, Qwen-1), LitGPT's lora_* switches and names; `orch import` reads
# torchtune's lora_attn_modules and `orch estimate --target-modules` every name through this one table
MODULES = {
    "all": LINEAR_MODULES, "all_linear": LINEAR_MODULES, "all-linear": LINEAR_MODULES,
    "attn": ATTENTION_MODULES, "attention": ATTENTION_MODULES, "mlp": MLP_MODULES,
    "qkv_proj": QKV, "query_key_value": QKV, "c_attn": QKV, "wqkv": QKV,
    "output_proj": ("o_proj",), "dense": ("o_proj",), "wo": ("o_proj",),
    "gate_up_proj": ("gate_proj", "up_proj"),  # Phi-3
    "w1": ("gate_proj",), "w2": ("down_proj",), "w3": ("up_proj",),  # torchtune's Llama
    "lora_query": ("q_proj",), "lora_key": ("k_proj",), "lora_value": ("v_proj",), "lora_projection": ("o_proj",),
    "lora_mlp": MLP_MODULES, "query": ("q_proj",), "key": ("k_proj",), "value": ("v_proj",),
    # LitGPT's module names (its fused q, k, v linear was `attn.attn` before `attn.qkv`; `attn.attn` was read as the
    # whole `attn` group, o_proj too), and the short names of tables and of Meta's own Llama code (`q,v`, `wq`)
    "attn.attn": QKV, "attn.qkv": QKV, "qkv": QKV, "attn.proj": ("o_proj",), "fc_1": ("gate_proj",),
    "fc_2": ("up_proj",), "mlp.proj": ("down_proj",),
    **{short: (f"{name}_proj",) for name in ("q", "k", "v", "o") for short in (name, f"w{name}", f"w_{name}")},
    "gate": ("gate_proj",), "up": ("up_proj",), "down": ("down_proj",),
}
# torchtune's model families (the package in `torchtune.models.<family>`) -> the Hugging Face name of that family's
# releases, {size} filled from the builder's name (`llama3_1_8b`: 8B, `qwen2_5_0_5b`: 0.5B); torchtune's mistral_7b
# is v0.1's shape (a 32000-token vocabulary)
TORCHTUNE_FAMILIES = {"llama2": "Llama-2-{size}", "code_llama2": "CodeLlama-{size}", "llama3": "Meta-Llama-3-{size}",
                      "llama3_1": "Llama-3.1-{size}", "llama3_2": "Llama-3.2-{size}", "llama3_3": "Llama-3.3-{size}",
                      "mistral": "Mistral-{size}-v0.1", "gemma": "gemma-{size}", "gemma2": "gemma-2-{size}",
                      "qwen2": "Qwen2-{size}", "qwen2_5": "Qwen2.5-{size}", "qwen3": "Qwen3-{size}",
                      "phi3": "Phi-3-{size}"}
TORCHTUNE_BUILDER = re.compile(r"torchtune\.models\.(?P<family>\w+)\.(?P<kind>q?lora_)?(?P=family)_"
                               r"(?P<size>\d+(?:_\d+)?b|[a-z]+)(?:_(?P<variant>instruct|base))?")
TORCHTUNE_METHODS = {"qlora_": {"method": "qlora", "quant_bits": 4}, "lora_": {"method": "lora"},
                     None: {"method": "full"}}  # the builder's prefix -> orch's method


class Quantization(NamedTuple):
    """What a quantization's name says: the weight bits (None: not quantized), whether NF4's constants are quantized
    too, whether peft's prepare_model_for_kbit_training casts the rest to fp32 (it skips GPTQ and torchao models),
    and the other format it names, whose memory orch counts as its own (None: the job's default, orch's format)."""
    bits: int | None
    double_quant: bool | None = None
    fp32_upcast: bool | None = None
    stands_in_for: str | None = None


# Quantizations as tables and configs write them (matched squeezed: case, spaces, hyphens and underscores aside):
# LitGPT's `quantize` values (its plain `bnb.nf4` keeps the constants in fp32, `bnb.nf4-dq` quantizes them), the
# published tables' `bnb-nf4`, `4-bit NF4` and `int8`, and formats orch does not train but whose weights take the same
# bytes (bitsandbytes FP4; torchao's NF4, GPTQ and AWQ, whose per-group scales take about what NF4's
# double-quantized constants do).
_FP4 = "bitsandbytes FP4"
QUANTIZATIONS = {squeezed(spelling): meaning for spellings, meaning in (
    # an unquantized row's cell: no word, or the weights' own 16 bits
    (("none", "no", "off", "false", "n/a", "16-bit", "bf16", "fp16"), Quantization(None)),
    (("nf4", "bnb-nf4", "4bit", "bnb-4bit", "4-bit nf4", "nf4 4-bit", "load_in_4bit", "bitsandbytes nf4",
      "bitsandbytes 4-bit"), Quantization(4)),
    (("nf4-dq", "bnb-nf4-dq", "nf4+dq"), Quantization(4, double_quant=True)),
    (("int8", "8bit", "bnb-int8", "bnb-8bit", "llm.int8", "load_in_8bit", "bitsandbytes int8",
      "bitsandbytes 8-bit"), Quantization(8)),
    (("fp4", "bnb-fp4"), Quantization(4, double_quant=False, stands_in_for=_FP4)),
    (("fp4-dq",), Quantization(4, double_quant=True, stands_in_for=_FP4)),
    # LitGPT's own `--quantize` values: bitsandbytes through Lightning, with no peft to cast the rest to fp32 (read with
    # peft's upcast, LitGPT's Llama-3-8B QLoRA row on an A10G was 21.4 GiB, "does not fit", where it ran in 16.2)
    (("bnb.nf4",), Quantization(4, double_quant=False, fp32_upcast=False)),
    (("bnb.nf4-dq",), Quantization(4, double_quant=True, fp32_upcast=False)),
    (("bnb.int8",), Quantization(8, fp32_upcast=False)),
    (("bnb.fp4",), Quantization(4, double_quant=False, fp32_upcast=False, stands_in_for=_FP4)),
    (("bnb.fp4-dq",), Quantization(4, double_quant=True, fp32_upcast=False, stands_in_for=_FP4)),
    (("torchao-nf4", "torchao.nf4"), Quantization(4, True, fp32_upcast=False, stands_in_for="torchao NF4")),
    (("gptq-int4", "gptq", "int4"), Quantization(4, True, fp32_upcast=False, stands_in_for="GPTQ int4")),
    (("awq", "awq-int4"), Quantization(4, True, stands_in_for="AWQ int4")),
    (("gptq-int8",), Quantization(8, fp32_upcast=False, stands_in_for="GPTQ int8")),
) for spelling in spellings}


def quantization_named(spelled: str) -> Quantization | None:
    """The quantization a table's or a config's spelling names, or None."""
    return QUANTIZATIONS.get(squeezed(spelled.strip()))


# a checkpoint's name that says its weights are stored quantized (unsloth's -bnb-4bit, Qwen's -Int4, TheBloke's
# -GPTQ and -AWQ) -> the quantization's spelling; transformers loads such weights quantized whatever the job says
CHECKPOINT_FORMATS = ((re.compile(r"bnb-4bit", re.I), "nf4"), (re.compile(r"gptq|-int4\b", re.I), "gptq-int4"),
                      (re.compile(r"awq", re.I), "awq"), (re.compile(r"-int8\b", re.I), "gptq-int8"))


def checkpoint_quantization(model: str, folder: Path | None = None) -> str | None:
    """The quantization a model's checkpoint is stored in, or None: as its name says, else (`folder`: where the
    model resolves as a local folder, trainer.config.model_folder) as its config.json says. A folder whose config
    cannot be read is the model's own checks' to say."""
    named = next((name for pattern, name in CHECKPOINT_FORMATS if pattern.search(model.split("/")[-1])), None)
    if named is not None or folder is None:
        return named
    try:
        return get_model(str(folder)).stored_quantization if (folder / "config.json").is_file() else None
    except (UserError, OSError):  # a name too long for a path is no folder either
        return None


# axolotl dataset `type`s whose records orch reads by their shape alone (trainer/data_formats.py), so the type carries
# over as it is: alpaca's instruction/input/output, chat_template's messages, sharegpt's conversations, completion's
# text. Any other type names a prompt format orch does not know, and is listed as not carried over.
AXOLOTL_TYPES = ("alpaca", "chat_template", "sharegpt", "completion")
AXOLOTL_TYPE_FIELDS = {"instruction": "field_instruction", "input": "field_input", "output": "field_output"}
# Why a field of an axolotl dataset entry is not carried over, where there is more to say than that orch has none.
AXOLOTL_DATASET_FIELDS = {
    "ds_type": "orch reads a file by its suffix (.jsonl, .json, .parquet, .csv): name the file with such a suffix",
    "data_files": "orch reads a whole dataset or one file: give the file with --set dataset=PATH",
    "train_on_split": "orch trains on the split `dataset_split` names: give it with --set dataset_split=SPLIT",
}


class Carried(ValueError):
    """A value orch cannot take over (the key itself is known)."""


class Refused(Carried):
    """A value orch cannot take for a key that says whether and how the weights are quantized: `orch import` refuses
    the config, where it lists another key's, since training without it is another method at another memory and cost
    (`quantization_bit: 3` or `.nan` beside `finetuning_type: lora` became 16-bit LoRA, exit 0). A command-line
    option says it as it says any value it cannot take."""


QUANTIZED_BITS = (4, 8)  # the weight bits orch's QLoRA trains at (config.CHOICES["quant_bits"])
_BITS_FIX = ("orch quantizes to 4 or 8 bits (method qlora, quant_bits 4 or 8): give 4 or 8, or leave it out to train "
             "unquantized")


def _same(key: str) -> Callable[[object], dict]:
    return lambda value: {key: value}


def _choice(key: str, table: dict) -> Callable[[object], dict]:
    def convert(value):
        if not isinstance(value, str | None) or value not in table:
            raise Carried(f"orch has no {key} {short_repr(value)} (choices: {', '.join(sorted(set(table.values())))})")
        return {key: table[value]}
    return convert


def _quantize(value) -> dict:
    """LLaMA-Factory's quantization_bit: 4 or 8 is QLoRA at those bits. Any other value asks for a quantization orch
    does not train (3 bits, which only HQQ takes), or is no number of bits at all (NaN, inf, text): refused, as
    LLaMA-Factory itself refuses what bitsandbytes cannot do, not dropped to train 16-bit."""
    bits = value
    if isinstance(value, str):  # LLaMA-Factory compares the bits with the numbers 4 and 8: text is neither
        try:
            float(value)
        except ValueError:
            raise Refused(f"{short_repr(value)} is not a finite number of bits: {_BITS_FIX}") from None
        raise Refused(f"{short_repr(value)} is quoted, so it is text, no number of bits: write it unquoted; "
                      f"{_BITS_FIX}")
    if isinstance(bits, bool) or not isinstance(bits, int | float) or isinstance(bits, float) and \
            not math.isfinite(bits):  # an int past a float's range is not asked here: it is no 4 or 8 below
        raise Refused(f"{short_repr(value)} is not a finite number of bits: {_BITS_FIX}")
    if bits not in QUANTIZED_BITS:
        shown = f"{bits:g}" if isinstance(bits, float) else short_repr(bits)  # a huge int, cut short
        raise Refused(f"{shown}-bit quantization is none orch trains: {_BITS_FIX}")
    return {"method": "qlora", "quant_bits": int(bits)}


def _quantization_switch(on: dict, off: dict | None = None) -> Callable[[object], dict]:
    """A switch that quantizes the weights (load_in_4bit, torchtune's quantize_base): `on` when true, `off` when
    false. A value that is no YAML boolean (a quoted 'true', which axolotl's and TRL's parsers read as true) is
    refused, where another switch's is listed: left out, a QLoRA config trained as 16-bit LoRA."""
    def convert(value):
        if not isinstance(value, bool):
            raise Refused(f"{short_repr(value)} is not a YAML boolean: write true or false, unquoted (it says whether "
                          "the weights are quantized, which sets the method and its memory)")
        return dict(on) if value else dict(off or {})
    return convert


def _nf4_only(value) -> dict:
    """TRL's bnb_4bit_quant_type: the type of a 4-bit load that load_in_4bit asks for (alone it quantizes nothing,
    and read as QLoRA it turned a LoRA into one); NF4 is orch's QLoRA type, and bitsandbytes' FP4 no format orch
    trains."""
    if isinstance(value, str) and value.strip().lower() == "nf4":
        return {}
    raise Carried(f"quantization type {short_repr(value)}: orch's QLoRA quantizes to NF4")


def _per_epoch_cap(value) -> dict:
    """torchtune's max_steps_per_epoch caps each epoch; orch's max_steps caps the whole run, so carried as it, a
    3-epoch config trained a third of its steps."""
    raise Carried(f"torchtune caps each epoch at {short_repr(value)} steps, and orch's max_steps caps the whole run: "
                  f"give --set max_steps=N (epochs x {short_repr(value)})")


def _steps(key: str) -> Callable[[object], dict]:
    """transformers' logging_steps, save_steps and eval_steps read a value below 1 as a share of the run's steps
    (ceil(share x steps), TrainingArguments' docs); orch counts steps, and a job's step count may wait for its data,
    so a share is listed with the count to give: carried as it was, `save_steps: 0.25` refused the whole import as
    "must be a whole number"."""
    def convert(value):
        if isinstance(value, float) and 0 < value < 1:
            raise Carried(f"transformers reads {short_repr(value)} as a share of the run's steps, and orch counts "
                          f"steps: give --set {key}=N")
        return {key: value}
    return convert


def _bitsandbytes_only(value) -> dict:
    """LLaMA-Factory's quantization_method: the library quantization_bit loads with; bitsandbytes is orch's QLoRA
    (it was listed as "no such setting"), and HQQ, EETQ or a GPTQ/AWQ checkpoint's own method none orch trains."""
    if isinstance(value, str) and value.strip().lower() in ("bitsandbytes", "bnb"):
        return {}
    raise Refused(f"quantization method {short_repr(value)}: orch's QLoRA quantizes with bitsandbytes (NF4 or "
                  "int8): set `quantization_method: bitsandbytes`, or import a config without quantization")


def _flag(value) -> bool:
    """A YAML boolean only: a quoted 'false', a `no` string or a list is truthy in Python and would turn the setting
    around, so it is listed as not carried over instead."""
    if not isinstance(value, bool):
        raise Carried(f"{short_repr(value)} is not a YAML boolean: write true or false, unquoted")
    return value


def _text(value) -> str:
    if not isinstance(value, str):
        raise Carried(f"{short_repr(value)} is not text: write a string")
    return value


def _eval_share(value) -> dict:
    """axolotl's val_set_size and LLaMA-Factory's val_size: a share of the data under 1, else (datasets'
    train_test_split) a count of records, which orch's eval_fraction, a share, cannot say without the data's size:
    the count was carried as a share and refused as `eval_fraction ... got 100`, a key the config never wrote."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 0.5:
        shown = f"{value:g}" if isinstance(value, float) else short_repr(value)
        what = "a count of records held out" if isinstance(value, int | float) and value >= 1 else \
            "not a share of the data from 0 to 0.5"
        raise Carried(f"{shown} is {what}, and orch holds out a share: give --set eval_fraction=F (0 <= F < 0.5, "
                      "e.g. 0.05)")
    return {"eval_fraction": value}


def _when_true(values: dict) -> Callable[[object], dict]:
    return lambda value: values if _flag(value) else {}


def _negated(key: str) -> Callable[[object], dict]:
    return lambda value: {key: not _flag(value)}


def _precision(flag: str) -> Callable[[object], dict]:
    """axolotl's `bf16: auto` (bf16 where the GPU has it) is orch's own precision auto."""
    return lambda value: {"precision": "auto"} if value == "auto" else {"precision": flag} if _flag(value) else {}


def _flash_attn(value) -> dict:
    """LLaMA-Factory's `auto` leaves the choice to transformers, as orch's default does."""
    return {} if value == "auto" else _choice("attention", FLASH_ATTN)(value)


def _names(key: str) -> Callable[[object], dict]:
    """Module names as a list or as LLaMA-Factory's comma string (`q_proj, v_proj`, spaces dropped as it does)."""
    def convert(value):
        names = [name.strip() for name in value.split(",")] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise Carried(f"{short_repr(value)} is not a list of module names: write [q_proj, v_proj] or "
                          "'q_proj,v_proj'")
        return {key: names}
    return convert


def _targets(value) -> dict:
    if isinstance(value, list) and len(value) == 1 and value[0] in ("all", "all-linear"):
        value = value[0]  # TRL's own list field, as its CLI writes `--lora_target_modules all-linear`
    if value is True or value in ("all", "all-linear"):  # `is`: 1 == True
        return {"target_modules": "all-linear"}
    return _names("target_modules")(value)


def _torchtune_targets(value) -> dict:
    """torchtune's lora_attn_modules in orch's names (its `output_proj` is o_proj)."""
    names = _names("target_modules")(value)["target_modules"]
    return {"target_modules": list(dict.fromkeys(m for name in names for m in MODULES.get(name, (name,))))}


def _lora_on_output(value) -> dict:
    if _flag(value):
        raise Carried("orch puts no LoRA on lm_head (torchtune's output projection): leave it out, or train lm_head "
                      "in full with --set modules_to_save=[lm_head]")
    return {}


def _loss(value) -> dict:
    """A loss class (torchtune's `loss._component_`) by its last part."""
    name = value.rsplit(".", 1)[-1].lower() if isinstance(value, str) else None
    if name not in LOSSES:
        raise Carried(f"orch has no loss {short_repr(value)} (choices: {', '.join(sorted(set(LOSSES.values())))})")
    return {"loss": LOSSES[name]}


def _torchtune_model(family: str, size: str, variant: str | None) -> str | None:
    """The catalog's Hugging Face id for a torchtune builder's family and size (`llama3_1`, `8b`), or None. A `_base`
    builder may be the family's plain release (Qwen2.5-7B is the base of Qwen2.5-7B-Instruct)."""
    if family not in TORCHTUNE_FAMILIES:
        return None
    size = size.replace("_", ".")
    named = TORCHTUNE_FAMILIES[family].format(size=size[:-1] + "B" if size[0].isdigit() else size)
    suffix = {"instruct": "-Instruct", "base": "-Base", None: ""}[variant]
    for spelled in (named + suffix, named) if variant == "base" else (named + suffix,):
        try:
            found = hub_id(spelled)
        except UserError:  # a name the catalog reads two ways: no guess
            continue
        if "/" in found:  # hub_id gives a name it does not know back as it is
            return found
    return None


def torchtune_builder(value) -> tuple[dict, str | None]:
    """orch's method and model for torchtune's `model._component_` (`torchtune.models.llama3_1.qlora_llama3_1_8b`:
    QLoRA on meta-llama/Llama-3.1-8B; `lora_...` LoRA; the plain builder a full fine-tune), and the builder's name
    when the catalog has no model for it (None when it has). The recipe's QLoRA is in this key alone."""
    match = TORCHTUNE_BUILDER.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise Carried(f"{short_repr(value)} is no torchtune model builder orch reads (torchtune.models.FAMILY."
                      "[q]lora_FAMILY_SIZE): give --set method=METHOD and --set model=HUB_ID")
    values = dict(TORCHTUNE_METHODS[match["kind"]])
    model = _torchtune_model(match["family"], match["size"], match["variant"])
    if model is not None:
        values["model"] = model
    return values, None if model is not None else value.rsplit(".", 1)[-1]


def _is_chat(kind) -> bool:
    return isinstance(kind, str) and kind.startswith("chat_template")


def _axolotl_datasets(value) -> dict:
    first = value[0] if isinstance(value, list) and value else value
    if not isinstance(first, dict) or "path" not in first:
        raise Carried("datasets: orch reads one dataset; give `dataset: PATH_OR_HUB_ID`")
    if isinstance(value, list) and len(value) > 1:
        raise Carried("datasets: orch reads one dataset (merge them into one file or folder)")
    out = {"dataset": first["path"]}
    kind = first.get("type")
    if isinstance(kind, dict):  # axolotl's custom format: which columns hold the parts
        out["dataset_columns"] = {name: kind[field] for name, field in AXOLOTL_TYPE_FIELDS.items() if kind.get(field)}
    elif _is_chat(kind) and first.get("field_messages") not in (None, "messages", "conversations"):
        out["dataset_columns"] = {"conversations": first["field_messages"]}
    if first.get("name"):
        out["dataset_config"] = first["name"]
    if first.get("split"):
        out["dataset_split"] = first["split"]
    return out


def _axolotl_dataset_left_behind(key: str, value) -> list[tuple[str, str]]:
    """(`datasets.FIELD`, why) for each field of the one dataset entry that orch does not carry over: the entry's
    path, name and split are carried, and its type where orch reads such records by their shape (a custom type's
    field_instruction, field_input and field_output, a chat type's field_messages); of `test_datasets`, the path
    alone. Without this, data_files, ds_type or an unknown type vanished unsaid."""
    first = value[0] if isinstance(value, list) and len(value) == 1 else value
    if not isinstance(first, dict) or "path" not in first:
        return []  # the whole key is listed (Carried)
    read = {"path"} if key == "test_datasets" else {"path", "name", "split"}
    kind = first.get("type")
    left = []
    for field, item in first.items():
        if item is None or field in read:
            continue
        where = f"{key}.{field}"
        if key == "test_datasets":
            left.append((where, "orch carries over an eval dataset's path only"))
        elif field == "type" and isinstance(kind, dict):
            left += [(f"{where}.{name}", "orch has no such setting: it renders a custom type's parts its own way")
                     for name, part in kind.items() if part is not None and name not in AXOLOTL_TYPE_FIELDS.values()]
        elif field == "type" and not (isinstance(kind, str) and kind.split(".")[0] in AXOLOTL_TYPES):
            left.append((where, f"orch has no axolotl type {short_repr(kind)}: it reads a record by its shape "
                                f"({SHAPES}), "
                                "so check that the records are one of these"))
        elif field != "type" and not (field == "field_messages" and _is_chat(kind)) and \
                not (field == "message_property_mappings" and _is_chat(kind) and _turn_keys_read(item)):
            left.append((where, AXOLOTL_DATASET_FIELDS.get(field, "orch has no such setting for a dataset")))
    return left


def _turn_keys_read(mappings) -> bool:
    """Whether a chat dataset's message_property_mappings name turn keys orch reads as they are ({role: from,
    content: value} is ShareGPT's): they were listed as "no such setting", as if the records could not be read."""
    return isinstance(mappings, dict) and set(mappings) <= set(TURN_KEYS) and \
        all(mappings[key] in TURN_KEYS[key] for key in mappings)


INSIDE_READ = ("datasets", "test_datasets", "model._component_")  # keys whose value is carried in part


# Paged optimizers orch trains unpaged, as the optimizer of the same update: the paging (states moved to the CPU when
# the GPU runs short) is what their name adds and what `orch import` carries over without
PAGING_DROPPED = tuple(name for name, ours in OPTIMIZERS.items() if "paged" in name.lower() and "paged" not in ours)
OPTIMIZER_KEYS = ("optimizer", "optim", "optimizer._component_")


def left_behind_inside(key: str, value) -> list[tuple[str, str]]:
    """(dotted key, why) for the parts of a foreign key's value that its conversion carried over without: the fields
    of axolotl's dataset entry it does not read, the model of a torchtune builder the catalog does not have, the
    paging of a paged optimizer. `orch import` lists them with the keys it did not carry at all."""
    if key in OPTIMIZER_KEYS and value in PAGING_DROPPED:
        return [(key, f"{value} is carried over as {OPTIMIZERS[value]}, unpaged: orch pages only paged_adamw_8bit's "
                      "states, so these stay on the GPU, where the plan counts them (--set optimizer=paged_adamw_8bit "
                      "pages 8-bit ones)")]
    if key == "model._component_":
        unknown = torchtune_builder(value)[1]
        return [(key, f"orch has no catalog model for torchtune's {unknown}: give --set model=HUB_ID_OR_FOLDER")] \
            if unknown else []
    return _axolotl_dataset_left_behind(key, value) if key in INSIDE_READ else []


class ForeignKey(NamedTuple):
    trainers: tuple[str, ...]
    orch: str  # what the message tells the user to write
    convert: Callable[[object], dict]


def _entry(trainers, orch, convert=None) -> ForeignKey:
    return ForeignKey(tuple(trainers), orch, convert or _same(orch))


ALL = (AXOLOTL, LLAMA_FACTORY, TRL)
FOREIGN_KEYS: dict[str, ForeignKey] = {
    # model and method
    "base_model": _entry([AXOLOTL], "model"),
    "model_name_or_path": _entry([LLAMA_FACTORY, TRL], "model"),
    "adapter": _entry([AXOLOTL], "method", _choice("method", METHODS)),
    "finetuning_type": _entry([LLAMA_FACTORY], "method", _choice("method", METHODS)),
    "use_peft": _entry([TRL], "method: lora", lambda v: {"method": "lora" if _flag(v) else "full"}),
    "load_in_4bit": _entry([AXOLOTL, TRL], "method: qlora",
                           _quantization_switch({"method": "qlora", "quant_bits": 4})),
    "load_in_8bit": _entry([AXOLOTL, TRL], "method: qlora` with `quant_bits: 8",
                           _quantization_switch({"method": "qlora", "quant_bits": 8})),
    "quantization_bit": _entry([LLAMA_FACTORY], "method: qlora` with `quant_bits", _quantize),
    "quantization_method": _entry([LLAMA_FACTORY], "method: qlora` (bitsandbytes is its library",
                                  _bitsandbytes_only),
    # TRL's ModelConfig
    "bnb_4bit_quant_type": _entry([TRL], "method: qlora` (NF4 is its type", _nf4_only),
    "use_bnb_nested_quant": _entry([TRL], "double_quant"),
    "bnb_config_kwargs.bnb_4bit_use_double_quant": _entry([AXOLOTL], "double_quant"),
    "bnb_config_kwargs.bnb_4bit_quant_type": _entry([AXOLOTL], "method: qlora` (NF4 is its type", _nf4_only),
    "tokenizer_config": _entry([AXOLOTL], "tokenizer"),
    "double_quantization": _entry([LLAMA_FACTORY], "double_quant"),
    "quantization_type": _entry([LLAMA_FACTORY], "method: qlora` (NF4 is its type", _nf4_only),
    "torch_dtype": _entry([TRL], "precision", _choice("precision", {**PRECISIONS, "float16": "fp16", "auto": "auto"})),
    # sequence and batch
    "sequence_len": _entry([AXOLOTL], "seq_len"),
    "cutoff_len": _entry([LLAMA_FACTORY], "seq_len"),
    "max_length": _entry([TRL], "seq_len"),
    "max_seq_length": _entry([TRL], "seq_len"),
    "tokenizer.max_seq_len": _entry([TORCHTUNE], "seq_len"),
    "micro_batch_size": _entry([AXOLOTL], "micro_batch"),
    "per_device_train_batch_size": _entry([LLAMA_FACTORY, TRL], "micro_batch"),
    "batch_size": _entry([TORCHTUNE], "micro_batch"),
    "gradient_accumulation_steps": _entry([*ALL, TORCHTUNE], "grad_accum"),
    "num_epochs": _entry([AXOLOTL], "epochs"),
    "num_train_epochs": _entry([LLAMA_FACTORY, TRL], "epochs"),
    "max_steps_per_epoch": _entry([TORCHTUNE], "max_steps", _per_epoch_cap),
    "sample_packing": _entry([AXOLOTL], "packing"),
    # packing without attention across samples, as orch packs; false asks nothing (it was read as setting packing)
    "neat_packing": _entry([LLAMA_FACTORY], "packing", _when_true({"packing": True})),
    # optimisation
    "optimizer.lr": _entry([TORCHTUNE], "learning_rate"),
    "optimizer": _entry([AXOLOTL], "optimizer", _choice("optimizer", OPTIMIZERS)),
    "optim": _entry([LLAMA_FACTORY, TRL], "optimizer", _choice("optimizer", OPTIMIZERS)),
    "optimizer._component_": _entry([TORCHTUNE], "optimizer", _choice("optimizer", OPTIMIZERS)),
    "optimizer.weight_decay": _entry([TORCHTUNE], "weight_decay"),
    "lr_scheduler_type": _entry([LLAMA_FACTORY, TRL], "lr_scheduler", _choice("lr_scheduler", SCHEDULERS)),
    "lr_scheduler._component_": _entry([TORCHTUNE], "lr_scheduler", _choice("lr_scheduler", SCHEDULERS)),
    "lr_scheduler.num_warmup_steps": _entry([TORCHTUNE], "warmup_steps"),
    "gradient_clipping": _entry([AXOLOTL], "max_grad_norm"),
    "clip_grad_norm": _entry([TORCHTUNE], "max_grad_norm"),
    "gradient_checkpointing": _entry(ALL, "grad_ckpt"),
    # torchtune's dataset builders pack only when told: whatever data the job is given, it trained unpacked
    "dataset.packed": _entry([TORCHTUNE], "packing", lambda v: {"packing": _flag(v)}),
    # LLaMA-Factory checkpoints unless told not to (its ModelArguments), and has no key that turns it on
    "disable_gradient_checkpointing": _entry([LLAMA_FACTORY], "grad_ckpt", lambda v: {"grad_ckpt": not _flag(v)}),
    "enable_activation_checkpointing": _entry([TORCHTUNE], "grad_ckpt"),
    "bf16": _entry(ALL, "precision: bf16", _precision("bf16")),
    "fp16": _entry(ALL, "precision: fp16", _precision("fp16")),
    "dtype": _entry([TORCHTUNE], "precision", _choice("precision", PRECISIONS)),
    "flash_attention": _entry([AXOLOTL], "attention: flash_attention_2",
                              _when_true({"attention": "flash_attention_2"})),
    "flash_attn": _entry([LLAMA_FACTORY], "attention: flash_attention_2", _flash_attn),
    "attn_implementation": _entry([TRL], "attention", _choice("attention", ATTN_IMPLEMENTATIONS)),
    "loss._component_": _entry([TORCHTUNE], "loss", _loss),
    # Liger's fused linear cross-entropy, as transformers' TrainingArguments, LLaMA-Factory and axolotl's plugin
    # switch it on: the loss that never holds the whole logits (its other kernels change neither memory much nor
    # what orch counts)
    "use_liger_kernel": _entry([TRL], "loss: fused", _when_true({"loss": "fused"})),
    "enable_liger_kernel": _entry([LLAMA_FACTORY], "loss: fused", _when_true({"loss": "fused"})),
    "liger_fused_linear_cross_entropy": _entry([AXOLOTL], "loss: fused", _when_true({"loss": "fused"})),
    "torch_compile": _entry([AXOLOTL, TRL], "compile", lambda v: {"compile": _flag(v)}),  # axolotl's `auto`: listed
    # LoRA
    "lora_rank": _entry([LLAMA_FACTORY], "lora_r"),
    "model.lora_rank": _entry([TORCHTUNE], "lora_r"),
    "model.lora_alpha": _entry([TORCHTUNE], "lora_alpha"),
    "model.lora_dropout": _entry([TORCHTUNE], "lora_dropout"),
    "lora_target_modules": _entry([AXOLOTL, TRL], "target_modules", _targets),
    "lora_target_linear": _entry([AXOLOTL], "target_modules: all-linear", _when_true({"target_modules": "all-linear"})),
    "lora_target": _entry([LLAMA_FACTORY], "target_modules", _targets),
    "model.lora_attn_modules": _entry([TORCHTUNE], "target_modules", _torchtune_targets),
    "model.apply_lora_to_mlp": _entry([TORCHTUNE], "target_modules: [gate_proj, up_proj, down_proj]",
                                      _when_true({"target_modules": list(MLP_MODULES)})),
    "model.apply_lora_to_output": _entry([TORCHTUNE], "modules_to_save: [lm_head]", _lora_on_output),
    "model._component_": _entry([TORCHTUNE], "method` and `model", lambda v: torchtune_builder(v)[0]),
    # a LoRA builder's own switch (its qlora_ builder is the lora_ one with quantize_base=True): NF4 weights or not
    "model.quantize_base": _entry([TORCHTUNE], "method: qlora",
                                  _quantization_switch({"method": "qlora", "quant_bits": 4}, {"method": "lora"})),
    "peft_use_dora": _entry([AXOLOTL], "use_dora"),
    "peft_use_rslora": _entry([AXOLOTL], "use_rslora"),
    "lora_modules_to_save": _entry([AXOLOTL, TRL], "modules_to_save"),
    "additional_target": _entry([LLAMA_FACTORY], "modules_to_save", _names("modules_to_save")),
    # data
    "datasets": _entry([AXOLOTL], "dataset", _axolotl_datasets),
    "dataset_name": _entry([TRL], "dataset"),
    "dataset_train_split": _entry([TRL], "dataset_split"),
    "dataset_test_split": _entry([TRL], "eval_split"),
    "test_datasets": _entry([AXOLOTL], "eval_dataset",
                            lambda v: {"eval_dataset": _axolotl_datasets(v)["dataset"]}),
    "val_set_size": _entry([AXOLOTL], "eval_fraction", _eval_share),
    "val_size": _entry([LLAMA_FACTORY], "eval_fraction", _eval_share),
    "train_on_inputs": _entry([AXOLOTL], "completion_only_loss: false", _negated("completion_only_loss")),
    "train_on_prompt": _entry([LLAMA_FACTORY], "completion_only_loss: false", _negated("completion_only_loss")),
    # a torchtune instruct or chat builder's own: kept when --set dataset= names the data (it flipped the loss unsaid)
    "dataset.train_on_input": _entry([TORCHTUNE], "completion_only_loss: false", _negated("completion_only_loss")),
    "assistant_only_loss": _entry([TRL], "completion_only_loss"),
    "dataset_text_field": _entry([TRL], "dataset_columns: {text: FIELD}",
                                 lambda v: {"dataset_columns": {"text": v}} if _text(v) != "text" else {}),
    # logging and saving
    "logging_steps": _entry(ALL, "log_every", _steps("log_every")),
    "log_every_n_steps": _entry([TORCHTUNE], "log_every"),
    "save_steps": _entry(ALL, "save_every", _steps("save_every")),
    "eval_steps": _entry(ALL, "eval_every", _steps("eval_every")),
    # transformers' switch: an evaluation on the eval set the config names (TRL's default one: SOURCE_DEFAULTS), or
    # none; orch evaluates wherever the job has an eval set, every eval_every steps
    "eval_strategy": _entry(ALL, "eval_every", lambda value: {}),
    "dataloader_num_workers": _entry(ALL, "num_workers"),
    "wandb_project": _entry([AXOLOTL], "report_to: wandb` (and WANDB_PROJECT",
                            lambda v: {"report_to": "wandb"} if _text(v) else {}),
}


# Keys other trainers have that orch deliberately does not take, with what to do instead (for `orch import`).
LEFT_BEHIND = {
    "output_dir": "orch chooses the output folder: `orch train JOB --output DIR`",
    "chat_template": "orch renders chats with the tokenizer's own chat template",
    "template": "orch renders chats with the tokenizer's own chat template",
    "evals_per_epoch": "use `eval_every` (steps)",
    "saves_per_epoch": "use `save_every` (steps) or `save_every_minutes`",
    "save_strategy": "use `save_every` (steps) or `save_every_minutes`",
    "pad_to_sequence_len": "orch packs sequences (`packing: true`) or pads each to seq_len",
    "special_tokens": "orch keeps the tokenizer's special tokens",
    "resume_from_checkpoint": "use `orch train JOB --resume auto`",
    "deepspeed": "orch trains on one GPU",
    "fsdp": "orch trains on one GPU",
    "tf32": "orch has no TF32 switch: it trains in bf16 or fp16 where the GPU has them (precision: auto), and "
            "PyTorch's default applies to the rest",
    "overwrite_output_dir": "orch refuses an output folder with another run's checkpoints: pick another --output",
    "dataset": "orch reads no torchtune dataset builder: give its data with --set dataset=PATH_OR_ID",
    "checkpointer": "orch loads `model` (a hub id or a folder; torchtune's model._component_ names it where the "
                    "catalog has it): give --set model=HUB_ID_OR_FOLDER for the weights this checkpoint holds",
}


class SourceDefault(NamedTuple):
    """What a trainer uses for an orch setting its config leaves out, where orch's own default differs: an imported
    job took orch's (lora_alpha 32 for LLaMA-Factory's 2 x rank, 5% of the data held out for eval, packing) and
    trained what the source would not have."""
    key: str  # orch's
    value: object  # or a function of (the job so far, the source config's flat keys) -> the value, None for none
    why: str
    given_by: tuple[str, ...]  # the source's keys (or orch's) that set it or make it moot: given, no default applies
    methods: tuple[str, ...] | None = None  # the job methods it applies to; None: whatever the method


_LORA = ("lora", "qlora")
NEVER_CLIPS = 1_000_000  # orch's largest max_grad_norm: past any gradient norm a fine-tune clips at, so none is clipped
# transformers' TrainingArguments, which LLaMA-Factory's and TRL's configs extend
_TRAINING_ARGUMENTS = (
    SourceDefault("epochs", 3.0, "transformers' num_train_epochs default",
                  ("num_train_epochs", "max_steps", "train_tokens")),
    SourceDefault("micro_batch", 8, "transformers' per_device_train_batch_size default",
                  ("per_device_train_batch_size",)),
    SourceDefault("lr_scheduler", "linear", "transformers' lr_scheduler_type default", ("lr_scheduler_type",)),
)
SOURCE_DEFAULTS = {
    LLAMA_FACTORY: (
        SourceDefault("method", "lora", "LLaMA-Factory's finetuning_type default", ("finetuning_type",)),
        SourceDefault("seq_len", 2048, "LLaMA-Factory's cutoff_len default", ("cutoff_len",)),
        SourceDefault("lora_r", 8, "LLaMA-Factory's lora_rank default", ("lora_rank",), _LORA),
        SourceDefault("lora_alpha", lambda job, _: 2 * job["lora_r"] if type(job.get("lora_r")) is int else None,
                      "LLaMA-Factory's lora_alpha default: 2 x lora_rank", ("lora_alpha",), _LORA),
        SourceDefault("lora_dropout", 0.0, "LLaMA-Factory's lora_dropout default", ("lora_dropout",), _LORA),
        SourceDefault("learning_rate", 5e-5, "transformers' learning_rate default", ("learning_rate",)),
        *_TRAINING_ARGUMENTS,
        SourceDefault("grad_ckpt", True, "LLaMA-Factory checkpoints unless disable_gradient_checkpointing",
                      ("disable_gradient_checkpointing", "gradient_checkpointing")),
        SourceDefault("packing", lambda _, source: None if source.get("stage") == "pt" else False,
                      "LLaMA-Factory packs only for stage pt", ("packing",)),
        SourceDefault("eval_fraction", 0.0, "LLaMA-Factory's val_size default: no eval split",
                      ("val_size", "eval_dataset")),
    ),
    TRL: (
        SourceDefault("method", "full", "TRL trains the whole model unless use_peft: true", ("use_peft",)),
        SourceDefault("seq_len", 1024, "TRL's SFTConfig max_length default", ("max_length", "max_seq_length")),
        SourceDefault("learning_rate", 2e-5, "TRL's SFTConfig learning_rate default", ("learning_rate",)),
        *_TRAINING_ARGUMENTS,
        SourceDefault("packing", False, "TRL's SFTConfig packing default", ("packing",)),
        SourceDefault("grad_ckpt", True, "TRL's SFTConfig gradient_checkpointing default",
                      ("gradient_checkpointing",)),
        SourceDefault("eval_split", lambda _, source: "test" if _evaluates(source.get("eval_strategy")) and not
                      _one_file(source.get("dataset_name")) else None,
                      "TRL evaluates on dataset_test_split, default test, when eval_strategy is steps or epoch",
                      ("dataset_test_split",)),
        SourceDefault("eval_fraction", 0.0, "TRL holds none of the training data out: it evaluates on "
                      "dataset_test_split", ()),
        SourceDefault("double_quant", False, "TRL's use_bnb_nested_quant default", ("use_bnb_nested_quant",),
                      ("qlora",)),
    ),
    AXOLOTL: (
        SourceDefault("method", "full", "axolotl trains the whole model unless `adapter` names one", ("adapter",)),
        SourceDefault("lora_dropout", 0.0, "axolotl's lora_dropout default", ("lora_dropout",), _LORA),
        SourceDefault("packing", False, "axolotl's sample_packing default", ("sample_packing",)),
        SourceDefault("eval_fraction", 0.0, "axolotl's val_set_size default: no eval split", ("val_set_size",)),
    ),
    TORCHTUNE: (
        SourceDefault("lora_r", 8, "torchtune's LoRA model builders' lora_rank default", ("model.lora_rank",), _LORA),
        SourceDefault("lora_alpha", 16, "torchtune's LoRA model builders' lora_alpha default", ("model.lora_alpha",),
                      _LORA),
        SourceDefault("lora_dropout", 0.0, "torchtune's LoRA model builders' lora_dropout default",
                      ("model.lora_dropout",), _LORA),
        SourceDefault("packing", False, "torchtune's dataset builders' packed default", ("dataset.packed",)),
        # its recipes clip only where clip_grad_norm is set: null or left out, orch's 1.0 clipped what torchtune did not
        SourceDefault("max_grad_norm", NEVER_CLIPS, "torchtune clips no gradient unless clip_grad_norm is set",
                      ("clip_grad_norm",)),
        SourceDefault("weight_decay", lambda _, source: 0.01 if "adamw" in str(source.get("optimizer._component_"))
                      .lower() else None, "AdamW's weight_decay default (torch, bitsandbytes and torchao alike)",
                      ("optimizer.weight_decay",)),
    ),
}


def _one_file(name) -> bool:
    """Whether a dataset is named as one data file, which has no split to evaluate on: the test split TRL's default
    named for it was refused by the imported job's plan."""
    return isinstance(name, str) and Path(name).suffix.lower() in FILE_KINDS


def _evaluates(strategy) -> bool:
    """transformers' eval_strategy asks for an evaluation (steps or epoch; `no`, its default, for none)."""
    return isinstance(strategy, str) and strategy.strip().lower() in ("steps", "epoch")


def _trainer_names(trainers: tuple[str, ...]) -> str:
    if len(trainers) == 1:
        return f"{trainers[0]}'s name"
    return f"the name in {listed(trainers)}"


NO_VALUE = object()  # a key named without its value (the CLI's foreign flags name the key alone)
LONGEST_SHOWN_FORM = 80  # a converted value longer than this (a dataset list) is said by the key's name instead


def unknown_key_message(key: str, orch_keys: Iterable[str] = (), value=NO_VALUE) -> str:
    """What the config check says about a key orch does not have: orch's name for another trainer's key, with the
    setting its `value` makes (`train_on_inputs: false` is `completion_only_loss: true`: a fixed hint said false, the
    opposite), else the `orch_keys` nearest to it, so a typo (`learning_rat`, `--set max_step=5`) says what was
    meant. The config check passes its own keys: importing them here would import trainer.config back."""
    known = FOREIGN_KEYS.get(key)
    if known is None:
        return f"unknown key `{key}`{near_hint(key, orch_keys)}"
    said = f"`{key}` is {_trainer_names(known.trainers)}"
    if value is NO_VALUE:
        return f"{said}: use `{known.orch}`"
    try:
        converted = known.convert(value)
    except (ValueError, TypeError):  # a value it does not convert (no YAML boolean): the key's own hint
        return f"{said}: use `{known.orch}`"
    if not converted:
        return f"{said}, and `{_yaml_form(value)}` asks for what orch does by default: drop it"
    form = _yaml_form(converted)[1:-1]
    return f"{said}: use `{known.orch if len(form) > LONGEST_SHOWN_FORM else form}`"


def _yaml_form(value) -> str:
    """A value as a job file writes it, on one line: `false`, not Python's False."""
    return dump_yaml(value, default_flow_style=True, width=math.inf).strip().removesuffix("\n...").strip()
