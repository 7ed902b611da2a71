"""The SkyPilot launcher against SkyPilot's real Task, YAML loader, catalog and optimizer: offline, no credentials,
no API server. Enabled clouds are patched the way SkyPilot's own dry-run tests do it (tests/common_test_fixtures.py,
`enable_all_clouds`), limited to the clouds the offline catalog copy holds."""

import dataclasses
import json
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gpu_catalog.models import get_model
from gpu_catalog.offers import cloud_offers
from orchestrator.cli.main import app
from orchestrator.job import load_job
from orchestrator.planner import PlanPolicy, plan
from tests.conftest import OFFLINE_CLOUDS, REPO

QLORA_JOB = REPO / "examples" / "llama31-8b-qlora.yaml"


def planned(allow_spot=True, budget=20.0):
    cloud_offers.cache_clear()
    spec = load_job(QLORA_JOB)
    model = get_model(spec.model)
    offers = [o for o in cloud_offers()[0] if o.provider in OFFLINE_CLOUDS]
    result = plan(spec, model, offers, PlanPolicy(budget_usd=budget, allow_spot=allow_spot))
    assert result.chosen is not None
    return spec, model, result.chosen


def task_for(sky, tmp_path, allow_spot=True):
    from orchestrator.launch.sky_task import build_task

    spec, model, chosen = planned(allow_spot)
    return build_task(spec, QLORA_JOB, chosen, 20.0, "r-test", model, tmp_path), chosen


def test_the_tasks_setup_checks_the_disk_room_the_job_needs(sky, tmp_path):
    """Lambda and Seeweb boot a fixed disk whatever `disk_size` asks: the setup SkyPilot runs first compares the
    disk's free space with what this job needs (its download, checkpoints and weights, and the stack)."""
    from orchestrator.launch.sky_task import free_disk_gib

    task, chosen = task_for(sky, tmp_path)
    spec, model, _ = planned()
    needed_gib = free_disk_gib(model, spec, chosen.offer.gpu)
    assert needed_gib > 15 and f'if [ "$free_gib" -lt {needed_gib} ]' in task.setup
    assert task.setup.index("free_gib") < task.setup.index("pip install")


@pytest.mark.parametrize("allow_spot", [True, False], ids=["spot", "on-demand"])
def test_skypilots_optimizer_picks_the_gpu_orch_planned(sky, allow_spot):
    """Among the clouds that can take orch's task (a spot run needs bucket mounting and autodown), SkyPilot's own
    optimizer picks the cloud and price orch planned."""
    from sky.utils import registry

    from orchestrator.delivery import Delivery, delivery_for

    _, _, chosen = planned(allow_spot)
    offer = chosen.offer
    launchable = sorted({o.provider for o in cloud_offers()[0] if o.provider in OFFLINE_CLOUDS
                         and o.spot == offer.spot and isinstance(delivery_for(o), Delivery)})
    with sky.Dag() as dag:
        task = sky.Task(name="probe", run="true")
        task.set_resources({sky.Resources(cloud=registry.CLOUD_REGISTRY.from_str(p),
                                          accelerators={offer.accelerator: 1}, use_spot=offer.spot)
                            for p in launchable})
    sky.Optimizer.optimize(dag, minimize=sky.OptimizeTarget.COST, quiet=True)
    best = task.best_resources
    assert str(best.cloud).lower() == offer.provider
    assert best.get_cost(3600) == pytest.approx(offer.usd_per_hour)
    assert best.use_spot == offer.spot


@pytest.mark.parametrize("optimizer, state_bytes", [("adamw_8bit", 2), ("adamw", 4), ("adamw_cpu_offload", 8)])
def test_a_full_fine_tunes_disk_holds_its_checkpoints_at_their_peak(sky, tmp_path, optimizer, state_bytes):
    """An 8B full fine-tune's task asked for 100 GB, sized for its 16-bit weights: each checkpoint is its bf16
    weights and their optimizer state (32-48 GB), three exist while the next is written, and the run died at a save
    after the VM was paid for. The disk holds the download, three checkpoints and the final weights, past 50 GiB for
    the environment; a QLoRA's adapters still fit the smallest disk."""
    from orchestrator.launch.sky_task import build_task

    spec = dataclasses.replace(load_job(QLORA_JOB), method="full", quant_bits=None, optimizer=optimizer,
                               precision="bf16")
    model = get_model(spec.model)
    offers = [o for o in cloud_offers()[0] if o.provider in OFFLINE_CLOUDS and o.gpu.vram_gib >= 80]
    chosen = plan(spec, model, offers, PlanPolicy(budget_usd=1e6)).chosen
    disks = {r.disk_size for r in build_task(spec, QLORA_JOB, chosen, 1e6, "r-full", model, tmp_path).resources}
    gib = 1024 ** 3
    needed_gib = 50 + (2 * model.params + 3 * model.params * (2 + state_bytes) + 2 * model.params) / gib
    assert len(disks) == 1 and needed_gib <= min(disks) < needed_gib + 1, (disks, needed_gib)
    qlora, _ = task_for(sky, tmp_path / "qlora")
    assert {r.disk_size for r in qlora.resources} == {100}


@pytest.mark.parametrize("allow_spot", [True, False], ids=["spot", "on-demand"])
def test_task_round_trips_through_skypilots_yaml_loader(sky, tmp_path, allow_spot):
    from sky.utils import yaml_utils

    task, chosen = task_for(sky, tmp_path, allow_spot)
    loaded = sky.Task.from_yaml_str(yaml_utils.dump_yaml_str(task.to_yaml_config()))
    assert (loaded.name, loaded.run, loaded.setup, loaded.envs) == (task.name, task.run, task.setup, task.envs)
    assert loaded.file_mounts == task.file_mounts and "/orch/job.yaml" in loaded.file_mounts
    (original,), (resources,) = task.resources, loaded.resources
    assert resources.accelerators == {chosen.offer.accelerator: 1} == original.accelerators
    assert str(resources.cloud).lower() == chosen.offer.provider and resources.region == chosen.offer.region
    assert resources.use_spot == chosen.offer.spot and resources.disk_size == original.disk_size
    assert set(loaded.storage_mounts) == ({"/orch/output"} if chosen.offer.spot else set())
    # the job file the VM reads points at the mounted dataset, and the run arms both budget guards
    assert "timeout --signal=TERM" in loaded.run and "--set budget_usd=" in loaded.run


def test_secrets_travel_as_secrets_and_never_print(sky, tmp_path, monkeypatch):
    from orchestrator.launch.sky_task import task_yaml

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    task, _ = task_for(sky, tmp_path)
    assert task.secrets["HF_TOKEN"].get_secret_value() == "hf_not_a_real_token_123"
    assert "hf_not_a_real_token_123" not in task_yaml(task)
    assert "HF_TOKEN" not in task.envs


