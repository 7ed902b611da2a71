"""Where records come from: a local JSON, JSONL, Parquet or CSV file, a folder of them, or a dataset repository
(a Hugging Face dataset id, or a local folder laid out like one) with a config, a split and streaming.

Datasets resolve as `datasets.load_dataset` resolves them with the arguments a user would pass by hand, so a local
folder in the hub layout (README.md with `configs:`) reads exactly as the same repository would from the Hub. A hub
dataset streams when the run is bounded (`train_tokens` or `max_steps`): only the records the run needs are read, and
a large one is never downloaded whole.

Local JSON and JSONL files (one, or a folder's split of them) are then read with Python's json module: pyarrow's JSON
reader mishandles a list of turns with a null among them (26.0.1 builds a corrupt column that crashes the process
when read back, a segfault and no message; 25.0 drops the null and shifts the turns of later records). Read as plain
JSON, such a record is refused with its line like any other malformed one.
"""

import contextlib
import csv
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from gpu_catalog import checks
from trainer.config import BYTES_PER_TOKEN_ESTIMATE, WHOLE_SPLIT, JobConfig, resolve_dataset
from trainer.data_formats import FILE_KINDS, SHAPE_COLUMNS, DataError, map_columns, read_columns, record_shape
from trainer.offline_names import dataset_unreachable

WIDEST_READ_WHOLE = 100  # columns of a CSV header read whole; a wider one is read for the trainer's (_csv_as_text)
FILE_KINDS_HINT = "use a .jsonl, .json, .parquet or .csv file (or a folder of them)"
READ_MARGIN = 2  # a streamed dataset is read to twice the text the run needs: tokens per byte vary by tokenizer


class Source(NamedTuple):
    """One dataset to read: a hub id or a local path, with the config and split to take."""

    name: str
    local: Path | None
    config_name: str | None
    split: str
    key: str = "dataset"  # the job's key that names it: a broken eval set was said to be the `dataset`
    columns: frozenset[str] = frozenset(SHAPE_COLUMNS)  # those the trainer reads (data_formats.read_columns)


def file_kind(path: Path) -> str | None:
    """The `datasets` builder a local file is read with (json, parquet, csv), by its suffix; None for any other."""
    return FILE_KINDS.get(path.suffix.lower())


def folder_kind(suffix: str) -> str | None:
    """The builder `datasets` reads a file of this suffix with when it reads a folder: orch's kinds, and any other it
    knows (text for .txt, imagefolder for .png ...), or None for a file it passes over (README.md, LICENSE). Its
    table is looked up only for a folder that holds such other files, so planning a usual folder imports nothing."""
    suffix = suffix.lower()
    if suffix in FILE_KINDS or suffix in ("", ".md"):
        return FILE_KINDS.get(suffix)
    from datasets.packaged_modules import _EXTENSION_TO_MODULE

    module = _EXTENSION_TO_MODULE.get(suffix)
    return module[0] if module else None


def visible_paths(folder: Path) -> list[Path]:
    """Every path under a dataset folder that `datasets` looks at, sorted: hidden files and `__` folders are left
    out, as it leaves them out, and links to folders are not followed. An OSError (a folder that cannot be read
    through) is the caller's to say: Path.rglob passed over it, and a folder of mode 000 "held no data file"."""
    def refuse(exc: OSError):
        raise exc

    found = []
    for root, folders, files in os.walk(folder, onerror=refuse):
        folders[:] = [name for name in folders if not name.startswith((".", "__"))]
        found += [Path(root) / name for name in (*folders, *files) if not name.startswith((".", "__"))]
    return sorted(found)


def unreadable_folder(folder: Path, exc: OSError) -> str:
    """A dataset folder whose files cannot all be looked at (`dataset: /proc`), said of the folder."""
    return (f"folder {folder} cannot be read through ({exc.strerror}: {exc.filename}): give a folder that holds "
            "the data files")


READ_PROBE_BYTES = 4096  # what is read of a data file to find it unreadable, empty, or not UTF-8 before any work


def file_head_problem(path: Path) -> str | None:
    """A data file of a kind orch reads that cannot be opened, is empty, or (JSON, CSV) does not begin as UTF-8 text:
    found from its first READ_PROBE_BYTES, before a plan estimated it from its size or a launch mounted it. A
    character cut by the probe's end is no fault; a bad byte at a whole file's end is one."""
    try:
        with open(path, "rb") as f:
            head = f.read(READ_PROBE_BYTES)
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror}"
    if not head:
        return f"{path} is empty"
    if file_kind(path) != "parquet":
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if len(head) < READ_PROBE_BYTES or exc.start < len(head) - 4:
                return f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
    return None


