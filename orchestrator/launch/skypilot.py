"""The SkyPilot launcher: a recorded run launched on-demand (`sky.launch`, autostop and down) or as a managed spot job
(`sky.jobs.launch`), followed through SkyPilot's log, and stopped. The task itself is built in sky_task.py. The only
modules that import sky, and only when a cloud (or SSH node pool) target is launched.

Every call that reaches SkyPilot's API server is in this module, so tests record exactly those and run the rest.
"""

import contextlib
import io
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from gpu_catalog.errors import UserError, one_line
from gpu_catalog.models import get_model
from gpu_catalog.offer import SSH_POOL_PROVIDER
from orchestrator.delivery import (
    BUCKET_IDLE_MINUTES,
    CLUSTER_IDLE_MINUTES,
    REMOTE_OUTPUT,
    autodown_after_s,
    bucket_name,
)
from orchestrator.launch.base import NothingLaunched, Started
from orchestrator.launch.local import LOG_NAME, RUN_JOB_NAME
from orchestrator.launch.sky_server import SKY_LOG, api_server
from orchestrator.launch.sky_storage import OutputLocation, output_location, pull_output
from orchestrator.launch.sky_task import (
    EXIT_MARKER,
    METRICS_BEGIN,
    METRICS_END,
    STOP_WAIT_S,
    WALL_LIMIT_EXIT_CODE,
    build_task,
    cluster_name,
    stop_script,
)
from orchestrator.runs.store import RunRecord
from orchestrator.spend import run_cost_usd
from orchestrator.startup_times import record_startup
from trainer.config import config_from_dict
from trainer.jsonio import write_json_atomic
from trainer.status import TrainStatus


def parse_metrics(log_text: str) -> dict | None:
    """The metrics.json the run script printed between its markers, as the run ended: a stop by the VM's wall-clock
    guard (the script's exit 4) is a budget stop, whether it came before the trainer started (no metrics) or
    during training (the trainer, sent SIGTERM, wrote `preempted`)."""
    metrics = None
    if METRICS_BEGIN in log_text:
        body = log_text.rsplit(METRICS_BEGIN, 1)[1].split(METRICS_END, 1)[0]
        try:
            metrics = json.loads(body)
        except json.JSONDecodeError:
            metrics = None
    metrics = metrics if isinstance(metrics, dict) else None  # a damaged block: no metrics, not a list to .get from
    exits = [line.removeprefix(EXIT_MARKER).strip() for line in log_text.splitlines() if line.startswith(EXIT_MARKER)]
    if exits and exits[-1] == str(WALL_LIMIT_EXIT_CODE) and (metrics or {}).get("status") in (None, "preempted"):
        metrics = {**(metrics or {}), "status": TrainStatus.BUDGET_STOPPED.value,
                   "message": "the budget's wall-clock window on the VM ran out"}
    return metrics


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)


# a managed job's states with no trainer running: billed (the controller, a VM being set up) and past any guard
WAITING_FOR_A_VM = ("PENDING", "DEPRECATED_SUBMITTED", "STARTING", "RECOVERING")


