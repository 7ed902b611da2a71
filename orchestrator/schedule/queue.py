"""The job queue: SQLite (WAL) beside the runs store. A job is claimed by one UPDATE that only succeeds while it is
still queued, so two schedulers never start the same job; its state survives any scheduler being killed."""

import json
import secrets
import time
from dataclasses import dataclass, fields
from pathlib import Path

from orchestrator.db import open_database, transaction
from orchestrator.home import orch_home

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    job_path TEXT NOT NULL,
    job_json TEXT NOT NULL,
    budget_usd REAL,
    deadline_at REAL,
    priority INTEGER NOT NULL,
    submitted_at REAL NOT NULL,
    status TEXT NOT NULL,
    run_id TEXT,
    owner TEXT,
    claimed_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    preemptions INTEGER NOT NULL DEFAULT 0,
    decision TEXT,
    reason TEXT,
    updated_at REAL NOT NULL
)
"""
OPEN_STATUSES = ("queued", "running")


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    name: str
    job_path: str
    job_json: str
    budget_usd: float | None
    deadline_at: float | None
    priority: int
    submitted_at: float
    status: str  # queued, running, done, failed, cancelled, rejected
    run_id: str | None
    owner: str | None
    claimed_at: float | None
    attempts: int
    preemptions: int
    decision: str | None
    reason: str | None
    updated_at: float

    def as_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["job"] = json.loads(data.pop("job_json"))
        return data


_COLUMNS = [f.name for f in fields(JobRecord)]


class JobQueue:
    def __init__(self, path: Path | None = None):
        self.path = path or orch_home() / "runs.db"
        open_database(self.path, _SCHEMA)

    def submit(self, name: str, job_path: str, job_json: str, budget_usd: float | None, deadline_h: float | None,
               priority: int) -> JobRecord:
        now = time.time()
        job_id = time.strftime("j-%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        deadline_at = now + deadline_h * 3600 if deadline_h is not None else None
        values = dict(job_id=job_id, name=name, job_path=job_path, job_json=job_json, budget_usd=budget_usd,
                      deadline_at=deadline_at, priority=priority, submitted_at=now, status="queued", run_id=None,
                      owner=None, claimed_at=None, attempts=0, preemptions=0, decision=None, reason=None,
                      updated_at=now)
        with transaction(self.path) as db:
            db.execute(f"INSERT INTO jobs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                       list(values.values()))
        return JobRecord(**values)

    def get(self, job_id: str) -> JobRecord | None:
        with transaction(self.path) as db:
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", [job_id]).fetchone()
        return JobRecord(*row) if row else None

    def find(self, text: str) -> list[JobRecord]:
        """The job whose id is `text`, else those whose id starts or ends with it; plain comparison, never a pattern."""
        exact = self.get(text)
        if exact is not None:
            return [exact]
        return [j for j in self.all() if text and (j.job_id.startswith(text) or j.job_id.endswith(text))]

    def all(self, statuses: tuple[str, ...] | None = None) -> list[JobRecord]:
        """Jobs in scheduling order: highest priority first, then first submitted."""
        where = f" WHERE status IN ({', '.join('?' * len(statuses))})" if statuses else ""
        with transaction(self.path) as db:
            rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs{where} ORDER BY priority DESC, submitted_at",
                              list(statuses or ())).fetchall()
        return [JobRecord(*row) for row in rows]

    def claim(self, job_id: str, owner: str, run_id: str) -> bool:
        """Queued -> running for exactly one caller; False when another scheduler got there first."""
        now = time.time()
        with transaction(self.path) as db:
            cursor = db.execute("UPDATE jobs SET status = 'running', owner = ?, run_id = ?, claimed_at = ?, "
                                "updated_at = ? WHERE job_id = ? AND status = 'queued'",
                                [owner, run_id, now, now, job_id])
            return cursor.rowcount == 1

    def update(self, job_id: str, **values) -> None:
        unknown = set(values) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        values["updated_at"] = time.time()
        with transaction(self.path) as db:
            db.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in values)} WHERE job_id = ?",
                       [*values.values(), job_id])
