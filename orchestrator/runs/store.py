"""The runs store: one row per run in runs.db (orchestrator/runs/schema.py), safe for several processes at once.

Only the run state machine (orchestrator/launch/lifecycle.py) writes a run's status; everyone else reads.
"""

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TypeVar

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from orchestrator.db import damaged_row, open_database, reading, transaction, typed_row
from orchestrator.home import beside, runs_db
from orchestrator.runs.schema import RUNS_DB
from orchestrator.runs.status import ACTIVE, RunStatus, Target


@dataclass(frozen=True)
class RunRecord:
    """One run: the estimate (est_*) and, once it ends, the measurement, side by side."""

    run_id: str
    job_name: str
    job_path: str
    job_json: str
    target: Target
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
    status: RunStatus
    run_dir: str
    pid: int | None
    cluster: str | None  # SkyPilot cluster name (cloud)
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
    device: str | None = None  # CUDA_VISIBLE_DEVICES of a local run ("cpu" for the CPU)
    sky_job_id: int | None = None  # SkyPilot's job id (managed job, or the job on the cluster)
    request_id: str | None = None  # SkyPilot's request id: known before the job id, so an interrupted launch is found
    output_uri: str | None = None  # where the trained output lives until pulled (a bucket), else None: the run folder

    @property
    def output_dir(self) -> Path:
        return Path(self.run_dir) / "output"

    @property
    def budget_left_usd(self) -> float:
        """What a resumed session may still spend: the budget less what the earlier sessions cost."""
        return max(0.0, self.budget_usd - (self.cost_usd or 0.0))

    def as_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["job"] = json.loads(data.pop("job_json"))
        metrics_json = data.pop("metrics_json")  # one shape whatever the state: metrics null until the first
        data["metrics"] = json.loads(metrics_json) if metrics_json else None
        data["spot"] = bool(self.spot)
        data["stop_requested"] = bool(self.stop_requested)
        data["status"], data["target"] = self.status.value, self.target.value
        return data


COLUMNS = [f.name for f in fields(RunRecord)]
# what new_run_id makes, and the timestamped ids of version-1 files (r-20261122-112849-76524c), which still load
RUN_ID = re.compile(r"r-(?:[0-9a-f]{8}|[0-9]{8}-[0-9]{6}-[0-9a-f]{6})")
# a SkyPilot cluster name (sky/utils/common_utils.py's pattern: a letter first): `orch pull` hands it to rsync, and
# `orch stop` to SkyPilot, so a hand-edited `-e CMD` read as an option must never reach them
CLUSTER_NAME = re.compile(r"[a-zA-Z](?:[-_.a-zA-Z0-9]*[a-zA-Z0-9])?")


def record_from_row(path: Path, row) -> RunRecord:
    """A row as a record, refused as damaged (like a number out of range) unless its id is one orch makes and its
    folder is a run folder of that id (`.../runs/<run_id>`): commands delete that folder and stop the process
    started there, so a hand-edited `../..` or `/` must never reach them. The folder is the one beside this
    database (`runs/<run_id>` in its ORCH_HOME), whatever home the row was written in: a moved home said every run's
    folder was gone, and a copied one resumed its runs in the original's folders, spending there."""
    record = RunRecord(**typed_row(path, "runs", RunRecord, row))
    if not RUN_ID.fullmatch(record.run_id):
        raise damaged_row(path, "runs", record.run_id, "run_id", record.run_id,
                          "not an id orch makes (r- and 8 hex digits)")
    folder = Path(record.run_dir)
    if (folder.name, folder.parent.name) != (record.run_id, "runs"):
        raise damaged_row(path, "runs", record.run_id, "run_dir", record.run_dir, f"not a folder runs/{record.run_id}")
    if record.cluster is not None and not CLUSTER_NAME.fullmatch(record.cluster):
        raise damaged_row(path, "runs", record.run_id, "cluster", record.cluster, "not a SkyPilot cluster name")
    record = replace(record, run_dir=str(Path(path).parent / "runs" / record.run_id),
                     job_path=beside(path, record.job_path))  # a queued job's copy, in this home
    # whole numbers a type check lets through: `spot = 7` read as spot, `train_tokens = -5` summed into reports
    for column, least, most in (("spot", 0, 1), ("stop_requested", 0, 1), ("train_tokens", 0, None), ("pid", 1, None)):
        value = getattr(record, column)
        if value is not None and (value < least or (most is not None and value > most)):
            allowed = f"{least} or {most}" if most is not None else f"a whole number from {least}"
            raise damaged_row(path, "runs", record.run_id, column, value, f"not {allowed}")
    return record


def new_run_id() -> str:
    """r- and 8 hex digits: unique across processes, and short enough that a few characters pick one run."""
    return "r-" + secrets.token_hex(4)


