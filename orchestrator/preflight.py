"""Pre-flight: the trainer's own checks (trainer/loop.py `_validate`, trainer/model.py `check_quantizable`), run on
the user's machine without torch before any VM is bought, plus what only a cloud launch needs (a cloud SkyPilot
knows, a budget that covers the fixed costs, settings whose packages the VM's setup can install). Every problem is
collected and raised at once as a UserError, so the CLI prints one line and exits 2 with nothing provisioned."""

from dataclasses import replace
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.cloud_features import known_cloud, skypilot_version
from gpu_catalog.errors import UserError
from gpu_catalog.models import RANDOM_PREFIX, ModelShape, get_model, is_gated
from gpu_catalog.offer import SSH_POOL_PROVIDER
from orchestrator.estimator.settings import unsupported_in_cloud
from orchestrator.home import orch_home
from orchestrator.job import looks_like_a_file
from orchestrator.launch.remote_env import tracker_env_problem
from orchestrator.planner import Option
from trainer.config import JobConfig, check_model_and_tokenizer, read_folders
from trainer.data_formats import read_columns
from trainer.data_sources import (
    FILE_KINDS_HINT,
    csv_problem,
    file_head_problem,
    file_kind,
    folder_problem,
    one_file_problem,
)
from trainer.offline_names import (
    build_folder_problem,
    dataset_unreachable,
    is_built_offline,
    model_unreachable,
    tokenizer_unreachable,
)
from trainer.trackers import missing_package


def dataset_problems(spec: JobConfig, job_path: Path) -> list[str]:
    """The dataset is named, and a path is a readable UTF-8 file here (a cloud run mounts it from this machine)."""
    if spec.dataset is None:
        return [f"{job_path.name} names no dataset: add `dataset: PATH` (JSONL, Parquet or CSV, relative to the job "
                "file) or a Hugging Face dataset id (org/name)"]
    path = job_path.parent / checks.user_path(spec.dataset)
    looks_like_path = looks_like_a_file(spec.dataset)
    if not path.exists():
        if looks_like_path:
            return [f"dataset '{spec.dataset}' is not on this machine (looked at {path}): a cloud run takes its "
                    "dataset from here, so copy the file here or name a Hugging Face dataset id"]
        return []  # a hub id: the VM downloads it
    one_file = one_file_problem(spec, path)
    return dataset_file_problems(path, read_columns(spec.dataset_columns)) + ([one_file] if one_file else [])


def dataset_file_problems(path: Path, read: set[str] | None = None) -> list[str]:
    """What stops the trainer from reading a local dataset that is there: a file of no kind it reads, one that
    cannot be read, an empty one, text that is not UTF-8, a CSV header that names a column it reads (`read`: the
    shapes' own by default) twice, or a folder with no data file or of mixed kinds (the trainer's own checks)."""
    if path.is_dir():  # a folder of data files, or one laid out as a dataset repository: mounted and read as it is
        return [f"dataset {problem}"] if (problem := folder_problem(path)) else []
    kind = file_kind(path)
    if kind is None:
        return [f"dataset '{path}': {FILE_KINDS_HINT}"]
    if not path.is_file():  # a pipe: opening it to read its head waited for a writer, for ever (`orch bench`)
        return [f"dataset '{path}' is not a file or a folder: {FILE_KINDS_HINT}"]
    if head := file_head_problem(path):
        return [f"dataset {head}"]
    if kind == "csv" and (problem := csv_problem(path, read_columns() if read is None else read)):
        return [f"dataset {problem}"]
    return []


def model_problems(spec: JobConfig, cloud: bool = True, base_dir: Path = Path("."), launching: bool = True
                   ) -> list[str]:
    """qlora needs nn.Linear layers (every model orch describes has them); a gated model needs HF_TOKEN on a cloud VM
    (here, a `huggingface-cli login` serves too, and the trainer says so if the download is refused). Random
    weights in a real shape (`random:`) download nothing. A model folder of this machine (beside the job) must hold
    a tokenizer unless `tokenizer` names one: the trainer's own check, which refused it on the VM after provisioning
    and setup were paid for."""
    folder, model = _folder_and_model(spec, base_dir)
    problems = []
    if not cloud and (cache_problem := build_folder_problem(spec.model)):  # the trainer's first refusal, said here
        problems.append(cache_problem)
    downloads = not spec.model.startswith(RANDOM_PREFIX)
    if downloads and not is_built_offline(spec.model) and "/" not in spec.model and not folder.is_dir():
        # a shape orch reads by name (`Llama-3-8B-Instruct`) with no repository it stands for: the VM would ask
        # the hub for that bare name and stop after provisioning and setup were paid
        return [f"model '{spec.model}' is a name orch reads as the shape of {model.name}, not a Hugging Face "
                f"repository to download: give the repository's org/name id (e.g. {model.name})"]
    if downloads and folder.is_dir():  # mounted from here: the trainer refuses one it cannot build a tokenizer from
        try:
            check_model_and_tokenizer(replace(spec, model=str(folder)), base_dir)
        except UserError as exc:
            problems.append(str(exc).rstrip("."))
    # a dry run's task declares the secret, which `sky launch --secret HF_TOKEN` sends from where it runs
    if cloud and launching and (gated := _gated_problem(spec, model)):
        problems.append(gated)
    return problems


def _folder_and_model(spec: JobConfig, base_dir: Path) -> tuple[Path, ModelShape]:
    """The job's model as a folder beside the job would be (wherever orch runs from), and its shape: a UserError for
    a model orch does not describe."""
    folder = base_dir / checks.user_path(spec.model)
    return folder, get_model(str(folder) if folder.is_dir() else spec.model)


