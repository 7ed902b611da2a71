"""The benchmark scripts run (their numbers are checked by running them, not here)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_simulate_speed_runs(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/simulate_speed.py", "--jobs", "300", "--json"], cwd=REPO,
                          check=True, capture_output=True, text=True)
    result = json.loads(done.stdout)
    assert result["ended_once"] and result["jobs"] == 300 and result["seconds"] > 0


def test_plan_speed_runs():
    done = subprocess.run([sys.executable, "benchmarks/plan_speed.py", "--runs", "1", "--json"], cwd=REPO,
                          capture_output=True, text=True)
    result = json.loads(done.stdout)
    assert result["targets"] > 0 and result["heavy_imports"] == []


def test_models_built_ahead_are_the_ones_the_trainer_finds(tmp_path, monkeypatch, capsys):
    """benchmarks/build_random_models.py builds before a GPU session's timed runs: a folder under any other cache key
    would leave the trainer building its own, inside a measured run."""
    from benchmarks import build_random_models
    from trainer.config import config_from_dict
    from trainer.prepared import prepare

    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    assert build_random_models.main(["orch/tiny-llama", "--device", "cpu"]) == 0
    built = capsys.readouterr().out.split(": ", 1)[1].rsplit(" (", 1)[0]
    for seq_len in (128, 2048):
        config = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": seq_len,
                                   "dataset": str(build_random_models.DATA)})
        assert prepare(config, tmp_path).model_path == built
    assert len(list((tmp_path / "cache" / "random-models").iterdir())) == 1


def test_building_ahead_refuses_a_model_the_trainer_would_not_build(tmp_path, monkeypatch, capsys):
    from benchmarks import build_random_models

    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    assert build_random_models.main(["meta-llama/Llama-3.1-8B", "--device", "cpu"]) == 2
    said = capsys.readouterr().err
    assert said.startswith("error: ") and "random:" in said and said.count("\n") == 1
    assert not (tmp_path / "cache" / "random-models").exists()


@pytest.mark.parametrize("args", [[], ["out", "soon"], ["out", "5"], ["out", "60", "more"]])
def test_the_gpu_session_refuses_bad_arguments_before_any_work(args, tmp_path):
    done = subprocess.run(["bash", "benchmarks/gpu_session.sh", *[str(tmp_path / a) if a == "out" else a
                                                                  for a in args]],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("script, args, said", [
    ("plan_speed.py", ["--runs", "0"], "--runs: must be at least 1, got 0"),
    ("plan_speed.py", ["--job", "nope.yaml"], "--job nope.yaml: no such job file"),
    ("simulate_speed.py", ["--jobs", "-5"], "--jobs: must be at least 1, got -5"),
    ("simulate_speed.py", ["--jobs", "10", "--local", "[red]x"], "unknown GPU '[red]x'"),
    ("score_estimator.py", ["--write-calibration", "nowhere/x.json"], "folder 'nowhere' does not exist"),
    ("cpu_mask_memory.py", ["--quick", "--out", "nowhere/x.json"], "folder 'nowhere' does not exist"),
    ("sweep_repeatability.py", ["--out", "nowhere/x.json"], "folder 'nowhere' does not exist"),
    ("sweep_repeatability.py", ["--bogus"], "unrecognized arguments: --bogus"),
    ("trainer_vs_baseline.py", ["--seq-len", "99999999"], "`seq_len` must be at most"),
    ("trainer_vs_baseline.py", ["--cpu-threads", "100000"], "--cpu-threads must be at most 1024, got 100000"),
    ("baselines.py", ["--help"], "error: baselines.py takes {orch,trainer,trl} SPEC.json RESULT.json"),
    ("baselines.py", ["trainer", "nosuch.json", "out.json"], "is not a spec trainer_vs_baseline.py wrote"),
    ("cpu_mask_memory.py", ["--quick", "--out", "x/"], "'x/' ends with a slash, which names a folder"),
    ("score_estimator.py", ["--write-calibration", "x.yaml"], "it is written as JSON: give a name ending in .json"),
    ("simulate_speed.py", ["--jobs", "10000000000000"], "--jobs: must be at most 10000000"),
])
def test_a_benchmark_scripts_mistake_is_one_line_before_any_work(tmp_path, script, args, said):
    """Each ended in a traceback (a ConfigError, FileNotFoundError after 43 s of measuring, statistics' error for
    --runs 0), or in argparse's usage and error on two lines."""
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and said in lines[0], done.stderr
    assert "Traceback" not in done.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script, args", [
    ("trainer_vs_baseline.py", ["--data", "{data}", "--out", "{data}"]),
    ("sweep_repeatability.py", ["{sweep}", "--out", "{sweep}"]),
    ("sweep_repeatability.py", ["{sweep}", "--out", "{data}"]),
])
def test_a_benchmark_script_refuses_to_write_over_its_inputs(tmp_path, script, args):
    """The result JSON replaced the dataset trainer_vs_baseline.py was measuring on (the next contender failed on
    it), and sweep_repeatability.py's replaced its sweep file or the sweep's dataset, exit 0."""
    data = tmp_path / "data.jsonl"
    data.write_bytes((REPO / "examples" / "data" / "tiny_instruct.jsonl").read_bytes())
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text((REPO / "benchmarks" / "sweeps" / "tiny-cpu.yaml").read_text().replace(
        "../../examples/data/tiny_instruct.jsonl", str(data)))
    before = {path: path.read_bytes() for path in (data, sweep)}
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script),
                           *[a.format(data=data, sweep=sweep) for a in args]], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "is one of this command's input files" in done.stderr, done.stderr
    assert {path: path.read_bytes() for path in (data, sweep)} == before


def test_trainer_vs_baseline_says_a_dataset_the_trainer_refuses_in_one_line(tmp_path):
    """A UTF-16 --data ended in the trainer's DataError as a traceback (exit 1)."""
    data = tmp_path / "utf16.jsonl"
    data.write_bytes('{"text": "hi"}\n'.encode("utf-16"))
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "trainer_vs_baseline.py"), "--data", str(data),
                           "--steps", "2", "--warmup", "1", "--repeats", "1", "--baselines", "trainer"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: dataset {data} line 1 is not UTF-8 text")


def test_plan_speed_says_a_plan_that_fails_on_its_catalog_in_one_line(tmp_path):
    """A --catalog whose vms.csv the plan refuses ended in CalledProcessError's traceback, the plan's error hidden."""
    (tmp_path / "catalog" / "aws").mkdir(parents=True)
    (tmp_path / "catalog" / "aws" / "vms.csv").write_text("")
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "plan_speed.py"), "--catalog",
                           str(tmp_path / "catalog"), "--runs", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: orch plan failed: ") and "is not a SkyPilot v8 catalog file" in done.stderr


def test_building_ahead_refuses_a_model_larger_than_the_memory_before_any_build(tmp_path, monkeypatch, capsys):
    """A 70B model drawn on a 24 GiB machine was ended by the kernel's OOM killer, with no word: each model is
    weighed against the memory free before the first build."""
    from benchmarks import build_random_models
    from trainer import random_model

    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(random_model, "free_memory_bytes", lambda device: 8 * 2**30)
    assert build_random_models.main(["orch/tiny-llama", "random:meta-llama/Llama-3.1-8B", "--device", "cpu"]) == 2
    said = capsys.readouterr()
    assert said.out == "" and said.err.count("\n") == 1
    assert "random:meta-llama/Llama-3.1-8B's random weights takes 15.0 GiB and this machine has 8.0 GiB free" \
        in said.err
    assert not (tmp_path / "cache" / "random-models").exists()
