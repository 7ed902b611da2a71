"""Options as Hugging Face's argument parser lets people write them, read as orch's: `--gradient_checkpointing`
(underscores) is `--gradient-checkpointing`, and an on/off flag given a value (`--gradient-checkpointing true`,
`--double-quant=false`, as HfArgumentParser and the configs people copy settings from write them) is the flag or its
`--no-` form. A value that starts with a hyphen (`--budget -5usd`) stays the option's value, so it is refused for
what it is, not as an unknown option. A setting copied from a training command line is then read, not refused;
anything else reaches the parser as it was given, to be refused there with the command's help. Both parsers use it:
the typer commands' (click's options) and `orch plan`'s own (argparse's actions)."""

import argparse
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from gpu_catalog import checks
from orchestrator.cli.foreign_flags import FALSE_WORDS, TRUE_WORDS, UnreadableOptions, foreign_options, read_as_orch

# Other trainers' names of orch's options (transformers' TrainingArguments and TRL's SFTConfig, LitGPT, axolotl),
# read as orch's where a command has the option and not the name; kept out of the options' own declarations, whose
# help column they crowded past 80 characters
OTHER_NAMES = {"--max-seq-length": "--seq-len", "--batch-size": "--micro-batch", "--micro-batch-size": "--micro-batch",
               "--per-device-train-batch-size": "--micro-batch", "--gradient-accumulation-steps": "--grad-accum",
               "--gradient-checkpointing": "--grad-ckpt", "--no-gradient-checkpointing": "--no-grad-ckpt",
               "--lora-rank": "--lora-r", "--rank": "--lora-r", "--bits": "--quant-bits",
               # LitGPT's finetune options (`--quantize bnb.nf4`, `--train.micro_batch_size 2`), torchtune's
               # max_seq_len and other tables' names of a sequence's length
               "--quantize": "--quantization", "--train.micro-batch-size": "--micro-batch",
               "--train.max-seq-length": "--seq-len", "--max-seq-len": "--seq-len", "--seq-length": "--seq-len",
               "--sequence-length": "--seq-len", "--bnb-4bit-use-double-quant": "--double-quant",
               # estimate's QLoRA upcast, as the job key names it (the flag's shorter name keeps --help in 80 columns)
               "--qlora-fp32-upcast": "--fp32-upcast", "--no-qlora-fp32-upcast": "--no-fp32-upcast"}


class Contradiction(UnreadableOptions):
    """A plain flag set both on and off (`--json true --json false`): which was meant cannot be told."""


@dataclass(frozen=True)
class Switchable:
    """One option as the rewriting needs it: whether it takes no value, its own names and its `--no-` names, and
    whether it may be given again for another value (`--set`)."""

    is_flag: bool
    opts: tuple[str, ...]
    secondary_opts: tuple[str, ...] = ()
    repeatable: bool = False
    # the words past yes/no a flag takes as its value (`--bf16 auto`)
    takes: Callable[[str], bool] | None = field(default=None, compare=False)


def click_options(command) -> dict[str, Switchable]:
    """A typer command's options by every name (typer carries its own copy of click: its classes are not click's)."""
    options = [Switchable(bool(p.is_flag), tuple(p.opts), tuple(p.secondary_opts), bool(getattr(p, "multiple", False)))
               for p in command.params if getattr(p, "param_type_name", "") == "option"]
    return {name: option for option in options for name in (*option.opts, *option.secondary_opts)}


def argparse_options(parser: argparse.ArgumentParser) -> dict[str, Switchable]:
    """An argparse parser's options by every name; `--X` and `--no-X`, two actions there, are one on/off option."""
    table = {}
    for action in parser._actions:
        for name in action.option_strings:
            table[name] = Switchable(action.nargs == 0, (name,), repeatable=isinstance(action, argparse._AppendAction))
    for name, option in list(table.items()):
        positive = "--" + name[5:]
        if option.is_flag and name.startswith("--no-") and positive in table and table[positive].is_flag:
            table[name] = table[positive] = Switchable(True, (positive,), (name,))
    return table


