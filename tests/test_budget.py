"""The budget from the first second, across launch, resume and detach: whatever the machine's load, a run's
recorded cost (its whole wall time, set-up and model build included, at the target's price) never passes its budget
by more than one meter interval. The CPU is priced at $3.25/h here (65 W at $10/kWh in a PUE-5 room, the dearest a
hardware file allows), so 39 seconds cost three and a half cents."""

import json
import signal
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
    """Judged on the run's wall-clock at its price, not on its recorded cost: spend caps that at the budget and one
    meter interval (spend.cap_usd), so any overspend passed, and a meter 20 s late went unseen."""
    spent_usd = usd_for(run["wall_s"], run["usd_per_hour"])
    return run["cost_usd"] <= spent_usd + 1e-9 and spent_usd <= run["budget_usd"] + usd_for(METER_INTERVAL_S,
                                                                                           USD_PER_HOUR)


def test_launch_then_resume_stay_within_the_budget(tmp_path, monkeypatch):
    """An eval after every step makes the run outlast its budget for sure: the plan is made blind to the evaluations'
    time (as an estimate can be wrong), so the launch goes ahead and the meter has to stop it."""
    monkeypatch.setattr("orchestrator.cost.eval_hours", lambda fit, train_tokens: 0.0)
    job = write_job(tmp_path, max_steps=60, save_every=2, eval_every=1, eval_fraction=0.45, eval_batches=100)
    launched = runner.invoke(app, ["launch", str(job), "--budget", "0.035", "--target", "local", "--yes", "--json"])
    assert launched.exit_code == 4, launched.output  # budget_stopped: the trainer's own exit code
    (run,) = runs()
    assert run["usd_per_hour"] == pytest.approx(USD_PER_HOUR)
    assert run["status"] == "budget_stopped" and within_budget(run), run["message"]
    refused = runner.invoke(app, ["resume", run["run_id"][:5]])
    if run["cost_usd"] >= run["budget_usd"]:
        assert refused.exit_code == 2 and "--budget" in refused.stderr
    resumed = runner.invoke(app, ["resume", run["run_id"], "--budget", "0.07"])  # a start (30 s planned) and steps
    assert resumed.exit_code == 4, resumed.output
    (run,) = runs()
    assert run["status"] == "budget_stopped" and run["budget_usd"] == 0.07 and within_budget(run), run["message"]


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


@pytest.fixture
def trainer_process(tmp_path, monkeypatch):
    """This process taken for the trainer's own (`python -m trainer`): the alarm's exit is caught, not made."""
    import trainer.meter as meter

    exits = []

    def exit_(code):
        exits.append(code)
        raise SystemExit(code)  # not an Exception: what catches those lets it through, as it does a real exit

    monkeypatch.setattr(meter.os, "_exit", exit_)
    monkeypatch.setattr(meter, "_process_output", None)
    meter.end_process_at_budget(tmp_path / "out")
    return exits


def test_the_alarm_before_the_loop_ends_the_trainer_whatever_catches_its_exception(trainer_process, tmp_path):
    """While torch and transformers imported, the alarm's BudgetSpent was caught by transformers' lazy import and
    re-raised as ModuleNotFoundError: a traceback, exit 1 and no metrics.json (or, swallowed, a run past its budget by
    the whole import). The import here is a sleep inside such a wrapper."""
    meter = BudgetMeter(usd_per_hour=3600.0, budget_usd=EXIT_MARGIN_S + 0.05, started_at=time.time())  # $1 a second
    meter.arm_alarm()
    try:
        with pytest.raises(SystemExit):
            try:
                time.sleep(5)
            except Exception as exc:
                raise ModuleNotFoundError("Could not import module 'AutoModel'") from exc
    finally:
        meter.disarm_alarm()
    assert trainer_process == [4]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["status"], metrics["steps"]) == ("budget_stopped", 0)
    assert metrics["cost_usd"] <= EXIT_MARGIN_S + 0.05 and "ran out after" in metrics["message"]


