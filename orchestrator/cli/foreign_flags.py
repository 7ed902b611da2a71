"""Other trainers' option names given on orch's command line, read through the table the job file and `orch import`
read their config keys with (trainer/foreign_keys.py): `--cutoff-len 1024` (LLaMA-Factory) is `--seq-len 1024`,
`--load-in-4bit` (TRL, axolotl) is `--quantization nf4`, `--optim paged_adamw_32bit` (transformers) is `--optimizer
adamw`, `--bf16` is `--precision bf16`. A setting copied from another trainer's command line is then estimated, not
refused; a value orch cannot take, or a setting the command has no option for, is one line saying so."""

import functools
import json
import re
from collections.abc import Callable
from dataclasses import fields

from gpu_catalog.checks import short_repr
from gpu_catalog.names import listed
from gpu_catalog.units import plain_number
from trainer.config import JobConfig
from trainer.foreign_keys import FOREIGN_KEYS, Carried, ForeignKey

# the job file's keys (`--learning_rate`, `--lora_alpha` copied from a training command line): a command without
# such an option says where the setting goes, where click offered the nearest option (`--lora-r`); the model is
# every command's argument, so it is left to click
JOB_FILE_ONLY = frozenset(field.name for field in fields(JobConfig)) - {"model"}
SWITCH_KEYS = frozenset(field.name for field in fields(JobConfig) if field.type is bool)  # `--packing` alone is on
UNIT_SUFFIXES = ("_usd", "_hours", "_h", "_gib", "_s")  # a job key's unit, which an option's name may leave out

# orch's quantization for the bits a foreign key asks for: `--quantization` also makes a LoRA a QLoRA, as LoRA on a
# quantized model is (`--finetuning-type lora --quantization-bit 4`, `--use-peft --load-in-4bit`)
QUANTIZATION_FOR_BITS = {4: "nf4", 8: "int8"}
# settings a switch set off leaves unsaid: `--bf16 false` alone leaves precision `auto`, which picks bf16 where the
# GPU has it, the very thing denied (HF's `--bf16 false --fp16 false` means fp32: say so with --precision)
SAID_BY_ANOTHER_WHEN_OFF = ("precision",)
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})  # an on/off option's words, here and in argv_forms
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
NEGATIVE_NUMBER = re.compile(r"-[0-9.]+([eE][+-]?[0-9]+)?")  # a value (`--max-length -5`), refused as one


class UnreadableOptions(ValueError):
    """Options that cannot be read as orch's; the message is the one line the command's usage error shows."""


class ForeignOptionError(UnreadableOptions):
    """A foreign option orch knows but cannot take here: a value it has no setting for, or a setting the command
    has no option for."""


def _word(text: str):
    """A yes/no word as a boolean (what the table's switches take), anything else as typed."""
    folded = text.strip().lower()
    return True if folded in TRUE_WORDS else False if folded in FALSE_WORDS else text


def _number(text: str) -> int | float | None:
    """A word that is a number as the number it is, written with the digits 0-9 as every flag's number is
    (plain_number); None for any other word, and for one too near 0 to hold (that one is said as typed)."""
    typed = text.strip()
    if typed.isascii() and typed.isdigit():
        return int(typed)  # exact past a float's 2**53
    try:
        return plain_number(typed)
    except ValueError:
        return None


def _flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def _settings(entry: ForeignKey, value) -> dict:
    """orch's settings for a foreign key's value, with a quantization as `--quantization` takes it."""
    settings = dict(entry.convert(value))
    bits = settings.pop("quant_bits", None)
    if bits is not None:
        settings.pop("method", None)
        settings["quantization"] = QUANTIZATION_FOR_BITS[int(bits)]
    return settings


def is_switch(entry: ForeignKey, options: dict) -> bool:
    """A key the table takes as on/off (`load_in_4bit`, `bf16`, `use_bnb_nested_quant`): true and false both convert,
    to no yes/no word in an option that takes a value (`cutoff_len` passes any value on to --seq-len)."""
    try:
        both = {**_settings(entry, True), **_settings(entry, False)}
    except (Carried, ValueError, KeyError):
        return False
    return not any(isinstance(value, bool) and not getattr(options.get(_flag_name(key)), "is_flag", False)
                   for key, value in both.items())