def folder_problem(folder: Path) -> str | None:
    """A folder with no file `datasets` reads (its own "No (supported) data files found", said only once the trainer
    ran), or whose data files are of more than one kind: `datasets` reads a folder as its commonest kind and skips
    the other files without a word, so two notes.txt beside a .jsonl make it a text dataset, and two .png an image
    one. A README that lists `configs:` (the hub layout) names each config's files itself, so it may mix kinds.
    Hidden files and `__` folders are left out, as `datasets` leaves them out. A README.md that is no file (a pipe,
    a device) is refused: reading it (here, and `datasets` for its card) waited for ever."""
    readme = folder / "README.md"
    if os.path.lexists(readme) and not readme.is_file():
        return (f"folder {folder} holds README.md, a pipe, a device or a link to nothing rather than a file (the "
                "dataset card orch and `datasets` read): remove it, or make it a file")
    if (header := _card_header(folder)) is not None:
        problem, hub_layout = _card_problem(folder, header)
        if problem is not None or hub_layout:
            return problem
    try:
        files = [path for path in visible_paths(folder) if path.is_file()]  # walked once, for every check below
    except OSError as exc:  # `dataset: /proc`: a traceback of PermissionError
        return unreadable_folder(folder, exc)
    counts = Counter(path.suffix.lower() for path in files if folder_kind(path.suffix) is not None)
    if not counts:
        return f"folder {folder} holds no data file: {FILE_KINDS_HINT}"
    data_files = [path for path in files if path.suffix.lower() in FILE_KINDS]
    # `datasets` finds a folder's .jsonl, .json, .parquet and .csv files by their lower-case suffix alone: a.JSONL was
    # "No (supported) data files found", while the same file named alone was read
    if cased := next((path for path in data_files if path.suffix != path.suffix.lower()), None):
        return (f"folder {folder} holds {cased.relative_to(folder)}, whose suffix `datasets` reads in lower case only: "
                f"rename it {cased.with_suffix(cased.suffix.lower()).name}")
    found = ", ".join(f"{count} {suffix}" for suffix, count in sorted(counts.items()))
    if other := sorted(suffix for suffix in counts if suffix not in FILE_KINDS):
        # a folder of .txt trained (as lines of text) where one .txt was refused; a folder of .png failed in the run
        return (f"folder {folder} holds {', '.join(other)} files ({found}), which orch does not read as data: "
                f"{FILE_KINDS_HINT}")
    if len({folder_kind(suffix) for suffix in counts}) > 1:
        return (f"folder {folder} holds data files of more than one kind ({found}), and a folder is read as one kind "
                "only: keep one kind per folder, or name one file instead of the folder")
    return _split_names_problem(folder, data_files)


# a name `datasets` reads as a split's (its SPLIT_KEYWORDS as a word of a file's or folder's name): looked for first,
# so a usual folder never imports datasets to ask
_SPLIT_WORD = re.compile(r"(?:^|[-._ 0-9/])(?:train|training|validation|valid|dev|val|test|testing|eval|evaluation)"
                         r"(?:[-._ 0-9/]|$)")


def _split_names_problem(folder: Path, files: list[Path]) -> str | None:
    """Data `files` of `folder` that `datasets` would pass over: a folder with a file or folder named for a split
    (`train.jsonl`, `training/`) is read by those names alone, and the files beside them are left out unsaid (50 of
    3,050 rows trained)."""
    if not any(_SPLIT_WORD.search(str(path.relative_to(folder))) for path in files):
        return None
    from datasets.data_files import DataFilesDict, get_data_patterns

    patterns = get_data_patterns(str(folder))
    read = {Path(file).resolve() for split in DataFilesDict.from_patterns(patterns, base_path=str(folder)).values()
            for file in split}
    left = sorted(path.relative_to(folder) for path in files if path.resolve() not in read)
    if not left:
        return None
    named = sorted(path.relative_to(folder) for path in files if path.resolve() in read)
    more = f" and {len(left) - 1} more" if len(left) > 1 else ""
    return (f"folder {folder} holds {named[0]}, which `datasets` reads as a split by its name, and {left[0]}{more} "
            "beside it, which it would leave out unsaid: name every file for its split (train-1.jsonl, "
            "train-2.jsonl), or move the others out")


