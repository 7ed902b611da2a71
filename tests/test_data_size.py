"""`orch plan` sizes the data itself: a local file tokenized as the trainer will see it (checked against a real
epoch of training), an estimate that says so where the tokenizer is absent, a hub card's published size, and
`dataset_tokens` as an override."""

import json
import os
import pickle

import pytest
import yaml
from typer.testing import CliRunner

from gpu_catalog.offers import cloud_offers
from orchestrator import data_size
from orchestrator.cli.main import app
from orchestrator.data_size import _split_bytes
from orchestrator.job import _sized, load_sized_job
from tests.trainer_helpers import REPO
from trainer.__main__ import main

CHATS = (REPO / "examples" / "data" / "tiny_chat.jsonl").read_text().splitlines()[:80]


def chat_job(tmp_path, **changes):
    (tmp_path / "chat.jsonl").write_text("\n".join(CHATS) + "\n")
    job = {"model": "orch/tiny-llama", "method": "lora", "dataset": "chat.jsonl", "seq_len": 128, "micro_batch": 1,
           "epochs": 1, "eval_fraction": 0.05, "log_every": 1000, "save_every_minutes": 60, **changes}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def test_planned_tokens_match_what_an_epoch_trains_on_within_1_percent(tmp_path):
    job = chat_job(tmp_path)
    result = CliRunner().invoke(app, ["plan", str(job), "--budget", "100", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["data"]
    assert data["source"] == "tokenized" and data["epochs"] == 1
    assert main([str(job), "--output", str(tmp_path / "out")]) == 0
    trained = json.loads((tmp_path / "out" / "metrics.json").read_text())["train_tokens"]
    assert abs(data["tokens"] - trained) <= 0.01 * trained


def test_a_folders_epoch_is_counted_whole_whatever_bounds_the_job_planned_first(tmp_path):
    """A bounded job (max_steps) streams a folder and stops early: its prefix (75 sequences of 2,208) was cached as
    the folder's epoch, and every later plan of it by epochs was priced on it."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("a.jsonl", "b.jsonl"):
        (folder / name).write_text("\n".join(CHATS) + "\n")
    epochs = {}
    for bound in ({"max_steps": 2}, {"epochs": 1}):
        job = tmp_path / "job.yaml"
        job.write_text(yaml.safe_dump({"model": "orch/tiny-llama", "method": "lora", "dataset": "data",
                                       "seq_len": 128, **bound}))
        result = CliRunner().invoke(app, ["plan", str(job), "--budget", "100", "--json"])
        assert result.exit_code == 0, result.output
        epochs[next(iter(bound))] = json.loads(result.stdout)["data"]["tokens"]
    job.write_text(yaml.safe_dump({"model": "orch/tiny-llama", "method": "lora", "dataset": "data/a.jsonl",
                                   "seq_len": 128, "epochs": 1}))
    one_file = json.loads(CliRunner().invoke(app, ["plan", str(job), "--budget", "100", "--json"]).stdout)
    assert epochs["max_steps"] == epochs["epochs"] >= 1.9 * one_file["data"]["tokens"], (epochs, one_file["data"])


def test_a_file_named_by_another_path_is_counted_once(tmp_path, monkeypatch):
    """A run folder's copy of a job names its dataset absolute: `orch resume` counted the file again, though the
    plan had said "once; later plans reuse it"."""
    from orchestrator import data_size

    job = chat_job(tmp_path)
    assert CliRunner().invoke(app, ["plan", str(job), "--budget", "100"]).exit_code == 0
    monkeypatch.setattr(data_size, "_count_tokens", lambda *args: pytest.fail("counted again"))
    raw = yaml.safe_load(job.read_text())
    (tmp_path / "elsewhere").mkdir()
    moved = tmp_path / "elsewhere" / "job.yaml"
    moved.write_text(yaml.safe_dump({**raw, "dataset": str(tmp_path / "chat.jsonl")}))
    result = CliRunner().invoke(app, ["plan", str(moved), "--budget", "100", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["data"]["source"] == "tokenized", result.output


def test_an_eval_set_edited_after_a_plan_is_read_again(tmp_path):
    """The count's cache was stamped with the training files alone: an eval file given a bad record after a plan
    passed the next plan, and stopped the trainer once a run had started."""
    job = chat_job(tmp_path, eval_dataset="eval.jsonl", eval_fraction=0.0)
    (tmp_path / "eval.jsonl").write_text("\n".join(CHATS[:10]) + "\n")
    assert CliRunner().invoke(app, ["plan", str(job), "--budget", "100"]).exit_code == 0
    with open(tmp_path / "eval.jsonl", "a") as handle:
        handle.write('{"foo": "bar"}\n')
    _sized.cache_clear()  # a new command: its own process
    result = CliRunner().invoke(app, ["plan", str(job), "--budget", "100"])
    assert result.exit_code == 2 and "eval.jsonl line 11" in " ".join(result.stderr.split()), result.output


def test_a_tokenizer_folder_edited_after_a_plan_is_read_again(tmp_path):
    """The count's cache was not stamped with the `tokenizer` folder: a chat template broken after a plan passed the
    next one, on the old count, and stopped the trainer."""
    from trainer.random_model import train_tokenizer

    train_tokenizer(CHATS, vocab_size=400).save_pretrained(tmp_path / "tok")
    job = chat_job(tmp_path, tokenizer="./tok")
    assert CliRunner().invoke(app, ["plan", str(job), "--budget", "100"]).exit_code == 0
    (template,) = (tmp_path / "tok").glob("chat_template.jinja")
    template.write_text("{% for %}")
    _sized.cache_clear()  # a new command: its own process
    result = CliRunner().invoke(app, ["plan", str(job), "--budget", "100"])
    assert result.exit_code == 2 and "is not a template" in " ".join(result.stderr.split()), result.output


def test_a_linked_job_file_plans_the_data_its_run_trains(tmp_path):
    """Through a link, plan read the job's relative dataset beside the link's target, and train, launch and submit
    beside the link: the plan priced and checked another file than the run trained."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "chat.jsonl").write_text("\n".join(CHATS) + "\n")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "chat.jsonl").write_text("\n".join(CHATS[:20]) + "\n")
    (tmp_path / "real" / "job.yaml").write_text(yaml.safe_dump({"model": "orch/tiny-llama", "method": "lora",
                                                                "dataset": "chat.jsonl", "seq_len": 128, "epochs": 1}))
    (tmp_path / "linked" / "job.yaml").symlink_to(tmp_path / "real" / "job.yaml")
    sized = {}
    for folder in ("real", "linked"):
        result = CliRunner().invoke(app, ["plan", str(tmp_path / folder / "job.yaml"), "--budget", "100", "--json"])
        assert result.exit_code == 0, result.output
        sized[folder] = json.loads(result.stdout)["data"]["tokens"]
    assert sized["linked"] < sized["real"] / 2, sized


def test_a_plan_prices_the_rows_the_trainer_runs_padding_included(tmp_path):
    """Unpacked, each short chat is a row of seq_len tokens, mostly padding, and the GPU runs every one: the plan's
    tokens are the trainer's planned steps x effective batch x seq_len (it once priced the real tokens alone, as if
    the rows were packed), and the data line says how little of the rows the data fills."""
    job = chat_job(tmp_path, packing=False, micro_batch=3, eval_fraction=0.0)
    result = CliRunner().invoke(app, ["plan", str(job), "--budget", "100", "--json"])
    assert result.exit_code == 0, result.output
    planned = json.loads(result.stdout)
    assert main([str(job), "--output", str(tmp_path / "out")]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert planned["train_tokens"] == metrics["planned_steps"] * 3 * 128
    data = planned["data"]
    assert data["sequences"] == metrics["train_sequences"] and data["row_fill"] < 0.9
    assert planned["train_tokens"] > data["tokens"] / data["row_fill"] * 0.95  # the padding is priced
    assert any("`packing: true`" in note for note in planned["notes"])
    shown = CliRunner().invoke(app, ["plan", str(job), "--budget", "100"])
    assert f"{data['row_fill']:.0%} of its rows (the rest is padding" in " ".join(shown.stdout.split())
    packed = CliRunner().invoke(app, ["plan", str(chat_job(tmp_path, micro_batch=3)), "--budget", "100", "--json"])
    assert not any("packing" in note for note in json.loads(packed.stdout)["notes"])


def test_without_the_tokenizer_the_size_is_an_estimate_that_says_so(tmp_path):
    spec, size = load_sized_job(chat_job(tmp_path, model="meta-llama/Llama-3.1-8B"))
    assert size.source == "estimate" and "not on this machine" in size.detail
    assert spec.dataset_tokens == size.tokens == (tmp_path / "chat.jsonl").stat().st_size // 4


def test_unpacked_data_without_the_tokenizer_is_a_row_a_record_padding_priced(tmp_path):
    """Without the tokenizer, `packing: false` was priced as packed: a plan of short records at a fortieth of the
    GPU time it takes, the same plan as with `packing: true`."""
    job = chat_job(tmp_path, model="meta-llama/Llama-3.1-8B", packing=False, eval_fraction=0.1, seq_len=2048)
    spec, size = load_sized_job(job)
    rows = round(len(CHATS) * 0.9)
    assert (size.source, size.sequences, spec.dataset_sequences) == ("estimate", rows, rows)
    assert f"{rows:,} unpacked rows of 2048, a record each" in size.detail and "not on this machine" in size.detail
    unpacked = json.loads(CliRunner().invoke(app, ["plan", str(job), "--budget", "100", "--json"]).stdout)
    packed = json.loads(CliRunner().invoke(app, ["plan", str(chat_job(tmp_path, model="meta-llama/Llama-3.1-8B",
                                                                      packing=True, eval_fraction=0.1, seq_len=2048)),
                                                 "--budget", "100", "--json"]).stdout)
    assert packed["data"]["sequences"] is None
    assert unpacked["train_tokens"] == rows * 2048 > 10 * packed["train_tokens"]
    assert any("`packing: true`" in note for note in unpacked["notes"])


def test_json_lines_are_counted_across_read_blocks(tmp_path, monkeypatch):
    """Records are counted a block at a time: a line cut by a block's end is one record, a blank line none."""
    from orchestrator import data_size
    from orchestrator.data_size import _json_lines

    lines = [json.dumps({"text": "x" * (i * 7919 % 50_000)}) for i in range(300)]
    path = tmp_path / "big.jsonl"
    path.write_text("\n\n".join(lines))  # blank lines between, no line break after the last
    assert path.stat().st_size > 3 * (1 << 20)
    assert _json_lines([path]) == 300
    assert _json_lines([path, tmp_path / "other.json"]) is None
    # past TOKENIZE_MAX_BYTES, the first bytes' records scaled by the whole's: a 100 GB folder was read through
    monkeypatch.setattr(data_size, "TOKENIZE_MAX_BYTES", path.stat().st_size // 3)
    assert _json_lines([path, path]) == pytest.approx(600, rel=0.1)


def test_dataset_tokens_overrides_the_count(tmp_path):
    spec, size = load_sized_job(chat_job(tmp_path, dataset_tokens=12345))
    assert (spec.dataset_tokens, size.source) == (12345, "job")


def test_a_hub_card_gives_the_split_size_of_the_config_asked_for():
    card = [{"config_name": "default", "splits": [{"name": "train", "num_bytes": 4_000_000, "num_examples": 10}]},
            {"config_name": "sft", "splits": [{"name": "train_sft", "num_bytes": 8_000_000, "num_examples": 20},
                                              {"name": "test_sft", "num_bytes": 800, "num_examples": 2}]}]
    assert _split_bytes(card, "sft", "train_sft") == (8_000_000, 20)
    assert _split_bytes(card, None, "train") == (4_000_000, 10)
    assert _split_bytes(card[0], None, "test") is None


def planned_data_tokens(job) -> int:
    """The tokens `orch plan` counts for the job, with nothing kept in memory between plans (the disk cache alone)."""
    _sized.cache_clear()
    cloud_offers.cache_clear()
    result = CliRunner().invoke(app, ["plan", str(job), "--budget", "100", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["data"]["tokens"]


def test_a_damaged_cache_entry_is_counted_again_and_never_fails_a_plan(tmp_path, monkeypatch):
    """orch's cache is safe to lose: a token count or a parsed catalog that is truncated, of another shape or of
    another type is rebuilt, and the plan comes out as it did."""
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    job = chat_job(tmp_path)

    tokens = planned_data_tokens(job)
    (count,) = (tmp_path / "cache" / "data-sizes").iterdir()
    (catalog,) = (tmp_path / "cache" / "catalog").iterdir()
    for damage in (b'{"tokens": -5, "train_sequences": 1}',):  # each one costs a count in a subprocess
        count.write_bytes(damage)
        catalog.write_bytes(pickle.dumps([1, 2]))
        assert planned_data_tokens(job) == tokens, damage


@pytest.mark.parametrize("entry", [
    {"tokens": 100, "train_sequences": 5, "seq_len_fit": {"cut": "x", "past_seq_len": 0, "nothing_to_train": 0}},
    {"tokens": 100, "train_sequences": 5, "seq_len_fit": {"cut": 1}},
    {"tokens": 1, "train_sequences": 99_999_999_999},  # more sequences than tokens
    {"tokens": 100, "train_sequences": 5, "sampled_bytes": "many"},
    {"tokens": True, "train_sequences": 1},
])
def test_a_cache_entry_no_count_makes_is_no_count(tmp_path, entry):
    """A text in seq_len_fit was a traceback in the plan's note ("Cannot specify ',' with 's'"), and 1 token in 10^11
    sequences was planned as read."""
    cache = tmp_path / "entry.json"
    cache.write_text(json.dumps(entry))
    assert data_size._cached_count(cache) is None
    cache.write_text(json.dumps({"tokens": 100, "train_sequences": 5, "seq_len_fit": {"cut": 1, "past_seq_len": 0,
                                                                                      "nothing_to_train": 2}}))
    assert data_size._cached_count(cache) is not None


def test_a_cache_entry_that_is_no_file_is_counted_again_and_replaced(tmp_path, monkeypatch):
    """A pipe in a cache entry's place hung every plan (the token count's and the parsed catalog's), and a link to
    /dev/zero filled memory: only a regular file is read, and the rebuilt entry replaces it."""
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    job = chat_job(tmp_path)

    tokens = planned_data_tokens(job)
    (count,) = (tmp_path / "cache" / "data-sizes").iterdir()
    (catalog,) = (tmp_path / "cache" / "catalog").iterdir()
    count.unlink()
    count.symlink_to("/dev/zero")
    catalog.unlink()
    os.mkfifo(catalog)
    assert planned_data_tokens(job) == tokens
    assert count.is_file() and not count.is_symlink() and catalog.is_file()


def test_a_model_the_trainer_refuses_is_said_as_the_trainer_says_it_not_blamed_on_the_data(tmp_path):
    """A model folder with no tokenizer (or an unknown tiny model) made the count fail, and the plan said the dataset
    "packs into 0 training sequences ... add data"; `orch train` names the model."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 128, "vocab_size": 100}))
    for model, said in ((str(tmp_path / "model"), "holds no tokenizer"), ("orch/tiny-llamaX", "unknown model")):
        _sized.cache_clear()
        result = CliRunner().invoke(app, ["plan", str(chat_job(tmp_path, model=model)), "--budget", "100"])
        assert result.exit_code == 2 and said in result.stderr and "packs into" not in result.stderr, result.stderr


def test_a_count_that_fails_is_an_estimate_that_says_why_not_a_data_problem(tmp_path, monkeypatch):
    """A count that failed (a tokenizer that breaks, the count's timeout on a slow machine) has no sequences: it was
    reported as a dataset too small for one step."""
    monkeypatch.setattr("orchestrator.data_size._count_tokens", lambda spec, base_dir: {"error": "took over 600 s"})
    spec, size = load_sized_job(chat_job(tmp_path))
    assert size.source == "estimate" and "tokenizing failed: took over 600 s" in size.detail
    assert spec.dataset_tokens == size.tokens
    # unpacked, its rows are counted all the same: priced as packed, short records were a fortieth of the GPU time
    _sized.cache_clear()
    spec, size = load_sized_job(chat_job(tmp_path, packing=False, eval_fraction=0.1))
    assert size.sequences == spec.dataset_sequences == round(len(CHATS) * 0.9), size


def test_a_folder_of_mixed_kinds_over_the_tokenize_limit_is_refused_as_launch_refuses_it(tmp_path, monkeypatch):
    """Over TOKENIZE_MAX_BYTES nothing is counted, so `dataset: /etc` planned as an estimate of tokens while launch's
    pre-flight refused it."""
    monkeypatch.setattr("orchestrator.data_size.TOKENIZE_MAX_BYTES", 10)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jsonl").write_text("\n".join(CHATS) + "\n")
    (tmp_path / "data" / "b.csv").write_text("text\nhello\n")
    result = CliRunner().invoke(app, ["plan", str(chat_job(tmp_path, dataset="data")), "--budget", "100"])
    assert result.exit_code == 2 and "more than one kind (1 .csv, 1 .jsonl)" in result.stderr, result.stderr


def test_a_folder_holding_a_pipe_or_device_is_refused_by_a_cached_count_and_a_byte_estimate(tmp_path, monkeypatch):
    """The trainer refuses a data folder holding a pipe or a device (trainer.data.special_file_problem), and so did a
    plan's first count; a count reused from the cache (the pipe is no file of its key) and a folder sized by its
    bytes planned it."""
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jsonl").write_text("\n".join(CHATS) + "\n")
    job = chat_job(tmp_path, dataset="data", eval_fraction=None)

    def plan():
        _sized.cache_clear()
        return CliRunner().invoke(app, ["plan", str(job), "--budget", "100"])

    assert plan().exit_code == 0  # counted, and the count cached
    os.mkfifo(tmp_path / "data" / "b.jsonl")
    (tmp_path / "data" / "c.jsonl").symlink_to("/dev/zero")
    for limit_bytes in (None, 10):  # the cached count, then a folder over the tokenizing limit
        if limit_bytes:
            monkeypatch.setattr("orchestrator.data_size.TOKENIZE_MAX_BYTES", limit_bytes)
        result = plan()
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
        assert "holds b.jsonl, a pipe or a device rather than a file" in " ".join(result.stderr.split()), \
            result.stderr
    job = chat_job(tmp_path, eval_dataset="data", eval_fraction=None)  # an eval folder; training file by its bytes
    result = plan()
    assert result.exit_code == 2 and "holds b.jsonl, a pipe or a device" in result.stderr, result.output
    for name in ("b.jsonl", "c.jsonl"):
        (tmp_path / "data" / name).unlink()
    (tmp_path / "data" / "d.jsonl").symlink_to(tmp_path / "gone.jsonl")  # a link to nothing, passed over unsaid too
    result = plan()
    assert result.exit_code == 2 and "holds d.jsonl, a link to nothing" in result.stderr, result.output


def test_a_first_count_is_said_on_a_terminals_stderr_and_never_on_stdout_a_pipe_or_a_cache_hit(tmp_path, monkeypatch):
    """The first plan of a dataset sat silent for 5 to 8 s while a process counted its tokens. A person at a terminal
    now reads one line on stderr as the count starts; a --json stdout, a pipe or a log (where an error stays the one
    line on stderr) and a plan that finds the count cached get none."""
    import subprocess

    from rich.console import Console

    from orchestrator.cli import display

    real_run, counts = subprocess.run, []

    def run(command, *args, **kwargs):  # the count's process, answered at once; any other command runs
        if "trainer.count_tokens" not in command:
            return real_run(command, *args, **kwargs)
        counts.append(command)
        return subprocess.CompletedProcess(command, 0, '{"tokens": 5000, "train_sequences": 100}\n', "")

    monkeypatch.setattr(subprocess, "run", run)
    job = chat_job(tmp_path)

    def plan(cache: str, at_terminal: bool):
        monkeypatch.setenv("ORCH_CACHE", str(tmp_path / cache))
        monkeypatch.setattr(display, "err_console", Console(stderr=True, force_terminal=at_terminal, width=80))
        _sized.cache_clear()
        result = CliRunner().invoke(app, ["plan", str(job), "--budget", "100", "--json"])
        assert result.exit_code == 0 and json.loads(result.stdout)["data"]["tokens"] == 5000, result.output
        return result.stderr

    assert plan("first", at_terminal=True) == "counting tokens in chat.jsonl (once; later plans reuse it)...\n"
    assert plan("first", at_terminal=True) == "" and len(counts) == 1  # cached: no count, nothing said
    assert plan("second", at_terminal=False) == "" and len(counts) == 2  # counted, into a pipe: nothing said


def test_a_large_jsonl_file_is_counted_on_a_sample_of_whole_records_and_scaled(tmp_path, monkeypatch):
    """A 54 MB file kept `orch plan` tokenizing for over 5 minutes (a 5 MB one 100 s), even for a 2-step run."""
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    job = chat_job(tmp_path, eval_fraction=0)
    _, whole = load_sized_job(job)
    assert whole.source == "tokenized"
    size_bytes = (tmp_path / "chat.jsonl").stat().st_size
    monkeypatch.setattr("orchestrator.data_size.SAMPLE_BYTES", size_bytes // 2)
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache2"))  # not the count just made
    second = tmp_path / "again.yaml"  # another job file: load_sized_job keeps the size it read for one
    second.write_text(job.read_text())
    _, sampled = load_sized_job(second)
    assert sampled.source == "sampled" and "MB tokenized as the trainer will" in sampled.detail
    assert abs(sampled.tokens - whole.tokens) <= 0.15 * whole.tokens
    assert not list((tmp_path / "cache2").rglob("*-sample.jsonl"))  # the sample goes once counted


def test_a_bad_record_in_the_sample_is_said_of_the_file_at_its_own_line(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    broken = CHATS[:3] + ["{not json"] + CHATS[3:]
    (tmp_path / "chat.jsonl").write_text("\n".join(broken) + "\n")
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"model": "orch/tiny-llama", "method": "lora", "dataset": "chat.jsonl",
                                   "seq_len": 128, "micro_batch": 1, "epochs": 1}))
    monkeypatch.setattr("orchestrator.data_size.SAMPLE_BYTES", (tmp_path / "chat.jsonl").stat().st_size // 2)
    result = CliRunner().invoke(app, ["plan", str(job), "--budget", "100"])
    assert result.exit_code == 2 and f"{tmp_path / 'chat.jsonl'}" in result.stderr and "line 4" in result.stderr, \
        result.stderr
    assert "-sample.jsonl" not in result.stderr


def test_a_first_record_longer_than_the_sample_is_counted_whole_not_cut_into_a_broken_line(tmp_path, monkeypatch):
    """With no line end in the sample, the cut record read as `line 1: not a JSON record`: a good file refused."""
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    job = chat_job(tmp_path, eval_fraction=None)
    monkeypatch.setattr("orchestrator.data_size.SAMPLE_BYTES", len(CHATS[0]) // 2)
    _, size = load_sized_job(job)
    assert size.source == "tokenized"


def test_orch_plans_own_parser_says_a_first_count_at_a_terminal(tmp_path):
    """`orch plan` answers through its own lean parser, which never loaded the module that shows progress notes: the
    first plan of a dataset sat silent for 13 s at a terminal, though the notes worked through the typer app."""
    import pty
    import subprocess
    import sys

    job = chat_job(tmp_path)
    stderr_main, stderr_terminal = pty.openpty()
    env = {**os.environ, "ORCH_HOME": str(tmp_path / "home"), "ORCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", "from orchestrator.cli.entry import main; main()", "plan", str(job),
                           "--budget", "100", "--json"], stdout=subprocess.PIPE, stderr=stderr_terminal, env=env,
                          timeout=300)
    os.close(stderr_terminal)
    said = " ".join(os.read(stderr_main, 4096).decode().split())  # folded to the terminal's width
    os.close(stderr_main)
    assert done.returncode == 0 and json.loads(done.stdout)["data"]["tokens"] > 0
    assert "counting tokens in chat.jsonl (once; later plans reuse it)..." in said
