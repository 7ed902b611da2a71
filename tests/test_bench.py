"""`orch bench`: a tiny sweep on the CPU, its resume, and sweep errors."""

import json
import re
import subprocess

import pytest
import yaml
from typer.testing import CliRunner

from gpu_catalog.errors import UserError
from orchestrator.bench import runner as runner_module
from orchestrator.bench.results import ResultStore
from orchestrator.bench.stability import step_rates, summarize_rates
from orchestrator.bench.sweep import load_sweep
from orchestrator.cli.main import app
from orchestrator.home import orch_home
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
    # two timed steps cannot pin a median down: the point says so instead of passing as a measurement
    assert all(r["timed_steps"] == 2 and r["rounds"] == 1 and r["stable"] is False for r in rows)
    assert all(r["message"].startswith("unstable:") and r["tokens_per_s_spread"] >= 0 for r in rows)
    assert len(out.read_text().splitlines()) == 2
    # not a terminal: a line a point as it ends (a pipe saw nothing for minutes), none of it on stdout
    said = [line for line in result.stderr.splitlines() if line[:4] in ("1/2 ", "2/2 ")]
    assert [line.split(":")[-1].split(",")[0].strip() for line in said] == ["ok", "ok"], result.stderr
    assert all("orch/tiny-llama" in line and "tokens/s" in line for line in said)
    stamps = {r["point_id"]: r["created_at"] for r in ResultStore().rows()}
    again = runner.invoke(app, ["bench", str(sweep), "--json", "--out", str(tmp_path / "results.parquet")])
    assert again.exit_code == 0
    assert {r["point_id"]: r["created_at"] for r in ResultStore().rows()} == stamps  # nothing ran twice
    import pandas as pd

    frame = pd.read_parquet(tmp_path / "results.parquet")
    assert len(frame) == 2 and {"config.method", "tokens_per_s", "status"} <= set(frame.columns)
    # into another database the points run again, as fresh processes: nothing the first run left is read as theirs
    first_steps = sorted((orch_home() / "bench").rglob("steps.jsonl"))
    assert len(first_steps) == 2
    for steps in first_steps:  # the first run's steps, as if each had taken a nanosecond
        lines = [{**json.loads(line), "step_time_s": 1e-9} for line in steps.read_text().splitlines()]
        steps.write_text("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "lora").mkdir()  # one of the two points is enough to show it
    lora_only = write_sweep(tmp_path / "lora", method="lora")
    fresh = runner.invoke(app, ["bench", str(lora_only), "--db", str(tmp_path / "other.db"), "--json"])
    assert fresh.exit_code == 0, fresh.output
    (row,) = json.loads(fresh.stdout)
    assert row["point_id"] in stamps and row["timed_steps"] == 2 and row["tokens_per_s"] < 1e8


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


def test_step_rates_leave_out_the_warm_up_and_the_median_ignores_one_slow_step(tmp_path):
    steps = tmp_path / "steps.jsonl"
    times = [5.0, 1.0] + [0.10, 0.11, 0.09, 0.10, 0.10, 2.0, 0.10, 0.11, 0.09, 0.10]  # warm-up, then one stall
    steps.write_text("".join(json.dumps({"step": i + 1, "tokens": 1000, "step_time_s": t}) + "\n"
                             for i, t in enumerate(times)))
    rates = step_rates(steps, warmup_steps=2)
    assert len(rates) == 10 and min(rates) == 500.0
    stability = summarize_rates(rates)
    assert stability.tokens_per_s == 10000.0  # the stalled step moves the mean, not the median
    assert stability.timed_steps == 10 and 0 < stability.spread < 0.2
    assert stability.is_stable(0.10) and not stability.is_stable(0.001)
    assert step_rates(tmp_path / "missing.jsonl", 2) == []


def test_sweep_stability_settings_are_checked(tmp_path):
    path = write_sweep(tmp_path)
    raw = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**raw, "max_measured_steps": 1}))
    assert "max_measured_steps" in runner.invoke(app, ["bench", str(path)]).stderr
    path.write_text(yaml.safe_dump({**raw, "stable_within": 2}))
    assert "stable_within" in runner.invoke(app, ["bench", str(path)]).stderr
    path.write_text(yaml.safe_dump({**raw, "cpu_threads": 0}))
    assert "cpu_threads" in runner.invoke(app, ["bench", str(path)]).stderr


