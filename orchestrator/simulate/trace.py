"""Job traces for the simulator: read and validate a CSV, or generate a realistic synthetic one, one row at a time
(both are iterators, so a million-job trace never sits in memory; only its job ids are kept, to refuse a repeated one).

Columns: job_id (one per job), arrival_h, model, method, seq_len, train_tokens, deadline_h (hours after arrival;
empty for none), budget_usd, priority. Rows come in order of arrival (the simulator reads them as time passes).

The generator draws: Poisson arrivals (`rate_per_h`); models weighted toward 7-8B (1B 20%, 3B 20%, 8B 35%, 14B 15%,
32B 7%, 70B 3%); full fine-tuning only up to 3B, else LoRA or QLoRA; seq_len 512-4096; training tokens log-normal
around 20M (1M to 1B); a deadline of 4-72 h for 60% of jobs; budgets log-normal around $50; 10% high priority.
"""

import bisect
import csv
import itertools
import math
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.checks import short_repr
from gpu_catalog.errors import UserError
from gpu_catalog.models import get_model
from gpu_catalog.units import MAX_BUDGET_USD, MAX_DEADLINE_H, MAX_PRIORITY, TooNearZero, plain_number
from orchestrator import home
from trainer.config import CHOICES, MAX_SEQ_LEN, value_problem

COLUMNS = ("job_id", "arrival_h", "model", "method", "seq_len", "train_tokens", "deadline_h", "budget_usd", "priority")
MODEL_MIX = (("meta-llama/Llama-3.2-1B", 0.20), ("meta-llama/Llama-3.2-3B", 0.20), ("meta-llama/Llama-3.1-8B", 0.35),
             ("Qwen/Qwen2.5-14B", 0.15), ("Qwen/Qwen2.5-32B", 0.07), ("meta-llama/Llama-3.1-70B", 0.03))
SMALL_MODELS = {"meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-3B"}
SEQ_LENS = ((512, 0.15), (1024, 0.25), (2048, 0.45), (4096, 0.15))
MAX_TRAIN_TOKENS = 10**15  # far past any fine-tune; a bigger number is a typo
MOST_COLUMNS_SAID = 3  # of a header's missing or unknown columns, in the one line of its error
MAX_GENERATED_JOBS = 10_000_000  # 0.8 GB of CSV written in minutes; 1e8 was 8 GB, still writing at a minute
# hours after the trace began: 1e308 swallowed every run time (makespan 0, utilization 0). Not MAX_DEADLINE_H's ten
# years: --generate's own million-job trace at 4 an hour spans 28 years (1e8 jobs: 2.5e7 h); at 1e9 h float hours
# still resolve a millisecond
MAX_ARRIVAL_H = 1e9
MAX_RATE_PER_H = 3.6e6  # one arrival a millisecond; a faster one is a typo
MIN_RATE_PER_H = 1e-3  # one arrival in six weeks; a slower one is a typo (1e-308 made every arrival inf)


def _cumulative(weighted) -> tuple[tuple, list[float], float]:
    """(values, cumulative weights, total) for `_pick`."""
    values, weights = zip(*weighted, strict=True)
    cumulative = list(itertools.accumulate(weights))
    return values, cumulative, cumulative[-1] + 0.0


MODEL_PICK, SEQ_LEN_PICK = _cumulative(MODEL_MIX), _cumulative(SEQ_LENS)
METHOD_PICK = {True: _cumulative((("full", 0.3), ("lora", 0.4), ("qlora", 0.3))),
               False: _cumulative((("lora", 0.4), ("qlora", 0.6)))}  # keyed by "is a small model"


def _pick(random_, pick: tuple[tuple, list[float], float]) -> object:
    """One weighted draw, as random.choices(values, weights) draws it (the same single random() per pick, so a seed
    gives the trace it always gave), without rebuilding the cumulative weights for every row."""
    values, cumulative, total = pick
    return values[bisect.bisect(cumulative, random_() * total, 0, len(values) - 1)]


def check_rate(rate_per_h: float) -> None:
    checks.number(rate_per_h, "--rate (arrivals per hour)", MIN_RATE_PER_H, MAX_RATE_PER_H)


