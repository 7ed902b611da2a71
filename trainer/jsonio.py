"""metrics.json written whole or not at all (a temp file renamed into place): a reader never sees half a file, even
when the process is killed mid-write. Plain Python, so the trainer can write it before torch is imported.

The file is strict JSON: a value that is not a finite number (a diverged loss, a perplexity past a float's range) is
written as null. Python's NaN and Infinity are no JSON, and the orchestrator refuses a run record holding them."""

import json
import math
import os
from pathlib import Path


def finite_or_null(value):
    """`value` with every NaN or infinite float inside it (in dicts, lists and tuples) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(item) for item in value]
    return value


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(finite_or_null(data), indent=2, default=str, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)