class SkyPilotLauncher:
    def __init__(self):
        self._ends: dict[str, float | None] = {}  # run id -> SkyPilot's end time of its job, until finish asks
        self._left_up: set[str] = set()  # runs whose VM kept output that could not come home: up until its autostop

    def start(self, record: RunRecord, option, device: str | None, on_fact: Callable[[Started], None]) -> Started:
        """Submit the launch, report its request id at once, then wait for SkyPilot's job id. SkyPilot's refusals
        (credentials, quota, capacity) propagate for the state machine to record."""
        if option is None:
            raise UserError(f"no {record.gpu} offer on {record.provider} fits what is left of run {record.run_id}'s "
                            f"budget: `orch resume {record.run_id} --budget USD` gives it a larger total.")
        kept = output_location(record) if record.wall_s else None  # a resume's: its checkpoints are there
        if kept is not None and kept.kind != "bucket":
            raise UserError(f"run {record.run_id} kept its checkpoints on its VM, which is gone: nothing to resume "
                            "from. Launch the job again.")
        spec = config_from_dict(json.loads(record.job_json), base_dir=Path(record.job_path).parent)
        task_dir = Path(record.run_dir) / "task"  # the VM's copy of the job; the run folder's job.yaml stays as is
        task_dir.mkdir(exist_ok=True)
        task = build_task(spec, Path(record.run_dir) / RUN_JOB_NAME, option, record.budget_left_usd, record.run_id,
                          get_model(spec.model), task_dir)
        name = cluster_name(record.run_id)
        if kept is not None and not task.storage_mounts:  # the bucket unmounted, it would train from step 0 on a VM
            raise UserError(f"run {record.run_id} keeps its checkpoints in bucket {kept.name}, and no storage cloud "
                            "is enabled here to mount it (`sky check`): resume it once one is.")
        # where the task puts the output: on the VM where no store was at hand (sky_task.build_task)
        output_uri = (OutputLocation("bucket", bucket_name(record.run_id), "") if task.storage_mounts
                      else OutputLocation("cluster", name, REMOTE_OUTPUT)).describe()
        requested = time.monotonic()
        with api_server() as sky:  # the task carries its own autostop (and down): see delivery.py
            request_id = sky.jobs.launch(task, name=name) if record.spot else sky.launch(task, cluster_name=name)
            on_fact(Started(cluster=name, request_id=str(request_id), output_uri=output_uri))
            try:
                result = sky.stream_and_get(request_id, output_stream=SKY_LOG)
            except sky.exceptions.NoCloudAccessError as exc:  # said before any VM was asked for: no spend
                raise NothingLaunched(f"SkyPilot could not launch: {one_line(exc)}") from None
        launched = {} if record.spot else _launched_offer(result[1])
        if not record.spot:  # sky.launch returns once the VM is up and set up: one measured start-up, where it was
            record_startup(launched.get("provider", record.provider), time.monotonic() - requested, 0.0)
        job_id = (result[0][0] if result[0] else None) if record.spot else result[0]
        return Started(cluster=name, request_id=str(request_id), sky_job_id=job_id, output_uri=output_uri,
                       **launched)

    def is_running(self, record: RunRecord) -> bool:
        """False once a stop was asked (`stop` cancels synchronously), or once SkyPilot says the job ended: its log,
        with the trainer's metrics, is then copied home and its end time kept for ended_at(); an output kept on the
        VM's disk comes home too, and the cluster is taken down (it would down itself within the hour, and the
        output with it: a detached run's adapter was lost unless somebody pulled it in time). False too once a
        managed job waited for a VM past its budget (_waited_out). True while the job runs, and while SkyPilot
        cannot be asked (no API server, the cluster or the jobs controller gone): the run stays as recorded, its
        spend capped by spend.cap_usd."""
        if not record.status.is_active() or record.stop_requested:
            return False
        if record.sky_job_id is None:
            return True  # no job to ask about: a launch whose job id never came back stays for `orch stop`
        try:
            with api_server() as sky:
                job = _job(sky, record)
                if job is None:
                    return True
                if not job.status.is_terminal():  # cancelled here, its end is said, not read from its log
                    return not self._waited_out(sky, record, job)
                _log_home(sky, record, follow=False)
                if output_location(record).kind == "cluster":  # metrics.json comes home with the rest
                    self._home_then_down(sky, record)  # not home: said by `orch pull RUN`, which tries again
                else:
                    _metrics_home(record)  # how the trainer ended, for finish(); the bucket keeps the rest
        except Exception:  # noqa: BLE001 - SkyPilot cannot be asked now: the next look asks again
            return True
        self._ends[record.run_id] = job.end_at
        return False

    def _waited_out(self, sky, record: RunRecord, job) -> bool:
        """Whether a managed job that waits for a VM (pending, starting, recovering from a preemption) has outlived
        its budget: then it is cancelled, and its end recorded as a budget stop. SkyPilot retries a launch and a
        recovery without end, and the guard on the VM only acts once a VM runs the job: meanwhile the jobs
        controller billed past the budget, and a spot VM found later was bought and set up, only for the run script
        to say the window was spent."""
        if not record.spot or job.status.name not in WAITING_FOR_A_VM:
            return False
        now = time.time()
        session_s = now - (record.started_at or record.created_at)
        # what is billed once the job is cancelled stays inside the budget too, as the end of the run is priced: the
        # controller's idle autostop, and a VM being set up idling till it goes (run_cost_usd stops at the budget)
        if run_cost_usd(record, session_s, self.billed_after_s(record, now, now)) < record.budget_usd:
            return False
        sky.get(sky.jobs.cancel(job_ids=[record.sky_job_id]))
        self._ends[record.run_id] = now
        with contextlib.suppress(Exception):  # a recovery's earlier attempts logged; a pending job has no log yet
            _log_home(sky, record, follow=False)
        record.output_dir.mkdir(parents=True, exist_ok=True)  # how this session ended, where the trainer says it
        write_json_atomic(record.output_dir / "metrics.json", {
            "status": TrainStatus.BUDGET_STOPPED.value,
            "message": f"the budget was spent while SkyPilot waited for a VM ({job.status.name.lower()}): orch "
                       "cancelled the managed job"})
        return True

    def _home_then_down(self, sky, record: RunRecord) -> Exception | None:
        """Bring the output home, then take an on-demand cluster down (stop paying now, not after its autostop);
        output that cannot come home stays on the cluster until its autostop, for `orch pull`: why, returned."""
        try:
            self.pull(record)
        except Exception as exc:  # noqa: BLE001 - not home: the cluster stays, and `orch pull RUN` can try again
            self._left_up.add(record.run_id)
            return exc
        if not record.spot:
            sky.get(sky.down(record.cluster))
        return None

    def ended_at(self, record: RunRecord) -> float | None:
        """When the run's job ended by SkyPilot's clock, as is_running, follow or stop last heard; None when it had
        not ended or SkyPilot could not tell. The log in the run folder is a copy made whenever somebody followed the
        run, so its time says nothing of the job's end."""
        return self._ends.pop(record.run_id, None)

    def billed_after_s(self, record: RunRecord, ended_at: float, now: float) -> float:
        """The VM's idle window after the job (delivery.py), billed before it downs itself; a VM that holds the
        output is taken down once the output is home, which is now at the latest, else (the output could not come
        home) it idles its whole window. A node pool's machines are the user's own."""
        if record.provider == SSH_POOL_PROVIDER:
            return 0.0
        if output_location(record).kind == "bucket":
            return autodown_after_s(BUCKET_IDLE_MINUTES)
        window_s = autodown_after_s(CLUSTER_IDLE_MINUTES)
        return window_s if record.run_id in self._left_up else min(window_s, max(0.0, now - ended_at))

    def follow(self, record: RunRecord, out: IO[str]) -> None:
        """Stream the run's log from SkyPilot into the run folder, note when the job ended, bring the output home,
        then take an on-demand cluster down (stop paying now, not after the autostop)."""
        with api_server() as sky:
            try:
                _log_home(sky, record, follow=True, out=out)
            except Exception as exc:  # noqa: BLE001 - e.g. the cluster downed itself after the job: said, not raised
                raise UserError(f"SkyPilot cannot stream the log of run {record.run_id} ({one_line(exc)}): its "
                                f"cluster may be gone. `orch runs` records its end once SkyPilot reports it; `orch "
                                f"stop {record.run_id}` ends it now.") from None
            self._ends[record.run_id] = _end_of(sky, record)
            if problem := self._home_then_down(sky, record):
                out.write(f"\n{one_line(problem)} The output stays on {record.cluster} until it downs itself, "
                          f"{CLUSTER_IDLE_MINUTES} min after the job ended: `orch pull {record.run_id}`.\n")

    def pull(self, record: RunRecord) -> None:
        """metrics.json comes home through the log the run printed it into; final/, steps.jsonl and the rest from
        the cluster or the bucket (sky_storage.py)."""
        _metrics_home(record)
        pull_output(record)

    def recover(self, record: RunRecord) -> Started | None:
        """Nothing to find: a cloud run's cluster name and request id are recorded before SkyPilot is waited on."""
        return None

    def stop(self, record: RunRecord) -> str:
        """Cancel the launch request if it is still going, then the managed job, or stop the cluster's trainer with
        a checkpoint, bring the output home and take the cluster down. Each step that finds nothing to stop says so
        instead of failing."""
        with api_server() as sky:
            self._ends[record.run_id] = _end_of(sky, record)  # a job that ended before the stop keeps its own end
            return f"{record.run_id}: " + "; ".join(self._stop_steps(sky, record))

    def _stop_steps(self, sky, record: RunRecord) -> list[str]:
        done = []
        if record.request_id and record.sky_job_id is None:
            done.append(_attempt(f"cancel launch request {record.request_id}",
                                 lambda: sky.get(sky.api_cancel(record.request_id))))
        if record.spot:
            cancel = (lambda: sky.get(sky.jobs.cancel(job_ids=[record.sky_job_id]))) if record.sky_job_id is not None \
                else (lambda: sky.get(sky.jobs.cancel(name=record.cluster)))
            done.append(_attempt(f"cancel managed job {record.sky_job_id or record.cluster}", cancel))
        elif record.cluster and record.sky_job_id is not None:
            # taken down at once, the trainer wrote no checkpoint, a bucket's last uploads were cut off, and output
            # kept on the VM's disk went with it. SkyPilot's own cancel signals the job's process group: the log's
            # `tee` died with it, and the trainer then died at its next line of output, mid-checkpoint
            stopped = _attempt("stop the trainer with a checkpoint", lambda: _stop_trainer(sky, record.cluster))
            done.append(stopped)
            if stopped.endswith(": done"):  # its run script prints the metrics, then waits for the bucket's uploads
                done.append(_attempt(f"wait for job {record.sky_job_id} to end",
                                     lambda: _log_home(sky, record, follow=True)))
            done.append(_attempt(f"cancel job {record.sky_job_id} on {record.cluster}",  # a trainer still going
                                 lambda: sky.get(sky.cancel(record.cluster, job_ids=[record.sky_job_id]))))
            problem = self._home_then_down(sky, record)
            done.append(f"bring the output home and take cluster {record.cluster} down: done" if problem is None else
                        f"bring the output home: not done ({one_line(problem)}); {record.cluster} stays up until it "
                        f"downs itself, {CLUSTER_IDLE_MINUTES} min after the job ended: `orch pull {record.run_id}`")
        elif record.cluster:  # no job yet: nothing trained, nothing to keep
            done.append(_attempt(f"take cluster {record.cluster} down", lambda: sky.get(sky.down(record.cluster))))
        return done