def insert_run(db, record: RunRecord) -> None:
    """Insert inside a caller's transaction (the scheduler claims a job and records its run in one)."""
    values = [getattr(record, c) for c in COLUMNS]
    values = [v.value if isinstance(v, (RunStatus, Target)) else v for v in values]
    db.execute(f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", values)


def _kind_alone(text: str) -> bool:
    """`text` is no more than the kind of an id (``, `r`, `r-`, `j-`): the start of every one, so it names none."""
    return not text.removeprefix("r-").removeprefix("j-") or text in ("r", "j")


def matching(ids: list[str], text: str) -> list[str]:
    """The ids `text` names: an exact id, else every id it is a prefix of. A plain string comparison: `%` and `_` are
    characters, not patterns."""
    if text in ids:
        return [text]
    if _kind_alone(text):
        return []
    return [i for i in ids if i.startswith(text)]


def spelled_otherwise(ids: list[str], text: str) -> list[str]:
    """The ids `text` would name in another case, without its spaces or with its `r-`/`j-`: not taken (an id is
    exact or a prefix), only offered, so `R-0A1B` from a screenshot is told the id it means."""
    text = text.strip().lower()
    if _kind_alone(text):
        return []
    return [i for i in ids if i.startswith(text) or i.partition("-")[2].startswith(text)]


T = TypeVar("T")  # a row as its store reads it: RunRecord, JobRecord


def rows_named(path: Path, table: str, column: str, text: str, get: Callable[[str], T | None]) -> list[T]:
    """The rows `text` names (see `matching`), found among a table's ids alone and read one by one with `get`: a row
    damaged by hand was refused whenever the whole table was read, so `orch stop` could not stop a billing run until
    somebody repaired another run's row with sqlite3. One deleted since its id was read is left out."""
    with reading(path) as db:
        ids = [row[0] for row in db.execute(f"SELECT {column} FROM {table}") if isinstance(row[0], str)]
    names = matching(ids, text)
    if not names and (meant := spelled_otherwise(ids, text)):
        shown = ", ".join(sorted(meant)[:3]) + (" or another" if len(meant) > 3 else "")
        raise UserError(f"no {table.removesuffix('s')} id is {checks.short_repr(text)} or starts so (an id is given "
                        f"as printed: lower case, with its {meant[0][:2]} and no spaces): did you mean {shown}?")
    found = (get(name) for name in names)
    return [row for row in found if row is not None]


class RunStore:
    def __init__(self, path: Path | None = None, write_wait_s: float | None = None):
        """`write_wait_s`: how long a write waits for another process's write lock (default: the busy timeout). A
        listing's refresh waits briefly, then shows what is recorded (cli/runs.refreshed_runs); reads never wait
        for a writer."""
        self.path = path or runs_db()
        self.write_wait_s = write_wait_s
        open_database(self.path, RUNS_DB)

    def _writing(self):
        return transaction(self.path, self.write_wait_s)

    def insert(self, record: RunRecord) -> None:
        with self._writing() as db:
            insert_run(db, record)

    def update(self, run_id: str, **values) -> None:
        """For the run state machine alone (orchestrator/launch/lifecycle.py)."""
        self._update(run_id, values)

    def update_as_read(self, record: RunRecord, slot_capacity: int | None = None, **values) -> bool:
        """update() only if the run is still in the state and session `record` read (its status and start), in one
        statement; False when another command moved it meanwhile. Two callers that each saw the run end recorded
        its time and cost twice, one that saw an earlier session end ended the resumed one, and two resumes (two
        scheduler passes, two `orch resume`) each started a trainer in the same folder. With `slot_capacity`, also
        only while fewer other active local runs than that hold the run's device, counted in the same statement as
        JobQueue.claim counts them: a scheduler's resume of a failed run and another's claim of its free card each
        started a trainer there."""
        return self._update(record.run_id, values, record, slot_capacity)

    def _update(self, run_id: str, values: dict, as_read: RunRecord | None = None,
                slot_capacity: int | None = None) -> bool:
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        values = {k: v.value if isinstance(v, (RunStatus, Target)) else v for k, v in values.items()}
        where, keys = "run_id = ?", [run_id]
        if as_read is not None:
            where += " AND status = ? AND started_at IS ?"
            keys += [as_read.status.value, as_read.started_at]
        if slot_capacity is not None and as_read is not None and as_read.device is not None:
            where += (f" AND (SELECT COUNT(*) FROM runs WHERE target = ? AND device = ? AND run_id != ? AND status IN "
                      f"({', '.join('?' * len(ACTIVE))})) < ?")
            keys += [Target.LOCAL.value, as_read.device, run_id, *(s.value for s in ACTIVE), slot_capacity]
        with self._writing() as db:
            done = db.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE {where}",
                              [*values.values(), *keys])
        return done.rowcount > 0

    def get(self, run_id: str) -> RunRecord | None:
        with reading(self.path) as db:
            row = db.execute(f"SELECT {', '.join(COLUMNS)} FROM runs WHERE run_id = ?", [run_id]).fetchone()
        return record_from_row(self.path, row) if row else None

    def find(self, text: str) -> list[RunRecord]:
        """Runs an id or a unique prefix of one names (see `rows_named`)."""
        return rows_named(self.path, "runs", "run_id", text, self.get)

    def all(self) -> list[RunRecord]:
        with reading(self.path) as db:
            rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM runs ORDER BY created_at").fetchall()
        return [record_from_row(self.path, row) for row in rows]
