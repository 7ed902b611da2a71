"""How many tokens one epoch of a job's dataset is, and where that number came from, for `orch plan`.

In order: `dataset_tokens` in the job (an override); a local file or folder tokenized exactly as the trainer will
(trainer/count_tokens.py in its own process, so planning imports no torch), when the model's tokenizer is on this
machine; a hub dataset's published size (rows and bytes in its card, through huggingface_hub, without downloading
it) where the network allows; otherwise an estimate from bytes, marked as one. Counts are kept in orch's cache folder
(ORCH_CACHE: slow to make, safe to lose), keyed by the settings that shape the data and the files' paths, sizes and
times.
"""

import dataclasses
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from gpu_catalog import checks
from gpu_catalog.cache import cache_dir, write_whole
from gpu_catalog.errors import UserError
from gpu_catalog.hub import hub_address, hub_offline, hub_reachable, in_hub_cache
from trainer.config import BYTES_PER_TOKEN_ESTIMATE, JobConfig, resolve_dataset, resolve_tokenizer
from trainer.data import SeqLenFit, special_file_problem
from trainer.data_sources import dataset_problems, file_head_problem, file_kind, json_file_problem
from trainer.offline_names import is_built_offline

PROGRESS = logging.getLogger("orch.progress")  # slow work starting: the CLI shows it at a terminal (display.progress)
DATA_KEYS = ("model", "tokenizer", "dataset", "dataset_config", "dataset_split", "dataset_columns", "eval_dataset",
             "eval_split", "eval_fraction", "completion_only_loss", "seq_len", "packing", "seed", "method")
COUNT_TIMEOUT_S = 600
HUB_CACHE_S = 24 * 3600  # a dataset card's size, kept for a day
TOKENIZE_MAX_BYTES = 64 * 10**6  # above this, tokenizing (chat templates turn by turn) would make planning slow
# a JSON-lines file larger than this is counted on its first SAMPLE_BYTES (whole records) and scaled by its bytes: a
# 5 MB file took 100 s to count on a 2-core machine (a 1 MB sample: 13 s, within 0.1% of a 4 MB one), a 54 MB one
# over 5 minutes, where `orch plan` is run again and again while settings change; the sample's records are checked
# as the trainer reads them, the rest for their JSON and shape only (no tokenizer: a chat template's refusal of a
# record past the sample is not seen), up to WHOLE_CHECK_MAX_BYTES
SAMPLE_BYTES = 10**6
# The version of how a count is made, in its cache key: a count made by an earlier rule (a sample a long record cut
# short, scaled 10,000 times) is made again, not reused until the file changes
COUNT_RULES = 2
WHOLE_CHECK_MAX_BYTES = 10**9  # past this (about 50 s to read here), a file's records past the sample are not read


class DataSize(NamedTuple):
    tokens: int | None  # real (non-padding) tokens of one epoch's training sequences
    source: str  # job | tokenized | sampled | hub metadata | estimate | unknown
    detail: str
    sequences: int | None = None  # the rows one epoch makes, where the data was tokenized or is unpacked JSON lines
    seq_len_fit: dict | None = None  # trainer.data.SeqLenFit's counts, where the data was tokenized (or sampled)


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def _cache_path(spec: JobConfig, files: list[Path], base_dir: Path) -> Path:
    """Where a count is kept, by the settings that change it and the files' sizes and times. Paths of this machine
    are keyed as they resolve: the run folder's copy of a job names its dataset absolute, and `orch resume` counted
    the same file again for it ("once; later plans reuse it")."""
    keys = {k: _resolved(getattr(spec, k), base_dir) for k in DATA_KEYS}
    stamp = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    digest = hashlib.sha1(json.dumps([COUNT_RULES, keys, stamp], default=str).encode()).hexdigest()[:16]
    return cache_dir() / "data-sizes" / f"{digest}.json"


def _resolved(value, base_dir: Path):
    """A setting's value, or the absolute path it names where it names a file or folder here."""
    if isinstance(value, str) and (path := base_dir / checks.user_path(value)).exists():
        return str(path.resolve())
    return value


