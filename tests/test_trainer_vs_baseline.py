"""benchmarks/trainer_vs_baseline.py: the contenders train on the same tokens, and the reported ratio is what it says.

One real run (tiny model, 300 samples, 3 steps, one repeat, on the CPU) serves the end-to-end tests; the spread and
the ratio arithmetic are checked on made-up runs, where the numbers are known."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks.baselines import BenchSpec, trl_dataset
from benchmarks.trainer_vs_baseline import ratios, summarize
from tests.conftest import REPO

SUMMARY_FIELDS = {"tokens_per_s_median", "tokens_per_s_min", "tokens_per_s_max", "tokens_per_s_repeats",
                  "real_tokens_per_step", "label_tokens_per_step", "timed_steps_per_repeat", "peak_memory_gib",
                  "trainable_params", "statuses", "messages"}
# TRL packs the same samples itself (best-fit decreasing, where orch packs first-fit decreasing): over the whole data
# set the real and loss tokens are identical and the row counts differ by a row or two in a thousand (checked below),
# so a step's tokens differ only by which rows land in it. Rows are nearly full, so real tokens per timed step stay
# within a few percent; the loss share varies more from row to row (prompt and response lengths differ by sample).
REAL_TOKENS_TOLERANCE = 0.05
LOSS_TOKENS_TOLERANCE = 0.10


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One run of the script; its data file and model cache stay for the tests that look inside."""
    tmp = tmp_path_factory.mktemp("vs-baseline")
    data = tmp / "data.jsonl"
    lines = (REPO / "examples" / "data" / "tiny_instruct.jsonl").read_text().splitlines()[:300]
    data.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "ORCH_CACHE": str(tmp / "cache"), "HOME": str(tmp / "home"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "benchmarks.trainer_vs_baseline", "--data", str(data), "--steps", "3",
                    "--warmup", "1", "--repeats", "1", "--seq-len", "128", "--micro-batch", "4", "--min-ratio", "0",
                    "--json", "--out", str(tmp / "result.json")], cwd=REPO, env=env, check=True, capture_output=True)
    return tmp


@pytest.fixture(scope="module")
def result(run_dir) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def test_every_contender_ran_and_reported_every_field(result):
    assert set(result["contenders"]) == {"orch", "trainer", "trl"}
    for name, summary in result["contenders"].items():
        assert SUMMARY_FIELDS <= set(summary), name
        assert summary["statuses"] == ["ok"], summary["messages"]
        assert summary["timed_steps_per_repeat"] == [2]
        assert summary["tokens_per_s_median"] > 0
        assert summary["peak_memory_gib"]["process_rss"] > 0  # on a CPU; allocated/reserved on a GPU
        assert summary["precision"] == "fp32"
    assert result["complete"] and result["order"] == ["orch", "trainer", "trl"]
    assert {"command", "date", "device", "versions", "settings", "ratio"} <= set(result)
    assert result["settings"]["cpu_threads"] == 1  # every contender on one torch thread on a CPU


def test_the_trainer_baseline_trains_on_orchs_tokens(result):
    orch, trainer = result["contenders"]["orch"], result["contenders"]["trainer"]
    assert trainer["real_tokens_per_step"] == orch["real_tokens_per_step"]
    assert trainer["label_tokens_per_step"] == orch["label_tokens_per_step"]


def test_trl_trains_on_as_many_real_tokens_per_step(result):
    orch, trl = result["contenders"]["orch"], result["contenders"]["trl"]
    assert trl["real_tokens_per_step"] == pytest.approx(orch["real_tokens_per_step"], rel=REAL_TOKENS_TOLERANCE)
    assert trl["label_tokens_per_step"] == pytest.approx(orch["label_tokens_per_step"], rel=LOSS_TOKENS_TOLERANCE)
    assert trl["trl_packing_strategy"] == "bfd" and trl["trl_padding_free"]


def test_trl_packs_the_same_tokens_as_orch(run_dir):
    from transformers import AutoTokenizer
    from trl.data_utils import pack_dataset

    from trainer import data

    model_path = next((run_dir / "cache" / "random-models").iterdir())
    spec = BenchSpec(model="orch/tiny-llama", model_path=str(model_path), method="lora",
                     data=str(run_dir / "data.jsonl"), seq_len=128, micro_batch=4, grad_accum=1, steps=3, warmup=1,
                     grad_ckpt=False, attention="sdpa", cpu_threads=1, workdir=str(run_dir))
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    records = data.file_records(spec.data)
    orch_rows = data.pack([data.render(r, tokenizer) for r in records], spec.seq_len, tokenizer.pad_token_id)
    trl_rows = pack_dataset(trl_dataset(spec, tokenizer), spec.seq_len, "bfd")
    assert sum(len(ids) for ids in trl_rows["input_ids"]) == sum(row.real_tokens for row in orch_rows)
    assert sum(sum(t != data.IGNORE_INDEX for t in labels) for labels in trl_rows["labels"]) == \
        sum(sum(t != data.IGNORE_INDEX for t in row.labels) for row in orch_rows)
    assert abs(len(trl_rows) - len(orch_rows)) <= max(1, len(orch_rows) // 100)


def test_the_same_adapters_are_trained(result):
    params = {s["trainable_params"] for s in result["contenders"].values()}
    assert len(params) == 1 and params.pop() > 0


def test_the_ratio_is_the_quotient_of_the_medians(result):
    orch = result["contenders"]["orch"]["tokens_per_s_median"]
    for name in ("trainer", "trl"):
        assert result["ratio"][name] == orch / result["contenders"][name]["tokens_per_s_median"]


def _run(tokens_per_s: float, status: str = "ok") -> dict:
    """A made-up run of two timed steps, one second each."""
    return {"status": status, "steps": [[tokens_per_s, 1, 1.0], [tokens_per_s, 1, 1.0]],
            "peak_memory_gib": {"allocated": 1.0, "reserved": 2.0}, "trainable_params": 10}


def test_the_spread_and_ratio_of_made_up_repeats():
    summaries = {"orch": summarize([_run(300), _run(100), _run(200)]),
                 "trl": summarize([_run(50), _run(100), _run(400)])}
    assert summaries["orch"]["tokens_per_s_median"] == 200
    assert (summaries["orch"]["tokens_per_s_min"], summaries["orch"]["tokens_per_s_max"]) == (100, 300)
    assert ratios(summaries) == {"trl": 2.0}


def test_a_failed_repeat_is_kept_out_of_the_median_and_reported():
    summary = summarize([_run(100), _run(0, status="oom"), _run(300)])
    assert summary["tokens_per_s_median"] == 200
    assert summary["statuses"] == ["ok", "oom", "ok"] and summary["tokens_per_s_repeats"][1] is None


def test_bad_arguments_exit_2_with_one_line():
    done = subprocess.run([sys.executable, "-m", "benchmarks.trainer_vs_baseline", "--steps", "2", "--warmup", "2",
                           "--baselines", "axolotl", "--cpu-threads", "0"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--warmup" in done.stderr and "--baselines" in done.stderr
    assert "--cpu-threads must be at least 1" in done.stderr
