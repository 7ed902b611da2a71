"""`orch bench`: a tiny sweep on the CPU, its resume, and sweep errors."""

import json

import yaml
from typer.testing import CliRunner

from orchestrator.bench.results import ResultStore
from orchestrator.cli.main import app
from tests.trainer_helpers import TINY_DATA

runner = CliRunner()


def write_sweep(folder, **grid):
    sweep = {"name": "t", "dataset": str(TINY_DATA), "warmup_steps": 1, "measured_steps": 2,
             "grids": [{"model": "orch/tiny-llama", "method": ["lora", "full"], "seq_len": 64, "micro_batch": 2,
                        **grid}]}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_a_tiny_sweep_runs_records_and_resumes(tmp_path):
    sweep, out = write_sweep(tmp_path), tmp_path / "results.jsonl"
    result = runner.invoke(app, ["bench", str(sweep), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["status"] for r in rows] == ["ok", "ok"] and {r["config"]["method"] for r in rows} == {"lora", "full"}
    assert all(r["tokens_per_s"] > 0 and r["random_weights"] and r["versions"]["torch"] for r in rows)
    assert all(r["config"]["timing_warmup_steps"] == 1 and r["steps"] == 3 for r in rows)
    assert len(out.read_text().splitlines()) == 2
    stamps = {r["point_id"]: r["created_at"] for r in ResultStore().rows()}
    again = runner.invoke(app, ["bench", str(sweep), "--json", "--out", str(tmp_path / "results.parquet")])
    assert again.exit_code == 0
    assert {r["point_id"]: r["created_at"] for r in ResultStore().rows()} == stamps  # nothing ran twice
    import pandas as pd

    frame = pd.read_parquet(tmp_path / "results.parquet")
    assert len(frame) == 2 and {"config.method", "tokens_per_s", "status"} <= set(frame.columns)


def test_out_of_memory_points_count_as_done(tmp_path):
    store = ResultStore()
    store.save({"point_id": "p1", "sweep": "s", "status": "oom", "created_at": 1.0})
    store.save({"point_id": "p2", "sweep": "s", "status": "error", "created_at": 1.0})
    assert store.done() == {"p1"}  # an error is retried, an out-of-memory point is a result


def test_a_bad_sweep_fails_before_running(tmp_path):
    result = runner.invoke(app, ["bench", str(write_sweep(tmp_path, learning_rte=0.1))])
    assert result.exit_code == 2 and "unknown key `learning_rte`" in result.stderr
    assert runner.invoke(app, ["bench", str(tmp_path / "none.yaml")]).exit_code == 2


def test_calibrate_and_report_need_results():
    assert runner.invoke(app, ["calibrate", "--results", "missing.jsonl"]).exit_code == 2
