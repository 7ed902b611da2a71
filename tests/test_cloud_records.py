"""A cloud run's record after `orch launch --detach`: it ends when SkyPilot says its job ended (at SkyPilot's end
time, not when somebody looked or followed), and its spend never passes its budget (the VM's guard keeps the idle
window after the trainer inside it), even while SkyPilot cannot be asked. Only the calls that would reach SkyPilot's
API server are recorded (sky.queue, sky.jobs.queue_v2, sky.tail_logs, sky.jobs.tail_logs, sky.get, sky.down,
sky.jobs.cancel, sky.storage_ls); their answers go through SkyPilot's own decoders, as the server's would."""

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.cost import CONTROLLER_IDLE_HOURS
from orchestrator.delivery import BUCKET_IDLE_MINUTES, CLUSTER_IDLE_MINUTES, autodown_after_s
from orchestrator.home import orch_home
from orchestrator.launch.local import LOG_NAME
from orchestrator.launch.sky_task import METRICS_BEGIN, METRICS_END
from orchestrator.runs.status import RunStatus, Target
from orchestrator.runs.store import RunRecord, RunStore, new_run_id

runner = CliRunner()
HOUR_S = 3600.0
USD_PER_HOUR = 0.23  # tiny on Vast, as in the finding: $5 is about 21.7 hours there
LAUNCHED_AGO_S = 30 * HOUR_S  # the trainer's budget stop ended it long since
JOB_HOURS = 2.0


def detached_run(spot=False, **changes) -> RunRecord:
    """What `orch launch --detach` leaves in the store once sky.launch returned: running, with its cluster, job id
    and where its output lives."""
    run_id = new_run_id()
    run_dir = orch_home() / "runs" / run_id
    run_dir.mkdir(parents=True)
    started = time.time() - LAUNCHED_AGO_S
    cluster = f"orch-{run_id.removeprefix('r-')}"
    values = dict(
        run_id=run_id, job_name="tiny", job_path="/x/tiny.yaml", job_json="{}", target=Target.CLOUD,
        gpu="RTX 4090", provider="nebius" if spot else "vast", region="r1", spot=int(spot),
        usd_per_hour=USD_PER_HOUR, budget_usd=5.0, est_vram_gib=None, est_tokens_per_s=None, est_hours=None,
        est_cost_usd=None, est_basis=None, status=RunStatus.RUNNING, run_dir=str(run_dir), pid=None, cluster=cluster,
        stop_requested=0, created_at=started, started_at=started, ended_at=None, train_tokens=None,
        tokens_per_s=None, peak_vram_gib=None, wall_s=None, cost_usd=None, message=None, metrics_json=None,
        sky_job_id=1 if spot else 3, request_id="request-0",
        output_uri=f"bucket orch-{run_id}" if spot else f"{cluster}:/orch/output (until teardown)")
    record = RunRecord(**{**values, **changes})
    RunStore().insert(record)
    return record


def metrics_log(status="ok") -> str:
    metrics = {"status": status, "train_tokens": 1000, "tokens_per_s": 50.0, "peak_vram_gib": {"reserved": 9.0}}
    return f"step 1: loss 2.0\n{METRICS_BEGIN}\n{json.dumps(metrics)}\n{METRICS_END}\n"


