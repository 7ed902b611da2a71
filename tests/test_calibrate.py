"""Calibration finds a known truth and lowers the estimator's error."""

import json

import pytest

from orchestrator.bench.calibrate import calibrate, errors, fit
from orchestrator.estimator.calibration import NO_CALIBRATION, load_calibration
from tests.bench_fixtures import TRUTH, synthetic_rows


def test_fit_recovers_the_efficiency_and_memory_overheads_that_made_the_data():
    fitted = fit(synthetic_rows())
    for method, efficiency in TRUTH.efficiency["H100 SXM"].items():
        assert fitted.efficiency["H100 SXM"][method] == pytest.approx(efficiency, rel=0.02)
    assert fitted.memory["cuda"]["context_gib"] == pytest.approx(1.4, abs=0.05)
    assert fitted.memory["cuda"]["slack_fraction"] == pytest.approx(0.25, abs=0.02)


def test_calibration_lowers_the_error_and_the_estimator_reads_the_file(tmp_path, monkeypatch):
    rows = synthetic_rows()
    out = tmp_path / "calibration.json"
    result = calibrate(rows, out, sources=["synthetic"])
    worst_before = max(abs(p["tokens_per_s_error"]) for p in result["points"])
    worst_after = max(abs(p["tokens_per_s_error_after"]) for p in result["points"])
    assert worst_after < 0.02 < worst_before
    assert max(abs(p["vram_error_after"]) for p in result["points"]) < 0.02
    assert all(p["point"] for p in result["points"]) and len(result["points"]) == 8  # the oom row has no speed
    monkeypatch.setenv("ORCH_CALIBRATION", str(out))
    loaded = load_calibration()
    assert loaded.efficiency == json.loads(out.read_text())["efficiency"]
    after = errors(rows, loaded)
    assert max(abs(p["tokens_per_s_error"]) for p in after) < 0.02
    assert errors(rows, NO_CALIBRATION)[0]["tokens_per_s_error"] == result["points"][0]["tokens_per_s_error"]