def test_the_alarm_ends_the_trainer_even_where_its_metrics_cannot_be_written(trainer_process, monkeypatch):
    """A full disk or a closed pipe raised inside the alarm, before its exit: the process went on spending."""
    import trainer.meter as meter_module

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(meter_module, "write_budget_stop", full_disk)
    meter = BudgetMeter(usd_per_hour=3600.0, budget_usd=EXIT_MARGIN_S + 0.05, started_at=time.time())
    meter.arm_alarm()
    try:
        with pytest.raises(SystemExit):
            time.sleep(5)
    finally:
        meter.disarm_alarm()
    assert trainer_process == [4]


def test_the_alarm_in_the_loop_raises_and_ends_the_trainer_if_nothing_takes_it(trainer_process, tmp_path,
                                                                                monkeypatch):
    """Once the loop has started, the alarm raises into it (its caller writes the run's
    metrics); an exception swallowed there still ends the process within the meter interval."""
    interval_s = EXIT_MARGIN_S + 1.5  # the last word 1.5 s after the first, not 5 s
    monkeypatch.setattr("trainer.meter.METER_INTERVAL_S", interval_s)
    meter = BudgetMeter(usd_per_hour=3600.0, budget_usd=EXIT_MARGIN_S + 0.05, started_at=time.time())
    meter.arm_alarm()
    meter.loop_started()
    try:
        with pytest.raises(SystemExit):
            with pytest.raises(BudgetSpent):
                time.sleep(5)
            seconds_left, last_word_in_s = meter.seconds_left(), signal.getitimer(signal.ITIMER_REAL)[0]
            time.sleep(5)  # the exception was taken and the run went on
    finally:
        meter.disarm_alarm()
    # set for the end of the interval past the budget (the timer rounds up to its clock's tick)
    assert trainer_process == [4] and 0 < last_word_in_s <= seconds_left + interval_s - EXIT_MARGIN_S + 0.01
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["status"] == "budget_stopped" and "steps" not in metrics  # how many ran is not known here


SLOW_IMPORT_S = 60
SLOW_IMPORT = """
import runpy, sys, time
from importlib.abc import MetaPathFinder

class SlowTorch(MetaPathFinder):
    # torch and transformers importing for a minute, behind a lazy import that turns any exception into its own
    def find_spec(self, name, path, target=None):
        if name == "trainer.loop":
            try:
                time.sleep(%d)
            except Exception as exc:
                raise ModuleNotFoundError("Could not import module 'AutoModel'") from exc
        return None

sys.meta_path.insert(0, SlowTorch())
runpy.run_module("trainer", run_name="__main__", alter_sys=True)
""" % SLOW_IMPORT_S


def test_a_budget_spent_while_torch_imports_is_a_budget_stop_within_the_interval(tmp_path):
    """`python -m trainer` whose imports outlast its budget: exit 4 and a budget_stopped metrics.json, ended within
    the meter interval, not a crash (exit 1, no metrics) nor a run that goes on to the end of the imports."""
    budget_usd = 6.0  # at $1 a second; a start slower than that stops before the imports, the same way
    output = tmp_path / "out"
    started = time.time()
    process = subprocess.run([sys.executable, "-c", SLOW_IMPORT, "examples/tiny.yaml", "--output", str(output),
                              "--set", "usd_per_hour=3600", "--set", f"budget_usd={budget_usd}"],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
    wall_s = time.time() - started
    assert process.returncode == 4, process.stderr
    metrics = json.loads((output / "metrics.json").read_text())
    # the trainer's own count from its process's first second, at $1 a second; the wall-clock here also holds the
    # interpreter's start and exit, as long as the machine's load makes them, so it only shows the imports were cut
    assert metrics["status"] == "budget_stopped" and metrics["cost_usd"] <= budget_usd
    assert wall_s < SLOW_IMPORT_S
    assert process.stderr.strip().splitlines()[-1] == f"budget_stopped: {metrics['message']}"
