"""The job queue: a table in runs.db beside the runs. A job is claimed, its run recorded and its slot checked in one
transaction that only succeeds while the job is still queued, the slot free and a cloud run's budget stop within the
monthly cap, so two schedulers never start the same job, nor two jobs on one slot, nor spend past the cap together;
its state survives any scheduler being killed."""

import json
import re
import secrets
import time
from dataclasses import dataclass, fields, replace
from enum import Enum
from pathlib import Path

from gpu_catalog.units import MAX_PRIORITY
from orchestrator.db import damaged_row, open_database, reading, transaction, typed_row
from orchestrator.home import beside, runs_db
from orchestrator.runs.schema import RUNS_DB
from orchestrator.runs.status import ACTIVE, Target
from orchestrator.runs.store import COLUMNS, RUN_ID, RunRecord, insert_run, record_from_row, rows_named
from orchestrator.spend import month_spend_usd, month_start_s

# A job submitted without --budget: its run's budget stop is this many times the estimate on the target it starts on
# (room for a slow run, yet a stop), and at least UNBUDGETED_SPARE_HOURS of the target's price past the estimate: a
# short job's estimate is mostly start-up, which a loaded machine stretches (a tiny job budget-stopped at 2x $0.0001).
# `orch submit --help` and `orch queue --explain` say so.
UNBUDGETED_TIMES_ESTIMATE = 2.0
UNBUDGETED_SPARE_HOURS = 0.25
UNBUDGETED_RULE = f"{UNBUDGETED_TIMES_ESTIMATE:g}x the estimate, at least {UNBUDGETED_SPARE_HOURS * 60:g} min past it"

CAP_ROUNDING_USD = 1e-9  # a budget stop cut to what the cap leaves (cap - spent) may sum past it by a rounding


def unbudgeted_usd(estimate_usd: float, usd_per_hour: float) -> float:
    """The budget stop of a run whose job was submitted without --budget."""
    return max(estimate_usd * UNBUDGETED_TIMES_ESTIMATE, estimate_usd + UNBUDGETED_SPARE_HOURS * usd_per_hour)


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"  # claimed by a scheduler, which recorded its run in the same transaction
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    def is_open(self) -> bool:
        return self in (JobStatus.QUEUED, JobStatus.RUNNING)


OPEN_STATUSES = tuple(s for s in JobStatus if s.is_open())


class _NotClaimed(Exception):
    """Rolls a claim back: the slot filled, or the month's cloud spend grew, between the decision and the claim."""


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
    status: JobStatus
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
        data["status"] = self.status.value
        return data


_COLUMNS = [f.name for f in fields(JobRecord)]
JOB_ID = re.compile(r"j-[0-9a-f]{8}")  # what new_job_id makes (the only form it has made)


def new_job_id() -> str:
    """j- and 8 hex digits (JOB_ID)."""
    return "j-" + secrets.token_hex(4)


