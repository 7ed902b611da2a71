"""bench.db holds only what it can read back: a point timed over one step, or a run whose loss went NaN, must not
leave a row that every later `orch bench`, `calibrate` and `report` refuses."""

import json
import math
import sqlite3
from contextlib import closing

from orchestrator.bench.results import ResultStore
from orchestrator.bench.stability import summarize_rates

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