def _as_orch(name: str, options: dict) -> str:
    """`--lora_r` as `--lora-r`, where only the underscores stand between the name and one of the command's, and
    another trainer's name as orch's (OTHER_NAMES)."""
    if name in options:
        return name
    hyphened = "--" + name[2:].replace("_", "-")
    ours = OTHER_NAMES.get(hyphened, hyphened)
    return ours if ours in options else name


def _switched(name: str, word: str, option: Switchable) -> tuple[list[str], bool] | None:
    """The flag an on/off option's value picks (`--compile false` -> `--no-compile`), and whether it is on; None: not
    a yes/no word."""
    word = word.strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        return None
    on = (word in TRUE_WORDS) != (name in option.secondary_opts)  # `--no-compile true` is --no-compile
    if on:
        return [option.opts[0]], True
    return ([option.secondary_opts[0]] if option.secondary_opts else []), False  # a plain flag set false: left out


def spelled_as_orch(options: dict[str, Switchable], args: list[str]) -> list[str]:
    """`args` with each option as orch spells it (see the module's docstring); the rest as given, and everything
    after `--` untouched; other trainers' options as orch's (foreign_flags). Raises Contradiction for a plain flag
    set both on and off, ForeignOptionError for another trainer's option orch cannot take here."""
    return _spelled(options, read_as_orch(options, lambda name: _as_orch(name, options) in options, args))


def _spelled(options: dict[str, Switchable], args: list[str]) -> list[str]:
    """spelled_as_orch's reading of orch's own options, once other trainers' are orch's."""
    out, index, plain = [], 0, {}
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            return out + [arg, *args[index:]]
        if not arg.startswith("--"):
            if why := long_dash_option(arg):
                raise UnreadableOptions(why)
            out.append(arg)
            continue
        name, has_value, value = arg.partition("=")
        name = _as_orch(name, options)
        option = options.get(name)
        if option is not None and not option.is_flag and not has_value and index < len(args) and \
                args[index].startswith("-") and args[index] not in ("--", "--help") and \
                _as_orch(args[index].partition("=")[0], options) not in options:
            out.append(f"{name}={args[index]}")  # `--budget -5usd`: the value, refused as a value
            index += 1
            continue
        if option is None or not option.is_flag or name == "--help":  # `--help false` still asks for the help
            out.append(name + has_value + value)
            continue
        word = value if has_value else (args[index] if index < len(args) else "")
        switched = _switched(name, word, option)
        if switched is None:
            if has_value:  # `--json=maybe`: "does not take a value" was false of `--json=true`, which is read
                raise UnreadableOptions(f"{name} takes no value, or one of true, false, yes, no, on, off, 1, 0: "
                                        f"got {checks.short_repr(value)}")
            switched = [name], name not in option.secondary_opts
        else:
            index += 0 if has_value else 1
        names, on = switched
        if not option.secondary_opts:
            if plain.setdefault(option.opts[0], on) != on:
                raise Contradiction(f"{option.opts[0]} given twice, as on and off: give it once")
        out += names
    return out


# an option typed, or pasted from a word processor or a web page, with a dash that is not a hyphen (`—budget`): the
# parsers saw an extra argument, or went on to say a required option was missing
_LONG_DASH_OPTION = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]+-*([A-Za-z][\w.-]*)(?:=.*)?", re.DOTALL)


def long_dash_option(arg: str) -> str | None:
    """What is wrong with `arg` where it is an option typed with such a dash (and no file of that name): None else.
    A one-letter name is a short option (`–y`: -y)."""
    typed = _LONG_DASH_OPTION.fullmatch(arg)
    if typed is None or os.path.lexists(arg):
        return None
    name = typed[1]
    dash = unicodedata.name(arg[0], "a dash").lower()
    return (f"the option {name} is typed with U+{ord(arg[0]):04X} ({dash}), not the keyboard's hyphen-minus (word "
            f"processors and web pages put one for `--`): write {'-' if len(name) == 1 else '--'}{name}")


JSON_FLAG = {"--json": Switchable(True, ("--json",))}  # what json_wanted reads: --json as every command has it


