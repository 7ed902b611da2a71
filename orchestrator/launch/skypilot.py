"""The SkyPilot launcher: a recorded run launched on-demand (`sky.launch`, autostop and down) or as a managed spot job
(`sky.jobs.launch`), followed through SkyPilot's log, and stopped. The task itself is built in sky_task.py. The only
modules that import sky, and only when a cloud (or SSH node pool) target is launched.

Every call that reaches SkyPilot's API server is in this class, so tests record exactly those and run the rest.
"""

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from gpu_catalog.errors import UserError, one_line
from gpu_catalog.models import get_model
from orchestrator.delivery import REMOTE_OUTPUT, bucket_name
from orchestrator.launch.base import Started
from orchestrator.launch.local import LOG_NAME, RUN_JOB_NAME
from orchestrator.launch.sky_server import api_server
from orchestrator.launch.sky_storage import OutputLocation, output_location, pull_output
from orchestrator.launch.sky_task import METRICS_BEGIN, METRICS_END, build_task
from orchestrator.runs.store import RunRecord
from orchestrator.startup_times import record_startup
from trainer.config import config_from_dict


def parse_metrics(log_text: str) -> dict | None:
    if METRICS_BEGIN not in log_text:
        return None
    body = log_text.rsplit(METRICS_BEGIN, 1)[1].split(METRICS_END, 1)[0]
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return None


def cluster_name(run_id: str) -> str:
    """The cluster (or managed job) name of a run: known before SkyPilot answers, so an interrupted launch can be
    found and taken down."""
    return f"orch-{run_id.removeprefix('r-')[-8:]}"


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)


class SkyPilotLauncher:
    def start(self, record: RunRecord, option, device: str | None, on_fact: Callable[[Started], None]) -> Started:
        """Submit the launch, report its request id at once, then wait for SkyPilot's job id. SkyPilot's refusals
        (credentials, quota, capacity) propagate for the state machine to record."""
        if option is None:
            raise UserError(f"no {record.gpu} offer on {record.provider} fits what is left of run {record.run_id}'s "
                            f"budget: `orch resume {record.run_id} --budget USD` gives it a larger total.")
        if record.wall_s and output_location(record).kind != "bucket":
            raise UserError(f"run {record.run_id} kept its checkpoints on its VM, which is gone: nothing to resume "
                            "from. Launch the job again.")
        spec = config_from_dict(json.loads(record.job_json), base_dir=Path(record.job_path).parent)
        task_dir = Path(record.run_dir) / "task"  # the VM's copy of the job; the run folder's job.yaml stays as is
        task_dir.mkdir(exist_ok=True)
        budget_left_usd = max(0.0, record.budget_usd - (record.cost_usd or 0.0))
        task = build_task(spec, Path(record.run_dir) / RUN_JOB_NAME, option, budget_left_usd, record.run_id,
                          get_model(spec.model).params, task_dir)
        name = cluster_name(record.run_id)
        # where the task puts the output: on the VM where no store was at hand (sky_task.build_task)
        output_uri = (OutputLocation("bucket", bucket_name(record.run_id), "") if task.storage_mounts
                      else OutputLocation("cluster", name, REMOTE_OUTPUT)).describe()
        requested = time.monotonic()
        with api_server() as sky:  # the task carries its own autostop (and down): see delivery.py
            request_id = sky.jobs.launch(task, name=name) if record.spot else sky.launch(task, cluster_name=name)
            on_fact(Started(cluster=name, request_id=str(request_id), output_uri=output_uri))
            result = sky.stream_and_get(request_id)
        if not record.spot:  # sky.launch returns once the VM is up and set up: one measured start-up
            record_startup(record.provider, time.monotonic() - requested, 0.0)
        job_id = (result[0][0] if result[0] else None) if record.spot else result[0]
        return Started(cluster=name, request_id=str(request_id), sky_job_id=job_id, output_uri=output_uri)

    def is_running(self, record: RunRecord) -> bool:
        """What the state machine last saw (SkyPilot is asked only while following), unless a stop was asked: `stop`
        cancels synchronously."""
        return record.status.is_active() and not record.stop_requested

    def follow(self, record: RunRecord, out: IO[str]) -> None:
        """Stream the run's log from SkyPilot into the run folder, bring the output home, then take an on-demand
        cluster down (stop paying now, not after the autostop)."""
        with api_server() as sky, open(Path(record.run_dir) / LOG_NAME, "w", encoding="utf-8") as log:
            tee = _Tee(log, out)
            if record.spot:
                sky.jobs.tail_logs(job_id=record.sky_job_id, follow=True, output_stream=tee)
            else:
                sky.tail_logs(record.cluster, record.sky_job_id, follow=True, output_stream=tee)
            try:
                self.pull(record)
            except Exception as exc:  # noqa: BLE001 - not home: the cluster stays until its autostop takes it down
                out.write(f"\n{one_line(exc)} The output stays on {record.cluster} until its autostop: "
                          f"`orch pull {record.run_id}`.\n")
                return
            if not record.spot:
                sky.get(sky.down(record.cluster))

    def pull(self, record: RunRecord) -> None:
        """metrics.json comes home through the log the run printed it into; final/, steps.jsonl and the rest from
        the cluster or the bucket (sky_storage.py)."""
        log = Path(record.run_dir) / LOG_NAME
        metrics = parse_metrics(log.read_text(encoding="utf-8", errors="replace")) if log.is_file() else None
        if metrics is not None:
            record.output_dir.mkdir(parents=True, exist_ok=True)
            (record.output_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
        pull_output(record)

    def recover(self, record: RunRecord) -> Started | None:
        """Nothing to find: a cloud run's cluster name and request id are recorded before SkyPilot is waited on."""
        return None

    def stop(self, record: RunRecord) -> str:
        """Cancel the launch request if it is still going, then the managed job or the cluster. Each step that
        finds nothing to stop says so instead of failing."""
        with api_server() as sky:
            return f"{record.run_id}: " + "; ".join(self._stop_steps(sky, record))

    @staticmethod
    def _stop_steps(sky, record: RunRecord) -> list[str]:
        done = []
        if record.request_id and record.sky_job_id is None:
            done.append(_attempt(f"cancel launch request {record.request_id}",
                                 lambda: sky.get(sky.api_cancel(record.request_id))))
        if record.spot:
            cancel = (lambda: sky.get(sky.jobs.cancel(job_ids=[record.sky_job_id]))) if record.sky_job_id is not None \
                else (lambda: sky.get(sky.jobs.cancel(name=record.cluster)))
            done.append(_attempt(f"cancel managed job {record.sky_job_id or record.cluster}", cancel))
        elif record.cluster:
            done.append(_attempt(f"take cluster {record.cluster} down", lambda: sky.get(sky.down(record.cluster))))
        return done


def _attempt(what: str, action: Callable[[], object]) -> str:
    """`what: done`, or why not: a stop goes on through every step even when one finds nothing to stop."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - already gone, never started, unreachable: said, not raised
        return f"{what}: not done ({one_line(exc)})"
    return f"{what}: done"
