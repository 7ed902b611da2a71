"""SQLite as orch uses it for runs, the job queue and bench results: one file, WAL, a busy timeout, and every write
in one transaction taken up front, so several processes can share it."""

import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 30.0


@contextmanager
def transaction(path: Path):
    """One connection per operation, in one write transaction taken up front (BEGIN IMMEDIATE): nothing half-written
    and no lost update, however many processes write the same file (WAL, and a busy timeout instead of errors)."""
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def open_database(path: Path, schema: str) -> None:
    """Create the file in WAL mode (kept in the file: later connections need not ask) and its table. Switching the
    journal mode takes no busy timeout, so two processes creating the file at once retry rather than fail."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as db:
                db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with transaction(path) as db:
        db.execute(schema)
