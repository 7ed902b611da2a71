"""The runs store: one SQLite file (WAL, busy timeout) in orch's data folder, safe for several processes at once.

ORCH_HOME moves the data folder (default ~/.local/share/orch); it holds runs.db and a folder per run.
"""

import json
import secrets
import time
from dataclasses import dataclass, fields
from pathlib import Path

from orchestrator.db import open_database, transaction
from orchestrator.home import orch_home

ACTIVE_STATUSES = ("launching", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    job_name TEXT NOT NULL,
    job_path TEXT NOT NULL,
    job_json TEXT NOT NULL,
    target TEXT NOT NULL,
    gpu TEXT NOT NULL,
    provider TEXT NOT NULL,
    region TEXT NOT NULL,
    spot INTEGER NOT NULL,
    usd_per_hour REAL NOT NULL,
    budget_usd REAL NOT NULL,
    est_vram_gib REAL,
    est_tokens_per_s REAL,
    est_hours REAL,
    est_cost_usd REAL,
    est_basis TEXT,
    status TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    pid INTEGER,
    cluster TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    train_tokens INTEGER,
    tokens_per_s REAL,
    peak_vram_gib REAL,
    wall_s REAL,
    cost_usd REAL,
    message TEXT,
    metrics_json TEXT
)
"""


@dataclass(frozen=True)
class RunRecord:
    """One run: the estimate (est_*) and, once it ends, the measurement, side by side."""

    run_id: str
    job_name: str
    job_path: str
    job_json: str
    target: str  # local or cloud
    gpu: str
    provider: str
    region: str
    spot: int
    usd_per_hour: float
    budget_usd: float
    est_vram_gib: float | None
    est_tokens_per_s: float | None
    est_hours: float | None
    est_cost_usd: float | None
    est_basis: str | None
    status: str
    run_dir: str
    pid: int | None
    cluster: str | None
    stop_requested: int
    created_at: float
    started_at: float | None
    ended_at: float | None
    train_tokens: int | None
    tokens_per_s: float | None
    peak_vram_gib: float | None
    wall_s: float | None
    cost_usd: float | None
    message: str | None
    metrics_json: str | None

    def as_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["job"] = json.loads(data.pop("job_json"))
        data["metrics"] = json.loads(data.pop("metrics_json")) if self.metrics_json else None
        data["spot"] = bool(self.spot)
        data["stop_requested"] = bool(self.stop_requested)
        return data


_COLUMNS = [f.name for f in fields(RunRecord)]


def new_run_id() -> str:
    """Sortable by time, unique across processes: r-YYYYmmdd-HHMMSS-<6 hex>."""
    return time.strftime("r-%Y%m%d-%H%M%S-") + secrets.token_hex(3)


class RunStore:
    def __init__(self, path: Path | None = None):
        self.path = path or orch_home() / "runs.db"
        open_database(self.path, _SCHEMA)
        self._rename_old_columns()

    def _rename_old_columns(self) -> None:
        """Databases written before money was `*_usd` everywhere keep working: price_per_hour -> usd_per_hour."""
        with self._connect() as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            if "price_per_hour" in columns:
                db.execute("ALTER TABLE runs RENAME COLUMN price_per_hour TO usd_per_hour")

    def _connect(self):
        return transaction(self.path)

    def insert(self, record: RunRecord) -> None:
        with self._connect() as db:
            db.execute(f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                       [getattr(record, c) for c in _COLUMNS])

    def update(self, run_id: str, **values) -> None:
        unknown = set(values) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._connect() as db:
            db.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*values.values(), run_id])

    def get(self, run_id: str) -> RunRecord | None:
        with self._connect() as db:
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE run_id = ?", [run_id]).fetchone()
        return RunRecord(*row) if row else None

    def find(self, text: str) -> list[RunRecord]:
        """The run whose id is `text`, else those whose id starts or ends with it (users type the unique tail of a
        long id). Plain string comparison, never a pattern: `%` or `_` match only ids holding those characters."""
        exact = self.get(text)
        if exact is not None:
            return [exact]
        return [r for r in self.all() if text and (r.run_id.startswith(text) or r.run_id.endswith(text))]

    def all(self) -> list[RunRecord]:
        with self._connect() as db:
            rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs ORDER BY created_at").fetchall()
        return [RunRecord(*row) for row in rows]