def generate(n_jobs: int, seed: int, rate_per_h: float = 4.0) -> Iterator[dict]:
    """Rows one at a time, in order of arrival; the same seed gives the same trace."""
    check_rate(rate_per_h)
    if n_jobs / rate_per_h > MAX_ARRIVAL_H / 2:  # half: room for the draws' scatter, so the trace reads back whole
        raise UserError(f"--generate {n_jobs} at --rate {rate_per_h:g} spans about {n_jobs / rate_per_h:.1e} hours, "
                        f"past the {MAX_ARRIVAL_H / 2:.0e} a generated trace may: raise --rate or generate fewer jobs.")
    rng = random.Random(seed)
    random_, uniform, expovariate, lognormvariate = rng.random, rng.uniform, rng.expovariate, rng.lognormvariate
    log_tokens, log_budget = math.log(20e6), math.log(50)
    methods = {model: METHOD_PICK[model in SMALL_MODELS] for model in MODEL_PICK[0]}
    arrival_h = 0.0
    for index in range(n_jobs):  # the draws in this order, one row after another: a seed gives the same trace
        arrival_h += expovariate(rate_per_h)
        model = _pick(random_, MODEL_PICK)
        yield {
            "job_id": f"job-{index:06d}", "arrival_h": round(arrival_h, 4), "model": model,
            "method": _pick(random_, methods[model]), "seq_len": _pick(random_, SEQ_LEN_PICK),
            "train_tokens": int(min(1e9, max(1e6, lognormvariate(log_tokens, 1.0)))),
            "deadline_h": round(uniform(4, 72), 2) if random_() < 0.6 else None,
            "budget_usd": round(lognormvariate(log_budget, 0.8), 2),
            "priority": 1 if random_() < 0.1 else 0,
        }


