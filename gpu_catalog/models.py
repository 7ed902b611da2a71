"""Model shapes: the numbers memory and FLOPs depend on, by Hugging Face id, from a local config.json, or via the hub.

Only dense decoder-only transformers with a gated MLP (Llama, Mistral, Qwen, Gemma, Phi-3, Yi) are described; that is
the shape every model in data/models.csv has.
"""

import csv
import difflib
import functools
import json
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import DATA_DIR
from gpu_catalog.hub import hub_reachable
from gpu_catalog.names import normalize, squeezed, unknown_name_message

ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_MODULES = ("gate_proj", "up_proj", "down_proj")
LINEAR_MODULES = ATTENTION_MODULES + MLP_MODULES

# Every module name a decoder orch trains has in transformers (Llama, Mistral, Qwen2/3, Gemma 1/2, Phi-3, Yi; Qwen-1's
# and GPT-style names too): `modules_to_save` and `target_modules` match a module by its whole dotted name or its
# last part, so a name whose last part is none of these matches nothing, and peft trains nothing for it.
DECODER_MODULE_NAMES = frozenset({
    "model", "embed_tokens", "lm_head", "layers", "norm", "rotary_emb", "self_attn", "mlp", "act_fn",
    *LINEAR_MODULES, "qkv_proj", "gate_up_proj", "q_norm", "k_norm", "input_layernorm", "post_attention_layernorm",
    "pre_feedforward_layernorm", "post_feedforward_layernorm",
    "transformer", "wte", "wpe", "h", "ln_1", "ln_2", "ln_f", "attn", "c_attn", "c_proj", "w1", "w2", "embed_out"})


def in_linear_order(modules) -> list[str]:
    """Module names in a block's order (LINEAR_MODULES), any other name after them by name: one order for a target
    list however it was written or merged."""
    return sorted(modules, key=lambda m: (m not in LINEAR_MODULES, LINEAR_MODULES.index(m) if m in LINEAR_MODULES
                                          else 0, m))