def _read(entry: ForeignKey, text: str, options: dict) -> dict:
    """orch's settings for a foreign option's word: as typed where it becomes a valued option (`--cutoff-len 1` is
    one token, not `true`), as a boolean where it becomes an on/off one or the key is a switch. Raises Carried."""
    first_error = None
    # a number as one first (a command line's words are all text, where a file's YAML number is a number:
    # `quantization_bit: '4'` in a file is text), then as typed, then a yes/no word as a boolean; told apart by type
    # too, as 1 == True: `--load-in-4bit 1` lost its True to the 1 before it
    number = [] if (read := _number(text)) is None else [read]
    tried = []
    for value in (*number, text, _word(text)):
        if any(type(seen) is type(value) and seen == value for seen in tried):
            continue
        tried.append(value)
        try:
            settings = _settings(entry, value)
        except (Carried, ValueError, KeyError) as why:
            first_error = first_error or why
            continue
        if all(isinstance(v, bool) or not getattr(options.get(_flag_name(k)), "is_flag", False)
               for k, v in settings.items()):
            return settings
    if isinstance(first_error, Carried):
        raise first_error
    raise Carried(f"{short_repr(text)} is no value of it" + ("" if first_error is None else f" ({first_error})"))


def _takes(entry: ForeignKey, word: str, options: dict) -> bool:
    """Whether the word after a foreign option is its value: one the key converts, where a switch gets a yes/no
    word. `--load-in-4bit Llama-3.1-8B` is the switch, then the model."""
    if word.startswith("-") and not NEGATIVE_NUMBER.fullmatch(word):
        return False
    try:
        _read(entry, word, options)
    except (Carried, ValueError, KeyError):
        return False
    return True


def _why_not(entry: ForeignKey, word: str | None, options: dict) -> str | None:
    """What is wrong with the word after a foreign option as its value (`--optim sgd`: no such optimizer), where it
    was meant as one; None where it converts or there is none."""
    try:
        _read(entry, word, options) if word is not None else None
    except (Carried, ValueError, KeyError) as why:
        return str(why)
    return None


def _targets(entry: ForeignKey) -> list[str]:
    """The orch settings a foreign option stands for, whatever its value: `--bf16 false` sets none, yet names
    `precision`, which the command must have."""
    for value in (True, "x"):
        try:
            return list(_settings(entry, value))
        except (Carried, ValueError, KeyError):
            continue
    return [entry.orch.split(":")[0].split("`")[0].strip()]


def _where_instead(key: str, options: dict) -> str:
    """Where a setting goes that a command has no option for: the command's own option of another name (`--budget`
    for budget_usd), its `--set KEY=VALUE`, or the job file."""
    for flag in (_flag_name(key.removesuffix(unit)) for unit in UNIT_SUFFIXES if key.endswith(unit)):
        if flag in options:
            return f"use {flag}"
    if "--set" in options and key in JOB_FILE_ONLY:
        return f"give --set {key}=VALUE, or set it in the job file"
    return "set it in the job file, or leave it out"


def _set_instead(key: str, options: dict) -> bool:
    """Whether a setting the command has no option for is given with its --set (`--num-train-epochs 3` as --set
    epochs=3), as a job key given as an option is (read_as_orch)."""
    return _flag_name(key) not in options and "--set" in options and key in JOB_FILE_ONLY


def _check_command_has(name: str, entry: ForeignKey, keys: list[str], options: dict) -> None:
    for key in keys:
        if _flag_name(key) not in options and not _set_instead(key, options):
            raise ForeignOptionError(f"{name} ({listed(entry.trainers)}; `{entry.orch}` in orch's job file) is no "
                                     f"option of this command: {_where_instead(key, options)}")


def _as_flags(name: str, entry: ForeignKey, settings: dict, options: dict) -> list[str]:
    """orch's flags for the settings a foreign option stands for."""
    _check_command_has(name, entry, list(settings), options)
    flags = []
    for key, value in settings.items():
        if _set_instead(key, options):
            flags += ["--set", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]  # JSON is YAML
            continue
        option = options[_flag_name(key)]
        if option.is_flag:
            if not isinstance(value, bool):
                raise ForeignOptionError(f"{name} is on or off: give true or false, or the option alone")
            flags += [option.opts[0]] if value else list(option.secondary_opts[:1])
        else:
            flags.append(f"{_flag_name(key)}={','.join(value) if isinstance(value, list) else value}")
    return flags


def _word_after(args: list[str], index: int) -> str | None:
    """The word at `index` where it may be the value of the option before it: no option itself, a negative number
    aside (`--max-length -5`)."""
    if index < len(args) and (not args[index].startswith("-") or NEGATIVE_NUMBER.fullmatch(args[index])):
        return args[index]
    return None


