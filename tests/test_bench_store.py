"""bench.db holds only what it can read back: a point timed over one step, or a run whose loss went NaN, must not
leave a row that every later `orch bench`, `calibrate` and `report` refuses."""

import json
import math
import sqlite3
from contextlib import closing

import pytest
from typer.testing import CliRunner

from gpu_catalog.errors import UserError
from orchestrator.bench.results import ResultStore
from orchestrator.bench.stability import summarize_rates
from orchestrator.cli.main import app
from orchestrator.home import orch_home
from orchestrator.runs.store import RunStore
from tests.conftest import REPO

ROW = {"point_id": "p1", "sweep": "s", "status": "ok", "created_at": 1.0, "gpu": "CPU", "tokens_per_s": 100.0,
       "config": {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 2}}


def test_one_timed_step_has_no_interval_and_is_not_stable():
    stability = summarize_rates([120.0])
    assert stability.interval is None and not stability.is_stable(0.5) and stability.tokens_per_s == 120.0


def test_a_row_with_numbers_that_are_not_finite_is_read_back_with_them_unknown(tmp_path):
    store = ResultStore(tmp_path / "bench.db")
    store.save({**ROW, "tokens_per_s_interval": math.inf, "stable": False,
                "metrics": {"loss_curve": [2.0, math.nan], "eval_loss": -math.inf}})
    (row,) = store.rows()
    assert row["tokens_per_s_interval"] is None
    assert row["metrics"] == {"loss_curve": [2.0, None], "eval_loss": None}


def test_a_row_an_older_orch_stored_with_infinity_is_still_read(tmp_path):
    store = ResultStore(tmp_path / "bench.db")
    with closing(sqlite3.connect(tmp_path / "bench.db")) as db, db:
        db.execute("INSERT INTO results VALUES ('p1', 's', 'ok', 1.0, ?)",
                   [json.dumps({**ROW, "tokens_per_s_interval": math.inf, "stable": False})])
    (row,) = store.rows()
    assert row["tokens_per_s_interval"] is None and row["tokens_per_s"] == 100.0


@pytest.mark.parametrize("command", [["bench", str(REPO / "benchmarks" / "sweeps" / "tiny-cpu.yaml")], ["calibrate"],
                                     ["report", "--job", str(REPO / "examples" / "tiny.yaml")]])
def test_orchs_runs_database_given_as_the_results_database_is_named_so_and_left_as_it_was(command):
    """runs.db's schema version is above bench.db's, so it was called a newer orch's file (`upgrade orch`); an older
    runs.db would have had a results table written into it."""
    runs_db = orch_home() / "runs.db"
    RunStore(runs_db)
    before = runs_db.read_bytes()
    result = CliRunner().invoke(app, [*command, "--db", str(runs_db)])
    assert result.exit_code == 2 and "newer orch" not in result.stderr and len(result.stderr.splitlines()) == 1
    said = " ".join(result.stderr.split())  # a long path is shortened in the one line
    assert "runs.db is orch's runs database, not a bench results database: give --db a bench .db file" in said
    assert runs_db.read_bytes() == before


def test_orch_homes_runs_database_not_made_yet_is_no_results_database_either():
    """Made a results database by `orch bench --db`, it was refused by every command that reads the runs after."""
    runs_db = orch_home() / "runs.db"
    runs_db.parent.mkdir(parents=True, exist_ok=True)
    assert not runs_db.exists()
    result = CliRunner().invoke(app, ["bench", str(REPO / "benchmarks" / "sweeps" / "tiny-cpu.yaml"), "--db",
                                      str(runs_db)])
    assert result.exit_code == 2 and "is where orch keeps its runs database" in " ".join(result.stderr.split())
    assert not runs_db.exists()


def test_a_runs_database_of_any_version_never_gets_a_results_table(tmp_path):
    path = tmp_path / "runs.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE runs (run_id TEXT, job_name TEXT, status TEXT, run_dir TEXT, cluster TEXT)")
        db.execute("PRAGMA user_version = 1")
    with pytest.raises(UserError, match="is orch's runs database"):
        ResultStore(path)
    with closing(sqlite3.connect(path)) as db:
        assert [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["runs"]
