"""The cloud run's own behaviour, on this machine: the run script under a stand-in trainer (exit codes, the
wall-clock guard across restarts), the recovery settings SkyPilot reads, pre-flight, and bringing the output home
with only the calls that reach a cloud recorded."""

import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpu_catalog.gpus import get_gpu
from orchestrator.cli.main import app
from orchestrator.delivery import REMOTE_OUTPUT
from orchestrator.job import job_from_dict
from orchestrator.launch.sky_task import SAVE_GRACE_S
from orchestrator.preflight import dataset_problems, model_problems
from tests.conftest import REPO, make_offer, write_weights
from trainer.config import config_from_dict

FAKE_TRAINER = """#!/bin/sh
# stands in for `python -m trainer ...`: writes metrics.json, sleeps if asked, exits with $FAKE_EXIT
out=$(echo "$@" | sed 's/.*--output \\([^ ]*\\).*/\\1/')
echo "{\\"status\\": \\"fake\\", \\"args\\": \\"$*\\"}" > "$out/metrics.json"
[ -z "$FAKE_IGNORE_TERM" ] || trap '' TERM  # still saving when the guard's TERM comes
sleep "${FAKE_SLEEP:-0}"
exit "${FAKE_EXIT:-0}"
"""


def run_script_here(tmp_path: Path, exit_code: int, wall_limit_s: int = 3600, sleep_s: float = 0,
                    launched_s_ago: int | str | None = 0, sky=None, ignore_term: bool = False,
                    grace_s: int | None = None, est_startup_s: int | None = None) -> tuple:
    """The run script as SkyPilot starts it, for a launch requested `launched_s_ago` seconds ago (text: the launch
    time as given; None: none given). Given `sky` (the fixture), followed as SkyPilot runs it by its own wait for
    cached bucket uploads (TaskCodeGen), whose first command, a stand-in `findmnt`, leaves `flush-reached`.
    `est_startup_s`: the estimated start-up the task file carries."""
    from orchestrator.launch.sky_task import run_script

    out = tmp_path / "output"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    python = bin_dir / "python"
    python.write_text(FAKE_TRAINER)
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    findmnt = bin_dir / "findmnt"
    findmnt.write_text(f"#!/bin/sh\ntouch {tmp_path / 'flush-reached'}\n")
    findmnt.chmod(findmnt.stat().st_mode | stat.S_IEXEC)
    script = run_script().replace(REMOTE_OUTPUT, str(out))
    if grace_s is not None:  # the guard's TERM comes this long before the window's end, and its KILL at the end
        script = script.replace(f"grace={SAVE_GRACE_S} ", f"grace={grace_s} ")
    if sky is not None:
        from sky.backends.task_codegen import TaskCodeGen

        script = TaskCodeGen.build_task_bash_script(script)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ORCH_WALL_LIMIT_S": str(wall_limit_s),
           "ORCH_TRAIN_BUDGET_USD": "10", "ORCH_USD_PER_HOUR": "2.0", "FAKE_EXIT": str(exit_code),
           "FAKE_SLEEP": str(sleep_s), **({"FAKE_IGNORE_TERM": "1"} if ignore_term else {}),
           **({"ORCH_EST_STARTUP_S": str(est_startup_s)} if est_startup_s is not None else {})}
    env.pop("ORCH_LAUNCHED_AT", None)
    if launched_s_ago is not None:
        env["ORCH_LAUNCHED_AT"] = launched_s_ago if isinstance(launched_s_ago, str) else \
            str(int(time.time()) - launched_s_ago)
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, out


