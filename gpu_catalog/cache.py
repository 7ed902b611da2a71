"""orch's cache folder (ORCH_CACHE, else ~/.cache/orch): things that are slow to make and safe to lose. Built random
models live here, and the parsed cloud catalog in a compact form, so a plan reads SkyPilot's CSVs (tens of thousands
of rows for the large clouds) only when one of them changed."""

import dataclasses
import functools
import hashlib
import json
import math
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path

from gpu_catalog import checks


def cache_dir() -> Path:
    return checks.env_path("ORCH_CACHE", "~/.cache/orch", made_here=True)


def _key(sources: list[Path]) -> str:
    """The sources' names, times and sizes; a source that is there but no file (a pipe) keys a build of its own,
    which then refuses it, rather than the cache of a catalog without it."""
    stamp = [f"{p}:{p.stat().st_mtime_ns}:{p.stat().st_size}" if p.is_file() else f"{p}:not a file"
             for p in sorted(sources) if p.exists()]
    return hashlib.sha1("\n".join(stamp).encode()).hexdigest()[:16]


def cached(sources: list[Path], build: Callable[[], list], item_type: type) -> list:
    """`build()`, a list of `item_type` (a dataclass), or what it returned last time none of `sources` changed. A
    cache that cannot be read or written, or holds anything else, is simply rebuilt: it never makes a plan fail. Only
    a regular file is read (a pipe in its place waited forever, a link to /dev/zero filled memory); the rebuilt entry
    replaces whatever was there. Kept as JSON (a pickle put there ran its code in the next plan), with a digest of
    its items: one edited by hand (a GPU of 0 TFLOPS, a price of -5) failed plans or dropped offers unsaid."""
    path = cache_dir() / "catalog" / f"{_key(sources)}.json"
    try:
        if path.is_file() and isinstance(kept := json.loads(path.read_bytes()), dict) \
                and kept.get("digest") == _digest(items := kept.get("items")) and isinstance(items, list):
            return [_typed(item_type, item) for item in items]
    except Exception:  # noqa: BLE001 - missing, stale, truncated or from another version: build it again
        pass
    value = build()
    items = [dataclasses.asdict(item) for item in value]
    write_whole(path, json.dumps({"digest": _digest(items), "items": items}).encode())
    return value


def _digest(items) -> str:
    """What the items are, as one canonical JSON text: the same however the file was spaced."""
    return hashlib.sha256(json.dumps(items, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _typed(kind, data):
    """`data` read back from JSON as `kind`: a dataclass from its fields (nested ones too), a tuple from a list, a
    number, text or a flag as itself, each of its field's type; TypeError or KeyError for data of another shape (an
    edited cache's price of 'abc' failed every plan that compared prices)."""
    if dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{f.name: _typed(hints[f.name], data[f.name]) for f in dataclasses.fields(kind) if f.init})
    if typing.get_origin(kind) is tuple:
        item_kind = typing.get_args(kind)[0]
        return tuple(_typed(item_kind, item) for item in _of(list, data))
    if isinstance(kind, types.UnionType):  # `float | None`
        options = typing.get_args(kind)
        if data is None and type(None) in options:
            return None
        return _typed(next(option for option in options if option is not type(None)), data)
    if kind is float:  # JSON's whole numbers read back as ints; its NaN (json reads it) is no price
        if type(data) not in (int, float) or not math.isfinite(data):
            raise TypeError("a finite number expected")
        return float(data)
    return _of(kind, data)


def _of(kind: type, data):
    if type(data) is not kind:
        raise TypeError(f"{kind.__name__} expected")
    return data


@functools.cache
def _hints(kind) -> dict:
    return typing.get_type_hints(kind)


def write_whole(path: Path, data: bytes) -> None:
    """Through a temporary file and a rename, so a reader beside this process (another plan, another test worker)
    never sees half an entry. A cache that cannot be written only costs the next reader another build."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        pass
