"""Calibration finds a known truth, lowers the estimator's error, prefers the user's own runs to published points,
and cross-validates honestly: a held-out source's estimates never depend on its own values."""

import dataclasses
import json
import os
import re

import pytest

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import cpu_gpu, get_gpu
from orchestrator.bench.calibrate import (
    LAUNCHED_RUNS,
    WHOLE_PROCESS_MEASURES,
    calibrate,
    cross_validated_errors,
    errors,
    fit,
    fit_memory,
    observations,
    point_errors,
    published_observations,
    row_gpu,
)
from orchestrator.bench.published import PUBLISHED_CSV, load_points
from orchestrator.bench.results import RESULTS_DIR, read_jsonl
from orchestrator.estimator.calibration import NO_CALIBRATION, PACKAGED_CALIBRATION, Calibration, load_calibration
from orchestrator.estimator.memory import CUDA_CONTEXT_GIB
from orchestrator.runs.store import RunRecord
from tests.bench_fixtures import TRUTH, synthetic_rows


def test_fit_recovers_the_efficiency_and_memory_overheads_that_made_the_data():
    fitted = fit(observations(synthetic_rows()))
    for method, efficiency in TRUTH.efficiency["H100 SXM"].items():
        assert fitted.efficiency["H100 SXM"][method] == pytest.approx(efficiency, rel=0.02)
        assert fitted.efficiency_basis["H100 SXM"][method] == "measured"
    assert fitted.memory["cuda"]["context_gib"] == pytest.approx(1.4, abs=0.05)
    assert fitted.memory["cuda"]["slack_fraction"] == pytest.approx(0.25, abs=0.02)


def test_padded_rows_are_fitted_in_the_estimators_unit_and_recover_the_truth():
    """The trainer reports real tokens/s; the estimator counts every token of its rows. Rows a third padding, whose
    real rate is two thirds of the truth's, still fit the truth's efficiency."""
    rows = [{**row, "tokens_per_s": row["tokens_per_s"] * 2 / 3 if row["tokens_per_s"] else None,
             "padding_fraction": 1 / 3} for row in synthetic_rows()]
    fitted = fit(observations(rows))
    for method, efficiency in TRUTH.efficiency["H100 SXM"].items():
        assert fitted.efficiency["H100 SXM"][method] == pytest.approx(efficiency, rel=0.02)
    unsaid = [{key: value for key, value in row.items() if key != "padding_fraction"} for row in rows]
    assert fit(observations(unsaid)).efficiency["H100 SXM"]["lora"] < 0.8 * TRUTH.efficiency["H100 SXM"]["lora"]


def test_calibration_lowers_the_error_and_the_estimator_reads_the_file(tmp_path, monkeypatch):
    rows = synthetic_rows()
    out = tmp_path / "calibration.json"
    result = calibrate(rows, out, sources=["synthetic"])
    worst_before = max(abs(p["tokens_per_s_error"]) for p in result["points"])
    worst_after = max(abs(p["tokens_per_s_error_after"]) for p in result["points"])
    assert worst_after < 0.02 < worst_before
    assert max(abs(p["vram_error_after"]) for p in result["points"]) < 0.02
    assert all(p["point"] for p in result["points"]) and len(result["points"]) == 8  # the oom row has no speed
    assert {"measured tokens_per_s", "published tokens_per_s", "published vram"} <= set(result["in_sample"])
    assert set(result["leave_one_source_out"]) == set(result["in_sample"])
    monkeypatch.setenv("ORCH_CALIBRATION", str(out))
    loaded = load_calibration()
    assert loaded.efficiency == json.loads(out.read_text())["efficiency"]
    assert loaded.efficiency_for(rows_gpu(), "lora")[1] == "measured"
    after = errors(rows, loaded)
    assert max(abs(p["tokens_per_s_error"]) for p in after) < 0.02
    assert errors(rows, NO_CALIBRATION)[0]["tokens_per_s_error"] == result["points"][0]["tokens_per_s_error"]


def rows_gpu():
    return observations(synthetic_rows())[0].gpu


def test_published_points_calibrate_gpus_without_runs_of_their_own():
    fitted = fit(observations(synthetic_rows()) + published_observations())
    assert fitted.efficiency_basis["A100 80GB"]["lora"] == "published"
    assert fitted.efficiency_basis["H100 SXM"]["lora"] == "measured"
    assert fitted.efficiency["H100 SXM"]["lora"] == pytest.approx(TRUTH.efficiency["H100 SXM"]["lora"], rel=0.02)