@dataclass(frozen=True)
class ModelShape:
    """A model's architecture. `params` is the published count where known, else computed from the shape."""

    name: str
    params: int
    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied_embeddings: bool
    source: str
    # the longest sequence the model was built for (config.json's max_position_embeddings); None where unknown, or
    # where the shape stands for another release (an alias, a chat variant) whose context may differ
    context_tokens: int | None = None
    stored_quantization: str | None = None  # how config.json's `quantization_config` stores the weights (see below)

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear layer in one decoder block, by its usual module name."""
        q_width = self.n_heads * self.head_dim
        kv_width = self.n_kv_heads * self.head_dim
        return {
            "q_proj": (self.hidden, q_width),
            "k_proj": (self.hidden, kv_width),
            "v_proj": (self.hidden, kv_width),
            "o_proj": (q_width, self.hidden),
            "gate_proj": (self.hidden, self.intermediate),
            "up_proj": (self.hidden, self.intermediate),
            "down_proj": (self.intermediate, self.hidden),
        }

    @functools.cached_property
    def block_linear_params(self) -> int:
        """Weights of all linear layers in all blocks: what quantization shrinks and what does the matmul FLOPs. Kept
        once computed (the shape is frozen): a report's fits read it over a million times."""
        return self.n_layers * sum(i * o for i, o in self.linear_shapes().values())

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def head_params(self) -> int:
        """LM-head weights held in memory: none of its own when tied to the embeddings."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    @property
    def computed_params(self) -> int:
        norms = (2 * self.n_layers + 1) * self.hidden
        return self.block_linear_params + self.embedding_params + self.head_params + norms


MAX_DIMENSION = 2**24  # no layer count, width, head count or vocabulary comes near this; above it is a broken file
MAX_PARAMS = 10**13  # 10 T: 25x Llama 3.1 405B, the largest dense model released; sizes in range can multiply past it
# The fields that give a mixture-of-experts model away (Mixtral, Qwen2-MoE, DeepSeek, OLMoE...): its MLP is many
# experts, so sizing it as one dense MLP would be off by the expert count. 0, 1 or null: a dense model.
EXPERT_COUNT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
MOE_MODEL_TYPES = ("mixtral", "dbrx", "deepseek_v2", "deepseek_v3", "jamba", "arctic")  # besides any `*moe*`
# transformers' model types whose MLP is one up and one down projection around a GELU (GPT-2, GPT-NeoX and Pythia,
# GPT-J, Falcon's first models, Phi-1/1.5/2, OPT, BLOOM, MPT, StarCoder): sized as a gated MLP they counted a third
# projection that is not there (phi-2: 3.6B parameters for its 2.8B), so they are refused rather than misestimated
UNGATED_MODEL_TYPES = ("gpt2", "gpt_neox", "gpt_neox_japanese", "gptj", "gpt_neo", "falcon", "RefinedWeb",
                       "RefinedWebModel", "phi", "opt", "bloom", "mpt", "starcoder2", "gpt_bigcode", "codegen",
                       "nemotron", "persimmon", "xglm", "openai-gpt", "biogpt")
# state-space and recurrent models: no attention blocks to size at all
NOT_TRANSFORMER_MODEL_TYPES = ("mamba", "mamba2", "falcon_mamba", "rwkv", "rwkv5", "rwkv6")


def _kinds(config: dict) -> set[str]:
    """The model's kind as `model_type` says it and as each `architectures` class does (`PhiForCausalLM`: phi), in
    one spelling (squeezed): a config written by hand may have either, and old Falcon ones say RefinedWeb."""
    kinds = {config.get("model_type")}  # text: _check_dense_causal_lm refused any other
    architectures = config.get("architectures") or []
    for name in architectures if isinstance(architectures, list) else [architectures]:
        if isinstance(name, str):
            kinds.add(re.sub(r"(ForCausalLM|LMHeadModel|Model)$", "", name))
    return {squeezed(kind) for kind in kinds if isinstance(kind, str)}
# A causal LM's class: `LlamaForCausalLM`, or the older `*LMHeadModel` (Qwen-7B's QWenLMHeadModel, GPT2LMHeadModel)
CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def shape_from_config(name: str, config: dict, source: str) -> ModelShape:
    """A ModelShape from a Hugging Face config dict (config.json or AutoConfig.to_dict()); every size a whole number
    of at least 1 (zero heads would divide by zero, a list is no size). A file that describes another kind of model
    (mixture of experts, an encoder), or heads that cannot be laid out, is refused: estimated anyway, it planned a
    model the trainer then fails to build, or one far larger than the plan said."""
    if isinstance(config, dict):
        _check_text_only(config, source)
    stored = stored_quantization(config, source) if isinstance(config, dict) else None
    config = config.get("text_config") or config if isinstance(config, dict) else config
    if not isinstance(config, dict):
        raise UserError(f"{source} is not a decoder-only transformer config: expected a JSON object.")
    _check_dense_causal_lm(config, source)
    _check_positive_numbers(config, source)

    def size(key: str, default=None) -> int:
        value = config.get(key) if config.get(key) is not None else default
        if value is None:
            raise UserError(f"{source} is not a decoder-only transformer config: missing `{key}`.")
        return checks.number(value, f"{source}: `{key}`", 1, MAX_DIMENSION, whole=True)

    hidden = size("hidden_size")
    n_heads = size("num_attention_heads")
    n_kv_heads = size("num_key_value_heads", n_heads)
    if n_heads % n_kv_heads:  # also more kv heads than heads: each kv head serves a whole group of query heads
        raise UserError(f"{source}: `num_key_value_heads` ({n_kv_heads}) must divide `num_attention_heads` "
                        f"({n_heads}): set it to a divisor of {n_heads} ({n_heads} without grouped-query attention).")
    if config.get("head_dim") is None and hidden % n_heads:  # a given head_dim need not: Gemma's 16 x 256 is not 3072
        raise UserError(f"{source}: `num_attention_heads` ({n_heads}) must divide `hidden_size` ({hidden}) when "
                        "`head_dim` is not given: fix either, or give `head_dim`.")
    tied = config.get("tie_word_embeddings")
    if tied is not None and not isinstance(tied, bool):
        raise UserError(f"{source}: `tie_word_embeddings` must be true or false (booleans are true/false in JSON), "
                        f"got {json.dumps(tied)}.")
    shape = ModelShape(
        name=name,
        params=0,
        n_layers=size("num_hidden_layers"),
        hidden=hidden,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        head_dim=size("head_dim", hidden // n_heads),
        intermediate=size("intermediate_size"),
        vocab=size("vocab_size"),
        tied_embeddings=bool(tied),
        source=source,
        context_tokens=_context_tokens(config, source),
        stored_quantization=stored,
    )
    if shape.computed_params > MAX_PARAMS:  # each size in range, and together 3e20 parameters planned on a 4090
        raise UserError(f"{source} describes {shape.computed_params:.3g} parameters, more than any model orch plans "
                        f"({MAX_PARAMS:.0e}, past the largest released dense models): check its sizes.")
    return replace(shape, params=shape.computed_params)


def freezable_blocks(n_layers: int, tied: bool) -> int:
    """The most decoder blocks a full fine-tune may freeze: every one, less one where the head is tied to the
    embeddings, which freezing leaves frozen (every block frozen trained the final norm alone, exit 0). The one rule
    for the estimate's refusal and the trainer's."""
    return n_layers - 1 if tied else n_layers


POSITIVE_NUMBERS = ("rope_theta", "rms_norm_eps", "layer_norm_eps")  # a model config's numbers no model has at 0


def _check_positive_numbers(config: dict, source: str) -> None:
    """The rotary base and the norms' epsilon, where the config gives them as numbers, finite and above 0 (a norm's
    epsilon below 1): `rope_theta: -1` built and trained to a NaN loss, blamed on the learning rate. Text there is
    transformers' to refuse, as it does."""
    places, rope = [("", config)], config.get("rope_parameters")
    if isinstance(rope, dict):  # one set, or one per kind of layer (Gemma 3's full_attention, sliding_attention)
        places += [("rope_parameters.", rope), *((f"rope_parameters.{kind}.", inner) for kind, inner in rope.items()
                                                 if isinstance(inner, dict))]
    for prefix, values in places:
        for key in POSITIVE_NUMBERS:
            value = values.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not (math.isfinite(value) and value > 0 and (key == "rope_theta" or value < 1)):
                bound = "above 0" if key == "rope_theta" else "above 0 and below 1"
                raise UserError(f"{source}: `{prefix}{key}` must be {bound}, got {json.dumps(value)}: fix the model's "
                                "config.json.")


