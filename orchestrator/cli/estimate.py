"""`orch estimate MODEL ...`: memory (as a breakdown) and, for a GPU, fit and tokens/s of one configuration.

Every flag is a job key (trainer/config.py), validated through the job schema; a flag left out takes the job's own
default, so `orch estimate` describes exactly what the trainer would run."""

import os
import re
from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import cpu_gpu, get_gpu, load_gpus, more_threads_than_cores, size_note
from gpu_catalog.models import LINEAR_MODULES, RANDOM_PREFIX, hub_id, org_typo_note
from orchestrator.cli import display, flag_aliases, method_forms
from orchestrator.cli.errors import user_errors
from orchestrator.cli.options import JsonFlag, number_option, whole_option
from orchestrator.estimator.calibration import load_calibration
from orchestrator.estimator.fit import auto_fit, checkpointing_choices, fit_numbers
from orchestrator.estimator.memory import (
    estimate_memory,
    headroom_fraction,
    loss_mode,
    precision,
    usable_vram_gib,
)
from orchestrator.estimator.settings import context_note, job_model, settings_from_job, unsupported_on
from orchestrator.estimator.speed import estimate_speed
from orchestrator.job import ATTENTION_KERNELS, METHODS, OPTIMIZERS, job_from_dict
from trainer.config import CHOICES, NAME_LIST_KEYS, JobConfig, model_folder, parse_overrides
from trainer.job_file import QLORA_KEYS, idle_keys, read_job_file

DEFAULT_METHOD = method_forms.resolve({}, "-", None)[0]["method"]  # what a left-out --method estimates
REFERENCE_GPU = "H100 SXM"  # memory is the same on any bf16 GPU; used when --gpu is not given
DEFAULT_SEQ_LEN = 2048  # the job schema has no default for seq_len (every job says it)
SETTINGS_SHOWN = ("method", "seq_len", "micro_batch", "grad_accum", "grad_ckpt", "optimizer", "quant_bits",
                  "double_quant", "qlora_fp32_upcast", "lora_r", "lora_dropout", "target_modules", "use_dora",
                  "modules_to_save", "freeze_layers", "precision", "attention", "loss", "loss_chunk_tokens", "compile",
                  "cpu_threads")
# the keys that belong to methods other than each: a job file's are left out where a flag makes it that method
ADAPTER_ONLY_KEYS = (*method_forms.ADAPTER_KEYS, "use_dora", "modules_to_save")
OTHER_METHODS_KEYS = {"lora": (*QLORA_KEYS, "freeze_layers"), "qlora": ("freeze_layers",),
                      "full": (*QLORA_KEYS, *ADAPTER_ONLY_KEYS)}
JOB_DEFAULTS = {field.name: field.default for field in fields(JobConfig)}  # what a left-out flag takes
# the job settings of its data: plan's, which reads the data; an estimate is of one step, whatever the amount (a
# step count, tokens or epochs, given, change nothing in it; epochs, which only the data sizes, are checked alone)
PLANS_OWN = frozenset({"dataset", "eval_dataset", "dataset_config", "dataset_split", "eval_split", "dataset_columns",
                       "dataset_tokens", "dataset_sequences", "tokenizer"})
AMOUNTS = ("train_tokens", "max_steps")


def _unread_settings(overrides: list[str]) -> dict:
    """The --set settings, each a job setting the estimate does not read (one it reads has its flag; the data and
    the amount to train are plan's: an estimate is of one step)."""
    unread = parse_overrides(overrides)
    for key in unread:
        if key in SETTINGS_SHOWN:
            raise UserError(f"--set {key}=...: give --{key.replace('_', '-')} instead, which the estimate reads.")
        if key in PLANS_OWN:
            raise UserError(f"--set {key}=...: an estimate is of one training step, whatever the data: leave it out "
                            "(`orch plan JOB.yaml` prices the whole job on its data).")
    return unread


