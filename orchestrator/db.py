"""SQLite as orch uses it for runs, the job queue and bench results: one file, WAL, a busy timeout, and every write
in one transaction taken up front, so several processes can share it. Reads take no write lock: in WAL they see the
last committed state at once while another process writes (`orch runs` beside a scheduler's pass). SQLite writes
the WAL back into the file when the last connection closes, so at rest the store is the one file a user can copy.

A database file is versioned (PRAGMA user_version) and migrated forward when opened; opening writes only when the
file is missing, older or not yet WAL. A file orch cannot use (not SQLite, another program's tables, a newer orch's
schema, a folder it cannot write) is refused with a message that says how to fix it, and is never overwritten.
"""

import functools
import os
import sqlite3
import time
import types
import typing
from collections.abc import Callable
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from orchestrator.home import orch_home, runs_db

BUSY_TIMEOUT_S = 30.0
_T = typing.TypeVar("_T")
_RETRYABLE = ("locked", "busy")  # another process holds the file: wait; anything else is the user's to fix


@dataclass(frozen=True)
class Schema:
    """What one database file holds: its tables, the columns orch relies on, and how to bring older files forward.
    `migrations[v]` turns a version-v file into version v+1."""

    version: int
    tables: dict[str, str]  # table name -> CREATE TABLE IF NOT EXISTS ...
    required_columns: dict[str, set[str]]  # what this version reads
    identity_columns: dict[str, set[str]]  # what every version of orch's table has: without them it is not orch's
    migrations: dict[int, Callable[[sqlite3.Connection], None]] = field(default_factory=dict)


class UnusableDatabase(Exception):
    """A database file that failed under a command already using it (damaged, locked past the busy timeout), in one
    line that names the file and the fix. Not a UserError: the scheduler rejects a job whose launch raises one, and a
    job must not be rejected for the state of the file; the CLI says it as it says a UserError (cli/errors.py)."""


class LockedDatabase(UnusableDatabase):
    """Another process (a sqlite3 shell, a backup, a stuck process) held the write lock past the busy timeout: it
    passes by itself, so the scheduler's loop waits for its next pass instead of ending."""


def _text(data: bytes) -> str | bytes:
    """A TEXT value as str; one that is not UTF-8 (a hand edit) as its bytes, which typed_row refuses naming the row
    and the column: sqlite3's own decoding raised with neither, nor the file."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


@contextmanager
def transaction(path: Path, wait_s: float | None = None):
    """One connection per operation, in one write transaction taken up front (BEGIN IMMEDIATE): nothing half-written
    and no lost update, however many processes write the same file (WAL, and a busy timeout instead of errors).
    `wait_s` is how long to wait for another process's write lock (default BUSY_TIMEOUT_S): a listing's refresh
    waits briefly and shows what is recorded instead. A failure of the file itself (damaged, locked past the wait)
    is rolled back and raised as UnusableDatabase."""
    with _connection(path, "BEGIN IMMEDIATE", BUSY_TIMEOUT_S if wait_s is None else wait_s) as db:
        yield db


@contextmanager
def reading(path: Path):
    """One connection per read, in a read transaction (a deferred BEGIN that never writes): one consistent snapshot
    of the last committed state, taken at once while another process holds the write lock (WAL), where BEGIN
    IMMEDIATE waited out that process and then failed. Failures of the file are raised as `transaction` raises them."""
    with _connection(path, "BEGIN", BUSY_TIMEOUT_S) as db:
        yield db


@contextmanager
def _connection(path: Path, begin: str, wait_s: float):
    try:
        with closing(sqlite3.connect(path, timeout=wait_s, isolation_level=None)) as db:
            db.text_factory = _text
            db.execute(begin)
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself after some failures (a full disk, I/O errors)
                    db.execute("ROLLBACK")
                raise
    except sqlite3.DatabaseError as exc:
        if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError) or not _about_the_file(exc):
            raise  # a constraint, an API misuse, a query orch got wrong: orch's bug, not the file's
        raise (LockedDatabase if _is_locked(exc) else UnusableDatabase)(_problem(path, exc, wait_s)) from None


def move_away_hint(path: Path, it: str = "it") -> str:
    """The fix for a database orch will not touch: ORCH_HOME's own is moved by moving ORCH_HOME; one given with --db
    by giving another."""
    if path.parent.resolve() == orch_home().resolve():
        return f"move {it} away, or set ORCH_HOME to another folder (now {path.parent})"
    return f"move {it} away, or give --db another file"


# what SQLite says of a file it cannot use (damaged, not a database, unreadable, read-only, full) beside a lock
FILE_FAULTS = ("malformed", "not a database", "disk i/o error", "readonly", "read-only", "disk is full",
               "unable to open", "file is encrypted")


def _about_the_file(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite blames the file (or its lock), not the statement (`no such column`: orch's own query)."""
    text = str(exc).lower()
    return _is_locked(exc) or any(fault in text for fault in FILE_FAULTS)


