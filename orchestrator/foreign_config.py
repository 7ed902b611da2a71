"""Translate another trainer's config (axolotl, LLaMA-Factory, TRL, torchtune) into an orch job, with every key that
could not be carried over and why. Pure: a mapping in, a mapping and a list out (or a UserError for a config that is
no one job); `orch import` does the files.

Nested keys (torchtune's `model: {lora_rank: 8}`) are read as dotted names (`model.lora_rank`); null values set
nothing. Where two keys set the method (LLaMA-Factory's finetuning_type lora with quantization_bit 4), QLoRA wins, and
axolotl's lora_target_linear adds every linear module to lora_target_modules. Any other two keys that set one orch
setting to different values (load_in_4bit and load_in_8bit, max_length and max_seq_length) are refused, naming both:
picking one would train what the user did not ask for. So is a quantization orch cannot train (quantization_bit 3 or
NaN, a quoted load_in_4bit): listed as not carried over, it trained a QLoRA config as 16-bit LoRA. So is a config for
preference or reward training (DPO, PPO, KTO, a reward model): orch only does supervised fine-tuning. torchtune's
lora_attn_modules and apply_lora_to_mlp together are one target list.

A setting the config leaves out takes its trainer's default where that differs from orch's (LLaMA-Factory's
lora_alpha is 2 x lora_rank, TRL trains in full without use_peft): `source_defaults` says which, once the user's
--set values are in, for the keys a config's own keys show to be one trainer's.
"""

import json
import re
import shlex
from collections import Counter
from dataclasses import fields
from typing import NamedTuple

from gpu_catalog.checks import short_repr
from gpu_catalog.errors import UserError
from gpu_catalog.models import HUB_ID, LINEAR_MODULES, in_linear_order
from gpu_catalog.names import SHORTEST_HINTED_KEY, listed, normalize
from trainer.config import CHOICES, JobConfig, choice_as_orch
from trainer.foreign_keys import (
    AXOLOTL,
    FOREIGN_KEYS,
    INSIDE_READ,
    LEFT_BEHIND,
    LLAMA_FACTORY,
    SOURCE_DEFAULTS,
    TORCHTUNE,
    TRL,
    Carried,
    Refused,
    left_behind_inside,
)
from trainer.job_file import ADAPTER_KEYS, idle_keys, overridden_keys

ORCH_KEYS = {f.name for f in fields(JobConfig)}
# what a key orch does not know at all is matched against for a typo, as (spelling compared, key): orch's own keys and
# every foreign key it reads or has a note for (`learning_rat` -> learning_rate, `sequnce_len` -> sequence_len)
KNOWN_KEYS = sorted((normalize(key), key) for key in ORCH_KEYS | set(FOREIGN_KEYS) | set(LEFT_BEHIND))
TWO_TYPOS_FROM_CHARS = 6  # a key this long (case and underscores aside) may hold two typos; a shorter one, one
MOST_HINTS = 3
MAPPING_VALUES = {"dataset_columns"}  # orch keys whose value is itself a mapping
# foreign keys whose value is read whole: axolotl's dataset entries, a list a config may write as its one mapping
# (`datasets: {path: ..., type: alpaca}`), which flattened into `datasets.path` was dropped unsaid
FOREIGN_MAPPING_VALUES = {"datasets", "test_datasets"}
LLAMA_FACTORY_ONLY = {key: f"LLaMA-Factory's dataset name {{value}} points into its data/dataset_info.json: give "
                           f"the file or hub id with --set {key}=PATH_OR_ID"  # {value}: the name, quoted
                      for key in ("dataset", "eval_dataset")}