def json_wanted(args: list[str]) -> bool:
    """Whether a command line asks for --json, as both parsers read it (`--json`, `--json=true`, `--json yes`; not
    `--json=false`, nor a word after `--`, a file's name): their refusals are then a JSON document on stdout as well.
    A --json set both on and off (refused as such) asked for it too; `--json=maybe`, refused, did not."""
    try:
        spelled = _spelled(JSON_FLAG, args)
    except Contradiction:
        return True
    except UnreadableOptions:  # `--json=maybe`
        return False
    return "--json" in (spelled[:spelled.index("--")] if "--" in spelled else spelled)


def left_over_word(options: dict[str, Switchable], arguments: int, args: list[str]) -> str | None:
    """Why a word past a command's `arguments` is left over, or None: after an on/off flag (`--bf16 maybe`), a word
    that is no yes/no word; after an option's value (`--gpu RTX 4090`), the rest of a value with spaces, which the
    shell split. click said "unexpected extra argument (maybe)", blaming the word, not the option it was given to.
    Read as typed, before spelled_as_orch: other trainers' options by their own names (`--bf16`, not the
    `--precision` it becomes), orch's by their other spellings, and a flag's yes/no word (`--json true`) its own. A
    left-over word before the argument (`plan --budget 20 30 job.yaml`) is told by the argument being a file here
    and it not: argparse blamed the job file."""
    options = {**{name: Switchable(takes is not None, (name,), takes=takes)
                  for name, takes in foreign_options(options).items()}, **options}
    taken, index, after_flag, after_value = [], 0, None, None  # taken: the arguments, each with what it followed
    while index < len(args) and args[index] != "--":
        word, index = args[index], index + 1
        name, joined, value = word.partition("=")
        option = options.get(_as_orch(name, options))  # `--max_seq_length`, `--lora-rank`: named as typed
        if option is not None:
            takes_value = not option.is_flag and not joined
            value = value if joined else args[index] if takes_value and index < len(args) else None
            if value == "--":  # `--budget -- 5`: the option's value is missing, which click says
                return None
            after_value = (name, value, option.repeatable, True) if value is not None and not option.is_flag else None
            after_flag = word if option.is_flag and not joined else None  # `--json=yes` has its word
            index += takes_value
            if after_flag and index < len(args) and (args[index].strip().lower() in TRUE_WORDS | FALSE_WORDS or (
                    option.takes is not None and option.takes(args[index]))):
                after_flag, after_value = None, (word, args[index], False, False)  # `--json true`: its word, one only
                index += 1
            continue
        if word.startswith("-") and word != "-" and not checks.is_number_text(word):
            return None  # `--yes --buget 1`: an unknown option, click's to name with the options near it
        if len(taken) >= arguments:
            if after_flag is not None or after_value is not None:
                return _left_over(word, after_flag, after_value)
            if os.path.exists(word):  # the argument, after a left-over word taken for it
                earlier = next((t for t in taken if (t[1] or t[2]) and not os.path.exists(t[0])), None)
                return _left_over(*earlier) if earlier else None
        taken.append((word, after_flag, after_value))
        after_flag = after_value = None
    return None


def _left_over(word: str, after_flag: str | None, after_value: tuple | None) -> str:
    """left_over_word's line for `word`, after an on/off flag or an option's value."""
    if after_flag is not None:
        return (f"{after_flag} is on or off, and takes no word but true, false, yes, no, on, off, 1 or 0: got "
                f"{checks.short_repr(word)}")
    option_name, value, repeatable, quotable = after_value
    left_over = f"{checks.short_repr(word)} is left over after {option_name} {checks.short_repr(value)}, which takes " \
                "one value"
    if repeatable:  # `--set a=1 b=2`: quoted, the two were one value
        return f"{left_over} (give it again for another: {option_name} {checks.short_repr(value)} " \
               f"{option_name} {checks.short_repr(word)})"
    if checks.is_number_text(value) and checks.is_number_text(word) or not quotable:
        return left_over
    return f"{left_over} (one with spaces goes in quotes: {option_name} {checks.short_repr(f'{value} {word}')})"