class SkyServer:
    """Stands in for the API server: each call is written down, and each answer is decoded by SkyPilot's own
    decoder for that request, from the payload the server sends."""

    def __init__(self, sky, monkeypatch, job_status="SUCCEEDED", end_at=None, log_text=""):
        self.calls, self.answers = [], {}
        self.job_status, self.end_at, self.log_text = job_status, end_at, log_text
        for name in ("queue", "get", "tail_logs", "down", "storage_ls"):
            monkeypatch.setattr(sky, name, getattr(self, name))
        monkeypatch.setattr(sky.jobs, "queue_v2", self.jobs_queue_v2)
        monkeypatch.setattr(sky.jobs, "tail_logs", self.jobs_tail_logs)
        monkeypatch.setattr(sky.jobs, "cancel", lambda **kwargs: self._request(("jobs.cancel",), None))
        from orchestrator.launch import sky_storage

        monkeypatch.setattr(sky_storage, "_run", lambda command: self.calls.append(("copy", command[0])) or True)

    def _request(self, call, answer):
        self.calls.append(call)
        request_id = f"request-{len(self.calls)}"
        self.answers[request_id] = answer
        return request_id

    def _job(self, job_id):
        ended = self.job_status not in ("PENDING", "RUNNING")
        return {"job_id": job_id, "job_name": "orch-tiny", "submitted_at": time.time() - LAUNCHED_AGO_S,
                "start_at": time.time() - LAUNCHED_AGO_S, "end_at": self.end_at if ended else None,
                "status": self.job_status, "resources": "1x[RTX4090:1]"}

    def queue(self, cluster_name, skip_finished=False):
        from sky.server.requests.serializers import decoders

        job = {**self._job(3), "username": "me", "user_hash": "abc", "log_path": "~/sky_logs/x"}
        return self._request(("queue", cluster_name), lambda: decoders.decode_queue([job]))

    def jobs_queue_v2(self, refresh, job_ids=None, **kwargs):
        from sky.server.requests.serializers import decoders

        payload = {"jobs": [{**self._job(job_ids[0]), "task_id": 0}], "total": 1, "status_counts": {},
                   "total_no_filter": 1}
        return self._request(("jobs.queue_v2", refresh, job_ids), lambda: decoders.decode_jobs_queue_v2(payload))

    def tail_logs(self, cluster, job_id, follow, output_stream):
        self.calls.append(("tail_logs", cluster, job_id, follow))
        output_stream.write(self.log_text)

    def jobs_tail_logs(self, job_id, follow, output_stream):
        self.calls.append(("jobs.tail_logs", job_id, follow))
        output_stream.write(self.log_text)

    def down(self, cluster):
        return self._request(("down", cluster), None)

    def storage_ls(self):
        buckets = [SimpleNamespace(name=r.output_uri.split()[1], store=["S3"]) for r in RunStore().all()
                   if (r.output_uri or "").startswith("bucket ")]
        return self._request(("storage_ls",), lambda: buckets)

    def get(self, request_id):
        answer = self.answers[request_id]
        return answer() if callable(answer) else answer


