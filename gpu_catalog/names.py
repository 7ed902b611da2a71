"""Name matching shared by GPUs and models: one normalisation, and 'did you mean' suggestions on a miss."""

import os
import re
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

_NOISE_WORDS = ("nvidia", "geforce", "tesla", "quadro")


def squeezed(text: str) -> str:
    """A setting's spelling without case, spaces, hyphens, underscores and brackets: `Flash Attention 2`,
    `flash-attn-2` and `FlashAttention2` are one key; dots are kept (LitGPT's `bnb.nf4` is not `bnb-nf4`)."""
    return re.sub(r"[\s_\-()]+", "", text.lower())


def normalize(name: str) -> str:
    """Fold the spellings people use into one key: `A100-80GB`, `a100 80g` and `NVIDIA A100 80GB` all match."""
    key = name.lower()
    for word in _NOISE_WORDS:
        key = key.replace(word, "")
    key = re.sub(r"[^a-z0-9.]", "", key)
    return re.sub(r"(\d)gb", r"\1g", key)


# the letters o and l in a number's place: after a digit (`H1OO`, `RTX 4O90`), or between a letter and a digit
# (`Hl00`); not one that starts a name or a word without digits (`L40S`, `foo`), which are letters
_TYPED_FOR_DIGITS = re.compile(r"(?<=\d)[ol]+|(?<=[a-z])[ol]+(?=\d)")
_AS_DIGITS = str.maketrans("ol", "01")


def _compared(name: str) -> str:
    """normalize's key with an o or l typed for 0 or 1 read as that digit, on both sides of a comparison: `H1OO`
    (letter O) got no near name, its key `h1oo` too far from `h100sxm`."""
    return _TYPED_FOR_DIGITS.sub(lambda typed: typed.group().translate(_AS_DIGITS), normalize(name))


def suggest(name: str, candidates: list[str], limit: int = 3, cutoff: float = 0.5) -> list[str]:
    """The candidates closest to `name`, best first; compares normalised keys so spacing and case do not matter.
    `cutoff` is difflib's least similarity (0 to 1): GPU and model names share few letters with a typo of theirs
    (`4090` for `RTX 4090`), where many names of a kind (config keys) share a stem and need a higher one. Names that
    start with what was typed come first: difflib ranked H200 above H100 SXM for `h100`, a shorter key."""
    import difflib  # only on a miss: a plan that finds its names never pays for it

    typed = _compared(name)
    by_key = {_compared(c): c for c in candidates}
    keys = difflib.get_close_matches(typed, list(by_key), n=limit, cutoff=cutoff)
    starts = [c for key, c in by_key.items() if typed and key.startswith(typed)]
    swapped = [c for key, c in by_key.items() if len(key) == len(typed) and sorted(key) == sorted(typed)]  # `peu`
    substring_hits = [c for key, c in by_key.items() if typed and typed in key]
    ordered = starts + swapped + [by_key[k] for k in keys] + substring_hits
    return list(dict.fromkeys(ordered))[:limit]


SHORTEST_HINTED_KEY = 3  # characters: a shorter unknown key (`a`, `3`) is found inside too many keys to hint at one
KEY_SIMILARITY = 0.7  # difflib's ratio for a near key: lower, `colour` got `lora_r` and `max_step` got `warmup_steps`


def listed(names: Iterable[str], last: str = "and") -> str:
    """Names as a sentence lists them: `a`, `a and b`, `a, b and c` (`last`: "or" for choices). One wording for every
    list a message names, where each message had its own copy of the join."""
    names = list(names)
    return "".join(names) if len(names) <= 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def near_hint(name, candidates: Iterable, limit: int = 3, shown: Callable[[str], str] = str) -> str:
    """` (did you mean `a` or `b`?)` for a misspelt key or setting of a hand-written file (a job, the hardware file,
    a sweep), naming the (at most `limit`) `candidates` nearest to it, each as `shown` writes it; empty when none is
    near. One wording for every such file: the job's keys said it, the hardware file's and the sweep's only listed
    every key."""
    name = str(name)  # YAML keys may be numbers
    near = suggest(name, [str(c) for c in candidates], limit, cutoff=KEY_SIMILARITY) \
        if len(name) >= SHORTEST_HINTED_KEY else []
    if not near:
        return ""
    return f" (did you mean {listed((f'`{shown(close)}`' for close in near), 'or')}?)"


def near_file_hint(missing: Path, suffixes: Collection[str], written: str | None = None) -> str:
    """near_hint for a file that does not exist: the files beside it with one of `suffixes` whose names are near its
    (`job.yml` for `job.yaml`, `data/train.jsonl` for `data/trian.jsonl`), each named with the folder `written`, the
    path as typed, names; empty where none is near or the folder cannot be listed."""
    try:
        beside = [entry.name for entry in missing.parent.iterdir() if entry.suffix.lower() in suffixes]
    except OSError:  # no such folder, or one that cannot be listed: no hint
        return ""
    folder = os.path.dirname(written) if written else ""
    # names compared alone: a folder typed before them made every file in it near (`examples/foo.yaml`)
    return near_hint(missing.name, beside, shown=lambda name: os.path.join(folder, name))


def unknown_name_message(kind: str, name: str, candidates: list[str], how_to_list: str) -> str:
    """The one wording for every unknown-name error, so they all say what to do next."""
    near = suggest(name, candidates)
    hint = f" Did you mean: {', '.join(near)}?" if near else ""
    return f"unknown {kind} '{name}'.{hint} List them with `{how_to_list}`."
