"""runs.db: the runs and the job queue in one SQLite file (so a job's claim and its run record are one transaction),
its version, and how older files are brought forward."""

import sqlite3

from orchestrator.db import Schema, columns_of

RUNS_TABLE = """
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
    metrics_json TEXT,
    device TEXT,
    sky_job_id INTEGER,
    request_id TEXT,
    output_uri TEXT
)
"""

JOBS_TABLE = """
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


def _v1_to_v2(db: sqlite3.Connection) -> None:
    """Money in `*_usd` columns; device, SkyPilot job id and request id in their own columns instead of packed into
    `cluster` ("local:0", "orch-abc123:7")."""
    columns = columns_of(db, "runs")
    if not columns:
        return
    if "price_per_hour" in columns:
        db.execute("ALTER TABLE runs RENAME COLUMN price_per_hour TO usd_per_hour")
    for column, kind in (("device", "TEXT"), ("sky_job_id", "INTEGER"), ("request_id", "TEXT"),
                         ("output_uri", "TEXT")):
        if column not in columns:
            db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
    db.execute("UPDATE runs SET device = substr(cluster, 7), cluster = NULL WHERE cluster LIKE 'local:%'")
    db.execute("UPDATE runs SET sky_job_id = CASE WHEN substr(cluster, instr(cluster, ':') + 1) GLOB '[0-9]*' "
               "THEN CAST(substr(cluster, instr(cluster, ':') + 1) AS INTEGER) END, "
               "cluster = substr(cluster, 1, instr(cluster, ':') - 1) WHERE instr(cluster, ':') > 0")


def _columns(create: str) -> set[str]:
    """Every column a CREATE TABLE above names: the stores read and write each one (a record's fields), so a file
    whose table lacks any, one column dropped by hand, is refused when opened. Checking a few let `orch launch` make
    a run folder and then fail inserting its record with a traceback."""
    body = create[create.index("(") + 1:create.rindex(")")]
    return {line.split()[0] for line in body.strip().splitlines()}


RUNS_DB = Schema(
    version=2,
    tables={"runs": RUNS_TABLE, "jobs": JOBS_TABLE},
    required_columns={"runs": _columns(RUNS_TABLE), "jobs": _columns(JOBS_TABLE)},
    identity_columns={"runs": {"run_id", "job_name", "status", "run_dir", "cluster"},
                      "jobs": {"job_id", "name", "status", "run_id"}},
    migrations={1: _v1_to_v2},
)
