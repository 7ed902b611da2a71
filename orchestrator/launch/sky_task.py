"""The sky.Task orch builds for one run, shaped by what the cloud supports (orchestrator/delivery.py):

- setup installs the pinned stack and the packages the job's settings import (orchestrator/launch/remote_env.py)
  with progress, fails where torch sees no CUDA GPU, and is skipped when a marker says this VM already has it;
  orch's own code (trainer, gpu_catalog) travels as a staged copy of the installed packages, so a checkout, a wheel
  or a PyPI install all work, and nothing is synced from site-packages;
- run starts the trainer under a wall-clock guard that counts from the launch request (ORCH_LAUNCHED_AT, set when
  the launcher builds the task: provisioning, failover and setup are inside the window; SkyPilot's recoveries of
  one launch share it, and each `orch resume` builds a task with a window of its own) and under the trainer's own
  budget stop, tees the log into the output folder, maps a wall-clock stop to exit 4, and prints this start's
  metrics.json (never an earlier start's) between markers for the launcher to read from the log;
- the output folder is a bucket `orch-<run id>` in MOUNT_CACHED mode where the cloud mounts storage, in the store
  the task names (sky_storage.output_store), else the VM's disk (pulled home before teardown); spot runs recover
  only from preemptions (`recover_on_exit_codes: [5]`, no restarts on errors: exits 2, 3 and 4 end the job at once);
- resources list the chosen offer then its failover offers (SkyPilot's `ordered`).

Also the dry run: the task as a file `sky launch` accepts. Imports sky only when a task is built.
"""

import contextlib
import io
import logging
import math
import re
import shutil
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import GPU
from gpu_catalog.models import ModelShape, is_gated
from gpu_catalog.units import BYTES_PER_GIB, seconds_for, usd_text
from gpu_catalog.whole_files import replace_whole
from orchestrator.cost import CONTROLLER_IDLE_HOURS, CONTROLLER_USD_PER_HOUR, LAST_SAVE_HOURS, hub_download_s
from orchestrator.delivery import CLUSTER_IDLE_MINUTES, REMOTE_OUTPUT, Delivery, bucket_name, delivery_for
from orchestrator.estimator import memory
from orchestrator.estimator.adapters import offloads_optimizer
from orchestrator.launch.local import DATA_KEYS, keep_name, read_job
from orchestrator.launch.remote_env import packages_for, setup_script, stage_code, tracker_envs
from orchestrator.launch.sky_server import import_sky
from orchestrator.launch.sky_storage import launch_delivery
from orchestrator.launch.uploads import carried_whole
from orchestrator.planner import Option
from orchestrator.runs.store import new_run_id
from trainer.checkpoint_folders import KEEP_CHECKPOINTS
from trainer.config import JobConfig
from trainer.offline_names import is_built_offline
from trainer.run_env import RUN_ID_ENV
from trainer.status import TrainStatus

REMOTE_ROOT = "/orch"
REMOTE_JOB = f"{REMOTE_ROOT}/job.yaml"
REMOTE_DATA_DIR = f"{REMOTE_ROOT}/data"
REMOTE_SRC = f"{REMOTE_ROOT}/src"
METRICS_BEGIN, METRICS_END = "ORCH_METRICS_BEGIN", "ORCH_METRICS_END"
EXIT_MARKER = "ORCH_TRAINER_EXIT="
SECRET_ENV_VARS = ("HF_TOKEN", "WANDB_API_KEY")  # passed as SkyPilot secrets: never in a file, log or the store
# the launch request's time (epoch seconds) the wall-clock window counts from; a dry run's task file, launched by
# hand whenever its user likes, says 0: the window then counts from the job's first start on the VM (a marker in the
# output folder, kept across recoveries) less the estimated start-up before it (STARTUP_ENV: provisioning and setup;
# the model's download comes after, the trainer's own, and its first start counts it), unless `sky launch` gives the
# time (LAUNCH_TIME_FLAG)
LAUNCHED_AT_ENV = "ORCH_LAUNCHED_AT"
STARTUP_ENV = "ORCH_EST_STARTUP_S"
LAUNCH_TIME_FLAG = f"--env {LAUNCHED_AT_ENV}=$(date +%s)"
STARTED_AT_MARKER = ".orch_started_at"  # trainer/__main__.py RUN_MARKS knows it for a run's own mark
# where the run's W&B logs go (trainer/trackers.py reads them): the VM's W&B went to project `orch`, online
# the trainer checkpointed on SIGTERM: the one exit worth a restart (TrainStatus.deserves_restart)
RECOVER_ON_EXIT_CODES = [s.exit_code for s in TrainStatus if s.deserves_restart]
WALL_LIMIT_EXIT_CODE = TrainStatus.BUDGET_STOPPED.exit_code  # the wall-clock guard stopped it: a budget stop
SAVE_GRACE_S = round(LAST_SAVE_HOURS * 3600)  # the end of the window kept for the trainer's last checkpoint
MIN_DISK_GIB = 100
ENVIRONMENT_DISK_GIB = 50  # the image, CUDA, torch and the pinned stack, with room for logs and caches
STACK_DISK_GIB = 15  # of that, what setup installs: torch with its CUDA libraries and the pinned packages
CHECKPOINTS_AT_PEAK = KEEP_CHECKPOINTS + 1  # the next is written whole before the oldest is pruned