def test_a_sweep_with_no_grids_is_refused(tmp_path):
    """`grids: []` ran nothing and exited 0 after "0/0"."""
    path = write_sweep(tmp_path)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "grids": []}))
    result = runner.invoke(app, ["bench", str(path)])
    assert result.exit_code == 2 and "`grids` is empty" in result.stderr


@pytest.mark.parametrize("where", ["settings", "grid"])
def test_cpu_threads_given_at_the_top_and_for_the_points_is_refused(tmp_path, where):
    """The top's set OMP_NUM_THREADS and the point ids, a point's the trainer's threads and its row: they disagreed,
    unsaid. Given once, either way, the sweep is read."""
    path = write_sweep(tmp_path, **({"cpu_threads": [1]} if where == "grid" else {}))
    sweep = yaml.safe_load(path.read_text())
    if where == "settings":
        sweep["settings"] = {"cpu_threads": 1}
    path.write_text(yaml.safe_dump(sweep))
    from orchestrator.bench.sweep import load_sweep

    assert load_sweep(path).points
    path.write_text(yaml.safe_dump({**sweep, "cpu_threads": 2}))
    result = runner.invoke(app, ["bench", str(path)])
    assert result.exit_code == 2 and "`cpu_threads` is given at the top and in " in result.stderr, result.output


def test_a_setting_a_grid_gives_again_is_refused(tmp_path):
    """`settings: {lora_r: 8}` beside a grid's `lora_r: [4, 16]`: the grid's values ran, 8 never, unsaid."""
    path = write_sweep(tmp_path, lora_r=[4, 16])
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "settings": {"lora_r": 8}}))
    result = runner.invoke(app, ["bench", str(path)])
    assert result.exit_code == 2 and "`lora_r` is in `settings` and in grid 1 of 1: give it in one place" in \
        result.stderr, result.output


@pytest.mark.parametrize("key, value", [("dataset", "../x.jsonl"), ("max_steps", 50), ("timing_warmup_steps", 3),
                                        ("name", "x"), ("eval_fraction", 0.1), ("save_every_minutes", 5),
                                        ("log_every", 1)])
@pytest.mark.parametrize("where", ["settings", "grid"])
def test_a_key_the_sweep_sets_itself_is_refused(tmp_path, key, value, where):
    """The sweep overwrote these on every point: a grid's `dataset` trained on the sweep's own dataset, unsaid."""
    path = write_sweep(tmp_path, **({key: [value]} if where == "grid" else {}))
    if where == "settings":
        path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "settings": {key: value}}))
    result = runner.invoke(app, ["bench", str(path)])
    assert result.exit_code == 2 and f"`{key}` in " in result.stderr and "set by the sweep itself" in result.stderr


@pytest.mark.parametrize("settings, grid, message", [
    ("{}", "{1: [a], seq_len: 64}", "grid 2 of 2: unknown key `1`: keys are trainer setting names"),
    ("{}", "{null: 5, seq_len: 64}", "grid 2 of 2: unknown key `null`:"),
    ("{}", "{seq_len: 64, tokenizer: 2001-01-01}", "grid 2 of 2: `tokenizer: 2001-01-01` is a date to YAML, which no "
                                                   "trainer setting takes: quote it (`tokenizer: '2001-01-01'`)"),
    ("{}", "{seq_len: [64, 0]}", "grid 2 of 2: bad config: `seq_len` must be above 0"),
    ("{lora_rr: 8}", "{seq_len: 64}", "grid 1 of 2 (with `settings`): bad config: unknown key `lora_rr`"),
    ("{~: 8}", "{seq_len: 64}", "`settings`: unknown key `null`:"),
])
def test_a_bad_grid_is_said_with_the_sweep_the_grid_and_keys_as_written(tmp_path, settings, grid, message):
    """The trainer's check said "bad config: unknown key `None`" and "got datetime.date(2001, 1, 1)": no file, no
    grid, and Python's spelling of what the file said."""
    path = tmp_path / "sweep.yaml"
    path.write_text(f"dataset: {TINY_DATA}\nsettings: {settings}\ngrids:\n"
                    "  - {model: orch/tiny-llama, method: lora, seq_len: 64}\n"
                    f"  - {{model: orch/tiny-llama, method: lora, {grid.removeprefix('{')}\n")
    result = runner.invoke(app, ["bench", str(path)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert f"error: sweep {path}, {message}" in " ".join(result.stderr.split())


def test_a_misspelt_sweep_key_comes_with_its_near_match(tmp_path):
    """`stabel_within` was said with every sweep key listed, where a job's misspelt key says which was meant."""
    path = write_sweep(tmp_path)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "stabel_within": 0.05}))
    with pytest.raises(UserError, match=re.escape(f"sweep {path}: unknown key stabel_within (did you mean "
                                                  "`stable_within`?): use cpu_threads, ")):
        load_sweep(path)


