"""Data: records from a file, folder or hub dataset (trainer/data_sources.py), rendered to tokens with a loss mask
(trainer/data_formats.py), and packed into full sequences.

Packing puts several samples in one sequence so no compute goes to padding. Position ids restart at each sample;
transformers turns restarts into a block-diagonal causal mask (sdpa, eager) or variable-length attention (flash), so
no sample attends to another. The first token of each sample gets no label: it is not predicted from its neighbour.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from trainer.config import JobConfig
from trainer.data_formats import IGNORE_INDEX, DataError, map_columns, record_texts, render
from trainer.data_sources import (
    Source,
    eval_source,
    folder_kind,
    read_records,
    train_source,
    unreadable_folder,
    visible_paths,
)

__all__ = ["IGNORE_INDEX", "DataError", "Packed", "Records", "SeqLenFit", "Sequence", "file_records", "load_records",
           "pack", "record_texts", "render", "sequences_for"]


@dataclass(frozen=True)
class Sequence:
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    real_tokens: int  # tokens that are data, not padding


class SeqLenFit(NamedTuple):
    """What seq_len costs a dataset's records, said by the plan and the run: a record cut or left out was trained on
    in part or not at all, and nothing said so."""

    cut: int  # prompt/response records longer than seq_len: trained on up to it only (text is split, not cut)
    past_seq_len: int  # records whose prompt runs past seq_len: left out, nothing of them trains
    nothing_to_train: int  # records with no token the loss is on (a chat with no assistant turn): left out

    def note(self, seq_len: int, sampled: bool = False) -> str | None:
        """One line for people, or None where every record trains whole; `sampled`: counts scaled from a sample."""
        parts = [f"{self.past_seq_len:,} left out (the prompt runs past seq_len {seq_len})" if self.past_seq_len
                 else "", f"{self.cut:,} cut at seq_len {seq_len} (the end of the response not trained on)"
                 if self.cut else "", f"{self.nothing_to_train:,} left out (no token to train on: a chat without "
                 "an assistant turn, an empty response)" if self.nothing_to_train else ""]
        if not (said := "; ".join(part for part in parts if part)):
            return None
        fix = "; a longer seq_len keeps them" if self.cut or self.past_seq_len else ""
        return f"records{' (scaled from the sample counted)' if sampled else ''}: {said}{fix}"


class Packed(NamedTuple):
    sequences: list["Sequence"]
    fit: SeqLenFit


class Records(NamedTuple):
    train: list[dict]
    eval: list[dict] | None  # None: hold out eval_fraction of the training sequences


class DatasetRecords(list):
    """A dataset's records, knowing the dataset they were read from (its file or folder, else its hub id): a record
    refused once it is rendered is said with it, as `orch plan` says it (`dataset /x/data.jsonl line 3: ...`);
    a bare `record 3` left the user to guess which of a job's datasets held it."""

    def __init__(self, read: tuple[list[dict], list[str] | None], source: Source):
        records, self.places = read  # where each record is (data_sources.read_records); None: numbered from 1
        super().__init__(records)
        self.dataset = str(source.local or source.name)
        self.key = source.key  # dataset or eval_dataset: an eval record's error was said to be the dataset's


def needed_tokens(config: JobConfig) -> int | None:
    """Tokens a bounded run trains on (max_steps or train_tokens, as the plan counts them), with room for a held-out
    eval; None: all."""
    if config.train_tokens is None and config.max_steps is None:
        return None
    return int(config.resolved_train_tokens() * (1 + config.eval_fraction))


def file_records(path: str | Path) -> list[dict]:
    """Every record of one local data file or folder, as a job naming it would read them (benchmarks and tests)."""
    return read_records(Source(str(path), Path(path).resolve(), None, "train"), None)[0]


def special_file_problem(folder: Path) -> str | None:
    """A data file of a dataset folder that is no regular file (a pipe, a link to a device such as /dev/zero, or a
    link to nothing): `datasets` passes over it without a word, so a run trained on the rest of the folder; one such
    file named alone is refused (data_sources._unreadable), and so is one in a folder. Hidden files and `__` folders
    are left out, as `datasets` leaves them out."""
    try:
        for path in visible_paths(folder):
            if path.is_dir() or path.is_file() or folder_kind(path.suffix) is None:
                continue
            if not path.exists():  # its target gone, or a loop of links
                return (f"folder {folder} holds {path.relative_to(folder)}, a link to nothing (its target is gone, or "
                        "the links loop), which would be passed over unsaid: fix the link, or remove it")
            return (f"folder {folder} holds {path.relative_to(folder)}, a pipe or a device rather than a file, which "
                    "would be passed over unsaid: write its records to a regular file, or move it out of the folder")
    except OSError as exc:
        return unreadable_folder(folder, exc)
    return None


def _checked(source: Source | None) -> Source | None:
    if source is not None and source.local is not None and source.local.is_dir() and \
            (problem := special_file_problem(source.local)):
        raise DataError(f"dataset {problem}.")
    return source