def _card_header(folder: Path) -> str | None:
    """The YAML header the folder's README.md opens with, which `datasets` reads as the dataset's card (a file only: a
    pipe's read waits); None where there is none."""
    if not (folder / "README.md").is_file():
        return None
    try:
        text = (folder / "README.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text.split("\n---", 1)[0].removeprefix("---") if text.startswith("---") else None


_HEADER_FIX = "fix the header, or remove README.md to read the folder's files as they are"


def _card_problem(folder: Path, header: str) -> tuple[str | None, bool]:
    """What `datasets` would stumble on in a README's YAML header, which it reads whatever the header holds: one that
    is no YAML (its bare "while parsing a flow sequence" named neither the file nor the line) or is nested too deep
    (a RecursionError traceback, under any key), or a `configs:` naming a config twice (the last one read unsaid);
    and whether the header lists `configs:` (the hub layout, whose configs name their files themselves)."""
    import yaml

    try:
        card = yaml.safe_load(header)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""  # the file's line: the header is line 1 on
        return (f"folder {folder}: its README.md's YAML header is not valid YAML{where} "
                f"({getattr(exc, 'problem', None) or 'unreadable'}): {_HEADER_FIX}"), False
    except RecursionError:  # hundreds of `[`: a traceback from plan, launch and the trainer alike
        return f"folder {folder}: its README.md's YAML header is nested too deeply to read: {_HEADER_FIX}", False
    configs = card.get("configs") if isinstance(card, dict) else None
    names = [entry.get("config_name", "default") for entry in configs if isinstance(entry, dict)] \
        if isinstance(configs, list) else []
    if twice := checks.repeated(map(str, names)):
        return (f"folder {folder}: its README.md's `configs:` names config {checks.short_repr(twice[0])} twice "
                "(`datasets` reads the last one unsaid): give each config its own config_name"), True
    return None, configs is not None


def one_file_problem(config: JobConfig, local: Path | None) -> str | None:
    """`dataset_config` and `dataset_split` pick a part of a dataset repository, and one file has none: set for one
    file, they would be ignored. A file is read as the default split, train, and a `train` written out cannot be
    told from the default, so only another split is refused."""
    if local is None or not local.is_file():
        return None
    keys = [f"`{key}` {value!r}" for key, value, default in (
        ("dataset_config", config.dataset_config, None),
        ("dataset_split", config.dataset_split, JobConfig.dataset_split)) if value != default]
    if not keys:
        return None
    them = "them" if len(keys) > 1 else "it"
    return (f"dataset {config.dataset} is one file, read whole, so {' and '.join(keys)} (a part of a dataset "
            f"repository) would be ignored: leave {them} out, or point `dataset` at a repository (a folder or a hub "
            f"id) that has {them}")


def csv_problem(path: Path, read: set[str]) -> str | None:
    """A CSV header that names a column the trainer reads (`read`, data_formats.read_columns) twice: `datasets`
    (pandas) reads the second as `name.1`, so every record trained on the first without a word; or a row with more
    or fewer fields than the header (an unquoted comma in a value), which pandas shifts into other columns or drops,
    also without a word; or a NUL byte, which pandas keeps in the text (a damaged or binary file, where a JSON
    file's would fail to parse unless written escaped). A file that cannot be read is left to the reader, which says
    why."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            if repeated := [name for name in checks.repeated(header) if name in read]:
                names = ", ".join(f"`{name}`" for name in repeated)
                return (f"{path}: the header names column {names} more than once, and only the first would be read: "
                        "rename or drop the repeat")
            for row in reader:
                if row and len(row) != len(header):
                    return (f"{path}, line {reader.line_num}: {len(row)} fields, and the header has {len(header)}: "
                            "quote each value that holds a comma, or fix the row")
                if any("\x00" in value for value in row):  # pandas keeps it in the text the model trains on
                    return (f"{path}, line {reader.line_num}: a NUL byte, which no text holds: the file is damaged "
                            "or not text; fix or drop the row")
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None


def _csv_headers_problem(paths: list[Path]) -> str | None:
    """A folder's CSV files with other columns than its first (`datasets` failed on pandas' or arrow's words, naming no
    file), or one that is empty (the first one's columns are how every file's cells are read as text)."""
    headers = {}
    for path in paths:
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                headers[path] = next(csv.reader(handle), None)
        except (OSError, UnicodeDecodeError, csv.Error):
            return None  # said by the reader, with its line
        if headers[path] is None:
            return f"{path} is empty: give it a header and rows, or remove it"
    first, *others = paths or [None]
    if other := next((path for path in others if headers[path] != headers[first]), None):
        return (f"{other}'s columns ({', '.join(headers[other])}) are not those of {first.name} "
                f"({', '.join(headers[first])}): a folder's CSV files are read as one table, so give them one header")
    return None


def _csv_files_problem(paths: list[Path], read: set[str]) -> str | None:
    """The first problem of a dataset's CSV files (its one file, or a folder's): each file's own (csv_problem), then
    their headers together."""
    return next(filter(None, (csv_problem(path, read) for path in paths)), None) or _csv_headers_problem(paths)


def _data_files(local: Path, suffix: str) -> list[Path]:
    """The files of one kind a local dataset reads: itself, or a folder's (of one kind, folder_problem has made
    sure)."""
    if not local.is_dir():  # a file, or /dev/null: the reader says what it is
        return [local] if local.is_file() and local.suffix.lower() == suffix else []
    return [path for path in visible_paths(local) if path.suffix.lower() == suffix and path.is_file()]


def _parquet_files_problem(paths: list[Path]) -> str | None:
    """A folder's Parquet files read as one table whose columns differ from its first's: in name or in kind (arrow's
    `Couldn't cast` or `Failed to parse`, naming no file; or, for text read as numbers, `datasets` cast a later file's
    numbers to the first's text, unsaid: 30,000 integers trained as text). Text is text however arrow stores it
    (string, large_string, dictionary-encoded), and a column of nulls only is cast to any kind."""
    if len(paths) < 2:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq  # only for a folder of Parquet files

    try:
        schemas = {path: pq.read_schema(path) for path in paths}
    except Exception:  # noqa: BLE001 - a file that is no Parquet: said by the reader, as before
        return None

    def kind(arrow_type) -> str:
        if pa.types.is_dictionary(arrow_type):
            arrow_type = arrow_type.value_type
        return "text" if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) else str(arrow_type)

    def columns(path: Path) -> dict[str, str]:
        return {field.name: kind(field.type) for field in schemas[path]}

    def said(path: Path) -> str:
        return ", ".join(f"{name} {shown}" for name, shown in columns(path).items())

    def alike(one: dict[str, str], other: dict[str, str]) -> bool:  # a column of nulls only is cast to any kind
        return one.keys() == other.keys() and all(one[n] == other[n] or "null" in (one[n], other[n]) for n in one)

    first, *others = paths
    if other := next((path for path in others if not alike(columns(path), columns(first))), None):
        return (f"{other}'s columns ({said(other)}) are not those of {first.name} ({said(first)}): a folder's Parquet "
                "files are read as one table, so give them the same columns, of the same kinds")
    return None


def dataset_problems(config: JobConfig, base_dir: Path, reach_hub: bool = True) -> list[str]:
    """What stops the datasets from being read, found before any work: a file that is not there, of no kind orch
    reads, a config or split asked of one file, a folder with no data file or of mixed kinds, or (`reach_hub`) a hub
    id that is neither cached nor reachable. (An empty or non-UTF-8 file is the reading's to say, with its line.)"""
    if config.dataset is None:
        return ["the trainer needs `dataset: PATH` (JSONL, Parquet or CSV) or a Hugging Face dataset id"]
    problems = []
    for key, name in (("dataset", config.dataset), ("eval_dataset", config.eval_dataset)):
        if name is None:
            continue
        if (local := resolve_dataset(name, base_dir, key)) is not None:
            if not local.is_file() and not local.is_dir():  # /dev/zero, a pipe: refused once torch had loaded
                problems.append(_no_file_nor_folder(key, name))
            elif local.is_file() and file_kind(local) is None:
                problems.append(f"{key} {local}: {FILE_KINDS_HINT}")
            elif local.is_dir() and (problem := folder_problem(local)):
                problems.append(f"{key} {problem}")
            elif problem := _csv_files_problem(_data_files(local, ".csv"), read_columns(config.dataset_columns)) \
                    or _parquet_files_problem(_data_files(local, ".parquet")):
                problems.append(f"{key} {problem}")
            elif key == "dataset" and (one_file := one_file_problem(config, local)):
                problems.append(one_file)
            continue
        if link := checks.dangling_link(base_dir / checks.user_path(name)):  # as the plan says it, not "not found"
            problems.append(f"{key} '{name}' {link}")
        elif Path(name).suffix:
            problems.append(f"{key} file '{name}' not found (relative paths start at the job file)")
        elif reach_hub and (unreachable := dataset_unreachable(name)):
            problems.append(f"{key} {unreachable}")
    return problems


def train_source(config: JobConfig, base_dir: Path) -> Source:
    local = resolve_dataset(config.dataset, base_dir, "dataset")
    if one_file := one_file_problem(config, local):
        raise DataError(f"{one_file}.")
    return Source(config.dataset, local, config.dataset_config, config.dataset_split,
                  columns=frozenset(read_columns(config.dataset_columns)))


def eval_source(config: JobConfig, base_dir: Path) -> Source | None:
    """A separate eval set (`eval_dataset` and/or `eval_split`); None: hold out `eval_fraction` of the training data."""
    if config.holds_out_eval:
        return None
    if config.eval_dataset is None:
        source = train_source(config, base_dir)
        if source.local is not None and source.local.is_file():
            raise DataError(f"`eval_split` picks a split of a dataset repository, and {config.dataset} is one file: "
                            "name the eval file with `eval_dataset: PATH`.")
        return source._replace(split=config.eval_split)
    local = resolve_dataset(config.eval_dataset, base_dir, "eval_dataset")
    if config.eval_split is not None and local is not None and local.is_file():
        raise DataError(f"`eval_split` picks a split of a dataset repository, and eval_dataset {config.eval_dataset} "
                        "is one file, read whole: leave `eval_split` out.")
    return Source(config.eval_dataset, local, config.dataset_config, config.eval_split or "train", "eval_dataset",
                  frozenset(read_columns(config.dataset_columns)))


def _load(source: Source, streaming: bool, files: tuple[str, list[Path]] | None):
    """`files`: _local_files' answer. Every CSV, one file or a folder's, is read as the text in it."""
    from datasets import load_dataset  # heavy, and only the trainer needs it

    local = source.local
    as_text = _csv_as_text(files[1][0], source.columns) if files is not None and files[0] == "csv" and files[1] \
        else {}
    if local is not None and local.is_file():
        kind = file_kind(local)
        if kind is None:
            raise DataError(f"{source.key} {local}: {FILE_KINDS_HINT}.")
        return load_dataset(kind, data_files=str(local), split="train", streaming=streaming, **as_text)
    path = str(local) if local is not None else source.name
    return load_dataset(path, name=source.config_name, split=source.split, streaming=streaming, **as_text)


def _csv_as_text(path: Path, read: frozenset[str]) -> dict:
    """The csv builder's options that read every cell as the text in the file: CSV has no types, and pandas' guesses
    made `01000` the number 1000, an answer `0` a number the record was refused for, `True` a boolean, and `NA`,
    `None`, `null` or an empty cell null (an input of `NA` trained as no input). A header that repeats a name
    (pandas renames the repeat) keeps pandas' reading. A header of more than WIDEST_READ_WHOLE columns is read for
    the columns the trainer reads (`read`), where it has any: a 120 KB file of 20,000 columns took `datasets`
    minutes. A narrower one is read whole, so a record of no known shape is said with all its columns."""
    from datasets import Features, Value

    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):  # said by the reader, as before
        return {}
    if not header or checks.repeated(header):
        return {}
    names = [name or f"Unnamed: {index}" for index, name in enumerate(header)]  # as pandas names a blank one
    mapped_here = read - set(SHAPE_COLUMNS) <= set(names)  # else all, so the error lists every column the file has
    if len(names) > WIDEST_READ_WHOLE and mapped_here and (kept := [name for name in names if name in read]):
        return {"na_filter": False, "usecols": kept, "features": Features({name: Value("string") for name in kept})}
    return {"na_filter": False, "features": Features({name: Value("string") for name in names})}


def _json_records(path: Path, key: str) -> Iterator[tuple[str, dict]]:
    """A JSON file's records with where each is (`line 6`, or `record 6` of a JSON list), each checked as it is
    read: a list of objects, or one object per line (JSON Lines, in .jsonl or .json). `key`: the job's key that names
    the file (dataset, eval_dataset), said in each error."""
    if path.suffix.lower() == ".json" and _starts_a_list(path):
        try:
            records = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=_unique_keys)
        except UnicodeDecodeError as exc:
            raise DataError(f"{key} {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8.") from None
        except json.JSONDecodeError as exc:
            raise DataError(f"{key} {path}: not valid JSON at line {exc.lineno} ({exc.msg}).") from None
        except (ValueError, RecursionError) as exc:
            raise DataError(f"{key} {path}: {_value_problem(exc)}: fix the file.") from None
        numbered = ((f"record {index}", record) for index, record in enumerate(records, start=1))
    else:
        numbered = _json_lines(path, key)
    for where, record in numbered:
        if not isinstance(record, dict):
            raise DataError(f"{key} {path} {where}: a record must be a JSON object ({{\"text\": ...}}, "
                            f"{{\"messages\": [...]}}, ...), got {checks.json_kind(record)}.")
        if problem := _string_problem(record):
            raise DataError(f"{key} {path} {where}: a string holds {problem}: fix or drop the record.")
        yield where, record


