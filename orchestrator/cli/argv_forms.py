"""Options as Hugging Face's argument parser lets people write them, read as orch's: `--gradient_checkpointing`
(underscores) is `--gradient-checkpointing`, and an on/off flag given a value (`--gradient-checkpointing true`,
`--double-quant=false`, as HfArgumentParser and the configs people copy settings from write them) is the flag or its
`--no-` form. A setting copied from a training command line is then read, not refused; anything else reaches click
as it was given, to be refused there with the command's help."""

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def _options(command) -> dict:
    """The command's options by every name (typer carries its own copy of click: its classes are not click's)."""
    return {name: param for param in command.params if getattr(param, "param_type_name", "") == "option"
            for name in (*param.opts, *param.secondary_opts)}


def _as_orch(name: str, options: dict) -> str:
    """`--lora_r` as `--lora-r`, where only the underscores stand between the name and one of the command's."""
    hyphened = "--" + name[2:].replace("_", "-")
    return hyphened if name not in options and hyphened in options else name


def _switched(name: str, word: str, option) -> list[str] | None:
    """The flag an on/off option's value picks (`--compile false` -> `--no-compile`); None: not a yes/no word."""
    word = word.strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        return None
    if name in option.secondary_opts:  # `--no-compile true` is --no-compile
        word = "false" if word in TRUE_WORDS else "true"
    if word in TRUE_WORDS:
        return [option.opts[0]]
    return [option.secondary_opts[0]] if option.secondary_opts else []  # a plain flag set false is left out


def spelled_as_orch(command, args: list[str]) -> list[str]:
    """`args` with each option as orch spells it (see the module's docstring); the rest as given, and everything
    after `--` untouched."""
    options = _options(command)
    out, index = [], 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            return out + [arg, *args[index:]]
        if not arg.startswith("--"):
            out.append(arg)
            continue
        name, has_value, value = arg.partition("=")
        name = _as_orch(name, options)
        option = options.get(name)
        if option is None or not option.is_flag:
            out.append(name + has_value + value)
            continue
        word = value if has_value else (args[index] if index < len(args) else "")
        switched = _switched(name, word, option)
        if switched is None:
            out.append(name + has_value + value)
            continue
        out += switched
        index += 0 if has_value else 1
    return out
