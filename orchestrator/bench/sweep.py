"""A sweep: grids of trainer settings (models x methods x seq_len x micro-batch x options), expanded into points.

    name: tiny-cpu
    dataset: ../../examples/data/tiny_instruct.jsonl   # relative to the sweep file
    warmup_steps: 2       # run, not timed (each round is a fresh process, so each has its warm-up)
    measured_steps: 20    # timed steps per round
    max_measured_steps: 80  # rounds repeat until tokens/s is stable or this many steps were timed
    stable_within: 0.05   # stable: the median's 95% interval is within 5% of it
    cpu_threads: 1        # optional: torch threads on a CPU (OMP_NUM_THREADS); default: torch's own choice
    settings: {lora_r: 16}          # fixed for every point
    grids:                          # each grid is a cartesian product; points of all grids are run
      - model: [orch/tiny-llama]
        method: [lora, qlora]
        seq_len: [128, 256]

Every key in a grid or in settings is a trainer config key, checked by the trainer's own schema before anything runs;
the keys the sweep sets on every point itself (SET_BY_SWEEP: dataset, max_steps, ...) are refused there, and so is
what the trainer would refuse on this machine (a tracker or a package not installed). A number written as a
whole-number float (`seq_len: 64.0`) is the int the trainer reads it as, so it is the same point as `64`. A list
setting's values are lists: `target_modules: [q_proj, v_proj]` is two points, one module each (said in a note), and
`[[q_proj, v_proj]]` one point with both.
"""

import datetime
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import cpu_gpu
from gpu_catalog.local import detect_gpus
from gpu_catalog.models import get_model
from gpu_catalog.names import near_hint
from orchestrator.estimator.settings import unsupported_on
from orchestrator.preflight import dataset_file_problems
from trainer.config import (
    CHOICES,
    LARGEST_COUNT,
    NAME_LIST_KEYS,
    JobConfig,
    check_model_and_tokenizer,
    config_from_dict,
    is_text,
    resolve_tokenizer,
)
from trainer.job_file import ADAPTER_KEYS, written_key_problems
from trainer.offline_names import model_unreachable
from trainer.requirements import run_problems

MAX_STEPS = 10_000
MAX_POINTS = 10_000
MOST_CPU_THREADS = 1024  # torch threads a point may ask for; past it, a typo (a machine has a few hundred cores)
_SWEEP_KEYS = {"name", "dataset", "warmup_steps", "measured_steps", "max_measured_steps", "stable_within",
               "cpu_threads", "settings", "grids"}
# keys the sweep sets on every point: a benchmark measures training speed and memory, nothing else
FIXED_POINT_KEYS = {"eval_fraction": 0.0, "save_every_minutes": 1e9, "log_every": 10**6}
# trainer keys that the sweep (or the runner: a point's name is its id) overwrites on every point, so a grid or
# `settings` giving them would be silently ignored; each with where its value does come from
SET_BY_SWEEP = {"dataset": "give the one dataset at the sweep's top level (`dataset: PATH`)",
                "max_steps": "each round trains the sweep's warmup_steps + measured_steps (set those at its top level)",
                "timing_warmup_steps": "set `warmup_steps` at the sweep's top level",
                "name": "each point is named by its id (the sweep's own `name:` is at its top level)",
                **dict.fromkeys((*FIXED_POINT_KEYS, "eval_dataset", "eval_split", "eval_every", "eval_batches"),
                                "a benchmark point never evaluates, saves or logs: leave it out")}
# trainer settings that are numbers (not one of a few choices, as `quant_bits: 4` is): 64 and 64.0 are the same to the
# trainer, so one of them
_NUMBER_KEYS = {f.name for f in fields(JobConfig) if f.type in (int, int | None, float, float | None)} - set(CHOICES)


@dataclass(frozen=True)
class Point:
    point_id: str
    config: dict  # a complete trainer config

    @property
    def label(self) -> str:
        c = self.config
        ckpt = " ckpt" if c.get("grad_ckpt") is True else ""
        return f"{c['model']} {c['method']} seq {c['seq_len']} x{c.get('micro_batch', 4)}{ckpt}"