def trainable_job(tmp_path) -> Path:
    """The QLoRA example on the tiny local dataset instead of its hub dataset, so nothing needs the network."""
    raw = yaml.safe_load(QLORA_JOB.read_text(encoding="utf-8"))
    for key in ("dataset_config", "dataset_split", "dataset_columns", "eval_dataset", "eval_split"):
        raw.pop(key, None)
    raw["dataset"] = str(REPO / "examples" / "data" / "tiny_instruct.jsonl")
    job = tmp_path / "qlora.yaml"
    job.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return job


def test_a_dry_runs_command_names_a_dash_file_from_its_folder_and_says_wandb_logs_offline_without_its_key(
        sky, tmp_path, monkeypatch):
    """`--out -x.yaml` printed `sky jobs launch ... -x.yaml`, which sky read as an option; `report_to: wandb` with no
    WANDB_API_KEY here wrote a task that asks for none, and the run logged offline on the VM, unsaid."""
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    job = trainable_job(tmp_path)
    job.write_text(job.read_text(encoding="utf-8") + "report_to: wandb\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["launch", str(job), "--budget", "20", "--providers", ",".join(OFFLINE_CLOUDS),
                                      "--dry-run", "--out", "-x.yaml"])
    assert result.exit_code == 0 and (tmp_path / "-x.yaml").is_file(), result.output
    command = next(line for line in result.stderr.splitlines() if "launch -" in line and "-x.yaml" in line)
    assert " ./-x.yaml" in command and " -x.yaml" not in command, command
    assert "note: WANDB_API_KEY is not set here, so the task does not ask for it and the run logs to W&B offline" \
        in " ".join(result.stderr.split()), result.stderr
    monkeypatch.setenv("WANDB_API_KEY", "wandb_not_a_real_key")
    said = CliRunner().invoke(app, ["launch", str(job), "--budget", "20", "--providers", ",".join(OFFLINE_CLOUDS),
                                    "--dry-run", "--out", "y.yaml"])
    assert "--secret WANDB_API_KEY" in said.stderr and "WANDB_API_KEY is not set here" not in said.stderr


def test_dry_run_writes_a_task_file_skypilot_loads_and_launches_nothing(sky, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    monkeypatch.chdir(tmp_path)
    before = set(Path(tempfile.gettempdir()).glob("orch-task-*"))
    result = CliRunner().invoke(app, ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers",
                                      ",".join(OFFLINE_CLOUDS), "--dry-run"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.stdout)  # stdout is the task file alone: the table went to stderr
    assert "python -m trainer /orch/job.yaml" in config["run"] and "SkyPilot's choice:" in result.stderr
    assert "qlora-task-files/, which only --out FILE writes" in result.stderr  # the files the YAML names
    assert "\x1b[" not in result.stdout and "hf_not_a_real_token_123" not in result.output
    assert not any(key.startswith("_") for key in config) and str(tmp_path) not in result.stdout
    assert config["secrets"] == {"HF_TOKEN": None}  # `sky launch --secret HF_TOKEN` supplies it; no placeholder
    assert set(Path(tempfile.gettempdir()).glob("orch-task-*")) == before  # nothing left behind
    out = tmp_path / "task.yaml"
    result = CliRunner().invoke(app, ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers",
                                      ",".join(OFFLINE_CLOUDS), "--dry-run", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    # mounts are relative to the folder it ran in, and name no staging folder that is gone once orch exits
    assert str(tmp_path) not in text and "orch-task-" not in text
    task = launched_by_hand(out)  # what `sky launch --env ORCH_LAUNCHED_AT=... task.yaml` reads, as it is
    assert "/orch/src" in task.file_mounts and "/orch/job.yaml" in task.file_mounts
    assert CliRunner().invoke(app, ["runs", "--json"]).stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["it's $(touch here).jsonl", "back\\slash.jsonl", "tab\tname.jsonl"])
def test_a_dataset_path_skypilot_cannot_copy_is_refused_before_a_task(sky, tmp_path, monkeypatch, name):
    """SkyPilot rsyncs a mount's source through a shell, quoted by Python's repr: a quote broke the launch after the
    VM was bought (and ran a `$(...)` in it here)."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / name
    data.write_bytes((REPO / "examples" / "data" / "tiny_instruct.jsonl").read_bytes())
    job = trainable_job(tmp_path)
    job.write_text(yaml.safe_dump({**yaml.safe_load(job.read_text(encoding="utf-8")), "dataset": str(data)}),
                   encoding="utf-8")
    result = CliRunner().invoke(app, ["launch", str(job), "--budget", "20", "--providers", ",".join(OFFLINE_CLOUDS),
                                      "--dry-run", "--out", str(tmp_path / "task.yaml")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "`dataset`" in result.stderr and "SkyPilot cannot copy to a VM" in result.stderr
    assert not (tmp_path / "task.yaml").exists() and not (tmp_path / "here").exists()


def launched_by_hand(task_file: Path):
    """The task `sky launch FILE` (or `sky jobs launch`) builds from a dry run's file."""
    from sky.utils import dag_utils

    (task,) = dag_utils.load_chain_dag_from_yaml(str(task_file)).tasks
    return task


def test_a_dry_runs_task_file_loads_as_written_and_says_what_its_window_counts_from(sky, tmp_path, monkeypatch):
    """The wall-clock window counts from the launch request: a task file written now and launched tomorrow must not
    carry today's time (its window would be spent before the VM is up). It says 0 (from the first start on the VM, less
    the estimated start-up the window holds), loads in SkyPilot as written, and its head says how to count provisioning
    and setup too."""
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "task.yaml"
    result = CliRunner().invoke(app, ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers",
                                      ",".join(OFFLINE_CLOUDS), "--dry-run", "--out", str(out)])
    assert result.exit_code == 0, result.output
    envs = yaml.safe_load(out.read_text())["envs"]
    assert envs["ORCH_LAUNCHED_AT"] == "0" and int(envs["ORCH_EST_STARTUP_S"]) > 0  # by hand: its start-up is spent
    assert "launch with `--env ORCH_LAUNCHED_AT=$(date +%s)`" in out.read_text().split("\n", 2)[1]
    assert sky.Task.from_yaml(str(out)).envs["ORCH_LAUNCHED_AT"] == "0"


