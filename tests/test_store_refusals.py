"""What orch keeps beside its stores, refused as bad input is (tests/test_bad_input.py): an emptied runs.db beside run
folders, a runs.db linked to nothing, a queued job's emptied job_path, a run's deleted folder, and a generated trace
named as another format. Each exits 2 with one `error: ...` line that names what is wrong, and writes nothing."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from tests import test_bad_input
from tests.test_bad_input import RUN_ID, Inputs

inputs = test_bad_input.inputs  # the bad-input cases' world: ORCH_HOME, a working folder and files to write


def refused(args: list[str]) -> str:
    """The one error line a refused command printed."""
    result = CliRunner().invoke(app, args)
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, result.output)
    return lines[0]


def emptied_runs_db(inputs: Inputs) -> Path:
    """runs.db truncated to 0 bytes (a full disk, a stray `>`), its run's folder still in ORCH_HOME/runs."""
    (inputs.home / "runs" / RUN_ID).mkdir(parents=True)
    path = inputs.home / "runs.db"
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize("args", [["runs"], ["spend"], ["scheduler", "run", "--once", "--monthly-cap", "5"]])
def test_an_emptied_runs_db_beside_run_folders_is_refused_and_left_empty(inputs, args):
    """It was taken as a new file: `orch runs` listed no run, `orch spend` said $0 (a --monthly-cap was measured
    against it), and a schema was written into it. Beside no run folder, it is new."""
    path = emptied_runs_db(inputs)
    said = refused(args)
    assert f"{path} is empty (0 bytes), but {inputs.home / 'runs'} holds 1 run folder; orch never overwrites it: " \
        "restore it from a backup, or, to start a new record, move it away" in said, said
    assert path.read_bytes() == b"" and sorted(p.name for p in inputs.home.iterdir()) == ["runs", "runs.db"]
    (inputs.home / "runs" / RUN_ID).rmdir()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("target", ["gone/runs.db", "runs-moved.db"], ids=["folder-missing", "file-missing"])
def test_a_runs_db_linked_to_nothing_names_the_link_and_its_target(inputs, target):
    """SQLite said "unable to open database file. Check that the folder is writable" where the folder the link names
    is missing, and made a new empty database where the folder is there: `orch runs` listed no run."""
    inputs.home.mkdir()
    link, missing = inputs.home / "runs.db", inputs.root / target
    link.symlink_to(missing)
    said = refused(["runs"])
    assert said == f"error: database '{link}' is a link to '{missing}', which does not exist: fix or remove the " \
        "link.", said
    assert not missing.exists()


@pytest.mark.parametrize("name", ["trace.parquet", "trace.txt", "trace"])
def test_a_generated_trace_is_refused_a_name_of_another_format(inputs, name):
    """It is written as CSV, and was written so under any name, as `orch runs --export` refuses it."""
    out = inputs.work / name
    said = refused(["simulate", "--generate", "5", "--out", str(out)])
    assert said == f"error: --out takes a .csv file name, got '{out}'.", said
    assert not out.exists()


def test_logs_of_a_run_whose_folder_is_gone_says_so(inputs):
    """It said only "run X has no log.", as if the run had never written one."""
    inputs.run_record()
    said = refused(["logs", RUN_ID])
    assert said.startswith(f"error: run {RUN_ID}'s folder ") and said.endswith(" is gone, so it has no log."), said


@pytest.mark.parametrize("job_path", ["", " ", "/etc/passwd", "/tmp/jobs/j-00000000/job.yaml"])
@pytest.mark.parametrize("command", [["scheduler", "run", "--once", "--cpu-slots", "0"], ["queue"]])
def test_a_queued_jobs_job_path_outside_its_folder_is_a_damaged_row(inputs, job_path, command):
    """`orch scheduler run --once` rejected the job with "job file '.' is a folder", a path nobody wrote; and
    opened /etc/passwd, named by a hand-changed row, and rejected the job as no mapping."""
    said = refused(inputs.hand_edited(f"UPDATE jobs SET job_path = '{job_path}'", *command))
    assert f"is damaged: job_path is '{job_path}', not a path to the job's file (jobs/j-" in said, said
    assert "/ in orch's home). Fix or delete that row with sqlite3" in said, said


@pytest.mark.parametrize("damage", ["DROP TABLE runs", "ALTER TABLE jobs RENAME TO jobs2", "PRAGMA user_version = -1"])
@pytest.mark.parametrize("command", [["runs"], ["queue"], ["spend"]])
def test_a_runs_db_with_a_table_gone_or_a_version_no_orch_writes_is_damaged(inputs, damage, command):
    """A dropped table was made again, empty: "No runs yet" beside the run folders, exit 0, and new rows written
    into the damaged file; a version of -1 was "migrated", rewritten as this orch's."""
    import sqlite3
    from contextlib import closing

    def state():
        with closing(sqlite3.connect(inputs.home / "runs.db")) as db:
            return (sorted(row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")),
                    db.execute("PRAGMA user_version").fetchone()[0])

    inputs.hand_edited(damage)
    before = state()
    said = refused(command)
    assert said.startswith(f"error: {inputs.home / 'runs.db'} is damaged (it has no `") or \
        "its schema version is -1, which no orch writes" in said, said
    assert "orch never deletes or overwrites it: restore a copy of it" in said and state() == before, said


@pytest.mark.parametrize("command", [["runs", "--export", "runs.csv"], ["report", "--out", "rep"], ["runs"]])
def test_a_run_dated_past_where_timestamps_end_is_a_damaged_row(inputs, command):
    """created_at 1e13 (the year 318857) passed the row check (0 to 1e15): `orch runs --export` and `orch report`
    ended in a traceback (pandas' OutOfBoundsDatetime, datetime's year out of range), the report's plots written."""
    written = [str(inputs.work / part) if part in ("runs.csv", "rep") else part for part in command]
    said = refused(inputs.hand_edited("UPDATE runs SET created_at = 1e13", *written))
    assert "is damaged: created_at is 10000000000000.0, not a time before the year 2262 (seconds since 1970)" in said
    assert not any(inputs.work.iterdir())


@pytest.mark.parametrize("command", [["calibrate", "--out", "{data}/calibration.json", "--force"],
                                     ["report", "--out", "{data}/report"],
                                     ["train", "{job}", "--output", "{data}/out"]])
def test_an_output_in_the_data_orch_ships_is_refused(inputs, command):
    """`orch calibrate --out .../gpu_catalog/data/calibration.json --force` replaced the calibration every estimate
    reads, and `orch report --out` filled the package's data folder with plots."""
    import gpu_catalog

    data = Path(gpu_catalog.__file__).parent / "data"
    before = sorted(p.name for p in data.iterdir())
    said = refused([part.format(data=data, job=inputs.job()) for part in command])
    assert f"is in {data}, the data orch ships and every estimate reads: write outside it." in said, said
    assert sorted(p.name for p in data.iterdir()) == before
