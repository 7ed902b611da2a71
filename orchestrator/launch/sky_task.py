"""The sky.Task orch builds for one run: setup installs orch on the VM, run starts the trainer with the job's config
under two budget guards (the trainer's own budget stop, and a wall-clock `timeout` that sends SIGTERM so the trainer
checkpoints), and ends by printing metrics.json between markers for the launcher to read back from the log. Also the
dry run: the task as YAML and SkyPilot's own optimizer view of it. Imports sky only when a task is built.
"""

import contextlib
import io
import os
import tempfile
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
    """File mounts that carry the job to the VM: its file (written to workdir, the dataset at its mounted path) and
    its local dataset."""
    raw, dataset = read_job(job_path)
    mounts = {}
    if dataset is not None:
        raw["dataset"] = f"{REMOTE_DATA_DIR}/{dataset.name}"
        mounts[raw["dataset"]] = str(dataset)
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


def dry_run(spec: JobConfig, job_path: Path, chosen: Option, budget_usd: float, model_params: int) -> str:
    """The task YAML (secrets redacted) and SkyPilot's optimizer view of it; nothing is launched."""
    task = build_task(spec, job_path, chosen, budget_usd, "dry-run", model_params,
                      Path(tempfile.mkdtemp(prefix="orch-task-")))
    return task_yaml(task) + "\n" + optimizer_view(task)


