"""Validation every file and flag goes through, in one place, so all of orch refuses bad input the same way.

Pure Python (yaml only), so the trainer uses it too. Each check raises UserError with a message naming the value,
what was wrong and the allowed range; the CLI turns that into `error: ...` and exit 2.
"""

import codecs
import collections
import csv
import datetime
import errno
import json
import math
import os
import re
import reprlib
import sys
import tempfile
from pathlib import Path

import yaml

from gpu_catalog.errors import UserError
from gpu_catalog.names import listed
from gpu_catalog.units import TooNearZero, number_as_written

# A name becomes a folder (outputs/<name>, a run folder), a table cell and a database value: letters, digits and
# `._-+`, starting with a letter or digit, so it cannot be `..`, a path, hidden, an option or terminal markup.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
SAFE_NAME_RULE = "1-100 letters, digits and . _ - +, starting with a letter or digit"
# Python's parsers recurse once per level of nesting: some hundreds of `[` exhaust the stack
TOO_DEEP = "is nested too deeply to be a config (hundreds of levels of lists or mappings): check it."
# Control characters (ESC starts a terminal's escape sequences) in text bound for a terminal, newline and tab aside,
# Unicode's bidirectional controls (U+202E shows what follows it reversed: "Trojan Source"), its line and paragraph
# separators (a new line in some terminals) and the zero-width space (a name that looks like another)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A value in a message: quoted ('x' or "x", after a space, `(` or `=`, spaces and all) or else a run without spaces
_QUOTED = re.compile(r"""(?:(?<=[\s(=])|^)(?:'[^']*'|"[^"]*")(?=[\s.,:;)]|$)""")
_VALUE = re.compile(_QUOTED.pattern + r"|\S+")
# Longer, a value in an error line (a pasted file as a model name) is cut to its start and end around `…`: enough to
# know it by (a path's file name is at its end), and the advice after it stays on the screen
LONGEST_VALUE, VALUE_START, VALUE_END = 100, 60, 20


def printable(text: str) -> str:
    """Text from a user or a file, safe to print: each control character shown as its escape (`\\x1b`, `\\u202e`),
    so a name or a message cannot move the cursor, retitle the window, colour the rest of the screen or show a line
    in another order than it is written."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def is_number_text(word: str) -> bool:
    """A word that is a number (`-1`, `1e3`), a value on a command line, not an option: `--deadline -1` is refused
    for its range, and `--yes -1` is no unknown option `-1`."""
    try:
        float(word)
    except ValueError:
        return False
    return True


def one_line(text: str) -> str:
    """A message for an `error: ...` line: printable, with its line breaks and tabs (a YAML parser's message)
    folded into single spaces, and each value in it longer than LONGEST_VALUE cut. Inside a quoted value they are
    shown as escapes: folded, `job file 'a\nb.yaml' does not exist` named 'a b.yaml', another file."""
    quoted = _QUOTED.sub(lambda match: match.group().replace("\n", "\\n").replace("\t", "\\t"), str(text))
    return _VALUE.sub(_cut, printable(" ".join(quoted.split())))


def json_kind(value) -> str:
    """What a value read from a data file is, in the file's words (`got null`, `got a list`): Python's type names
    (NoneType, str) are none its writer knows."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    kinds = ((int | float, "a number"), (str, "a string"), (list | tuple, "a list"), (dict, "an object"))
    return next((kind for types, kind in kinds if isinstance(value, types)), type(value).__name__)


def not_a_mapping(value) -> str:
    """What a config file read as YAML or JSON is, where a mapping of keys to values was wanted."""
    return "empty" if value is None else "a list" if isinstance(value, list) else "a single value"


def as_written(value, longest: int = 60) -> str:
    """A value as its data file writes it (null, true, NaN, "text"), cut to `longest` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # no JSON value (a date a Parquet file holds): Python's own form
        text = repr(value)
    return text[:longest]


def csv_error_text(exc: Exception) -> str:
    """Python's csv.Error in the file's own terms: a bare carriage return, which ends no line for the reader, is said
    by it as advice to open the file "in universal-newline mode", which no user can act on."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "new-line character seen in unquoted field" in text:
        return "its lines end in a bare carriage return (\\r): end them with \\n or \\r\\n"
    if "field larger than field limit" in text:  # said with no way out; no cell of these files is near it
        return f"a cell is longer than {csv.field_size_limit():,} characters, which no value here is: check the file"
    return text


def _cut(match: re.Match) -> str:
    """A message's value as it is, or its start and end around `…` when it is too long to read."""
    value = match.group()
    return value if len(value) <= LONGEST_VALUE else f"{value[:VALUE_START]}…{value[-VALUE_END:]}"


class _ShortRepr(reprlib.Repr):
    """repr() of a value from a file, bounded as it is built: `{value!r}` of a 20,000-item list was a 60 KB error
    line, and of a YAML alias bomb (a few hundred bytes naming ten lists ten times over, seven deep) 58 MB, built
    for 20 seconds in 1.2 GB. A few items at each of a few levels are enough to know a value by."""

    def __init__(self):
        super().__init__()
        self.maxlevel = 3
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdeque = self.maxarray = 6
        self.maxdict = 4
        self.maxlong = self.maxother = LONGEST_VALUE

    def repr_str(self, value, level):
        """Cut as one_line cuts a value, start and end around `…` (a path's file name is at its end), before the
        repr is built."""
        if len(value) > LONGEST_VALUE:
            value = f"{value[:VALUE_START]}…{value[-VALUE_END:]}"
        return repr(value)

    def repr_bool(self, value, level):
        """As the YAML or JSON it came from writes it: `got True` was no word of the file's."""
        return "true" if value else "false"

    def repr_NoneType(self, value, level):  # noqa: N802 - reprlib finds it by the type's name
        return "null"


short_repr = _ShortRepr().repr  # the one way a value is echoed in a message


def in_own_quotes(text: str) -> str | None:
    """What a text wrapped in a second pair of quotes (`model: "'meta-llama/Llama-3.1-8B'"`) holds inside them; None
    for any other text. No name or path has them, and a lookup that folds them away (normalize()) matched a catalog
    row while the job kept them."""
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"`":
        return stripped[1:-1]
    return None
MOST_NAMES_SAID = 5


def first_few(names: list[str]) -> str:
    """Names a message lists (unknown columns, modules), the first few and how many more: a list of thousands named
    them all on one line."""
    shown = ", ".join(names[:MOST_NAMES_SAID])
    return shown if len(names) <= MOST_NAMES_SAID else f"{shown} and {len(names) - MOST_NAMES_SAID:,} more"


def number(value, what: str, low: float | None = None, high: float | None = None, *, above: bool = False,
           whole: bool = False) -> float | int:
    """`value` as a finite number in [low, high] (`above`: strictly above low); NaN, inf, text and booleans fail.

    Range checks alone let NaN through (every comparison with NaN is False), which is how `learning_rate: inf`
    trained a NaN loss and reported ok: finiteness is checked first, always."""
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not _is_whole(value)):
        raise UserError(f"{what} must be {kind}, got {short_repr(value)}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{what} must be a finite number, got {short_repr(value)}.")
    too_low = low is not None and (value <= low if above else value < low)
    if too_low or (high is not None and value > high):
        bounds = [f"{'above' if above else 'at least'} {_shown(low)}" if low is not None else "",
                  f"at most {_shown(high)}" if high is not None else ""]
        raise UserError(f"{what} must be {' and '.join(b for b in bounds if b)}, got {_shown(value)}.")
    if tiny := too_small_text(value) or beyond_floats_text(value):  # after the range, which says more
        raise UserError(f"{what} {tiny}.")
    return int(value) if whole else value