def test_the_trainer_accepts_the_output_folder_the_run_script_prepared(tmp_path):
    """The script tees the log into the output folder as the trainer starts: the trainer's refusal of a folder
    holding files of its own must not take it for a user's (every cloud run exited 2 at its first start)."""
    from orchestrator.launch.sky_task import run_script

    out, bin_dir = tmp_path / "output", tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"  # the trainer's own check of --output, then what the stand-in trainer does
    python.write_text(f"#!{sys.executable}\nimport sys\nfrom pathlib import Path\n"
                      f"sys.path.insert(0, {str(REPO)!r})\nfrom trainer.__main__ import check_run_folder\n"
                      "out = Path(sys.argv[sys.argv.index('--output') + 1])\ncheck_run_folder(out)\n"
                      "(out / 'metrics.json').write_text('{}')\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ORCH_WALL_LIMIT_S": "3600",
           "ORCH_TRAIN_BUDGET_USD": "10", "ORCH_USD_PER_HOUR": "2.0", "ORCH_LAUNCHED_AT": str(int(time.time()))}
    done = subprocess.run(["bash", "-c", run_script().replace(REMOTE_OUTPUT, str(out))], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "holds files of its own" not in done.stdout


@pytest.mark.parametrize("code", [0, 2, 3, 4, 5])
def test_the_run_ends_with_the_trainers_exit_and_prints_its_metrics(tmp_path, code, sky):
    """...after SkyPilot's wait for the bucket's uploads, which runs after the script's last line (an `exit` there
    skipped it, and a spot run's final/ and last checkpoint could be cut off at teardown)."""
    returncode, stdout, out = run_script_here(tmp_path, code, sky=sky)
    assert returncode == code and f"ORCH_TRAINER_EXIT={code}" in stdout
    assert (tmp_path / "flush-reached").exists()
    assert "ORCH_METRICS_BEGIN" in stdout and '"status": "fake"' in stdout
    assert (out / "train.log").exists()


def test_the_wall_clock_guard_counts_from_the_launch_request_across_recoveries(tmp_path):
    """SkyPilot's recoveries of one launch start the run script again with the task's own envs: the window they
    share counts from the launch request (it counted from the first start, kept in the output folder)."""
    returncode, stdout, out = run_script_here(tmp_path, 5, wall_limit_s=3600, launched_s_ago=600)
    assert returncode == 5  # preempted: SkyPilot recovers it
    returncode, stdout, _ = run_script_here(tmp_path, 0, wall_limit_s=3600, launched_s_ago=3700)
    assert returncode == 4 and "wall-clock budget is spent" in stdout


def budget_given(stdout: str) -> float:
    return float(stdout.split("budget_usd=")[1].split()[0].rstrip('"}'))


def share_of_10_usd(elapsed_s: int, wall_limit_s: int = 3600) -> float:
    """The trainer's budget of the $10 run_script_here gives: its share of the window left to train, that is before
    the last save's grace."""
    return round(10 * (wall_limit_s - elapsed_s - SAVE_GRACE_S) / wall_limit_s, 4)


def test_the_trainer_gets_the_share_of_budget_left_in_the_window(tmp_path):
    """Provisioning and setup took half the window before the first start: the trainer gets half the budget (it got
    all of it, and a slow start passed the budget)."""
    _, stdout, _ = run_script_here(tmp_path, 0, wall_limit_s=3600, launched_s_ago=1800)
    assert share_of_10_usd(1800) - 0.03 < budget_given(stdout) <= share_of_10_usd(1800)


def test_a_resumed_run_gets_a_window_of_its_own_and_reports_only_its_own_metrics(tmp_path):
    """`orch resume` launches again into the bucket an earlier session filled, 2 h later: the new launch's window
    counts from its own request (it counted from the first session's start and stopped at once with exit 4), and the
    earlier session's metrics.json is never printed as this start's."""
    out = tmp_path / "output"
    out.mkdir()
    (out / ".orch_started_at").write_text(str(int(time.time()) - 7200))  # what a first session left in the bucket
    (out / "metrics.json").write_text('{"status": "stale"}')
    returncode, stdout, _ = run_script_here(tmp_path, 0, wall_limit_s=3600, launched_s_ago=60)
    assert returncode == 0 and '"status": "fake"' in stdout and "stale" not in stdout
    assert share_of_10_usd(60) - 0.03 < budget_given(stdout) <= share_of_10_usd(60)
    (out / "metrics.json").write_text('{"status": "stale"}')
    returncode, stdout, _ = run_script_here(tmp_path, 0, wall_limit_s=3600, launched_s_ago=3700)  # no start here
    assert returncode == 4 and stdout.split("ORCH_METRICS_BEGIN")[1].split("ORCH_METRICS_END")[0].strip() == ""


def test_a_hand_launched_task_counts_from_its_first_start_across_recoveries(tmp_path):
    """A dry run's task file says 0 (launched by hand, its launch time unknown): the window counts from the job's first
    start on the VM less the estimated start-up, kept in the output folder across recoveries; a value that is no time
    says how to give one and ends as bad config (nothing trained, no recovery)."""
    for launched in (None, "", "0"):
        (tmp_path / f"l{launched}").mkdir()
        returncode, stdout, out = run_script_here(tmp_path / f"l{launched}", 0, wall_limit_s=3600,
                                                  launched_s_ago=launched)
        assert returncode == 0 and '"status": "fake"' in stdout, launched
        assert share_of_10_usd(0) - 0.03 < budget_given(stdout) <= share_of_10_usd(0)
    first_start = int(time.time()) - 1800  # a recovery, half the window after the first start
    (out / ".orch_started_at").write_text(str(first_start))
    returncode, stdout, _ = run_script_here(tmp_path / "l0", 0, wall_limit_s=3600, launched_s_ago="0")
    assert returncode == 0 and share_of_10_usd(1800) - 0.03 < budget_given(stdout) <= share_of_10_usd(1800)
    (tmp_path / "s").mkdir()  # the window is sized with start-up in it: by hand, the estimated start-up is spent
    returncode, stdout, _ = run_script_here(tmp_path / "s", 0, wall_limit_s=3600, launched_s_ago="0",
                                            est_startup_s=600)
    assert returncode == 0 and share_of_10_usd(600) - 0.03 < budget_given(stdout) <= share_of_10_usd(600)
    (tmp_path / "bad").mkdir()
    returncode, stdout, out = run_script_here(tmp_path / "bad", 0, launched_s_ago="yesterday")
    assert returncode == 2 and "--env ORCH_LAUNCHED_AT=$(date +%s)" in stdout
    assert not (out / "metrics.json").exists()


def test_hitting_the_wall_clock_limit_is_a_budget_stop(tmp_path):
    """The trainer's TERM comes its grace before the window's end, to save inside it: `timeout`, wrapped to keep its
    arguments, was given at most the window less the grace (read from them, not from a clock a loaded machine
    stretches)."""
    import shutil

    (tmp_path / "bin").mkdir()
    wrapper = tmp_path / "bin" / "timeout"
    wrapper.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "timeout-args"}\nexec {shutil.which("timeout")} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    returncode, stdout, _ = run_script_here(tmp_path, 0, wall_limit_s=6, sleep_s=30, grace_s=2)
    assert returncode == 4 and "ORCH_TRAINER_EXIT=4" in stdout
    signal, kill_after, term_after_s = (tmp_path / "timeout-args").read_text().split()[:3]
    assert (signal, kill_after) == ("--signal=TERM", "--kill-after=2") and 0 < int(term_after_s) <= 6 - 2