@dataclass(frozen=True)
class Sweep:
    name: str
    points: tuple[Point, ...]
    warmup_steps: int
    measured_steps: int
    max_measured_steps: int
    stable_within: float
    dataset: Path  # every point's
    cpu_threads: int | None = None
    notes: tuple[str, ...] = ()  # how a grid was read where it may be meant otherwise (_one_module_a_point)


def point_id(config: dict, target: str, cpu_threads: int | None = None) -> str:
    """Stable across reruns and sweeps: the same settings on the same target, with the same share of the CPU's cores
    (`cpu_threads`, where the sweep gives one), are the same point. A rerun with another share was said done, and
    the old share's tokens/s shown as the new one's."""
    shared = {"cpu_threads": cpu_threads} if cpu_threads is not None else {}  # none: the ids of sweeps before it
    digest = hashlib.sha1(json.dumps({"config": config, "target": target, **shared}, sort_keys=True).encode())
    return digest.hexdigest()[:12]


def _not_set_by_sweep(keys, where: str, path: Path) -> None:
    if taken := [key for key in keys if key in SET_BY_SWEEP]:
        raise UserError(f"sweep {path}: `{taken[0]}` in {where} is set by the sweep itself: {SET_BY_SWEEP[taken[0]]}.")


def _as_written(value) -> str:
    """A YAML key or value as the sweep file spells it (`null`, `2001-01-01`), not as Python prints it (`None`,
    `datetime.date(2001, 1, 1)`)."""
    if isinstance(value, datetime.date):  # checks.WrittenDate: its text, which yaml cannot dump
        return str(value)
    return " ".join(checks.dump_yaml(value, default_flow_style=True).replace("\n...\n", "").split())


def _yaml_slips(mapping: dict, where: str) -> None:
    """Keys that are not names (`1:`, `null:`) and dates (YAML reads `tokenizer: 2001-01-01` as one): no trainer
    setting takes them, and the trainer's check, which knows no sweep, would name neither the file nor the grid and
    would print them as Python does."""
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise UserError(f"{where}: unknown key `{_as_written(key)}`: keys are trainer setting names, e.g. "
                            "`seq_len`.")
        if date := next((v for v in (value if isinstance(value, list) else [value])
                         if isinstance(v, datetime.date)), None):
            raise UserError(f"{where}: `{key}: {_as_written(date)}` is a date to YAML, which no trainer setting "
                            f"takes: quote it (`{key}: '{_as_written(date)}'`) if it is a name.")


def _settings_for(settings: dict, point: dict) -> dict:
    """The sweep's `settings` as one point takes them: a LoRA setting there (`lora_r: 16`) is for the points that
    train an adapter, so a method full point leaves it out, where its trainer would refuse it. The same key in a full
    point's grid is refused: it would sweep a setting that changes nothing."""
    if str(point.get("method")).strip().lower() != "full":
        return settings
    return {key: value for key, value in settings.items() if key not in ADAPTER_KEYS}


def _same_number(key, value):
    """A whole-number float of a numeric setting (`seq_len: 64.0`) as the int the trainer reads it as: point ids hash
    the config as written, and `seq_len: [64, 64.0]` ran one point twice, as two points."""
    if key in _NUMBER_KEYS and isinstance(value, float) and value.is_integer() and abs(value) <= LARGEST_COUNT:
        return int(value)
    return value


def cannot_run_here(config: JobConfig, unreachable: dict[str, str | None], cpu_only: bool) -> str | None:
    """What the trainer would refuse on this machine before training (trainer/requirements.py, what the CPU cannot
    run where no GPU is here, and a model it cannot reach): each point would start a process, fail as bad config and
    be said only after it. `unreachable`: each model's answer, asked once (asking the hub takes seconds when it is
    down)."""
    if problems := run_problems(config, on_cuda=False):  # what a GPU alone needs more, the trainer says there
        return problems[0]
    if cpu_only and (problem := unsupported_on(config, cpu_gpu())):  # precision fp16, flash_attention_2
        return problem
    if config.model not in unreachable:
        unreachable[config.model] = model_unreachable(config.model)
    return unreachable[config.model]