def _tokenizer_name(spec: JobConfig, base_dir: Path) -> str:
    """The tokenizer a count reads: the `tokenizer` (a folder found from the job file's folder, as the trainer finds
    it), else the model's own."""
    return resolve_tokenizer(spec.tokenizer, base_dir) or spec.model


def _tokenizer_files(spec: JobConfig, base_dir: Path) -> list[Path]:
    """The files of the tokenizer folder a count reads, which stamp the count too: a chat template edited after a
    plan kept the old count, and a broken one passed the plan."""
    folder = checks.user_path(_tokenizer_name(spec, base_dir))
    return _files(folder) if folder.is_dir() else []


def _tokenizer_here(spec: JobConfig, base_dir: Path) -> bool:
    """Whether the model's tokenizer is on this machine (a folder, the hub cache, or built from the data)."""
    name = _tokenizer_name(spec, base_dir)
    return is_built_offline(spec.model) or checks.user_path(name).is_dir() or \
        in_hub_cache(name, "tokenizer_config.json")


def _count_tokens(spec: JobConfig, base_dir: Path) -> dict:
    """The trainer's own count, in a process of its own: seconds (it imports transformers), said first (the CLI shows
    `orch.progress` at a terminal) so a first plan does not sit silent."""
    # unbounded: a bounded job (max_steps, train_tokens) streams a folder and stops early, and its prefix was cached
    # and said as the epoch's size, for every later plan of the folder by epochs too (~3% of the data)
    raw = {k: v for k, v in dataclasses.asdict(spec).items() if v is not None and k not in ("max_steps",
                                                                                           "train_tokens")}
    raw["dataset_columns"] = dict(spec.dataset_columns)
    import subprocess  # only when a count is not cached: a plan imports it in 7 ms otherwise

    PROGRESS.info("counting tokens in %s (once; later plans reuse it)...", spec.dataset)

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "trainer.count_tokens", str(base_dir)], input=json.dumps(raw),
                              capture_output=True, text=True, env=env, timeout=COUNT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"took over {COUNT_TIMEOUT_S} s"}
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}


def _trainer_refusal(spec: JobConfig, path: Path, base_dir: Path) -> None:
    """What the trainer refuses before reading a record, said as it says it: a model or tokenizer it cannot build
    (else a count that fails on it was blamed on the data, "packs into 0 training sequences"), what
    data_sources.dataset_problems finds (a CSV header that names a column twice, a folder of mixed file kinds, an
    eval set of a kind orch does not read: checked by launch's pre-flight too, and never seen by a plan over
    TOKENIZE_MAX_BYTES, which counts nothing, nor by one whose tokenizer is not here), and a dataset or eval_dataset
    folder holding a pipe or a device among its data files (found by a count, but never when a cached count is
    reused or a folder is sized by its bytes)."""
    from trainer.config import check_model_and_tokenizer  # plain Python, but only a local dataset needs it

    check_model_and_tokenizer(spec, base_dir)
    for folder in (path, resolve_dataset(spec.eval_dataset, base_dir, "eval_dataset")):
        if folder is not None and folder.is_dir() and (special := special_file_problem(folder)):
            raise UserError(f"dataset {special} (the trainer would stop on it, so nothing is launched).")
    if problems := dataset_problems(spec, base_dir, reach_hub=False):  # a folder of mixed kinds, a CSV header
        raise UserError(f"{problems[0]} (the trainer would stop on it, so nothing is launched).")  # the eval set's too


def _check_heads(files: list[Path]) -> None:
    """A plan that sizes the data by its bytes reads no record: an empty or non-UTF-8 data file was planned, and
    refused only by the launch's pre-flight or the trainer. Its first bytes tell (data_sources.file_head_problem)."""
    for file in files:
        if file_kind(file) is not None and (problem := file_head_problem(file)):
            raise UserError(f"dataset {problem} (the trainer would stop on it, so nothing is launched).")