def too_small_text(value) -> str | None:
    """Why a number is too near 0 to compute with (a subnormal float, below 2.2e-308: `learning_rate: 5e-324`
    trained nothing, `save_every_minutes: 5e-324` checkpointed every step), or None. No setting means one."""
    if isinstance(value, float) and 0 < abs(value) < sys.float_info.min:
        return f"{value!r} is too near 0 to compute with (below {sys.float_info.min:.1e}): give a larger value"
    return None


def beyond_floats_text(value) -> str | None:
    """Why a whole number typed in full is past what a float holds (10^309 and up: exact as Python's int, it raised
    OverflowError wherever it met a float, math.isfinite first), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
        return f"is too large to compute with (at most {sys.float_info.max:.1e}), got {whole_shown(value)}"
    return None


def _shown(value: float) -> str:
    """A bound or value as people write it: 16777216 and 1000000 in full, 0.05 and 1e+30 short, and a whole number
    typed in full (99999999999999999999) as typed."""
    if isinstance(value, int):
        return whole_shown(value)
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


def whole_shown(value: int) -> str:
    """A whole number in full up to 40 digits (one typed in full reads back as typed); past that by its size: `1e308`
    read as a whole number was echoed as its 309 digits."""
    digits = len(str(abs(value)))
    return f"about {'-' if value < 0 else ''}10^{digits - 1}" if digits > 40 else str(value)


def _is_whole(value) -> bool:
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())


def optional_number(value, what: str, low: float | None = None, high: float | None = None, *, above: bool = False,
                    whole: bool = False):
    """`number`, with None passed through (an option left unset)."""
    return None if value is None else number(value, what, low, high, above=above, whole=whole)


def user_path(text: str | Path) -> Path:
    """A path with `~` or `~user` expanded where it can be: `~nouser/x` names nothing, so it stays as written and is
    then simply not found (Path.expanduser raises for it)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        return Path(text)


SYMLINK_LOOP = "is a symlink loop (too many levels of symbolic links): fix or remove the link."
_RESOLVE_LOOP = re.compile(r"Symlink loop from (['\"])(.*)\1", re.DOTALL)  # Python 3.11's Path.resolve() says so


def symlink_loop(path: Path | str, what: str = "") -> UserError | None:
    """The error for a path that cannot be followed for its symbolic links (a loop, `a -> b -> a`, or a chain past
    the system's limit), naming the part that loops; None when it can be. Such a path was said not to exist, or
    raised a traceback."""
    path = Path(path)
    for part in (*reversed(path.parents), path):
        try:
            os.stat(part)
        except ValueError:  # a NUL in the name: no file, and no link
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                named = f"{what} '{path}'".lstrip()
                return UserError(f"{named} {SYMLINK_LOOP}" if part == path else f"{named}: '{part}' {SYMLINK_LOOP}")
    return None


