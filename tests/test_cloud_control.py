"""The cloud run's control flow, with only the calls that would reach SkyPilot's API server recorded (sky.launch,
sky.jobs.launch, sky.stream_and_get, sky.tail_logs, sky.down, sky.api_cancel, sky.jobs.cancel, sky.cancel, sky.exec);
SkyPilot's Task,
Resources and catalog, and everything of orch above those calls, run for real."""

import json
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.runs.status import RunStatus
from orchestrator.runs.store import RunStore
from tests.conftest import OFFLINE_CLOUDS
from tests.test_skypilot import trainable_job
from trainer.status import TrainStatus

runner = CliRunner()


class RecordedSky:
    """Stands in for the API server: each call is written down and answered the way the server would."""

    def __init__(self, sky, monkeypatch, log_text=""):
        self.calls, self.log_text, self.interrupt_wait = [], log_text, False
        for name in ("launch", "stream_and_get", "tail_logs", "down", "api_cancel", "get", "storage_ls", "cancel",
                     "exec"):
            monkeypatch.setattr(sky, name, getattr(self, name))
        monkeypatch.setattr(sky.jobs, "launch", self.jobs_launch)
        monkeypatch.setattr(sky.jobs, "cancel", self.jobs_cancel)
        monkeypatch.setattr(sky.jobs, "tail_logs", self.jobs_tail_logs)
        from orchestrator.launch import sky_storage

        monkeypatch.setattr(sky_storage, "_run", self.copy_home)  # rsync / the bucket's CLI

    def _note(self, *call):
        self.calls.append(call)
        return f"request-{len(self.calls)}"

    def launch(self, task, cluster_name, **kwargs):
        return self._note("launch", cluster_name, kwargs.get("down"))

    def jobs_launch(self, task, name):
        return self._note("jobs.launch", name)

    def stream_and_get(self, request_id, output_stream=None):
        self.calls.append(("stream_and_get", request_id))
        if self.interrupt_wait:
            raise KeyboardInterrupt
        output_stream.write("\x1b[1mLaunching on Nebius\x1b[0m\n")  # the request's log, as SkyPilot styles it
        return ([7], None) if self.calls[0][0] == "jobs.launch" else (3, None)

    def tail_logs(self, cluster, job_id, follow, output_stream):
        self.calls.append(("tail_logs", cluster, job_id))
        output_stream.write(self.log_text)
        return 0  # the job's exit code

    def jobs_tail_logs(self, job_id, follow, output_stream):
        self.calls.append(("jobs.tail_logs", job_id))
        output_stream.write(self.log_text)

    def copy_home(self, command):
        self.calls.append(("copy", command[0]))
        return True

    def down(self, cluster):
        return self._note("down", cluster)

    def cancel(self, cluster, job_ids=None):
        return self._note("cancel", cluster, job_ids)

    def exec(self, task, cluster_name):
        self.executed = task.run
        return self._note("exec", cluster_name)

    def api_cancel(self, request_id):
        return self._note("api_cancel", request_id)

    def jobs_cancel(self, job_ids=None, name=None):
        return self._note("jobs.cancel", job_ids, name)

    def storage_ls(self):
        return self._note("storage_ls")

    def get(self, request_id):
        """What the server answers: for `storage_ls`, the bucket of every cloud run recorded so far."""
        if any(call == ("storage_ls",) and f"request-{i + 1}" == request_id for i, call in enumerate(self.calls)):
            return [SimpleNamespace(name=r.output_uri.split()[1], store=["S3"]) for r in RunStore().all()
                    if (r.output_uri or "").startswith("bucket ")]
        return None


