"""The SkyPilot launcher: the planned option as a `sky.Task`, launched on-demand (`sky.launch`, autostop and down) or
as a managed spot job (`sky.jobs.launch`, checkpoints in a bucket, so a preemption resumes where it stopped). The
only module that imports sky, and only when a cloud (or SSH node pool) target is launched.

The run section arms two budget guards: the trainer's own budget stop, and a wall-clock `timeout` that sends SIGTERM
(the trainer checkpoints) when the budget's hours are up. It ends by printing metrics.json between markers, which
the launcher reads back from the log into the runs store, so no storage SDK is needed to fetch it.
"""

import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

from orchestrator.launch.local import read_job
from orchestrator.planner import Option
from trainer.config import JobConfig

REPO = Path(__file__).resolve().parents[2]
REMOTE_JOB = "/orch/job.yaml"
REMOTE_DATA_DIR = "/orch/data"
REMOTE_OUTPUT = "/orch/output"
METRICS_BEGIN, METRICS_END = "ORCH_METRICS_BEGIN", "ORCH_METRICS_END"
SECRET_ENV_VARS = ("HF_TOKEN", "WANDB_API_KEY")  # passed as SkyPilot secrets: never in a file, log or the store
AUTOSTOP_IDLE_MINUTES = 10
MIN_DISK_GIB = 100


def _sky():
    os.environ.setdefault("SKYPILOT_DISABLE_USAGE_COLLECTION", "1")
    import sky
    from sky.utils import annotations

    annotations.is_on_api_server = False  # in-process calls print plain text, not the API server's payloads
    return sky


def disk_gib(model_params: int) -> int:
    """Room for the 16-bit checkpoint three times over (download, cache, merged output) plus the environment."""
    return max(MIN_DISK_GIB, int(3 * model_params * 2 / 1e9) + 50)


def remote_job_mounts(job_path: Path, workdir: Path) -> dict[str, str]:
    """File mounts that carry the job to the VM: its file (written to workdir, the datasets at their mounted paths)
    and its local datasets."""
    raw, local = read_job(job_path)
    mounts = {}
    for key, path in local.items():  # the eval set gets its own folder: the two may share a file name
        raw[key] = f"{REMOTE_DATA_DIR}/{path.name}" if key == "dataset" else f"{REMOTE_DATA_DIR}/{key}/{path.name}"
        mounts[raw[key]] = str(path)
    remote = workdir / "job.yaml"
    remote.write_text(yaml.safe_dump(raw, sort_keys=False))
    mounts[REMOTE_JOB] = str(remote)
    return mounts


def run_script(option: Option, budget_usd: float) -> str:
    price = option.offer.usd_per_hour
    # provisioning, setup and the model download are paid from the same budget
    train_budget = max(0.0, budget_usd - option.estimate.startup_hours * price)
    wall_limit_s = int(train_budget / price * 3600) if price > 0 else 0
    timeout = f"timeout --signal=TERM --kill-after=300 {wall_limit_s} " if wall_limit_s else ""
    return "\n".join([
        "set -o pipefail",
        f"{timeout}python -m trainer {REMOTE_JOB} --output {REMOTE_OUTPUT} --resume auto "
        f"--set usd_per_hour={price} --set budget_usd={train_budget:.4f}",
        "status=$?",
        f"echo {METRICS_BEGIN}; cat {REMOTE_OUTPUT}/metrics.json; echo; echo {METRICS_END}",
        "exit $status",
    ])


def build_task(spec: JobConfig, job_path: Path, option: Option, budget_usd: float, run_id: str, model_params: int,
               workdir: Path):
    """The sky.Task for one run: setup installs orch on the VM, run starts the trainer with the job's config."""
    sky = _sky()
    offer = option.offer
    mounts = remote_job_mounts(job_path, workdir)
    secrets = {name: os.environ[name] for name in SECRET_ENV_VARS if os.environ.get(name)}
    task = sky.Task(name=f"orch-{spec.name}", setup="pip install --quiet -e .", workdir=str(REPO),
                    run=run_script(option, budget_usd),
                    envs={"ORCH_RUN_ID": run_id}, secrets=secrets or None, file_mounts=mounts)
    infra = f"{offer.provider}/{offer.region}" if offer.region else offer.provider
    resources = {"infra": infra, "accelerators": {offer.accelerator: 1}, "use_spot": offer.spot,
                 "disk_size": disk_gib(model_params)}
    if offer.spot:
        resources["job_recovery"] = {"strategy": "FAILOVER", "max_restarts_on_errors": 3}
        task.set_storage_mounts({REMOTE_OUTPUT: sky.Storage(name=f"orch-{run_id}", mode=sky.StorageMode.MOUNT)})
    task.set_resources(sky.Resources(**resources))
    return task


def task_yaml(task) -> str:
    """The task as YAML with secrets redacted: what --dry-run prints."""
    from sky.utils import yaml_utils

    return yaml_utils.dump_yaml_str(task.to_yaml_config(use_user_specified_yaml=True))


def optimizer_view(task) -> str:
    """SkyPilot's own optimizer, run in process on this machine's enabled clouds, as text."""
    sky = _sky()
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), sky.Dag() as dag:
            dag.add(task)
        with contextlib.redirect_stdout(buffer):
            sky.Optimizer.optimize(dag, minimize=sky.OptimizeTarget.COST, quiet=False)
    except (sky.exceptions.NoCloudAccessError, sky.exceptions.ResourcesUnavailableError) as exc:
        return buffer.getvalue() + f"SkyPilot cannot place this task here: {str(exc).splitlines()[0]}\n"
    best = task.best_resources
    return buffer.getvalue() + f"SkyPilot's choice: {best.cloud} {best.region} {best.instance_type} " \
                               f"${best.get_cost(3600):.2f}/h\n"


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


def dry_run(spec: JobConfig, job_path: Path, chosen: Option, budget_usd: float, model_params: int) -> str:
    """The task YAML (secrets redacted) and SkyPilot's optimizer view of it; nothing is launched."""
    task = build_task(spec, job_path, chosen, budget_usd, "dry-run", model_params,
                      Path(tempfile.mkdtemp(prefix="orch-task-")))
    return task_yaml(task) + "\n" + optimizer_view(task)


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
