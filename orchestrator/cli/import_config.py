"""`orch import CONFIG.yaml [--out JOB.yaml [--force]]`: an orch job from an axolotl, LLaMA-Factory, TRL or torchtune
config, with every key that was not carried over listed, and why, and every setting the config left out that took its
trainer's default rather than orch's (marked `# (source default)` in the job)."""

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.whole_files import write_text_atomically
from orchestrator import home
from orchestrator.cli import display, fold
from orchestrator.cli.errors import user_errors
from orchestrator.cli.options import JsonFlag, path_argument, path_option
from orchestrator.estimator.settings import unsupported_in_cloud
from orchestrator.foreign_config import translate
from orchestrator.job import check_dataset
from orchestrator.launch.local import local_paths
from trainer.config import (
    ConfigError,
    check_model_and_tokenizer,
    config_from_dict,
    model_folder,
    parse_overrides,
    whole_counts,
)
from trainer.data_sources import dataset_problems
from trainer.job_file import job_file_problems, warm_up_problems


def _read_yaml(path: Path) -> dict:
    raw = checks.load_yaml(path, "config file", checks.ForeignConfigLoader)  # numbers as its trainer reads them
    if not isinstance(raw, dict):  # said as a job file's is: what it is instead
        raise UserError(f"config file '{path}' must be a mapping of keys to values (as a trainer's config is); this "
                        f"one is {checks.not_a_mapping(raw)}.")
    return raw


LOCAL_PATH_KEYS = ("dataset", "eval_dataset", "tokenizer")
SOURCE_DEFAULT = "(source default)"  # how the job and the listing mark a setting the source's trainer defaulted


def _marked(text: str, defaults: list[tuple[str, object, str]]) -> str:
    """The job's YAML with each source default's line commented, so the file says which values the config never
    wrote (each is a top-level scalar: one `key: value` line)."""
    why = {key: reason for key, _, reason in defaults}
    lines = []
    for line in text.splitlines():
        key = line.split(":", 1)[0]
        lines.append(f"{line}  # {SOURCE_DEFAULT} {why[key]}" if key in why and not line.startswith(" ") else line)
    return "\n".join(lines) + "\n"


def _paths_from(source_dir: Path, job_dir: Path, job: dict) -> dict:
    """The job with each relative dataset, tokenizer and model path that names something beside the source config
    made relative to where the job is written (absolute, when that is not below it): `data/train.jsonl` beside an
    axolotl config in another folder no longer resolved from the imported job's. A `model` is a folder where the
    trainer takes it for one (config.model_folder), so a hub id stays an id."""
    moved = dict(job)
    for key in (*LOCAL_PATH_KEYS, "model"):
        value = job.get(key)
        if not isinstance(value, str) or not value.strip() or Path(value).is_absolute():
            continue  # an empty one is the job check's to refuse: joined to the folder, it was `dataset: .`
        found = model_folder(value, source_dir) if key == "model" else source_dir / value
        if found is not None and found.exists():
            found = found.resolve()
            relative = os.path.relpath(found, job_dir.resolve())
            if relative.startswith(".."):
                moved[key] = str(found)
            else:  # a model written as a path (`./src/model`), so it reads as a folder, not a hub id
                moved[key] = os.path.join(".", relative) if key == "model" else relative
    return moved