def _local_size(spec: JobConfig, path: Path, base_dir: Path) -> DataSize:
    _trainer_refusal(spec, path, base_dir)
    files = _files(path)
    total_bytes = sum(f.stat().st_size for f in files)
    estimate = int(total_bytes / BYTES_PER_TOKEN_ESTIMATE)
    head = _sample_head(path)
    if total_bytes > TOKENIZE_MAX_BYTES and head is None:
        _check_heads(files)
        return _untokenized(spec, files, estimate, f"over {TOKENIZE_MAX_BYTES // 10**6} MB: not tokenized at plan "
                                                   "time")
    if not _tokenizer_here(spec, base_dir):
        _check_heads(files)
        return _untokenized(spec, files, estimate, f"the tokenizer of {spec.tokenizer or spec.model} is not on this "
                                                   "machine")
    # stamped with the eval set's files too: one edited after a plan was never checked again, and its bad record
    # stopped the trainer once a run had started
    eval_path = resolve_dataset(spec.eval_dataset, base_dir, "eval_dataset")
    cache = _cache_path(spec, files + (_files(eval_path) if eval_path is not None and eval_path.exists() else [])
                        + _tokenizer_files(spec, base_dir), base_dir)
    counted = _cached_count(cache)
    if counted is None:
        counted = _count_tokens(spec, base_dir) if head is None else _sampled_count(spec, path, base_dir, head, cache)
        if "tokens" in counted:
            write_whole(cache, json.dumps(counted).encode())
    if "config_error" in counted:
        raise UserError(f"{counted['config_error'].rstrip('.')} (the trainer would stop on it, so nothing is "
                        "launched).")
    if "data_error" in counted:
        problem = counted["data_error"].rstrip(".")
        named = problem if "dataset" in problem else f"dataset {path}: {problem}"  # the eval set's names itself
        raise UserError(f"{named} (the trainer would stop on it, so nothing is launched).")
    if "tokens" not in counted:  # the count itself failed (a tokenizer that breaks, the timeout): not the data's fault
        return _untokenized(spec, files, estimate, f"tokenizing failed: {counted.get('error')}")
    if counted["train_sequences"] < spec.effective_batch:  # the trainer's first check (trainer/batches.py)
        raise UserError(f"dataset {path} packs into {counted['train_sequences']} training sequences of "
                        f"{spec.seq_len} tokens, fewer than one step's {spec.effective_batch} (micro_batch x "
                        "grad_accum): add data, or lower the batch or seq_len.")
    if sampled_bytes := counted.get("sampled_bytes"):
        return DataSize(counted["tokens"], "sampled", f"about {counted['train_sequences']:,} training sequences of "
                                                      f"{spec.seq_len}: its first {sampled_bytes / 1e6:.1f} MB "
                                                      "tokenized as the trainer will, scaled by the file's size",
                        counted["train_sequences"], counted.get("seq_len_fit"))
    return DataSize(counted["tokens"], "tokenized", f"{counted['train_sequences']:,} training sequences of "
                                                    f"{spec.seq_len} after the chat template, truncation and packing",
                    counted["train_sequences"], counted.get("seq_len_fit"))


def _untokenized(spec: JobConfig, files: list[Path], estimate: int, why: str) -> DataSize:
    """The size of data not tokenized here: its bytes over BYTES_PER_TOKEN_ESTIMATE, and, for `packing: false`, its
    rows, one a record (JSON lines counted by line, the share held out for eval left out): each row is seq_len tokens
    of compute, padding included. Priced as packed, an unpacked job of short records was planned at a fortieth of
    its GPU time, its plan the same as with `packing: true`."""
    detail = f"file bytes / {BYTES_PER_TOKEN_ESTIMATE} ({why})"
    records = None if spec.packing else _json_lines(files)
    if not records:
        return DataSize(estimate, "estimate", detail)
    rows = max(1, records - spec.held_out(records))
    return DataSize(min(estimate, rows * spec.seq_len), "estimate", f"{detail}; {rows:,} unpacked rows of "
                                                                    f"{spec.seq_len}, a record each", rows)