def resolved(path: Path | str, what: str = "") -> Path:
    """`Path.resolve()`, a loop of symbolic links refused as the user's to fix: Python 3.11 raises RuntimeError for
    one even with strict=False, which reached users as a traceback."""
    try:
        return Path(path).resolve()
    except RuntimeError:
        if error := symlink_loop(path, what):
            raise error from None
        raise


def symlink_loop_from(exc: BaseException) -> UserError | None:
    """Path.resolve()'s RuntimeError for a loop of links, raised where no caller caught it, as the user's error (the
    CLI's and the trainer's last resort); None for any other exception."""
    found = _RESOLVE_LOOP.fullmatch(str(exc)) if isinstance(exc, RuntimeError) else None
    return (symlink_loop(found[2]) or UserError(f"'{found[2]}' {SYMLINK_LOOP}")) if found else None


def last_resort(exc: BaseException) -> UserError | None:
    """An exception no check caught, as the user's one-line error where it is the user's to fix (a path that cannot
    be read or written, a full disk, a loop of links), else None: the CLI's last resort, so no command ends in a
    traceback for one (`orch plan` did, on its own parser, where the other commands said it in a line)."""
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
        where = f"'{exc.filename}': " if exc.filename else ""
        fix = f": {DISK_FIXES[exc.errno]}" if exc.errno in DISK_FIXES else ""
        return UserError(f"{where}{exc.strerror or exc}{fix}.")
    return symlink_loop_from(exc)


# what to do where a write failed for the disk's sake, not the path's (a plot's savefig names no file): a bare "No
# space left on device." said neither where nor what next
DISK_FIXES = {errno.ENOSPC: "free space on the disk orch was writing to (an --out folder's, ORCH_HOME's), then run it "
                            "again",
              errno.EDQUOT: "free space within your disk quota, then run it again",
              errno.EROFS: "that file system is read-only: give an --out folder (or ORCH_HOME) on a writable one"}


def env_value(variable: str) -> str | None:
    """An environment variable's value, None when it is unset, empty or blank: the one test of whether the user named
    something there, so a blank ORCH_HARDWARE is the default file and not a named one. A value that is not UTF-8 is
    refused here, before any command writes: as a path it made folders, then failed to be stored in orch's databases,
    leaving a half-written job behind."""
    value = _utf8(os.environ.get(variable, ""), variable)
    return value if value.strip() else None


def secret_env(variable: str) -> str | None:
    """A secret's environment variable (HF_TOKEN, WANDB_API_KEY), None where unset or blank as env_value says: a
    blank HF_TOKEN passed the gated model's check, and the VM bought was refused the download. One holding a space or
    a control character (a token pasted with its line break) is refused, never echoed: no token has one."""
    value = env_value(variable)
    if value is not None and any(char.isspace() or _CONTROL.match(char) for char in value):
        raise UserError(f"{variable} holds a space, a line break or a control character, which no token has: set it "
                        "to the token alone.")
    if value is not None and not value.isascii():  # sent in an HTTP header, it failed on the VM (UnicodeEncodeError)
        raise UserError(f"{variable} holds a character that is not ASCII, which no token has (a quote or a dash a "
                        "web page or an editor put in?): set it to the token alone, as copied.")
    return value


def _utf8(value: str, variable: str, fix: str = "set it to a path written in UTF-8") -> str:
    """An environment variable's value (or a path to write), refused unless it is UTF-8: Python keeps each byte that
    is not as a lone surrogate, which sqlite, tokenizers and every UTF-8 file orch writes refuse."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise UserError(f"{variable} '{shown}' is not UTF-8 text: {fix}.") from None
    return value


def env_path(variable: str, default: str, made_here: bool = False) -> Path:
    """A path from an environment variable, else the default, made absolute: an empty ORCH_HOME would otherwise put
    orch's databases in whatever folder the command runs from (or a folder named ' ' there), and a relative one
    stored paths in runs.db that no longer resolved from another folder (a scheduler started elsewhere). A folder
    orch makes files in (`made_here`) holds no control character (ORCH_HOME with a line break was taken, a run was
    recorded and charged, and its trainer refused the --output under it that the user never gave) and is not the
    file system's root."""
    value = env_value(variable) or default
    if value != value.strip():  # ` ~/orch-home` opened a new, empty home: every run recorded before looked lost
        raise UserError(f"{variable}={short_repr(value)} has spaces around it, which no path orch names has: set it "
                        f"without them ({variable}={short_repr(value.strip())}).")
    try:
        path = Path(os.path.abspath(Path(value).expanduser()))
    except RuntimeError:
        raise UserError(f"{variable}={short_repr(value)}: there is no such user's home folder; give the full "
                        "path.") from None
    _utf8(str(path), variable)  # the default's or a `~`'s home folder may be what is not UTF-8: setting it is the fix
    if made_here:
        _no_control_character(path, variable)
        if path.resolve() == Path(path.anchor or "/").resolve():  # ORCH_HOME made runs.db in /, ORCH_CACHE catalog/
            raise UserError(f"{variable} is {path}, the file system's root: set it to a folder of orch's own (the "
                            f"default is {default}).")
    return path


