"""A job's local datasets (training and eval) reach the trainer wherever it runs: made absolute for a local run,
mounted for a cloud one."""

import yaml

from orchestrator.launch.local import run_job_file
from orchestrator.launch.sky_task import REMOTE_DATA_DIR, stage_files


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


def test_a_cloud_run_mounts_both_datasets(tmp_path):
    files = stage_files(job_with_two_files(tmp_path), tmp_path / "work")
    assert files.datasets[f"{REMOTE_DATA_DIR}/train.jsonl"] == tmp_path / "data" / "train.jsonl"
    assert files.datasets[f"{REMOTE_DATA_DIR}/eval_dataset/eval.jsonl"] == tmp_path / "data" / "eval.jsonl"
    staged = yaml.safe_load(files.job_file.read_text())
    assert (staged["dataset"], staged["eval_dataset"]) == tuple(files.datasets)