def test_a_dry_runs_window_takes_off_only_the_start_up_before_its_run_script(sky, tmp_path, monkeypatch):
    """The window counts from the run script's first start less the start-up before it: provisioning and setup. The
    model's download is the trainer's own, after that start: taken off too, a 70B QLoRA at a tight budget lost its 941
    s twice and was stopped at 85% of its training, with no final/."""
    from orchestrator.cost import GUESSED_STARTUP

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    out = tmp_path / "task.yaml"
    result = CliRunner().invoke(app, ["launch", str(REPO / "examples" / "llama31-8b-qlora.yaml"), "--budget", "20",
                                      "--providers", ",".join(OFFLINE_CLOUDS), "--dry-run", "--out", str(out)])
    assert result.exit_code == 0, result.output
    task = yaml.safe_load(out.read_text())
    spot = any(r.get("use_spot") for r in (task["resources"].get("any_of") or [task["resources"]]))
    guessed = GUESSED_STARTUP[spot]
    assert int(task["envs"]["ORCH_EST_STARTUP_S"]) == round(guessed.provision_s + guessed.setup_s)


def test_a_dry_runs_files_folder_of_the_users_is_replaced_only_with_force(sky, tmp_path, monkeypatch):
    """`<stem>-files/` is an output too: a folder of the user's under that name lost its src/ and had its job.yaml
    replaced by a dry run whose task file was new, so no --force was asked. Refused before planning now; with
    --force only what a dry run writes goes, and the folder it wrote is rewritten later without asking."""
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    monkeypatch.chdir(tmp_path)
    mine, out = tmp_path / "mine-files", tmp_path / "mine.yaml"
    (mine / "src").mkdir(parents=True)
    (mine / "src" / "important.txt").write_text("precious\n")
    (mine / "job.yaml").write_text("mine\n")
    (mine / "notes.txt").write_text("mine too\n")
    command = ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers", ",".join(OFFLINE_CLOUDS),
               "--dry-run", "--out", str(out)]
    refused = CliRunner().invoke(app, command)
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.output
    assert "(another task file's, or your own): pass --force" in refused.stderr
    assert (mine / "src" / "important.txt").read_text() == "precious\n" and (mine / "job.yaml").read_text() == "mine\n"
    assert not out.exists()
    forced = CliRunner().invoke(app, [*command, "--force"])
    assert forced.exit_code == 0, forced.output
    assert not (mine / "src" / "important.txt").exists() and (mine / "notes.txt").read_text() == "mine too\n"
    assert "/orch/job.yaml" in launched_by_hand(out).file_mounts and (mine / "src" / "trainer").is_dir()
    out.unlink()  # the task file gone, its folder orch's: a dry run rewrites it as it rewrote the task file
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0, again.output


def test_a_dry_runs_files_folder_that_is_a_link_to_nothing_is_said_to_be_one_before_planning(sky, tmp_path,
                                                                                            monkeypatch):
    """`<stem>-files` linked to a folder not there was found only at the write, after the plan, and said as a full
    disk ("File exists ... free space there"), --force or not."""
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    (tmp_path / "task-files").symlink_to(tmp_path / "gone")
    out = tmp_path / "task.yaml"
    command = ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers", ",".join(OFFLINE_CLOUDS),
               "--dry-run", "--out", str(out)]
    for forced in ([], ["--force"]):
        refused = CliRunner().invoke(app, [*command, *forced])
        assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.output
        assert f"which is a link to '{tmp_path / 'gone'}', which does not exist: fix or remove the link" in \
            " ".join(refused.stderr.split())
    assert not out.exists() and not (tmp_path / "gone").exists()


def test_a_dry_run_that_runs_out_of_disk_keeps_nothing_and_says_where(sky, tmp_path, monkeypatch):
    """A full disk said only "No space left on device", and left a half-staged folder that the same command, once
    there was room, refused without --force."""
    import errno
    import pathlib

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    out, real_write = tmp_path / "task.yaml", pathlib.Path.write_text

    def full_disk(path, *args, **kwargs):
        if path.name.startswith(f".{out.name}."):  # the task file's partial copy, before it replaces any
            real_write(path, "")  # the file made, and nothing written into it
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, *args, **kwargs)

    command = ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers", ",".join(OFFLINE_CLOUDS),
               "--dry-run", "--out", str(out)]
    with monkeypatch.context() as patch:
        patch.setattr(pathlib.Path, "write_text", full_disk)
        refused = CliRunner().invoke(app, command)
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.output
    assert f"{tmp_path / 'task-files'} failed (No space left on device)" in " ".join(refused.stderr.split())
    assert not out.exists() and not (tmp_path / "task-files").exists() and len(list(tmp_path.iterdir())) == 1
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0, again.output
    kept = out.read_bytes()
    with monkeypatch.context() as patch:  # a task replaced with --force is kept whole where the new one fails
        patch.setattr(pathlib.Path, "write_text", full_disk)
        assert CliRunner().invoke(app, [*command, "--force"]).exit_code == 2
    assert out.read_bytes() == kept


def test_a_dataset_folder_skypilots_upload_would_not_carry_whole_is_refused_before_any_vm(sky, tmp_path, monkeypatch):
    """SkyPilot uploads a folder with `rsync -a` and its ignore files: a data folder with the usual `*` .gitignore
    reached the VM empty, and one whose files link elsewhere (a Hugging Face cache snapshot) with links to nothing,
    each after the VM was paid for."""
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes((REPO / "examples" / "data" / "tiny_instruct.jsonl").read_bytes())
    job = trainable_job(tmp_path)
    job.write_text(job.read_text().replace(str(REPO / "examples" / "data" / "tiny_instruct.jsonl"), str(folder)))

    def dry_run():
        return CliRunner().invoke(app, ["launch", str(job), "--budget", "20", "--providers", ",".join(OFFLINE_CLOUDS),
                                        "--dry-run", "--out", str(tmp_path / "task.yaml"), "--force"])

    (folder / ".cache" / "huggingface").mkdir(parents=True)  # as huggingface_hub's local-dir download leaves it
    (folder / ".cache" / "huggingface" / ".gitignore").write_text("*\n")  # hides its own metadata alone
    (folder / ".gitignore").write_text("__pycache__/\n*.pyc\n.DS_Store\n")  # names nothing the job reads
    assert dry_run().exit_code == 0
    (folder / ".gitignore").write_text("# keep the data out of git\n*\n!.gitignore\n")
    refused = dry_run()
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.output
    said = " ".join(refused.stderr.split())
    assert f"holds {folder / '.gitignore'}, and SkyPilot's upload leaves out the files it names " \
           f"({folder / 'a.jsonl'} among them): put an empty .skyignore in the folder" in said
    (folder / ".skyignore").write_text("# nothing left out\n")
    assert dry_run().exit_code == 0
    (folder / "b.jsonl").symlink_to(REPO / "examples" / "data" / "tiny_instruct.jsonl")
    refused = dry_run()
    assert refused.exit_code == 2 and "a link SkyPilot uploads as a link, which the VM cannot follow" in \
        " ".join(refused.stderr.split())
    (folder / "b.jsonl").unlink()
    (folder / "b.jsonl").symlink_to("a.jsonl")  # relative, within the folder: copied as it is, and it holds
    assert dry_run().exit_code == 0