def _settings(flags: dict, model: str, typed: set[str], unread: dict | None = None):
    """Validate through the job schema, so estimate and plan refuse the same values; estimate also reads other
    trainers' spellings of a value as orch's (flag_aliases), where a job file names orch's own. `typed`: the keys
    given as flags, said by their flags (the others came from a job file, said by their keys); `unread`: job
    settings the estimate does not read, checked with the rest."""
    given = {k: flag_aliases.value(k, v) for k, v in flags.items() if v is not None}
    if "target_modules" in given:
        given["target_modules"] = flag_aliases.target_modules(given["target_modules"], model)
    if "modules_to_save" in given:
        given["modules_to_save"] = (flag_aliases.listed(given["modules_to_save"], "--modules-to-save")
                                    or [given["modules_to_save"]])
    try:
        checked = {key: value for key, value in (unread or {}).items() if key != "epochs"}  # no data to size here
        amount = {} if any(key in checked for key in AMOUNTS) else {"train_tokens": 1}  # one the job needs
        settings = settings_from_job(job_from_dict({"model": "-", **amount, **checked, **given}))
        for key, why, fix in idle_keys(given):  # `--loss full --loss-chunk-tokens 512`, refused as a job file is
            raise UserError(f"`{key}` {why}: drop it, or {fix.replace('set loss: ', 'use --loss ')}")
        return settings
    except UserError as exc:  # the job schema's words: `seq_len` where the user typed --seq-len
        said = str(exc).removeprefix("bad config: ")
        raise UserError(re.sub(r"`([a-z0-9_]+)`", lambda key: _flag_named(key[1], typed) or key[0], said)) from None


def _flag_named(key: str, typed: set[str]) -> str | None:
    """The estimate flag that sets job key `key` (None: a key no flag given sets)."""
    if key not in typed:
        return None
    return "--fp32-upcast" if key == "qlora_fp32_upcast" else "--" + key.replace("_", "-")


def _modest_first(gpu) -> tuple:
    """GPUs from the least to the most: by memory to the nearest GiB, then the slower first. By memory alone the H100
    SXM (79.65 GiB) was the smallest that fits where the A100 80GB (80) fits too."""
    return round(gpu.vram_gib), gpu.peak_tflops("bf16" if gpu.supports_bf16 else "fp16"), gpu.name


def _smallest_with_auto_fit(shape, settings, calibration, grad_ckpt: bool | None) -> dict:
    """The smallest catalog GPU the job fits once auto-fit picks its micro-batch and checkpointing (keeping the
    effective batch; checkpointing only where the job leaves it `auto`), as `orch plan` and the scheduler fit it: an
    8B QLoRA at the job's micro-batch 4 without checkpointing needed an H200, and plan ran it on a 24 GB card."""
    for gpu in sorted(load_gpus(), key=_modest_first):
        if unsupported_on(settings, gpu) is not None:
            continue
        chosen = auto_fit(shape, settings, gpu, calibration, usable_vram_gib(gpu, calibration),
                          checkpointing_choices(grad_ckpt))
        if chosen.settings is not None:
            return {"smallest_gpu_with_auto_fit": gpu.name, "auto_fit_on_smallest": fit_numbers(chosen)}
    return {"smallest_gpu_with_auto_fit": None, "auto_fit_on_smallest": None}


def _model_id(model: str) -> str | None:
    """The model a name stands for, as plan and the trainer read it (a job's `model` through hub_id): `llama 3 8b`
    was estimated as meta-llama/Llama-3.1-8B's row and printed so, while plan and the trainer took unsloth/llama-3-8b.
    None for a `random:` shape, which is its catalog row itself, and for a folder, which its shape is named by."""
    if model.startswith(RANDOM_PREFIX) or os.path.exists(checks.user_path(model)):
        return None
    return hub_id(model)


def _shape_note(model_id: str | None, shape) -> str | None:
    """Say whose shape stands for a model the catalog has no row of its own for (meta-llama/Meta-Llama-3-8B is sized as
    meta-llama/Llama-3.1-8B): printed as the model, the row's id read as another model than the one asked for."""
    if model_id is None or shape.name == model_id:
        return None
    return f"{model_id} is estimated with the shape of {shape.name}, the catalog's row for it."


def _shown(settings, gpu) -> dict:
    values = {k: getattr(settings, k) for k in SETTINGS_SHOWN}
    values.update({k: list(values[k]) for k in NAME_LIST_KEYS})
    values["loss"] = loss_mode(settings, gpu)  # what really runs there (fused falls back on the CPU)
    values["precision"] = precision(settings, gpu)  # auto resolved for this device, as the trainer resolves it
    return values


def _over_the_job(written: dict, typed: dict, model: str, quantization: str | None) -> tuple[dict, list[str]]:
    """A job file's settings with the flags typed over them. A flag that makes the job another method (--method,
    --quantization, a QLoRA flag) leaves out the file's settings of the methods it no longer is (QLoRA's for LoRA, the
    adapters' for full fine-tuning), said in a note; the rest stay (`--method lora` keeps the file's lora_r)."""
    if not ("method" in typed or quantization is not None or any(key in typed for key in QLORA_KEYS)):
        return {**written, **typed}, []
    method = method_forms.resolve(typed, model, quantization)[0]["method"]
    left_out = [key for key in ("method", *OTHER_METHODS_KEYS.get(method, ())) if key in written
                and (key != "method" or written[key] != method)]
    kept = {key: value for key, value in written.items() if key not in left_out}
    notes = [f"estimated as {method}, as the flags given say: the job file's "
             f"{', '.join(f'`{key}`' for key in left_out)} left out"] if left_out else []
    return {**kept, **typed}, notes


