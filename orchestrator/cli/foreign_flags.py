"""Other trainers' option names given on orch's command line, read through the table the job file and `orch import`
read their config keys with (trainer/foreign_keys.py): `--cutoff-len 1024` (LLaMA-Factory) is `--seq-len 1024`,
`--load-in-4bit` (TRL, axolotl) is `--quantization nf4`, `--optim paged_adamw_32bit` (transformers) is `--optimizer
adamw`, `--bf16` is `--precision bf16`. A setting copied from another trainer's command line is then estimated, not
refused; a value orch cannot take, or a setting the command has no option for, is one line saying so."""

from trainer.foreign_keys import FOREIGN_KEYS, Carried, ForeignKey

# orch's quantization for the bits a foreign key asks for: `--quantization` also makes a LoRA a QLoRA, as LoRA on a
# quantized model is (`--finetuning-type lora --quantization-bit 4`, `--use-peft --load-in-4bit`)
QUANTIZATION_FOR_BITS = {4: "nf4", 8: "int8"}
YES_WORDS = frozenset({"true", "yes", "on", "1"})
NO_WORDS = frozenset({"false", "no", "off", "0"})


class UnreadableOptions(ValueError):
    """Options that cannot be read as orch's; the message is the one line the command's usage error shows."""


class ForeignOptionError(UnreadableOptions):
    """A foreign option orch knows but cannot take here: a value it has no setting for, or a setting the command
    has no option for."""


def _word(text: str):
    """A command-line word as a config value: yes/no words as booleans (what the table's switches take), the rest as
    typed (the orch option it becomes parses numbers itself)."""
    folded = text.strip().lower()
    return True if folded in YES_WORDS else False if folded in NO_WORDS else text


def _joined(names: tuple[str, ...]) -> str:
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


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


def _takes(entry: ForeignKey, word: str, options: dict) -> bool:
    """Whether the word after a foreign option is its value: a value the key converts, where an on/off option it
    becomes gets a yes/no word. `--load-in-4bit Llama-3.1-8B` is the switch, then the model."""
    if word.startswith("-"):
        return False
    try:
        settings = _settings(entry, _word(word))
    except (Carried, ValueError, KeyError):
        return False
    return all(isinstance(value, bool) or not getattr(options.get(_flag_name(key)), "is_flag", False)
               for key, value in settings.items())


def _why_not(entry: ForeignKey, word: str | None) -> str | None:
    """What is wrong with the word after a foreign option as its value (`--optim sgd`: no such optimizer), where it
    was meant as one; None where it converts or there is none."""
    try:
        _settings(entry, _word(word)) if word is not None else None
    except Carried as why:
        return str(why)
    return None


def _as_flags(name: str, entry: ForeignKey, settings: dict, options: dict, given_value: bool) -> list[str]:
    """orch's flags for the settings a foreign option stands for."""
    flags = []
    for key, value in settings.items():
        flag = _flag_name(key)
        option = options.get(flag)
        if option is None:
            raise ForeignOptionError(f"{name} (what {_joined(entry.trainers)} call orch's `{key}`) is no option "
                                     f"of this command: set `{key}` in the job file, or leave it out")
        if option.is_flag:
            if not isinstance(value, bool):
                raise ForeignOptionError(f"{name} is on or off: give true or false, or the option alone")
            flags += [option.opts[0]] if value else list(option.secondary_opts[:1])
        elif value is True and not given_value:
            raise ForeignOptionError(f"{name} takes a value: {name} VALUE (orch's {flag})")
        else:
            flags.append(f"{flag}={','.join(value) if isinstance(value, list) else value}")
    return flags


def read_as_orch(options: dict, known, args: list[str]) -> list[str]:
    """`args` with each foreign option (FOREIGN_KEYS, by its name with hyphens for underscores) as orch's flags;
    options `known(name)` says the command has, and everything after `--`, as given."""
    out, index = [], 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            return out + [arg, *args[index:]]
        name, has_value, value = arg.partition("=")
        entry = FOREIGN_KEYS.get(name[2:].replace("-", "_")) if name.startswith("--") else None
        if entry is None or known(name):
            out.append(arg)
            continue
        following = args[index] if not has_value and index < len(args) and not args[index].startswith("-") else None
        if following is not None and _takes(entry, following, options):
            value, has_value, following = following, "=", None
            index += 1
        try:
            settings = _settings(entry, _word(value) if has_value else True)
        except Carried as why:
            raise ForeignOptionError(f"{name}: {_why_not(entry, following) or why}") from None
        out += _as_flags(name, entry, settings, options, bool(has_value))
    return out