def stored_quantization(config: dict, source: str) -> str | None:
    """How a checkpoint's config.json says its weights are stored (`quantization_config`), spelled as orch reads a
    quantization (trainer/foreign_keys.QUANTIZATIONS), or the config's own `quant_method` for one orch does not know:
    transformers loads such weights quantized whatever the job says, and a folder or hub id need not say so in its
    name (only the name was looked at)."""
    quant = config.get("quantization_config")
    if not isinstance(quant, dict):
        return None
    for key in ("load_in_4bit", "_load_in_4bit", "load_in_8bit"):  # the text "false" was read as 4-bit
        if quant.get(key) is not None and not isinstance(quant[key], bool):
            raise UserError(f"{source}: `quantization_config.{key}` must be true or false (booleans are true/false "
                            f"in JSON), got {json.dumps(quant[key])}.")
    method, bits = str(quant.get("quant_method", "")).strip().lower(), quant.get("bits")
    if bits is not None:  # `3.0` was read as int4, and `"8"` or NaN as int4 too
        bits = checks.number(bits, f"{source}: `quantization_config.bits`", 1, 64, whole=True)
    if method == "bitsandbytes":
        if quant.get("load_in_4bit") or quant.get("_load_in_4bit"):
            return "fp4" if quant.get("bnb_4bit_quant_type") == "fp4" else "nf4"
        return "int8"
    if method in ("gptq", "awq") and bits in (4, 8):
        return f"{method}-int{bits}"
    return f"{method or 'unnamed'}{f' {bits}-bit' if bits is not None else ''}"


# where configs state the longest sequence: most models; Qwen-1's remote code (also `max_position_embeddings`, the
# rotary table, beside its trained `seq_length`); GPT-2's learned positions
CONTEXT_KEYS = ("max_position_embeddings", "seq_length", "n_positions")


def _context_tokens(config: dict, source: str) -> int | None:
    """The config's context length, or None where it states none. A stated one must be a whole number of at least 1,
    as every other size is: `max_position_embeddings: -1` (or 1.5, or "big") was taken for no context, and the plan's
    note that seq_len runs past the model's context went unsaid."""
    lengths = [checks.number(config[key], f"{source}: `{key}`", 1, MAX_DIMENSION, whole=True)
               for key in CONTEXT_KEYS if config.get(key) is not None]
    return lengths[0] if lengths else None


def _check_text_only(config: dict, source: str) -> None:
    """Refuse a vision-language config (a `vision_config` beside its `text_config`, a *ForConditionalGeneration):
    sized by its text part alone, LLaVA planned 45 M parameters of a model the trainer cannot load as a causal LM."""
    architectures = config.get("architectures") or []
    named = [a for a in (architectures if isinstance(architectures, list) else [architectures])
             if isinstance(a, str) and "ConditionalGeneration" in a]
    if config.get("vision_config") is not None or named:
        said = f"`architectures`: {json.dumps(named[0])}" if named else "it has a `vision_config`"
        raise UserError(f"{source} describes a vision-language model ({said}): orch estimates and trains text-only "
                        "decoders; give a text-only model or its folder.")


def _is_moe(kind: str) -> bool:
    """A model type or architecture class of a mixture of experts: `qwen2_moe`, `MixtralForCausalLM`."""
    kind = squeezed(kind)
    return "moe" in kind or any(kind.startswith(squeezed(moe)) for moe in MOE_MODEL_TYPES)


