"""State that survives: runs.db is versioned and migrated, a file orch cannot use is refused with the fix and left
untouched, ids match exactly or by a unique prefix, and a run whose evidence is broken ends with the reason."""

import dataclasses
import json
import os
import re
import sqlite3
import time
from pathlib import Path

import pytest

from gpu_catalog.errors import UserError
from orchestrator import db as database
from orchestrator.launch import lifecycle
from orchestrator.runs.schema import RUNS_DB
from orchestrator.runs.status import RunStatus, Target
from orchestrator.runs.store import RunRecord, RunStore, matching, new_run_id, spelled_otherwise
from orchestrator.spend import wall_s_so_far
from trainer.status import TrainStatus

V1_RUNS = """CREATE TABLE runs (run_id TEXT PRIMARY KEY, job_name TEXT NOT NULL, job_path TEXT NOT NULL,
job_json TEXT NOT NULL, target TEXT NOT NULL, gpu TEXT NOT NULL, provider TEXT NOT NULL, region TEXT NOT NULL,
spot INTEGER NOT NULL, price_per_hour REAL NOT NULL, budget_usd REAL NOT NULL, est_vram_gib REAL,
est_tokens_per_s REAL, est_hours REAL, est_cost_usd REAL, est_basis TEXT, status TEXT NOT NULL, run_dir TEXT NOT NULL,
pid INTEGER, cluster TEXT, stop_requested INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, started_at REAL,
ended_at REAL, train_tokens INTEGER, tokens_per_s REAL, peak_vram_gib REAL, wall_s REAL, cost_usd REAL, message TEXT,
metrics_json TEXT)"""
RUN_ID = "r-0a1b2c3d"  # make_record's run
RUN_DIR = f"runs/{RUN_ID}"  # its folder, next to runs.db where orch keeps it


def make_record(run_dir, run_id=RUN_ID, **changes) -> RunRecord:
    values = dict(run_id=run_id, job_name="tiny", job_path="/x/job.yaml", job_json="{}", target=Target.LOCAL,
                  gpu="CPU", provider="local", region="local", spot=0, usd_per_hour=3.6, budget_usd=1.0,
                  est_vram_gib=None, est_tokens_per_s=None, est_hours=None, est_cost_usd=None, est_basis=None,
                  status=RunStatus.RUNNING, run_dir=str(run_dir), pid=None, cluster=None, stop_requested=0,
                  created_at=time.time(), started_at=time.time() - 10, ended_at=None, train_tokens=None,
                  tokens_per_s=None, peak_vram_gib=None, wall_s=None, cost_usd=None, message=None, metrics_json=None)
    return RunRecord(**{**values, **changes})


def test_a_version_1_database_is_migrated_and_keeps_every_run(tmp_path):
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as db:
        db.execute(V1_RUNS)
        row = ["r-20261122-112849-76524c", "tiny", "/j", "{}", "local", "CPU", "local", "local", 0, 0.5, 1.0,
               None, None, None, None, None, "ok", str(tmp_path / "runs" / "r-20261122-112849-76524c"), 11,
               "local:cpu", 0, 1.0, 2.0, 3.0, None, None,
               None, 1.0, 0.1, None, None]
        db.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(row))})", row)
        cloud = [*row[:4], "cloud", "A100", "aws", "us-east-1", 1, *row[9:17],
                 str(tmp_path / "runs" / "r-20261122-112849-aaaaaa"), None, "orch-76524c:7", *row[20:]]
        cloud[0] = "r-20261122-112849-aaaaaa"
        db.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(cloud))})", cloud)
    local_run, cloud_run = RunStore(path).all()
    assert (local_run.usd_per_hour, local_run.device, local_run.cluster) == (0.5, "cpu", None)
    assert (cloud_run.cluster, cloud_run.sky_job_id) == ("orch-76524c", 7)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == RUNS_DB.version