def test_a_window_no_longer_than_the_grace_for_the_last_save_trains_nothing(tmp_path):
    """The trainer got the whole window and a TERM at its end, with 300 s to save after it: billed up to 5 min past
    the budget. The last save's grace is inside the window, and a window that is all grace starts no trainer."""
    returncode, stdout, _ = run_script_here(tmp_path, 0, wall_limit_s=SAVE_GRACE_S, launched_s_ago=0)
    assert returncode == 4 and "wall-clock budget is spent" in stdout and '"status": "fake"' not in stdout


def test_a_trainer_the_guard_has_to_kill_is_a_budget_stop_too(tmp_path):
    """Still saving when the guard's grace ran out, the trainer was killed (timeout's 137): the run was recorded as
    failed, where it had been stopped at its budget."""
    returncode, stdout, _ = run_script_here(tmp_path, 0, wall_limit_s=4, sleep_s=8, ignore_term=True, grace_s=2)
    assert returncode == 4 and "ORCH_TRAINER_EXIT=4" in stdout, stdout


def test_a_trainer_killed_inside_its_window_is_no_budget_stop(tmp_path):
    """137 before the window ends is something else's KILL (the kernel's, out of memory): a failure, said as such."""
    returncode, stdout, _ = run_script_here(tmp_path, 137, wall_limit_s=3600)
    assert returncode == 137 and "ORCH_TRAINER_EXIT=137" in stdout, stdout