def json_file_problem(path: Path, config: JobConfig, key: str = "dataset") -> str | None:
    """The first record of a local JSON file that the trainer would stop on for its JSON or its shape, every record
    read with no tokenizer; None where there is none. A plan tokenizes only the start of a large file
    (orchestrator/data_size.py), and a bad record past it stopped a cloud run once its VM was paid for. What only a
    tokenizer refuses (a chat template's rule on roles) is not seen here."""
    try:
        for where, record in _json_records(path, key):
            record_shape(map_columns(record, config.dataset_columns, where), where)
    except DataError as exc:  # the reader's own errors name the file; a shape's begin with the record's place
        return str(exc) if str(exc).startswith(key) else f"{key} {path} {exc}"
    return None


def _no_string_problem(named: str, placed: Iterable[tuple[str, dict]]) -> Iterator[tuple[str, dict]]:
    """Records read by `datasets` (Parquet, CSV, the hub's), each checked for what no text holds, as a JSON file's
    are: a NUL in a Parquet file's text was trained on. `named`: the dataset as its errors name it."""
    for where, record in placed:
        if problem := _string_problem(dict(record)):
            raise DataError(f"{named} {where}: a string holds {problem}: fix or drop the record.")
        yield where, record


class _RepeatedKey(ValueError):
    """A key given twice in one JSON object: json keeps the last silently, so `{"text": "a", "text": "b"}` trained
    on b alone."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen.add(key)
    return dict(pairs)


def _value_problem(exc: ValueError | RecursionError) -> str:
    """A record json parsed but Python cannot hold, in the user's terms."""
    if isinstance(exc, RecursionError):
        return "a value nested too deeply (hundreds of levels of lists or objects)"
    if isinstance(exc, _RepeatedKey):
        key = checks.printable(repr(exc.args[0]))[:60]
        return f"key {key} is given twice in one object (the last would win unsaid)"
    return checks.unreadable_value(exc)


