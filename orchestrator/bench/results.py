"""Benchmark results: one row per point with its raw metrics, environment and config. Kept in SQLite while sweeps
run (a rerun skips what is done) and written as JSONL files under benchmarks/results/ to commit real GPU runs."""

import json
import math
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.models import get_model
from gpu_catalog.whole_files import write_atomically, write_text_atomically
from orchestrator.db import Schema, open_database, reading, transaction
from orchestrator.home import orch_home, runs_db
from orchestrator.runs.schema import RUNS_DB
from trainer.config import LARGEST_COUNT, config_from_dict
from trainer.status import TrainStatus

FINAL_STATUSES = ("ok", "oom")  # a point that ended so is a result; an error is retried on the next run
BENCH_DB = Schema(
    version=1,
    tables={"results": "CREATE TABLE IF NOT EXISTS results (point_id TEXT PRIMARY KEY, sweep TEXT NOT NULL, "
                       "status TEXT NOT NULL, created_at REAL NOT NULL, row_json TEXT NOT NULL)"},
    required_columns={"results": {"point_id", "sweep", "status", "created_at", "row_json"}},
    identity_columns={"results": {"point_id", "sweep", "row_json"}},
)
# committed GPU results, read when orch runs from a source checkout, whatever the working folder (an installed wheel
# has no benchmarks/: nothing is read)
RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def default_db() -> Path:
    return orch_home() / "bench.db"


def _refuse_runs_database(path: Path) -> None:
    """runs.db given as --db: without this it was called a newer orch's file (its schema version is higher), and an
    older runs.db would have had a results table added to it. ORCH_HOME's runs.db before it exists too: it was made
    a results database, and every command that reads the runs refused it from then on."""
    if not path.is_file():
        if path.resolve() == runs_db().resolve():
            raise UserError(f"{path} is where orch keeps its runs database, not a bench results database: give --db "
                            f"another .db file (the default is {default_db()}), or leave --db out.")
        return
    try:
        with closing(sqlite3.connect(path)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:
        return  # not SQLite, or busy: open_database says what is wrong
    if tables & set(RUNS_DB.tables) and "results" not in tables:
        raise UserError(f"{path} is orch's runs database, not a bench results database: give --db a bench .db file "
                        f"(the default is {default_db()}), or leave --db out.")


class ResultStore:
    def __init__(self, path: Path | None = None):
        self.path = path or default_db()
        _refuse_runs_database(self.path)
        open_database(self.path, BENCH_DB)

    def _connect(self):
        return transaction(self.path)

    def save(self, row: dict) -> None:
        """The row as JSON, a number that is not finite (a diverged run's NaN loss) as null: NaN and Infinity are not
        JSON, and rows are read back as JSON."""
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
                       [row["point_id"], row["sweep"], row["status"], row["created_at"],
                        json.dumps(_finite(row), allow_nan=False)])

    def done(self) -> set[str]:
        with reading(self.path) as db:
            marks = ",".join("?" * len(FINAL_STATUSES))
            return {r[0] for r in db.execute(f"SELECT point_id FROM results WHERE status IN ({marks})",
                                             FINAL_STATUSES)}

    def rows(self, sweep: str | None = None) -> list[dict]:
        with reading(self.path) as db:
            query = "SELECT point_id, row_json FROM results" + (" WHERE sweep = ?" if sweep else "") + \
                " ORDER BY created_at"
            found = db.execute(query, [sweep] if sweep else []).fetchall()
        return [_stored_row(row_json, f"{self.path}: the row of point {checks.printable(str(point_id))[:40]!r}")
                for point_id, row_json in found]


def _stored_row(text: str, where: str) -> dict:
    """A row of this machine's database, checked; one an older orch stored with Infinity (a one-step interval) is
    read with that number unknown, as `save` now stores it, rather than refused: nothing recorded is lost."""
    try:
        row = _finite(json.loads(text))
    except (ValueError, RecursionError):
        row = checks.parse_json(text, where)  # not JSON: raises, naming what is wrong with it
    return checked_row(row, where, model_known=False)