def test_spot_recovers_only_from_preemption(sky, tmp_path):
    from gpu_catalog.models import get_model
    from orchestrator.launch.sky_task import build_task
    from orchestrator.planner import PlanPolicy, plan

    spec = job_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "train_tokens": 10_000,
                          "dataset": str(REPO / "examples" / "data" / "tiny_instruct.jsonl")})
    offer = make_offer(get_gpu("A100 80GB"), "nebius", 1.0, spot=True, region="eu-north1", accelerator="A100-80GB")
    chosen = plan(spec, get_model(spec.model), [offer], PlanPolicy(budget_usd=50)).chosen
    job = tmp_path / "job.yaml"
    job.write_text(f"model: orch/tiny-llama\nmethod: lora\nseq_len: 128\ndataset: {spec.dataset}\n")
    task = build_task(spec, job, chosen, 50.0, "r-spot", get_model(spec.model), tmp_path)
    (resources,) = task.resources
    assert resources.job_recovery["max_restarts_on_errors"] == 0
    assert resources.job_recovery["recover_on_exit_codes"] == [5]
    (storage,) = task.storage_mounts.values()
    assert storage.name == "orch-r-spot" and storage.mode.value == "MOUNT_CACHED"


def test_preflight_names_every_problem_with_the_dataset(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("x")
    spec = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 128,
                             "dataset": "/elsewhere/d.jsonl"})  # the job loader refuses it too; pre-flight says why
    assert "not on this machine" in dataset_problems(spec, job)[0]
    (tmp_path / "bad.jsonl").write_bytes(b"\xff\xfe\x00 not utf-8 text at all, and more of it")
    spec = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "dataset": "bad.jsonl"})
    assert "not UTF-8" in dataset_problems(spec, job)[0]
    spec = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "dataset": "org/hub-set"})
    assert dataset_problems(spec, job) == []


def test_preflight_takes_what_the_trainer_reads(tmp_path):
    """A folder of data files and a suffix in capitals are read by the trainer, so pre-flight lets them through;
    an unknown suffix is refused as the trainer refuses it."""
    job = tmp_path / "job.yaml"
    job.write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "train.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "LOUD.JSONL").write_text('{"text": "a"}\n')
    (tmp_path / "notes.txt").write_text("a")
    for dataset in ("folder", "LOUD.JSONL"):
        spec = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "dataset": dataset})
        assert dataset_problems(spec, job) == [], dataset
    spec = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "dataset": "notes.txt"})
    assert "use a .jsonl" in dataset_problems(spec, job)[0]


def test_a_gated_model_needs_hf_token(monkeypatch):
    spec = job_from_dict({"model": "meta-llama/Llama-3.1-8B", "method": "qlora", "seq_len": 128, "max_steps": 1})
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert "HF_TOKEN" in model_problems(spec)[0]
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    assert model_problems(spec) == []
    monkeypatch.delenv("HF_TOKEN")
    for name, gated in (("NousResearch/Meta-Llama-3-8B", False), ("Llama-3.1-8B", True)):  # a copy; an alias
        spec = job_from_dict({"model": name, "method": "qlora", "seq_len": 128, "max_steps": 1})
        assert bool(model_problems(spec)) is gated, name