def task_name(job_name: str) -> str:
    """`orch-<job name>` in SkyPilot's task-name pattern (letters and digits, one or two of `._-` between them; checked
    at launch, not when a task file loads): a job name may hold `+` or a run of separators."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", job_name)
    name = re.sub(r"[._-]{3,}", lambda run: run.group(0)[:2], name).strip("._-")
    return f"orch-{name}"


def disk_gib(model: ModelShape, spec: JobConfig, gpu: GPU) -> int:
    """The boot disk a run needs: the environment, the model's 16-bit download, the checkpoints at their peak (the
    trainer keeps KEEP_CHECKPOINTS and writes the next before it prunes one), the final weights, and a merged copy
    where the job asks for one. A full fine-tune's checkpoint is its weights and their optimizer state: 4 bytes a
    parameter with adamw_8bit, 6 with adamw in bf16, so an 8B one is 32-48 GB; three of them overflowed the 100 GB
    the 16-bit weights alone were sized for, and the run died at a save after the VM was paid for. A bucket mount
    caches what it has not uploaded yet on this disk too, so a bucket takes nothing off."""
    needed = ENVIRONMENT_DISK_GIB * BYTES_PER_GIB + _job_bytes(model, spec, gpu)
    return max(MIN_DISK_GIB, math.ceil(needed / BYTES_PER_GIB))


def free_disk_gib(model: ModelShape, spec: JobConfig, gpu: GPU) -> int:
    """What the VM's disk must have free before setup, which its setup checks: the pinned stack it installs and the
    job's files. Lambda, Seeweb, Hyperbolic and Mithril boot their instance type's fixed disk whatever `disk_size`
    asks (SkyPilot's templates and provisioners never pass it on), so a run there found out at a save, paid for."""
    return STACK_DISK_GIB + math.ceil(_job_bytes(model, spec, gpu) / BYTES_PER_GIB)


def _job_bytes(model: ModelShape, spec: JobConfig, gpu: GPU) -> float:
    """The job's own files on the VM's disk: the download, the checkpoints at their peak, the final weights and a
    merged copy (disk_gib)."""
    final = memory.trainable_bytes(model, spec, gpu)
    download = model.params * memory.HALF_BYTES
    merged = download if spec.merge_adapter and spec.method != "full" else 0
    return download + CHECKPOINTS_AT_PEAK * checkpoint_bytes(model, spec, gpu) + final + merged


def checkpoint_bytes(model: ModelShape, spec: JobConfig, gpu: GPU) -> int:
    """One checkpoint's trainable weights and optimizer state (trainer/checkpoint.py), as the estimator counts them
    in memory, except an optimizer offloaded to the CPU: none of its state is on the GPU, all of it in the checkpoint
    (counted as two fp32 moments a parameter, its most). The RNG and schedule states beside them are a few kilobytes."""
    offloaded = memory.trainable_params(model, spec) * 2 * memory.FP32_BYTES if offloads_optimizer(spec) else 0
    return memory.trainable_bytes(model, spec, gpu) + memory.optimizer_state_bytes(model, spec, gpu) + offloaded


@dataclass(frozen=True)
class Guard:
    """What one launch may spend on the VM: `usd_per_hour` is the dearest failover price plus the jobs controller;
    `wall_limit_s` runs from the launch request, provisioning, setup and recoveries included; `train_budget_usd` is
    what the trainer's own budget stop gets over that window."""

    usd_per_hour: float
    wall_limit_s: int
    train_budget_usd: float


def guard_for(option: Option, delivery: Delivery, budget_usd: float) -> Guard:
    """The budget less what is paid outside the wall-clock window (the idle window before autodown, the controller's
    idle autostop), spread over the window at the dearest hourly rate the run can pay. Start-up is inside the window
    (it counts from the launch request), so the estimated start-up sizes the plan only: a slower one than guessed
    leaves less time to train, never more spend. A dry run's file launched without its launch time counts the
    estimated start-up instead (run_script): the window was sized apart from it once, and the printed command's
    launch time then took provisioning out of it a second time, stopping a run the plan accepted at 75-87%."""
    gpu_per_hour = max(o.usd_per_hour for o in option.offers)
    controller = CONTROLLER_USD_PER_HOUR if delivery.managed else 0.0
    rate = gpu_per_hour + controller
    fixed = delivery.idle_hours() * gpu_per_hour + CONTROLLER_IDLE_HOURS * controller
    train_budget = max(0.0, budget_usd - fixed)
    wall_limit_s = int(seconds_for(train_budget, rate)) if rate > 0 else 0
    return Guard(usd_per_hour=rate, wall_limit_s=wall_limit_s, train_budget_usd=round(train_budget, 4))


def _uncovered(option: Option, planned: Delivery, delivery: Delivery, budget_usd: float, guard: Guard) -> str | None:
    """Why the budget cannot pay for the task about to be built, before a VM is bought: the plan priced its
    delivery, and a launch with no store enabled keeps the output on the VM, whose idle hour the guard takes out of
    the budget (a $6.20 budget left the trainer $0 and a window of 0 s, which `timeout` reads as no limit)."""
    extra_usd = delivery.idle_usd_past(planned, option.offer.usd_per_hour)
    needed_usd = option.estimate.cost_usd + extra_usd
    if extra_usd > 0 and budget_usd < needed_usd:
        return (f"with no storage cloud orch can use enabled here, a run on {option.offer.provider} keeps its output "
                f"on its VM, which idles up to {delivery.idle_minutes} min after the job before it downs itself: "
                f"{usd_text(extra_usd)} more than the plan counted, and the {usd_text(budget_usd)} budget no longer "
                f"covers the run: raise --budget to at least {usd_text(needed_usd)}, or enable a storage cloud "
                "(AWS S3, GCS or Nebius: `sky check`).")
    if guard.wall_limit_s <= SAVE_GRACE_S:  # a window of 0 s is no limit to `timeout`; the last save needs its part
        return (f"the {usd_text(budget_usd)} budget leaves nothing to train on after what the cloud bills outside "
                "the run (the VM's idle window before it downs itself, and a spot job's controller) and the "
                f"{SAVE_GRACE_S // 60} min kept for its last checkpoint: raise --budget "
                f"to at least {usd_text(needed_usd)}.")
    return None


def run_script() -> str:
    """The run command: reads the guard from the task's env so the file stays readable and the same across starts. The
    trainer is stopped (TERM, and its own budget stop) SAVE_GRACE_S before the window ends and killed at its end: a TERM
    at the end, with 300 s to save after it, billed up to 5 min past the budget. The window counts from the launch
    request (0, a dry run's file launched without it: from the job's first start less the estimated start-up, the first
    start kept in a marker across recoveries); a metrics.json an earlier start left in the output folder (a recovery's,
    an earlier session's in a resumed run's bucket) is removed first, so only this start's is printed. The last line
    leaves the trainer's status in $? rather than exiting: SkyPilot runs its wait for a MOUNT_CACHED bucket's uploads
    after the script (sky/backends/task_codegen.py), and an `exit` skipped it, so teardown could cut off final/ and the
    last checkpoint."""
    out = REMOTE_OUTPUT
    return "\n".join([
        "set -o pipefail",
        f"export PYTHONPATH={REMOTE_SRC}${{PYTHONPATH:+:$PYTHONPATH}}",
        f"launched=${{{LAUNCHED_AT_ENV}:-0}}",
        f"case \"$launched\" in *[!0-9]*) echo 'orch: {LAUNCHED_AT_ENV} is not the launch time in epoch seconds: "
        f"launch with {LAUNCH_TIME_FLAG}'; echo {EXIT_MARKER}2; exit 2;; esac",
        f"mkdir -p {out}",
        'if [ "$launched" -eq 0 ]; then  # launched by hand without its time: from the first start, across recoveries',
        f"  [ -s {out}/{STARTED_AT_MARKER} ] || date +%s > {out}/{STARTED_AT_MARKER}",
        f"  launched=$(( $(cat {out}/{STARTED_AT_MARKER}) - ${{{STARTUP_ENV}:-0}} ))",
        "fi",
        f"rm -f {out}/metrics.json",
        "elapsed=$(( $(date +%s) - launched ))",
        '[ "$elapsed" -ge 0 ] || elapsed=0  # a VM clock behind the launching machine\'s',
        f"grace={SAVE_GRACE_S}  # the trainer is stopped this long before the window ends: its last save is inside",
        "remaining=$(( ORCH_WALL_LIMIT_S - elapsed - grace ))",
        'if [ "$ORCH_WALL_LIMIT_S" -gt 0 ] && [ "$remaining" -le 0 ]; then',
        '  echo "orch: the wall-clock budget is spent"; status=4',
        "else",
        '  [ "$ORCH_WALL_LIMIT_S" -gt 0 ] || remaining=0',
        "  budget=$(awk -v b=\"$ORCH_TRAIN_BUDGET_USD\" -v r=\"$remaining\" -v l=\"$ORCH_WALL_LIMIT_S\" "
        "'BEGIN { printf \"%.4f\", (l > 0 ? b * r / l : b) }')",
        f"  timeout --signal=TERM --kill-after=\"$grace\" \"$remaining\" python -m trainer {REMOTE_JOB} --output {out} "
        "--resume auto --set usd_per_hour=$ORCH_USD_PER_HOUR --set budget_usd=$budget "
        f"2>&1 | tee -a {out}/train.log",
        "  status=$?",
        "  # timeout's code: the guard stopped it; 137 once the window is past: its KILL, the trainer still saving",
        "  # at the window's end (where 137 is before it, the trainer was killed by something else: a failure)",
        f"  if [ \"$status\" -eq 124 ] || {{ [ \"$status\" -eq 137 ] && [ \"$ORCH_WALL_LIMIT_S\" -gt 0 ] && "
        f"[ $(( $(date +%s) - launched )) -ge \"$ORCH_WALL_LIMIT_S\" ]; }}; then status={WALL_LIMIT_EXIT_CODE}; fi",
        "fi",
        f"echo {EXIT_MARKER}$status",
        f"echo {METRICS_BEGIN}; cat {out}/metrics.json 2>/dev/null; echo; echo {METRICS_END}",
        "(exit $status)  # the script's status, without an `exit`: SkyPilot appends its wait for bucket uploads",
    ])


STOP_WAIT_S = 1800  # a full fine-tune's checkpoint of a large model is written in minutes, not half an hour
TRAINER_COMMAND = "^python -m trainer "  # run_script's trainer, not `timeout` before it nor this script's own shell


def stop_script() -> str:
    """What `orch stop` runs on an on-demand cluster, as a job beside the run's: SIGTERM makes the trainer save a
    checkpoint and exit (its run script then prints the metrics, and SkyPilot's own wait for a MOUNT_CACHED
    bucket's uploads ends that job: sky/backends/task_codegen.py), and this waits for the trainer, at most
    STOP_WAIT_S; it exits 1 if the trainer is still running then."""
    return "\n".join([
        f"pkill -TERM -f '{TRAINER_COMMAND}' && echo 'orch: the trainer is saving a checkpoint' || "
        "echo 'orch: no trainer running'",
        f"for _ in $(seq {STOP_WAIT_S // 2}); do pgrep -f '{TRAINER_COMMAND}' > /dev/null || break; sleep 2; done",
        f"! pgrep -f '{TRAINER_COMMAND}' > /dev/null",
    ])


@dataclass(frozen=True)
class TaskFiles:
    """What the task mounts from the launching machine: the staged code, the job file, and each local dataset (the
    training set, an eval set), tokenizer and model folder by the path it has on the VM; and what the VM downloads
    from the Hugging Face Hub."""

    code_dir: Path
    job_file: Path
    mounts: dict[str, Path]  # remote path -> local file or folder
    hub_ids: tuple[str, ...] = ()  # the model, tokenizer and datasets the VM downloads (HF_TOKEN goes only then)


UNSAFE_IN_MOUNT = re.compile(r"[^A-Za-z0-9._-]")


def remote_name(path: Path) -> str:
    """A mount's name on the VM: SkyPilot 0.14 links each file mount into place with a shell command that leaves its
    destination unquoted, so a space or a quote in a dataset's name failed the launch after the VM was paid for."""
    return UNSAFE_IN_MOUNT.sub("_", path.name) or "data"


def copyable(path: Path, what: str) -> Path:
    """`path`, where SkyPilot can copy it to a VM: SkyPilot 0.14 rsyncs each file mount's source through a shell with
    the path quoted by Python's repr (sky/utils/command_runner.py), which a quote or a backslash in it breaks (and a
    quote beside a `$(...)` runs that here), after the VM is paid for. Refused before anything is bought."""
    text = str(path)
    if "'" in text or "\\" in text or not text.isprintable():
        raise UserError(f"{what} {checks.short_repr(text)} holds a quote, a backslash or a control character, which "
                        "SkyPilot cannot copy to a VM: rename it (or its folder) without them.")
    return path


def stage_files(job_path: Path, files_dir: Path, settings: dict | None = None) -> TaskFiles:
    """Copy what the VM needs into `files_dir`: orch's code and the job, its local paths rewritten to the mounts
    (the dataset, the eval set, the tokenizer and the model each in a folder of its own: they may share a name), and
    the `settings` its plan chose for the target (a dry run's task trains what the plan priced)."""
    raw, local = read_job(job_path)
    raw.update(settings or {})
    keep_name(raw, job_path)
    hub_ids = tuple(raw[key] for key in (*DATA_KEYS, "tokenizer") if isinstance(raw.get(key), str) and key not in local)
    model = raw["model"]
    model_folder = job_path.parent / model
    if not is_built_offline(model):
        if model_folder.is_dir():  # a folder of this machine: mounted like a dataset
            local["model"] = model_folder.resolve()
        else:
            hub_ids = (model, *hub_ids)
    mounts = {}
    for key, path in local.items():  # each in a folder of its own: a dataset folder named `model` holds no model
        raw[key] = f"{REMOTE_DATA_DIR}/{key}/{remote_name(path)}"
        mounts[raw[key]] = carried_whole(copyable(Path(path), f"`{key}`"), f"`{key}`")
    copyable(checks.resolved(files_dir), "the folder the task's files are written to")  # as the task names it
    files_dir.mkdir(parents=True, exist_ok=True)
    job_file = files_dir / "job.yaml"
    job_file.write_text(checks.dump_yaml(raw, sort_keys=False), encoding="utf-8")
    return TaskFiles(code_dir=stage_code(files_dir / "src"), job_file=job_file, mounts=mounts, hub_ids=hub_ids)


def _resources(sky, option: Option, delivery: Delivery, model: ModelShape, spec: JobConfig) -> list:
    common = {"use_spot": option.offer.spot, "disk_size": disk_gib(model, spec, option.offer.gpu)}
    if delivery.managed:
        common["job_recovery"] = {"strategy": "FAILOVER", "max_restarts_on_errors": 0,
                                  "recover_on_exit_codes": RECOVER_ON_EXIT_CODES}
    elif delivery.idle_minutes is not None:
        # wait for the job alone: SkyPilot's default also waits for every SSH session, and one left open kept the VM
        # up past the idle minutes the budget pays for
        common["autostop"] = {"idle_minutes": delivery.idle_minutes, "down": True, "wait_for": "jobs"}
    resources = []
    for offer in option.offers:
        infra = f"{offer.provider}/{offer.region}" if offer.region else offer.provider
        # an instance type SkyPilot's catalog lists is named: the instance planned, not the cheapest of its GPU name
        named = {"instance_type": offer.instance_type} if offer.sky_instance else {}
        with _catalog_at_hand([offer.provider]):
            resources.append(sky.Resources(**common, **named, infra=infra, accelerators={offer.accelerator: 1}))
    return resources


@contextlib.contextmanager
def _catalog_at_hand(providers: list[str]):
    """SkyPilot reads its own catalog of a cloud, downloaded on first use, to describe a task's resources: offline,
    with none kept (an offer from ORCH_SKY_CATALOGS, for a cloud SkyPilot never fetched), it logged "Failed to fetch
    ..." and raised the HTTP library's error, said as two lines that named no fix. `providers`: the clouds the task
    names; the message names those whose catalog is not here (it had named Nebius beside AWS, with Nebius's there)."""
    import requests

    catalog_log = logging.getLogger("sky.catalog.common")
    was_disabled, catalog_log.disabled = catalog_log.disabled, True
    try:
        yield
    except requests.exceptions.RequestException:
        from sky.catalog.common import get_catalog_path

        missing = [p for p in providers if not Path(get_catalog_path(f"{p}/vms.csv")).is_file()] or providers
        raise UserError(f"SkyPilot has no catalog of {', '.join(missing)} on this machine and cannot download one "
                        "(no network): `orch catalog refresh` fetches SkyPilot's catalogs with the network (or "
                        "copies them --from a folder), or plan on the clouds whose catalogs are here (`orch catalog "
                        "offers`).") from None
    finally:
        catalog_log.disabled = was_disabled


NO_STORE_NOTE = ("no storage cloud orch can use is enabled here (`sky check`): the task leaves its bucket's store to "
                 "SkyPilot, and `orch launch` would keep an on-demand run's output on the VM and refuse a spot run")


def cluster_name(run_id: str) -> str:
    """The cluster (or managed job) name of a run: known before SkyPilot answers, so an interrupted launch can be
    found and taken down, and a dry run's printed command names the cluster its notes name."""
    return f"orch-{run_id.removeprefix('r-')[-8:]}"


def on_the_vm_note(task) -> str:
    """A task launched by hand from a dry run's file has no `orch launch` to bring its output home before teardown."""
    return (f"the output stays on the VM's disk ({REMOTE_OUTPUT}), and the VM downs itself {CLUSTER_IDLE_MINUTES} "
            f"idle minutes after the job: launched by hand, copy it home before then (`rsync -a "
            f"{cluster_name(task.envs[RUN_ID_ENV])}:{REMOTE_OUTPUT}/ output/`)")


def waiting_spot_note(task) -> str:
    """A managed spot job launched by hand from a dry run's file: `orch launch` cancels one still waiting for a VM
    once its budget is spent (SkyPilot retries a launch and a recovery without end); nothing does by hand."""
    return (f"launched by hand, nothing cancels this managed job while SkyPilot waits for a spot VM or recovers one "
            f"(it retries without end, and its controller bills meanwhile): watch `sky jobs queue`, and `sky jobs "
            f"cancel -n {cluster_name(task.envs[RUN_ID_ENV])}` it past the budget; `orch launch` does this itself")


def build_task(spec: JobConfig, job_path: Path, option: Option, budget_usd: float, run_id: str, model: ModelShape,
               workdir: Path, files_dir: Path | None = None, for_launch: bool = True):
    """The sky.Task for one run; its files are staged in `files_dir`, by default `workdir`/remote (the run folder:
    it outlives the launch request, and nothing is left in /tmp). For a launch, the wall-clock window counts from
    now (the launch request); a secret goes only to a job that uses it (HF_TOKEN: a hub download; WANDB_API_KEY:
    report_to wandb). Not `for_launch` (a dry run, on a machine that may have no cloud enabled), a bucket no enabled
    store can take is left to SkyPilot's pick (NO_STORE_NOTE), and the launch time to `sky launch --env`."""
    sky = import_sky()
    planned = option.delivery or delivery_for(option.offer)
    delivery, store = launch_delivery(planned, option.offer.provider, for_launch)
    files = stage_files(job_path, files_dir or Path(workdir) / "remote", option.fitted_settings)
    mounts = {REMOTE_SRC: str(files.code_dir), REMOTE_JOB: str(files.job_file)}
    mounts.update((remote, str(path)) for remote, path in files.mounts.items())
    guard = guard_for(option, delivery, budget_usd)
    if problem := _uncovered(option, planned, delivery, budget_usd, guard):
        raise UserError(problem)
    used = {"HF_TOKEN": bool(files.hub_ids), "WANDB_API_KEY": spec.report_to == "wandb"}
    # a dry run's file declares, unset here, the secret the run cannot do without (a gated model's token), which
    # `sky launch --secret NAME` sends from where it runs; an unset one a run does without (a public model's token,
    # W&B's key: it logs offline) was declared too, and `sky launch` refused the file without it
    needed = {"HF_TOKEN": any(is_gated(hub_id) for hub_id in files.hub_ids), "WANDB_API_KEY": False}
    given = {name: checks.secret_env(name) for name in SECRET_ENV_VARS if used[name]}
    secrets = {name: value or "" for name, value in given.items() if value or (needed[name] and not for_launch)}
    envs = {RUN_ID_ENV: run_id, LAUNCHED_AT_ENV: str(int(time.time()) if for_launch else 0),
            STARTUP_ENV: str(round(option.estimate.startup_hours * 3600 - hub_download_s(model.params))),
            "ORCH_USD_PER_HOUR": f"{guard.usd_per_hour:.4f}",
            "ORCH_WALL_LIMIT_S": str(guard.wall_limit_s), "ORCH_TRAIN_BUDGET_USD": f"{guard.train_budget_usd:.4f}",
            **(tracker_envs() if spec.report_to == "wandb" else {})}  # checked by pre-flight
    setup = setup_script(packages_for(spec), free_disk_gib(model, spec, option.offer.gpu))
    task = sky.Task(name=task_name(spec.name), setup=setup, run=run_script(),
                    envs=envs, secrets=secrets or None, file_mounts=mounts)
    if delivery.output == "bucket":
        from sky.data.storage import StoreType

        mode = sky.StorageMode.MOUNT_CACHED  # appends (steps.jsonl, the log) and renames (checkpoints) work
        task.set_storage_mounts({REMOTE_OUTPUT: sky.Storage(name=bucket_name(run_id), mode=mode, persistent=True,
                                                            stores=[StoreType(store)] if store else None)})
    resources = _resources(sky, option, delivery, model, spec)
    task.set_resources(resources if len(resources) > 1 else resources[0])
    return task


def task_config(task, files: TaskFiles | None = None, files_as: str | None = None) -> dict:
    """The task as SkyPilot's YAML mapping, secret values left out, private keys dropped; with `files_as`, the staged
    folder's paths are written relative to it (a task file that names no folder of this machine)."""
    config = task.to_yaml_config(use_user_specified_yaml=True)
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    if config.get("secrets"):  # no value, so `sky launch` asks for `--secret NAME` instead of sending a placeholder
        config["secrets"] = {name: None for name in config["secrets"]}
    if files is not None and files_as is not None:
        root = str(files.code_dir.parent)
        mounts = config.get("file_mounts") or {}  # a bucket mount is a mapping, a file mount a path
        config["file_mounts"] = {dst: src.replace(root, files_as, 1) if isinstance(src, str) and src.startswith(root)
                                 else src for dst, src in mounts.items()}
    return config


def task_yaml(task, files: TaskFiles | None = None, files_as: str | None = None) -> str:
    """The task as YAML (secrets redacted): what --dry-run writes, headed, where it has no launch time, by what the
    budget's window then counts from and how to count provisioning and setup too."""
    from sky.utils import yaml_utils

    head = (f"# {LAUNCHED_AT_ENV} 0: the budget's wall-clock window counts from the job's first start on the VM,\n"
            f"# less estimated provisioning and setup ({STARTUP_ENV}); launch with `{LAUNCH_TIME_FLAG}` to count\n"
            f"# provisioning and setup as they really take\n"
            if task.envs.get(LAUNCHED_AT_ENV) == "0" else "")
    notes = [on_the_vm_note(task)] if REMOTE_OUTPUT not in task.storage_mounts else []
    if task.envs.get(LAUNCHED_AT_ENV) == "0" and any(r.use_spot for r in task.resources):
        notes.append(waiting_spot_note(task))
    for note in notes:
        head += "".join(f"# {line}\n" for line in textwrap.wrap(note[0].upper() + note[1:], 116))
    return head + yaml_utils.dump_yaml_str(task_config(task, files, files_as))


def optimizer_view(task) -> str:
    """SkyPilot's own optimizer, run in process on this machine's enabled clouds, as plain text."""
    sky = import_sky()
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), sky.Dag() as dag:
            dag.add(task)
        with contextlib.redirect_stdout(buffer):
            sky.Optimizer.optimize(dag, minimize=sky.OptimizeTarget.COST, quiet=False)
    except (sky.exceptions.NoCloudAccessError, sky.exceptions.ResourcesUnavailableError) as exc:
        return _plain(buffer.getvalue() + f"SkyPilot cannot place this task here: {str(exc).splitlines()[0]}\n")
    best = task.best_resources
    return _plain(buffer.getvalue()) + (f"SkyPilot's choice: {best.cloud} {best.region} {best.instance_type} "
                                        f"${best.get_cost(3600):.2f}/h\n")