def test_a_held_out_source_is_estimated_without_its_own_values():
    obs = published_observations()
    source = "qwen-readme"
    skewed = [dataclasses.replace(o, tokens_per_s=o.tokens_per_s * 3) if o.source == source and o.tokens_per_s
              else o for o in obs]
    held_out = [r for r in cross_validated_errors(obs) if r["source"] == source and r["est_tokens_per_s"]]
    held_out_skewed = [r for r in cross_validated_errors(skewed) if r["source"] == source and r["est_tokens_per_s"]]
    assert held_out and [r["est_tokens_per_s"] for r in held_out] == [r["est_tokens_per_s"] for r in held_out_skewed]
    in_sample = [r for r in point_errors(skewed, fit(skewed)) if r["source"] == source and r["est_tokens_per_s"]]
    assert [r["est_tokens_per_s"] for r in in_sample] != [r["est_tokens_per_s"] for r in held_out_skewed]


def test_every_published_point_keeps_its_source_and_settings():
    points = load_points(usable_only=False)
    assert len(points) >= 100 and len({p.source for p in points}) >= 4
    assert {p.metric for p in points} == {"vram", "tokens_per_s", "oom"}
    assert all(p.value > 0 for p in points)


def test_orch_ships_a_calibration_fitted_from_the_published_points(monkeypatch, tmp_path):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))  # no user calibration there
    monkeypatch.delenv("ORCH_CALIBRATION", raising=False)
    shipped = load_calibration()
    assert shipped.source == str(PACKAGED_CALIBRATION)
    assert shipped.efficiency_basis["A100 80GB"]["lora"] == "published"
    assert shipped.memory_basis == {"cuda": "published"}
    assert set(shipped.memory["cuda"]) == {"context_gib", "slack_fraction"}  # headroom: from the user's runs only


def test_published_whole_process_peaks_set_the_memory_overheads_until_the_users_own_runs_do():
    """Published nvidia-smi peaks and card capacities fit the context and slack, pulled toward the defaults; torch's
    own peaks (allocated, reserved) never see the context and fit nothing; the user's runs replace them all."""
    published = published_observations()
    whole = [o for o in published if o.vram_gib and o.vram_measures in WHOLE_PROCESS_MEASURES]
    assert whole and any(o.vram_gib and o.vram_measures == "allocated" for o in published)
    raw = fit_memory(whole)
    fitted = fit(published)
    assert fitted.memory_basis == {"cuda": "published"} and "headroom_fraction" not in fitted.memory["cuda"]
    context = fitted.memory["cuda"]["context_gib"]
    assert min(CUDA_CONTEXT_GIB, raw["context_gib"]) < context < max(CUDA_CONTEXT_GIB, raw["context_gib"])
    assert fit([o for o in published if o not in whole]).memory == {}
    mine = fit(observations(synthetic_rows()) + published)
    assert mine.memory_basis == {"cuda": "measured"}
    assert mine.memory["cuda"]["context_gib"] == pytest.approx(1.4, abs=0.05)


def test_a_calibration_file_from_before_memory_basis_reads_its_memory_as_measured(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"efficiency": {}, "memory": {"cuda": {"context_gib": 0.9, "slack_fraction": 0.1}}}))
    calibration = load_calibration(path)
    assert calibration.memory_basis_for(get_gpu("L4")) == "measured"
    assert calibration.memory_basis_for(cpu_gpu()) == "analytic"


@pytest.mark.parametrize("name, state", [("nope.json", "does not exist"), ("folder", "is a folder")])
def test_an_orch_calibration_that_names_no_file_is_refused(monkeypatch, tmp_path, name, state):
    """As ORCH_HARDWARE is: a typo in it quietly estimated from the shipped calibration instead of the user's."""
    (tmp_path / "folder").mkdir()
    monkeypatch.setenv("ORCH_CALIBRATION", str(tmp_path / name))
    with pytest.raises(UserError, match=f"ORCH_CALIBRATION file '.*{name}' {state}"):
        load_calibration()


def test_an_empty_orch_calibration_means_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))  # no user calibration there
    monkeypatch.setenv("ORCH_CALIBRATION", "")
    assert load_calibration().source == str(PACKAGED_CALIBRATION)