def test_a_whole_number_written_as_a_float_is_the_same_point(tmp_path):
    """`seq_len: [64, 64.0]` ran one point twice, as two points (the trainer reads 64.0 as 64; the id hashed both)."""
    path = write_sweep(tmp_path, method="lora", seq_len=[64, 64.0])
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "settings": {"lora_r": 8.0}}))
    (point,) = load_sweep(path).points
    assert point.config["seq_len"] == 64 and point.config["lora_r"] == 8 and type(point.config["seq_len"]) is int
    again = write_sweep(tmp_path, method="lora", seq_len=64)
    again.write_text(yaml.safe_dump({**yaml.safe_load(again.read_text()), "settings": {"lora_r": 8}}))
    assert load_sweep(again).points[0].point_id == point.point_id


def test_a_list_setting_swept_over_single_names_says_it_is_a_point_each(tmp_path):
    """`target_modules: [q_proj, v_proj]` in a grid is two points, each module alone (each grid key's list is its
    values): nothing said so. `[[q_proj, v_proj]]`, one point with both, is said to be the other way."""
    one_each = load_sweep(write_sweep(tmp_path, method="lora", target_modules=["q_proj", "v_proj"]))
    assert len(one_each.points) == 2
    assert one_each.notes == ("grid 1 of 1: target_modules [q_proj, v_proj] is 2 points, one module each; one point "
                              "with all of them is target_modules: [[q_proj, v_proj]]",)
    both = load_sweep(write_sweep(tmp_path, method="lora", target_modules=[["q_proj", "v_proj"]]))
    assert len(both.points) == 1 and both.notes == ()


def test_the_mfu_is_of_the_tokens_per_s_the_row_reports(tmp_path, monkeypatch):
    """MFU came from the trainer's mean rate of the last round, which one stalled step drags down, beside the median
    tokens/s: one row said 6,954 tok/s at 3.6% MFU, its twin 6,881 tok/s at 22.3%."""
    times = [1.0, 0.1, 0.1, 0.1, 0.1, 2.0]  # a warm-up step, then one stall among five timed steps

    def one_round(config, work_dir, cpu_threads=None):
        output = work_dir / "output"
        output.mkdir(parents=True)
        (output / "steps.jsonl").write_text("".join(json.dumps({"tokens": 100, "step_time_s": t}) + "\n"
                                                    for t in times))
        mean_rate = 500 / sum(times[1:])
        return {"status": "ok", "tokens_per_s": mean_rate, "mfu": 0.01 * mean_rate / 1000}, output

    monkeypatch.setattr(runner_module, "_train", one_round)
    (point,) = load_sweep(write_sweep(tmp_path, method="lora")).points
    row = runner_module.run_point(point, "t", "local", tmp_path / "work", warmup_steps=1, measured_steps=5)
    assert row["tokens_per_s"] == 1000.0 and row["mfu"] == pytest.approx(0.01)  # 1% at 1,000 tok/s, as the trainer


def _recorded(rows):
    """A stand-in for running the sweep: its points recorded as `rows` say."""
    def run_sweep(sweep, store, target="local", work_root=None):
        for point, changes in zip(sweep.points, rows, strict=True):
            store.save({"point_id": point.point_id, "sweep": sweep.name, "target": target, "created_at": 1.0,
                        "config": point.config, "gpu": "CPU", **changes})
    return run_sweep