def dangling_link(path: Path | str) -> str | None:
    """What a path that is a link to nothing is, as a message says it; None for any other path. Such a dataset was
    said not to exist, "did you mean" its own name (the link is listed in its folder)."""
    if not os.path.islink(path) or os.path.exists(path):
        return None
    return f"is a link to '{os.readlink(path)}', which does not exist: fix or remove the link"


def input_file(path: Path | str, what: str, fix: str) -> Path:
    """A file a command reads, there and not a folder; `fix` says where one comes from. os.path, not Path: False for
    a name too long for the file system, where Path's methods raise."""
    if os.path.isfile(path):
        return Path(path)
    if loop := symlink_loop(path, what):
        raise loop
    if link := dangling_link(path):
        raise UserError(f"{what} '{path}' {link}.")
    state = ("is a folder, not a file" if os.path.isdir(path) else
             "is not a regular file (a device or a pipe)" if os.path.exists(path) else "does not exist")
    raise UserError(f"{what} '{path}' {state}: {fix}")


class UnreadableFile(UserError):
    """A text file read_text cannot read: what is wrong (`problem`), and the fix for a file the user keeps. A caller
    whose file is orch's own copy (a SkyPilot catalog) names its fix instead: "save it as UTF-8" was said of one."""

    def __init__(self, problem: str, fix: str = ""):
        super().__init__(f"{problem}: {fix}" if fix else f"{problem}.")
        self.problem = problem


def read_text(path: Path | str, what: str = "file") -> str:
    """A text file's contents as UTF-8, without the byte-order mark Windows editors start it with (left in, it became
    part of a CSV's first column name or a JSON syntax error); a missing, unreadable or non-UTF-8 file is the user's
    to fix."""
    path = Path(path)
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        # a pipe waits forever for a writer, /dev/zero never ends: neither is a file to read whole
        raise UnreadableFile(f"{what} '{path}' is not a regular file (a device or a pipe)", "give a file.")
    try:
        data = path.read_bytes()
        bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
        return data[len(bom):].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{what} '{path}' is not UTF-8 text (byte {exc.start + len(bom)})",
                             "save it as UTF-8.") from None
    except FileNotFoundError:
        raise UnreadableFile(f"{what} '{path}' does not exist") from None
    except IsADirectoryError:
        raise UnreadableFile(f"{what} '{path}' is a folder, not a file") from None
    except OSError as exc:
        raise symlink_loop(path, what) or UnreadableFile(f"cannot read {what} '{path}': {exc.strerror or exc}") \
            from None


# Values YAML aliases (`*name`) may add to a file: far past any config's reuse of a block (`<<: *base` a few times)
MOST_ALIASED_VALUES = 10_000