def test_a_link_in_a_dry_runs_files_folder_is_replaced_not_written_through(sky, tmp_path, monkeypatch):
    """A dry run wrote its job.yaml through a link left in its folder, replacing the file the link named."""
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    monkeypatch.chdir(tmp_path)
    out, elsewhere = tmp_path / "task.yaml", tmp_path / "elsewhere.yaml"
    command = ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers", ",".join(OFFLINE_CLOUDS),
               "--dry-run", "--out", str(out), "--force"]
    assert CliRunner().invoke(app, command).exit_code == 0
    elsewhere.write_text("keep\n")
    staged = tmp_path / "task-files" / "job.yaml"
    staged.unlink()
    staged.symlink_to(elsewhere)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert elsewhere.read_text() == "keep\n" and not staged.is_symlink()
    assert yaml.safe_load(staged.read_text())["dataset"].startswith("/orch/data/")  # the job the task mounts


def test_a_launched_task_counts_its_window_from_the_launch_request(sky, tmp_path):
    """Each launch (a first one, an `orch resume`) builds its task with its own launch time; provisioning, failover
    and setup are inside the window from then on."""
    import time

    before = int(time.time())
    task, _ = task_for(sky, tmp_path)
    assert before <= int(task.envs["ORCH_LAUNCHED_AT"]) <= time.time()


@pytest.mark.parametrize("allow_spot", [True, False], ids=["spot", "on-demand"])
def test_the_window_holds_the_start_up_and_the_budget_leaves_out_only_what_is_paid_after_it(sky, allow_spot):
    """The guard subtracted the *estimated* start-up and then counted from the first start: a slower provisioning
    or setup than guessed passed the budget. Now the guessed start-up changes nothing on the VM; the budget leaves
    out only the idle window before autodown and the controller's idle autostop."""
    from orchestrator.cost import CONTROLLER_IDLE_HOURS, CONTROLLER_USD_PER_HOUR
    from orchestrator.launch.sky_task import guard_for

    _, _, chosen = planned(allow_spot)
    slow = dataclasses.replace(chosen, estimate=dataclasses.replace(chosen.estimate, startup_hours=1.0))
    assert guard_for(chosen, chosen.delivery, 20.0) == guard_for(slow, slow.delivery, 20.0)
    controller = CONTROLLER_USD_PER_HOUR if chosen.delivery.managed else 0.0
    after = (chosen.delivery.idle_hours() * max(o.usd_per_hour for o in chosen.offers)
             + CONTROLLER_IDLE_HOURS * controller)
    guard = guard_for(chosen, chosen.delivery, 20.0)
    assert guard.train_budget_usd == pytest.approx(20.0 - after, abs=1e-4)
    # within a second: train_budget_usd is rounded to 4 decimals, the window is not
    assert abs(guard.wall_limit_s - guard.train_budget_usd / guard.usd_per_hour * 3600) <= 1


@pytest.mark.parametrize("allow_spot", [True, False], ids=["spot", "on-demand"])
def test_a_budget_of_the_plans_cost_leaves_the_trainer_its_whole_estimate_before_the_last_saves_grace(sky,
                                                                                                    allow_spot):
    """The run script stops the trainer SAVE_GRACE_S before the window ends, so its last save is inside the budget:
    with that reserve left out of the plan, a budget the plan took stopped the run 5 minutes before its end."""
    from orchestrator.launch.sky_task import SAVE_GRACE_S, guard_for

    _, _, chosen = planned(allow_spot)
    e = chosen.estimate
    guard = guard_for(chosen, chosen.delivery, e.cost_usd)
    assert guard.wall_limit_s - SAVE_GRACE_S >= e.hours * 3600 - 1, (guard.wall_limit_s, e.hours * 3600)
    assert e.parts_usd["last_save"] == pytest.approx(SAVE_GRACE_S / 3600 * chosen.offer.usd_per_hour)