def test_an_unstable_point_says_so_in_the_table(tmp_path, monkeypatch):
    """Its row said `stable: false` and "unstable: ...", but the table at 80 columns showed `ok`."""
    monkeypatch.setattr(runner_module, "run_sweep", _recorded([
        {"status": "ok", "tokens_per_s": 900.0, "stable": False, "message": "unstable: tokens/s median +-30% (95%)"},
        {"status": "ok", "tokens_per_s": 800.0, "stable": True, "tokens_per_s_interval": 0.02}]))
    result = runner.invoke(app, ["bench", str(write_sweep(tmp_path)), "--db", str(tmp_path / "b.db")],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any("lora" in line and "unstable" in line for line in lines)
    assert any("full" in line and " ok " in line for line in lines)


def test_a_sweep_the_trainer_would_refuse_here_fails_before_running(tmp_path, monkeypatch):
    """`report_to: wandb` without wandb ran every point, each an `error` with no reason in the table, and exited 0."""
    from trainer import trackers

    monkeypatch.setitem(trackers.EXTRAS, "wandb", "orch_no_such_package")  # whether or not wandb is installed
    monkeypatch.setattr(runner_module, "run_sweep", lambda *args, **kwargs: pytest.fail("a point ran"))
    path = write_sweep(tmp_path)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "settings": {"report_to": "wandb"}}))
    result = runner.invoke(app, ["bench", str(path)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "cannot train here: report_to wandb needs the orch_no_such_package package" in result.stderr


def test_a_point_the_cpu_cannot_run_fails_before_any_runs_where_no_gpu_is_here(tmp_path, monkeypatch):
    """`precision: fp16` on a machine without a GPU started a trainer that loaded the model, showed a progress bar
    and a table, and only then was refused; with a GPU here the trainer is the judge."""
    from orchestrator.bench import sweep as sweep_module

    monkeypatch.setattr(runner_module, "run_sweep", lambda *args, **kwargs: pytest.fail("a point ran"))
    path = write_sweep(tmp_path)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "settings": {"precision": "fp16"}}))
    monkeypatch.setattr(sweep_module, "detect_gpus", lambda: [])
    result = runner.invoke(app, ["bench", str(path)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "cannot train here: precision fp16 needs a GPU" in result.stderr
    monkeypatch.setattr(sweep_module, "detect_gpus", lambda: ["a card"])
    assert len(load_sweep(path).points) == 2  # lora and full, each left to the trainer


def test_a_point_the_trainer_refuses_is_said_and_not_done(tmp_path, monkeypatch):
    """A refusal known only to the trainer (exit code 2, no metrics.json) was an `error` with no reason shown."""
    refusal = "error: cannot train: precision fp16 needs a CUDA GPU (its loss scaler runs there).\n"
    monkeypatch.setattr(runner_module.subprocess, "run", lambda command, **kwargs: subprocess.CompletedProcess(
        command, 2, "", refusal))
    db = tmp_path / "b.db"
    result = runner.invoke(app, ["bench", str(write_sweep(tmp_path, method="lora")), "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert "bad_config: cannot train: precision fp16 needs a CUDA GPU" in " ".join(result.stdout.split())
    assert "1 of 1 points were refused by the trainer and are not recorded as done" in result.stderr
    as_json = runner.invoke(app, ["bench", str(write_sweep(tmp_path, method="lora")), "--db", str(db), "--json"])
    document = json.loads(as_json.stdout)  # one document: the rows, and the refusal's error as README promises
    assert as_json.exit_code == 2 and document["rows"][0]["status"] == "bad_config", as_json.output
    assert document["exit_code"] == 2 and document["error"].startswith("1 of 1 points were refused by the trainer")
    (row,) = ResultStore(db).rows()
    assert row["status"] == "bad_config" and row["message"] == refusal.strip().removeprefix("error: ")
    assert ResultStore(db).done() == set()  # the next run tries it again


@pytest.mark.parametrize("dataset", ["", "  "])
def test_an_empty_dataset_is_refused_before_any_point_runs(tmp_path, monkeypatch, dataset):
    """'' named the sweep's own folder, which passed the check, so every point started a trainer to be refused."""
    monkeypatch.setattr(runner_module, "run_sweep", lambda *args, **kwargs: pytest.fail("a point ran"))
    path = write_sweep(tmp_path)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "dataset": dataset}))
    result = runner.invoke(app, ["bench", str(path)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "`dataset` is empty" in result.stderr


def test_a_dataset_that_is_a_pipe_is_refused_not_waited_on(tmp_path):
    """The check of its first bytes opened the pipe and waited for a writer for ever: bench printed nothing."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    os.mkfifo(tmp_path / "fifo.jsonl")
    path = write_sweep(tmp_path)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "dataset": str(tmp_path / "fifo.jsonl")}))
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.entry", "bench", str(path)], cwd=REPO,
                          env={**os.environ, "ORCH_HOME": str(tmp_path / "home")}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "is not a file or a folder" in done.stderr, done.stderr


def test_an_existing_out_file_is_replaced_only_with_force_and_is_said_before_the_sweep(tmp_path, monkeypatch):
    """bench had no --force: an earlier sweep's results file (another machine's) was replaced at the end of hours of
    benchmarking, unasked."""
    monkeypatch.setattr(runner_module, "run_sweep", lambda *args, **kwargs: pytest.fail("a point ran"))
    kept = tmp_path / "keep.jsonl"
    kept.write_text("precious\n")
    sweep = str(write_sweep(tmp_path))
    result = runner.invoke(app, ["bench", sweep, "--out", str(kept)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "already exists: pass --force to replace it" in result.stderr and kept.read_text() == "precious\n"
    alone = runner.invoke(app, ["bench", sweep, "--force"])
    assert alone.exit_code == 2 and "--force replaces an existing --out file" in alone.stderr, alone.output
    monkeypatch.setattr(runner_module, "run_sweep", _recorded([{"status": "ok", "tokens_per_s": 900.0}] * 2))
    forced = runner.invoke(app, ["bench", sweep, "--out", str(kept), "--force"])
    assert forced.exit_code == 0, forced.output
    assert len(kept.read_text().splitlines()) == 2 and "precious" not in kept.read_text()


def test_an_out_file_inside_the_sweeps_dataset_folder_is_refused_before_the_sweep(tmp_path, monkeypatch):
    """The results JSONL was written among the data files of a sweep's `dataset: data` folder, exit 0, and the next
    sweep on that folder read it as a dataset file and refused every point."""
    monkeypatch.setattr(runner_module, "run_sweep", lambda *args, **kwargs: pytest.fail("a point ran"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_bytes(TINY_DATA.read_bytes())
    sweep = yaml.safe_load(write_sweep(tmp_path).read_text())
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({**sweep, "dataset": "data"}))
    result = runner.invoke(app, ["bench", str(tmp_path / "sweep.yaml"), "--out", str(data / "results.jsonl")])
    assert result.exit_code == 2 and f"is inside '{data}', which this command reads" in result.stderr, result.output
    assert [path.name for path in data.iterdir()] == ["a.jsonl"]


def test_the_target_is_read_in_any_case(tmp_path, monkeypatch):
    """`orch launch --target LOCAL` was taken and `orch bench --target LOCAL` refused."""
    monkeypatch.setattr(runner_module, "run_sweep", _recorded([{"status": "ok", "tokens_per_s": 900.0}] * 2))
    result = runner.invoke(app, ["bench", str(write_sweep(tmp_path)), "--target", " LOCAL", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 2 and {row["target"] for row in rows} == {"local"}
    assert {row["point_id"] for row in rows} == {p.point_id for p in load_sweep(write_sweep(tmp_path)).points}


def test_a_refusal_of_the_dataset_every_point_reads_stops_the_sweep(tmp_path):
    """A bad record past the start the sweep checks: each of 4 points started a trainer (10 s on this CPU) to be
    refused the same way."""
    lines = TINY_DATA.read_text().splitlines()
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(lines[:60] + ["{not json"] + lines[60:]) + "\n")
    assert data.read_text().index("{not json") > 4096  # past what load_sweep probes
    sweep = write_sweep(tmp_path, seq_len=[64, 128])
    sweep.write_text(sweep.read_text().replace(str(TINY_DATA), str(data)))
    db = tmp_path / "b.db"
    result = runner.invoke(app, ["bench", str(sweep), "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert "1 of 1 points were refused by the trainer and are not recorded as done (3 more not run: they read the " \
           "same dataset)" in " ".join(result.stderr.split()) and "line 61" in result.stderr
    assert len(ResultStore(db).rows()) == 1


@pytest.mark.parametrize("message, stops", [
    ("dataset /d/x.jsonl line 21: not a JSON record (Expecting value); a JSONL file holds one JSON object per line.",
     True),
    ("dataset /d/x.jsonl line 3 is not UTF-8 text (byte 7 of the line): save the file as UTF-8.", True),
    ("dataset /d/x.jsonl record 1: no column 'question' (dataset_columns maps instruction to it)", False),
    ("dataset /d/x.jsonl packs into 2 training sequences of 2048 tokens, fewer than one step's 4", False),
    ("dataset /d/other.jsonl line 2: not a JSON record (Expecting value)", False),
])
def test_only_a_fault_of_the_shared_data_file_stops_a_sweep(message, stops):
    """A point-specific refusal that names the dataset (a grid's dataset_columns, a seq_len it packs too little
    into) stopped the whole sweep and said the rest read the same dataset."""
    from orchestrator.bench.runner import _refused_the_data

    assert _refused_the_data({"status": "bad_config", "message": message}, "/d/x.jsonl") is stops
    assert _refused_the_data({"status": "error", "message": message}, "/d/x.jsonl") is False
    in_a_folder = message.replace("/d/x.jsonl", "/d/folder/x.jsonl")  # a sweep's `dataset: /d/folder`
    assert _refused_the_data({"status": "bad_config", "message": in_a_folder}, "/d/folder") is stops


def test_an_unstable_point_says_whether_it_had_too_few_steps_or_too_wide_an_interval():
    """3 timed steps read "unstable: tokens/s median +-4% (95%) after 3 timed steps, wider than 50%"."""
    from orchestrator.bench.runner import unstable_message
    from orchestrator.bench.stability import Stability

    assert "3 timed steps, fewer than the 4" in unstable_message(Stability(100.0, 0.05, 0.04, 3), 0.5)
    assert "median +-9% (95%) after 8 timed steps, wider than 5%" in unstable_message(Stability(100.0, 0.1, 0.09, 8),
                                                                                     0.05)


def test_the_eta_counts_down_between_points_at_the_mean_time_per_point():
    """rich's ETA, from the last 30 s of progress, stood still (or showed -:--:--) through a point of minutes."""
    from rich.progress import Progress

    now = [100.0]
    column = runner_module.PointsRemaining(clock=lambda: now[0])
    progress = Progress()
    bar = progress.add_task("sweep", total=5, started_at=0.0)
    assert column.render(progress.tasks[0]).plain == "ETA -:--:--"  # no point done: no mean yet
    progress.update(bar, advance=2, done_at=100.0)  # 50 s a point, three left
    assert column.render(progress.tasks[0]).plain == "ETA 0:02:30"
    now[0] = 160.0  # a minute into the third point
    assert column.render(progress.tasks[0]).plain == "ETA 0:01:30"
    now[0] = 1000.0  # a point far slower than the mean: never below zero
    assert column.render(progress.tasks[0]).plain == "ETA 0:00:00"
    progress.update(bar, advance=3, done_at=1000.0)
    assert column.render(progress.tasks[0]).plain == "ETA 0:00:00"


def test_a_points_progress_line_says_unstable_where_its_row_is():
    """`1/6 ... : ok, 1,412 tokens/s`, while the sweep's table said that point was unstable."""
    from orchestrator.bench.runner import _outcome

    assert _outcome({"status": "ok", "tokens_per_s": 1412.0, "stable": False}) == \
        "ok, 1,412 tokens/s (unstable, see its row)"
    assert _outcome({"status": "ok", "tokens_per_s": 1412.0, "stable": True}) == "ok, 1,412 tokens/s"
    assert _outcome({"status": "oom"}) == "oom"


def test_a_point_on_another_share_of_the_cpu_is_another_point(tmp_path):
    """A rerun of a sweep with cpu_threads changed was said done, and the old share's tokens/s shown as the new one's;
    a sweep that gives no share keeps the ids it always had."""
    from orchestrator.bench.sweep import load_sweep, point_id

    path = write_sweep(tmp_path)
    ids = {}
    for threads in (None, 1, 2):
        raw = yaml.safe_load(path.read_text())
        raw.pop("cpu_threads", None)
        path.write_text(yaml.safe_dump({**raw, **({"cpu_threads": threads} if threads else {})}))
        ids[threads] = [point.point_id for point in load_sweep(path).points]
    assert len({tuple(found) for found in ids.values()}) == 3, ids
    sweep = load_sweep(path)
    assert [point_id(point.config, "local", 2) for point in sweep.points] == ids[2]
    assert [point_id(point.config, "local") for point in sweep.points] == ids[None]