class AliasesTooLarge(yaml.composer.ComposerError):
    """A file whose aliases stand for more than MOST_ALIASED_VALUES values."""


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml's safe loader, except that a key given twice in one mapping is an error: PyYAML silently keeps the last,
    so `learning_rate: 1e-4` ten lines above `learning_rate: 1` would train at 1. And a file whose aliases stand for
    more than MOST_ALIASED_VALUES values is refused as it is composed: 319 bytes of ten lists naming ten lists, seven
    deep, stand for ten million values, which every check that walked or printed them expanded (seconds to minutes,
    gigabytes)."""

    underscores_are_digits = False  # `1_000`: text to YAML 1.2, refused in orch's own files (_other_number)

    def __init__(self, stream):
        super().__init__(stream)
        self._values_in: dict[yaml.Node, int] = {}  # each node composed: the values it stands for, aliases expanded
        self._aliased_values = 0

    def compose_node(self, parent, index):
        alias = self.peek_event() if self.check_event(yaml.AliasEvent) else None
        node = super().compose_node(parent, index)
        if alias is None:
            children = node.value if isinstance(node, yaml.SequenceNode) else \
                [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []
            # a child not yet counted is an alias to a node still being composed (`&a [*a]`): one value
            self._values_in[node] = 1 + sum(self._values_in.get(child, 1) for child in children)
            return node
        self._aliased_values += self._values_in.get(node, 1)
        if self._aliased_values > MOST_ALIASED_VALUES:
            raise AliasesTooLarge(None, None, f"YAML aliases expand past {MOST_ALIASED_VALUES} values",
                                  alias.start_mark)
        return node

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be overridden, by design
                self._merged_once(value_node)
                continue
            key = self.construct_object(key_node, deep=True)
            named = f"`{key}` " if isinstance(key, str) else ""  # a value, or a list's item, said with its key
            items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            if problem := next(filter(None, map(self._other_number, items)), None):
                raise OtherNumber(None, None, named + problem, value_node.start_mark)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {short_repr(key)}", key_node.start_mark)
        return super().construct_mapping(node, deep)

    def _merged_once(self, merged) -> None:
        """The mappings `<<:` merges (one, or a list of them) give each key once among them: PyYAML flattens them
        into the mapping unchecked, so `<<: {lora_r: 4, lora_r: 64}` trained at 64, and `<<: [{micro_batch: 4},
        {micro_batch: 2}]` at 2 (the YAML merge spec says the first wins) with nothing said."""
        seen = set()
        for mapping in merged.value if isinstance(merged, yaml.SequenceNode) else [merged]:
            if not isinstance(mapping, yaml.MappingNode):
                continue  # the base constructor says what `<<:` takes
            self.construct_mapping(mapping, deep=True)  # its own keys once, and its own merges
            for key_node, _ in mapping.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {short_repr(key_node.value)} among the mappings `<<:` merges",
                        key_node.start_mark)
                seen.add(key_node.value)

    def _other_number(self, node) -> str | None:
        """What is wrong with a number YAML 1.1 reads as another than its digits say, or None: `0100` is octal 64,
        `1:30` base 60 (90), `0x1000` and `0b11` hex and binary, `1_000` a thousand. YAML 1.2 reads `0100` as 100 and
        `1:30` and `1_000` as text, and the flags refuse hex and `_` (`--seq-len 0x10`, `--seq-len 1_024`), so each is
        refused, said as written, with how to write it."""
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (_INT, _FLOAT):
            return None
        text, digits = node.value, node.value.lstrip("+-").replace("_", "")
        plain = text.replace("_", "")
        if node.tag == _FLOAT and (near_zero := _too_near_zero(plain)):
            return near_zero
        if "_" in text and (_PLAIN_WHOLE.fullmatch(plain) or node.tag == _FLOAT and ":" not in text):
            if self.underscores_are_digits:
                return None
            return (f"{text} has _ between its digits, which YAML 1.2 reads as text: write it with the digits alone "
                    f"({plain}), as the flags take it, or quote it if it is text")
        if node.tag == _FLOAT and ":" not in text or _PLAIN_WHOLE.fullmatch(text):
            return None
        try:
            read = getattr(super(), "construct_yaml_float" if node.tag == _FLOAT else "construct_yaml_int")(node)
        except ValueError:  # `0800`: no octal, no number at all to YAML 1.1
            read = None
        as_read = "" if read is None else f" ({read:g})" if isinstance(read, float) else f" ({read})"
        if ":" in text:
            return (f"{text} is a base-60 number to YAML 1.1{as_read}: write it with the digits 0-9, or quote it if "
                    "it is text (a time)")
        if digits[:2].lower() in ("0x", "0b"):
            base = "hexadecimal" if digits[1] in "xX" else "binary"
            return f"{text} is {base} to YAML 1.1{as_read}: write it with the digits 0-9"
        reads = f"as octal{as_read}" if read is not None else "as text (and as octal where the digits are 0-7)"
        return (f"{text} has a leading zero, which YAML 1.1 reads {reads}: write it without the zero "
                f"({text[0] if text[0] in '+-' else ''}{int(digits)}), or quote it if it is text")

    def construct_yaml_int(self, node):
        """An int, unless written as OtherNumber says: a value with no key (`--set seq_len=010`) or deeper than a
        mapping's values and their lists, which construct_mapping says with its key."""
        if problem := self._other_number(node):
            raise OtherNumber(None, None, problem, node.start_mark)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node):
        if problem := self._other_number(node):
            raise OtherNumber(None, None, problem, node.start_mark)
        return super().construct_yaml_float(node)

    def construct_yaml_timestamp(self, node):
        """A date or time as WrittenDate or WrittenDatetime: said as the file writes it."""
        value = super().construct_yaml_timestamp(node)
        if isinstance(value, datetime.datetime):
            value = WrittenDatetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                                    value.microsecond, value.tzinfo)
        else:
            value = WrittenDate(value.year, value.month, value.day)
        value.written = node.value
        return value


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


def _too_near_zero(text: str) -> str | None:
    """Why a float's text reads as 0 only by underflow (`1e-400`, TooNearZero), or None."""
    try:
        number_as_written(text, float(text))
    except TooNearZero as exc:
        return str(exc)
    except ValueError:  # `.inf`, `.nan`: YAML's own words, read by its constructor
        pass
    return None
_PLAIN_WHOLE = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")  # a whole number YAML 1.1 and 1.2 read alike


class ForeignConfigLoader(UniqueKeyLoader):
    """Another trainer's config, as that trainer (PyYAML) reads it: `sequence_len: 2_048` is 2048 to axolotl."""

    underscores_are_digits = True


class OtherNumber(yaml.constructor.ConstructorError):
    """A number YAML 1.1 reads as another than the one written (UniqueKeyLoader._other_number)."""


class NumberNotAsWritten(UserError):
    """parse_yaml's error for an OtherNumber: `--set` says it as it is, not as text to quote."""


class _Written:
    """A YAML date or time (`name: 2024-01-01`), which no orch setting takes, with the text the file wrote: a message
    says it so, not as Python's repr (`datetime.date(2024, 1, 1)`)."""

    written = ""

    def __str__(self) -> str:
        return self.written

    __repr__ = __str__


class WrittenDate(_Written, datetime.date):
    pass


class WrittenDatetime(_Written, datetime.datetime):
    pass


class _Dumper(yaml.SafeDumper):
    """yaml's safe dumper, reading numbers as UniqueKeyLoader reads them: text that loader takes for a number is
    written quoted. A bench point's id, `091967168166`, was written plain as a job's name, and orch refused the file
    it had written for its leading zero."""


