"""What the VM runs orch's trainer with, in one place: the pinned packages (the versions orch's tests ran with;
torch from PyPI's default index is its CUDA build) and those a job's settings import, the setup script that installs
them with progress, fails where torch sees no CUDA GPU, and skips the work on a VM that already has them, and a staged
copy of orch's own code.

The code travels as a copy of the installed `trainer` and `gpu_catalog` packages (the trainer imports nothing from
orchestrator/), found through their import, so a source checkout, a wheel and a PyPI install all ship the same
files, and SkyPilot never syncs a site-packages folder.
"""

import hashlib
import shutil
from pathlib import Path

import gpu_catalog
import trainer
from gpu_catalog import checks
from trainer.config import JobConfig

# The oldest Python a VM image may bring: SkyPilot 0.14 runs a task in a venv over the image's own python3
# (~/sky-user-env; SKY_USER_ENV_CREATION_COMMANDS in sky/skylet/constants.py), and its default GCP and Azure GPU
# images are Ubuntu 22.04, whose python3 is 3.10. Every pin installs on it: accelerate 1.16 needs 3.11, so setup
# failed there after the VM was paid for (Requires-Python read from PyPI's metadata, 2026-12-05).
VM_PYTHON_LEAST = (3, 10)
# Tested together (tests on CPU with torch 2.13.0; 2026-12): change them in pinned_packages.txt (and torch here) only
PINNED_FILE = Path(__file__).with_name("pinned_packages.txt")
# each line's pin, what follows a `#` left out, as pip -c reads it: an inline note went to the VM's pip whole
PINNED_PACKAGES = ("torch==2.13.0", *(pin for line in PINNED_FILE.read_text(encoding="utf-8").splitlines()
                                      if (pin := line.split("#", 1)[0].strip())))
# A job's tracker (`report_to`), as pyproject's extras name it: without it the trainer refused the job on the VM,
# after the machine was paid for
TRACKER_PACKAGES = {"tensorboard": "tensorboard>=2.15", "wandb": "wandb>=0.19"}
TRACKER_ENV_VARS = ("WANDB_PROJECT", "WANDB_ENTITY", "WANDB_MODE")  # passed to a run that reports to W&B
# what wandb.init takes, as written (its mode is a case-sensitive choice): any other value raised on the VM
WANDB_MODES = ("online", "offline", "disabled", "shared", "dryrun")
# Settings that import a package of their own on a CUDA GPU, pinned as pyproject's extras pin them (`offload`,
# `fused`): without torchao the trainer refused adamw_cpu_offload on the VM (trainer/requirements.py); without
# liger-kernel `loss: fused` fell back to `chunked`, whose logits the plan had not sized the VRAM for
OFFLOAD_PACKAGE = "torchao>=0.10"
FUSED_LOSS_PACKAGE = "liger-kernel>=0.5"
SHIPPED_PACKAGES = (trainer, gpu_catalog)
SETUP_MARKER = "~/.orch_setup_done"
# Fails setup (so no run starts, and no marker is written) where torch sees no CUDA GPU: the trainer would take the
# CPU and spend the budget there at the GPU's price (a VM whose driver is older than torch's CUDA build)
GPU_CHECK = ("import sys, torch; ok = torch.cuda.is_available(); "
             "print(\"orch: torch\", torch.__version__, \"CUDA\", torch.version.cuda, \"GPU\", "
             "torch.cuda.get_device_name(0) if ok else None); "
             "sys.exit(0 if ok else \"orch: torch sees no CUDA GPU on this VM (is the NVIDIA driver older than the "
             "CUDA build of torch? see nvidia-smi): setup stops rather than train on the CPU at the GPU price\")")


def packages_for(spec: JobConfig) -> tuple[str, ...]:
    """What the VM installs for a job: the pinned stack, its tracker's package when it reports to one, and the
    package its optimizer or loss imports."""
    wanted = {TRACKER_PACKAGES.get(spec.report_to), OFFLOAD_PACKAGE if spec.optimizer == "adamw_cpu_offload" else None,
              FUSED_LOSS_PACKAGE if spec.loss == "fused" else None}
    return PINNED_PACKAGES + tuple(sorted(wanted - {None}))


def pins_digest(packages: tuple[str, ...] = PINNED_PACKAGES) -> str:
    """Names the installed stack: a VM whose marker holds it skips setup."""
    return hashlib.sha256("\n".join(packages).encode()).hexdigest()[:16]


def setup_script(packages: tuple[str, ...] = PINNED_PACKAGES, free_gib: int = 0) -> str:
    """Installs the packages with pip's progress, once per VM (a recovery on the same VM skips it), after checking
    the disk has `free_gib` GiB free (sky_task.free_disk_gib): some clouds boot a fixed disk whatever was asked."""
    digest = pins_digest(packages)
    least = ".".join(map(str, VM_PYTHON_LEAST))
    names = " ".join(f"'{p}'" for p in packages)
    return "\n".join([
        "set -e",
        f'if [ "$(cat {SETUP_MARKER} 2>/dev/null)" = "{digest}" ]; then echo "orch: setup already done"; exit 0; fi',
        # the output folder is on / and the model's download under $HOME: the less free of the two
        "free_gib=$(df -P -k / \"$HOME\" | awk 'NR > 1 {v = int($4 / 1048576); if (m == \"\" || v < m) m = v} "
        "END {print m}')",
        f'if [ "$free_gib" -lt {free_gib} ]; then echo "orch: this VM has $free_gib GiB free on its disk and the job '
        f'needs {free_gib} GiB (the stack, the model, its checkpoints and final weights): launch on another cloud '
        'or instance type" >&2; exit 1; fi',
        f"python -c 'import sys; sys.exit(0 if sys.version_info >= {VM_PYTHON_LEAST} else "
        f"\"orch: this VM has Python %d.%d; the trainer needs {least} or newer\" % sys.version_info[:2])'",
        f'echo "orch: installing {len(packages)} pinned packages (torch with CUDA: a few minutes)"',
        f"python -m pip install --progress-bar on {names}",
        'echo "orch: checking the GPU"',
        f"python -c '{GPU_CHECK}'",
        f"echo {digest} > {SETUP_MARKER}",
        'echo "orch: setup done"',
    ])


def stage_code(dest: Path) -> Path:
    """Copy the installed trainer and gpu_catalog packages (code and package data, no caches) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for package in SHIPPED_PACKAGES:
        source = Path(package.__file__).parent
        shutil.copytree(source, dest / source.name, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def tracker_envs() -> dict[str, str]:
    """The W&B settings given here, for the VM (tracker_env_problem refuses them first)."""
    return {name: value for name in TRACKER_ENV_VARS if (value := checks.env_value(name)) is not None}


def tracker_env_problem() -> str | None:
    """What in the W&B settings given here would fail wandb.init on the VM, after it was paid for: a mode it does not
    take, or a project or entity name with a control character or a line break (no W&B name has one)."""
    given = tracker_envs()
    if (mode := given.get("WANDB_MODE")) is not None and mode not in WANDB_MODES:  # as it is sent: `Offline` failed
        return f"WANDB_MODE {checks.short_repr(mode)} is no mode W&B takes: set it to one of {', '.join(WANDB_MODES)}"
    if bad := next((name for name, value in given.items() if checks.holds_control(value)), None):
        return f"{bad} holds a control character or a line break, which no W&B name has: set it again"
    return None