def test_an_orch_home_too_long_for_the_file_system_is_refused_not_a_traceback(monkeypatch, tmp_path):
    """`orch plan` read ORCH_HOME/calibration.json with Path.is_dir, which raises OSError for such a name."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path / ("a" * 300)))
    monkeypatch.delenv("ORCH_CALIBRATION", raising=False)
    with pytest.raises(UserError, match="cannot read calibration file .*: File name too long. Set ORCH_HOME"):
        load_calibration()


def test_calibrate_on_a_machine_that_never_ran_orch_makes_its_home(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    home = tmp_path / "new" / "orch"  # ORCH_HOME does not exist yet
    monkeypatch.setenv("ORCH_HOME", str(home))
    monkeypatch.delenv("ORCH_CALIBRATION", raising=False)  # the default place: ORCH_HOME/calibration.json
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"point_id": "p1", "status": "ok", "sweep": "s", "gpu": "CPU", "tokens_per_s": 100.0,
                                   "config": {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64,
                                              "max_steps": 2}}) + "\n")
    result = CliRunner().invoke(app, ["calibrate", "--results", str(results)])
    assert result.exit_code == 0, result.output
    assert json.loads((home / "calibration.json").read_text())["efficiency"]
    # what it read is said: a fresh home's fit from the GPU results shipped with orch was called "your runs"
    assert f"read: {results}, {PUBLISHED_CSV}" in result.stdout
    shipped = CliRunner().invoke(app, ["calibrate"]).stdout
    assert f"read: {home / 'bench.db'}, " in shipped and all(f"{path}" in shipped
                                                              for path in RESULTS_DIR.glob("*.jsonl"))


def launched(row: dict) -> RunRecord:
    """An ok run `orch launch` recorded, whose trainer's metrics.json measured what `row` says."""
    from orchestrator.home import orch_home
    from orchestrator.runs.status import RunStatus, Target
    from orchestrator.runs.store import RunStore, new_run_id

    metrics = {"steps": 100, **{key: value for key, value in row.items()
                                if key not in ("point_id", "sweep", "target", "created_at")}}
    run_id = new_run_id()
    record = RunRecord(
        run_id=run_id, job_name="j", job_path="/x/j.yaml", job_json=json.dumps(row["config"]),
        target=Target.LOCAL, gpu="H100 SXM", provider="local", region="", spot=0, usd_per_hour=1.0, budget_usd=5.0,
        est_vram_gib=None, est_tokens_per_s=None, est_hours=None, est_cost_usd=None, est_basis=None,
        status=RunStatus.OK, run_dir=str(orch_home() / "runs" / run_id), pid=None, cluster=None, stop_requested=0,
        created_at=0.0, started_at=0.0, ended_at=1.0, train_tokens=1000, tokens_per_s=row["tokens_per_s"],
        peak_vram_gib=None, wall_s=1.0, cost_usd=0.1, message=None, metrics_json=json.dumps(metrics),
        sky_job_id=None, request_id=None, output_uri=None)
    RunStore().insert(record)
    return record