def write_trace(rows: Iterable[dict], path: Path) -> int:
    """Writes the rows as they come; returns how many."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def _number(text: str, kind, low: float, low_ok: bool, fix: str, high: float = math.inf,
            high_why: str = "as the flag of the same name"):
    """`text` as `kind`, finite, above `low` (or at it, with `low_ok`) and at most `high` (`high_why` says why that
    bound); ValueError with a short message else."""
    try:
        number = plain_number(text)  # int() and float() read other scripts' digits and `1_000` too, which no flag takes
    except TooNearZero as exc:
        raise ValueError(f"{exc}; {fix}") from None
    except ValueError:
        raise ValueError(f"{short_repr(text)} is not {'a whole number' if kind is int else 'a number'} written "
                         f"with the digits 0-9; {fix}") from None
    value = number
    if kind is int:
        try:
            value = int(text)  # exact, however many digits
        except ValueError:  # `1e3`, `2048.0`: whole, as `--seq-len 1e3` and this file's train_tokens read them
            if not (math.isfinite(number) and number.is_integer()):
                raise ValueError(f"{short_repr(text)} is not a whole number; {fix}") from None
            value = int(number)
    if isinstance(value, float) and not math.isfinite(value) or value < low or (value == low and not low_ok):
        raise ValueError(f"{short_repr(text)} must be {'at least' if low_ok else 'above'} {low:g} and finite; {fix}")
    if value > high:
        raise ValueError(f"{short_repr(text)} must be at most {high:g}, {high_why}; {fix}")
    if too_small := checks.too_small_text(value):  # `budget_usd` 5e-324, refused as the flag and job key are
        raise ValueError(f"{too_small}; {fix}")
    if big := checks.beyond_floats_text(value):  # a whole number of 400 digits: OverflowError in isfinite
        raise ValueError(f"the number {big}; {fix}")
    return value


def _token_count(text: str) -> int:
    value = _number(text, float, 1, True, "give the tokens to train on, e.g. 20000000")
    if value > MAX_TRAIN_TOKENS or value != int(value):
        raise ValueError(f"{short_repr(text)} must be a whole number of tokens up to {MAX_TRAIN_TOKENS:.0e}")
    return int(value)


def _seq_len(text: str) -> int:
    value = _number(text, int, 0, False, "give tokens per sequence, e.g. 2048")
    if value > MAX_SEQ_LEN:
        raise ValueError(f"{short_repr(text)} must be at most {MAX_SEQ_LEN} tokens per sequence")
    return value


def _priority(text: str) -> int:
    value = _number(text, int, -MAX_PRIORITY, True, "give a whole number, higher first")
    if value > MAX_PRIORITY:
        raise ValueError(f"{short_repr(text)} must be at most {MAX_PRIORITY}")
    return value


class _Checker:
    """Validates one row at a time and remembers what it has checked once (a model name, the previous arrival) and
    every job id: a repeated one would give two jobs one row key in decisions.csv. The ids are the one thing kept per
    job (some 100 bytes each: 100 MB for ten million jobs)."""

    def __init__(self):
        self.models_seen: set[str] = set()
        self.ids_seen: set[str] = set()
        self.previous_arrival_h = -math.inf

    def row(self, raw: dict) -> dict:
        """A typed row; ValueError(column, message) for the first bad column."""
        row: dict = {}
        for column, parse in self.PARSERS:
            try:
                row[column] = parse(self, raw[column])
            except ValueError as exc:
                raise ValueError(column, str(exc)) from None
        if row["arrival_h"] < self.previous_arrival_h:
            raise ValueError("arrival_h", f"{row['arrival_h']:g} comes before the previous row's "
                                          f"{self.previous_arrival_h:g}; sort the trace by arrival_h")
        self.previous_arrival_h = row["arrival_h"]
        return row

    def _job_id(self, text: str) -> str:
        if not text.strip():
            raise ValueError("is empty; give every job an id")
        if not text.isprintable():
            raise ValueError(f"{short_repr(text)} holds a control character; use letters, digits and punctuation")
        # as every other name orch keeps: 120,000 characters were taken, and `=HYPERLINK(...)` went into
        # decisions.csv as a formula a spreadsheet would run
        if not checks.SAFE_NAME.fullmatch(text):
            raise ValueError(f"{short_repr(text)} is not an id orch takes; use {checks.SAFE_NAME_RULE}")
        if text in self.ids_seen:
            raise ValueError(f"{short_repr(text)} is an earlier row's id too; give every job its own")
        self.ids_seen.add(text)
        return text

    def _model(self, text: str) -> str:
        if text not in self.models_seen:
            # as a job file's model is checked: a control character passed here, and the first plan of its job
            # refused it as "bad config", with no trace, line or column
            if problem := value_problem("model", text):
                raise ValueError(problem)
            try:
                get_model(text)
            except UserError as exc:
                raise ValueError(str(exc).rstrip(".")) from None
            self.models_seen.add(text)
        return text

    def _method(self, text: str) -> str:
        if text not in CHOICES["method"]:
            raise ValueError(f"{short_repr(text)} is not one of {', '.join(CHOICES['method'])}")
        return text

    PARSERS = (
        ("job_id", _job_id),
        ("arrival_h", lambda self, t: _number(t, float, 0, True, "give hours since the trace began", MAX_ARRIVAL_H,
                                              "over 100,000 years after the trace began")),
        ("model", _model),
        ("method", _method),
        ("seq_len", lambda self, t: _seq_len(t)),
        ("train_tokens", lambda self, t: _token_count(t)),
        ("deadline_h", lambda self, t: _number(t, float, 0, False, "give hours after arrival, or leave it empty",
                                               MAX_DEADLINE_H) if t else None),
        ("budget_usd", lambda self, t: _number(t, float, 0, False, "give the most the job may cost, in USD",
                                               MAX_BUDGET_USD)),
        ("priority", lambda self, t: _priority(t) if t else 0),
    )


def _utf8_lines(f) -> Iterator[str]:
    """The file's lines decoded one at a time, so a byte that is not UTF-8 is reported on its own line (a UTF-8
    byte-order mark at the start is dropped)."""
    for number, line in enumerate(f):
        yield line.decode("utf-8-sig" if number == 0 else "utf-8")


def _trace_to_make(path: Path) -> Path:
    """Where `--generate` could write a missing trace: its own path where that can be written as one, else a plain
    example (`--out /proc/x` was suggested, which fails, and `--out empty.jsonl`, refused for its suffix)."""
    try:
        return home.output_file(path, "--out") if path.suffix.lower() == ".csv" else Path("trace.csv")
    except UserError:
        return Path("trace.csv")


def _open(path: Path) -> tuple:
    """The open file and its CSV reader, the header checked; a UserError naming the file otherwise (`orch simulate`
    and `orch report --trace` alike)."""
    checks.input_file(path, "trace", f"make one with `orch simulate --generate N --out {_trace_to_make(path)}`.")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise UserError(f"cannot open trace {path} ({exc.strerror}).") from None
    try:
        reader = csv.DictReader(_utf8_lines(f), strict=True)  # an unterminated quote: not "1 fields"
        header = reader.fieldnames or ()
    except (UnicodeDecodeError, csv.Error) as exc:
        f.close()
        why = checks.csv_error_text(exc) if isinstance(exc, csv.Error) else str(exc)
        raise UserError(f"trace {path}, line 1: cannot read the header ({_short(why)}); save it as UTF-8 CSV.") \
            from None
    if not header:  # an empty file was said to lack every column
        f.close()
        raise UserError(f"trace {path} is empty: give a CSV with the header {','.join(COLUMNS)} and one row per "
                        f"job, or make one with `orch simulate --generate N --out {_trace_to_make(path)}`.")
    missing = [c for c in COLUMNS if c not in header]
    repeated = checks.repeated(header)
    unknown = [c for c in header if c not in COLUMNS]  # `budget` for budget_usd: every job simulated unbudgeted
    if missing or repeated or unknown:
        f.close()
        if len(header) == 1 and (separator := next((s for s in "\t;|" if s in header[0]), None)):
            raise UserError(f"trace {path} has one column, {short_repr(header[0])}: separate the columns with "
                            f"commas, not {short_repr(separator)}; expected {', '.join(COLUMNS)}.")
        beside = f" and has {_few(unknown)} (misspelt?)" if unknown else ""
        problem = f"lacks {_few(missing, quoted=False)}{beside}" if missing else \
            f"names column {', '.join(repeated)} twice" if repeated else \
            f"has {_few(unknown)}, which no simulation reads"
        raise UserError(f"trace {path} {problem}; expected {', '.join(COLUMNS)}.")
    return f, reader


def _few(columns: list[str], quoted: bool = True) -> str:
    """`column a`, `columns a, b, c` or `columns a, b, c and 99,997 more`: a header of 100,000 unknown columns was
    listed whole in the one line of the error."""
    shown = [short_repr(c) if quoted else c for c in columns[:MOST_COLUMNS_SAID]]
    more = f" and {len(columns) - MOST_COLUMNS_SAID:,} more" if len(columns) > MOST_COLUMNS_SAID else ""
    return f"column{'s' if len(columns) > 1 else ''} {', '.join(shown)}{more}"


def check_trace(path: Path, every_row: bool = False) -> None:
    """The file exists, reads as UTF-8, has every column and a first job: what can be checked before a simulation
    starts, which streams the rest. A header alone simulated to `0 jobs, 100% utilisation` and a report on nothing.
    `every_row`: each row read and checked too, for a command that writes files before it reaches the trace (`orch
    report` drew three figures, then refused line 4)."""
    rows = read_trace(path)
    if next(rows, None) is None:
        raise UserError(f"trace {path} holds no jobs: add rows under its header, or make one with `orch simulate "
                        f"--generate N --out {path} --force`.")
    if every_row:
        for _ in rows:
            pass
    rows.close()


def read_trace(path: Path) -> Iterator[dict]:
    """Typed rows, read lazily in file order. The file is opened and its header checked at the call; a bad row is a
    UserError naming the file, line and column when the reader reaches it."""
    f, reader = _open(path)
    return _rows(path, f, reader)


def _rows(path: Path, f, reader: csv.DictReader) -> Iterator[dict]:
    checker = _Checker()
    with f:
        while True:
            try:
                raw = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise UserError(f"trace {path}, line {reader.line_num + 1}: not UTF-8 ({_short(exc)}); save the "
                                "trace as UTF-8.") from None
            except csv.Error as exc:  # the csv reader's count: DictReader's is of the rows it returned, a line early
                raise UserError(f"trace {path}, line {reader.reader.line_num}: not CSV "
                                f"({_short(checks.csv_error_text(exc))}).") from None
            if None in raw or None in raw.values():
                fields = len(reader.fieldnames) + len(raw[None]) if None in raw else \
                    sum(v is not None for v in raw.values())
                raise UserError(f"trace {path}, line {reader.line_num}: {fields} fields, but the header has "
                                f"{len(reader.fieldnames)}; give every row one value per column.")
            try:
                yield checker.row(raw)
            except ValueError as exc:
                column, message = exc.args
                raise UserError(f"trace {path}, line {reader.line_num}, column {column}: {message}.") from None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120]