def _finite(value):
    """`value` with every float that is not finite, at any depth, made None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, "".join(json.dumps(row) + "\n" for row in rows))


EXPORT_SUFFIXES = (".jsonl", ".csv", ".parquet")


def export(rows: list[dict], path: Path) -> None:
    """JSONL keeps every field (what benchmarks/results/ holds); CSV and Parquet get one column per scalar
    (config.seq_len, peak_vram_gib.reserved, ...) for pandas, spreadsheets and notebooks."""
    if path.suffix.lower() == ".jsonl":
        write_jsonl(rows, path)
        return
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.json_normalize([{k: v for k, v in row.items() if k != "metrics"} for row in rows])
    frame = frame.drop(columns=[c for c in frame.columns if frame[c].map(lambda v: isinstance(v, list)).any()])
    write_atomically(path, lambda partial: frame.to_csv(partial, index=False) if path.suffix.lower() == ".csv" else
                     frame.to_parquet(partial, index=False))


def read_jsonl(paths: list[Path]) -> list[dict]:
    """Every row of the result files, each checked: a broken line names its file and line, not a traceback later, and
    a file of no rows (the wrong file, or an export that failed) is named rather than read as nothing measured."""
    rows = []
    for path in paths:
        if path.suffix.lower() in EXPORT_SUFFIXES and path.suffix.lower() != ".jsonl":  # a spreadsheet's export
            raise UserError(f"results file '{path}' is a {path.suffix} export, for spreadsheets: give the .jsonl that "
                            "`orch bench --out RESULTS.jsonl` writes.")
        if checks.is_sqlite(path):  # was "not UTF-8 text: save it as UTF-8"
            raise UserError(f"results file '{path}' is an SQLite database (a bench.db or runs.db): give it with --db, "
                            "or give the .jsonl that `orch bench --out RESULTS.jsonl` writes.")
        # split at \n alone: splitlines() also broke a line at U+2028 or U+0085, which JSON text may hold as they are
        lines = [(number, line) for number, line in
                 enumerate(checks.read_text(path, "results file").split("\n"), start=1) if line.strip()]
        if not lines:
            raise UserError(f"results file '{path}' holds no rows: give a .jsonl file that `orch bench --out` wrote.")
        for number, line in lines:
            where = f"results file '{path}' line {number}"
            rows.append(checked_row(checks.parse_json(line, where), where))
    return rows


# A row's numbers and their most: far past any real run (a GPU fine-tune's tokens/s is 1e3-1e6), so a typo such as
# 1e308 tokens/s is refused rather than poisoning a calibration fitted from it.
# A share is a share: MFU is at most the whole of the peak, GPU utilisation at most 100 %, and a point that was 99 %
# padding measured nothing (its real tokens/s, divided by 1 - padding, came out as 9.5e12 tokens/s).
_OPTIONAL_NUMBERS = {"mfu": 1.0, "tokens_per_s_spread": 1e3, "tokens_per_s_interval": 1e3,
                     "step_time_s": 1e7, "wall_s": 1e9, "padding_fraction": 0.99, "gpu_util_mean_pct": 100.0,
                     "gpu_power_mean_w": 1e4}
_OPTIONAL_COUNTS = ("timed_steps", "rounds", "steps", "train_tokens")  # cpu_threads: from 1, checked on its own
CREATED_AHEAD_S = 86_400  # a row stamped more than a day ahead of this machine's clock was not measured yet
_OPTIONAL_TEXTS = ("gpu", "driver_version", "message")
_NAMES = ("gpu", "driver_version")  # of those, one line each (a message may hold a traceback's lines)
MAX_PEAK_GIB = 1e4
MAX_TOKENS_PER_S = 1e9
# The least a measured rate or size may be, 0 aside (not measured, as calibrate and report read it): 5e-324 tokens/s
# overflowed calibrate's fit (efficiency 1.0, inf in --json) and report's log of measured / estimated.
MIN_TOKENS_PER_S = 1e-3  # a token every 17 minutes: one 2,048-token step would take 24 days
# 1 MiB: less than orch's smallest model's weights (orch/tiny-llama, 5 MB), CUDA's 2 MiB allocator block or any RSS
MIN_MEASURED_GIB = 1e-3
_MEASURED = {"tokens_per_s": (MIN_TOKENS_PER_S, MAX_TOKENS_PER_S),
             "nvml_peak_used_gib": (MIN_MEASURED_GIB, MAX_PEAK_GIB), "gpu_vram_gib": (MIN_MEASURED_GIB, MAX_PEAK_GIB)}
ROW_STATUSES = tuple(status.value for status in TrainStatus)  # what a point's trainer (or its absence: error) said


def checked_row(row, where: str, model_known: bool = True) -> dict:
    """One result row, as parsed: a JSON object with the fields calibrate and report read, of the right types,
    numbers finite and in range, a status the trainer reports, and (`model_known`) a model orch describes. A row of
    this machine's own database may name a local model folder since deleted: its report still shows it."""
    if not isinstance(row, dict) or not isinstance(row.get("point_id"), str) or not isinstance(row.get("status"), str) \
            or not isinstance(row.get("config"), dict):
        raise UserError(f"{where}: a result row is a JSON object with `point_id`, `status` and `config` "
                        "(write it with `orch bench --out`).")
    # "" was fitted as a point; a line break or tab in an id (printable shows them) split its line in a table
    if not row["point_id"].strip() or checks.printable(row["point_id"]) != row["point_id"] or \
            any(space in row["point_id"] for space in "\n\t"):
        raise UserError(f"{where}: `point_id` must be a printable id (as `orch bench` writes it), got "
                        f"{checks.short_repr(row['point_id'])}.")
    if row["status"] not in ROW_STATUSES:
        raise UserError(f"{where}: `status` must be one of {', '.join(ROW_STATUSES)}, got {row['status']!r}.")
    for key, most in _OPTIONAL_NUMBERS.items():
        checks.optional_number(row.get(key), f"{where}: `{key}`", 0, most)
    for key, (least, most) in _MEASURED.items():
        _measured(row.get(key), f"{where}: `{key}`", least, most)
    for key in _OPTIONAL_COUNTS:
        checks.optional_number(row.get(key), f"{where}: `{key}`", 0, LARGEST_COUNT, whole=True)
    # a run trains on a thread at least, as a job's `cpu_threads` says (0 was read as all the cores)
    checks.optional_number(row.get("cpu_threads"), f"{where}: `cpu_threads`", 1, LARGEST_COUNT, whole=True)
    checks.optional_number(row.get("created_at"), f"{where}: `created_at` (seconds since 1970)", 0,
                           time.time() + CREATED_AHEAD_S)
    for key in _OPTIONAL_TEXTS:
        if not isinstance(row.get(key) or "", str):
            raise UserError(f"{where}: `{key}` must be text, got {checks.printable(repr(row[key]))[:60]}.")
    for key in _NAMES:  # `NVIDIA\x00H200` was fitted as an H200
        if (value := row.get(key) or "") and checks.printable(value) != value:
            raise UserError(f"{where}: `{key}` {checks.short_repr(value)} holds a control character: a device's "
                            "name and driver are printable text.")
    if not isinstance(row.get("stable"), (bool, type(None))):
        raise UserError(f"{where}: `stable` must be true or false.")
    if row.get("stable") and row.get("tokens_per_s_interval") is None:  # stability.is_stable needs an interval
        raise UserError(f"{where}: `stable` is true without `tokens_per_s_interval`: a point is stable only when "
                        "its median is known within an interval; run the point again with `orch bench`.")
    peak = row.get("peak_vram_gib") or {}
    if not isinstance(peak, dict):
        raise UserError(f"{where}: `peak_vram_gib` must be a mapping of GiB numbers.")
    for key, value in peak.items():
        _measured(value, f"{where}: `peak_vram_gib.{key}`", MIN_MEASURED_GIB, MAX_PEAK_GIB)
    _peaks_fit_the_device(row, peak, where)
    if row["status"] == "ok" and not row.get("tokens_per_s") and row.get("tokens_per_s") is not None:
        raise UserError(f"{where}: an ok row needs `tokens_per_s` above 0.")
    try:
        config = config_from_dict(row["config"])
        if model_known:
            get_model(config.model)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    return row


PEAK_OVER_CAPACITY_TOLERANCE = 0.02  # a device's total as NVML rounds it, against a peak read another way


def _peaks_fit_the_device(row: dict, peak: dict, where: str) -> None:
    """No peak a row measured is more than its device holds: a 9,000 GiB peak on an 80 GiB card fitted the context
    to its bound and was written into every later estimate."""
    capacity = row.get("gpu_vram_gib")
    if not capacity:
        return
    peaks = {"nvml_peak_used_gib": row.get("nvml_peak_used_gib"), **{f"peak_vram_gib.{k}": v for k, v in peak.items()}}
    for key, value in peaks.items():
        if value and value > capacity * (1 + PEAK_OVER_CAPACITY_TOLERANCE):
            raise UserError(f"{where}: `{key}` {value:g} GiB is more than the device's `gpu_vram_gib` {capacity:g}: "
                            "not a measurement of that device; fix the row or leave it out.")


def _measured(value, what: str, least: float, most: float) -> None:
    """A measured rate or size: null or 0 (not measured), else in [least, most]. A denormal such as 5e-324 is no
    measurement: dividing by it overflows."""
    if isinstance(value, bool) or value != 0:  # 0 (an int or a float) is "not measured"
        checks.optional_number(value, what, least, most)