def _check_dense_causal_lm(config: dict, source: str) -> None:
    """Refuse a config of a mixture-of-experts model or of a model that is no causal LM (`BertForMaskedLM`): the
    shape orch computes is a dense decoder's, and the trainer loads models with AutoModelForCausalLM."""
    model_type = config.get("model_type")
    if model_type is not None and not isinstance(model_type, str):  # a list ended in "unhashable type", a traceback
        raise UserError(f"{source}: `model_type` must be the model's kind as text (llama, qwen2...), got "
                        f"{checks.short_repr(model_type)}: fix the file.")
    experts = next(((k, config[k]) for k in EXPERT_COUNT_KEYS if config.get(k) not in (None, 0, 1)), None)
    if experts is None and isinstance(model_type, str) and _is_moe(model_type):
        experts = ("model_type", model_type)
    architectures = config.get("architectures") or []  # `MixtralForCausalLM` beside a `model_type: llama`
    if experts is None and (named := next((a for a in (architectures if isinstance(architectures, list) else
                                                      [architectures]) if isinstance(a, str) and _is_moe(a)), None)):
        experts = ("architectures", named)
    if experts is not None:
        raise UserError(f"{source} describes a mixture-of-experts model (`{experts[0]}`: {json.dumps(experts[1])}): "
                        "orch estimates dense decoder-only models only; give a dense model or its folder.")
    kinds = _kinds(config)
    if kind := next((k for k in UNGATED_MODEL_TYPES if squeezed(k) in kinds), None):
        raise UserError(f"{source} describes a `{kind}` model, whose MLP has no gate: orch estimates and trains "
                        "gated-MLP decoders (Llama, Mistral, Qwen, Gemma, Phi-3...); give one of those.")
    if kind := next((k for k in NOT_TRANSFORMER_MODEL_TYPES if squeezed(k) in kinds), None):
        raise UserError(f"{source} describes a `{kind}` model, which is no transformer: orch estimates and trains "
                        "decoder-only transformers (Llama, Mistral, Qwen, Gemma, Phi-3...); give one of those.")
    architectures = config.get("architectures") or []  # absent in hand-written configs: nothing to judge
    wrong = [a for a in (architectures if isinstance(architectures, list) else [architectures])
             if not (isinstance(a, str) and a.endswith(CAUSAL_LM_SUFFIXES))]
    if wrong:
        raise UserError(f"{source}: `architectures` names {json.dumps(wrong[0])}, not a causal language model: orch "
                        "estimates decoder-only models, whose architectures is a *ForCausalLM (LlamaForCausalLM...).")


def _parse_row(row: dict[str, str]) -> ModelShape:
    return ModelShape(
        name=row["hf_id"],
        params=round(float(row["params_b"]) * 1e9),
        n_layers=int(row["n_layers"]),
        hidden=int(row["hidden"]),
        n_heads=int(row["n_heads"]),
        n_kv_heads=int(row["n_kv_heads"]),
        head_dim=int(row["head_dim"]),
        intermediate=int(row["intermediate"]),
        vocab=int(row["vocab"]),
        tied_embeddings=row["tied_embeddings"] == "true",
        source=row["source"],
        context_tokens=int(row["context_tokens"]) if row["context_tokens"] else None,
    )


@functools.cache
def load_models(path: Path = DATA_DIR / "models.csv") -> tuple[ModelShape, ...]:
    with open(path, encoding="utf-8", newline="") as f:
        return tuple(_parse_row(row) for row in csv.DictReader(f))


@functools.cache
def _aliases() -> dict[str, list[str]]:
    """Each catalog id's other spellings (models.csv's `aliases`), read once."""
    with open(DATA_DIR / "models.csv", encoding="utf-8", newline="") as f:
        return {row["hf_id"]: [a for a in row["aliases"].split("|") if a] for row in csv.DictReader(f)}


@functools.cache
def _index() -> tuple[dict[str, ModelShape], dict[str, ModelShape], dict[str, ModelShape]]:
    """The catalog's spellings: full `org/name` ids (and aliases) by their lower case, and bare names (an id's part
    after the slash, a bare alias) by their normalised key: an id is matched whole first, then by its name. The third
    map holds only the names of the very release a row describes (its id's name, its bare aliases), by _release_key:
    an `org/name` alias is another release with the same shape."""
    ids: dict[str, ModelShape] = {}
    bare: dict[str, ModelShape] = {}
    own: dict[str, ModelShape] = {}
    aliases = _aliases()
    for model in load_models():
        for spelling in (model.name, *aliases[model.name]):
            if "/" in spelling:
                ids.setdefault(spelling.lower(), model)
            if not _matched_by_name(spelling):
                continue
            bare.setdefault(normalize(spelling.split("/")[-1]), model)
            bare.setdefault(_release_key(spelling), model)  # `CodeLlama-7b` for codellama/CodeLlama-7b-hf
            if spelling == model.name or "/" not in spelling:
                own.setdefault(_release_key(spelling), model)
    for model in load_models():  # after every spelling's own keys: a key of a release's bare name never takes one
        for spelling in (model.name, *aliases[model.name]):
            for key in _release_only_keys(spelling):
                bare.setdefault(key, model)
    return ids, bare, own


