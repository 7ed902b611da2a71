"""A local model folder's weight files, judged as transformers will load them, before torch does: a folder with
none, or with a safetensors file cut short or damaged, passed `orch plan` and failed the trainer with exit 1
(transformers' OSError or the safetensors library's error, a traceback in error.log, the output folder left behind)."""

import json
import os
from collections.abc import Iterator
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError

# the files transformers loads a model's weights from, one file or shards listed in an index
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
WEIGHT_FILES = (*SAFETENSORS_FILES, "pytorch_model.bin", "pytorch_model.bin.index.json")
SHARD_KINDS = (".safetensors", ".bin")  # what an index's shards are: files of the model folder itself


def weights_problem(folder: Path) -> str | None:
    """Why the model in `folder` has no weights transformers can load, or None: no weight file, an index that lists
    no shard or one that is not there, or a safetensors file whose header or data does not read."""
    found = next((folder / name for name in WEIGHT_FILES if os.path.lexists(folder / name)), None)
    if found is None:
        return (f"model folder '{folder}' holds no weights (none of {', '.join(WEIGHT_FILES)}): save the model there "
                "with save_pretrained, or give its hub id")
    try:  # a pipe, a folder, a broken link or /dev/zero in its name's place: said as what it is, not as no weights
        checks.input_file(found, "weight file", "copy the model's file there")
    except UserError as exc:
        return str(exc).rstrip(".")
    try:
        shards = _shards(found)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return f"{found} is not a weight index (JSON with a weight_map): save the model again with save_pretrained"
    if not shards:
        return f"{found} lists no weight file: save the model again with save_pretrained"
    if outside := next((shard for shard in shards if shard.parent != found.parent or shard.suffix not in SHARD_KINDS),
                       None):  # `../../x.safetensors`, `/etc/passwd`: read here, and not in the folder a VM mounts
        named = outside.name if outside.parent == found.parent else str(outside)
        return (f"{found.name} lists {checks.short_repr(named)}, which is no {' or '.join(SHARD_KINDS)} file of the "
                "model folder: save the model again with save_pretrained")
    for shard in shards:
        if not shard.is_file():
            return f"{shard}, which {found.name} lists, is not there: copy the whole model folder"
        problem = _safetensors_problem(shard) if shard.suffix == ".safetensors" else _torch_file_problem(shard)
        if problem:
            return f"{shard} {problem}: copy it again, or save the model again with save_pretrained"
    return None


def _torch_file_problem(path: Path) -> str | None:
    """Why a .bin weight file is no file torch.save writes, from its first bytes: a zip archive (torch 1.6 on) or a
    pickle (the legacy format). Any other bytes passed `orch plan` and failed the trainer's load."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return None
    return "does not read as PyTorch weights (neither the zip archive nor the pickle torch.save writes)"


def _weight_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The first of `names` (WEIGHT_FILES, in transformers' order) that the folder holds."""
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _shards(found: Path) -> list[Path]:
    """The weight files an index lists, or the one weight file itself."""
    if not found.name.endswith(".index.json"):
        return [found]
    weight_map = json.loads(found.read_text(encoding="utf-8"))["weight_map"]
    return [Path(os.path.normpath(found.parent / name)) for name in sorted(set(weight_map.values()))]


def _safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file does not read, or None, from its header alone (the safetensors library checks the
    header and that its tensors cover the file exactly: one cut short fails here as it fails the load)."""
    from safetensors import safe_open  # no torch: the header is read, not the tensors

    if not os.access(path, os.R_OK):  # safe_open said "No such file or directory" of a file there to see
        return "cannot be read (no permission): make it readable"
    try:
        with safe_open(path, framework="numpy"):
            return None
    except Exception as exc:  # noqa: BLE001 - SafetensorError and whatever a file of other bytes raises
        return f"does not read as safetensors ({' '.join(str(exc).split())[:120]})"


def weight_shapes(folder: Path) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Each tensor's name and shape in a model folder's safetensors weights, read from their headers (weights_problem
    judged them first); none for .bin weights."""
    from safetensors import safe_open

    found = _weight_file(folder, SAFETENSORS_FILES)
    for shard in _shards(found) if found is not None else []:
        with safe_open(shard, framework="numpy") as weights:
            for name in weights.keys():  # noqa: SIM118 - safe_open is no mapping: keys() is its only listing
                yield name, tuple(weights.get_slice(name).get_shape())