def load_records(config: JobConfig, base_dir: Path) -> Records:
    """Training records (streamed up to what a bounded run needs) and, where one is named, the eval records."""
    source = _checked(train_source(config, base_dir))
    train = DatasetRecords(read_records(source, needed_tokens(config)), source)
    source = _checked(eval_source(config, base_dir))
    eval_tokens = config.eval_batches * config.micro_batch * config.seq_len
    evaluation = DatasetRecords(read_records(source, eval_tokens), source) if source is not None else None
    return Records(train, evaluation)


def sequences_for(records: list[dict], config: JobConfig, tokenizer) -> Packed:
    """Records as packed training sequences: exactly what the trainer sees, and what `orch plan` counts; with what
    seq_len cost the records (seq_len_fit)."""
    places = getattr(records, "places", None) or [f"record {n}" for n in range(1, len(records) + 1)]
    samples = []
    for where, record in zip(places, records, strict=True):
        try:
            samples.append(render(map_columns(record, config.dataset_columns, where), tokenizer, where,
                                  config.completion_only_loss, max_tokens=config.seq_len))
        except DataError as exc:
            if not isinstance(records, DatasetRecords):
                raise
            # `dataset x.jsonl line 6: ...`, as the reader names a line; a tokenizer's problem after a colon
            joined = " " if str(exc).startswith(where) else ": "
            raise DataError(f"{records.key} {records.dataset}{joined}{exc}") from None
    key = records.key if isinstance(records, DatasetRecords) else "dataset"
    named = records.dataset if isinstance(records, DatasetRecords) else f"'{config.dataset}'"
    if not samples:
        raise DataError(f"{key} {named} has no records.")
    if not any(any(mask) for _, mask in samples):  # else said as "packs into 0 training sequences": lower the batch
        raise DataError(f"{key} {named} has no token to train on: the loss is on a chat's assistant turns and a "
                        "prompt/response record's output, and no record has either: add them, or set "
                        "`completion_only_loss: false` to train on every token.")
    if not any(any(mask[:config.seq_len]) for _, mask in samples):  # cut at seq_len, each trains nothing
        raise DataError(f"{key} {named}: no record reaches a token to train on within seq_len {config.seq_len}: "
                        "each prompt runs past it before its response (a sample longer than a sequence is cut, not "
                        "split): raise seq_len, or shorten the prompts.")
    return Packed(pack(samples, config.seq_len, tokenizer.pad_token_id, packing=config.packing),
                  seq_len_fit(samples, config.seq_len))


def seq_len_fit(samples: list[tuple[list[int], list[bool]]], seq_len: int) -> SeqLenFit:
    """The records `pack` cuts or leaves out, by its rules: a piece trains on its labels after the first, a text
    record (every token trained) is split, and a prompt/response record is cut at seq_len."""
    cut = past = nothing = 0
    for ids, mask in samples:
        if not any(mask[1:]):
            nothing += 1
        elif len(ids) > seq_len and not all(mask):
            if any(mask[1:seq_len]):
                cut += 1
            else:
                past += 1
    return SeqLenFit(cut, past, nothing)


def _chunks(ids: list[int], mask: list[bool], seq_len: int):
    """A sample longer than a sequence is split; a prompt/response sample is only ever truncated."""
    if all(mask):
        for start in range(0, len(ids), seq_len):
            yield ids[start:start + seq_len], mask[start:start + seq_len]
    else:
        yield ids[:seq_len], mask[:seq_len]


def _chunked(samples: list[tuple[list[int], list[bool]]], seq_len: int) -> list[tuple[list[int], list[int]]]:
    """(ids, labels) pieces no longer than seq_len; the first label of each piece is dropped (nothing before it)."""
    pieces = []
    for sample_ids, sample_mask in samples:
        for ids, mask in _chunks(sample_ids, sample_mask, seq_len):
            labels = [t if keep else IGNORE_INDEX for t, keep in zip(ids, mask, strict=True)]
            labels[0] = IGNORE_INDEX
            pieces.append((ids, labels))
    return pieces


def _sequence(pieces: list[tuple[list[int], list[int]]], seq_len: int, pad_id: int) -> Sequence:
    ids = [t for piece_ids, _ in pieces for t in piece_ids]
    labels = [t for _, piece_labels in pieces for t in piece_labels]
    positions = [p for piece_ids, _ in pieces for p in range(len(piece_ids))]
    pad = seq_len - len(ids)
    return Sequence(ids + [pad_id] * pad, labels + [IGNORE_INDEX] * pad, positions + list(range(pad)), len(ids))


def pack(samples: list[tuple[list[int], list[bool]]], seq_len: int, pad_id: int,
         packing: bool = True) -> list[Sequence]:
    """First-fit decreasing: longest pieces first, each into the first sequence with room, so little is left to pad.
    With packing off, one sample per sequence and the rest padding (what plain fine-tuning scripts do)."""
    pieces = [p for p in _chunked(samples, seq_len) if any(label != IGNORE_INDEX for label in p[1])]
    if not packing:
        return [_sequence([piece], seq_len, pad_id) for piece in pieces]
    bins: list[list] = []  # [room left, pieces]
    for piece in sorted(pieces, key=lambda p: len(p[0]), reverse=True):
        target = next((b for b in bins if b[0] >= len(piece[0])), None)
        if target is None:
            target = [seq_len, []]
            bins.append(target)
        target[0] -= len(piece[0])
        target[1].append(piece)
    return [_sequence(b[1], seq_len, pad_id) for b in bins]