def _release_only_keys(spelling: str) -> list[str]:
    """The keys of an `org/name` spelling's name without its variant suffixes (`Phi-3.5-mini-instruct`:
    `Phi-3.5-mini`), for a release published only as its instruct or chat model: `phi-3.5-mini` is Microsoft's
    Phi-3.5-mini-instruct, where an alias `microsoft/Phi-3.5-mini` named a repository that does not exist. Taken
    only where no catalog spelling's own key is (`Llama-3.1-8B` stays the base, not its Instruct release)."""
    if "/" not in spelling or not _matched_by_name(spelling):
        return []
    return [key for base in _base_names(spelling.split("/")[-1]) for key in (normalize(base), _release_key(base))]


def _matched_by_name(spelling: str) -> bool:
    """Whether a catalog spelling answers for its name under any org. orch's own shapes (`orch/...`) answer only to
    their full id and bare aliases: `orch/tiny-llama`'s name took `TinyLlama` and `unsloth/tinyllama` (one key once
    normalised) to a 1.3M-parameter toy."""
    return not spelling.startswith(OWN_ORG)


def _from_local_folder(path: Path) -> ModelShape:
    """A model folder's config.json, or such a file named itself. A named file other than a .json that does not read
    as JSON (`../../etc/passwd`) is a wrong name or path, not a broken config: saying where its JSON breaks would
    send the user to fix that file."""
    config_file = path / "config.json" if path.is_dir() else path
    if loop := checks.symlink_loop(config_file, "model config"):
        raise loop
    if config_file.is_symlink() and not config_file.exists():
        raise UserError(f"{config_file} is a link to {os.readlink(config_file)}, which does not exist: link it to "
                        "the model's config.json, or copy the file there.")
    if not config_file.exists():  # a pipe or a device named config.json: read_text says what it is
        raise UserError(f"{path} has no config.json: point at a Hugging Face model folder.")

    def unique_keys(pairs: list[tuple[str, object]]) -> dict:
        """An object's keys, each once: json keeps the last of a repeated key silently, so a `hidden_size` written
        twice was estimated with whichever came last."""
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise UserError(f"{config_file}: `{key}` is given twice in one object (JSON readers keep the last "
                                "silently): keep one.")
            seen.add(key)
        return dict(pairs)

    try:
        config = json.loads(checks.read_text(config_file, "model config"), object_pairs_hook=unique_keys)
    except (json.JSONDecodeError, UserError) as exc:
        if config_file is path and path.suffix.lower() != ".json":
            raise UserError(_a_file_message(path)) from None
        if isinstance(exc, UserError):
            raise
        raise UserError(f"{config_file} is not valid JSON ({exc}): fix it, or save the model again "
                        "(transformers' save_pretrained writes it).") from None
    except RecursionError:
        raise UserError(f"{config_file} {checks.TOO_DEEP}") from None
    except ValueError as exc:  # JSON, but a number past what Python reads (over 4300 digits)
        raise UserError(f"{config_file}: {checks.unreadable_value(exc)}.") from None
    return shape_from_config(str(path), config, source=str(config_file))


OWN_ORG = "orch/"  # the shapes orch builds itself (models.csv), never downloaded

# fine-tuned, chat and quantized releases share their base model's shape: `Qwen/Qwen-7B-Chat-Int4` is `Qwen/Qwen-7B`
# the same weights in another format: `-unsloth-bnb-4bit` is Unsloth's dynamic 4-bit, `-FP8` Qwen's fp8 release
FORMAT_SUFFIXES = ("-bnb-4bit", "-unsloth", "-gptq", "-awq", "-int4", "-int8", "-fp8", "-hf")
VARIANT_SUFFIXES = (*FORMAT_SUFFIXES, "-instruct", "-chat", "-it", "-base")


def _release_key(name: str) -> str:
    """A release's name without org and format suffixes: `unsloth/Llama-2-7b-hf-bnb-4bit` is the release
    `Llama-2-7b`; a chat or base variant is another release (Qwen3-8B-Base has 32768 positions, Qwen3-8B 40960)."""
    name = name.split("/")[-1]
    while suffix := next((s for s in FORMAT_SUFFIXES if name.lower().endswith(s)), None):
        name = name[: -len(suffix)]
    return normalize(name)


def _base_names(name: str):
    """`name` with variant suffixes taken off one at a time, longest name first."""
    while suffix := next((s for s in VARIANT_SUFFIXES if name.lower().endswith(s)), None):
        name = name[: -len(suffix)]
        yield name


def _from_hub(name: str) -> ModelShape | None:
    """Ask the hub through transformers' AutoConfig; None when offline, not installed, or the id does not exist."""
    if not hub_reachable():
        return None
    try:
        from transformers import AutoConfig  # heavy: imported only for a model the table lacks
    except ImportError:
        return None
    try:
        config = AutoConfig.from_pretrained(name)
    except Exception:  # noqa: BLE001 - any hub failure (offline, gated, missing) means "not found here"
        return None
    return shape_from_config(name, config.to_dict(), source=f"https://huggingface.co/{name} (AutoConfig)")