def read_as_orch(options: dict, known, args: list[str]) -> list[str]:
    """`args` with each foreign option (FOREIGN_KEYS, by its name with hyphens for underscores) as orch's flags;
    options `known(name)` says the command has, and everything after `--`, as given. A switch given on and off, or
    set off with nothing else saying the setting it leaves (`--bf16 false` alone: fp16 or fp32?), is refused."""
    out, index, switched, left_unsaid = [], 0, {}, {}
    said_as: dict[int, str] = {}  # the index in `out` of a flag a foreign option became -> that option as typed
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            out += [arg, *args[index:]]
            break
        name, has_value, value = arg.partition("=")
        key = name[2:].replace("-", "_")
        entry = FOREIGN_KEYS.get(key) if name.startswith("--") else None
        if name.startswith("--") and entry is None and key in JOB_FILE_ONLY and not known(name):
            if "--set" not in options:
                raise ForeignOptionError(f"{name}: `{key}` is a job-file setting this command takes no option for: "
                                         f"{_where_instead(key, options)}")
            # `--lora-alpha 32`, `--learning_rate 2e-4` copied from a training command line: the job setting, as
            # --set gives it (a published point's every column was refused but those estimate has flags for)
            following = None if has_value else _word_after(args, index)
            if not has_value and following is None and key not in SWITCH_KEYS:
                raise ForeignOptionError(f"{name} takes a value: {name} VALUE")
            index += not has_value and following is not None
            out += ["--set", f"{key}={value if has_value else 'true' if following is None else following}"]
            continue
        if entry is None or known(name):
            out.append(arg)
            continue
        _check_command_has(name, entry, _targets(entry), options)  # whatever its value: `--bf16 false` sets none
        switch = is_switch(entry, options)
        following = None if has_value else _word_after(args, index)
        if following is not None and _takes(entry, following, options):
            value, has_value, following = following, "=", None
            index += 1
        if not has_value and not switch:
            raise ForeignOptionError(f"{name}: {_why_not(entry, following, options)}" if following is not None
                                     else f"{name} takes a value: {name} VALUE")
        try:
            settings = _read(entry, value, options) if has_value else _settings(entry, True)
        except Carried as why:
            if switch:
                raise ForeignOptionError(f"{name} is on or off: give true or false, or the option alone, got "
                                         f"{short_repr(value)}") from None
            raise ForeignOptionError(f"{name}: {why}") from None
        if switch:
            on = bool(settings) or not has_value or _word(value) is True
            if switched.setdefault(name.replace("_", "-"), on) != on:
                raise ForeignOptionError(f"{name} given as on and off: give it once")
            if not settings:
                left_unsaid[name] = _settings(entry, True)  # what it says the setting is not
        flags = _as_flags(name, entry, settings, options)
        said_as.update((len(out) + index, name) for index in range(len(flags)))
        out += flags
    _one_value_each(out, said_as)
    for name, not_settings in left_unsaid.items():
        for key in (k for k in not_settings if k in SAID_BY_ANOTHER_WHEN_OFF):
            given = _given_value(out, _flag_name(key))
            if given is None:
                raise ForeignOptionError(f"{name} false says what `{key}` is not, not what it is: give "
                                         f"{_flag_name(key)} VALUE instead")
            if given.lower() == str(not_settings[key]).lower():  # `--bf16 false --precision bf16`
                raise ForeignOptionError(f"{name} false and {_flag_name(key)} {given} say opposite things: give one")
    return out


def _one_value_each(out: list[str], said_as: dict[int, str]) -> None:
    """A setting a foreign option gave and another option gives again with another value, refused naming both as
    typed: `--bf16 --precision fp16` read "--precision given twice, as bf16 and fp16", an option never typed twice."""
    for index, typed in said_as.items():
        flag, _, value = out[index].partition("=")
        if not value:  # an on/off flag: the check of orch's own says it as its two spellings
            continue
        for other, arg in enumerate(out):
            if other == index or arg.partition("=")[0] != flag:
                continue
            given = arg.partition("=")[2] if "=" in arg else out[other + 1] if other + 1 < len(out) else ""
            if given != value:
                shown = said_as.get(other, flag)
                raise ForeignOptionError(f"{typed} sets {flag} {value}, and {shown} gives it as {given}: give one")


def _given_value(args: list[str], flag: str) -> str | None:
    """The value `args` give `flag` (`--precision=bf16` or `--precision bf16`), or None where they give none."""
    for index, arg in enumerate(args):
        name, has_value, value = arg.partition("=")
        if name == flag:
            return value if has_value else args[index + 1] if index + 1 < len(args) else ""
    return None


def foreign_options(options: dict) -> dict[str, Callable[[str], bool] | None]:
    """Other trainers' option names (`--bf16`, `--cutoff-len`) the command has none of: for a switch, which words it
    takes as its value (`--bf16 auto`), None for an option that takes any: how a command line reads before
    read_as_orch makes them orch's."""
    return {_flag_name(key): functools.partial(_takes, entry, options=options) if is_switch(entry, options) else None
            for key, entry in FOREIGN_KEYS.items() if _flag_name(key) not in options}