# Values transformers' TrainingArguments writes for "not set", which every config dumped from it carries: read as
# left out (`max_steps: -1` was refused as a step count below 1)
UNSET_VALUES = {"max_steps": -1}
# Keys that say which kind of training a config is for, with the values that are supervised fine-tuning (LLaMA-Factory's
# FinetuningArguments.stage, axolotl's RLType and reward-model switches, torchtune's RLHF losses); any other value is
# preference or reward training (DPO, PPO, KTO, ORPO, GRPO, a reward model), which orch does not do.
TRAINING_KINDS = {
    "stage": (LLAMA_FACTORY, lambda value: isinstance(value, str) and value in ("sft", "pt")),
    "rl": (AXOLOTL, lambda value: not value),
    "reward_model": (AXOLOTL, lambda value: not value),
    "process_reward_model": (AXOLOTL, lambda value: not value),
    "loss._component_": (TORCHTUNE, lambda value: not str(value).startswith("torchtune.rlhf.")),
}
LLAMA_FACTORY_STAGES = ("pt", "sft", "rm", "ppo", "dpo", "kto")  # FinetuningArguments.stage's choices
# Foreign keys a job needs carried over for orch to train it (an orch key -> each foreign key whose note says how to
# set it): when the imported job is refused, the refusal quotes these notes, since they hold the fix.
NEEDED_FOR = {"dataset": ("dataset", "datasets", "stage", "dataset._component_"),
              "seq_len": ("tokenizer.max_seq_len", "max_length", "max_seq_length"), "model": ("model._component_",),
              "method": ("method", "model._component_", "adapter", "finetuning_type", "use_peft")}
# LitGPT's finetune configs (litgpt/config_hub/finetune/*.yaml), which orch does not translate: their keys that no
# other trainer's config has, so such a config is known for one, and a refusal says only the keys orch shares
# (lora_r, lora_alpha) were read, not merely "missing required key `model`"
LITGPT_KEYS = {"checkpoint_dir", "train.global_batch_size", "train.micro_batch_size", "train.max_seq_length",
               "train.epochs", "data.class_path", "optimizer.class_path"}
# what LitGPT names a setting an orch job needs: orch key -> (LitGPT's key, what to give with --set)
LITGPT_NEEDED = {"model": ("checkpoint_dir", "HUB_ID_OR_FOLDER"), "method": (None, "full|lora|qlora"),
                 "seq_len": ("train.max_seq_length", "N"), "dataset": ("data.class_path", "PATH_OR_ID")}
# Settings orch has no key for but the tracker reads from the environment, where orch runs and on a cloud VM alike
# (foreign key -> the variable): carried as far as orch can (report_to) and listed, or the runs go elsewhere unsaid.
FROM_ENVIRONMENT = {"wandb_project": "WANDB_PROJECT"}
# Keys that cap how much the source trained, which orch has no key for: said plainly, as the imported job trains on
# the whole dataset ({value}: the source's value)
TRAINING_AMOUNT = {"max_samples": "the source trained on at most {value} samples of each dataset, and orch trains on "
                                  "the whole dataset (times epochs): to train as little, cap it with --set "
                                  "max_steps=N or --set train_tokens=N, or give a file of just those samples"}
# Keys whose null means something orch has no value for: listed, where other nulls set nothing
NULL_MEANS = {"tokenizer.max_seq_len": "torchtune truncates nothing when it is null, and orch trains at one sequence "
                                       "length: give --set seq_len=N (tokens)",
              **dict.fromkeys(("max_length", "max_seq_length"),
                              "TRL truncates nothing when it is null, and orch trains at one sequence length: give "
                              "--set seq_len=N (tokens)")}
SET_IN_NOTE = re.compile(r"--set (\w+)=")  # a note's fix: the orch key it says to set
TORCHTUNE_TARGETS = {"model.lora_attn_modules", "model.apply_lora_to_mlp"}  # one target list between them
# keys whose LoRA says the weights are not quantized (torchtune's quantize_base: false overrides a qlora_ builder's
# true), where an adapter key's plain LoRA is only the adapter: beside a QLoRA key it is a disagreement, not QLoRA
UNQUANTIZED_SAYS_SO = {"model.quantize_base"}
STAGES = {"sft": None,  # orch's own kind of training: nothing to carry over, nothing to say
          "pt": "orch trains on raw text when the dataset's records are `text` (loss on every token, packed), as the "
                "pt stage does: give such a dataset with --set dataset=PATH_OR_ID"}