# Names that say a model is no dense text-only decoder (Llama-3.2-11B-Vision, Qwen2-VL-7B, Gemma 3 from 4B on and
# Mistral Small 3.1, whose checkpoints carry a vision encoder, Mixtral-8x7B, Qwen3-30B-A3B): unknown to the catalog,
# such a name was offered the nearest dense name (Llama-3.2-1B for the 11B vision model), which estimates another
# model; the error says why none is offered.
# So do the names of the UNGATED_MODEL_TYPES families (phi-2, falcon-7b, pythia-1b, stablelm-base-alpha-3b): Falcon3
# and StableLM 2 are gated, and stay out of the pattern.
NOT_DENSE_TEXT = re.compile(r"(?P<vision>vision|[-_]vl\b|llava|pixtral|idefics|gemma-3n|gemma-3-(?:4|12|27)b|"
                            r"mistral-small-3\.[12])|(?P<moe>mixtral|[-_]moe\b|\d+x\d+b\b|"
                            r"[-_]a\d+(\.\d+)?b\b)|(?P<ungated>\bgpt-?2|gpt-?neo|pythia|gpt-?j\b|\bfalcon-(?:7b|11b|40b|"
                            r"180b|rw)|\bphi-(?:1|1[._]5|2)\b|\bopt-\d|\bbloomz?\b|\bbloomz?-|\bmpt-\d|starcoder|"
                            r"stablelm-(?:base|tuned)-alpha|\bcodegen2?-\d)", re.IGNORECASE)
NOT_DENSE_KINDS = {"vision": "a vision-language model, and orch estimates text-only decoders",
                   "moe": "a mixture-of-experts model, and orch estimates dense decoders",
                   "ungated": "a model whose MLP has no gate, and orch estimates gated-MLP decoders (Llama, Mistral, "
                              "Qwen, Gemma, Phi-3...)"}

PATH_STARTS = ("./", "../", "/", "~", ".\\", "..\\")  # how a name written as a folder's path begins
RANDOM_PREFIX = "random:"  # the trainer builds such a model offline, with random weights in the named shape
# Hub organisations whose model pages ask the user to accept a licence before download (gated repositories), as
# their Hugging Face pages showed in 2026-11: a job on them needs HF_TOKEN of an account that accepted it.
GATED_PREFIXES = ("meta-llama/", "google/gemma", "mistralai/")


def is_gated(hub_id: str) -> bool:
    """Whether downloading `hub_id` from the Hugging Face Hub needs a token (GATED_PREFIXES)."""
    return hub_id.startswith(GATED_PREFIXES)


def _a_file_message(name) -> str:
    return (f"model '{name}' is a file, and neither a known model name nor a model folder with config.json: give a "
            "Hugging Face id, an alias (orch catalog models) or a folder (a job file goes as a .yaml or .yml file).")


def written_as_path(name: str) -> bool:
    """A model's name written as a folder's path (`./m`, `/abs`, `~/m`), or one of the folders `.` and `..` alone:
    `orch estimate .` was an unknown model's name, with Llama models suggested for it."""
    return name.startswith(PATH_STARTS) or name in (".", "..")


@functools.cache
def _hub_ids() -> dict[str, str]:
    """Each catalog spelling without an org, by its normalised key -> the Hugging Face id it stands for: a bare alias
    the row's own id, the name part of an `org/name` alias that alias (`Llama-3.1-8B-Instruct` is Meta's Instruct
    release, not the base the row describes)."""
    ids: dict[str, str] = {}
    for hf_id, aliases in _aliases().items():
        for spelling in (hf_id, *aliases):
            if _matched_by_name(spelling):
                full = spelling if "/" in spelling else hf_id
                ids.setdefault(normalize(spelling.split("/")[-1]), full)
                ids.setdefault(_release_key(spelling), full)  # `CodeLlama-7b`: codellama/CodeLlama-7b-hf
    for hf_id, aliases in _aliases().items():  # as _index takes them: after every spelling's own keys
        for spelling in (hf_id, *aliases):
            for key in _release_only_keys(spelling):
                ids.setdefault(key, spelling)
    return ids


def is_model_folder(name: str, path: Path) -> bool:
    """Whether the job's `name` for a model means the folder at `path` (where it resolves): a name written as a path,
    or a folder holding a model's config.json. A folder of notes named `Llama-3.1-8B` beside the job hid the catalog's
    model, and the job failed for the folder's missing config.json. A config.json that is no file (a pipe, a folder,
    a broken link) still means the folder, whose reading then says what it is: `mdl/x` was an unknown hub id."""
    try:
        return written_as_path(name) and os.path.exists(path) or os.path.lexists(path / "config.json")
    except OSError:  # a name too long for a path names no folder
        return False


