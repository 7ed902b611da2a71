"""What `orch estimate`'s method and quantization flags, and a pre-quantized checkpoint's name, say together.

A published table states a job in its own columns: "Q-LoRA", "DoRA", "LoRA (emb)", a quantization column
(`bnb.nf4`, `gptq-int4`, `none`), or only a checkpoint named `...-bnb-4bit` or `...-Int4`. Each is read here as the
job keys orch's trainer runs (a 4-bit checkpoint loads quantized whatever the method says, so LoRA on it is QLoRA);
a flag given beside them that says otherwise is refused, and a format orch does not train but counts at the same
bytes is named in the estimate's notes."""

from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.names import squeezed
from orchestrator.cli.flag_aliases import listed
from trainer.config import model_folder
from trainer.foreign_keys import Quantization, checkpoint_quantization, quantization_named
from trainer.job_file import QLORA_KEYS

# method spellings that carry more than the method (squeezed, as flag_aliases matches values)
METHOD_FORMS = {
    "dora": {"method": "lora", "use_dora": True},
    "qdora": {"method": "qlora", "use_dora": True},
    # Qwen's README: LoRA that also trains the embedding and output layers
    "loraemb": {"method": "lora", "modules_to_save": "embed_tokens,lm_head"},
    # a table's method cell with its bits (`QLoRA (4-bit)`, `qlora-8bit`, `4-bit QLoRA`: LLaMA-Factory's QLoRA rows)
    **{form: {"method": "qlora", "quant_bits": bits} for bits, forms in (
        (4, ("qlora4bit", "4bitqlora", "qlora4", "qloranf4")), (8, ("qlora8bit", "8bitqlora", "qlora8", "qloraint8")))
       for form in forms},
}
# the flags a key is given by, and the keys only LoRA and QLoRA train with (QLoRA's own are QLORA_KEYS)
FLAGS = {"quant_bits": "--quant-bits", "double_quant": "--double-quant", "qlora_fp32_upcast": "--fp32-upcast",
         "lora_r": "--lora-r", "lora_dropout": "--lora-dropout", "target_modules": "--target-modules"}
ADAPTER_KEYS = ("lora_r", "lora_dropout", "target_modules")
QUANTIZATION_HELP = "use nf4, nf4-dq, int8 or none (LitGPT's bnb.nf4, bnb.nf4-dq and bnb.int8 are read too)"


def _quantization(spelled: str) -> Quantization:
    found = quantization_named(spelled)
    if found is None:
        raise UserError(f"unknown --quantization {spelled!r}: {QUANTIZATION_HELP}.")
    return found


def _agree(flags: dict, implied: dict, said_by: str, set_by: dict | None = None) -> dict:
    """`implied` where no flag gives those keys; a flag that gives one another value is refused, said as what gave
    it (`set_by`: the keys a --method form set, by the form: `--quant-bits 8 was given` was said where no
    --quant-bits was)."""
    for key, value in implied.items():
        given, flag = flags.get(key), key.replace("_", "-")
        same = listed(given, f"--{flag}") == listed(value, f"--{flag}") \
            if isinstance(given, str) and isinstance(value, str) else given == value
        if given is not None and not same and key != "method":
            theirs = (set_by or {}).get(key, f"--{flag} {str(given).lower()} was given")
            raise UserError(f"{said_by} means --{flag} {str(value).lower()}, but {theirs}: give one of them.")
    return {**flags, **implied}


def _flag(key: str, given) -> str:
    """The flag as typed: `--no-double-quant` for a switch set off."""
    return FLAGS[key].replace("--", "--no-", 1) if given is False else FLAGS[key]