class Translation(NamedTuple):
    job: dict
    not_carried: list[tuple[str, str]]  # (key, why)
    trainer: str | None = None  # the trainer the config's own keys show it is for; None: not one
    source: dict | None = None  # the config's keys, nested ones dotted
    origin: dict | None = None  # orch key -> the config's key that set it

    def left_behind(self, given: dict) -> list[tuple[str, str]]:
        """The keys not carried over, less those the user has since set with --set (`given`): the key itself, the
        orch key a foreign key stands for, or the orch key its note says to set instead. `dataset ... give --set
        dataset=PATH_OR_ID` was listed after --set dataset=... was given."""
        return [(key, why) for key, why in self.not_carried if not _resolving_keys(key, why) & set(given)]

    def source_defaults(self, job: dict) -> list[tuple[str, object, str]]:
        """(orch key, value, why) for each setting `job` (the translation's, with the user's --set values) leaves
        out whose default in the source's trainer differs from orch's, in order: the job trained with orch's
        defaults (lora_alpha 32 for LLaMA-Factory's 2 x 8, 5% of the data held out) what the source would not."""
        found, source = [], self.source or {}
        so_far = dict(job)
        for default in SOURCE_DEFAULTS.get(self.trainer, ()):
            if default.key in so_far or any(source.get(k) is not None or k in so_far for k in default.given_by):
                continue
            if any(k in NULL_MEANS and k in source for k in default.given_by):  # its null is a choice, listed: TRL's
                continue  # `max_length: null` (no truncation) was imported as its default, seq_len 1024
            if default.methods is not None and so_far.get("method") not in default.methods:
                continue
            value = default.value(so_far, source) if callable(default.value) else default.value
            if value is not None:
                so_far[default.key] = value
                found.append((default.key, value, default.why))
        return found

    def settled(self, job: dict, given: dict) -> tuple[dict, list[tuple[str, str]]]:
        """`job` (the translation's, with the user's --set values, `given`) less the keys the config set that its run
        would not use, and (the config's key, why) for each: the adapter's under method full (LLaMA-Factory's
        finetuning_type full beside a lora_rank, TRL's use_peft false beside lora_r), and the ignored key of each
        pair the trainer goes by one of (job_file.overridden_keys), and the keys another setting leaves idle
        (job_file.idle_keys: an evaluation's without an eval set). Carried over, they made a job that `orch plan`
        then refused. A key set with --set is the user's own: kept, for the job's check to refuse."""
        settled, unused = dict(job), []
        named = {key: key for key in job} | (self.origin or {})
        if choice_as_orch("method", job.get("method")) == "full":
            for key in ADAPTER_KEYS:
                if key in settled and key not in given:
                    del settled[key]
                    unused.append((named[key], f"orch's `{key}` shapes a LoRA adapter, and the job trains "
                                                        "the whole model (method full), which has none"))
        for used, ignored in overridden_keys(settled):
            dropped, kept = (used, ignored) if ignored in given else (ignored, used)  # the user's --set wins
            if dropped not in given:
                del settled[dropped]
                by = " (by --set)" if kept in given else f" (as `{named[kept]}`)" if named[kept] != kept else ""
                unused.append((named[dropped], f"`{kept}` is set too{by}, and orch goes by `{used}` over "
                                               f"`{ignored}`: it takes one of them"))
        for key, why, _ in idle_keys(settled):
            if key not in given:
                del settled[key]
                unused.append((named[key], f"orch's `{key}` {why}"))
        return settled, unused

    def needed_notes(self, job: dict) -> list[str]:
        """The notes on keys left behind that `job` (this translation's, with the user's --set values) still needs:
        a LLaMA-Factory dataset name is why an imported job says "say how much to train", and its note has the fix."""
        notes = dict(self.not_carried)
        needed = [f"`{key}` was not carried over: {notes[key]}" for orch_key, keys in NEEDED_FOR.items()
                  if orch_key not in job for key in keys if key in notes]
        if litgpt := _litgpt_note(self.source or {}, self.job, job):
            needed.append(litgpt)
        return list(dict.fromkeys(needed))  # torchtune's model builder sets both model and method: its note once