for _reads_numbers in (UniqueKeyLoader, _Dumper):
    # YAML 1.1, which PyYAML reads, takes `1e-4` and `5e9` as text (its floats need a dot and a signed exponent);
    # YAML 1.2 and every trainer config in the field (HF, axolotl, LLaMA-Factory) mean numbers: read as numbers here
    _reads_numbers.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"))
    # A zero-padded whole number that is no octal (`0800`) was text to YAML 1.1, where `0700` was a number: both are
    # numbers here, so that both are said as OtherNumber says them
    _reads_numbers.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?0[0-9_]+$"), list("-+0"))


def dump_yaml(data, **options) -> str:
    """YAML text of `data` that orch reads back as it was (`options`: yaml.dump's, such as sort_keys)."""
    return yaml.dump(data, Dumper=_Dumper, **options)


UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", UniqueKeyLoader.construct_yaml_int)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float", UniqueKeyLoader.construct_yaml_float)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", UniqueKeyLoader.construct_yaml_timestamp)


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """`at line L, column C: problem`, one line: PyYAML's own messages span several. A character YAML does not
    allow (a NUL of a file saved as UTF-16, without its byte-order mark) is said with the fix, where PyYAML spoke of
    `special characters` in "<unicode string>"."""
    if isinstance(exc, yaml.reader.ReaderError):
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        utf16 = " (a file saved as UTF-16 holds one beside every letter)" if code == 0 else ""
        return (f" at character {exc.position + 1}: it holds the control character U+{code:04X}{utf16}, which YAML "
                "does not allow: save it as UTF-8 text without it")
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
    if problem == "could not find expected ':'":  # PyYAML reads a plain key of at most 1024 characters
        problem += " (a key without its colon, or one longer than 1024 characters)"
    return f"{where}: {problem}"


def unreadable_value(exc: ValueError) -> str:
    """What Python refused while turning a value into a number or date, in the user's terms (its own advice for a
    number of over 4300 digits is to change a Python setting)."""
    if "integer string conversion" in str(exc):
        return "a number of thousands of digits, too long to read"
    return str(exc)


def parse_yaml(text: str, what: str, loader: type[UniqueKeyLoader] = UniqueKeyLoader):
    """YAML text (a file's or a flag's) through the duplicate-refusing safe loader. A value PyYAML recognises but
    Python cannot hold (`2001-02-30`, a 5000-digit number) is refused like any other bad value."""
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - UniqueKeyLoader is a SafeLoader
    except OtherNumber as exc:  # said with where it is in a file; a flag's value is all one line
        where = yaml_error_text(exc) if "\n" in text.strip() else f": {exc.problem}"
        raise NumberNotAsWritten(f"{what}{where}.") from None
    except AliasesTooLarge as exc:  # valid YAML, too large to read
        raise UserError(f"{what}{yaml_error_text(exc)}: write the values out.") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{what} is not valid YAML{yaml_error_text(exc)}.") from None
    except RecursionError:
        raise UserError(f"{what} {TOO_DEEP}") from None
    except ValueError as exc:
        raise UserError(f"{what} holds a value that cannot be read ({unreadable_value(exc)}): check it.") from None


def repeated(names) -> list[str]:
    """The names listed more than once, sorted: a CSV header that names a column twice is read with the last one's
    values (csv, pandas), silently."""
    counts = collections.Counter(names)  # names.count() per name: 100,000 columns took minutes
    return sorted(name for name, count in counts.items() if count > 1)


def parse_json(text: str, what: str):
    """JSON text with a key given twice in one object refused (json keeps the last silently, as PyYAML does), and
    NaN / Infinity, which are not JSON, and a number that reads as 0 only by underflow (TooNearZero) refused too."""
    def unique(pairs):
        seen = set()  # keys.count() per key: 100,000 keys took minutes
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {short_repr(key)}")
            seen.add(key)
        return dict(pairs)

    def no_constant(name):
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(text, object_pairs_hook=unique, parse_constant=no_constant,
                          parse_float=lambda number: number_as_written(number, float(number)))
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
    except ValueError as exc:
        raise UserError(f"{what}: {unreadable_value(exc)}.") from None
    except RecursionError:
        raise UserError(f"{what} {TOO_DEEP}") from None


# A job, sweep, trainer config or hardware file is a few KB, comments and all; PyYAML's pure-Python reader takes
# seconds a MiB (a 60 MB job was read for 38 s, then accepted), so a file past this is no config: refused unread
MOST_CONFIG_BYTES = 2**20


# the dataset files the trainer reads (trainer/data_formats.FILE_KINDS) that no config is: given where a job, sweep,
# hardware file or trainer config goes, "not valid YAML at line 2" said nothing of the mix-up
DATASET_SUFFIXES = (".jsonl", ".parquet", ".csv")