def runs_json() -> list[dict]:
    result = runner.invoke(app, ["runs", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_detached_runs_spend_stops_at_its_budget_while_skypilot_cannot_be_asked(sky):
    """No API server here (as with every SkyPilot call in these tests unrecorded): the run stays as recorded, and
    `orch spend` no longer counts 30 hours at $0.23/h ($6.90) for a run its guards stopped near $5."""
    record = detached_run()
    (run,) = runs_json()
    assert run["status"] == "running" and run["cost_usd"] is None
    cap_usd = 5.0  # the budget: the guard's window leaves the VM's idle hour after the trainer inside it
    assert run["spent_usd"] == pytest.approx(cap_usd)
    spent = json.loads(runner.invoke(app, ["spend", "--json"]).stdout)["total_usd"]
    assert spent == pytest.approx(cap_usd, abs=1e-4)
    assert RunStore().get(record.run_id).status is RunStatus.RUNNING


@pytest.mark.parametrize("spot", [False, True], ids=["on-demand", "managed-spot"])
def test_a_detached_run_ends_when_skypilot_says_its_job_ended_at_skypilots_end_time(sky, monkeypatch, spot):
    record = detached_run(spot=spot)
    end_at = record.started_at + JOB_HOURS * HOUR_S
    server = SkyServer(sky, monkeypatch, job_status="RUNNING", end_at=end_at, log_text=metrics_log("budget_stopped"))
    (run,) = runs_json()
    assert run["status"] == "running"  # still training: left alone, nothing copied
    assert not (record.output_dir / "metrics.json").exists()
    server.job_status = "FAILED"  # exit 4 (budget stop) is a failed job to SkyPilot
    (run,) = runs_json()
    assert run["status"] == "budget_stopped" and run["tokens_per_s"] == 50.0  # the trainer's own end, from its log
    assert run["ended_at"] == pytest.approx(end_at)
    # then the VM idles before it goes: its hour's window (nobody took it down sooner), or the bucket run's minutes
    # and the jobs controller's own idle window
    idle_usd = (autodown_after_s(BUCKET_IDLE_MINUTES) / 3600 * USD_PER_HOUR + CONTROLLER_IDLE_HOURS * 0.192 if spot
                else autodown_after_s(CLUSTER_IDLE_MINUTES) / 3600 * USD_PER_HOUR)
    assert run["cost_usd"] == pytest.approx(JOB_HOURS * (USD_PER_HOUR + (0.192 if spot else 0.0)) + idle_usd,
                                            rel=1e-3)
    assert ("jobs.queue_v2", False, [1]) in server.calls if spot else ("queue", record.cluster) in server.calls
    names = [call[0] for call in server.calls]
    if spot:  # the output is in the bucket, and the jobs controller takes the VM down
        assert "copy" not in names and "down" not in names
    else:  # the output on the VM's disk comes home before the VM goes (it downed itself within the hour, output too)
        assert names.index("copy") < names.index("down")


@pytest.mark.parametrize("status, launched_ago_s, cancelled", [
    ("RECOVERING", LAUNCHED_AGO_S, True), ("PENDING", LAUNCHED_AGO_S, True), ("STARTING", LAUNCHED_AGO_S, True),
    ("RECOVERING", 60.0, False),  # its budget still covers the wait
    ("RUNNING", LAUNCHED_AGO_S, False),  # a trainer runs: the guard on its VM stops it, with a checkpoint
])
def test_a_managed_job_waiting_for_a_vm_past_its_budget_is_cancelled_as_a_budget_stop(sky, monkeypatch, status,
                                                                                   launched_ago_s, cancelled):
    """SkyPilot retries a spot launch and a recovery without end, and the guard on the VM acts only once a VM runs
    the job: a job recovering for 30 h billed the jobs controller all along, past its $5 budget, unseen (its
    recorded spend stops at the budget). It is cancelled while what is billed after the cancel (the controller's
    idle autostop, a VM set up meanwhile idling) still fits the budget."""
    started = time.time() - launched_ago_s
    record = detached_run(spot=True, created_at=started, started_at=started)
    server = SkyServer(sky, monkeypatch, job_status=status)
    (run,) = runs_json()
    assert (("jobs.cancel",) in server.calls) == cancelled, server.calls
    if not cancelled:
        assert run["status"] == "running" and not (record.output_dir / "metrics.json").exists()
        return
    assert run["status"] == "budget_stopped", run
    assert run["message"] == (f"the budget was spent while SkyPilot waited for a VM ({status.lower()}): orch "
                              "cancelled the managed job")
    assert run["cost_usd"] == pytest.approx(record.budget_usd) and time.time() - run["ended_at"] < 60
    assert ("jobs.tail_logs", record.sky_job_id, False) in server.calls  # a recovery's earlier attempts logged


def test_a_waiting_managed_job_is_cancelled_before_what_is_billed_after_the_cancel_passes_its_budget(sky,
                                                                                                       monkeypatch):
    from orchestrator.cost import CONTROLLER_USD_PER_HOUR

    after_usd = CONTROLLER_IDLE_HOURS * CONTROLLER_USD_PER_HOUR + autodown_after_s(BUCKET_IDLE_MINUTES) / 3600 * \
        USD_PER_HOUR
    per_hour = USD_PER_HOUR + CONTROLLER_USD_PER_HOUR
    for spent_usd, cancelled in ((5.0 - after_usd - 0.01, False), (5.0 - after_usd + 0.01, True)):
        started = time.time() - spent_usd / per_hour * HOUR_S
        record = detached_run(spot=True, created_at=started, started_at=started)
        server = SkyServer(sky, monkeypatch, job_status="PENDING")
        lifecycle_runs = runs_json()
        assert (("jobs.cancel",) in server.calls) == cancelled, spent_usd
        assert {run["run_id"]: run["status"] for run in lifecycle_runs}[record.run_id] == \
            ("budget_stopped" if cancelled else "running")
        RunStore().update(record.run_id, status=RunStatus.STOPPED)  # out of the next loop's way


def test_following_a_run_late_records_skypilots_end_not_the_moment_of_following(sky, monkeypatch):
    """`orch logs RUN -f` 28 hours after the job ended: the log is written now, but the run ended when SkyPilot
    says its job did (and its VM, holding the output, downed itself an idle hour later)."""
    record = detached_run()
    end_at = record.started_at + JOB_HOURS * HOUR_S
    server = SkyServer(sky, monkeypatch, end_at=end_at, log_text=metrics_log("ok"))
    result = runner.invoke(app, ["logs", record.run_id, "--follow"])
    assert result.exit_code == 0, result.output
    ended = RunStore().get(record.run_id)
    assert ended.status is RunStatus.OK and ended.ended_at == pytest.approx(end_at)
    assert ended.cost_usd == pytest.approx((JOB_HOURS + autodown_after_s(CLUSTER_IDLE_MINUTES) / 3600) * USD_PER_HOUR,
                                           rel=1e-3)
    names = [call[0] for call in server.calls]
    assert names.index("tail_logs") < names.index("copy") < names.index("down")


@pytest.mark.parametrize("status, code", [("budget_stopped", 4), ("oom", 3)])
def test_following_a_run_exits_as_an_attached_launch_would_for_its_end(sky, monkeypatch, status, code):
    """`orch logs RUN --follow`, the way a detached launch says to follow its run, exited 0 whatever the run's end,
    where `orch launch` attached exits with the trainer's code."""
    record = detached_run()
    SkyServer(sky, monkeypatch, end_at=record.started_at + HOUR_S, log_text=metrics_log(status))
    result = runner.invoke(app, ["logs", record.run_id, "--follow"])
    assert result.exit_code == code, result.output
    assert RunStore().get(record.run_id).status.value == status


def test_stopping_a_run_skypilot_cannot_find_records_no_more_than_its_guards_allow(sky):
    """The cluster downed itself long ago and SkyPilot cannot be asked: `orch stop` ends the run now, and its
    recorded cost is capped at the budget, not 30 hours of the VM."""
    record = detached_run()
    result = runner.invoke(app, ["stop", record.run_id])
    assert result.exit_code == 0, result.output
    stopped = RunStore().get(record.run_id)
    assert stopped.status is RunStatus.STOPPED
    assert stopped.cost_usd == pytest.approx(5.0)
    assert stopped.wall_s == pytest.approx(LAUNCHED_AGO_S, abs=60)  # the time itself is kept as measured


def test_following_a_run_whose_cluster_is_gone_keeps_the_log_copied_earlier(sky, monkeypatch):
    from sky import exceptions

    record = detached_run()
    log = Path(record.run_dir) / LOG_NAME
    log.write_text(metrics_log("ok"), encoding="utf-8")
    SkyServer(sky, monkeypatch)

    def gone(*args, **kwargs):
        raise exceptions.ClusterDoesNotExist(f"Cluster {record.cluster!r} does not exist.")

    monkeypatch.setattr(sky, "tail_logs", gone)
    result = runner.invoke(app, ["logs", record.run_id, "--follow"])
    assert result.exit_code == 2 and "cannot stream the log" in result.stderr and "Traceback" not in result.output
    assert log.read_text(encoding="utf-8") == metrics_log("ok")
    assert RunStore().get(record.run_id).status is RunStatus.RUNNING
