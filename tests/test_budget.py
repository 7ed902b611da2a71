"""The budget from the first second, across launch, resume and detach: whatever the machine's load, a run's
recorded cost (its whole wall time, set-up and model build included, at the target's price) never passes its budget
by more than one meter interval. The CPU is priced at $3.25/h here (65 W at $10/kWh in a PUE-5 room, the dearest a
hardware file allows), so 39 seconds cost three and a half cents."""

import json
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from gpu_catalog.units import usd_for
from orchestrator.cli.main import app
from tests.conftest import REPO
from tests.trainer_helpers import write_job
from trainer.meter import EXIT_MARGIN_S, METER_INTERVAL_S, BudgetMeter, BudgetSpent

runner = CliRunner()
USD_PER_HOUR = 0.065 * 10 * 5


@pytest.fixture(autouse=True)
def expensive_cpu(tmp_path, monkeypatch):
    hardware = tmp_path / "hardware.yaml"
    hardware.write_text("electricity_usd_per_kwh: 10\npue: 5\n")
    monkeypatch.setenv("ORCH_HARDWARE", str(hardware))


def runs():
    return json.loads(runner.invoke(app, ["runs", "--json"]).stdout)


def within_budget(run) -> bool:
    return run["cost_usd"] <= run["budget_usd"] + usd_for(METER_INTERVAL_S, USD_PER_HOUR)


def test_launch_then_resume_stay_within_the_budget(tmp_path, monkeypatch):
    """An eval after every step makes the run outlast its budget for sure: the plan is made blind to the evaluations'
    time (as an estimate can be wrong), so the launch goes ahead and the meter has to stop it."""
    monkeypatch.setattr("orchestrator.cost.eval_hours", lambda fit, train_tokens: 0.0)
    job = write_job(tmp_path, max_steps=25, save_every=2, eval_every=1, eval_fraction=0.45, eval_batches=100)
    launched = runner.invoke(app, ["launch", str(job), "--budget", "0.035", "--target", "local", "--yes", "--json"])
    assert launched.exit_code == 4, launched.output  # budget_stopped: the trainer's own exit code
    (run,) = runs()
    assert run["usd_per_hour"] == pytest.approx(USD_PER_HOUR)
    assert run["status"] == "budget_stopped" and within_budget(run), run["message"]
    refused = runner.invoke(app, ["resume", run["run_id"][:5]])
    if run["cost_usd"] >= run["budget_usd"]:
        assert refused.exit_code == 2 and "--budget" in refused.stderr
    resumed = runner.invoke(app, ["resume", run["run_id"], "--budget", "0.05"])  # 15 s or more: a start and steps
    assert resumed.exit_code == 4, resumed.output
    (run,) = runs()
    assert run["status"] == "budget_stopped" and run["budget_usd"] == 0.05 and within_budget(run), run["message"]


def test_a_detached_run_is_billed_until_it_ends_not_until_someone_looks(tmp_path):
    job = write_job(tmp_path, max_steps=6)
    launched = runner.invoke(app, ["launch", str(job), "--budget", "0.1", "--target", "local", "--yes", "--detach",
                                   "--json"])
    assert launched.exit_code == 0, launched.output
    deadline = time.time() + 300
    while runs()[0]["status"] in ("launching", "running") and time.time() < deadline:
        time.sleep(0.5)
    first = runs()[0]
    time.sleep(3)  # nobody looked for a while: the bill does not grow
    assert runs()[0]["cost_usd"] == first["cost_usd"] and within_budget(first)


def test_a_trainer_process_is_not_metered_from_before_it_was_started():
    """The meter starts at the process's own start, read from /proc. Read through the boot time (whole seconds) it
    came out up to a second early, so the trainer charged more than the orchestrator recorded for the same run."""
    before = time.time()
    child = subprocess.run([sys.executable, "-c", "from trainer.meter import process_start_time as s; print(s())"],
                           capture_output=True, text=True, check=True, cwd=REPO)
    after = time.time()
    assert before - 0.02 <= float(child.stdout) <= after  # one 10 ms clock tick of rounding either way


def test_a_free_card_trains_and_records_no_spend(tmp_path):
    """Free electricity with the marginal policy prices the CPU at $0/h: the trainer takes 0 as a price (no budget
    stop to arm) instead of refusing the run."""
    (tmp_path / "hardware.yaml").write_text("electricity_usd_per_kwh: 0\ncost_policy: marginal\n")
    job = write_job(tmp_path, max_steps=2)
    launched = runner.invoke(app, ["launch", str(job), "--budget", "0.01", "--target", "local", "--yes", "--json"])
    assert launched.exit_code == 0, launched.output
    (run,) = runs()
    assert (run["status"], run["usd_per_hour"], run["cost_usd"]) == ("ok", 0.0, 0.0), run["message"]


def test_the_alarm_says_whose_budget_ran_out_and_what_continues_the_run():
    """The alarm's stop read "the budget of $X ran out after N s", with nothing on how to go on."""
    meter = BudgetMeter(usd_per_hour=3600.0, budget_usd=EXIT_MARGIN_S + 0.05, started_at=time.time())  # $1 a second
    meter.arm_alarm()
    try:
        with pytest.raises(BudgetSpent, match=r"this session's budget of \$1\.05 ran out after .* s; a larger budget "
                                              r"continues from the last checkpoint, if any"):
            time.sleep(5)
    finally:
        meter.disarm_alarm()