def _plain(text: str) -> str:
    """SkyPilot's optimizer table without terminal colour codes."""
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


@dataclass(frozen=True)
class DryRun:
    yaml_text: str
    optimizer_text: str
    files_dir: Path | None  # where the task's files were written (with --out), else None
    note: str | None = None  # what a launch would do differently here (NO_STORE_NOTE)
    cluster: str = ""  # the cluster (a spot run's managed job) the printed `sky launch` names
    secrets: tuple[str, ...] = ()  # the secrets the task declares, for the printed command's `--secret NAME`s


def task_files_dir(out: Path) -> Path:
    """Where a dry run written to `out` puts the files its task mounts."""
    return out.parent / f"{out.stem}-files"


# In a dry run's files folder: orch made it for the task file it names (MARKED_FOR), so the next dry run to that
# same --out may rewrite what it staged there
TASK_FILES_MARK = ".orch-task-files"
MARK_TEXT = ("orch wrote this folder for a dry run's task file (`orch launch --dry-run --out`): the next one to the "
             "same --out replaces its job.yaml and src/ without asking.\n")
MARKED_FOR = "task file: "
STAGED = ("src", "job.yaml", TASK_FILES_MARK)  # what a dry run writes in the folder: all that it replaces there


def foreign_task_files(files_dir: Path, out: Path) -> bool:
    """Whether `files_dir` holds files no dry run to `out` wrote: a folder the user keeps under that name, or one
    staged for another task file of the same stem (`task.yaml` beside `task.yml`), whose src/ and job.yaml a dry run
    replaced unasked, the other task then mounting this job. A missing or empty folder loses nothing."""
    if not files_dir.is_dir():
        return False
    try:
        marked = (files_dir / TASK_FILES_MARK).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return next(files_dir.iterdir(), None) is not None
    named = [line.removeprefix(MARKED_FOR) for line in marked if line.startswith(MARKED_FOR)]
    return bool(named) and named != [out.name]  # a mark naming no task file is an earlier orch's, for this one


