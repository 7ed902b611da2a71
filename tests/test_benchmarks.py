"""The benchmark scripts run (their numbers are checked by running them, not here)."""

import json
import subprocess
import sys

from tests.conftest import REPO


def test_simulate_speed_runs(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/simulate_speed.py", "--jobs", "300", "--json"], cwd=REPO,
                          check=True, capture_output=True, text=True)
    result = json.loads(done.stdout)
    assert result["ended_once"] and result["jobs"] == 300 and result["seconds"] > 0


def test_plan_speed_runs():
    done = subprocess.run([sys.executable, "benchmarks/plan_speed.py", "--runs", "1", "--json"], cwd=REPO,
                          capture_output=True, text=True)
    result = json.loads(done.stdout)
    assert result["targets"] > 0 and result["heavy_imports"] == []