def _litgpt_note(source: dict, read: dict, job: dict) -> str | None:
    """For a LitGPT config: that orch read only the keys it shares with LitGPT's (`read`: what it took from it), and
    each setting `job` (with the user's --set values) still misses, with LitGPT's key for it and its value there
    (its checkpoint_dir, checkpoints/ORG/NAME, is where LitGPT downloaded the hub's ORG/NAME). None for any other
    config."""
    if "checkpoint_dir" not in source and len(LITGPT_KEYS & set(source)) < 2:
        return None
    amount_given = any(key in job for key in ("dataset", "train_tokens", "max_steps"))
    missing = []
    for orch_key, (litgpt_key, placeholder) in LITGPT_NEEDED.items():
        if orch_key in job or (orch_key == "dataset" and amount_given):
            continue
        if litgpt_key is None:  # the method: LitGPT's command names it (finetune_lora), no key of its config
            missing.append(f"--set {orch_key}={placeholder} (LitGPT's finetune command sets it)")
            continue
        value = source.get(litgpt_key)
        given = placeholder
        if orch_key == "model" and isinstance(value, str) and len(parts := value.strip("/").split("/")) >= 3 \
                and HUB_ID.fullmatch(f"{parts[-2]}/{parts[-1]}"):
            given = f"{parts[-2]}/{parts[-1]}"
        elif orch_key == "seq_len" and isinstance(value, int) and not isinstance(value, bool) and value > 0:
            given = str(value)
        was = f": {short_repr(value)}" if value is not None else ""
        missing.append(f"--set {orch_key}={given} (LitGPT's `{litgpt_key}`{was})")
    return (f"This is a LitGPT config, which orch reads only for the keys it shares with axolotl, LLaMA-Factory, TRL "
            f"and torchtune ({', '.join(sorted(read)) or 'none'}): give {', '.join(missing) or 'the rest'}")


def _resolving_keys(key: str, why: str) -> set[str]:
    """The orch keys whose --set value settles a key left behind: the key itself, the orch keys its foreign key's
    entry names (axolotl's `datasets.data_files` is under `datasets`: dataset), or the keys its note says to set."""
    entry = FOREIGN_KEYS.get(key) or FOREIGN_KEYS.get(next((k for k in INSIDE_READ if key.startswith(f"{k}.")), ""))
    named = set(re.findall(r"\w+", entry.orch)) & ORCH_KEYS if entry is not None else set()
    return {key, *named, *SET_IN_NOTE.findall(why)}


# keys only one trainer's configs have and every such config names: enough alone to say whose a config is
DECISIVE_KEYS = {"stage": LLAMA_FACTORY, "finetuning_type": LLAMA_FACTORY, "use_peft": TRL, "dataset_name": TRL,
                 "base_model": AXOLOTL, "adapter": AXOLOTL}


def _source_trainer(flat: dict) -> str | None:
    """The one trainer whose own keys the config has, or None where it has another's too, or too little to tell: a
    decisive key (DECISIVE_KEYS, torchtune's `_component_`s) or two keys of that trainer's own. One key a person
    may write for any trainer (`max_seq_length`, `batch_size`) made a LoRA config TRL's, and its default a full
    fine-tune."""
    own = Counter(FOREIGN_KEYS[key].trainers[0] for key in flat if key in FOREIGN_KEYS
                  and len(FOREIGN_KEYS[key].trainers) == 1)
    decisive = {DECISIVE_KEYS[key] for key in flat if key in DECISIVE_KEYS}
    decisive |= {TORCHTUNE for key in flat if key.endswith("._component_")}
    trainers = set(own) | decisive
    if len(trainers) != 1:
        return None
    trainer = trainers.pop()
    return trainer if trainer in decisive or own[trainer] >= 2 else None