def _gated_problem(spec: JobConfig, model: ModelShape) -> str | None:
    """A gated model with no HF_TOKEN here to pass a cloud VM; random weights (`random:`) download nothing."""
    if spec.model.startswith(RANDOM_PREFIX) or checks.secret_env("HF_TOKEN"):
        return None
    # the id the trainer downloads: a copy under another org (NousResearch/Meta-Llama-3-8B) is not gated as Meta's is
    downloaded = spec.model if "/" in spec.model else model.name
    if not is_gated(downloaded):
        return None
    return (f"{downloaded} is gated on the Hugging Face Hub: accept its licence there and set HF_TOKEN (passed to "
            "the VM as a SkyPilot secret)")


def vm_package_problems(spec: JobConfig) -> list[str]:
    """The settings the cloud VM's setup cannot serve (unsupported_in_cloud), and W&B settings its wandb.init would
    refuse, as pre-flight problems."""
    problems = [problem] if (problem := unsupported_in_cloud(spec)) else []
    if spec.report_to == "wandb" and (tracker := tracker_env_problem()):
        problems.append(tracker)
    return problems


def home_problems(spec: JobConfig, job_path: Path) -> list[str]:
    """ORCH_HOME is not a folder the job reads whole (its dataset's, model's, tokenizer's) nor inside one: its run
    folders were written into the data, the trainer refused its own --output there only once it had started, and
    every later plan of the job read orch's files as data."""
    home = checks.resolved(orch_home(), "ORCH_HOME")
    if (folder := checks.read_folder_holding(home, read_folders(spec, Path(job_path).parent))) is None:
        return []
    return [f"ORCH_HOME {home} is inside {folder}, which the job reads: set ORCH_HOME to a folder outside it"]


def tracker_problems(spec: JobConfig) -> list[str]:
    """A local run's tracker package (`report_to`) is installed here: the trainer refused it only once started, on a
    card metered from its first second. A cloud VM's setup installs it (remote_env.TRACKER_PACKAGES)."""
    return [problem] if (problem := missing_package(spec.report_to)) else []


def launch_problems(option: Option) -> list[str]:
    """Every cloud in the task is one SkyPilot knows."""
    offer = option.offer
    if offer.is_local:
        return []
    problems = []
    for other in option.offers:
        if other.provider != SSH_POOL_PROVIDER and not known_cloud(other.provider):
            problems.append(f"SkyPilot {skypilot_version()} has no cloud named {other.provider!r}")
    return problems


def check(spec: JobConfig, job_path: Path, option: Option, launching: bool = True) -> None:
    """Raise one UserError naming every problem that would make the trainer exit 2 on the VM, or the launch fail
    (`launching`: now, from here; a dry run's task is launched later, with its secrets given then)."""
    cloud = not option.offer.is_local
    here = [] if cloud else tracker_problems(spec) + unreachable_here(spec, Path(job_path).parent)
    problems = dataset_problems(spec, Path(job_path)) + home_problems(spec, job_path) + \
        model_problems(spec, cloud, Path(job_path).parent, launching) + \
        (vm_package_problems(spec) if cloud else here) + launch_problems(option)
    _refuse(problems, "launched")


def unreachable_here(spec: JobConfig, base_dir: Path) -> list[str]:
    """What a run on this machine downloads (the model, a tokenizer or dataset named by hub id) that is neither in
    the Hugging Face cache nor reachable: a local launch started a trainer, recorded and charged, that could only
    fail, and the scheduler placed such a job on a local card. A cloud VM downloads them itself."""
    folder, _ = _folder_and_model(spec, base_dir)
    problems = [] if folder.is_dir() else [model_unreachable(spec.model)]
    if spec.tokenizer is not None and not (base_dir / checks.user_path(spec.tokenizer)).is_dir():
        problems.append(tokenizer_unreachable(spec.tokenizer))
    for name in (spec.dataset, spec.eval_dataset):
        if name is not None and not (base_dir / checks.user_path(name)).exists() and not looks_like_a_file(name):
            problems.append(dataset_unreachable(name))
    return [problem.rstrip(".") for problem in problems if problem]


def check_queued(spec: JobConfig, job_path: Path) -> None:
    """`check`'s part that holds on any target, for a job queued before one is chosen: its dataset and its model.
    What only a cloud run needs (a gated model's HF_TOKEN, the VM's packages, a cloud SkyPilot knows) waits for the
    scheduler's pass, which runs `check` on the offer it picks. A job without a dataset was queued, then its trainer
    refused it on every attempt the scheduler made."""
    _refuse(dataset_problems(spec, Path(job_path)) + home_problems(spec, job_path) +
            model_problems(spec, False, Path(job_path).parent), "queued")


def cloud_only_problems(spec: JobConfig, job_path: Path) -> list[str]:
    """What would refuse a queued job on every cloud and not on this machine (a gated model without HF_TOKEN, a
    package the VM's setup does not install): said when it is queued, where the scheduler's pass rejected it for good
    once no local card could take it. The model's other problems hold on every target: pre-flight refused them."""
    gated = _gated_problem(spec, _folder_and_model(spec, Path(job_path).parent)[1])
    return ([gated] if gated else []) + vm_package_problems(spec)


def check_cache_first(job_path: Path, done: str) -> None:
    """The model a job builds offline needs a usable ORCH_CACHE (build_folder_problem), said before the job's data
    is counted: that count, which it cannot keep there either, took 11 s before `check` refused the job. The job
    file is read as written (not sized); a job that cannot be read is left to the plan to say what is wrong."""
    from trainer.job_file import load_config

    try:
        model = load_config(job_path)[0].model
    except UserError:
        return
    if problem := build_folder_problem(model):
        _refuse([problem], done)


def _refuse(problems: list[str], done: str) -> None:
    if problems:
        raise UserError("pre-flight: " + "; ".join(problems) + f". Nothing was {done}.")