def _grid(grid, path: Path, label: str) -> dict[str, list]:
    """A grid: each key's values as a list (a single value is a list of one), none of them empty. Every error names
    the sweep and the grid (`label`: grid 2 of 3)."""
    where = f"sweep {path}, {label}"
    if not isinstance(grid, dict) or not grid:
        raise UserError(f"{where}: each entry under `grids` is a mapping of keys to value lists.")
    _yaml_slips(grid, where)
    _not_set_by_sweep(grid, label, path)
    values = {key: [_same_number(key, v) for v in (value if isinstance(value, list) else [value])]
              for key, value in grid.items()}
    if empty := [str(key) for key, value in values.items() if not value]:
        raise UserError(f"{where}: key {', '.join(empty)} lists no values: give at least one, or drop it.")
    return values


def _one_module_a_point(grids: list[dict[str, list]], labels: list[str]) -> list[str]:
    """A note for each grid that sweeps a list setting over single names: `target_modules: [q_proj, v_proj]` is two
    points, q_proj alone and v_proj alone, as every grid key's list is its values; one point with both is
    `[[q_proj, v_proj]]`. Nothing said so, and a user who meant both timed neither."""
    return [f"{label}: {key} {_as_written(values)} is {len(values)} points, one module each; one point with all of "
            f"them is {key}: [{_as_written(values)}]"
            for grid, label in zip(grids, labels, strict=True) for key, values in grid.items()
            if key in NAME_LIST_KEYS and len(values) > 1 and all(isinstance(value, str) for value in values)]