# keys some trainer nests others under (torchtune's `optimizer: {lr: ...}`): a mapping there is read key by key
_PARENT_KEYS = frozenset(key.rsplit(".", 1)[0] for key in FOREIGN_KEYS if "." in key)


def _flatten(raw: dict, prefix: str = "") -> dict:
    """The config's keys dotted (torchtune's `model: {lora_rank: 8}` as `model.lora_rank`). A key written both nested
    and dotted is refused: the later one won unsaid, so `model.lora_rank: 16` after `model: {lora_rank: 8}` gave 16,
    and the two lines swapped gave 8. A mapping under a key of one value (`learning_rate: {}`, `micro_batch_size: {a:
    1}`) stays that key's value, for its reading to refuse: it vanished, or became an unknown `micro_batch_size.a`."""
    flat = {}
    for key, value in raw.items():  # YAML reads `~:` as a null key, `1:` as a number: named as the file writes them
        name = f"{prefix}{key if isinstance(key, str) else _value(key)}"
        one_value = (name in FOREIGN_KEYS or name in ORCH_KEYS) and name not in _PARENT_KEYS and not (
            isinstance(value, dict) and "_component_" in value)  # torchtune's builders: `dataset: {_component_: ...}`
        nested = isinstance(value, dict) and value != {} and not one_value and \
            name not in MAPPING_VALUES | FOREIGN_MAPPING_VALUES
        for each_name, each_value in (_flatten(value, f"{name}.") if nested else {name: value}).items():
            if each_name in flat:
                raise UserError(f"`{each_name}` is set twice, once nested and once as a dotted key: keep one.")
            flat[each_name] = each_value
    return flat