@user_errors
def import_command(
    config: Annotated[Path, path_argument("a config file", help="A config written for axolotl, LLaMA-Factory, TRL "
                                                                "or torchtune.")],
    out: Annotated[Path | None, path_option(help="Write the orch job here (default: print it).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --out file if it exists.")] = False,
    set_values: Annotated[list[str] | None, typer.Option("--set", help="Set or override a key: KEY=VALUE "
                                                                       "(repeatable).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write an orch job from another trainer's config; every key not carried over is listed with the reason."""
    if force and out is None:  # it does nothing then: a --out left out, more likely than a flag meant for nothing
        raise UserError("--force replaces an existing --out file: give --out FILE with it, or leave --force out.")
    if out is not None:
        # a job is often edited after import: ask first
        home.output_file(out, inputs=(config,), force=force, suffixes=checks.YAML_SUFFIXES)
    translation = translate(_read_yaml(config))
    given = parse_overrides(set_values or [])  # a --set mistake is said of --set, not of the imported job
    defaults = translation.source_defaults({**translation.job, **given})
    job_dir = out.parent if out is not None else Path.cwd()
    job, unused = translation.settled(_paths_from(config.parent, job_dir,
                                                  {**translation.job, **{k: v for k, v, _ in defaults}, **given}),
                                      given)
    defaults = [default for default in defaults if default[0] in job]
    not_carried = translation.left_behind(given) + unused
    try:  # what `orch plan` says of the written file, its dataset looked for from the job's folder
        if problems := job_file_problems(job, job_dir):
            raise ConfigError("bad config: " + "; ".join(problems) + ".")
        settings = config_from_dict(job, name=config.stem)
        if problems := warm_up_problems(job, given, settings):  # a source's smoke test: max_steps 5, warmup_steps 10
            raise ConfigError("bad config: " + "; ".join(problems) + ".")
        check_dataset(settings, job_dir)  # `data/x.jsonl` that is not there, `/dev/zero`
        # `/etc/passwd`, `/etc` (a folder of mixed kinds); a hub id, and a dataset left for --set, are left to plan:
        # a config is often imported where the hub is not
        if settings.dataset is not None and (problems := dataset_problems(settings, job_dir, reach_hub=False)):
            raise UserError(f"{problems[0]}.")
        check_model_and_tokenizer(settings, job_dir)  # a model folder with no tokenizer (`base_model: /etc`)
    except UserError as exc:  # a key left behind may be the cause (a dataset name): its note has the fix
        fix = " ".join(f"{note}." for note in translation.needed_notes(job)) or "Add or fix keys with --set KEY=VALUE."
        # the source's own key, where the refusal names the orch key it became (`lora_target` as `target_modules`)
        became = "; ".join(f"`{key}` is the source's `{foreign}`" for key, foreign in (translation.origin or {}).items()
                           if foreign != key and key not in given and f"`{key}`" in str(exc))
        said = str(exc).rstrip(".")  # its sentence ends after the source's key, before the fix's sentences begin
        raise UserError(f"the imported job is not one orch can train: {said}{f' ({became})' if became else ''}. "
                        f"{fix}") from None
    if out is not None:  # asked again of the job's own files, now known: `--out DATASET --force` replaced the data
        local = tuple(local_paths(job, job.get("tokenizer"), job_dir).values())
        home.output_file(out, inputs=(config, *local), force=force, suffixes=checks.YAML_SUFFIXES,
                           read_folders=local)
    source = json.dumps(checks.printable(config.name))  # a comment line whatever the name holds (a newline, an ESC)
    text = f"# imported from {source} by `orch import`\n" + \
        _marked(checks.dump_yaml(whole_counts(job), sort_keys=False), defaults)
    if out is not None:
        write_text_atomically(out, text)
    # carried as the source has it, but no cloud target can run it: `orch plan` then found no target at all
    notes = [f"{why}; as imported, only your own GPUs can run this job"] if (why := unsupported_in_cloud(settings)) \
        else []
    if as_json:
        display.print_json({"job": job, "out": str(out) if out else None,
                            "not_carried": [{"key": k, "why": why} for k, why in not_carried],
                            "source_defaults": [{"key": k, "value": v, "why": why} for k, v, why in defaults],
                            "notes": notes})
        return
    display.show_import(text if out is None else None, out, not_carried)
    for note in notes:
        fold.note(f"note: {note}")
    if defaults:
        display.say(f"{len(defaults)} setting(s) the config leaves out, set as its trainer does, not to orch's "
                    f"default {SOURCE_DEFAULT}:", err=True)
        for key, value, why in defaults:
            display.say(f"  {key}: {json.dumps(value)} ({why})", err=True)