def _json_lines(files: list[Path]) -> int | None:
    """The records of JSON-lines files, by their non-blank lines, read in blocks; past TOKENIZE_MAX_BYTES, those of
    its first bytes scaled by the whole's (a 100 GB folder was read through at every plan). None where any file is
    of another kind."""
    if not files or any(f.suffix.lower() != ".jsonl" for f in files):
        return None
    records, read_bytes = 0, 0  # the records and bytes of the whole files read
    for path in files:
        with path.open("rb") as f:
            carried, file_bytes = b"", 0  # a line the block ended inside, and the file's bytes read
            for block in iter(lambda: f.read(1 << 20), b""):
                lines = (carried + block).split(b"\n")
                carried, file_bytes = lines.pop(), file_bytes + len(block)
                records += sum(1 for line in lines if line.strip())
                if (counted_bytes := read_bytes + file_bytes - len(carried)) >= TOKENIZE_MAX_BYTES:
                    return max(1, round(records * sum(p.stat().st_size for p in files) / counted_bytes))
            records += bool(carried.strip())  # a last record with no line break after it
            read_bytes += file_bytes
    return records


def _sample_head(path: Path) -> bytes | None:
    """The first SAMPLE_BYTES of a JSON-lines file larger than that, cut at its last line end (its records end at
    line ends, so this is whole records; a .json array or a CSV with quoted line breaks is not cut); None for any
    other file, and for one whose sample a long record cuts to under half (a first record longer than the sample
    would read as a broken line; one of 10 MB at line 6 left five records, scaled 10,000 times to price a 4-step
    run at 19 min), which is then sized as before sampling: counted whole under TOKENIZE_MAX_BYTES, estimated from
    its bytes over it."""
    if not (path.is_file() and path.suffix.lower() == ".jsonl" and path.stat().st_size > SAMPLE_BYTES):
        return None
    with path.open("rb") as whole:
        head = whole.read(SAMPLE_BYTES)
    head = head[:head.rfind(b"\n") + 1]
    return head if len(head) >= SAMPLE_BYTES // 2 else None


def _sampled_count(spec: JobConfig, path: Path, base_dir: Path, head: bytes, cache: Path) -> dict:
    """The count of the file's first records (`head`), scaled by its bytes (`sampled_bytes` says it was); a data
    error in the sample is the file's. The sample is a file of this process's own (mkstemp, with the .jsonl suffix
    the reader goes by): one shared name let two plans of the same file remove it under each other's count, which
    then blamed the user's file. A sample that cannot be written makes the count fail (a byte estimate that says
    why), never a data error."""
    name = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(suffix="-sample.jsonl", prefix=f"{cache.stem}-", dir=cache.parent)
        with os.fdopen(handle, "wb") as out:
            out.write(head)
    except OSError as exc:
        counted = {"error": f"cannot write a sample in {cache.parent}: {exc.strerror or exc}"}
    else:
        counted = _count_tokens(dataclasses.replace(spec, dataset=name), base_dir)
    finally:
        if name:
            Path(name).unlink(missing_ok=True)
    if "data_error" in counted:  # its line numbers are the file's own: the sample is its start
        return {**counted, "data_error": counted["data_error"].replace(name, str(path))}
    if "tokens" not in counted:
        return counted
    # the records past the sample, read but not tokenized (about 20 MB/s on a 2-core machine, once: the count is kept)
    if path.stat().st_size <= WHOLE_CHECK_MAX_BYTES and (problem := json_file_problem(path, spec)):
        return {"data_error": problem}
    scale = path.stat().st_size / len(head)
    fit = counted.get("seq_len_fit")
    return {**counted, "tokens": round(counted["tokens"] * scale),
            "train_sequences": round(counted["train_sequences"] * scale), "sampled_bytes": len(head),
            **({"seq_len_fit": {key: round(count * scale) for key, count in fit.items()}} if fit else {})}