def _stop_trainer(sky, cluster: str) -> None:
    """Run stop_script on the cluster as a job of its own, beside the run's (it asks for no GPU, so SkyPilot runs it
    at once), and wait for it to end: raises unless the trainer ended."""
    task = sky.Task(name="orch-stop", run=stop_script())
    job_id, _ = sky.stream_and_get(sky.exec(task, cluster_name=cluster), output_stream=SKY_LOG)
    if (code := sky.tail_logs(cluster, job_id, follow=True, output_stream=SKY_LOG)) != 0:
        raise RuntimeError(f"the trainer was still running {STOP_WAIT_S // 60} min after its SIGTERM (exit {code})")


def _launched_offer(handle) -> dict:
    """The cloud, region and price SkyPilot launched an on-demand cluster on (its handle's launched resources): it
    fails over from the planned offer to the next within the plan's price band, and the run's recorded spend was
    metered at the planned price all the same. Nothing when the handle does not say (a managed job returns none)."""
    resources = getattr(handle, "launched_resources", None)
    try:
        usd_per_hour = float(resources.get_cost(3600))
        launched = {"provider": resources.cloud.canonical_name(), "region": resources.region}
    except Exception:  # noqa: BLE001 - no handle, or a cloud SkyPilot cannot price offline: the plan's offer stands
        return {}
    if not (math.isfinite(usd_per_hour) and usd_per_hour > 0) or not all(launched.values()):
        return {}
    return {**launched, "usd_per_hour": usd_per_hour}