def _clear_staged(files_dir: Path) -> None:
    """Remove what an earlier dry run (or, with --force, the user) left under the names a dry run writes, a link as
    the link itself: writing through one replaced a file elsewhere, and a file named src stopped the staging. The
    mark goes too, and is written again once the task is staged: a folder left half-staged is not called orch's."""
    for name in STAGED:
        path = files_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def dry_run(spec: JobConfig, job_path: Path, chosen: Option, budget_usd: float, model: ModelShape,
            out: Path | None = None) -> DryRun:
    """The task file and SkyPilot's optimizer view of it; nothing is launched. With `out`, the YAML is written
    there and the files it mounts beside it (`<stem>-files/`, marked as orch's with TASK_FILES_MARK), named relative
    to the current folder when they are under it; without, the YAML names `<job>-task-files/` and nothing is kept
    (the staging folder is removed). SkyPilot reads its catalog of each cloud on the way (_catalog_at_hand)."""
    with _catalog_at_hand(sorted({offer.provider for offer in chosen.offers})):
        return _dry_run(spec, job_path, chosen, budget_usd, model, out)


def _dry_run(spec: JobConfig, job_path: Path, chosen: Option, budget_usd: float, model: ModelShape,
             out: Path | None) -> DryRun:
    if out is not None:
        files_dir = task_files_dir(out)
        _clear_staged(files_dir)  # the CLI refused a folder of the user's without --force (foreign_task_files)
        made, out_was_there = checks.missing_folders(files_dir), out.exists()
        try:
            task, text = _write_task_files(spec, job_path, chosen, budget_usd, model, out, files_dir)
        except OSError as exc:  # a full disk: "No space left on device" alone, and a half-staged folder that only
            # --force then replaced; what this dry run wrote goes, so the same command works once there is room
            _clear_staged(files_dir)
            if made:  # the folders this dry run made, and nothing else, are in the outermost
                shutil.rmtree(made[-1], ignore_errors=True)
            if not out_was_there:
                out.unlink(missing_ok=True)
            if _fetching(exc):  # no catalog to download offline (an HTTP error is an OSError): said with its fix by
                raise  # _catalog_at_hand, not as a disk with no room
            raise UserError(f"--out {out}: writing the task or its files in {files_dir} failed "
                            f"({exc.strerror or exc}), and nothing of it was kept: free space there, or choose "
                            "another --out.") from None
        return DryRun(text, optimizer_view(task), files_dir, _note(task), cluster_name(task.envs[RUN_ID_ENV]),
                      tuple(task.secrets or {}))
    with tempfile.TemporaryDirectory(prefix="orch-task-") as tmp:
        task = build_task(spec, job_path, chosen, budget_usd, new_run_id(), model, Path(tmp),
                          for_launch=False)
        staged = Path(tmp) / "remote"
        text = task_yaml(task, TaskFiles(staged / "src", staged / "job.yaml", {}), f"{spec.name}-task-files")
        return DryRun(text, optimizer_view(task), None, _note(task), cluster_name(task.envs[RUN_ID_ENV]),
                      tuple(task.secrets or {}))