def _cached_count(cache: Path) -> dict | None:
    """A token count saved by an earlier plan, or None where there is none or it is damaged (then it is counted
    again): a cache is safe to lose, and never makes a plan fail."""
    try:
        counted = checks.parse_json(checks.read_text(cache, "cache entry"), "cache entry")
    except UserError:  # missing, a folder, a pipe or a device (which never end), not UTF-8, not JSON
        return None
    if not (isinstance(counted, dict) and all(_count(counted.get(key)) and counted[key] > 0
                                              for key in ("tokens", "train_sequences"))):
        return None
    fit, sampled = counted.get("seq_len_fit"), counted.get("sampled_bytes")
    whole = (counted["train_sequences"] <= counted["tokens"]  # each sequence holds a token at least
             and (fit is None or isinstance(fit, dict) and set(fit) == set(SeqLenFit._fields)
                  and all(map(_count, fit.values())))
             and (sampled is None or _count(sampled) and sampled > 0))
    return counted if whole else None  # a text in seq_len_fit was a traceback in the plan's note on it


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _cached_hub_size(cache: Path) -> DataSize | None:
    """What the hub said last time, or None where the entry is damaged (then the hub is asked again)."""
    try:
        tokens, source, detail = json.loads(cache.read_bytes())
    except (OSError, ValueError, TypeError):
        return None
    counted = tokens is None or isinstance(tokens, int) and tokens > 0
    return DataSize(tokens, source, detail) if counted and isinstance(source, str) and isinstance(detail, str) \
        else None


def _split_bytes(card_info, config_name: str | None, split: str) -> tuple[int, int] | None:
    """(bytes, rows) of a split from a dataset card's `dataset_info` (one dict, or one per config)."""
    infos = card_info if isinstance(card_info, list) else [card_info]
    for info in infos:
        if not isinstance(info, dict) or info.get("config_name", "default") != (config_name or "default"):
            continue
        for entry in info.get("splits") or []:
            if entry.get("name") == split and entry.get("num_bytes"):
                return int(entry["num_bytes"]), int(entry.get("num_examples") or 0)
    return None


def _hub_size(spec: JobConfig) -> DataSize:
    """From the dataset card, asked once a day at most (a plan is run again and again while settings change)."""
    key = hashlib.sha1(json.dumps([spec.dataset, spec.dataset_config, spec.dataset_split]).encode()).hexdigest()[:16]
    cache = cache_dir() / "data-sizes" / f"hub-{key}.json"
    if cache.is_file() and time.time() - cache.stat().st_mtime < HUB_CACHE_S and (size := _cached_hub_size(cache)):
        return size
    size = _ask_hub(spec)
    write_whole(cache, json.dumps(list(size)).encode())
    return size


def _ask_hub(spec: JobConfig) -> DataSize:
    if not hub_reachable():  # which of the two: a user without HF_HUB_OFFLINE was told it might be set
        why = "HF_HUB_OFFLINE is set" if hub_offline() else f"no direct connection to the hub at {hub_address()}"
        return DataSize(None, "unknown", f"cannot read {spec.dataset}'s card here ({why})")
    from huggingface_hub import HfApi

    try:
        card = HfApi().dataset_info(spec.dataset).card_data
    except Exception as exc:  # noqa: BLE001 - offline, private or missing: the plan says so and asks for a size
        return DataSize(None, "unknown", f"cannot read {spec.dataset}'s card here ({type(exc).__name__})")
    found = _split_bytes(card.to_dict().get("dataset_info") if card else None, spec.dataset_config,
                         spec.dataset_split)
    if found is None:
        return DataSize(None, "unknown", f"{spec.dataset}'s card gives no size for split {spec.dataset_split}")
    num_bytes, rows = found
    return DataSize(int(num_bytes / BYTES_PER_TOKEN_ESTIMATE), "hub metadata",
                    f"{rows:,} rows, {num_bytes / 1e6:,.1f} MB / {BYTES_PER_TOKEN_ESTIMATE} bytes per token")


def dataset_size(spec: JobConfig, base_dir: Path) -> DataSize | None:
    """Tokens in one epoch of the job's dataset and where the number came from; None without a dataset."""
    if spec.dataset_tokens is not None:
        return DataSize(spec.dataset_tokens, "job", "dataset_tokens in the job")
    if spec.dataset is None:
        return None
    path = resolve_dataset(spec.dataset, base_dir, "dataset")
    return _local_size(spec, path, base_dir) if path is not None else _hub_size(spec)
