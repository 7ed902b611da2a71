"""Translate another trainer's config (axolotl, LLaMA-Factory, TRL, torchtune) into an orch job, with every key that
could not be carried over and why. Pure: a mapping in, a mapping and a list out; `orch import` does the files.

Nested keys (torchtune's `model: {lora_rank: 8}`) are read as dotted names (`model.lora_rank`); null values set
nothing. Where two keys set the method (LLaMA-Factory's finetuning_type lora with quantization_bit 4), QLoRA wins.
"""

from dataclasses import fields
from typing import NamedTuple

from trainer.config import CHOICES, JobConfig
from trainer.foreign_keys import FOREIGN_KEYS, LEFT_BEHIND, Carried

ORCH_KEYS = {f.name for f in fields(JobConfig)}
MAPPING_VALUES = {"dataset_columns"}  # orch keys whose value is itself a mapping
LLAMA_FACTORY_ONLY = {"dataset": "LLaMA-Factory's dataset names point into its data/dataset_info.json: give the file "
                                 "or hub id with --set dataset=PATH_OR_ID"}


class Translation(NamedTuple):
    job: dict
    not_carried: list[tuple[str, str]]  # (key, why)


def _flatten(raw: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in MAPPING_VALUES:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _merge(job: dict, values: dict) -> None:
    for key, value in values.items():
        if key == "method" and job.get("method") == "qlora" and value == "lora":
            continue  # quantization said qlora; the adapter key only says LoRA
        job[key] = value


def _orch_value_problem(key: str, value) -> str | None:
    if key in CHOICES and value not in CHOICES[key]:
        return f"orch's {key} is one of {', '.join(str(c) for c in CHOICES[key])}, not {value!r}"
    return None


def translate(raw: dict) -> Translation:
    """The orch job for a foreign config, and the keys left behind."""
    job: dict = {}
    not_carried: list[tuple[str, str]] = []
    is_llama_factory = "finetuning_type" in raw or "stage" in raw
    for key, value in _flatten(raw).items():
        if value is None:
            continue
        if is_llama_factory and key in LLAMA_FACTORY_ONLY:
            not_carried.append((key, LLAMA_FACTORY_ONLY[key]))
        elif key in FOREIGN_KEYS:
            try:
                _merge(job, FOREIGN_KEYS[key].convert(value))
            except Carried as exc:
                not_carried.append((key, str(exc)))
        elif key in ORCH_KEYS:
            problem = _orch_value_problem(key, value)
            if problem:
                not_carried.append((key, problem))
            else:
                _merge(job, {key: value})
        else:
            not_carried.append((key, LEFT_BEHIND.get(key.split(".")[0], "orch has no such setting")))
    if "method" not in job and "lora_r" in job:
        job["method"] = "lora"
    return Translation(job, not_carried)