def test_a_shape_name_with_no_repository_is_refused_before_a_vm(monkeypatch, tmp_path):
    """`CodeLlama-7b` or `Llama-3-8B-Instruct` read as a shape, and the VM was told to download that bare name."""
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    for name, downloaded in (("CodeLlama-7b", "codellama/CodeLlama-7b-hf"), ("Qwen3-8B-FP8", "Qwen/Qwen3-8B")):
        spec = job_from_dict({"model": name, "method": "lora", "seq_len": 128, "max_steps": 1})
        assert spec.model == downloaded and model_problems(spec) == []
    spec = job_from_dict({"model": "Llama-3-8B-Instruct", "method": "lora", "seq_len": 128, "max_steps": 1})
    assert model_problems(spec) == ["model 'Llama-3-8B-Instruct' is a name orch reads as the shape of "
                                    "meta-llama/Llama-3.1-8B, not a Hugging Face repository to download: give the "
                                    "repository's org/name id (e.g. meta-llama/Llama-3.1-8B)"]
    (tmp_path / "Llama-3-8B-Instruct").mkdir()  # a folder of that name beside the job is the model itself
    (tmp_path / "Llama-3-8B-Instruct" / "config.json").write_text(json.dumps(
        {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 128,
         "vocab_size": 100}))
    (tmp_path / "Llama-3-8B-Instruct" / "tokenizer.json").write_text("{}")
    write_weights(tmp_path / "Llama-3-8B-Instruct")
    folder = config_from_dict({"model": "Llama-3-8B-Instruct", "method": "lora", "seq_len": 128, "max_steps": 1},
                              base_dir=tmp_path)
    assert model_problems(folder, base_dir=tmp_path) == []


def test_preflight_refuses_a_model_folder_without_a_tokenizer_as_the_trainer_does(tmp_path):
    """A folder holding only config.json passed pre-flight, and the trainer refused it on the paid VM."""
    (tmp_path / "cfg-only").mkdir()
    (tmp_path / "cfg-only" / "config.json").write_text(json.dumps(
        {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 128,
         "vocab_size": 100}))
    write_weights(tmp_path / "cfg-only")
    job = {"model": "cfg-only", "method": "lora", "seq_len": 128, "max_steps": 1}
    (problem,) = model_problems(config_from_dict(job, base_dir=tmp_path), base_dir=tmp_path)
    assert problem.startswith(f"model folder '{tmp_path / 'cfg-only'}' holds no tokenizer (none of tokenizer.json, ")
    named = config_from_dict({**job, "tokenizer": "org/its-tokenizer"}, base_dir=tmp_path)  # a hub id: the VM's
    assert model_problems(named, base_dir=tmp_path) == []


def test_setup_stops_where_torch_sees_no_cuda_gpu(tmp_path):
    """Setup printed torch's CUDA check and went on: on a VM whose driver is older than torch's CUDA build the
    trainer took the CPU and spent the budget there at the GPU's price. Here pip installs nothing and torch is this
    machine's, with no GPU to see."""
    from orchestrator.launch.remote_env import setup_script

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\n[ "$1 $2" = "-m pip" ] && exit 0\nexec {sys.executable} "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(["bash", "-c", setup_script()], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "torch sees no CUDA GPU on this VM" in done.stderr, done.stdout + done.stderr
    assert "setup done" not in done.stdout and not (tmp_path / ".orch_setup_done").exists()  # tried again next time