def _job(sky, record: RunRecord):
    """SkyPilot's record of the run's job (a managed job from the jobs controller, else the cluster's job queue),
    with its status and end time; None when SkyPilot does not list it. The controller is not restarted to ask."""
    if record.spot:
        answer = sky.get(sky.jobs.queue_v2(refresh=False, job_ids=[record.sky_job_id]))
        jobs = answer[0] if isinstance(answer, tuple) else answer  # an older API server answers a bare list
    else:
        jobs = sky.get(sky.queue(record.cluster, skip_finished=False))
    return next((job for job in jobs if job.job_id == record.sky_job_id), None)


def _end_of(sky, record: RunRecord) -> float | None:
    """SkyPilot's end time of the run's job; None while it runs or when SkyPilot cannot be asked."""
    if record.sky_job_id is None:
        return None
    try:
        job = _job(sky, record)
    except Exception:  # noqa: BLE001 - no API server, the cluster gone: the end is not known here
        return None
    return job.end_at if job is not None and job.status.is_terminal() else None


def _log_home(sky, record: RunRecord, follow: bool, out: IO[str] | None = None) -> None:
    """Copy the job's log from SkyPilot into the run folder (and to `out`). The copy replaces the run folder's log
    only if the stream did not fail (an interrupted one is the newest there is): a cluster already gone leaves the
    copy made earlier as it was."""
    log_path = Path(record.run_dir) / LOG_NAME
    part = log_path.with_name(f"{LOG_NAME}.part")
    try:
        with open(part, "w", encoding="utf-8") as log:
            tee = _Tee(log) if out is None else _Tee(log, out)
            if record.spot:
                sky.jobs.tail_logs(job_id=record.sky_job_id, follow=follow, output_stream=tee)
            else:
                sky.tail_logs(record.cluster, record.sky_job_id, follow=follow, output_stream=tee)
    except Exception:
        part.unlink(missing_ok=True)
        raise
    finally:
        if part.exists():
            part.replace(log_path)


def _metrics_home(record: RunRecord) -> None:
    """metrics.json from between the markers the run script printed it in, into the run's output folder."""
    log = Path(record.run_dir) / LOG_NAME
    metrics = parse_metrics(log.read_text(encoding="utf-8", errors="replace")) if log.is_file() else None
    if metrics is not None:
        record.output_dir.mkdir(parents=True, exist_ok=True)
        (record.output_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")


def _attempt(what: str, action: Callable[[], object]) -> str:
    """`what: done`, or why not: a stop goes on through every step even when one finds nothing to stop."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - already gone, never started, unreachable: said, not raised
        return f"{what}: not done ({one_line(exc)})"
    return f"{what}: done"