@pytest.fixture(autouse=True)
def job(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")  # the Llama model is gated: pre-flight asks for a token
    return trainable_job(tmp_path)


def launch(job, *extra):
    return runner.invoke(app, ["launch", str(job), "--budget", "20", "--providers", ",".join(OFFLINE_CLOUDS),
                               "--yes", "--json", *extra])


def metrics_log(status="ok"):
    from orchestrator.launch.sky_task import METRICS_BEGIN, METRICS_END

    metrics = {"status": status, "train_tokens": 1000, "tokens_per_s": 50.0, "peak_vram_gib": {"reserved": 9.0}}
    return f"step 1: loss 2.0\n{METRICS_BEGIN}\n{json.dumps(metrics)}\n{METRICS_END}\n"


def test_ctrl_c_while_launching_leaves_a_run_that_stop_cancels(sky, monkeypatch, job):
    recorded = RecordedSky(sky, monkeypatch)
    recorded.interrupt_wait = True
    result = launch(job)
    assert result.exit_code == 130 and "orch stop" in result.stderr
    (run,) = RunStore().all()
    assert run.status is RunStatus.LAUNCHING and run.request_id == "request-1" and run.cluster
    listed = runner.invoke(app, ["runs", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["status"] == "launching"
    stopped = runner.invoke(app, ["stop", run.run_id])
    assert stopped.exit_code == 0, stopped.output
    assert ("api_cancel", "request-1") in recorded.calls
    assert any(call[0] in ("down", "jobs.cancel") for call in recorded.calls)
    assert RunStore().get(run.run_id).status is RunStatus.STOPPED


def test_a_launch_skypilot_refuses_for_want_of_cloud_access_costs_nothing_and_names_no_output(sky, monkeypatch, job):
    """SkyPilot's NoCloudAccessError comes before any VM is asked for: the run was charged 22 s of an RTX 6000 Ada,
    said its output was kept on a cluster that never was, and showed SkyPilot's styling as `\\x1b[1m`. It is a
    failed launch all the same, which a scheduler's later pass tries again (`sky check` may have been run)."""
    recorded = RecordedSky(sky, monkeypatch)

    def refused(request_id, output_stream=None):
        raise sky.exceptions.NoCloudAccessError("Cloud access is not set up. Run: \x1b[1msky check\x1b[0m")

    monkeypatch.setattr(sky, "stream_and_get", refused)
    # nebius mounts buckets: its pull was sent to a bucket of the offer's kind that no launch ever made
    result = runner.invoke(app, ["launch", str(job), "--budget", "20", "--providers", "nebius", "--no-spot", "--yes"])
    assert result.exit_code == 1 and "kept in" not in result.stdout, result.output
    (run,) = RunStore().all()
    assert run.status is RunStatus.FAILED and not run.cost_usd and recorded.calls[0][0] == "launch"
    assert run.message == "SkyPilot could not launch: NoCloudAccessError: Cloud access is not set up. Run: sky check"
    assert (run.cluster, run.request_id, run.output_uri) == (None, None, None)
    pulled = runner.invoke(app, ["pull", run.run_id])
    assert pulled.exit_code == 2 and "has no output to bring home" in pulled.stderr, pulled.output
    assert not any(call[0] == "storage_ls" for call in recorded.calls)


def test_a_run_is_followed_its_output_kept_and_only_then_torn_down(sky, monkeypatch, job):
    recorded = RecordedSky(sky, monkeypatch, log_text=metrics_log())
    result = launch(job, "--no-spot")
    assert result.exit_code == 0, result.output
    (run,) = RunStore().all()
    assert run.status is RunStatus.OK and run.sky_job_id == 3 and run.tokens_per_s == 50.0
    assert json.loads((run.output_dir / "metrics.json").read_text())["train_tokens"] == 1000
    names = [call[0] for call in recorded.calls]
    assert names.index("tail_logs") < names.index("copy") < names.index("down")  # the output is home first


def test_skypilots_own_lines_go_to_stderr_without_colour_codes(sky, monkeypatch, job):
    """SkyPilot logs to the stdout it found on import, colours and all ("Starting a local server.", the launch's
    log): they broke `--json` and `scheduler run --once` output, and put escape codes into files."""
    import logging

    recorded = RecordedSky(sky, monkeypatch, log_text=metrics_log())
    launch_request = recorded.launch

    def launch_logging(task, cluster_name, **kwargs):
        logging.getLogger("sky.server.common").info("\x1b[32m✓ SkyPilot API server started.\x1b[0m")
        return launch_request(task, cluster_name, **kwargs)

    monkeypatch.setattr(sky, "launch", launch_logging)
    result = launch(job, "--no-spot")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"]["status"] == "ok"  # stdout is the JSON document alone
    assert "✓ SkyPilot API server started." in result.stderr and "Launching on Nebius" in result.stderr
    assert "\x1b" not in result.stderr


@pytest.mark.parametrize("status", ["oom", "bad_config", "budget_stopped"])
def test_the_trainers_own_end_is_the_runs_status(sky, monkeypatch, status, job):
    RecordedSky(sky, monkeypatch, log_text=metrics_log(status))
    result = launch(job, "--no-spot")
    assert result.exit_code == TrainStatus(status).exit_code  # as `orch train` would exit (bad_config: 2)
    (run,) = RunStore().all()
    assert run.status is RunStatus(status)


@pytest.mark.parametrize("provider, output", [("vast", "orch-"), ("nebius", "bucket orch-")])
def test_a_stopped_on_demand_run_checkpoints_and_comes_home_before_its_cluster_goes(sky, monkeypatch, job, provider,
                                                                                     output):
    """`orch stop` took an on-demand cluster down at once: the trainer got no SIGTERM (no checkpoint), a bucket's
    last uploads were cut off, and output on the VM's disk (Vast) was lost with it."""
    recorded = RecordedSky(sky, monkeypatch)
    started = runner.invoke(app, ["launch", str(job), "--budget", "20", "--providers", provider, "--no-spot",
                                  "--yes", "--detach"])
    assert started.exit_code == 0, started.output
    (run,) = RunStore().all()
    assert run.status is RunStatus.RUNNING and run.output_uri.startswith(output), run.output_uri
    # detached, output on the VM's disk is home only if somebody asks before the VM downs itself
    assert ("note: the output stays on the VM, which downs itself 60 idle minutes" in started.stderr) is (
        provider == "vast"), started.stderr
    recorded.calls.clear()
    stopped = runner.invoke(app, ["stop", run.run_id])
    assert stopped.exit_code == 0, stopped.output
    names = [call[0] for call in recorded.calls]
    # the trainer signalled by a job of its own, both jobs waited for, the output home, and only then down
    assert names.index("exec") < names.index("tail_logs") < names.index("copy") < names.index("down"), names
    assert ("tail_logs", run.cluster, run.sky_job_id) in recorded.calls and ("exec", run.cluster) in recorded.calls
    assert names.index("tail_logs") < names.index("cancel")  # SkyPilot's cancel killed the log's tee: only after
    assert "pkill -TERM -f '^python -m trainer '" in recorded.executed
    assert "bring the output home and take cluster" in stopped.stdout
    assert RunStore().get(run.run_id).status is RunStatus.STOPPED


def test_stop_never_crashes_when_skypilot_finds_nothing(sky, monkeypatch, job):
    recorded = RecordedSky(sky, monkeypatch)
    recorded.interrupt_wait = True
    launch(job)
    (run,) = RunStore().all()

    def refuse(*args, **kwargs):
        raise RuntimeError("ClusterDoesNotExist: no such cluster")

    monkeypatch.setattr(sky, "down", refuse)
    monkeypatch.setattr(sky, "api_cancel", refuse)
    monkeypatch.setattr(sky.jobs, "cancel", refuse)
    stopped = runner.invoke(app, ["stop", run.run_id])
    assert stopped.exit_code == 0 and "not done" in stopped.stdout
    assert RunStore().get(run.run_id).status is RunStatus.STOPPED


def test_a_stopped_spot_run_resumes_from_its_bucket(sky, monkeypatch, job):
    recorded = RecordedSky(sky, monkeypatch, log_text=metrics_log("preempted"))
    runner.invoke(app, ["launch", str(job), "--budget", "20", "--providers", "nebius", "--yes", "--json"])
    (run,) = RunStore().all()
    assert run.status is RunStatus.PREEMPTED and run.output_uri.startswith("bucket orch-")
    recorded.log_text = metrics_log("ok")
    resumed = runner.invoke(app, ["resume", run.run_id])
    assert resumed.exit_code == 0, resumed.output
    launches = [call for call in recorded.calls if call[0] == "jobs.launch"]
    assert len(launches) == 2 and launches[0][1] == launches[1][1]  # the same job name, the same bucket
    assert RunStore().get(run.run_id).status is RunStatus.OK


@pytest.mark.parametrize("spot, said", [("--spot", "a spot run on nebius keeps its checkpoints in a bucket"),
                                        ("--no-spot", "keeps its checkpoints in bucket orch-")])
def test_a_run_is_not_resumed_where_its_bucket_cannot_be_mounted(sky, monkeypatch, job, spot, said):
    """With no storage cloud enabled, an on-demand run's resumed task kept its output on the VM: it would train
    from step 0, and the run's record of its bucket was replaced by a cluster that never was. Refused before any
    request, the run as it ended."""
    from sky.data import storage as storage_lib

    recorded = RecordedSky(sky, monkeypatch, log_text=metrics_log("preempted"))
    runner.invoke(app, ["launch", str(job), "--budget", "20", "--providers", "nebius", spot, "--yes", "--json"])
    (run,) = RunStore().all()
    assert run.status is RunStatus.PREEMPTED and run.output_uri.startswith("bucket orch-")
    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: [])
    resumed = runner.invoke(app, ["resume", run.run_id])
    assert resumed.exit_code == 2 and said in resumed.stderr, resumed.output
    assert RunStore().get(run.run_id) == run and len([c for c in recorded.calls if "launch" in c[0]]) == 1


def test_a_run_preempted_part_way_resumes_on_what_is_left_of_its_budget(sky, monkeypatch, job):
    """`orch resume` priced the whole job against the budget's remainder, so a run 80% done with half its budget
    left was refused ("no offer fits what is left"): only the tokens left to train (and a new start) are priced."""
    recorded = RecordedSky(sky, monkeypatch, log_text=metrics_log("preempted"))
    planned = json.loads(runner.invoke(app, ["plan", str(job), "--budget", "20", "--providers", "nebius",
                                             "--json"]).stdout)
    cost_usd, tokens = planned["chosen"]["worst_cost_usd"], planned["train_tokens"]
    launched = runner.invoke(app, ["launch", str(job), "--budget", str(cost_usd * 1.01), "--providers", "nebius",
                                   "--yes", "--json"])
    (run,) = RunStore().all()
    assert run.status is RunStatus.PREEMPTED, launched.output
    RunStore().update(run.run_id, cost_usd=cost_usd * 0.5, train_tokens=int(tokens * 0.8))
    recorded.log_text = metrics_log("ok")
    resumed = runner.invoke(app, ["resume", run.run_id])
    assert resumed.exit_code == 0, resumed.output
    assert [call[0] for call in recorded.calls].count("jobs.launch") == 2


@pytest.mark.parametrize("spot", [False, True])
def test_a_cloud_runs_cost_counts_what_is_billed_after_its_job(sky, monkeypatch, job, spot):
    """The VM idles for its window after the job before it downs itself, and a managed job's controller for its
    own: the plan counts both, and the recorded spend stopped at the job's end."""
    from gpu_catalog.units import usd_for
    from orchestrator.cost import CONTROLLER_IDLE_HOURS, CONTROLLER_USD_PER_HOUR
    from orchestrator.delivery import BUCKET_IDLE_MINUTES, autodown_after_s

    RecordedSky(sky, monkeypatch, log_text=metrics_log())
    result = runner.invoke(app, ["launch", str(job), "--budget", "20", "--providers", "nebius",
                                 "--spot" if spot else "--no-spot", "--yes", "--json"])
    (run,) = RunStore().all()
    assert run.status is RunStatus.OK and run.output_uri.startswith("bucket "), result.output
    after_usd = usd_for(autodown_after_s(BUCKET_IDLE_MINUTES), run.usd_per_hour)
    if spot:
        after_usd += usd_for(CONTROLLER_IDLE_HOURS * 3600, CONTROLLER_USD_PER_HOUR)
    per_hour = run.usd_per_hour + (CONTROLLER_USD_PER_HOUR if spot else 0.0)
    assert after_usd <= run.cost_usd <= after_usd + usd_for(run.wall_s, per_hour) + 1e-9


def test_an_on_demand_run_is_metered_at_the_offer_skypilot_launched_it_on(sky, monkeypatch, job):
    """SkyPilot fails over from the planned offer to the next one in the plan's price band; the run's recorded cost
    was metered at the planned price whatever the cluster cost. The launched resources' price and region are kept."""
    recorded = RecordedSky(sky, monkeypatch, log_text=metrics_log())
    planned = json.loads(runner.invoke(app, ["plan", str(job), "--budget", "20", "--providers", "nebius", "--no-spot",
                                             "--json"]).stdout)["chosen"]
    launched = sky.Resources(infra="nebius/eu-north1", instance_type="gpu-l40s-a_1gpu-40vcpu-160gb",
                             accelerators="L40S:1")
    recorded.stream_and_get = lambda request_id, output_stream: (3, SimpleNamespace(launched_resources=launched))
    monkeypatch.setattr(sky, "stream_and_get", recorded.stream_and_get)
    result = runner.invoke(app, ["launch", str(job), "--budget", "20", "--providers", "nebius", "--no-spot", "--yes",
                                 "--json"])
    assert result.exit_code == 0, result.output
    (run,) = RunStore().all()
    assert planned["usd_per_hour"] != launched.get_cost(3600)  # SkyPilot launched another offer than the plan's
    assert (run.provider, run.region, run.usd_per_hour) == ("nebius", "eu-north1", launched.get_cost(3600))


def test_a_launch_passes_over_an_offer_whose_output_would_idle_on_the_vm_past_the_budget(sky, monkeypatch, job):
    """With no storage cloud enabled, an on-demand run on a cloud the plan priced with a bucket keeps its output on
    the VM, idling an hour more: the launch was planned, confirmed and recorded, then refused. It now takes the next
    offer the budget covers, and a dry run says so."""
    from sky.data import storage as storage_lib

    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: [])
    recorded = RecordedSky(sky, monkeypatch, log_text=metrics_log())
    planned = json.loads(runner.invoke(app, ["plan", str(job), "--budget", "20", "--providers", "lambda",
                                             "--no-spot", "--json"]).stdout)
    def on_the_vm_usd(option):  # 60 idle minutes where the plan counted 5
        return option["est_cost_usd"] + option["usd_per_hour"] * 55 / 60

    first = planned["options"][0]
    second = min(planned["options"][1:], key=on_the_vm_usd)  # the one a budget between them covers
    budget = (max(first["est_cost_usd"], on_the_vm_usd(second)) + on_the_vm_usd(first)) / 2
    assert first["est_cost_usd"] <= budget < on_the_vm_usd(first) and on_the_vm_usd(second) <= budget
    dry = runner.invoke(app, ["launch", str(job), "--budget", str(budget), "--providers", "lambda", "--no-spot",
                              "--dry-run"], env={"COLUMNS": "300"})
    assert dry.exit_code == 0, dry.output
    assert "not the offer above: with no storage cloud enabled here" in " ".join(dry.stderr.split())
    launched = runner.invoke(app, ["launch", str(job), "--budget", str(budget), "--providers", "lambda", "--no-spot",
                                   "--yes", "--json"])
    assert launched.exit_code == 0, launched.output
    (run,) = RunStore().all()  # one run, and not a failed one first
    taken = next(o for o in planned["options"] if (o["gpu"], o["region"]) == (run.gpu, run.region))
    assert run.status is RunStatus.OK and run.gpu != first["gpu"] and on_the_vm_usd(taken) <= budget, run
    assert [call[0] for call in recorded.calls].count("launch") == 1