def test_setup_stops_before_installing_where_the_disk_is_smaller_than_the_job_needs(tmp_path):
    """Lambda and Seeweb boot their instance's fixed disk whatever `disk_size` asks, so a job sized for 170 GiB
    found out at a save, hours in. Setup now compares the disk's free space with what the job needs, first."""
    from orchestrator.launch.remote_env import setup_script

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text("#!/bin/sh\necho ran >> \"$HOME/python-ran\"\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    free_gib = shutil.disk_usage(tmp_path).free // 2**30
    done = subprocess.run(["bash", "-c", setup_script(free_gib=free_gib + 10)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and f"and the job needs {free_gib + 10} GiB" in done.stderr, done.stderr
    assert not (tmp_path / "python-ran").exists()  # nothing installed, nothing downloaded
    done = subprocess.run(["bash", "-c", setup_script(free_gib=max(0, free_gib - 1))], env=env, capture_output=True,
                          text=True, timeout=60)
    assert (tmp_path / "python-ran").exists(), done.stderr


def test_every_pin_installed_here_installs_on_the_oldest_python_a_vm_brings():
    """accelerate 1.16 needs Python 3.11, and SkyPilot's GCP and Azure images bring 3.10: setup failed after the VM
    was paid for. A pin this machine installed at its pinned version says which Python it needs; `make install`
    installs every pin but torch (the machine's own build) at its version, so the tests run what a VM runs (they ran
    accelerate 1.16 where a VM got 1.15)."""
    from importlib.metadata import PackageNotFoundError, metadata

    from packaging.specifiers import SpecifierSet

    from orchestrator.launch.remote_env import PINNED_PACKAGES, VM_PYTHON_LEAST

    least, checked = ".".join(map(str, VM_PYTHON_LEAST)), []
    for pin in PINNED_PACKAGES:
        name, _, version = pin.partition("==")
        try:
            found = metadata(name)
        except PackageNotFoundError:
            continue
        if found["Version"].split("+")[0] == version:
            assert SpecifierSet(found["Requires-Python"] or "").contains(least), (pin, found["Requires-Python"])
            checked.append(name)
    assert set(checked) >= {pin.partition("==")[0] for pin in PINNED_PACKAGES[1:]}, checked


def test_every_pin_is_one_exact_version_of_one_package():
    """The VM's setup passes each to pip as an argument: a line pip -c takes (an inline note, a range) failed setup
    after the VM was paid for, or installed another version than the tests ran."""
    from packaging.requirements import Requirement

    from orchestrator.launch.remote_env import PINNED_PACKAGES

    for pin in PINNED_PACKAGES:
        required = Requirement(pin)
        assert str(required) == pin and len(required.specifier) == 1, pin
        assert next(iter(required.specifier)).operator == "==", pin


def test_the_code_a_vm_runs_parses_as_the_oldest_python_a_vm_brings():
    """The trainer and gpu_catalog run on the VM's Python, which may be 3.10."""
    import ast

    import gpu_catalog
    import trainer
    from orchestrator.launch.remote_env import VM_PYTHON_LEAST

    for package in (trainer, gpu_catalog):
        for path in Path(package.__file__).parent.rglob("*.py"):
            ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=VM_PYTHON_LEAST)


def test_setup_stops_on_a_python_older_than_the_pins_need(tmp_path, monkeypatch):
    """Said in one line before pip's "No matching distribution" for one pin of nine (here every Python is too old)."""
    from orchestrator.launch import remote_env

    monkeypatch.setattr(remote_env, "VM_PYTHON_LEAST", (99, 0))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "-c", remote_env.setup_script()], env=env, capture_output=True, text=True,
                          timeout=60)
    said = f"orch: this VM has Python {sys.version_info[0]}.{sys.version_info[1]}; the trainer needs 99.0 or newer"
    assert done.returncode != 0 and said in done.stderr and "installing" not in done.stdout, done.stderr


def test_preflight_refuses_a_setting_the_vms_setup_cannot_install(tmp_path):
    """flash-attn has no wheel for the VM's torch and builds for hours: a cloud job with flash_attention_2 was
    launched, set up, and refused by the trainer (exit 2) on a paid VM."""
    job = tmp_path / "job.yaml"
    job.write_text(f"model: orch/tiny-llama\nmethod: lora\nseq_len: 128\nattention: flash_attention_2\n"
                   f"dataset: {REPO / 'examples' / 'data' / 'tiny_instruct.jsonl'}\n")
    result = CliRunner().invoke(app, ["launch", str(job), "--budget", "5", "--target", "cloud", "--providers",
                                      "lambda", "--dry-run"])
    assert result.exit_code == 2, result.output
    refusal = result.stderr.strip().splitlines()[-1]  # one line, after the plan, which offers no cloud target
    assert "needs flash-attn, which a cloud VM's setup does not install" in refusal
    assert "use `attention: sdpa`" in refusal


@pytest.mark.parametrize("settings", [{}, {"method": "qlora"}, {"optimizer": "paged_adamw_8bit"},
                                      {"optimizer": "adamw_cpu_offload"}, {"report_to": "wandb"},
                                      {"report_to": "tensorboard"}, {"loss": "fused"},
                                      {"attention": "flash_attention_2"}])