def test_calibrate_learns_from_launched_runs_where_no_sweep_measured_that_gpu_and_method(monkeypatch, tmp_path):
    """`orch calibrate` read sweeps alone: a team's own runs on its own card, their gap to the estimate shown by
    `orch runs`, changed nothing. A sweep's point (timed until stable) still outranks a whole run's mean rate."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app
    from orchestrator.home import runs_db

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    for row in synthetic_rows():
        if row["status"] == "ok":
            launched(row)
    said = CliRunner().invoke(app, ["calibrate", "--json"])
    result = json.loads(said.stdout)
    assert str(runs_db()) in result["sources"], said.output
    for method, efficiency in TRUTH.efficiency["H100 SXM"].items():
        assert result["efficiency"]["H100 SXM"][method] == pytest.approx(efficiency, rel=0.02)
    swept = synthetic_rows(Calibration(efficiency={"H100 SXM": {"lora": 0.4, "qlora": 0.25}}))
    # a run of a few steps gives its memory alone, and one whose job no longer reads is left out, said
    short = launched({**swept[0], "steps": 3})
    launched({**swept[0], "config": {**swept[0]["config"], "tokenizer": "./moved"}})
    said = CliRunner().invoke(app, ["calibrate", "--json"])
    assert json.loads(said.stdout)["efficiency"]["H100 SXM"]["lora"] == \
        pytest.approx(TRUTH.efficiency["H100 SXM"]["lora"], rel=0.02)
    assert said.stderr.count("note: left out of the fit: run r-") == 1 and "./moved" in said.stderr, said.stderr
    from orchestrator.cli.bench import launched_run_rows

    (short_row,) = [row for row in launched_run_rows() if row["point_id"] == f"run {short.run_id}"]
    (seen,) = observations([short_row])
    assert seen.tokens_per_s is None and seen.vram_gib == short_row["nvml_peak_used_gib"]
    both = observations(swept + [{**row, "sweep": LAUNCHED_RUNS} for row in synthetic_rows()])
    assert {o.source for o in both} == {"orch runs", LAUNCHED_RUNS}
    assert fit(both).efficiency["H100 SXM"] == pytest.approx({"lora": 0.4, "qlora": 0.25}, rel=0.02)


def test_cpu_runs_do_not_move_the_fallback_for_gpus_without_points():
    from gpu_catalog.gpus import cpu_gpu

    gpu_runs = observations(synthetic_rows())
    on_cpu = [dataclasses.replace(o, gpu=cpu_gpu(), tokens_per_s=o.tokens_per_s / 1000) for o in gpu_runs if
              o.tokens_per_s]
    with_cpu = fit(gpu_runs + on_cpu)
    assert with_cpu.method_efficiency == fit(gpu_runs).method_efficiency
    assert with_cpu.efficiency_basis["CPU"]["lora"] == "measured"  # the CPU's own fit is its own


def test_the_headroom_fits_keeps_is_fitted_to_the_largest_under_estimate_among_the_runs():
    """Exact runs leave the floor (run-to-run fragmentation one run cannot show); a run that needed 10% more than
    its estimate raises the headroom until that run would still have fitted; the estimator then uses it."""
    from gpu_catalog.gpus import get_gpu
    from orchestrator.estimator.memory import FIT_HEADROOM_FRACTION, headroom_fraction, usable_vram_gib

    exact = fit(observations(synthetic_rows())).memory["cuda"]["headroom_fraction"]
    assert exact == pytest.approx(0.02)
    rows = synthetic_rows()
    rows[0] = {**rows[0], "nvml_peak_used_gib": rows[0]["nvml_peak_used_gib"] * 1.10}
    fitted = fit(observations(rows))
    assert 0.05 < fitted.memory["cuda"]["headroom_fraction"] <= 0.10
    h100 = get_gpu("H100 SXM")
    assert headroom_fraction(h100, fitted) == fitted.memory["cuda"]["headroom_fraction"]
    assert usable_vram_gib(h100, fitted) == pytest.approx(h100.vram_gib * (1 - headroom_fraction(h100, fitted)))
    assert headroom_fraction(h100, NO_CALIBRATION) == FIT_HEADROOM_FRACTION


@pytest.mark.parametrize("content, key, value", [
    ({"efficiency": {"A100 80GB": {"qlora": 5e-324}}}, "efficiency of A100 80GB qlora", "4.94066e-324"),
    ({"efficiency": {"H100 SXM": {"lora": 1e-12}}}, "efficiency of H100 SXM lora", "1e-12"),
    ({"efficiency": {"L4": {"full": 0.049}}}, "efficiency of L4 full", "0.049"),
    ({"efficiency": {}, "method_efficiency": {"qlora": 5e-324}}, "method_efficiency of qlora", "4.94066e-324"),
])
def test_a_calibration_efficiency_outside_what_calibrate_fits_is_refused(tmp_path, content, key, value):
    """"Above 0" let 5e-324 through, which divided by zero in `orch plan`, and 1e-12, which planned a job at
    millions of hours: a peak share in the file must lie in the range `orch calibrate` fits it in."""
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(content))
    with pytest.raises(UserError, match=re.escape(f"calibration file {path} is malformed ({key} must be at least 0.05 "
                                                  f"and at most 1, got {value}); move it away or delete it")):
        load_calibration(path)


CPU_ROW = {"point_id": "p1", "status": "ok", "sweep": "s", "gpu": "CPU", "tokens_per_s": 100.0,
           "config": {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 2}}


@pytest.mark.parametrize("change, key", [
    ({"tokens_per_s": 5e-324}, "tokens_per_s"),
    ({"status": "oom", "tokens_per_s": 1e-300}, "tokens_per_s"),
    ({"nvml_peak_used_gib": 5e-324}, "nvml_peak_used_gib"),
    ({"gpu_vram_gib": 1e-300}, "gpu_vram_gib"),
    ({"peak_vram_gib": {"allocated": 0, "reserved": 5e-324}}, "peak_vram_gib.reserved"),
])
def test_a_result_row_with_a_near_zero_measurement_is_refused_with_its_line(tmp_path, change, key):
    """0 is "not measured" (line 1); 5e-324 tokens/s is no measurement either, and dividing by it overflowed:
    calibrate fitted efficiency 1.0 and put inf in --json, and report took the log of 0."""
    results = tmp_path / "results.jsonl"
    unmeasured = {**CPU_ROW, "point_id": "p0", "nvml_peak_used_gib": 0, "peak_vram_gib": {"reserved": 0}}
    results.write_text(json.dumps(unmeasured) + "\n" + json.dumps({**CPU_ROW, **change}) + "\n")
    with pytest.raises(UserError, match=rf"results file '.*' line 2: `{re.escape(key)}` must be at least 0\.001 and "
                                        r"at most \d+, got "):
        read_jsonl([results])


def test_calibrate_json_refuses_a_near_zero_speed_in_one_line(tmp_path, monkeypatch):
    """`orch calibrate --json` crashed writing the inf that a 5e-324 tokens/s made of the fit."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({**CPU_ROW, "tokens_per_s": 5e-324}) + "\n")
    result = CliRunner().invoke(app, ["calibrate", "--results", str(results), "--out", str(tmp_path / "c.json"),
                                      "--json"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f"error: results file '{results}' line 1: `tokens_per_s` must be at least 0.001 "
                                     "and at most 1000000000, got 4.94066e-324.")


def cpu_rows() -> list[dict]:
    """What `orch bench benchmarks/sweeps/tiny-cpu.yaml` records: ok runs on the CPU, every method, two lengths."""
    return [{**CPU_ROW, "point_id": f"{method}-{seq_len}", "tokens_per_s": tokens_per_s,
             "config": {**CPU_ROW["config"], "method": method, "seq_len": seq_len, "micro_batch": 4}}
            for method, seq_len, tokens_per_s in (("lora", 128, 6100.0), ("lora", 256, 7200.0),
                                                  ("qlora", 128, 2500.0), ("qlora", 256, 2900.0),
                                                  ("full", 128, 5200.0), ("full", 256, 6000.0))]


def test_cpu_runs_alone_leave_every_gpu_as_it_was_and_calibrate_the_cpu(tmp_path):
    """A first user's `orch bench tiny-cpu.yaml` then `orch calibrate` labelled the H200's and H100's speeds
    `measured` (method_basis "measured" in the file) though nothing had run on a GPU: the per-method fallback took
    its basis from every timed point, the CPU's included. The CPU's fit is the CPU's own."""
    from gpu_catalog.gpus import cpu_gpu, get_gpu, load_gpus
    from gpu_catalog.models import get_model
    from orchestrator.estimator.settings import settings_from_job
    from orchestrator.estimator.speed import estimate_speed
    from trainer.config import config_from_dict

    published_only, out = tmp_path / "published.json", tmp_path / "calibration.json"
    calibrate([], published_only)  # what orch ships: the published points alone
    calibrate(cpu_rows(), out, sources=["bench.db"])
    written = json.loads(out.read_text())
    assert "measured" not in json.dumps(written["method_basis"])
    shipped, mine = load_calibration(published_only), load_calibration(out)
    for gpu in load_gpus():
        for method in ("lora", "qlora", "full"):
            before, after = shipped.efficiency_for(gpu, method), mine.efficiency_for(gpu, method)
            assert after[1] in ("published", "analytic") and after == before, (gpu.name, method)
    job = config_from_dict({"model": "meta-llama/Llama-3.1-8B", "method": "qlora", "seq_len": 2048,
                            "micro_batch": 2, "max_steps": 10})
    for name in ("H200", "H100 SXM"):  # what `orch plan examples/llama31-8b-qlora.yaml` showed as measured
        speed = estimate_speed(get_model(job.model), settings_from_job(job), get_gpu(name), mine)
        assert speed.basis == "published"
    cpu = cpu_gpu()
    for method in ("lora", "qlora", "full"):
        assert mine.efficiency_for(cpu, method) == (written["efficiency"]["CPU"][method], "measured")
        assert shipped.efficiency_for(cpu, method)[1] == "analytic"


def test_the_fallback_for_a_method_is_measured_only_where_that_methods_gpu_runs_went_into_it():
    """The per-method fallback's basis is its own method's: H100 LoRA runs made every method's fallback `measured`,
    QLoRA's too, which was fitted from published points alone."""
    from gpu_catalog.gpus import get_gpu

    lora_runs = [row for row in synthetic_rows() + synthetic_rows(device=("A100 80GB", "NVIDIA A100-SXM4-80GB", 79.1))
                 if row["config"]["method"] == "lora"]
    fitted = fit(observations(lora_runs) + published_observations())
    h200 = get_gpu("H200")  # no points of its own, measured or published: the fallback
    assert fitted.efficiency_for(h200, "lora")[1] == "measured"
    assert fitted.efficiency_for(h200, "qlora")[1] == "published"
    assert fitted.method_basis == {"full": "published", "lora": "measured", "qlora": "published"}


def test_runs_on_one_gpu_leave_every_other_gpus_share_of_peak_to_the_published_points():
    """Three runs on one H200 had set every other GPU's share of peak, labelled `measured`: the GPU they ran on is
    fitted from them, each other GPU keeps the published fit; with no published point either, the default."""
    published = published_observations()
    one_gpu = observations(synthetic_rows())
    fitted = fit(one_gpu + published)
    assert fitted.efficiency_basis["H100 SXM"] == {"lora": "measured", "qlora": "measured"}
    assert fitted.method_efficiency == fit(published).method_efficiency
    assert set(fitted.method_basis.values()) == {"published"}
    assert fit(one_gpu).method_efficiency == {}


def test_the_calibration_file_keeps_the_basis_of_each_per_method_fit(tmp_path):
    """As `orch calibrate` now writes it, per method; a file written before (one basis for every method) still
    loads, as that basis for each."""
    from gpu_catalog.gpus import get_gpu

    h200 = get_gpu("H200")
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"efficiency": {}, "method_efficiency": {"lora": 0.5, "qlora": 0.4},
                                "method_basis": {"lora": "measured", "qlora": "published"}}))
    per_method = load_calibration(path)
    assert [per_method.efficiency_for(h200, m)[1] for m in ("lora", "qlora", "full")] == \
        ["measured", "published", "analytic"]
    path.write_text(json.dumps({"efficiency": {}, "method_efficiency": {"lora": 0.5}, "method_basis": "published"}))
    assert load_calibration(path).efficiency_for(h200, "lora")[1] == "published"
    path.write_text(json.dumps({"efficiency": {}, "method_basis": {"lora": "fitted"}}))
    with pytest.raises(UserError, match="the basis of the per-method fit of lora must be one of"):
        load_calibration(path)