class JobQueue:
    def __init__(self, path: Path | None = None):
        self.path = path or runs_db()
        open_database(self.path, RUNS_DB)

    def submit(self, name: str, job_file: str, job_json: str, budget_usd: float | None, deadline_h: float | None,
               priority: int, job_id: str | None = None) -> JobRecord:
        """Queue a job; `job_id` (new_job_id) where its folder, jobs/<job_id>/ beside the database, was made before,
        with the copy named `job_file` in it. A row naming any other file is damaged (_job)."""
        if Path(job_file).name != job_file:
            raise ValueError(f"a queued job's file is named in its own folder, not as {job_file!r}")
        now = time.time()
        job_id = job_id or new_job_id()
        job_path = str(Path(self.path).parent / "jobs" / job_id / job_file)
        deadline_at = now + deadline_h * 3600 if deadline_h is not None else None
        values = dict(job_id=job_id, name=name, job_path=job_path, job_json=job_json, budget_usd=budget_usd,
                      deadline_at=deadline_at, priority=priority, submitted_at=now, status=JobStatus.QUEUED.value,
                      run_id=None, owner=None, claimed_at=None, attempts=0, preemptions=0, decision=None,
                      reason=None, updated_at=now)
        with transaction(self.path) as db:
            db.execute(f"INSERT INTO jobs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                       list(values.values()))
        return JobRecord(**{**values, "status": JobStatus.QUEUED})

    def get(self, job_id: str) -> JobRecord | None:
        with reading(self.path) as db:
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", [job_id]).fetchone()
        return _job(self.path, row) if row else None

    def find(self, text: str) -> list[JobRecord]:
        """Jobs an id or a unique prefix of one names (a plain comparison, never a pattern)."""
        return rows_named(self.path, "jobs", "job_id", text, self.get)

    def all(self, statuses: tuple[JobStatus, ...] | None = None) -> list[JobRecord]:
        """Jobs in scheduling order: highest priority first, then first submitted. Rows of a status none orch writes
        are read (and refused) whichever `statuses` are asked for: such a row was refused by `orch queue` and passed
        over by the scheduler, which said "no queued jobs". A damaged row of an ended job keeps no command from the
        open ones."""
        known = [s.value for s in JobStatus]
        where = (f" WHERE status IN ({', '.join('?' * len(statuses))}) OR status NOT IN "
                 f"({', '.join('?' * len(known))})") if statuses else ""
        with reading(self.path) as db:  # a read: `orch queue` beside a scheduler's pass; claim() decides who runs
            rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs{where} ORDER BY priority DESC, submitted_at",
                              [*(s.value for s in statuses), *known] if statuses else []).fetchall()
        return [_job(self.path, row) for row in rows]

    def claim(self, job_id: str, owner: str, record: RunRecord, slot_capacity: int = 1,
              monthly_cap_usd: float | None = None) -> bool:
        """Queued -> running with its run recorded, for exactly one caller, only while the run's device has room
        (fewer than `slot_capacity` active local runs on it) and a cloud run's budget stop fits what
        `monthly_cap_usd` leaves of this month's cloud spend (spend.month_spend_usd), counted in the same transaction:
        two schedulers that each saw $0 spent under a $10 cap each started a $10 run. False when another scheduler got
        there first."""
        now = time.time()
        try:
            with transaction(self.path) as db:
                cursor = db.execute("UPDATE jobs SET status = 'running', owner = ?, run_id = ?, claimed_at = ?, "
                                    "updated_at = ? WHERE job_id = ? AND status = 'queued'",
                                    [owner, record.run_id, now, now, job_id])
                if cursor.rowcount != 1:
                    return False
                if record.device is not None:
                    busy = db.execute(f"SELECT COUNT(*) FROM runs WHERE target = ? AND device = ? AND status IN "
                                      f"({', '.join('?' * len(ACTIVE))})",
                                      [Target.LOCAL.value, record.device, *(s.value for s in ACTIVE)]).fetchone()[0]
                    if busy >= slot_capacity:
                        raise _NotClaimed
                if monthly_cap_usd is not None and record.target is Target.CLOUD:
                    rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM runs WHERE target = ? AND created_at >= ?",
                                      [Target.CLOUD.value, month_start_s(now)]).fetchall()  # this month's, read whole
                    spent_usd = month_spend_usd([record_from_row(self.path, row) for row in rows], now)
                    if spent_usd + record.budget_usd > monthly_cap_usd + CAP_ROUNDING_USD:
                        raise _NotClaimed
                insert_run(db, record)
        except _NotClaimed:
            return False
        return True

    def cancel(self, job_id: str, reason: str) -> JobRecord | None:
        """Open -> cancelled in one transaction, and the job as cancelled (with the run a claim gave it, read in the
        same transaction); None when it was no longer open. Read, then written apart, a claim committing in between
        left a cancelled job whose run started and was never stopped."""
        with transaction(self.path) as db:
            marks = ", ".join("?" * len(OPEN_STATUSES))
            cursor = db.execute(f"UPDATE jobs SET status = ?, reason = ?, updated_at = ? WHERE job_id = ? AND status "
                                f"IN ({marks})", [JobStatus.CANCELLED.value, reason, time.time(), job_id,
                                                  *(s.value for s in OPEN_STATUSES)])
            if cursor.rowcount != 1:
                return None
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", [job_id]).fetchone()
        return _job(self.path, row)

    def update(self, job_id: str, as_read: JobRecord | None = None, **values) -> bool:
        """Write `values` to the job; with `as_read`, only while it is still as that read found it (its status, run,
        attempts and preemptions), as RunStore.update_as_read writes a run. A scheduler's pass acts on jobs it read
        before a refresh that can take seconds: written blindly, its "back in the queue" undid another pass's new
        claim (the job started twice), and its "rejected" fell on a job another pass had started. Returns whether it
        wrote."""
        unknown = set(values) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        values = {k: v.value if isinstance(v, JobStatus) else v for k, v in values.items()}
        values["updated_at"] = time.time()
        where, keys = "job_id = ?", [job_id]
        if as_read is not None:
            where += " AND status = ? AND run_id IS ? AND attempts = ? AND preemptions = ?"
            keys += [as_read.status.value, as_read.run_id, as_read.attempts, as_read.preemptions]
        with transaction(self.path) as db:
            cursor = db.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in values)} WHERE {where}",
                                [*values.values(), *keys])
        return cursor.rowcount == 1


def _job(path: Path, row) -> JobRecord:
    """A row as a record, refused as damaged (as a runs row is, store.record_from_row) unless its ids are ones orch
    makes and its counts are not below 0: `orch queue` listed a hand-edited job_id '../x' and `orch cancel ../x`
    cancelled it, and attempts -3 gave a job three more retries than MAX_ATTEMPTS (scheduler.py) allows."""
    job = JobRecord(**typed_row(path, "jobs", JobRecord, row))
    if not JOB_ID.fullmatch(job.job_id):
        raise damaged_row(path, "jobs", job.job_id, "job_id", job.job_id, "not an id orch makes (j- and 8 hex digits)")
    if job.run_id is not None and not RUN_ID.fullmatch(job.run_id):
        raise damaged_row(path, "jobs", job.job_id, "run_id", job.run_id, "not an id orch makes (r- and 8 hex digits)")
    for column in ("attempts", "preemptions"):
        if getattr(job, column) < 0:
            raise damaged_row(path, "jobs", job.job_id, column, getattr(job, column), "not a whole number from 0")
    if not -MAX_PRIORITY <= job.priority <= MAX_PRIORITY:  # as --priority refuses it
        raise damaged_row(path, "jobs", job.job_id, "priority", job.priority,
                          f"not a whole number from {-MAX_PRIORITY:,} to {MAX_PRIORITY:,}")
    written = Path(job.job_path)
    # '' was read as the folder '.', and '/etc/passwd' opened: each job then rejected for a path nobody wrote. An
    # ended job's file is read no more, and an orch before 2026-12-03 could leave one's row naming the user's file
    if not job.job_path.strip() or job.status.is_open() and (written.parent.name != job.job_id or
                                                            written.parent.parent.name != "jobs"):
        raise damaged_row(path, "jobs", job.job_id, "job_path", job.job_path,
                          f"not a path to the job's file (jobs/{job.job_id}/ in orch's home)")
    return replace(job, job_path=beside(path, job.job_path))