def hub_id(name: str, base_dir: Path = Path(".")) -> str:
    """The Hugging Face id a job's bare catalog name stands for (`tiny` -> `orch/tiny-llama`, `Qwen2.5-0.5B` ->
    `Qwen/Qwen2.5-0.5B`): plan read such a name by its shape, but the trainer loads by id, and refused it after the
    launch. One of orch's own models in another case (`Orch/Tiny-Llama`): as the catalog spells it, which the trainer
    knows to build offline (plan sized it by its shape, and the trainer looked for it on the hub after the launch).
    Any other `org/name` id, a `random:` shape, a folder (here or beside the job) and any other name: as written,
    without spaces around it (`'orch/tiny-llama '` was trained as a random 1.1B model, get_model's shape for it)."""
    name = name.strip()
    _refuse_quoted(name)
    if name.lower().startswith(OWN_ORG) and (own := _index()[0].get(name.lower())) is not None:
        return own.name
    if "/" in name or name.startswith(RANDOM_PREFIX) or any(
            is_model_folder(name, folder / checks.user_path(name)) for folder in (Path("."), base_dir)):
        return name
    ids = _hub_ids()
    found = ids.get(normalize(name)) or ids.get(_release_key(name), name)
    if (other := _index()[0].get(found.lower())) is not None:
        _refuse_own_namesake(name, found, other)
    return found


def _refuse_own_namesake(name: str, taken_as: str, model: ModelShape) -> None:
    """Refuse the name of one of orch's own models without its org (`tiny-llama`, orch/tiny-llama's) where the catalog
    reads it as another (TinyLlama/TinyLlama-1.1B-Chat-v1.0: one key once normalised). A user who drops `orch/` from
    the README's toy means the toy, one who types TinyLlama's hyphen-less name the hub's: taken as either, the other
    user downloads and trains a model 800 times larger or smaller than meant, which a note among plan's lines does not
    stop; so both are named and the user picks. Only the hyphenated spelling orch writes is refused: `TinyLlama`,
    `tinyllama` and `tiny_llama` are the hub's."""
    own = next((m for m in load_models() if m.name.startswith(OWN_ORG)
                and m.name.removeprefix(OWN_ORG).lower() == name.strip().lower()), None)
    if own is None or model.name == own.name:
        return
    also = f", also {' or '.join(f'`{a}`' for a in _aliases()[own.name])}" if _aliases()[own.name] else ""
    raise UserError(f"model '{name}' could be {own.name} (orch's {_size(own.params)}-parameter test model{also}) or "
                    f"{taken_as} ({_size(model.params)} parameters): write the one you mean in full.")


def _size(params: int) -> str:
    """A parameter count as model names say it: 1.3M, 1.1B."""
    return f"{params / 1e9:.1f}B" if params >= 1e9 else f"{params / 1e6:.1f}M"


# a model's page or hf:// address, pasted where its id goes
_HUB_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
HUB_ID = re.compile(rf"(?:{_HUB_PART}/)?{_HUB_PART}")  # name or org/name, as the hub allows (validate_repo_id)


def could_be_hub_id(value: str) -> bool:
    """A name the Hugging Face Hub could hold (huggingface_hub's validate_repo_id): name or org/name."""
    return HUB_ID.fullmatch(value) is not None and not any(bad in value for bad in ("--", "..")) \
        and not value.endswith(".git")


HUB_LINK = re.compile(r"(?:hf://|(?:https?://)?(?:www\.)?huggingface\.co/)(?:models/)?"
                      r"(?P<id>[^/?#\s]+(?:/[^/?#\s]+)?)/?")


def _refuse_unreadable(written: str, name: str) -> None:
    """A link or a second `random:` where a model's name goes: matched by its last part, `http://x/meta-llama/
    Llama-3.1-8B` was estimated as Llama-3.1-8B, and `random:random:orch/tiny-llama` as TinyLlama-1.1B, 800 times
    the toy that one `random:` names."""
    if name.startswith(RANDOM_PREFIX):
        raise UserError(f"model {checks.short_repr(written)} says `{RANDOM_PREFIX}` twice: write it once "
                        f"({RANDOM_PREFIX}{name.removeprefix(RANDOM_PREFIX).removeprefix(RANDOM_PREFIX)}).")
    if link := HUB_LINK.fullmatch(name.strip()):
        raise UserError(f"model {checks.short_repr(written)} is a link to the Hugging Face Hub: give the model's id "
                        f"alone ({link['id']}).")
    if "://" in name:
        raise UserError(f"model {checks.short_repr(written)} is a link, not a model: give its Hugging Face id "
                        "(org/name), an alias (orch catalog models) or a folder.")


def _refuse_quoted(name: str) -> None:
    """A name in a second pair of quotes (`"'Llama-3.1-8B'"`) is refused: normalize() folds the quotes away, so it
    matched a catalog row while the job kept them, and a cloud run's download failed after the VM was paid for."""
    if checks.in_own_quotes(name) is not None:
        raise UserError(f"model {checks.short_repr(name)} holds its own quotes, which no model's name has: write it "
                        "without them.")


