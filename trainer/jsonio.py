"""metrics.json written whole or not at all (a temp file renamed into place): a reader never sees half a file, even
when the process is killed mid-write. Plain Python, so the trainer can write it before torch is imported."""

import json
import os
from pathlib import Path


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