def _fetching(exc: OSError) -> bool:
    """Whether the error is the HTTP library's (SkyPilot fetching a catalog), not the disk's."""
    import requests

    return isinstance(exc, requests.exceptions.RequestException)


def _write_task_files(spec: JobConfig, job_path: Path, chosen: Option, budget_usd: float, model: ModelShape,
                      out: Path, files_dir: Path):
    """A dry run's task at `out` and the files it mounts in `files_dir`, marked as orch's once staged; the task and
    its YAML text."""
    task = build_task(spec, job_path, chosen, budget_usd, new_run_id(), model, out.parent, files_dir,
                      for_launch=False)
    (files_dir / TASK_FILES_MARK).write_text(f"{MARK_TEXT}{MARKED_FOR}{out.name}\n", encoding="utf-8")
    try:
        files_as = str(files_dir.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        files_as = str(files_dir.resolve())
    text = task_yaml(task, TaskFiles(files_dir / "src", files_dir / "job.yaml", {}), files_as)
    # a full disk leaves a task replaced with --force as it was, not cut short
    replace_whole(out, lambda partial: partial.write_text(text, encoding="utf-8"))
    return task, text


def _note(task) -> str | None:
    """NO_STORE_NOTE where the task's bucket names no store; on_the_vm_note where the output has no bucket."""
    if REMOTE_OUTPUT not in task.storage_mounts:
        return on_the_vm_note(task)
    return NO_STORE_NOTE if any(not storage.stores for storage in task.storage_mounts.values()) else None
