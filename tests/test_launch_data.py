"""A job's local datasets (training and eval) and tokenizer folder reach the trainer wherever it runs: made absolute
for a local run, mounted for a cloud one."""

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from gpu_catalog.models import get_model
from orchestrator.job import load_job
from orchestrator.launch.local import job_json, run_job_file
from orchestrator.launch.sky_task import REMOTE_DATA_DIR, stage_files
from tests.conftest import write_weights
from trainer.config import config_from_dict
from trainer.job_file import load_config
from trainer.random_model import train_tokenizer


def job_with_two_files(tmp_path):
    (tmp_path / "data").mkdir()
    for name in ("train.jsonl", "eval.jsonl"):
        (tmp_path / "data" / name).write_text('{"text": "x"}\n')
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"model": "m", "method": "lora", "seq_len": 8, "dataset": "data/train.jsonl",
                                   "eval_dataset": "data/eval.jsonl"}))
    return job


def test_a_local_run_gets_absolute_paths_for_both_datasets(tmp_path):
    (tmp_path / "run").mkdir()
    written = yaml.safe_load(run_job_file(job_with_two_files(tmp_path), tmp_path / "run").read_text())
    assert written["dataset"] == str(tmp_path / "data" / "train.jsonl")
    assert written["eval_dataset"] == str(tmp_path / "data" / "eval.jsonl")


def test_a_runs_copy_of_the_job_keeps_the_jobs_name(tmp_path):
    """The copy is the run folder's job.yaml: a job named by its file (`tiny.yaml`) trained, and wrote
    metrics.json, as `job`."""
    (tmp_path / "run").mkdir()
    job = job_with_two_files(tmp_path).rename(tmp_path / "My Tiny.yaml")
    assert yaml.safe_load(run_job_file(job, tmp_path / "run").read_text())["name"] == "My-Tiny"
    named = tmp_path / "named.yaml"
    named.write_text(job.read_text() + "name: kept\n")
    (tmp_path / "run2").mkdir()
    assert yaml.safe_load(run_job_file(named, tmp_path / "run2").read_text())["name"] == "kept"


def test_a_cloud_run_mounts_both_datasets(tmp_path):
    files = stage_files(job_with_two_files(tmp_path), tmp_path / "work")
    assert files.mounts[f"{REMOTE_DATA_DIR}/dataset/train.jsonl"] == tmp_path / "data" / "train.jsonl"
    assert files.mounts[f"{REMOTE_DATA_DIR}/eval_dataset/eval.jsonl"] == tmp_path / "data" / "eval.jsonl"
    staged = yaml.safe_load(files.job_file.read_text())
    assert (staged["dataset"], staged["eval_dataset"]) == tuple(files.mounts)


def job_with_a_tokenizer_folder(tmp_path, written_as: str):
    job = job_with_two_files(tmp_path)
    (tmp_path / "tok").mkdir()
    job.write_text(job.read_text() + f"tokenizer: {written_as}\n")
    return job


@pytest.mark.parametrize("written_as", ["tok", "./tok"])
def test_a_relative_tokenizer_folder_is_made_absolute_and_mounted(tmp_path, monkeypatch, written_as):
    """The run folder's copy of the job sits elsewhere: a tokenizer folder relative to the job file would be looked
    for beside the copy, and a run started from another folder would miss it."""
    monkeypatch.chdir("/")
    job = job_with_a_tokenizer_folder(tmp_path, written_as)
    (tmp_path / "run").mkdir()
    assert yaml.safe_load(run_job_file(job, tmp_path / "run").read_text())["tokenizer"] == str(tmp_path / "tok")
    files = stage_files(job, tmp_path / "work")
    assert files.mounts[f"{REMOTE_DATA_DIR}/tokenizer/tok"] == tmp_path / "tok"
    assert yaml.safe_load(files.job_file.read_text())["tokenizer"] == f"{REMOTE_DATA_DIR}/tokenizer/tok"