def _starts_a_list(path: Path) -> bool:
    """A .json file holding one JSON list, rather than JSON Lines: its first non-blank character is `[`."""
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


def _json_lines(path: Path, key: str) -> Iterator[tuple[str, object]]:
    """(where, value) for each non-blank line, read and parsed when it is reached: a bounded run stops early, and a
    large file is never in memory whole."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                if line.strip():
                    yield f"line {number}", json.loads(line, object_pairs_hook=_unique_keys)
            except UnicodeDecodeError as exc:
                raise DataError(f"{key} {path} line {number} is not UTF-8 text (byte {exc.start} of the line): "
                                "save the file as UTF-8.") from None
            except json.JSONDecodeError as exc:
                if "\r" in line.rstrip("\r\n"):  # an old Mac's line ends: the whole file read as its first line
                    raise DataError(f"{key} {path} line {number}: its lines end in a bare carriage return (\\r): "
                                    "end them with \\n or \\r\\n.") from None
                raise DataError(f"{key} {path} line {number}: not a JSON record ({exc.msg}); a JSONL file holds "
                                "one JSON object per line.") from None
            except (ValueError, RecursionError) as exc:  # a 5000-digit number; lists nested thousands deep
                raise DataError(f"{key} {path} line {number}: {_value_problem(exc)}: fix or drop the "
                                "record.") from None


def _string_problem(value) -> str | None:
    """What in a parsed JSON value no text holds: a lone UTF-16 surrogate (JSON's \\ud800 escapes parse to strings
    that do not encode as UTF-8), or a NUL (\\u0000, a damaged or binary file's, refused in a CSV too)."""
    if isinstance(value, str):
        if "\x00" in value:
            return "a NUL character (\\u0000), which no text holds"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a lone UTF-16 surrogate escape (like \\ud800), which is no character"
        return None
    parts = [*value.keys(), *value.values()] if isinstance(value, dict) else value if isinstance(value, list) else []
    return next((problem for part in parts if (problem := _string_problem(part))), None)


def _text_chars(record: dict) -> int:
    return sum(len(v) if isinstance(v, str) else len(str(v)) for v in record.values() if v is not None)


def _until_chars(placed: Iterable[tuple[str | None, dict]], max_chars: int) -> Iterator[tuple[str | None, dict]]:
    total = 0
    for where, record in placed:
        yield where, record
        total += _text_chars(record)
        if total >= max_chars:
            return


def _is_csv(files: tuple[str, list[Path]] | None) -> bool:
    """Whether `_local_files` found CSV, whose rows are counted after its header line (a row may span lines)."""
    return files is not None and files[0] == "csv"


def _local_files(source: Source) -> tuple[str, list[Path]] | None:
    """The builder (json, csv, parquet) and files a local dataset's split is made of, resolved as `datasets` resolves
    them (one file, a folder's file names, or a README's `configs:`); None where the dataset is not local, or is JSON
    read from one field of each file, which `datasets` reads itself."""
    local = source.local
    if local is None:
        return None
    if local.is_file():
        return (kind, [local]) if (kind := file_kind(local)) else None
    from datasets import load_dataset_builder

    builder = load_dataset_builder(str(local), name=source.config_name)
    if builder.name == "json" and getattr(builder.config, "field", None):
        return None
    splits = {str(split): files for split, files in builder.config.data_files.items()}
    if source.split not in splits:
        sliced = " (a local dataset's split is read whole: give its name alone; a slice or `+` works for a hub " \
            "dataset read whole)" if not WHOLE_SPLIT.fullmatch(source.split) else ""
        raise DataError(f"cannot read {source.key} '{source.name}' config {source.config_name or 'default'} split "
                        f"'{source.split}': it has {', '.join(sorted(splits))}{sliced}.")
    files = [Path(file) for file in splits[source.split]]
    folder = local.resolve()
    if outside := next((file for file in files if folder not in Path(file).resolve().parents), None):
        # read here, and missing from the folder a VM mounts: a README's `configs:` that names `../other/*.jsonl`,
        # or a file of the folder that links out of it (no README to blame then)
        named = f"{Path(outside)}, a link to {Path(outside).resolve()}," if Path(outside).is_symlink() else \
            f"its README.md's `configs:` names {outside},"
        raise DataError(f"{source.key} '{source.name}': {named} outside the dataset's folder: keep the data files "
                        "inside it (copy the file in, or name it as the dataset).")
    return builder.name, files


@contextlib.contextmanager
def _datasets_quiet():
    """`datasets` logs a file it cannot read (`Failed to read schema from ...`) on stderr before it raises: the
    raise becomes the run's one `error:` line, so its own line would only say the same thing twice."""
    from datasets.utils import logging as datasets_logging  # its first import sets the level: before we do

    level = datasets_logging.get_verbosity()
    datasets_logging.set_verbosity(logging.CRITICAL + 1)
    try:
        yield
    finally:
        datasets_logging.set_verbosity(level)


def _cause(exc: BaseException) -> BaseException:
    """The error beneath `datasets`' own wrapper (`An error occurred while generating the dataset`), which says
    nothing of what is wrong with the file."""
    from datasets.exceptions import DatasetGenerationError

    while isinstance(exc, DatasetGenerationError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _parquet_rows(path: Path) -> int | None:
    """The rows a Parquet file's footer says it holds, or None where it has no footer to read."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - not Parquet at all: the caller says so
        return None


def _no_file_nor_folder(key: str, name: str) -> str:
    return f"{key} '{name}' is not a file or a folder: {FILE_KINDS_HINT}"


def _unreadable(source: Source, exc: BaseException) -> str:
    """Why the source could not be read, as the user can fix it."""
    # its first line with words: datasets' message for a bad split name starts with a line break, and said nothing
    detail = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)[:300]
    if isinstance(exc, UnicodeDecodeError):
        return (f"{source.key} '{source.name}' is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}: "
                f"{exc.reason}): save it as UTF-8.")
    if source.local is not None and source.local.is_file() and file_kind(source.local) == "parquet":
        if _parquet_rows(source.local) == 0:  # datasets' reader fails on none with "BatchSize must be greater than 0"
            return f"{source.key} '{source.name}' holds no records (a Parquet file of no rows): add records."
        return (f"{source.key} '{source.name}' is not a readable Parquet file ({detail.rstrip('.')}): write it again "
                "(pandas: DataFrame.to_parquet), or give the records as .jsonl.")
    local = source.local
    # /dev/null, a pipe: dataset_problems says it before the trainer and a plan read a record; here for a caller of
    # load_records that asked it nothing, or a file made a pipe since
    if local is not None and local.exists() and not (local.is_file() or local.is_dir()):
        return f"{_no_file_nor_folder(source.key, source.name)}."
    if local is None:
        return (f"cannot read {source.key} '{source.name}' config {source.config_name or 'default'} split "
                f"'{source.split}' (a hub dataset needs the network, and HF_TOKEN if gated): {detail}")
    # a local file or folder: said in its own terms, not the hub's (config, split) or pandas' ("C error")
    if "corresponds to no data" in detail or "at least one example" in detail:  # `datasets`' words for no rows
        return (f"{source.key} '{source.name}' holds no records (a .csv needs rows under its header, a .jsonl one "
                "record a line): add records.")
    if isinstance(exc, PermissionError):
        return f"{source.key} '{source.name}' cannot be read (permission denied): make it readable, or copy it here."
    if missing := re.match(r"Unable to find '(.*?)'", detail):  # then hundreds of suffixes, cut mid-word
        return (f"{source.key} '{source.name}': its README.md's `configs:` names {missing[1]}, which is not there: "
                "fix its data_files.")
    if "Config name is missing" in detail:  # datasets names the choices on a later line, which was left out
        listed = re.search(r"available configs: \[(.*?)\]", str(exc))
        choices = f" ({listed[1].replace(chr(39), '')})" if listed else ""
        return (f"{source.key} '{source.name}' holds several configs{choices} in its README.md: set `dataset_config` "
                "to the one to train on.")
    if local.is_file() and file_kind(local) == "csv":
        return (f"{source.key} '{source.name}' is not a CSV file pandas can read ({detail.removeprefix('Error ')}): "
                "quote each value that holds a comma, a quote or a line break, or give the records as .jsonl.")
    return f"cannot read {source.key} '{source.name}': {detail}"


def read_records(source: Source, needed_tokens: int | None) -> tuple[list[dict], list[str]]:
    """The source's records, and where each is as its errors name it (local JSON: `line 6`, with its file's path in
    a folder, or `record 6` of a JSON list; a table's `row 6`, counted across a folder's files); with
    `needed_tokens`, a dataset that is not one local file streams and stops early."""
    if source.local is not None and source.local.is_dir() and (problem := folder_problem(source.local)):
        raise DataError(f"{source.key} {problem}.")  # `orch plan` reads here too, and would count one kind only
    one_file = source.local is not None and source.local.is_file()
    streaming = needed_tokens is not None and not one_file
    try:
        with _datasets_quiet():
            files = _local_files(source)
            folder = source.local if source.local is not None and source.local.is_dir() else None
            if files is not None and files[0] == "json":  # a folder's file named by its path in the folder
                placed = ((f"{os.path.relpath(path, folder)} {where}" if folder else where, record)
                          for path in files[1] for where, record in _json_records(path, source.key))
            else:  # a table's rows, numbered across a folder's files in the order `datasets` reads them
                after = " of its files in name order" if folder else " after the header" if _is_csv(files) else ""
                placed = _no_string_problem(f"{source.key} {source.local or source.name}", (
                    (f"row {number}{after}", record)
                    for number, record in enumerate(_load(source, streaming, files), start=1)))
            if streaming:
                placed = _until_chars(placed, READ_MARGIN * BYTES_PER_TOKEN_ESTIMATE * needed_tokens)
            read = [(where, dict(record)) for where, record in placed]
            return [record for _, record in read], [where for where, _ in read]
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - offline, private, a bad split or a bad file: all mean "cannot read it"
        raise DataError(_unreadable(source, _cause(exc))) from None