def load_yaml(path: Path | str, what: str = "file", loader: type[UniqueKeyLoader] = UniqueKeyLoader,
              names_data: str = ""):
    """A YAML file, read as UTF-8, duplicate keys refused, and refused unread past MOST_CONFIG_BYTES. A `.json` one is
    read as JSON (YAML reads it too, but its errors called a JSON config not valid YAML); a dataset's is refused,
    with `names_data` saying where such a config names its data (a job's `dataset:`)."""
    if (suffix := Path(path).suffix.lower()) in DATASET_SUFFIXES:
        raise UserError(f"{what} '{path}' is a {suffix} file, a dataset's kind: give a {what} (YAML or JSON)"
                        f"{names_data}.")
    if os.path.isfile(path) and (size := os.path.getsize(path)) > MOST_CONFIG_BYTES:
        raise UserError(f"{what} '{path}' is {size / 2**20:.1f} MiB, and a config is a few KB (at most "
                        f"{MOST_CONFIG_BYTES // 2**20} MiB read): check that it is the file you meant.")
    if str(path).lower().endswith(".json"):
        return parse_json(read_text(path, what), f"{what} '{path}'")
    return parse_yaml(read_text(path, what), f"{what} '{path}'", loader)


def safe_name(name, what: str = "name") -> str:
    """A name that can become a folder or a table cell as it is: nothing like `../x`, `/etc`, `-x` or `[red]`."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise UserError(f"{what} {short_repr(name)} is not allowed: use {SAFE_NAME_RULE}.")
    return name


def name_from_stem(stem: str) -> str:
    """A safe name made from a file's stem (a job called by its file name): unsafe characters become `-`."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "-", stem).strip("._+-")[:100]
    return cleaned or "job"


YAML_SUFFIXES = (".yaml", ".yml")  # a job's, a task's


def file_suffix(path: Path, what: str, suffixes: tuple[str, ...]) -> None:
    """An output's name ends in one of `suffixes` (any case), the formats it is written in: CSV was written under
    `x.parquet`, a task's YAML under `task.txt`."""
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{what} takes a {listed(suffixes, 'or')} file name, got '{path}'.")


def output_file(path: Path | str, what: str = "--out", inputs: tuple[Path, ...] = (),
                force: bool | None = None, suffixes: tuple[str, ...] = (), read_folders: tuple[Path, ...] = ()) -> Path:
    """An output file orch is about to write: its folder must exist and be writable, it must not be a folder or a
    device, and it must not be one of the command's own `inputs` (writing would destroy what is being read).
    Checked before any work, so an hour of benchmarking never ends in 'no such directory'. A command with a --force
    flag passes it as `force`: an existing file (a job, a trace, an export kept from before) is then replaced only
    with it. `suffixes`: the names its format may take; `read_folders`: folders the command reads whole (a model's,
    a dataset's), which no output may go into."""
    path = Path(_utf8(str(path), what, "give a path written in UTF-8"))
    _no_control_character(path, what)
    if str(path) == "-":  # a file named `-` and a `--files` folder beside it were written
        raise UserError(f"{what} - is no file name here: standard output is not written through {what}; give a "
                        "file name (./- for a file named -).")
    fits_the_file_system(path, what)
    if loop := symlink_loop(path, what):  # said to exist (`--force` to replace it), or a folder to create first
        raise loop
    if path.is_dir():
        raise UserError(f"{what} '{path}' is a folder: give a file name.")
    if path.exists() and not path.is_file():
        raise UserError(f"{what} '{path}' is not a regular file (a device or a pipe): give a file name.")
    if any(same_file(path, Path(given)) for given in inputs):
        raise UserError(f"{what} '{path}' is one of this command's input files: write to another file.")
    outside_read_folders(path, what, read_folders)  # a model folder's config.json, a file among a dataset folder's
    if suffixes:  # after what the name clashes with: `--out DATASET` is said to be the data, not a wrong suffix
        file_suffix(path, what, suffixes)
    # a link is written through: the folder its target names is the one that must take the file (a dangling link's
    # was found missing only at the write, after the work)
    landing = resolved(path, what) if path.is_symlink() else path
    _writable_folder(landing.parent if str(landing.parent) else Path("."), what, path)
    if force is False and (path.exists() or path.is_symlink()):
        raise UserError(f"{what} '{path}' already exists: pass --force to replace it, or choose another file.")
    if landing.exists() and not os.access(landing, os.W_OK):
        raise UserError(f"{what} '{path}' is read-only: make it writable, or choose another file.")
    if is_sqlite(landing):  # `orch import --out ~/.local/share/orch/runs.db --force` replaced every run record
        raise UserError(f"{what} '{path}' is an SQLite database (orch keeps its runs, jobs and results in such "
                        "files), and no orch output is one: choose another file.")
    return path


SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file (sqlite.org/fileformat.html)


def is_sqlite(path: Path) -> bool:
    """Whether the file begins as an SQLite database does."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:  # not there, a folder, unreadable: the checks above say what they must
        return False


_IN_A_NAME = re.compile(r"[\t\n]|" + _CONTROL.pattern)  # a tab or line break too: lists of files split on them


def holds_control(name: str) -> bool:
    """A control character in a one-line name, a tab or a line break too (printable() keeps those in messages)."""
    return _IN_A_NAME.search(name) is not None


def _no_control_character(path: Path, what: str) -> None:
    """A file or folder orch makes has no control character in its name: an ESC styled the terminal at every later
    `ls`, a line break split every script's list of files, U+202E showed the name reversed."""
    if found := _IN_A_NAME.search(str(path)):
        raise UserError(f"{what} {short_repr(str(path))} holds a control character ({repr(found.group())[1:-1]}): "
                        "name it with printable characters.")


