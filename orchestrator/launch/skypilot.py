"""The SkyPilot launcher: a recorded run launched on-demand (`sky.launch`, autostop and down) or as a managed spot job
(`sky.jobs.launch`), followed through SkyPilot's log, and stopped. The task itself is built in sky_task.py. The only
modules that import sky, and only when a cloud (or SSH node pool) target is launched.
"""

import io
import json
import sys
import time
from pathlib import Path

from orchestrator.launch.sky_task import AUTOSTOP_IDLE_MINUTES, METRICS_BEGIN, METRICS_END, _sky, build_task
from orchestrator.planner import Option
from trainer.config import JobConfig


def parse_metrics(log_text: str) -> dict | None:
    if METRICS_BEGIN not in log_text:
        return None
    body = log_text.rsplit(METRICS_BEGIN, 1)[1].split(METRICS_END, 1)[0]
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return None


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)


def launch_cloud(store, record, spec: JobConfig, job_path: Path, chosen: Option, model_params: int, detach: bool,
                 quiet: bool):
    """Launch the recorded run on a cloud or SSH node pool, then follow it unless detached; returns the record."""
    task = build_task(spec, job_path, chosen, record.budget_usd, record.run_id, model_params,
                      Path(record.run_dir))
    sky = _sky()
    name = f"orch-{record.run_id[-6:]}"
    try:
        if chosen.offer.spot:
            job_ids, _ = sky.stream_and_get(sky.jobs.launch(task, name=name))
            job_id = job_ids[0] if job_ids else None
        else:
            job_id, _ = sky.stream_and_get(sky.launch(task, cluster_name=name, down=True,
                                                      idle_minutes_to_autostop=AUTOSTOP_IDLE_MINUTES))
    except Exception as exc:  # noqa: BLE001 - credentials, quota, capacity: recorded, then reported
        message = f"SkyPilot could not launch: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        store.update(record.run_id, status="failed", message=message, ended_at=time.time())
        return store.get(record.run_id)
    store.update(record.run_id, status="running", cluster=f"{name}:{job_id}", started_at=time.time())
    record = store.get(record.run_id)
    return record if detach else follow_cloud(store, record, quiet)


def _cluster_and_job(record) -> tuple[str, int | None]:
    name, _, job_id = (record.cluster or ":").partition(":")
    return name, int(job_id) if job_id not in ("", "None") else None


def follow_cloud(store, record, quiet: bool = False):
    """Stream the run's log from SkyPilot into the run folder, then record how it ended (metrics from the log).
    An on-demand cluster is torn down as soon as the metrics are in."""
    from orchestrator.runs.lifecycle import finish

    sky = _sky()
    name, job_id = _cluster_and_job(record)
    with open(Path(record.run_dir) / "train.log", "w") as log:
        captured = io.StringIO()
        tee = _Tee(captured, log, sys.stderr if quiet else sys.stdout)
        if record.spot:
            sky.jobs.tail_logs(job_id=job_id, follow=True, output_stream=tee)
        else:
            sky.tail_logs(name, job_id, follow=True, output_stream=tee)
            sky.get(sky.down(name))  # stop paying now, not after the autostop
    return finish(store, record, parse_metrics(captured.getvalue()))


def stop_cloud(record) -> None:
    """Cancel a managed spot job, or take an on-demand cluster down."""
    sky = _sky()
    name, job_id = _cluster_and_job(record)
    if record.spot:
        sky.get(sky.jobs.cancel(job_ids=[job_id]))
    else:
        sky.get(sky.down(name))