@pytest.mark.parametrize("written_as", ["tok", "./tok"])
def test_the_recorded_job_keeps_a_tokenizer_folder_absolute(tmp_path, monkeypatch, written_as):
    """runs.db and the queue keep the job as JSON, which the scheduler and the cloud launcher read from their own
    folders: a relative tokenizer folder would be looked for there."""
    job = job_with_a_tokenizer_folder(tmp_path, written_as)
    spec = load_config(job)[0]
    monkeypatch.chdir("/")
    recorded = json.loads(job_json(spec, job.parent))
    assert recorded["tokenizer"] == str(tmp_path / "tok")
    assert config_from_dict(recorded).tokenizer == str(tmp_path / "tok")
    assert json.loads(job_json(dataclasses.replace(spec, tokenizer="org/name"), job.parent))["tokenizer"] == "org/name"


def test_the_recorded_job_keeps_its_local_datasets_absolute(tmp_path, monkeypatch):
    """A queued job the scheduler sent to a cloud looked for `data/train.jsonl` beside the queue's copy of the job,
    and was rejected with `copy the file here`."""
    job = job_with_two_files(tmp_path)
    spec = load_config(job)[0]
    monkeypatch.chdir("/")
    recorded = config_from_dict(json.loads(job_json(spec, job.parent)))
    assert (recorded.dataset, recorded.eval_dataset) == (str(tmp_path / "data" / "train.jsonl"),
                                                         str(tmp_path / "data" / "eval.jsonl"))
    hub = dataclasses.replace(spec, dataset="org/data", eval_dataset=None)
    assert json.loads(job_json(hub, job.parent))["dataset"] == "org/data"


def test_a_hub_tokenizer_id_is_left_as_written(tmp_path):
    job = job_with_two_files(tmp_path)
    job.write_text(job.read_text() + "tokenizer: org/name\n")
    (tmp_path / "run").mkdir()
    assert yaml.safe_load(run_job_file(job, tmp_path / "run").read_text())["tokenizer"] == "org/name"