@functools.cache
def _known_orgs() -> frozenset[str]:
    """Every organisation the catalog's ids and aliases name, in lower case."""
    return frozenset(spelling.split("/")[0].lower() for hf_id, aliases in _aliases().items()
                     for spelling in (hf_id, *aliases) if "/" in spelling)


def org_typo_note(name: str) -> str | None:
    """A note for a hub id whose organisation is one letter or two away from one the catalog knows (`meta-lama/`):
    it is sized by its name alone, as a re-upload under another org is, and the typo surfaced only on the target,
    when the download failed after the machine was paid for. A folder, a `random:` shape or a known org: None."""
    if "/" not in name or name.startswith(RANDOM_PREFIX) or written_as_path(name) or \
            os.path.exists(checks.user_path(name)):
        return None
    org = name.split("/")[0].lower()
    if org in _known_orgs():
        return None
    # a letter or two in a name of ten: `meta-lama`, `qwenn`; not another org that shares a stem (`google-t5`,
    # `deepseek`, `HuggingFaceH4`, all real)
    near = difflib.get_close_matches(org, _known_orgs(), n=1, cutoff=0.88)
    if not near:
        return None
    return (f"'{name.split('/')[0]}' is no organisation the catalog knows: did you mean '{near[0]}'? The target "
            f"downloads {name} as written, and a name the hub does not have fails there.")


def get_model(name: str) -> ModelShape:
    """A model by local folder, known Hugging Face id (in any case) or alias, a copy of one under another org, (or a
    chat, instruct or quantized release of one), or (network allowing) any hub id."""
    written, name = name, name.removeprefix(RANDOM_PREFIX)
    if not name.strip():
        raise UserError("the model name is empty: give a Hugging Face id, an alias (orch catalog models) or a folder.")
    _refuse_quoted(name)
    if is_model_folder(name, checks.user_path(name)):  # first: `wget -r` saves a model to huggingface.co/org/name/
        return _from_local_folder(checks.user_path(name))
    _refuse_unreadable(written, name)
    name = name.strip()  # a folder's name is as written; a model's has no spaces around it
    if written_as_path(name) and not os.path.isfile(checks.user_path(name)):  # not a model's name, whatever it ends
        # in: `/x/meta-llama/Llama-3.1-8B` was estimated as Llama-3.1-8B, matched by its last part
        raise UserError(f"model folder '{name}' does not exist: give a folder holding the model's config.json, "
                        "or a Hugging Face id or alias (orch catalog models).")
    ids, bare, own = _index()
    model = next((ids[n.lower()] for n in (name, *_base_names(name)) if n.lower() in ids), None)
    # else by name alone, whatever the org: a re-upload (unsloth/, NousResearch/) has the shape of what it copies.
    # Not under orch's own org, whose names are only its own models': `orch/tiny‐llama` (another hyphen) was sized,
    # and trained offline, as TinyLlama-1.1B, one key with it once normalised
    never_downloaded = name.lower().startswith(OWN_ORG)
    # and only a name the hub could hold: matched by its last part, `a b/Llama-3.1-8B` and `hf.co/meta-llama/...`
    # were estimated as Llama-3.1-8B, where a job's `model:` refused them
    if not never_downloaded and ("/" not in name or could_be_hub_id(name)):
        model = model or next((bare[key] for key in (normalize(n.split("/")[-1]) for n in (name, *_base_names(name)))
                               if key in bare), None)
    if model is not None and "/" not in name:
        _refuse_own_namesake(name, model.name, model)
    asks_the_hub = "/" in name and not never_downloaded and could_be_hub_id(name)
    if model is None and asks_the_hub:
        model = _from_hub(name)
    if model is None:
        if os.path.isfile(checks.user_path(name)):  # `orch estimate data.jsonl`: "unknown model", Llamas offered
            raise UserError(_a_file_message(name))
        if kind := NOT_DENSE_TEXT.search(name):
            raise UserError(f"unknown model '{name}': its name says {NOT_DENSE_KINDS[kind.lastgroup]}: give one "
                            "(orch catalog models).")
        names = [m.name for m in load_models()]
        message = unknown_name_message("model", name, names, "orch catalog models")
        if asks_the_hub and not hub_reachable():
            message += (" The Hugging Face Hub cannot be reached from here to read its config: download the model's "
                        "config.json into a folder and give the folder.")
        raise UserError(message)
    if own.get(_release_key(name)) is not model:
        # another release shares the shape, not always the context (Qwen2.5-7B-Instruct: 32768, the base's 131072;
        # Phi-3.5-mini: 131072, Phi-3-mini-4k's 4096): unknown rather than wrong
        model = replace(model, context_tokens=None)
    return model