def _value(value) -> str:
    """A value as YAML writes it (true, not True), for an error line."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _shown(key: str, value) -> str:
    return f"`{key}: {_value(value)}`"


def _kept(key: str, old: tuple[str, object], new: tuple[str, object]):
    """The one value for orch's `key` when two foreign keys set it ((foreign key, orch value) each), or None when they
    disagree. QLoRA is LoRA on a quantized model, so it wins over an adapter key's plain LoRA; axolotl adds every
    linear module to the lora_target_modules list when lora_target_linear is true, so that pair is all-linear."""
    (old_key, old_value), (new_key, new_value) = old, new
    if old_value == new_value:
        return old_value
    if key == "method" and {old_value, new_value} == {"lora", "qlora"}:
        unquantized = old_key if old_value == "lora" else new_key  # torchtune's quantize_base false undoes qlora_
        return None if unquantized in UNQUANTIZED_SAYS_SO else "qlora"
    if key == "target_modules" and {old_key, new_key} == {"lora_target_linear", "lora_target_modules"}:
        return "all-linear"
    if key == "target_modules" and {old_key, new_key} == TORCHTUNE_TARGETS:  # attention's and the MLP's
        united = set(old_value) | set(new_value)
        return "all-linear" if united >= set(LINEAR_MODULES) else in_linear_order(united)
    return None


def _merge(job: dict, origin: dict, source: tuple[str, object], values: dict) -> None:
    """Add one foreign key's `values` (source: that key and its value as written) to the job; `origin` remembers which
    key set each orch key, so a disagreement names both."""
    for key, value in values.items():
        if key not in job:
            job[key], origin[key] = value, source
            continue
        kept = _kept(key, (origin[key][0], job[key]), (source[0], value))
        if kept is None:
            as_orch = "" if (job[key], value) == (origin[key][1], source[1]) else \
                f" ({_value(job[key])} and {_value(value)})"  # what each was read as, where that differs
            raise UserError(f"{_shown(*origin[key])} and {_shown(*source)} set orch's `{key}` to different "
                            f"values{as_orch}: keep one of them in the config.")
        if kept != job[key]:
            job[key], origin[key] = kept, source


def _orch_value_problem(key: str, value) -> str | None:
    if key in ("dataset", "eval_dataset") and isinstance(value, list):  # torchtune's list of builders, concatenated
        return (f"a list of {len(value)} datasets, trained as one, and orch trains on one dataset: give a file or "
                f"folder of them all, or a hub id, with --set {key}=PATH_OR_ID")
    if key in CHOICES and value not in CHOICES[key]:
        return f"orch's {key} is one of {', '.join(str(c) for c in CHOICES[key])}, not {short_repr(value)}"
    return None


def _typo_edits(a: str, b: str) -> int:
    """Letters to insert, delete, change or swap with a neighbour to turn `a` into `b` (optimal string alignment)."""
    rows = [list(range(len(b) + 1))]
    for i, letter in enumerate(a, 1):
        row = [i]
        for j, other in enumerate(b, 1):
            edits = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (letter != other))
            if i > 1 and j > 1 and letter == b[j - 2] and a[i - 2] == other:
                edits = min(edits, rows[-2][j - 2] + 1)
            row.append(edits)
        rows.append(row)
    return rows[-1][-1]


def _unknown_key_note(key: str) -> str:
    """Why a key no trainer orch knows of was left behind, with the known keys it is a typo of: `learning_rat` was
    dropped with only "no such setting", so its value silently became orch's default. A typo is a letter or two
    (one in a short key; case and underscores aside), not the config check's looser likeness: a foreign config is full
    of real keys orch has no use for, and axolotl's `model_type` read "did you mean `model`?"."""
    name = normalize(key)
    allowed = 0 if len(name) < SHORTEST_HINTED_KEY else 1 if len(name) < TWO_TYPOS_FROM_CHARS else 2
    near = sorted((edits, known) for compared, known in KNOWN_KEYS
                  if abs(len(compared) - len(name)) <= allowed  # fewer edits cannot span that: and it is quick
                  and (edits := _typo_edits(name, compared)) <= allowed)
    if not near:
        return "orch has no such setting"
    return f"orch has no such setting: did you mean {listed((f'`{known}`' for _, known in near[:MOST_HINTS]), 'or')}?"


def _builders_packing(datasets) -> list | None:
    """Each builder's `packed` (False where left out) of torchtune's `dataset:` as a list of builders, trained
    concatenated, or None where the value is no such list. Unread, the builders' unpacked default was written over
    their `packed: True`."""
    if not isinstance(datasets, list) or not datasets or not all(isinstance(entry, dict) for entry in datasets):
        return None
    return [entry.get("packed", False) for entry in datasets]