def test_a_launch_bound_point_leaves_its_gpus_share_of_peak_alone(tmp_path):
    """A tiny model on an H100 is bound by kernel launches: its estimate hardly moves with the share of peak, so
    fitting it drove the share to the bound (1.0) and made every real model on that GPU 60% faster, `measured`."""
    from orchestrator.bench.calibrate import tells_efficiency

    rows = []
    for n, tokens_per_s in enumerate((20_000, 30_000, 45_000)):
        row = synthetic_rows()[0]
        row.update(point_id=f"tiny-{n}", config={**row["config"], "model": "orch/tiny-llama", "seq_len": 64},
                   tokens_per_s=tokens_per_s)
        rows.append(row)
    result = calibrate(rows, tmp_path / "c.json")
    published_only = fit(published_observations())
    assert result["speed_rows_left_out"] == 3 and not any(tells_efficiency(o) for o in observations(rows))
    assert result["efficiency"] == published_only.efficiency and "H100 SXM" not in result["efficiency"]
    assert result["method_efficiency"] == published_only.method_efficiency
    assert all(tells_efficiency(o) for o in observations(synthetic_rows()) if o.tokens_per_s)


def test_a_gpu_named_by_an_alias_in_the_calibration_is_kept_under_its_own_name(tmp_path):
    """`a100-80gb` was accepted, then never read: the estimator looks GPUs up by their own names."""
    from gpu_catalog.gpus import get_gpu

    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"efficiency": {"a100-80gb": {"lora": 0.05}},
                                "efficiency_basis": {"a100-80gb": {"lora": "published"}}}))
    calibration = load_calibration(path)
    assert calibration.efficiency == {"A100 80GB": {"lora": 0.05}}
    assert calibration.efficiency_for(get_gpu("A100 80GB"), "lora") == (0.05, "published")