def test_dry_run_json_is_json(sky, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    result = CliRunner().invoke(app, ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers",
                                      ",".join(OFFLINE_CLOUDS), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["launched"] is False and "accelerators" in data["task_yaml"]
    assert data["plan"]["chosen"]["parts_usd"]["train"] > 0


def test_a_job_without_a_dataset_stops_before_any_vm(sky, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    raw = yaml.safe_load(QLORA_JOB.read_text(encoding="utf-8"))
    job = tmp_path / "no-data.yaml"
    job.write_text(yaml.safe_dump({k: v for k, v in raw.items() if not k.startswith(("dataset", "eval_"))}))
    result = CliRunner().invoke(app, ["launch", str(job), "--budget", "20", "--providers",
                                      ",".join(OFFLINE_CLOUDS), "--dry-run"])
    assert result.exit_code == 2 and "names no dataset" in result.output and "Nothing was launched" in result.output


def test_an_ssh_node_pool_card_becomes_an_ssh_infra_task(sky, tmp_path, monkeypatch):
    from gpu_catalog.local import local_offers
    from gpu_catalog.owned import load_owned_hardware
    from orchestrator.launch.sky_task import build_task

    hardware = tmp_path / "hardware.yaml"
    hardware.write_text("cards:\n  - gpu: RTX 4090\n    ssh_pool: lab\n")
    monkeypatch.setenv("ORCH_HARDWARE", str(hardware))
    spec = load_job(QLORA_JOB)
    offers = [o for o in local_offers(load_owned_hardware(), []) if o.provider == "ssh"]
    chosen = plan(spec, get_model(spec.model), offers, PlanPolicy(budget_usd=100)).chosen
    assert chosen.offer.usd_per_hour > 0  # priced by orch's owned-hardware model, not SkyPilot's $0
    task = build_task(spec, QLORA_JOB, chosen, 100.0, "r-ssh", get_model(spec.model), tmp_path)
    config = task.to_yaml_config()
    assert config["resources"]["infra"] == "ssh/lab" and config["resources"]["accelerators"] == {"RTX4090": 1}


def test_metrics_come_back_from_the_log():
    from orchestrator.launch.sky_task import METRICS_BEGIN, METRICS_END
    from orchestrator.launch.skypilot import parse_metrics

    log = f"step 1\n{METRICS_BEGIN}\n{{\"status\": \"ok\", \"steps\": 3}}\n{METRICS_END}\nbye\n"
    assert parse_metrics(log) == {"status": "ok", "steps": 3}
    assert parse_metrics("crashed before the end") is None


@pytest.mark.parametrize("log_tail", ["orch: the wall-clock budget is spent\nORCH_TRAINER_EXIT=4\n",
                                      'ORCH_TRAINER_EXIT=4\nORCH_METRICS_BEGIN\n{"status": "preempted", "steps": 7}\n'
                                      "ORCH_METRICS_END\n"], ids=["before-the-trainer", "during-training"])
def test_a_stop_by_the_vms_wall_clock_guard_comes_back_as_a_budget_stop(log_tail):
    """The guard's exit 4 was never read: a run it stopped before the trainer started was recorded failed (exit 1),
    and one it stopped while training (the trainer, sent SIGTERM, wrote `preempted`) as preempted (exit 5)."""
    from orchestrator.launch.skypilot import parse_metrics

    metrics = parse_metrics("step 1\n" + log_tail)
    assert metrics["status"] == "budget_stopped" and "wall-clock" in metrics["message"]
    assert parse_metrics('ORCH_TRAINER_EXIT=5\nORCH_METRICS_BEGIN\n{"status": "preempted"}\nORCH_METRICS_END\n') == \
        {"status": "preempted"}  # a real preemption stays one


def test_a_launch_skypilot_refuses_is_recorded_as_failed(sky, tmp_path, monkeypatch):
    """Here SkyPilot cannot launch (no API server may start, no credentials): the run is recorded, not lost, and
    charged nothing."""
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")  # past pre-flight's gated-model check
    result = CliRunner().invoke(app, ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers",
                                      ",".join(OFFLINE_CLOUDS), "--yes", "--json"])
    assert result.exit_code == 1
    run = json.loads(result.stdout)["run"]
    assert run["status"] == "failed" and run["message"].startswith("SkyPilot could not launch")
    (recorded,) = json.loads(CliRunner().invoke(app, ["runs", "--json"]).stdout)
    assert recorded["run_id"] == run["run_id"] and recorded["target"] == "cloud"
    # it failed before SkyPilot took a request: no VM was asked for, so none is paid for (each scheduler retry of
    # such a launch was charged its seconds at the VM's price)
    assert recorded["request_id"] is None and recorded["cost_usd"] == 0


def test_skypilot_launches_the_very_instance_orch_planned_on_each_offline_cloud(sky, tmp_path):
    """orch's own task (not a probe) through SkyPilot's optimizer, for one offer of every GPU on every offline cloud,
    spot and on-demand: SkyPilot picks that offer's instance, region and price. Lambda's H100 is both
    gpu_1x_h100_sxm5 and gpu_1x_h100_pcie; a task that named only the accelerator got the cheaper PCIe card, while
    orch planned and priced the SXM one."""
    from orchestrator.job import job_from_dict
    from orchestrator.launch.sky_task import build_task

    raw = {"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "train_tokens": 10_000,
           "dataset": str(REPO / "examples" / "data" / "tiny_instruct.jsonl")}
    tiny = job_from_dict(raw)
    job = tmp_path / "tiny.yaml"
    job.write_text(yaml.safe_dump(raw))
    cloud_offers.cache_clear()
    firsts = {}
    for offer in cloud_offers()[0]:  # the offers orch plans on: the catalog's placeholder prices left out
        if offer.provider in OFFLINE_CLOUDS:
            firsts.setdefault((offer.provider, offer.instance_type, offer.spot), offer)
    checked = 0
    for offer in firsts.values():
        chosen = plan(tiny, get_model(tiny.model), [offer], PlanPolicy(budget_usd=1e6, allow_spot=True)).chosen
        if chosen is None:  # a cloud that cannot take the run (no spot, no autodown): test_sky_features.py
            continue
        task = build_task(tiny, job, chosen, 1e6, "r-instance", get_model(tiny.model), tmp_path / f"t{checked}")
        with sky.Dag() as dag:
            dag.add(task)
        sky.Optimizer.optimize(dag, minimize=sky.OptimizeTarget.COST, quiet=True)
        best = task.best_resources
        assert (str(best.cloud).lower(), best.region, best.instance_type, best.use_spot) == \
            (offer.provider, offer.region, offer.instance_type, offer.spot), offer
        assert best.get_cost(3600) == pytest.approx(offer.usd_per_hour)
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("job_name", ["qwen+lora", "a---b", "x_._y", "run-", "llama3.1_8b", "a+++b.", "Z"])
def test_every_job_name_orch_takes_makes_a_task_name_skypilot_launches(sky, job_name):
    """SkyPilot checks a task's name at launch (Task.validate), not when its file loads: `orch-qwen+lora` passed the
    dry run and was refused by `sky launch`."""
    from gpu_catalog.checks import SAFE_NAME
    from orchestrator.launch.sky_task import task_name

    assert SAFE_NAME.fullmatch(job_name)
    sky.Task(name=task_name(job_name), run="true").validate_name()
    assert task_name("llama31-8b-qlora") == "orch-llama31-8b-qlora"


def test_skypilot_is_told_this_homes_server_port_before_it_first_works_out_its_address(sky, monkeypatch):
    """SkyPilot keeps its server's address for the process once worked out. A SkyPilot call before the launch (a
    cloud check, a task built) kept the default port 46580, while orch started this HOME's server on its own port:
    every launch then failed with `Connection refused` on 46580."""
    from sky.server import common

    from orchestrator.launch.sky_server import _ENDPOINT_VAR, _PORT_VAR, home_port, import_sky

    for name in (_PORT_VAR, _ENDPOINT_VAR):
        monkeypatch.setenv(name, "x")  # restored (unset) after the test: import_sky sets the port itself
        monkeypatch.delenv(name)
    common.get_server_url.cache_clear()
    assert common.get_server_url().endswith(f":{common.DEFAULT_SERVER_PORT}")  # a call before orch's
    import_sky()
    assert common.get_server_url() == f"http://127.0.0.1:{home_port()}" and common.is_api_server_local()
    monkeypatch.setenv(_ENDPOINT_VAR, "http://sky.example:8080")  # the user's own server: left alone
    monkeypatch.delenv(_PORT_VAR)
    import_sky()
    assert common.get_server_url() == "http://sky.example:8080"
    common.get_server_url.cache_clear()


@pytest.mark.parametrize("spot_flag, command", [("--spot", "\n  sky jobs launch "), ("--no-spot", "\n  sky launch ")])
def test_a_dry_run_names_the_skypilot_command_its_task_needs(sky, tmp_path, monkeypatch, spot_flag, command):
    """A spot task is a managed job: its recovery and its `down` come from SkyPilot's jobs controller. `sky launch`
    of it (what the dry run said) started a bare spot VM that nothing recovers or takes down."""
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers",
                                      "nebius", spot_flag, "--dry-run", "--out", str(tmp_path / "task.yaml")])
    assert result.exit_code == 0, result.output
    assert command in result.stderr and (" spot" in result.stderr.split("chosen:")[1].split("\n")[0]) is \
        (spot_flag == "--spot")
    # launched by hand, no `orch runs` cancels a managed job SkyPilot keeps waiting for a spot VM: its head says so
    head = " ".join(line[2:] for line in (tmp_path / "task.yaml").read_text().splitlines() if line.startswith("# "))
    assert ("nothing cancels this managed job while SkyPilot waits" in head) is (spot_flag == "--spot")