def translate(raw: dict) -> Translation:
    """The orch job for a foreign config, and the keys left behind."""
    job: dict = {}
    origin: dict[str, tuple[str, object]] = {}  # orch key -> the (foreign key, value) that set it
    not_carried: list[tuple[str, str]] = []
    is_llama_factory = "finetuning_type" in raw or "stage" in raw
    flat = {key: value for key, value in _flatten(raw).items()
            if not (key in UNSET_VALUES and type(value) is int and value == UNSET_VALUES[key])}
    packed = None if "dataset.packed" in flat else _builders_packing(flat.get("dataset"))
    if packed and all(type(value) is type(packed[0]) and value == packed[0] for value in packed):
        flat["dataset.packed"] = packed[0]  # their one `packed`, read as a single builder's is
    for key, value in flat.items():
        if value is None:
            if key in NULL_MEANS:
                not_carried.append((key, NULL_MEANS[key]))
            continue
        if key == "stage" and value not in LLAMA_FACTORY_STAGES:
            raise UserError(f"{_shown(key, value)} is no LLaMA-Factory stage (one of "
                            f"{', '.join(LLAMA_FACTORY_STAGES)}): orch imports sft, and pt as text training.")
        if key in TRAINING_KINDS and not TRAINING_KINDS[key][1](value):
            raise UserError(f"{_shown(key, value)} asks {TRAINING_KINDS[key][0]} for preference or reward training, "
                            "and orch only does supervised fine-tuning: import the config of an SFT run instead.")
        if key == "stage":
            if STAGES[value]:
                not_carried.append((key, STAGES[value]))
        elif is_llama_factory and key in LLAMA_FACTORY_ONLY:
            not_carried.append((key, LLAMA_FACTORY_ONLY[key].format(value=_value(value))))
        elif key in TRAINING_AMOUNT:
            not_carried.append((key, TRAINING_AMOUNT[key].format(value=_value(value))))
        elif key in FOREIGN_KEYS:
            try:
                _merge(job, origin, (key, value), FOREIGN_KEYS[key].convert(value))
            except Refused as exc:  # a quantization orch cannot honour: left out, it trains another method unsaid
                raise UserError(f"{_shown(key, value)}: {exc}.") from None
            except Carried as exc:
                not_carried.append((key, str(exc)))
            else:
                not_carried.extend(left_behind_inside(key, value))  # a carried entry's own fields orch does not read
                if key in FROM_ENVIRONMENT and value:
                    variable = FROM_ENVIRONMENT[key]  # quoted for the shell: a `$(...)` in it ran when pasted
                    shown = shlex.quote(value) if isinstance(value, str) else f"NAME (it is {_value(value)}, no name)"
                    not_carried.append((key, f"orch has no key for it: the tracker reads {variable}, so set "
                                              f"{variable}={shown} where you run orch"))
        elif key in ORCH_KEYS:
            problem = _orch_value_problem(key, value)
            if problem:
                not_carried.append((key, problem))
            else:
                _merge(job, origin, (key, value), {key: value})
        else:
            note = LEFT_BEHIND.get(key.split(".")[0])
            not_carried.append((key, note if note is not None else _unknown_key_note(key)))
    if packed and "dataset.packed" not in flat:  # builders that disagree, a mix torchtune's ConcatDataset refuses
        not_carried.append(("dataset.packed", f"the builders say packed {', '.join(map(_value, packed))}, a mix "
                                              "torchtune refuses: give --set packing=true or false"))
        flat["dataset.packed"] = packed  # said: no builders' default stands in for it
    trainer = _source_trainer(flat)
    # a LoRA rank says LoRA, whatever the trainer's default method; not where a method was given and refused
    # (`adapter: ia3`, `method: [lora]`): that config trained as LoRA, with the refusal only listed
    method_refused = any(key in NEEDED_FOR["method"] for key, _ in not_carried)
    # torchtune's target list is its two keys together: one unread, the other alone wrote a list it never meant
    # (`lora_attn_modules: [1, 2]` beside `apply_lora_to_mlp: true` trained the MLP's adapters alone, exit 0)
    if (unread := next(((key, why) for key, why in not_carried if key in TORCHTUNE_TARGETS), None)) and \
            origin.get("target_modules", ("",))[0] in TORCHTUNE_TARGETS:
        raise UserError(f"{_shown(unread[0], flat[unread[0]])}: {unread[1]}; torchtune's targets are "
                        f"{' and '.join(sorted(TORCHTUNE_TARGETS))} together, so neither is carried over alone.")
    # `adapter:` left empty is axolotl's full fine-tune, said outright: a rank beside it does not make LoRA
    method_left_empty = any(key in flat and flat[key] is None for key in NEEDED_FOR["method"])
    if "method" not in job and "lora_r" in job and not method_refused and not method_left_empty:
        job["method"] = "lora"
    return Translation(job, not_carried, trainer, flat, {key: set_by[0] for key, set_by in origin.items()})