def test_a_cloud_run_mounts_each_local_path_under_a_name_the_vms_shell_takes_as_one_word(tmp_path):
    """SkyPilot links a file mount into place with its destination unquoted in a shell command: `my data.jsonl` or a
    `;` or `$` in a name failed the launch after the VM was paid for. (A quote in the source path, which SkyPilot
    cannot copy at all, is refused: test_skypilot.)"""
    (tmp_path / "my data.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "ev`al;$x ü.jsonl").write_text('{"text": "x"}\n')
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"model": "m", "method": "lora", "seq_len": 8, "dataset": "my data.jsonl",
                                   "eval_dataset": "ev`al;$x ü.jsonl"}))
    files = stage_files(job, tmp_path / "work")
    staged = yaml.safe_load(files.job_file.read_text())
    assert staged["dataset"] == f"{REMOTE_DATA_DIR}/dataset/my_data.jsonl"
    assert staged["eval_dataset"] == f"{REMOTE_DATA_DIR}/eval_dataset/ev_al__x__.jsonl"
    assert files.mounts[staged["eval_dataset"]] == tmp_path / "ev`al;$x ü.jsonl"


@pytest.mark.parametrize("absolute", [False, True])
def test_a_model_folder_of_this_machine_is_mounted_not_looked_for_on_the_hub(tmp_path, absolute):
    """The VM's trainer was given `model: mymodel`, a folder only the launching machine has, and stopped with exit 2
    after provisioning and setup were paid."""
    job = job_with_two_files(tmp_path)
    (tmp_path / "my model").mkdir()
    (tmp_path / "my model" / "config.json").write_text("{}")
    raw = yaml.safe_load(job.read_text())
    job.write_text(yaml.safe_dump({**raw, "model": str(tmp_path / "my model") if absolute else "my model"}))
    files = stage_files(job, tmp_path / "work")
    remote = yaml.safe_load(files.job_file.read_text())["model"]
    assert remote == f"{REMOTE_DATA_DIR}/model/my_model" and files.mounts[remote] == tmp_path / "my model"
    assert "my model" not in " ".join(files.hub_ids)


def test_a_dataset_folder_named_as_another_mount_does_not_hold_it(tmp_path):
    """A dataset folder named `model` was mounted at /orch/data/model, and the model folder inside it."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "train.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "config.json").write_text("{}")
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"model": "weights", "method": "lora", "seq_len": 8, "dataset": "model"}))
    remote = list(stage_files(job, tmp_path / "work").mounts)
    assert not any(a != b and b.startswith(a + "/") for a in remote for b in remote), remote


@pytest.mark.parametrize("written_as", ["./weights", "weights"])
def test_a_relative_model_folder_is_read_beside_the_job_and_kept_absolute(tmp_path, monkeypatch, written_as):
    """`model: ./weights` was read from the current folder while the datasets were read beside the job: a job
    submitted from its folder was rejected by a scheduler started elsewhere (`model folder './weights' does not
    exist`), and `orch plan dir/job.yaml` failed the same way. A hub id stays an id."""
    job = job_with_two_files(tmp_path)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "config.json").write_text(json.dumps(
        {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
         "intermediate_size": 128, "vocab_size": 300}))  # the tokenizer below has up to 300 tokens: one row each
    train_tokenizer(["hello world"] * 20, vocab_size=300).save_pretrained(tmp_path / "weights")
    write_weights(tmp_path / "weights")
    job.write_text(yaml.safe_dump({**yaml.safe_load(job.read_text()), "model": written_as, "micro_batch": 1}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_job(job)  # as `orch plan` reads it: the model's shape comes from the folder beside the job
    assert spec.model == str(tmp_path / "weights") and get_model(spec.model).params > 0
    assert json.loads(job_json(spec, job.parent))["model"] == str(tmp_path / "weights")  # the queue's record
    (tmp_path / "run").mkdir()
    assert yaml.safe_load(run_job_file(job, tmp_path / "run").read_text())["model"] == str(tmp_path / "weights")
    job.write_text(yaml.safe_dump({**yaml.safe_load(job.read_text()), "model": "meta-llama/Llama-3.1-8B"}))
    assert load_config(job)[0].model == "meta-llama/Llama-3.1-8B"
    assert yaml.safe_load(run_job_file(job, tmp_path / "run").read_text())["model"] == "meta-llama/Llama-3.1-8B"


def test_a_run_and_a_dry_runs_task_train_the_batch_their_plan_chose(tmp_path, monkeypatch):
    """The plan auto-fits the micro-batch, accumulation and checkpointing to the target (the 8B QLoRA example's
    micro-batch 4 does not fit the A100 80GB it picks; 2 x 8 does), but the run's job file was the user's unchanged:
    it trained, or ran out of memory at, what the plan had priced as not fitting."""
    from orchestrator.cli.planning import plan_job
    from orchestrator.launch.lifecycle import new_record

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    job = Path(__file__).parents[1] / "examples" / "llama31-8b-qlora.yaml"
    _, _, result = plan_job(job, 20.0, None, "cost", True, None)
    chosen = result.chosen
    fitted = {"micro_batch": chosen.estimate.micro_batch, "grad_accum": chosen.estimate.grad_accum,
              "grad_ckpt": chosen.estimate.grad_ckpt}
    assert fitted["micro_batch"] != yaml.safe_load(job.read_text(encoding="utf-8"))["micro_batch"]
    record = new_record(load_job(job), job, chosen, 20.0)
    run_job = yaml.safe_load((Path(record.run_dir) / "job.yaml").read_text(encoding="utf-8"))
    assert {key: run_job[key] for key in fitted} == fitted
    assert {key: json.loads(record.job_json)[key] for key in fitted} == fitted
    staged = stage_files(job, tmp_path / "task", chosen.fitted_settings)
    assert {key: yaml.safe_load(staged.job_file.read_text(encoding="utf-8"))[key] for key in fitted} == fitted
