"""`orch submit` refuses what `orch launch` refuses before a target is chosen, and leaves nothing queued when it
refuses; ORCH_HOME's layout is said with its fix; the scheduler's budget refusal names the cheapest target."""

from pathlib import Path

from typer.testing import CliRunner

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import cpu_gpu, get_gpu
from gpu_catalog.models import get_model
from orchestrator.cli.main import app
from orchestrator.job import job_from_dict
from orchestrator.launch import local
from orchestrator.schedule.policy import JobAsk, LocalSlot, decide
from orchestrator.schedule.queue import JobQueue
from tests.conftest import make_offer
from tests.trainer_helpers import write_job

runner = CliRunner()
HOME = Path.home  # conftest points HOME, hence ORCH_HOME, at each test's own folder


def orch_home() -> Path:
    return HOME() / ".local" / "share" / "orch"


def queued() -> list:
    """The queue as runs.db holds it, read without the CLI (which may refuse the home's layout)."""
    path = orch_home() / "runs.db"
    return JobQueue(path).all() if path.exists() else []


def test_submit_refuses_a_job_without_a_dataset_as_launch_does(tmp_path):
    """It was queued, and the scheduler started a trainer that refused it, three times."""
    job = write_job(tmp_path, name="nodata", dataset=None, train_tokens=None, max_steps=2)
    result = runner.invoke(app, ["submit", str(job)])
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert "pre-flight: job.yaml names no dataset" in result.stderr and "Nothing was queued." in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and queued() == []


def test_a_jobs_file_in_orch_home_refuses_submit_with_the_fix_and_queues_nothing(tmp_path):
    """The row was inserted, then its folder failed with Python's 'Not a directory', and the job stayed queued
    pointing at the user's live file."""
    write_job(tmp_path, name="t")
    orch_home().mkdir(parents=True)
    (orch_home() / "jobs").write_text("x")
    result = runner.invoke(app, ["submit", str(tmp_path / "job.yaml"), "--budget", "1"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ORCH_HOME's jobs (") and "/jobs) is not a folder" in result.stderr
    assert "Move it away, or set ORCH_HOME to another folder." in result.stderr and queued() == []


def test_a_runs_file_in_orch_home_refuses_launch_before_the_plan(tmp_path):
    """The whole plan was printed, then `error: '.../runs/r-...': Not a directory.`"""
    job = write_job(tmp_path, name="t", max_steps=2)
    orch_home().mkdir(parents=True)
    (orch_home() / "runs").write_text("x")
    result = runner.invoke(app, ["launch", str(job), "--budget", "0.05", "--yes"])
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert result.stderr.startswith("error: ORCH_HOME's runs (") and len(result.stderr.splitlines()) == 1
    assert "/runs) is not a folder: orch keeps a folder per run there" in result.stderr


def test_a_refused_copy_of_the_job_leaves_no_job_queued(tmp_path, monkeypatch):
    """The queue's row is written only once its copy of the job is there; a copy refused takes its folder along."""
    job = write_job(tmp_path, name="t", max_steps=2)

    def refused(job_path, folder, settings=None):
        raise UserError("refused copy.")

    monkeypatch.setattr(local, "run_job_file", refused)
    result = runner.invoke(app, ["submit", str(job), "--budget", "1"])
    assert result.exit_code == 2 and "refused copy." in result.stderr
    assert queued() == [] and list((orch_home() / "jobs").iterdir()) == []


def test_submit_refuses_a_budget_no_target_meets_naming_the_cheapest_as_plan_does(tmp_path):
    """The job was queued, and the scheduler's pass rejected it advising the cheapest cloud's price, 1,000x the
    local CPU's that would do."""
    job = str(write_job(tmp_path, name="t", max_steps=2))
    planned = runner.invoke(app, ["plan", job, "--budget", "1e-12"])
    said = runner.invoke(app, ["submit", job, "--budget", "1e-12"])
    assert planned.exit_code == 2 and said.exit_code == 2, said.output
    advice = planned.stderr.strip().splitlines()[-1].removeprefix("error: ")
    assert "the cheapest is CPU on local" in advice
    assert said.stderr.strip() == f"error: {advice} Nothing was queued." and queued() == []
    assert runner.invoke(app, ["submit", job, "--budget", "1", "--json"]).exit_code == 0 and len(queued()) == 1


MODEL = get_model("orch/tiny-llama")
TINY = job_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "train_tokens": 200_000})
CPU = make_offer(cpu_gpu(), provider="local", usd_per_hour=0.01)
CLOUD = [make_offer(get_gpu("T4"), "azure", 0.2)]


def cost_on(offer) -> float:
    return decide(JobAsk("j", TINY, 100.0, None), MODEL, [LocalSlot("cpu:0", offer)] if offer.is_local else [],
                  [] if offer.is_local else [offer]).option.estimate.cost_usd


def test_the_schedulers_budget_refusal_names_the_cheapest_target_local_ones_included():
    cpu_usd, cloud_usd = cost_on(CPU), cost_on(CLOUD[0])
    assert cpu_usd < cloud_usd
    decision = decide(JobAsk("j", TINY, cpu_usd / 2, None), MODEL, [LocalSlot("cpu:0", CPU)], CLOUD)
    assert decision.action == "reject" and "the cheapest is CPU on local" in decision.reason, decision.reason
    assert "T4" not in decision.reason


def test_the_jobs_own_budget_is_named_when_it_blocks_with_the_monthly_cap():
    """A job no target could run within its own budget was told the month's cap blocked it, and waited for next
    month; the cap is named (and waited on) only where the job's budget takes an offer."""
    cloud_usd = cost_on(CLOUD[0])
    blocked = decide(JobAsk("j", TINY, cloud_usd / 2, None), MODEL, [], CLOUD, spend_left_usd=0.0)
    assert blocked.action == "reject" and "monthly" not in blocked.reason
    assert f"no target meets the ${cloud_usd / 2:.2g}"[:24] in blocked.reason, blocked.reason
    capped = decide(JobAsk("j", TINY, cloud_usd * 2, None), MODEL, [], CLOUD, spend_left_usd=0.0)
    assert capped.action == "wait" and "the monthly spend cap leaves $0" in capped.reason


def test_a_folder_for_orch_homes_calibration_names_the_fix_without_orch_calibration():
    """The fix named ORCH_CALIBRATION, which nobody had set."""
    (orch_home() / "calibration.json").mkdir(parents=True)
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B"])
    assert result.exit_code == 2, result.output
    assert "calibration file" in result.stderr and "is a folder: move it away (`orch calibrate` writes a file " \
        "there)" in result.stderr, result.stderr