def test_a_cloud_job_pre_flight_passes_is_one_the_trainers_package_checks_pass_on_the_vm(monkeypatch, settings):
    """The trainer's own package checks (trainer/requirements.py), run as on the VM (CUDA, and only the packages
    its setup installs): every job pre-flight lets through to a cloud passes them."""
    from orchestrator.launch.remote_env import packages_for
    from orchestrator.preflight import vm_package_problems
    from trainer.requirements import run_problems

    spec = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "max_steps": 1,
                             **settings})
    installed = {re.split(r"[<>=]", package)[0].replace("-", "_") for package in packages_for(spec)}
    with monkeypatch.context() as patched:
        patched.setattr(importlib.util, "find_spec", lambda name, *args: object() if name in installed else None)
        on_the_vm = run_problems(spec, on_cuda=True)
    assert on_the_vm == [] or vm_package_problems(spec), on_the_vm


def test_an_unknown_cloud_name_stops_the_plan_with_a_suggestion():
    result = CliRunner().invoke(app, ["plan", str(REPO / "examples" / "tiny.yaml"), "--budget", "5",
                                      "--providers", "lamda"])
    assert result.exit_code == 2 and "no cloud named 'lamda'" in result.stderr and "lambda" in result.stderr


class Record:
    def __init__(self, tmp_path, spot, provider, cluster="orch-abc123:7", output_uri=None):
        self.run_id, self.run_dir, self.spot, self.provider = "r-20261201-120000-abc123", str(tmp_path), spot, provider
        self.gpu, self.region, self.usd_per_hour, self.cluster = "A100 80GB", "r1", 1.0, cluster
        self.output_uri = output_uri


def test_pull_brings_an_on_demand_runs_output_from_the_cluster(tmp_path, monkeypatch):
    from orchestrator.launch import sky_storage

    calls = []
    monkeypatch.setattr(sky_storage.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(sky_storage.subprocess, "run",
                        lambda command, timeout: calls.append(command) or subprocess.CompletedProcess(command, 0))
    dest = sky_storage.pull_output(Record(tmp_path, spot=0, provider="vast"))
    assert dest == tmp_path / "output" and dest.is_dir()
    # the results before the checkpoints: the VM downs itself its idle window after the job, mid-copy or not
    source = "orch-abc123:/orch/output/"
    assert calls == [["rsync", "-a", "--partial", "--exclude", "/checkpoints/", source, f"{dest}/"],
                     ["rsync", "-a", "--partial", source, f"{dest}/"]]
    assert sky_storage.output_location(Record(tmp_path, 0, "vast")).kind == "cluster"
    # launched where no store was enabled, a run on a cloud that mounts buckets kept its output on the VM
    assert sky_storage.output_location(Record(tmp_path, 0, "nebius")).kind == "bucket"
    on_vm = Record(tmp_path, 0, "nebius", output_uri="orch-abc123:/orch/output (until teardown)")
    assert sky_storage.output_location(on_vm).kind == "cluster"


def test_pull_of_a_launch_that_failed_before_any_vm_says_there_is_no_output(tmp_path):
    """It said `could not bring the output of r-... home from :/orch/output (until teardown)`: no host, no fix."""
    from gpu_catalog.errors import UserError
    from orchestrator.launch import sky_storage
    from orchestrator.runs.status import RunStatus

    record = Record(tmp_path, spot=0, provider="runpod", cluster=None)
    record.status = RunStatus.FAILED
    with pytest.raises(UserError, match=r"has no output to bring home: no VM or bucket was ever recorded for it \(it "
                                        r"ended failed before one came up; `orch logs r-"):
        sky_storage.pull_output(record)
    assert not (tmp_path / "output").exists()


def test_pull_brings_a_spot_runs_output_from_its_bucket(sky, tmp_path, monkeypatch):
    from sky.data import StoreType

    from orchestrator.launch import sky_storage

    calls = []

    class Storage:
        name, store = "orch-r-20261201-120000-abc123", [StoreType.S3]

    monkeypatch.setattr(sky, "storage_ls", lambda: calls.append("storage_ls") or "request-1")
    monkeypatch.setattr(sky, "get", lambda request: [Storage()])
    monkeypatch.setattr(sky_storage.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(sky_storage.subprocess, "run",
                        lambda command, timeout: calls.append(command) or subprocess.CompletedProcess(command, 0))
    dest = sky_storage.pull_output(Record(tmp_path, spot=1, provider="nebius"))
    assert calls == ["storage_ls", ["aws", "s3", "sync", "s3://orch-r-20261201-120000-abc123", str(dest)]]