def _refuse_other_methods_flags(flags: dict, method, quantization: str | None) -> None:
    """QLoRA's flags beside a method that quantizes nothing, and LoRA's beside full fine-tuning, were estimated
    without them, unsaid (`--quant-bits 4 --method lora` was bf16 LoRA): refused, as `--use-dora --method full` is."""
    if method not in ("lora", "full"):
        return
    by_method = flags.get("method") is not None  # else `--quantization none` chose it
    said = f"--method {flags['method']}" if by_method else f"--quantization {quantization}"
    keys = [key for key in QLORA_KEYS if flags.get(key) is not None]
    applies, fix = "--method qlora (quantized weights)", "--method qlora" if by_method else "--quantization nf4 or int8"
    if not keys and method == "full":
        keys = [key for key in ADAPTER_KEYS if flags.get(key) is not None]
        applies, fix = "--method lora and qlora (the adapters)", "--method lora"
    if keys:
        named = " and ".join(_flag(key, flags[key]) for key in keys)
        raise UserError(f"{named} {'apply' if len(keys) > 1 else 'applies'} to {applies}, but {said} was given: give "
                        f"{fix}, or drop {'them' if len(keys) > 1 else 'it'}.")


def resolve(flags: dict, model: str, quantization: str | None) -> tuple[dict, list[str]]:
    """`flags` (job keys; the method already in orch's spelling where it has one) with what the method form, the
    quantization and the checkpoint's name imply; and the notes the estimate shows about them."""
    resolved, notes = _resolved(flags, model, quantization)
    _refuse_other_methods_flags(flags, resolved["method"], quantization)
    return resolved, notes


def _resolved(flags: dict, model: str, quantization: str | None) -> tuple[dict, list[str]]:
    form = METHOD_FORMS.get(squeezed(flags["method"])) if isinstance(flags.get("method"), str) else None
    set_by = {}
    if form is not None:
        set_by = {key: f"--method {flags['method']} means {value}" for key, value in form.items()
                  if flags.get(key) is None}
        flags = _agree(flags, form, f"--method {flags['method']}")
    method = flags.get("method")
    said_by = f"--quantization {quantization}"
    stored = checkpoint_quantization(model, model_folder(model, Path(".")))
    stored_bits = (quantization_named(stored) or Quantization(None)).bits if stored is not None else None
    if stored_bits is not None and quantization is not None and _quantization(quantization).bits != stored_bits:
        # estimated unquantized (none) or at the flag's bits (int8), unsaid, where transformers loads the stored bits
        raise UserError(f"{checks.short_repr(model)} is stored quantized ({checks.printable(stored)}), so it trains "
                        f"at {stored_bits} bits whatever --quantization {quantization} says: drop --quantization, or "
                        "give the unquantized model.")
    if quantization is None and (quantization := stored) is not None:
        said_by = f"{model}, stored quantized,"
        if quantization_named(quantization) is None:
            raise UserError(f"{checks.short_repr(model)} is stored quantized ({checks.printable(quantization)}), a "
                            "format orch neither estimates nor trains: give the unquantized model.")
    found = None if quantization is None else _quantization(quantization)
    if found is None and method is None and any(flags.get(key) is not None for key in QLORA_KEYS):
        return {**flags, "method": "qlora"}, []  # QLoRA's own flags, with no method: a QLoRA job
    if found is None or found.bits is None:
        if found is not None and method == "qlora":
            raise UserError(f"{said_by} contradicts --method qlora, which quantizes the weights: give "
                            "--quantization nf4 or int8, or --method lora.")
        return {**flags, "method": "lora" if method is None else method}, []
    if method == "full":
        raise UserError(f"{said_by} means {found.bits}-bit frozen weights, and full fine-tuning trains every weight: "
                        "give --method qlora, or an unquantized model with --method full.")
    implied = {"method": "qlora", "quant_bits": found.bits}
    if found.double_quant is not None and found.bits == 4:
        implied["double_quant"] = found.double_quant
    resolved = _agree(flags, implied, said_by, set_by)
    if found.fp32_upcast is not None and flags.get("qlora_fp32_upcast") is None:
        resolved["qlora_fp32_upcast"] = found.fp32_upcast
    notes = [f"LoRA on {found.bits}-bit weights ({said_by.rstrip(',')}) is QLoRA: estimated as --method qlora."] \
        if method == "lora" else []
    if found.stands_in_for is not None:
        notes.append(f"{found.stands_in_for} is counted as orch's bitsandbytes {'NF4' if found.bits == 4 else 'int8'}"
                     f" ({found.bits}-bit weights): orch trains that format, not {found.stands_in_for}.")
    return resolved, notes