def load_sweep(path: Path, target: str = "local") -> Sweep:
    raw = checks.load_yaml(path, "sweep")
    if not isinstance(raw, dict):
        raise UserError(f"sweep {path}: expected a mapping with keys {', '.join(sorted(_SWEEP_KEYS))}.")
    if unknown := sorted(map(str, set(raw) - _SWEEP_KEYS)):
        listed = ", ".join(key + near_hint(key, sorted(_SWEEP_KEYS)) for key in unknown)  # as a job's keys are said
        raise UserError(f"sweep {path}: unknown key {listed}: use {', '.join(sorted(_SWEEP_KEYS))} (a "
                        "trainer setting goes under `settings:` or in a grid).")
    if not isinstance(raw.get("grids"), list) or not isinstance(raw.get("dataset"), str) \
            or not isinstance(raw.get("settings") or {}, dict):
        raise UserError(f"sweep {path}: needs `dataset: PATH`, a list of `grids`, and `settings` (if given) as a "
                        "mapping.")
    if not raw["grids"]:
        raise UserError(f"sweep {path}: `grids` is empty, so there is nothing to run: give at least one grid, e.g. "
                        "`grids: [{model: [orch/tiny-llama], method: [lora], seq_len: [128]}]`.")
    settings = raw.get("settings") or {}
    _yaml_slips(settings, f"sweep {path}, `settings`")
    _not_set_by_sweep(settings, "`settings`", path)
    settings = {key: _same_number(key, value) for key, value in settings.items()}
    warmup = checks.number(raw.get("warmup_steps", 2), f"sweep {path}: warmup_steps", 1, MAX_STEPS, whole=True)
    measured = checks.number(raw.get("measured_steps", 5), f"sweep {path}: measured_steps", 1, MAX_STEPS, whole=True)
    max_measured = checks.number(raw.get("max_measured_steps", measured), f"sweep {path}: max_measured_steps",
                                 measured, MAX_STEPS, whole=True)
    # a spread below 0.1 % no timing on a shared machine reaches: 1e-320 ran every point to max_measured_steps
    within = checks.number(raw.get("stable_within", 0.05), f"sweep {path}: stable_within", 0.001, 1)
    threads = raw.get("cpu_threads")
    if threads is not None:
        threads = checks.number(threads, f"sweep {path}: cpu_threads", 1, MOST_CPU_THREADS, whole=True)
    name = checks.safe_name(raw.get("name", checks.name_from_stem(Path(path).stem)), f"sweep {path}: name")
    if not raw["dataset"].strip():  # '' is the sweep's own folder, found not to be data only in every trainer
        raise UserError(f"sweep {path}: `dataset` is empty: give a data file or folder (relative to the sweep's "
                        "folder).")
    if not is_text(raw["dataset"]):  # a NUL byte ended in a traceback
        raise UserError(f"sweep {path}: `dataset` {checks.short_repr(raw['dataset'])} holds a control character: "
                        "give a data file or folder's path.")
    written = Path(path).parent / checks.user_path(raw["dataset"])  # said as written: resolved, a link to /dev/zero
    if loop := checks.symlink_loop(written, f"sweep {path}: dataset"):
        raise loop
    if link := checks.dangling_link(written):
        raise UserError(f"sweep {path}: dataset '{raw['dataset']}' {link}.")
    if not written.exists():  # was said to be the dataset `zero`; a hub name, said as missing, was left unexplained
        raise UserError(f"sweep {path}: dataset '{raw['dataset']}' does not exist (relative to the sweep's folder): "
                        "a sweep times every point on one local file or folder, not a Hugging Face dataset.")
    if problems := dataset_file_problems(written):  # once here, not once per point in a trainer
        raise UserError(f"sweep {path}: {problems[0]}.")
    dataset = str(written.resolve())
    labels = [f"grid {index} of {len(raw['grids'])}" for index in range(1, len(raw["grids"]) + 1)]
    grids = [_grid(grid, path, label) for grid, label in zip(raw["grids"], labels, strict=True)]
    # the sweep's own sets OMP_NUM_THREADS and the point ids, a point's the trainer's threads and what its row says:
    # given both ways, they disagreed unsaid
    given_in = [where for where, keys in (("`settings`", settings), *zip(labels, grids, strict=True))
                if "cpu_threads" in keys]
    if threads is not None and given_in:
        raise UserError(f"sweep {path}: `cpu_threads` is given at the top and in {given_in[0]}: give it once (at the "
                        "top for every point, or in a grid to vary it).")
    # a setting a grid gives again: the grid's values won, and `settings` (fixed for every point) was never used
    if twice := next(((key, label) for label, grid in zip(labels, grids, strict=True) for key in grid
                      if key in settings), None):
        raise UserError(f"sweep {path}: `{twice[0]}` is in `settings` and in {twice[1]}: give it in one place "
                        "(`settings` fixes it for every point, a grid varies it).")
    if (count := sum(math.prod(map(len, grid.values())) for grid in grids)) > MAX_POINTS:  # before expanding them
        raise UserError(f"sweep {path} has {count:,} points; at most {MAX_POINTS:,}: split it.")
    points, seen, judged, unreachable, cpu_only = [], set(), set(), {}, not detect_gpus()
    for grid, label in zip(grids, labels, strict=True):
        keys = list(grid)
        for values in itertools.product(*grid.values()):
            point = dict(zip(keys, values, strict=True))
            config = {**_settings_for(settings, {**settings, **point}), **point, **FIXED_POINT_KEYS,
                      "dataset": dataset, "max_steps": warmup + measured, "timing_warmup_steps": warmup}
            where = f"sweep {path}, {label}{' (with `settings`)' if settings else ''}"
            try:  # the trainer's schema and a known model: not in point 37; its message names no sweep, so prefixed
                if problems := written_key_problems(config):  # the trainer reads the point as a job file
                    raise UserError(f"bad config: {'; '.join(problems)}.")
                checked = config_from_dict(config, base_dir=Path(path).parent)  # a tokenizer from the sweep's folder
                get_model(checked.model)
                if (checked.model, checked.tokenizer) not in judged:  # its tokenizer and weights, as plan's: a point
                    check_model_and_tokenizer(checked, Path(path).parent)  # trained, and refused them, after start
                    judged.add((checked.model, checked.tokenizer))
                if checked.tokenizer is not None:  # as a job's run gets it: a point trains from its own folder
                    config["tokenizer"] = resolve_tokenizer(checked.tokenizer, Path(path).parent)
            except UserError as exc:
                raise UserError(f"{where}: {exc}") from None
            if problem := cannot_run_here(checked, unreachable, cpu_only):
                raise UserError(f"{where}: cannot train here: {problem}.")
            pid = point_id(config, target, threads)
            if pid not in seen:
                seen.add(pid)
                points.append(Point(pid, config))
    return Sweep(name=name, points=tuple(points), warmup_steps=warmup, measured_steps=measured,
                 max_measured_steps=max_measured, stable_within=float(within), dataset=Path(dataset),
                 cpu_threads=threads, notes=tuple(_one_module_a_point(grids, labels)))