@pytest.mark.parametrize("content, expected", [
    (b"this is not a database at all, just text" * 100, "not a SQLite database"),
    (b"x", "not a SQLite database"),  # one byte: SQLite took it for an empty file and wrote a database over it
    (b"SQLite format 3\x00" + b"\xff" * 84, "not a usable SQLite database"),  # its header, damaged past it
    (None, "newer orch"),
    ("foreign", "another schema"),
])
def test_a_database_orch_cannot_use_is_refused_and_left_as_it_was(tmp_path, content, expected):
    path = tmp_path / "runs.db"
    if content is None:
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA user_version = 99")
    elif content == "foreign":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE runs (id INTEGER, payload TEXT)")
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(UserError, match=expected) as error:
        RunStore(path)
    assert "move it away" in str(error.value) or "upgrade orch" in str(error.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize("table, column", [("runs", "message"), ("runs", "output_uri"), ("jobs", "reason")])
def test_a_table_missing_any_column_orch_reads_is_refused_before_any_work(sky, tmp_path, monkeypatch, table,
                                                                         column):
    """Only a few columns were checked: a runs.db with `message` dropped by hand gave `orch runs` a traceback (no
    such column), and `orch launch` made a run folder before failing to insert its record."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    two_runs(tmp_path)
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as db:
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    before = path.read_bytes()
    for args in (["runs"], ["spend"], ["queue", "--json"],
                 ["launch", str(Path(__file__).parents[1] / "examples" / "tiny.yaml"), "--budget", "0.05", "--yes"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert f"{path} holds a `{table}` table of another schema (no {column}); orch never overwrites it: move it " \
               "away" in result.stderr and len(result.stderr.strip().splitlines()) == 1, (args, result.output)
    assert path.read_bytes() == before and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("make", ["folder", "pipe", "device"])
def test_a_database_that_is_no_file_is_named_as_what_it_is(tmp_path, make):
    """A folder, a pipe or a link to /dev/zero at runs.db: `unable to open database file` or `disk I/O error`, with
    the advice to check that the folder is writable."""
    path = tmp_path / "runs.db"
    {"folder": path.mkdir, "pipe": lambda: os.mkfifo(path), "device": lambda: path.symlink_to("/dev/zero")}[make]()
    state = "is a folder, not a file" if make == "folder" else "is not a regular file (a device or a pipe)"
    with pytest.raises(UserError, match=f"database '{path}' {re.escape(state)}: orch never overwrites it: move it "
                                        "away, or give --db another file"):
        RunStore(path)


@pytest.mark.parametrize("make_home", ["file", "read-only parent"])
def test_an_unusable_orch_home_fails_at_once_with_its_path(tmp_path, monkeypatch, make_home):
    if make_home == "file":
        home = tmp_path / "home-file"
        home.write_text("x")
    else:
        home = tmp_path / "blocked" / "orch"
        (tmp_path / "blocked").write_text("a file where a folder should be")
    started = time.monotonic()
    with pytest.raises(UserError, match="ORCH_HOME") as error:
        RunStore(home / "runs.db")
    assert str(home) in str(error.value) and time.monotonic() - started < 5


IDS = ["r-0a1b2c3d", "r-0a9f0000", "r-ffff0000"]


@pytest.mark.parametrize("text, expected", [
    ("r-0a1b2c3d", ["r-0a1b2c3d"]), ("r-0a", ["r-0a1b2c3d", "r-0a9f0000"]), ("r-", []), ("r", []),
    ("%", []), ("_", []), ("", []), ("r-0a1b2c3d-x", []), ("0a1", []), ("R-0A1B", []), (" r-0a1", []),
])
def test_ids_match_exactly_or_by_prefix_never_as_patterns(text, expected):
    assert matching(IDS, text) == expected


@pytest.mark.parametrize("text, meant", [("0a1", ["r-0a1b2c3d"]), ("R-0A1B", ["r-0a1b2c3d"]),
                                         (" r-ff ", ["r-ffff0000"]), ("R-", []), ("0b", [])])
def test_an_id_in_another_case_or_without_its_kind_is_offered_not_taken(text, meant):
    assert spelled_otherwise(IDS, text) == meant


@pytest.mark.parametrize("content", [b"\xff\xfe{not json",
                                     b'{"status": "ok", "steps": 3, "x": ' + b"[" * 950 + b"]" * 950 + b"}",
                                     b'{"status": "ok", "steps": 1e400}', b'{"status": "ok", "steps": "32"}',
                                     b'{"status": "preempted", "steps": -1}'])
def test_a_garbage_metrics_file_ends_the_run_with_the_reason(tmp_path, content):
    """A value nested 950 deep parsed, then its walk exhausted the stack: every command that looked at the run
    (runs, spend, stop, the scheduler) ended in a traceback until the file was deleted by hand. Steps that are no
    count (`1e400`, text) ended a run stopped at step 32 of 49 as ok, beyond any resume."""
    store = RunStore(tmp_path / "runs.db")
    (tmp_path / RUN_DIR / "output").mkdir(parents=True)
    (tmp_path / RUN_DIR / "output" / "metrics.json").write_bytes(content)
    store.insert(make_record(tmp_path / RUN_DIR))
    ended = lifecycle.finish(store, store.get("r-0a1b2c3d"))
    assert ended.status is RunStatus.FAILED and "metrics.json is unreadable" in ended.message


@pytest.mark.parametrize("figures, column", [
    ('"loss_curve": [[1, NaN]], "eval_perplexity": Infinity', None),
    ('"peak_vram_gib": {"allocated": Infinity, "reserved": -1}', "peak_vram_gib"),
    ('"tokens_per_s": NaN', "tokens_per_s"), ('"tokens_per_s": -5', "tokens_per_s"),
    ('"tokens_per_s": "fast"', "tokens_per_s"),
    ('"train_tokens": 1e400', "train_tokens"), ('"train_tokens": 100000000000000000000000', "train_tokens"),
    ('"train_tokens": 2.5', "train_tokens"), ('"message": ["x"]', "message"),
])
def test_figures_the_store_would_refuse_are_recorded_as_null_and_the_run_kept(tmp_path, figures, column):
    """A metrics.json with NaN, Infinity, a negative or text figure was copied into runs.db, whose own row check then
    called the row damaged in every later command: the record could only be deleted. A figure too large for an
    INTEGER column failed the run's end with a traceback. The good figures beside a bad one are kept."""
    good = {"status": "ok", "steps": 2, "train_tokens": 4096, "tokens_per_s": 1234.5,
            "peak_vram_gib": {"reserved": 7.5}, "message": "done"}
    store = RunStore(tmp_path / "runs.db")
    (tmp_path / RUN_DIR / "output").mkdir(parents=True)
    text = json.dumps({key: value for key, value in good.items() if key != column})[:-1] + f", {figures}}}"
    (tmp_path / RUN_DIR / "output" / "metrics.json").write_text(text)
    store.insert(make_record(tmp_path / RUN_DIR))
    lifecycle.finish(store, store.get(RUN_ID))
    (ended,) = store.all()
    assert ended.status is RunStatus.OK and "NaN" not in ended.metrics_json and "Infinity" not in ended.metrics_json
    kept = {"train_tokens": 4096, "tokens_per_s": 1234.5, "peak_vram_gib": 7.5, "message": "done"}
    assert {name: getattr(ended, name) for name in kept} == {**kept, **({column: None} if column else {})}


def test_a_deleted_run_folder_ends_the_run_with_the_reason(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    store.insert(make_record(tmp_path / RUN_DIR))
    ended = lifecycle.finish(store, store.get("r-0a1b2c3d"))
    assert ended.status is RunStatus.FAILED and "is gone" in ended.message
    with pytest.raises(UserError, match="is gone"):
        lifecycle.resume(store, ended)


def test_a_local_run_whose_folder_is_gone_costs_at_most_its_budget_and_one_meter_interval(tmp_path):
    """Its trainer's last write went with the folder, so its end was `now`: looked at 157 s after a launch whose
    trainer ran 13 s, a $0.0003 run recorded $0.000426. Its trainer's meter ends it within an interval of its budget."""
    from trainer.meter import METER_INTERVAL_S

    store = RunStore(tmp_path / "runs.db")
    store.insert(make_record(tmp_path / RUN_DIR, started_at=time.time() - 3600, budget_usd=0.5))
    ended = lifecycle.finish(store, store.get(RUN_ID))
    assert ended.status is RunStatus.FAILED
    assert ended.cost_usd == pytest.approx(0.5 + 3.6 * METER_INTERVAL_S / 3600)  # not an hour at $3.60


def test_a_detached_runs_cost_stops_when_its_trainer_ended_not_when_someone_looks(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    output = tmp_path / RUN_DIR / "output"
    output.mkdir(parents=True)
    metrics = output / "metrics.json"
    metrics.write_text(json.dumps({"status": "ok", "train_tokens": 10}))
    started = time.time() - 3600
    ended = started + 60
    import os

    os.utime(metrics, (ended, ended))
    store.insert(make_record(tmp_path / RUN_DIR, started_at=started, pid=999999))
    record = lifecycle.finish(store, store.get("r-0a1b2c3d"))
    assert record.wall_s == pytest.approx(60, abs=1) and record.cost_usd == pytest.approx(0.06, abs=0.002)


def test_every_trainer_status_is_a_run_status_with_its_exit_code():
    assert {RunStatus.of_trainer(s) for s in TrainStatus} <= set(RunStatus)
    assert RunStatus.of_trainer("interrupted") is RunStatus.STOPPED
    assert len({s.exit_code for s in TrainStatus}) == len(TrainStatus)  # each status its own code


@pytest.mark.parametrize("column, value", [
    ("run_dir", "sleep"), ("run_dir", ""), ("run_dir", "/"), ("run_dir", "../../etc"),
    ("run_dir", "{home}/runs/r-0a1b2c3d/../../../etc"), ("run_dir", "{home}/runs/r-ffff0000"),
    ("run_id", "r-../../x"), ("run_id", "x"), ("run_id", "r-0A1B2C3D"), ("run_id", "r-0a1b2c3d\x1b[2J"),
])
def test_a_row_naming_another_folder_or_an_id_orch_never_makes_is_refused_as_damaged(tmp_path, column, value):
    """A hand-edited run folder reaches `rm -r` (a failed scheduled run) and the process match of `orch stop`."""
    store = RunStore(tmp_path / "runs.db")
    store.insert(make_record(tmp_path / RUN_DIR))
    with sqlite3.connect(tmp_path / "runs.db") as db:
        db.execute(f"UPDATE runs SET {column} = ?", [value.format(home=tmp_path)])
    named = value if column == "run_id" else RUN_ID
    for read in (store.all, lambda: store.get(named)):
        with pytest.raises(UserError, match=f"damaged: {column} is ") as error:
            read()
        assert "\n" not in str(error.value) and "\x1b" not in str(error.value)
        assert "Fix or delete that row with sqlite3" in str(error.value)
    try:  # an id orch reads in one case (`r-0A1B2C3D`) is named by no id given
        assert store.find(named) == []
    except UserError as error:
        assert f"damaged: {column} is " in str(error)


def test_a_damaged_row_keeps_no_command_from_another_run(tmp_path, monkeypatch):
    """One row edited by hand made `orch stop`, `logs` and `pull` of every other run refuse, so a run still billing
    could not be stopped until that row was repaired with sqlite3. The listing still refuses."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    two_runs(tmp_path)
    (tmp_path / "runs" / "r-00000002").mkdir(parents=True)
    (tmp_path / "runs" / "r-00000002" / "train.log").write_text("step 1\n")
    with sqlite3.connect(tmp_path / "runs.db") as db:
        db.execute("UPDATE runs SET status = 'bogus' WHERE run_id = 'r-00000001'")
    for command in (["logs", "r-00000002"], ["pull", "r-00000002"], ["stop", "r-00000002"]):
        result = CliRunner().invoke(app, command)
        assert "is damaged" not in result.output, (command, result.output)
    assert "step 1" in CliRunner().invoke(app, ["logs", "r-00000002"]).stdout
    assert "is not running (status ok)" in CliRunner().invoke(app, ["stop", "r-00000002"]).stderr
    listing = CliRunner().invoke(app, ["runs"])
    assert listing.exit_code == 2 and "the runs row 'r-00000001' is damaged: status is 'bogus'" in listing.stderr
    for command in (["logs", "r-00000001"], ["logs", "r-0000000"]):  # the damaged run itself, by id or prefix
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2 and "is damaged" in result.stderr, (command, result.output)


def test_an_id_not_as_printed_is_refused_with_the_one_it_means(tmp_path, monkeypatch):
    """Ids matched in any case and without their `r-`, which is neither the id nor a prefix of it: now refused, in
    one line naming the id meant."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    two_runs(tmp_path)
    for text in ("R-00000001", "00000001"):
        result = CliRunner().invoke(app, ["logs", text])
        assert result.exit_code == 2, result.output
        assert result.stderr == (f"error: no run id is '{text}' or starts so (an id is given as printed: lower case, "
                                 "with its r- and no spaces): did you mean r-00000001?\n"), result.stderr


def test_an_ambiguous_prefix_names_the_runs_it_matches(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    two_runs(tmp_path)
    result = CliRunner().invoke(app, ["logs", "r-0000"])
    assert result.exit_code == 2, result.output
    assert "2 runs matching 'r-0000' (r-00000001, r-00000002): give more of the id." in result.stderr


def test_the_ids_orch_makes_now_and_made_before_are_read(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    for run_id in (new_run_id(), "r-20261122-112849-76524c"):
        store.insert(make_record(tmp_path / "runs" / run_id, run_id=run_id))
    assert len(store.all()) == 2


def test_runs_export_says_where_it_wrote_with_times_a_spreadsheet_reads(tmp_path, monkeypatch):
    """The export wrote its file in silence, with times as epoch seconds (1796247240.55)."""
    import csv

    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    RunStore().insert(make_record(tmp_path / RUN_DIR, status=RunStatus.FAILED, created_at=1_796_247_240.55,
                                  ended_at=1_796_247_250.0, message="SkyPilot could not launch: no credentials",
                                  pid=23178))
    RunStore().insert(make_record(tmp_path / "runs" / "r-bbbbbbbb", run_id="r-bbbbbbbb", status=RunStatus.FAILED))
    result = CliRunner().invoke(app, ["runs", "--export", str(tmp_path / "runs.csv"), "--json"])
    assert result.exit_code == 0, result.output
    assert f"wrote 2 runs to {tmp_path / 'runs.csv'}" in result.stderr and json.loads(result.stdout)
    row, unstarted = csv.DictReader((tmp_path / "runs.csv").open())
    assert row["created_at"] == "2026-12-02 21:34:01+00:00"
    assert (row["pid"], unstarted["pid"]) == ("23178", "")  # a column with a gap was float: 23178.0
    said = CliRunner().invoke(app, ["logs", RUN_ID])  # not "before its trainer wrote a line": it may have written many
    assert said.exit_code == 2 and "is gone, so it has no log (it ended failed: SkyPilot could not" in said.stderr
    (tmp_path / RUN_DIR).mkdir(parents=True)
    (tmp_path / RUN_DIR / "train.log").write_text("")  # the launcher makes it before the trainer writes
    said = CliRunner().invoke(app, ["logs", RUN_ID])  # an empty log printed nothing, exit 0
    assert said.exit_code == 2 and "before its trainer wrote a line" in said.stderr


def two_runs(home):
    """A runs.db holding two runs, written out whole (no -wal file left): what a user's file looks like at rest."""
    store = RunStore(home / "runs.db")
    for run_id in ("r-00000001", "r-00000002"):
        store.insert(make_record(home / "runs" / run_id, run_id=run_id, status=RunStatus.OK, message="done"))
    return store


def test_a_database_damaged_past_its_header_is_refused_by_every_command_in_one_line_and_kept(tmp_path, monkeypatch):
    """Bytes written over the runs table's page: `orch runs`, `spend`, `scheduler run --once` gave a traceback
    (database disk image is malformed), and `orch submit` wrote into the damaged file."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app
    from tests.trainer_helpers import write_job

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    two_runs(tmp_path)
    path = tmp_path / "runs.db"
    with path.open("r+b") as file:
        file.seek(4096 + 100)  # page 2, the runs table, past the page's own header
        file.write(bytes(range(256)) * 16)
    before = path.read_bytes()
    job = write_job(tmp_path)
    for args in (["runs"], ["spend"], ["logs", "r-00000001"], ["scheduler", "run", "--once"],
                 ["submit", str(job), "--budget", "1"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert f"{path} is damaged" in result.stderr and "restore a copy" in result.stderr, result.stderr
        assert "move it away" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == before


def test_a_database_damaged_while_open_fails_its_next_read_in_one_line_naming_the_file(tmp_path):
    store = two_runs(tmp_path)
    with (tmp_path / "runs.db").open("r+b") as file:
        file.seek(4096 + 100)
        file.write(bytes(range(256)) * 16)
    with pytest.raises(Exception, match="runs.db is damaged .*malformed.*restore a copy") as error:
        store.all()
    assert isinstance(error.value, database.UnusableDatabase)  # not a UserError: the scheduler rejects no job for it


def test_text_that_is_not_utf8_is_named_with_its_row_and_column(tmp_path):
    """A hand edit storing bytes that are not UTF-8 in a TEXT column: sqlite3 raised `Could not decode to UTF-8
    column 'message'` from every command that listed the runs."""
    store = two_runs(tmp_path)
    with sqlite3.connect(tmp_path / "runs.db") as db:
        db.execute("UPDATE runs SET message = CAST(X'ff41' AS TEXT) WHERE run_id = 'r-00000002'")
    for read in (store.all, lambda: store.get("r-00000002")):
        with pytest.raises(UserError, match="the runs row 'r-00000002' is damaged: message is .*, not UTF-8 text"):
            read()


def test_a_lock_held_past_the_busy_timeout_fails_a_write_in_one_line_and_no_read(tmp_path, monkeypatch):
    """Another process's write transaction (a sqlite3 shell, a backup): a traceback (database is locked) once the
    file was open, and at open the advice to check that the folder is writable. A write says the file is locked in
    one line; opening the file and reading it (`orch runs`, `orch spend`, `orch queue`) wrote too, so failed the same
    way."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app
    from tests.trainer_helpers import write_job

    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.2)
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    store = two_runs(tmp_path)
    job = write_job(tmp_path)
    holder = sqlite3.connect(tmp_path / "runs.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Exception, match=f"the database file {tmp_path / 'runs.db'} is locked by another "
                                            "process .*try again when that process finishes") as error:
            store.update("r-00000001", message="x")
        assert isinstance(error.value, database.LockedDatabase)
        result = CliRunner().invoke(app, ["submit", str(job), "--budget", "1"])
        assert result.exit_code == 2 and "is locked by another process" in result.stderr, result.output
        assert "writable" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert [r.run_id for r in RunStore(tmp_path / "runs.db").all()] == ["r-00000001", "r-00000002"]
        for args in (["runs"], ["spend"], ["logs", "r-00000001"], ["queue", "--json"]):
            result = CliRunner().invoke(app, args)
            # `logs` of this run exits 2 for its own reason (the run wrote no log), never for the lock
            assert result.exit_code == (2 if args[0] == "logs" else 0) and "locked" not in result.output, \
                (args, result.output)
    finally:
        holder.close()
    assert store.get("r-00000001").message == "done"


def test_runs_lists_what_is_committed_at_once_while_another_process_writes(tmp_path, monkeypatch):
    """`orch runs` beside a scheduler's pass or a launch (here a write transaction left open): opening runs.db set up
    its schema in a write transaction and every read took the write lock, so the listing waited out the busy timeout
    (30 s) and failed with `database is locked`. It now lists the committed runs at once; the refresh of a run whose
    trainer ended, a write, is left for later and said in one line."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    two_runs(tmp_path)
    output = tmp_path / RUN_DIR / "output"  # a detached run whose trainer has ended: a refresh records its end
    output.mkdir(parents=True)
    (output / "metrics.json").write_text(json.dumps({"status": "ok", "train_tokens": 10}))
    RunStore().insert(make_record(tmp_path / RUN_DIR, pid=999999))
    holder = sqlite3.connect(tmp_path / "runs.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE runs SET message = 'uncommitted'")
    try:
        started = time.monotonic()
        result = CliRunner().invoke(app, ["runs", "--json"])
        assert time.monotonic() - started < 5, "waited on the write lock"
        assert result.exit_code == 0, result.output
        runs = {run["run_id"]: run for run in json.loads(result.stdout)}
        assert list(runs) == ["r-00000001", "r-00000002", RUN_ID]
        assert runs[RUN_ID]["status"] == "running" and runs["r-00000001"]["message"] == "done"
        said = result.stderr.strip().splitlines()
        assert len(said) == 1 and "not refreshed" in said[0] and str(tmp_path / "runs.db") in said[0]
    finally:
        holder.close()
    result = CliRunner().invoke(app, ["runs", "--json"])  # the lock gone, the refresh records the run's end
    assert result.exit_code == 0 and not result.stderr, result.output
    assert json.loads(result.stdout)[-1]["status"] == "ok"
    assert sorted(p.name for p in tmp_path.glob("runs.db*")) == ["runs.db"]  # one file at rest, to copy


def test_opening_a_current_database_writes_nothing_and_an_older_one_is_still_upgraded(tmp_path, monkeypatch):
    """Every open ran its schema set-up in a write transaction: a read-only command waited on another process's write
    lock before it could read. A file that needs setting up is still set up, and waits for the lock to do it."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "runs.db"
    two_runs(tmp_path)
    before = path.read_bytes()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert len(RunStore(path).all()) == 2
    finally:
        holder.close()
    assert path.read_bytes() == before
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 1")  # what an older orch left
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(database.LockedDatabase, match="is locked by another process"):
            RunStore(path)
    finally:
        holder.close()
    RunStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == RUNS_DB.version


def test_a_query_orch_got_wrong_is_not_blamed_on_the_file(tmp_path):
    """`no such column` is orch's bug: it was said as the database file's fault, with advice about its folder."""
    import sqlite3

    from orchestrator.db import transaction

    path = tmp_path / "x.db"
    sqlite3.connect(path).close()
    with pytest.raises(sqlite3.OperationalError):
        with transaction(path) as db:
            db.execute("SELECT nope FROM nothing")


def test_the_kind_of_id_alone_says_what_to_give(tmp_path, monkeypatch):
    """`orch logs r-` said "no run matching 'r-'" beside the one run there is, whose id starts so."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    two_runs(tmp_path)
    result = CliRunner().invoke(app, ["logs", "r-"])
    assert result.exit_code == 2 and "'r-' is only the start of an id: give a run id" in result.stderr, result.output


@pytest.mark.parametrize("metrics, ended_as", [(None, RunStatus.FAILED), ({"status": "ok", "train_tokens": 10},
                                                                            RunStatus.OK)])
def test_stopping_a_run_whose_trainer_ended_unseen_records_how_it_ended_and_stops_nothing(tmp_path, metrics,
                                                                                          ended_as):
    """`orch stop` on a run recorded `running` whose trainer had died made it `stopped` (the scheduler cancels such a
    job) where `orch runs` looking first made it `failed` (the scheduler retries it); one that had ended ok was said
    "is not running" with exit 0 and marked as stop-requested."""
    store = RunStore(tmp_path / "runs.db")
    output = tmp_path / RUN_DIR / "output"
    output.mkdir(parents=True)
    if metrics:
        (output / "metrics.json").write_text(json.dumps(metrics))
    store.insert(make_record(tmp_path / RUN_DIR, pid=999999))  # no such process
    with pytest.raises(UserError, match=f"is not running \\(status {ended_as.value}\\)"):
        lifecycle.request_stop(store, store.get(RUN_ID))
    record = store.get(RUN_ID)
    assert record.status is ended_as and not record.stop_requested


@pytest.mark.parametrize("status, said", [(RunStatus.OK, "ended ok: nothing to resume"),
                                          (RunStatus.STOPPED, "cannot resume: .* is not UTF-8 text")])
def test_orch_resume_says_why_a_run_cannot_resume_before_it_plans_the_run_again(tmp_path, monkeypatch, status, said):
    """The run folder's job was planned first: an `ok` run with a damaged copy was refused for the copy, not as
    having nothing to resume, and a stopped one without "cannot resume ... Restore the run folder's copy"."""
    from typer.testing import CliRunner

    from orchestrator.cli import runs as runs_cli
    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    RunStore().insert(make_record(tmp_path / RUN_DIR, status=status, cost_usd=0.0))
    (tmp_path / RUN_DIR).mkdir(parents=True)
    (tmp_path / RUN_DIR / "job.yaml").write_bytes(b"model: \xff\n")
    monkeypatch.setattr(runs_cli, "same_target", lambda *args: pytest.fail("planned before the run's checks"))
    result = CliRunner().invoke(app, ["resume", RUN_ID])
    assert result.exit_code == 2 and re.search(said, result.stderr), result.output


def test_a_run_whose_resume_the_trainer_refused_resumes_once_its_job_copy_is_fixed(tmp_path):
    """A resume of an edited job copy ended the run bad_config, and `orch resume` then said "nothing to resume" with
    61 steps of checkpoints in its folder; a bad_config run with no checkpoint (refused before training) has none."""
    store = RunStore(tmp_path / "runs.db")
    store.insert(make_record(tmp_path / RUN_DIR, status=RunStatus.BAD_CONFIG, cost_usd=0.0))
    (tmp_path / RUN_DIR).mkdir(parents=True)
    with pytest.raises(UserError, match="ended bad_config: nothing to resume"):
        lifecycle.resume(store, store.get(RUN_ID))
    step = tmp_path / RUN_DIR / "output" / "checkpoints" / "step-00000061"
    step.mkdir(parents=True)
    (step / "state.json").write_text("{}")
    (step.parent / "latest").write_text(step.name)
    with pytest.raises(UserError) as refused:  # past "nothing to resume": to the run's job copy, which is not there
        lifecycle.resume(store, store.get(RUN_ID))
    assert "nothing to resume" not in str(refused.value) and "cannot resume" in str(refused.value)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_export_with_no_runs_yet_still_names_every_column(tmp_path, monkeypatch, suffix):
    """With no run, the .csv was one empty line (pandas: EmptyDataError) and the .parquet had no column."""
    import pandas as pd
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    path = tmp_path / f"runs{suffix}"
    assert CliRunner().invoke(app, ["runs", "--export", str(path)]).exit_code == 0
    frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert len(frame) == 0 and {"run_id", "status", "created_at", "usd_per_hour"} <= set(frame.columns)


def test_a_moved_or_copied_home_keeps_its_own_run_folders(tmp_path, monkeypatch):
    """run_dir was used as written: a home moved to a bigger disk said every run's folder was gone, and a copied one
    resumed its runs in the original's folders (spending there, recorded here)."""
    import shutil

    from typer.testing import CliRunner

    from orchestrator.cli.main import app
    from orchestrator.schedule.queue import JobQueue

    old, new = tmp_path / "old-home", tmp_path / "new-home"
    (old / "runs" / RUN_ID).mkdir(parents=True)
    (old / "runs" / RUN_ID / "train.log").write_text("step 1: loss 2.0\n")
    queued_copy = old / "jobs" / "j-0a1b2c3d" / "job.yaml"  # and its queued jobs: rejected for a file "not there"
    RunStore(old / "runs.db").insert(make_record(old / "runs" / RUN_ID, status=RunStatus.STOPPED,
                                                 job_path=str(queued_copy)))
    JobQueue(old / "runs.db").submit("tiny", queued_copy.name, "{}", None, None, 0, "j-0a1b2c3d")
    shutil.copytree(old, new)
    moved_copy = str(new / "jobs" / "j-0a1b2c3d" / "job.yaml")
    assert JobQueue(new / "runs.db").get("j-0a1b2c3d").job_path == moved_copy
    assert RunStore(new / "runs.db").get(RUN_ID).job_path == moved_copy  # how a job's runs are found
    assert RunStore(old / "runs.db").get(RUN_ID).job_path == str(queued_copy)
    (old / "runs" / RUN_ID / "train.log").write_text("the original home's log\n")
    assert RunStore(new / "runs.db").get(RUN_ID).run_dir == str(new / "runs" / RUN_ID)
    monkeypatch.setenv("ORCH_HOME", str(new))
    logs = CliRunner().invoke(app, ["logs", RUN_ID])
    assert logs.exit_code == 0 and "step 1: loss 2.0" in logs.output, logs.output


def test_a_stop_interrupted_while_it_waits_says_the_trainer_goes_on_saving(tmp_path, monkeypatch):
    """`orch stop` waits for the trainer's checkpoint: Ctrl-C during that wait was a traceback; the stop was asked
    all the same, so it says so and exits 130 as an interrupted command does."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    (tmp_path / RUN_DIR).mkdir(parents=True)
    RunStore().insert(make_record(tmp_path / RUN_DIR))
    monkeypatch.setattr(lifecycle, "request_stop", lambda store, record: "stopping r-0a1b2c3d")

    def interrupted(store, run_id):
        raise KeyboardInterrupt

    monkeypatch.setattr(lifecycle, "wait_for_end", interrupted)
    result = CliRunner().invoke(app, ["stop", RUN_ID])
    assert result.exit_code == 130, result.output
    assert "no longer waiting: r-0a1b2c3d goes on saving its checkpoint" in " ".join(result.stderr.split())


def test_a_runs_json_has_one_shape_before_and_after_its_metrics(tmp_path):
    """`orch runs --json` kept `metrics_json` beside `metrics: null` until the first metrics, then dropped it: a
    script reading the runs saw the keys change with the run's state."""
    before = make_record(tmp_path, metrics_json=None).as_dict()
    after = make_record(tmp_path, metrics_json=json.dumps({"steps": 3})).as_dict()
    assert before.keys() == after.keys() and "metrics_json" not in before
    assert before["metrics"] is None and after["metrics"] == {"steps": 3}


def test_a_running_runs_hours_are_its_earlier_sessions_and_this_ones_so_far_as_its_cost_is(tmp_path):
    """`orch runs` showed a resumed run's earlier sessions' hours (a first session's as `-`) beside its live cost."""
    record = make_record(tmp_path / RUN_DIR, wall_s=100.0, started_at=time.time() - 50)
    assert 149 < lifecycle.live_figures(record)["wall_s"] < 160
    assert wall_s_so_far(dataclasses.replace(record, status=RunStatus.OK)) == 100.0


def test_a_running_runs_live_figures_are_its_sessions_progress_so_far(tmp_path):
    """`orch runs` showed `running - - -` for a run its progress.json said had trained 18 steps at 565 tok/s in 0.88
    GiB; a resumed one showed its last session's figures."""
    record = make_record(tmp_path / RUN_DIR, tokens_per_s=7000.0, peak_vram_gib=0.5)  # the last session's
    assert lifecycle.live_figures(record).items() >= dict.fromkeys(("train_tokens", "tokens_per_s",
                                                                    "peak_vram_gib")).items()  # no progress yet
    (tmp_path / RUN_DIR / "output").mkdir(parents=True)
    (tmp_path / RUN_DIR / "output" / "progress.json").write_text(json.dumps(
        {"step": 18, "planned_steps": 49, "tokens_per_s": 900.0, "session_tokens_per_s": 565.0, "train_tokens": 4608,
         "peak_vram_gib": {"allocated": None, "reserved": None, "process_rss": 0.88}}))
    figures = lifecycle.live_figures(record)
    assert {k: figures[k] for k in ("train_tokens", "tokens_per_s", "peak_vram_gib")} == {
        "train_tokens": 4608, "tokens_per_s": 565.0, "peak_vram_gib": 0.88}
    ended = dataclasses.replace(record, status=RunStatus.OK)
    assert lifecycle.live_figures(ended) is None