def _is_locked(exc: sqlite3.DatabaseError) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(w in str(exc) for w in _RETRYABLE)


def _problem(path: Path, exc: sqlite3.DatabaseError, waited_s: float | None = None) -> str:
    """What is wrong with the database file, in one line with the fix."""
    text = str(exc)
    if _is_locked(exc):
        return (f"the database file {path} is locked by another process (a sqlite3 shell, a backup, a stuck "
                f"command) that held it over {BUSY_TIMEOUT_S if waited_s is None else waited_s:g} s: try again "
                "when that process finishes.")
    if "not a database" in text:
        return f"{path} is not a usable SQLite database ({text}); orch never overwrites it: {move_away_hint(path)}."
    if "malformed" in text:
        return _damaged_message(path, text)
    return f"cannot use the database {path}: {text}. Check that the folder is writable, or set ORCH_HOME to a " \
           "writable folder."


def _damaged_message(path: Path, detail: str) -> str:
    """A file damaged past its header: what orch keeps (it never deletes nor overwrites it) and how to go on."""
    return (f"{path} is damaged ({checks.printable(detail)[:120]}); orch never deletes or overwrites it: restore a "
            f"copy of it, or, to start a new one, {move_away_hint(path)}.")


def _with_retries(path: Path, action: Callable[[], _T]) -> _T:
    """Opening: a lock is waited out up to the busy timeout; anything else is said at once, as the user's to fix."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return action()
        except sqlite3.DatabaseError as exc:
            if _is_locked(exc) and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise UserError(_problem(path, exc)) from None


def ensure_data_folder(folder: Path) -> None:
    if loop := checks.symlink_loop(folder, "orch's data folder"):  # mkdir said only "File exists"
        raise UserError(f"{loop} Or set ORCH_HOME to a writable folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create orch's data folder {folder}: {exc.strerror or exc}. Set ORCH_HOME to a "
                        "writable folder.") from None
    if not folder.is_dir():
        raise UserError(f"orch's data folder {folder} is not a folder. Set ORCH_HOME to a writable folder.")


def columns_of(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _check_is_ours(path: Path, schema: Schema) -> bool:
    """Before anything is written (even the journal mode): a damaged file, a newer orch's file, or another program's
    table of the same name, is refused. A file damaged past its header opens, and failed only in the command that
    read the damaged page, while others (`orch submit`) wrote into it; quick_check reads every page (milliseconds for
    orch's files). Only reads, so it goes on while another process writes; True when the file is already as this
    orch keeps it (WAL, this version, every table with the columns read), so that opening it writes nothing."""
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)) as db:
        found = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if found != "ok":
            raise UserError(_damaged_message(path, found.splitlines()[-1]))
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > schema.version:
            raise UserError(f"{path} was written by a newer orch (schema {version}; this orch reads up to "
                            f"{schema.version}): upgrade orch, or {move_away_hint(path)}.")
        if version < 0:  # no orch writes one: it was "migrated", rewritten as this version
            raise UserError(_damaged_message(path, f"its schema version is {version}, which no orch writes"))
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == schema.version and tables & set(schema.tables) and (gone := sorted(set(schema.tables) - tables)):
            # a dropped (or renamed) table was made again, empty: "No runs yet" beside the run folders, and new
            # rows written into the damaged file
            raise UserError(_damaged_message(path, f"it has no `{'`, `'.join(gone)}` table, which its version "
                                                   f"({version}) holds"))
        others = sorted(t for t in tables - set(schema.tables) if not t.startswith("sqlite_"))
        if others and not tables & set(schema.tables):  # another program's file: taken over, its journal mode and
            # version were rewritten and orch's tables added beside its own
            raise UserError(f"{path} is another program's database (its tables: {checks.short_repr(', '.join(others))}"
                            f"); orch never writes into it: {move_away_hint(path)}.")
        have = {table: columns_of(db, table) for table in schema.tables}
        for table, identity in schema.identity_columns.items():
            if have[table] and not identity <= have[table]:
                raise UserError(f"{path} holds a `{table}` table of another schema (no "
                                f"{', '.join(sorted(identity - have[table]))}); orch never overwrites it: "
                                f"{move_away_hint(path)}.")
        journal_mode = db.execute("PRAGMA journal_mode").fetchone()[0]  # the query form: it reads, never switches
        return (version == schema.version and journal_mode.lower() == "wal"
                and all(required <= have[table] for table, required in schema.required_columns.items()))


def _upgrade(path: Path, schema: Schema, db: sqlite3.Connection) -> None:
    """Inside one transaction, so nothing is half-migrated."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables & set(schema.tables):
        for step in range(max(version, 1), schema.version):  # version 0 with our tables: written before versions
            schema.migrations[step](db)
    for create in schema.tables.values():
        db.execute(create)
    for table, required in schema.required_columns.items():
        missing = required - columns_of(db, table)
        if missing:
            raise UserError(f"{path} holds a `{table}` table of another schema (no {', '.join(sorted(missing))}); "
                            f"orch never overwrites it: {move_away_hint(path)}.")
    db.execute(f"PRAGMA user_version = {schema.version}")


def _refuse_an_emptied_runs_db(path: Path) -> None:
    """ORCH_HOME's runs.db at 0 bytes (a full disk, a stray `>`) while ORCH_HOME/runs holds run folders: taken as a
    new file, `orch runs` listed no run, `orch spend` measured a --monthly-cap against $0, and a schema was written
    where a backup was to be restored. Empty beside no run folder, it is new. bench.db has no such sign: its results
    are kept nowhere else."""
    folder = orch_home() / "runs"
    if path != runs_db() or path.stat().st_size or not folder.is_dir():
        return
    if count := sum(1 for entry in os.scandir(folder) if entry.is_dir()):
        raise UserError(f"{path} is empty (0 bytes), but {folder} holds {count} run folder{'s' * (count != 1)}; "
                        f"orch never overwrites it: restore it from a backup, or, to start a new record, "
                        f"{move_away_hint(path)}.")


def _refuse_a_file_of_no_database(path: Path) -> None:
    """A file with bytes that do not begin as a database's: SQLite itself refused one of two bytes or more as "not a
    database", but took one of a single byte for an empty file and wrote a new database over it (a runs.db lost its
    whole record). An empty file is a new database (_refuse_an_emptied_runs_db says when it is not)."""
    if path.stat().st_size and not checks.is_sqlite(path):
        raise UserError(f"{path} is not a SQLite database (it does not begin with SQLite's header); orch never "
                        f"overwrites it: {move_away_hint(path)}.")


def open_database(path: Path, schema: Schema) -> None:
    """Create or upgrade the file: WAL mode (kept in the file), its tables, its version. A file already so is only
    read: every command opens the store, and one that wrote here waited out another process's write lock (a
    scheduler's pass, a launch) before `orch runs` could list anything. Switching the journal mode takes no busy
    timeout, so two processes creating the file at once retry rather than fail; two upgrading it at once both run
    `_upgrade`, which reads the version again inside its transaction. A path that is no regular file (a folder, a
    pipe, a link to a device or to nothing) is refused first, as what it is, for the user to move away."""
    ensure_data_folder(path.parent)
    if path.exists():  # SQLite called a folder, a pipe or a device "unable to open" or a "disk I/O error"
        checks.input_file(path, "database", f"orch never overwrites it: {move_away_hint(path)}.")
        _refuse_an_emptied_runs_db(path)
        _refuse_a_file_of_no_database(path)
    elif path.is_symlink():  # to nothing: SQLite made a new file where it points, or said "unable to open database"
        raise checks.symlink_loop(path, "database") or UserError(f"database '{path}' {checks.dangling_link(path)}.")

    def wal() -> None:
        with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")

    def upgrade() -> None:
        with transaction(path) as db:
            _upgrade(path, schema, db)

    if path.exists() and _with_retries(path, lambda: _check_is_ours(path, schema)):
        return
    _with_retries(path, wal)
    _with_retries(path, upgrade)


# Every REAL column orch writes (dollars, seconds since 1970, tokens/s, GiB) is at least 0 and far below this; a sum
# of a million such values stays finite, so `orch spend --json` never meets an overflow to Infinity.
MAX_STORED_NUMBER = 1e15
# A time column's (`..._at`, seconds since 1970) last value: April 2262, where pandas' timestamps end (`orch runs
# --export` and `orch report` date each run; 1e13 was a traceback in both)
MAX_TIME_S = 9.2e9


def _value_problem(kind, value) -> str | None:
    """Why `value` is not of the field type `kind` (str, int, float, an Enum, or one of them | None); None if it is.
    SQLite keeps whatever a hand edit stores (text in a REAL column, a float in an INTEGER one)."""
    if isinstance(kind, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        kind = next(option for option in options if option is not type(None))
    if isinstance(value, bytes):  # text that is not UTF-8 (transaction's text factory), or a BLOB: no field's type
        return "not UTF-8 text"
    if isinstance(kind, type) and issubclass(kind, Enum):
        allowed = [member.value for member in kind]
        return None if value in allowed else f"not one of {', '.join(allowed)}"
    if kind is float:
        ok = isinstance(value, (int, float)) and 0 <= value <= MAX_STORED_NUMBER
        return None if ok else f"not a number from 0 to {MAX_STORED_NUMBER:g}"
    if kind is int:
        return None if isinstance(value, int) else "not a whole number"
    return None if isinstance(value, kind) else f"not {kind.__name__}"


def _json_problem(value) -> str | None:
    """Why a JSON column's text is not one JSON object (checks.parse_json: NaN, Infinity and a repeated key are not
    orch's JSON); None if it is."""
    try:
        parsed = checks.parse_json(value, "the column")
    except UserError:
        return "not valid JSON"
    return None if isinstance(parsed, dict) else "not a JSON object"


@functools.cache
def _field_types(record_type) -> dict:
    """Each field's type in the record's field (column) order, resolved once per record type: runs.db is read whole
    on every scheduler pass."""
    hints = typing.get_type_hints(record_type)
    return {f.name: hints[f.name] for f in fields(record_type)}


def damaged_row(path: Path, table: str, row_id, column: str, value, problem: str) -> UserError:
    """The one line a damaged row gets: the file, the row, the column, and how to fix it. The id is quoted, then made
    printable, as the value is: made printable first, repr doubled each escape's backslash."""
    shown, row = checks.printable(repr(value)[:60]), checks.printable(repr(str(row_id)[:40]))
    return UserError(f"{path}: the {table} row {row} is damaged: {column} is {shown}, {problem}. "
                     f"Fix or delete that row with sqlite3, or {move_away_hint(path, 'the database')}.")


def typed_row(path: Path, table: str, record_type, row) -> dict:
    """A row's values by field name, every one checked against its record field's type (columns ending in `_json`
    must hold a JSON object) and enums made members: a hand-edited database gets one line naming the row, the column
    and the fix, not a traceback in every command that lists it."""
    hints = _field_types(record_type)
    values = dict(zip(hints, row, strict=True))
    for name, value in values.items():
        problem = _value_problem(hints[name], value)
        if problem is None and name.endswith("_json") and value is not None:
            problem = _json_problem(value)
        if problem is None and name.endswith("_at") and value is not None and value > MAX_TIME_S:
            problem = "not a time before the year 2262 (seconds since 1970)"
        if problem:
            raise damaged_row(path, table, row[0], name, value, problem)
    return {name: hints[name](value) if isinstance(hints[name], type) and issubclass(hints[name], Enum) else value
            for name, value in values.items()}