def test_two_names_for_one_gpu_in_the_calibration_are_refused(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"efficiency": {"a100-80gb": {"lora": 0.05}, "A100 80GB": {"lora": 0.3}}}))
    with pytest.raises(UserError, match=re.escape("(efficiency gives A100 80GB twice (as 'a100-80gb' and 'A100 "
                                                  "80GB'): keep one)")):
        load_calibration(path)


@pytest.mark.parametrize("key, value, most", [("slack_fraction", 1.01, "1"), ("slack_fraction", 1024, "1"),
                                              ("context_gib", 16.5, "16"), ("context_gib", 1000, "16")])
def test_a_memory_overhead_far_past_any_fit_is_refused(tmp_path, key, value, most):
    """A slack of 1024 was accepted and estimated a 7B job at 68,568 GiB."""
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"efficiency": {}, "memory": {"cuda": {"context_gib": 0.5, "slack_fraction": 0.1,
                                                                      key: value}}}))
    with pytest.raises(UserError, match=re.escape(f"(cuda {key} must be at least 0 and at most {most}, got")):
        load_calibration(path)


def test_the_memory_overheads_calibrate_fits_all_load():
    from orchestrator.bench.calibrate import CONTEXT_BOUNDS_GIB, HEADROOM_BOUNDS, SLACK_BOUNDS
    from orchestrator.estimator.calibration import MEMORY_MAXIMA

    assert CONTEXT_BOUNDS_GIB[1] <= MEMORY_MAXIMA["context_gib"] and SLACK_BOUNDS[1] <= MEMORY_MAXIMA["slack_fraction"]
    assert HEADROOM_BOUNDS[1] <= MEMORY_MAXIMA["headroom_fraction"]


def test_a_calibration_that_is_a_device_is_not_said_to_be_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("ORCH_CALIBRATION", "/dev/null")
    with pytest.raises(UserError, match="ORCH_CALIBRATION file '/dev/null' is not a regular file"):
        load_calibration()


def test_a_device_in_orch_home_s_calibration_place_is_not_quietly_skipped(monkeypatch, tmp_path):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    monkeypatch.delenv("ORCH_CALIBRATION", raising=False)
    os.mkfifo(tmp_path / "calibration.json")
    with pytest.raises(UserError, match="calibration file .*calibration.json is not a regular file"):
        load_calibration()