def test_the_printed_sky_command_quotes_the_task_file(sky, tmp_path, monkeypatch):
    """`--out "my out/task 1.yaml"` was printed bare: pasted, sky got three arguments, and a `$(...)` in it ran."""
    import shlex

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my out").mkdir()
    out = tmp_path / "my out" / "t$(id) 1.yaml"
    result = CliRunner().invoke(app, ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers",
                                      "nebius", "--no-spot", "--dry-run", "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    command = result.stderr.split("\n  sky launch ")[1].split("\n")[0]  # a line of its own, to copy whole
    assert f" {shlex.quote(str(out))} " in command and "'" in shlex.quote(str(out))


@pytest.mark.parametrize("enabled, provider, spot, store", [
    (["Lambda", "Nebius"], "lambda", False, "NEBIUS"),  # Lambda has no store: the first enabled one orch copies from
    (["Nebius"], "nebius", True, "NEBIUS"),
    (["Azure", "AWS"], "azure", False, "S3"),  # Azure's own: `orch pull` cannot copy it home
    (["Azure"], "azure", True, "AZURE"),  # the only one: kept there, copied home by hand
    (["IBM", "Lambda"], "lambda", False, None),  # IBM's store cannot mount in MOUNT_CACHED mode: kept on the VM
    ([], "lambda", False, None),
])
def test_a_runs_output_goes_to_a_store_orch_can_bring_home_or_stays_on_the_vm(sky, tmp_path, monkeypatch, enabled,
                                                                              provider, spot, store):
    """SkyPilot puts a bucket without a store in the task cloud's store, else the first enabled storage cloud's:
    with Lambda alone it refused the launch, on IBM or OCI it failed after the VM was up (no MOUNT_CACHED), and
    Azure's left the output where `orch pull` could not reach it. The task names its store; with none, an on-demand
    run keeps its output on the VM (pulled home before teardown)."""
    from sky.data import storage as storage_lib

    from orchestrator.launch.sky_task import build_task

    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: enabled)
    offer = min((o for o in cloud_offers()[0] if o.provider == provider and o.spot == spot),
                key=lambda o: o.usd_per_hour)
    spec = load_job(QLORA_JOB)
    option = plan(spec, get_model(spec.model), [offer], PlanPolicy(budget_usd=1e6, allow_spot=spot)).chosen
    task = build_task(spec, QLORA_JOB, option, 1e6, "r-store", get_model(spec.model), tmp_path)
    mounts = task.to_yaml_config()["file_mounts"]
    if store is None:
        autostop = list(task.resources)[0].autostop_config
        assert "/orch/output" not in mounts and autostop.idle_minutes == 60
        assert autostop.wait_for.value == "jobs"  # an SSH session left open does not keep the VM up past the window
    else:
        assert mounts["/orch/output"]["store"] == store


def test_a_spot_run_with_no_store_to_keep_its_checkpoints_is_refused_before_any_vm(sky, tmp_path, monkeypatch):
    from sky.data import storage as storage_lib

    from gpu_catalog.errors import UserError
    from orchestrator.launch.sky_task import build_task

    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: ["Lambda"])
    spec, model, chosen = planned(allow_spot=True)
    assert chosen.offer.spot
    with pytest.raises(UserError, match=r"enable one \(`sky check`\), or launch on-demand \(--no-spot\)"):
        build_task(spec, QLORA_JOB, chosen, 20.0, "r-store", model, tmp_path)


def test_a_job_that_reports_to_wandb_gets_the_package_and_its_settings_on_the_vm(sky, tmp_path, monkeypatch):
    """The VM installed the pinned stack only, so a job with `report_to: wandb` was refused there (no wandb package)
    after the machine was paid for; and its WANDB_PROJECT stayed on the laptop, so the run went to project `orch`."""
    from orchestrator.launch.sky_task import build_task

    monkeypatch.setenv("WANDB_PROJECT", "my-project")
    spec, model, chosen = planned(allow_spot=False)
    plain = build_task(spec, QLORA_JOB, chosen, 20.0, "r-plain", model, tmp_path / "plain")
    assert "wandb" not in plain.setup and "WANDB_PROJECT" not in plain.envs
    wandb = dataclasses.replace(spec, report_to="wandb")
    task = build_task(wandb, QLORA_JOB, chosen, 20.0, "r-wandb", model, tmp_path / "wandb")
    assert "'wandb>=0.19'" in task.setup and task.envs["WANDB_PROJECT"] == "my-project"


def test_a_dry_run_with_no_storage_cloud_still_writes_the_task_and_says_what_a_launch_would_do(sky, tmp_path,
                                                                                             monkeypatch):
    """A spot dry run on a machine without cloud access stopped with the launch's refusal and wrote no task: the task
    is written with its bucket's store left to SkyPilot, and a note says what `orch launch` would do here."""
    from sky.data import storage as storage_lib

    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: [])
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "task.yaml"
    result = CliRunner().invoke(app, ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers",
                                      "nebius", "--spot", "--dry-run", "--out", str(out)])
    assert result.exit_code == 0, result.output
    task = launched_by_hand(out)
    assert "/orch/output" in task.storage_mounts and not task.storage_mounts["/orch/output"].stores
    assert "note: no storage cloud orch can use is enabled here" in " ".join(result.stderr.split())
    said = " ".join(result.stderr.split())
    assert "note: `orch launch` here would take H100 SXM (nebius" in said
    # before the command that runs the task: said after it, a newcomer had copied the command first
    assert said.index("here would take") < said.index("this runs it:")