def fits_the_file_system(path: Path, what: str) -> None:
    """Each name in the path at most the file system's longest (255 bytes on most), and the whole path within the
    system's limit: past them stat() itself fails, and the user read the system's bare `File name too long`."""
    try:
        longest = os.pathconf(next((p for p in path.parents if p.is_dir()), Path(".")), "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    if long := next((part for part in path.parts if len(os.fsencode(part)) > longest), None):
        raise UserError(f"{what}: the name {short_repr(long)} is longer than the {longest} bytes a file system "
                        "takes: give a shorter one.")
    if len(os.fsencode(str(path))) >= MOST_PATH_BYTES:
        raise UserError(f"{what} {short_repr(str(path))}: the path is longer than the {MOST_PATH_BYTES} bytes the "
                        "system takes: give a shorter one.")


MOST_PATH_BYTES = 4096  # Linux's PATH_MAX


def read_folder_holding(path: Path, read_folders) -> Path | None:
    """The one of `read_folders` (folders a command reads whole: a model's, a dataset's) that `path` is, or is
    inside, or None."""
    return next((Path(folder) for folder in read_folders if Path(folder).is_dir()
                 and (same_file(path, Path(folder)) or _inside(path, Path(folder)))), None)


def outside_read_folders(path: Path, what: str, read_folders) -> None:
    """An output (a file, or a folder orch fills) is no folder the command reads whole, nor in one: its files were
    replaced, or read as data by the next run."""
    if (folder := read_folder_holding(path, read_folders)) is not None:
        raise UserError(f"{what} '{path}' is {'' if same_file(path, folder) else 'inside '}'{folder}', which this "
                        "command reads: write outside it.")


def _inside(path: Path, folder: Path) -> bool:
    try:
        return resolved(folder) in resolved(path).parents
    except (OSError, UserError):  # a loop of links: said of the path where it is read
        return False


def same_file(a: Path, b: Path) -> bool:
    """The same file, existing (a link or another spelling of it) or about to be made by both names. A loop of links in
    either is the user's to fix (resolved)."""
    try:
        return resolved(a) == resolved(b) or (a.exists() and b.exists() and a.samefile(b))
    except OSError:  # a name too long for a path: not one of the inputs
        return False


def missing_folders(folder: Path) -> list[Path]:
    """The folders making `folder` would make: it and its missing parents, deepest first (what to remove again when
    a refusal is to leave nothing behind)."""
    made = []
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            break
        made.append(path)
    return made


def output_folder(path: Path | str, what: str = "--out", parents: bool = False,
                  read_folders: tuple[Path, ...] = ()) -> Path:
    """An output folder orch will create or fill: it must be a folder, or not exist yet in a writable folder that
    does (`parents`: under one, for a default path orch makes whole): a missing parent is a typo, refused as every
    output file's is. A path that is not UTF-8 is refused: the trainer trained a whole job into one, then failed
    saving its tokenizer there. `read_folders`: folders the command reads whole (a job's dataset or model folder),
    which the output may neither be nor go into: its files were read as data by the next run."""
    path = Path(_utf8(str(path), what, "give a path written in UTF-8"))
    _no_control_character(path, what)
    if str(path) == "-":  # a folder named `-`, as awkward to remove as to find
        raise UserError(f"{what} - is no folder name here: give a folder name (./- for a folder named -).")
    outside_read_folders(path, what, read_folders)
    fits_the_file_system(path, what)
    if loop := symlink_loop(path, what):  # said to be a folder that does not exist, or to exist as a file
        raise loop
    if path.exists() and not path.is_dir():
        kind = "a file" if path.is_file() else "a device or a pipe"  # /dev/full was said to be "a file"
        raise UserError(f"{what} '{path}' is {kind}, not a folder: give a folder.")
    if path.is_dir() and path.resolve() == Path(path.resolve().anchor):  # `report --out /` wrote report.md into /
        raise UserError(f"{what} '{path}' is the file system's root: give a folder of its own (./out).")
    if path.is_symlink() and not path.exists():  # a dangling link: making the folder failed with "File exists"
        raise UserError(f"{what} '{path}' is a link to '{os.readlink(path)}', which does not exist: remove the link "
                        "or give another folder.")
    if path.is_dir():  # probed as a new file's folder is: `report --out /proc` did the work, then failed writing
        _writable_folder(path, what, path)
        return path
    parent = next((p for p in path.parents if p.exists()), Path(".")) if parents else path.parent
    _writable_folder(parent, what, path)
    return path


def _writable_folder(folder: Path, what: str, path: Path) -> None:
    if not folder.exists():
        raise UserError(f"{what} '{path}': folder '{folder}' does not exist; create it first.")
    if not folder.is_dir():
        raise UserError(f"{what} '{path}': '{folder}' is a file, not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{what} '{path}': folder '{folder}' is not writable.")
    try:  # access() says yes to root everywhere: /proc, a read-only mount failed only after the work, at the write
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".orch-write-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{what} '{path}': folder '{folder}' takes no new file ({exc.strerror}): choose another "
                        "folder.") from None