def test_a_point_given_twice_is_fitted_once(tmp_path):
    """Three copies of one row were `fitted on 3 of 3 result rows`: one point weighed three times."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    rows = synthetic_rows()
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = CliRunner().invoke(app, ["calibrate", "--results", str(results), "--results", str(results), "--out",
                                      str(tmp_path / "c.json"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == len({row["point_id"] for row in rows})
    # and said: the rows before the last of each point were left out unsaid
    assert f"note: {len(rows)} result rows repeat a point given earlier: each point counts once, as its last row" \
        in result.stderr, result.stderr


def test_a_fit_that_stops_at_an_end_of_its_range_is_said(tmp_path):
    """A billion tokens/s on an H100 fitted its efficiency to 1.0, the search's end, and wrote it without a word."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    row = {"point_id": "p1", "status": "ok", "sweep": "s", "created_at": 1.0, "gpu": "NVIDIA H100 80GB HBM3",
           "gpu_vram_gib": 79.6, "tokens_per_s": 1e9,
           "config": {"model": "meta-llama/Llama-3.1-8B", "method": "lora", "seq_len": 2048, "max_steps": 2}}
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps(row) + "\n")
    result = CliRunner().invoke(app, ["calibrate", "--results", str(results), "--out", str(tmp_path / "c.json"),
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["at_bounds"] == ["efficiency H100 SXM lora 1"]
    said = CliRunner().invoke(app, ["calibrate", "--results", str(results), "--out", str(tmp_path / "c.json"),
                                    "--force"], env={"COLUMNS": "200"})
    assert "note: fitted to an end of its range (efficiency H100 SXM lora 1)" in said.stdout
    plain = CliRunner().invoke(app, ["calibrate", "--out", str(tmp_path / "d.json"), "--json"])
    assert json.loads(plain.stdout)["at_bounds"] == []  # orch's own results and the published points


@pytest.mark.parametrize("database", ["bench.db", "runs.db"])
def test_calibrate_never_writes_over_orchs_own_databases_even_with_force(tmp_path, monkeypatch, database):
    """Only a --db named database counted as calibrate's input: `--out $ORCH_HOME/bench.db --force` turned the
    results it had just read into JSON, and runs.db the same way; every later `orch calibrate` or `orch runs`
    failed on the file."""
    from typer.testing import CliRunner

    from orchestrator.bench.results import ResultStore
    from orchestrator.cli.main import app
    from orchestrator.runs.store import RunStore

    home = tmp_path / "orch-home"
    monkeypatch.setenv("ORCH_HOME", str(home))
    ResultStore(), RunStore()
    before = (home / database).read_bytes()
    result = CliRunner().invoke(app, ["calibrate", "--out", str(home / ".." / "orch-home" / database), "--force"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "is orch's" in result.stderr and (home / database).read_bytes() == before


def test_another_name_for_the_database_calibrate_reads_by_default_is_refused_as_its_out(tmp_path, monkeypatch):
    """The default bench.db is read as one --db names is, and a link to it is the same file: never the --out."""
    from typer.testing import CliRunner

    from orchestrator.bench.results import ResultStore
    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "orch-home"))
    db = ResultStore().path
    link = tmp_path / "results.db"
    link.symlink_to(db)
    result = CliRunner().invoke(app, ["calibrate", "--out", str(link), "--force"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "'" + str(link) + "'" in result.stderr and db.read_bytes()[:15] == b"SQLite format 3"


@pytest.mark.parametrize("target, said", [
    ("runs.db", "is orch's runs database"), ("other.json", "holds something other than a calibration orch can read"),
    ("sweep.yaml", "ORCH_CALIBRATION takes a .json file name"),
    ("pipe", "is not a regular file"), ("missing/c.json", "folder '.*missing' does not exist"),
    ("dangling.json", "folder '.*nowhere' does not exist"),
])
def test_calibrate_checks_the_file_orch_calibration_names_before_the_fit(monkeypatch, tmp_path, target, said):
    """Without --out, `orch calibrate` wrote to ORCH_CALIBRATION unchecked: naming runs.db replaced every run record
    with JSON, a sweep file was replaced unsaid, a pipe hung it, and a missing folder was made."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app
    from orchestrator.runs.store import RunStore

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    RunStore()  # runs.db as orch makes it
    (tmp_path / "sweep.yaml").write_text("name: s\n")
    (tmp_path / "other.json").write_text('{"name": "s"}\n')
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere" / "c.json")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name != "pipe"}
    monkeypatch.setenv("ORCH_CALIBRATION", str(tmp_path / target))
    result = CliRunner().invoke(app, ["calibrate"])
    assert result.exit_code == 2 and re.search(said, result.stderr), result.output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name != "pipe"} == before
    assert not (tmp_path / "missing").exists()
    monkeypatch.setenv("ORCH_CALIBRATION", str(tmp_path / "mine.json"))  # a new file, then a refit of it
    assert CliRunner().invoke(app, ["calibrate"]).exit_code == 0
    assert CliRunner().invoke(app, ["calibrate"]).exit_code == 0 and load_calibration(tmp_path / "mine.json")


def test_an_unstable_points_speed_is_not_fitted_but_its_memory_is():
    """A sweep point flagged `stable: false` (3 timed steps) was fitted as a `measured` CPU efficiency."""
    from orchestrator.bench.calibrate import observations

    row = {"point_id": "p1", "status": "ok", "sweep": "s", "gpu": "CPU", "tokens_per_s": 100.0,
           "peak_vram_gib": {"process_rss": 1.0},
           "config": {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 2}}
    (stable,) = observations([row])
    (unstable,) = observations([{**row, "stable": False}])
    assert stable.tokens_per_s == 100.0 and unstable.tokens_per_s is None and unstable.vram_gib == stable.vram_gib


def test_a_row_whose_model_is_no_longer_described_is_left_out_as_an_unknown_gpus_is():
    """A row of this machine's database naming a model folder since deleted stopped `orch calibrate` with `unknown
    model`, saying neither the database nor the row."""
    from orchestrator.bench.calibrate import observations

    row = {"point_id": "p1", "status": "ok", "gpu": "NVIDIA H100 80GB HBM3", "tokens_per_s": 5000.0,
           "config": {"model": "/gone/model-folder", "method": "lora", "seq_len": 512, "max_steps": 2}}
    known = {**row, "config": {**row["config"], "model": "meta-llama/Llama-3.2-1B"}}
    assert [o.model.name for o in observations([row, known])] == ["meta-llama/Llama-3.2-1B"]


@pytest.mark.parametrize("vram_gib", [None, 0])
def test_a_row_without_its_cards_memory_is_the_card_its_name_says(vram_gib):
    """An unmeasured memory (absent, or 0 as calibrate reads 0) was taken as 80 GB: a 40GB A100 was the 80GB one."""
    assert row_gpu({"gpu": "NVIDIA A100-SXM4-40GB", "gpu_vram_gib": vram_gib}).name == "A100 40GB"


def test_a_calibration_write_cut_short_keeps_the_one_before(tmp_path, monkeypatch):
    """calibration.json was written in place: a write cut short (a full disk, a file-size limit) lost the earlier
    calibration, and every estimate after it refused the cut-off file. The error named no file."""
    import pathlib

    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    results, out = tmp_path / "results.jsonl", tmp_path / "c.json"
    results.write_text("".join(json.dumps(row) + "\n" for row in cpu_rows()))
    assert CliRunner().invoke(app, ["calibrate", "--results", str(results), "--out", str(out)]).exit_code == 0
    before = out.read_text()
    write_text = pathlib.Path.write_text

    def cut_short(path, text, *args, **kwargs):
        write_text(path, text[:100], *args, **kwargs)
        raise OSError(27, "File too large")

    monkeypatch.setattr(pathlib.Path, "write_text", cut_short)
    result = CliRunner().invoke(app, ["calibrate", "--results", str(results), "--out", str(out), "--force"])
    monkeypatch.undo()
    assert result.exit_code == 2 and f"cannot write {out} (File too large)" in result.stderr
    assert out.read_text() == before and {p.name for p in tmp_path.iterdir()} == {"results.jsonl", "c.json"}


def test_calibrate_says_what_every_other_gpu_is_now_estimated_at(monkeypatch, tmp_path):
    """A fit moved every GPU without its own (A10G, L4: LoRA 0.63 -> 0.47 of peak) and calibrate said nothing of it."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in synthetic_rows()))
    result = CliRunner().invoke(app, ["calibrate", "--results", str(results)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    fitted = json.loads((tmp_path / "calibration.json").read_text())["method_efficiency"]
    shipped = load_calibration(PACKAGED_CALIBRATION).method_efficiency
    line = next(line for line in result.stdout.splitlines() if line.startswith("efficiency of every other GPU"))
    for method, share in fitted.items():
        was = f" (was {shipped[method]:.3g})" if f"{shipped[method]:.3g}" != f"{share:.3g}" else ""
        assert f"{method} {share:.3g}{was}" in line, line


def test_calibrate_force_replaces_an_out_file_that_holds_no_calibration(monkeypatch, tmp_path):
    """What it replaces was read to say what it was: --force over a file of other JSON was refused as malformed."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    out = tmp_path / "old.json"
    out.write_text('{"a": 1}\n')
    result = CliRunner().invoke(app, ["calibrate", "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert load_calibration(out).method_efficiency