def test_a_dry_run_names_the_offer_a_launch_here_would_take_instead_of_its_spot_choice(sky, tmp_path, monkeypatch):
    """The dry run showed a spot A100 at $0.41; `orch launch` here, with no storage cloud for spot checkpoints, then
    asked to confirm an on-demand L4 at $0.80: the dry run said neither that offer nor its price."""
    from sky.data import storage as storage_lib

    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: [])
    monkeypatch.chdir(tmp_path)
    args = [str(trainable_job(tmp_path)), "--budget", "20", "--target", "cloud"]
    dry = CliRunner().invoke(app, ["launch", *args, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    here = json.loads(dry.stdout)["launch_here"]
    launch_plan = CliRunner().invoke(app, ["launch", *args])  # no --yes, no terminal: refused, nothing launched
    assert "launching needs confirmation" in launch_plan.stderr
    # the offer named is the one the launch itself chose: its plan, shown before the confirmation
    gpu, where = here.split("would take ")[1].split(":")[0].rstrip(")").split(" (")  # `L4`, `gcp us-central1`
    assert json.loads(dry.stdout)["plan"]["chosen"]["spot"] is True
    assert f"chosen: {gpu} on {where}" in " ".join(launch_plan.stdout.split()), (here, launch_plan.stdout)


def test_a_dry_run_whose_output_stays_on_the_vm_says_how_to_copy_it_before_the_vm_goes(sky, tmp_path, monkeypatch):
    """Vast mounts no bucket: a task launched by hand from the file has no `orch launch` to pull its output home
    before the VM downs itself, and neither the file nor the dry run said so."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "task.yaml"
    result = CliRunner().invoke(app, ["launch", str(trainable_job(tmp_path)), "--budget", "20", "--providers",
                                      "vast", "--no-spot", "--dry-run", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "/orch/output" not in launched_by_hand(out).storage_mounts
    said = " ".join(result.stderr.split())
    # the command names the cluster the note copies from (SkyPilot made a name up, for the user to look for)
    cluster = re.search(r"\n  sky launch -c (orch-[0-9a-f]{8}) ", result.stderr).group(1)  # a line of its own
    assert "note: the output stays on the VM's disk (/orch/output)" in said
    assert f"rsync -a {cluster}:/orch/output/" in said and f"rsync -a {cluster}:/orch/output/" in out.read_text()
    head = " ".join(line.lstrip("# ") for line in out.read_text().splitlines() if line.startswith("#"))
    assert "stays on the VM's disk" in head and "idle minutes after the job" in head


@pytest.mark.parametrize("settings, package", [({"loss": "fused"}, "'liger-kernel>=0.5'"),
                                               ({"optimizer": "adamw_cpu_offload"}, "'torchao>=0.10'")])
def test_a_setting_that_imports_a_package_gets_it_on_the_vm(sky, tmp_path, settings, package):
    """Setup installed the pinned stack only: adamw_cpu_offload was refused on the VM (no torchao) after it was paid
    for, and `loss: fused` fell back to `chunked` (no liger-kernel), whose logits the plan had not sized."""
    from orchestrator.launch.sky_task import build_task

    spec, model, chosen = planned(allow_spot=False)
    plain = build_task(spec, QLORA_JOB, chosen, 20.0, "r-plain", model, tmp_path / "plain")
    assert package not in plain.setup
    task = build_task(dataclasses.replace(spec, **settings), QLORA_JOB, chosen, 20.0, "r-set", model,
                      tmp_path / "set")
    assert package in task.setup


def test_a_secret_goes_only_to_a_job_that_uses_it(sky, tmp_path, monkeypatch):
    """Every secret set here went to every VM (a third-party host's included): a W&B key to a job that never reports
    to W&B, HF_TOKEN to a model built on the VM. HF_TOKEN goes where something comes from the hub (a gated model,
    tokenizer or dataset needs it); WANDB_API_KEY with report_to wandb."""
    from orchestrator.launch.sky_task import build_task

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    monkeypatch.setenv("WANDB_API_KEY", "not_a_real_key")
    _, model, chosen = planned(allow_spot=False)

    def secrets(name: str, **settings) -> set:
        job = tmp_path / f"{name}.yaml"
        raw = {"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "train_tokens": 10_000,
               "dataset": str(REPO / "examples" / "data" / "tiny_instruct.jsonl"), **settings}
        job.write_text(yaml.safe_dump(raw), encoding="utf-8")
        spec = load_job(job)
        return set(build_task(spec, job, chosen, 20.0, f"r-{name}", model, tmp_path / name).secrets)

    assert secrets("tiny") == set()
    assert secrets("random", model="random:meta-llama/Llama-3.1-8B") == set()
    assert secrets("wandb", report_to="wandb") == {"WANDB_API_KEY"}
    assert secrets("hub-data", dataset="org/hub-set") == {"HF_TOKEN"}
    assert secrets("hub-tokenizer", tokenizer="org/tokenizer") == {"HF_TOKEN"}
    assert secrets("hub-model", model="meta-llama/Llama-3.1-8B", report_to="wandb") == {"HF_TOKEN", "WANDB_API_KEY"}


def test_a_damaged_metrics_block_is_no_metrics_even_beside_the_guards_exit():
    from orchestrator.launch.skypilot import parse_metrics

    block = "ORCH_METRICS_BEGIN\n[1, 2]\nORCH_METRICS_END\n"
    assert parse_metrics(block) is None
    assert parse_metrics("ORCH_TRAINER_EXIT=4\n" + block)["status"] == "budget_stopped"  # it raised AttributeError


def test_a_dry_run_of_a_gated_model_declares_its_token_without_needing_it_here(sky, tmp_path, monkeypatch):
    """The README's own dry run exited 2 without HF_TOKEN, though its task never holds the token: `sky launch
    --secret HF_TOKEN` sends it from wherever the task is launched. A launch from here still needs it."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    job = REPO / "examples" / "llama31-8b-qlora.yaml"
    result = CliRunner().invoke(app, ["launch", str(job), "--budget", "20", "--target", "cloud", "--providers",
                                      "nebius", "--dry-run", "--out", str(tmp_path / "task.yaml")],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((tmp_path / "task.yaml").read_text())["secrets"] == {"HF_TOKEN": None}
    assert "--secret HF_TOKEN" in result.stderr
    launched = CliRunner().invoke(app, ["launch", str(job), "--budget", "20", "--target", "cloud", "--providers",
                                        "nebius", "--yes"])
    assert launched.exit_code == 2 and "set HF_TOKEN" in launched.output


def test_the_printed_launch_command_asks_only_the_secrets_the_task_declares(sky, tmp_path, monkeypatch):
    """A secret's name anywhere in the task (here its files folder, from --out) put `--secret WANDB_API_KEY` in the
    command: `sky launch` then refused it unset, or sent the key to a VM that never reads it."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "WANDB_API_KEY-HF_TOKEN.yaml"
    result = CliRunner().invoke(app, ["launch", str(REPO / "examples" / "qwen25-14b-lora.yaml"), "--budget", "50",
                                      "--target", "cloud", "--providers", "nebius", "--dry-run", "--out", str(out)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "WANDB_API_KEY-HF_TOKEN" in out.read_text() and "secrets" not in yaml.safe_load(out.read_text())
    assert "from this folder, this runs it:" in result.stderr and "--secret" not in result.stderr


def test_a_dry_run_of_a_public_model_declares_no_token_it_was_not_given(sky, tmp_path, monkeypatch):
    """HF_TOKEN was declared for any hub download: `sky launch` refused the file without a token, and with
    `--secret HF_TOKEN` unset here too. W&B logs offline without its key: not declared either."""
    from orchestrator.launch.sky_task import build_task

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    spec, model, chosen = planned()

    def declared(model_id: str) -> set:
        folder = tmp_path / model_id.replace("/", "_")
        folder.mkdir(exist_ok=True)
        job = folder / "job.yaml"  # the task stages the job file, whose model the VM downloads
        job.write_text(yaml.safe_dump({**yaml.safe_load(QLORA_JOB.read_text()), "model": model_id,
                                       "report_to": "wandb"}), encoding="utf-8")
        changed = dataclasses.replace(spec, model=model_id, report_to="wandb")
        return set(build_task(changed, job, chosen, 20.0, "r-secrets", model, folder,
                              for_launch=False).secrets or {})

    assert declared("Qwen/Qwen2.5-7B") == set()
    assert declared("meta-llama/Llama-3.1-8B") == {"HF_TOKEN"}  # `sky launch --secret HF_TOKEN` sends it
    monkeypatch.setenv("WANDB_API_KEY", "not-a-real-key")
    assert declared("Qwen/Qwen2.5-7B") == {"WANDB_API_KEY"}


def test_a_launch_whose_output_stays_on_the_vm_is_refused_where_the_budget_no_longer_covers_it(sky, tmp_path,
                                                                                              monkeypatch):
    """The plan priced a bucket and 5 idle minutes; with no storage cloud enabled the launch kept the output on the
    VM and took its idle hour out of the budget: a budget just above the plan's cost left the trainer $0 and a
    window of 0 s (no limit to `timeout`), after the VM and its setup were paid for."""
    from sky.data import storage as storage_lib

    from gpu_catalog.errors import UserError
    from orchestrator.launch.sky_task import build_task

    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: [])
    offer = min((o for o in cloud_offers()[0] if o.provider == "lambda" and not o.spot), key=lambda o: o.usd_per_hour)
    spec = load_job(QLORA_JOB)
    option = plan(spec, get_model(spec.model), [offer], PlanPolicy(budget_usd=1e6, allow_spot=False)).chosen
    assert option.delivery.output == "bucket" and option.delivery.idle_minutes == 5  # as the plan priced it
    extra_usd = offer.usd_per_hour * 55 / 60
    budget_usd = option.estimate.cost_usd + extra_usd / 2
    with pytest.raises(UserError, match=r"idles up to 60 min after the job before it downs itself: \$.* more than "
                                        r"the plan counted, .* raise --budget to at least \$"):
        build_task(spec, QLORA_JOB, option, budget_usd, "r-short", get_model(spec.model), tmp_path)
    task = build_task(spec, QLORA_JOB, option, option.estimate.cost_usd + extra_usd * 1.01, "r-enough",
                      get_model(spec.model), tmp_path)
    assert "/orch/output" not in task.to_yaml_config()["file_mounts"] and int(task.envs["ORCH_WALL_LIMIT_S"]) > 0
    monkeypatch.setattr(storage_lib, "get_cached_enabled_storage_cloud_names_or_refresh", lambda *a, **k: ["Nebius"])
    with pytest.raises(UserError, match=r"the \$0\.010 budget leaves nothing to train on after what the cloud bills"):
        build_task(spec, QLORA_JOB, option, 0.01, "r-nothing", get_model(spec.model), tmp_path)


def test_a_missing_catalog_is_named_alone_among_the_clouds_of_a_task(sky):
    """A task on Nebius with an AWS failover: the refusal named "aws, nebius", with Nebius's catalog here."""
    import requests

    from gpu_catalog.errors import UserError
    from orchestrator.launch.sky_task import _catalog_at_hand

    with pytest.raises(UserError, match=r"^SkyPilot has no catalog of aws on this machine"):
        with _catalog_at_hand(["aws", "nebius"]):
            raise requests.exceptions.ConnectionError("Failed to resolve 'raw.githubusercontent.com'")


def test_a_dry_run_on_a_cloud_whose_catalog_skypilot_cannot_fetch_says_so_in_one_line(sky, tmp_path, monkeypatch):
    """An offer from ORCH_SKY_CATALOGS on a cloud SkyPilot never fetched a catalog of: offline, SkyPilot logged
    "Failed to fetch AWS catalog" and the HTTP library's error came out as the refusal, naming no fix."""
    import requests

    def offline(*args, **kwargs):  # the one call that would reach the network
        raise requests.exceptions.ConnectionError("Failed to resolve 'raw.githubusercontent.com'")

    monkeypatch.setattr(requests, "get", offline)
    (tmp_path / "catalogs" / "aws").mkdir(parents=True)
    (tmp_path / "catalogs" / "aws" / "vms.csv").write_text(
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region,GpuInfo\n"
        "g6.xlarge,L4,1,4,16,0.80,,us-east-1,\n", encoding="utf-8")
    monkeypatch.setenv("ORCH_SKY_CATALOGS", str(tmp_path / "catalogs"))
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_123")
    job = trainable_job(tmp_path)
    # with --out the HTTP error (an OSError) was said as a full disk: "free space there, or choose another --out"
    (tmp_path / "task").mkdir()
    for out in ([], ["--out", str(tmp_path / "task" / "t.yaml")]):
        cloud_offers.cache_clear()
        result = CliRunner().invoke(app, ["launch", str(job), "--budget", "100", "--providers", "aws", "--no-spot",
                                          "--dry-run", *out])
        cloud_offers.cache_clear()
        assert result.exit_code == 2, result.output
        assert result.stderr == ("error: SkyPilot has no catalog of aws on this machine and cannot download one (no "
                                 "network): `orch catalog refresh` fetches SkyPilot's catalogs with the network (or "
                                 "copies them --from a folder), or plan on the clouds whose catalogs are here (`orch "
                                 "catalog offers`).\n")
    assert not any((tmp_path / "task").iterdir())  # nothing of the task kept