def _job_file_settings(model: str, method: str) -> tuple[str, dict] | None:
    """A job file given for MODEL: the model it names (a folder as an absolute path, relative paths starting at the
    job file's folder) and the settings it writes, which the flags given override. None: MODEL is no job file.
    `method`: the flags' (or the default), for a file that leaves it out."""
    path = Path(checks.user_path(model))
    if path.suffix.lower() not in checks.YAML_SUFFIXES or os.path.isdir(path):  # a model folder named x.yaml
        return None
    # not "model folder ... does not exist"; a pipe or a loop of links said as what it is, as plan says it
    checks.input_file(path, "job file", "give a job file, or a model (a hub id, an alias or a model folder).")
    # an estimate needs no amount to train (max_steps goes with any other), and the flags may give the length and
    # the method (a file that left them out was refused, whatever the flags gave)
    raw, config = read_job_file(path, missing={"seq_len": DEFAULT_SEQ_LEN, "max_steps": 1, "method": method})
    written = {key: getattr(config, key) for key in SETTINGS_SHOWN if key in raw}
    written.update({key: ",".join(written[key]) for key in NAME_LIST_KEYS if key in written})
    written = {key: value for key, value in written.items() if value != ""}  # `modules_to_save: []`: the default
    if written.get("grad_ckpt") == "auto":
        del written["grad_ckpt"]  # a flag's None: the job's own default
    folder = model_folder(config.model, path.parent)
    return (str(folder) if folder else config.model), written


@user_errors
def estimate(
    model: Annotated[str, typer.Argument(help="Hugging Face id, alias (Llama-3.1-8B) or local model folder; or a job "
                                              "file, whose settings the flags given override.")],
    method: Annotated[str | None, typer.Option(
        help=f"One of {', '.join(METHODS)}; default {DEFAULT_METHOD} (qlora with --quant-bits, --quantization or a "
             "quantized checkpoint).")] = None,
    seq_len: Annotated[int | None, whole_option(
        "--seq-len", help=f"Tokens per sequence (also --max-seq-length); default {DEFAULT_SEQ_LEN}.")] = None,
    micro_batch: Annotated[int | None, whole_option(
        "--micro-batch", help="Sequences per forward pass (transformers' per-device batch size); default "
                              f"{JOB_DEFAULTS['micro_batch']}, as in a job file.")]
    = None,
    grad_accum: Annotated[int | None, whole_option(
        "--grad-accum", help=f"Micro-batches per optimizer step; default {JOB_DEFAULTS['grad_accum']}.")] = None,
    grad_ckpt: Annotated[bool | None, typer.Option(
        "--grad-ckpt/--no-grad-ckpt", help="Gradient checkpointing (default: the job's `auto`, off until auto-fit "
                                           "needs it).")] = None,
    optimizer: Annotated[str | None, typer.Option(
        help=f"One of {', '.join(OPTIMIZERS)}; default {JOB_DEFAULTS['optimizer']}.")] = None,
    lora_r: Annotated[int | None, whole_option(
        "--lora-r", help=f"LoRA rank (also --lora-rank); default {JOB_DEFAULTS['lora_r']}.")] = None,
    lora_dropout: Annotated[float | None, number_option(
        help=f"LoRA dropout; default {JOB_DEFAULTS['lora_dropout']:g}; 0 skips peft's dropped-out copy of each "
             "targeted module's input.")] = None,
    quant_bits: Annotated[int | None, whole_option("--quant-bits", help="QLoRA weight bits: 4 (NF4) or 8.")] = None,
    quantization: Annotated[str | None, typer.Option(
        help="QLoRA's weights in one value: nf4, nf4-dq, int8 or none (LitGPT's bnb.nf4 is nf4 without double "
             "quantization); implies --method qlora, as a checkpoint named -bnb-4bit or -Int4 does.")] = None,
    double_quant: Annotated[bool | None, typer.Option("--double-quant/--no-double-quant",
                                                      help="QLoRA: quantize the NF4 constants too.")] = None,
    qlora_fp32_upcast: Annotated[bool | None, typer.Option(
        "--fp32-upcast/--no-fp32-upcast",
        help="QLoRA: keep embeddings, head and norms in fp32, as peft's k-bit preparation does.")] = None,
    target_modules: Annotated[str | None, typer.Option(
        help=f"all-linear (the default) or a comma list of {', '.join(LINEAR_MODULES)}.")] = None,
    use_dora: Annotated[bool | None, typer.Option("--use-dora/--no-use-dora",
                                                  help="LoRA/QLoRA: DoRA's magnitude vector per adapted linear.")]
    = None,
    modules_to_save: Annotated[str | None, typer.Option(
        help="LoRA/QLoRA: a comma list of modules trained in full beside the adapters (embed_tokens, lm_head).")]
    = None,
    freeze_layers: Annotated[int | None, whole_option(
        help="Full fine-tuning: keep the embeddings and the lowest N blocks frozen.")] = None,
    precision_name: Annotated[str | None, typer.Option(
        "--precision", help=f"One of {', '.join(CHOICES['precision'])} (auto: bf16 where the GPU has it).")] = None,
    attention: Annotated[str | None, typer.Option(
        help=f"One of {', '.join(ATTENTION_KERNELS)}; default {JOB_DEFAULTS['attention']}.")] = None,
    loss: Annotated[str | None, typer.Option(
        help=f"One of {', '.join(CHOICES['loss'])}; default {JOB_DEFAULTS['loss']}.")] = None,
    loss_chunk_tokens: Annotated[int | None, whole_option(
        help=f"Tokens per chunk of the chunked loss; default {JOB_DEFAULTS['loss_chunk_tokens']}.")] = None,
    compile_blocks: Annotated[bool | None, typer.Option("--compile/--no-compile",
                                                        help="torch.compile the decoder blocks.")] = None,
    cpu_threads: Annotated[int | None, whole_option(
        help="With --gpu cpu: the cores it trains on (torch's threads); default all of them.")] = None,
    gpu: Annotated[str | None, typer.Option(help="Also say whether it fits and how fast it runs on this GPU (or cpu).")]
    = None,
    fit: Annotated[bool, typer.Option("--auto-fit", help="With --gpu: find the fastest micro-batch and "
                                                         "checkpointing that fit, keeping the effective batch.")]
    = False,
    set_values: Annotated[list[str] | None, typer.Option(
        "--set", help="Any other job setting, KEY=VALUE (repeatable; also as --KEY VALUE: --lora-alpha 32), checked "
                      "as a job file's; the estimate reads none of them (lora_alpha, learning_rate...).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Estimate peak VRAM (with its breakdown) and, with --gpu, fit and training tokens/s."""
    unread = _unread_settings(set_values or [])
    given = {
        "method": flag_aliases.value("method", method), "seq_len": seq_len, "micro_batch": micro_batch,
        "grad_accum": grad_accum, "grad_ckpt": grad_ckpt, "optimizer": optimizer, "lora_r": lora_r,
        "lora_dropout": lora_dropout, "quant_bits": quant_bits, "double_quant": double_quant,
        "qlora_fp32_upcast": qlora_fp32_upcast, "target_modules": target_modules, "use_dora": use_dora,
        "modules_to_save": modules_to_save, "freeze_layers": freeze_layers, "precision": precision_name,
        "attention": attention, "loss": loss, "loss_chunk_tokens": loss_chunk_tokens, "compile": compile_blocks,
        "cpu_threads": cpu_threads}
    typed = {key: value for key, value in given.items() if value is not None}
    job_notes = []
    flags_method = method_forms.resolve(typed, "-", quantization)[0]["method"]  # a wrong one is the flag's to say
    if (job := _job_file_settings(model, flags_method if flags_method in METHODS else DEFAULT_METHOD)) is not None:
        model, written = job
        given, job_notes = _over_the_job(written, typed, model, quantization)
        job_notes.insert(0, f"settings from the job file; {model} is its model")
    if given.get("seq_len") is None:
        given["seq_len"] = DEFAULT_SEQ_LEN
    grad_ckpt = given.get("grad_ckpt")
    flags, notes = method_forms.resolve(given, model, quantization)
    settings = _settings(flags, model, set(typed), unread)
    if unread:
        notes.append(f"{', '.join(f'`{key}`' for key in sorted(unread))} change{'s' * (len(unread) == 1)} neither the "
                     "memory nor the speed: checked, and left out of the estimate")
    if fit and gpu is None:
        raise UserError("--auto-fit needs --gpu NAME: it fits the job to one GPU's memory.")
    named = gpu is not None  # an empty --gpu is a GPU name to refuse, not the default
    on_cpu = named and gpu.strip().lower() == "cpu"
    if cpu_threads is not None and not on_cpu:  # it was taken, and changed nothing
        raise UserError("--cpu-threads sets the cores of an estimate on the CPU: give --gpu cpu with it, or leave it "
                        "out.")
    cores = os.cpu_count() or 1
    if cpu_threads is not None and cpu_threads > cores:  # said as 1000, estimated as 2
        raise UserError(f"--cpu-threads {cpu_threads} is more than this machine's {cores} CPU cores, the CPU "
                        f"estimated: give at most {cores}.")
    if on_cpu and (past := more_threads_than_cores(settings.cpu_threads)):
        notes.append(past)
    target = cpu_gpu(settings.cpu_threads) if on_cpu else get_gpu(gpu if named else REFERENCE_GPU)
    if named and not on_cpu and (sized := size_note(gpu, target)):
        notes.append(sized)
    model_id = _model_id(model)
    shape = job_model(replace(settings, model=model_id or model))
    calibration = load_calibration()
    fitted = None
    if fit:  # the estimate is then the fitted job's, top to bottom: its JSON said the job as given did not fit
        chosen = auto_fit(shape, settings, target, calibration, usable_vram_gib(target, calibration),
                          checkpointing_choices(grad_ckpt))
        given = {"micro_batch": settings.micro_batch, "grad_accum": settings.grad_accum,
                 "grad_ckpt": "auto" if grad_ckpt is None else grad_ckpt}
        fitted = {"auto_fit": fit_numbers(chosen), "auto_fit_from": given}
        settings = chosen.settings or settings
    memory = estimate_memory(shape, settings, target, calibration)
    shown = _shown(settings, target)
    result = {"model": model_id or shape.name, **{k: shown[k] for k in ("method", "seq_len", "micro_batch", "grad_ckpt",
                                                            "optimizer", "lora_r")}, "settings": shown,
              "params": shape.params, "trainable_params": memory.trainable_params,
              "vram_gib": round(memory.vram_gib, 3),
              "breakdown": {k: round(v, 3) for k, v in memory.breakdown_gib.items()}, "peak_at": memory.peak_phase,
              "memory_device": target.name if named else f"any {precision(settings, target)} GPU",
              "calibration": calibration.source or "defaults", "memory_basis": calibration.memory_basis_for(target),
              "notes": [note for note in (*job_notes, org_typo_note(model), _shape_note(model_id, shape),
                                          context_note(replace(settings, model=model), shape), *notes) if note]}
    if named:
        speed = estimate_speed(shape, settings, target, calibration)
        usable = usable_vram_gib(target, calibration)
        unsupported = unsupported_on(settings, target)
        result.update(gpu=target.name, gpu_vram_gib=target.vram_gib, usable_vram_gib=round(usable, 3),
                      headroom_fraction=round(headroom_fraction(target, calibration), 4),
                      fits=memory.vram_gib <= usable and unsupported is None,
                      fits_in_memory=memory.vram_gib <= usable, unsupported=unsupported,
                      usage=f"{memory.vram_gib:.1f} of {target.vram_gib:g} GiB",
                      tokens_per_s=round(speed.tokens_per_s, 1), efficiency=round(speed.efficiency, 3),
                      basis=speed.basis, flops_per_token=speed.flops_per_token,
                      step_time_s=round(speed.step_time_s, 4),
                      step_terms_s={k: round(v, 4) for k, v in speed.terms_s.items()})
        result.update(fitted or {})
        if not fit and not result["fits_in_memory"] and unsupported is None:
            # the settings that do fit, said beside "does not fit": a first user read "107.9 GiB" of a job whose
            # own `grad_ckpt: auto` plan turns on, and missed the line naming --auto-fit
            would = auto_fit(shape, settings, target, calibration, usable, checkpointing_choices(grad_ckpt))
            result["with_auto_fit"] = fit_numbers(would)
    else:
        fitting = sorted((g for g in load_gpus() if unsupported_on(settings, g) is None
                          and estimate_memory(shape, settings, g, calibration).vram_gib
                          <= usable_vram_gib(g, calibration)),
                         key=_modest_first)
        result["fits_on"] = [g.name for g in fitting]
        result["smallest_gpu_that_fits"] = fitting[0].name if fitting else None
        result.update(_smallest_with_auto_fit(shape, settings, calibration, grad_ckpt))
    display.print_json(result) if as_json else display.show_estimate(result)
