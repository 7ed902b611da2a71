"""Datasets as people have them: each record shape in each file kind, a folder, a dataset repository (the Hub's
layout, read by the same datasets.load_dataset call a hub id gets) with a config, a split and a column mapping, and
a separate eval set; the tiny model trains a few steps on each."""

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from orchestrator import preflight
from tests.trainer_helpers import TINY_DATA, write_job
from trainer.__main__ import main
from trainer.config import config_from_dict
from trainer.data import DataError, load_records
from trainer.data_sources import dataset_problems

ROWS = [json.loads(line) for line in TINY_DATA.read_text().splitlines()[:300]]
HUB_README = """---
configs:
- config_name: qa
  data_files:
  - split: train
    path: qa/train-*.jsonl
  - split: test
    path: qa/test.jsonl
- config_name: plain
  data_files:
  - split: train
    path: plain/train.jsonl
---
A dataset laid out as on the Hub.
"""


def question(row):
    return f"{row['instruction']} {row['input']}".strip()


SHAPES = {
    "sharegpt": lambda r: {"conversations": [{"from": "system", "value": "Be brief."},
                                             {"from": "human", "value": question(r)},
                                             {"from": "gpt", "value": r["output"]}]},
    "messages": lambda r: {"messages": [{"role": "user", "content": question(r)},
                                        {"role": "assistant", "content": r["output"]}]},
    "alpaca": lambda r: r,
    "prompt_completion": lambda r: {"prompt": question(r) + "\n", "completion": r["output"]},
    "text": lambda r: {"text": f"{question(r)} {r['output']}"},
}


def write_records(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif path.suffix == ".json":
        path.write_text(json.dumps(records))
    elif path.suffix == ".parquet":
        pd.DataFrame(records).to_parquet(path)
    else:
        pd.DataFrame(records).to_csv(path, index=False)
    return path


def hub_repo(root):
    """A dataset repository: two configs, a train split in two files, a test split, columns named its own way."""
    qa = [{"question": question(r), "answer": r["output"]} for r in ROWS]
    write_records(root / "qa" / "train-00000.jsonl", qa[:120])
    write_records(root / "qa" / "train-00001.jsonl", qa[120:250])
    write_records(root / "qa" / "test.jsonl", qa[250:])
    write_records(root / "plain" / "train.jsonl", [{"text": "unused"}])
    (root / "README.md").write_text(HUB_README)
    return root


def job(**keys):
    return config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, **keys})


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ".csv"])
def test_each_file_kind_reads_the_same_records(tmp_path, suffix):
    path = write_records(tmp_path / f"data{suffix}", ROWS[:20])
    records = load_records(job(dataset=str(path)), tmp_path)
    assert [r["output"] for r in records.train] == [r["output"] for r in ROWS[:20]] and records.eval is None


def test_a_hub_layout_folder_whose_readme_names_data_outside_it_is_refused(tmp_path):
    """Read here from `../outside`, and missing from the dataset folder a cloud run mounts."""
    write_records(tmp_path / "outside" / "a.jsonl", ROWS[:40])
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "README.md").write_text(HUB_README.replace("qa/train-*.jsonl", "../outside/*.jsonl"))
    write_records(tmp_path / "ds" / "qa" / "test.jsonl", ROWS[:5])
    with pytest.raises(DataError, match="its README.md's `configs:` names .*outside.*a.jsonl, outside the dataset's "
                                        "folder: keep the data files inside it"):
        load_records(job(dataset="ds", dataset_config="qa"), tmp_path)


@pytest.mark.parametrize("header, said", [
    ("configs:\n  - config_name: [oops\n", "its README.md's YAML header is not valid YAML at line 3 (expected"),
    ("configs:\n  - config_name: a\n    data_files: a.jsonl\n  - config_name: a\n    data_files: b.jsonl\n",
     "its README.md's `configs:` names config 'a' twice (`datasets` reads the last one unsaid)"),
    ("configs:\n  - config_name: a\n    data_files: a.jsonl\nx: " + "[" * 20_000 + "]" * 20_000 + "\n",
     "its README.md's YAML header is nested too deeply to read: fix the header, or remove README.md"),
    # a header without configs: `datasets` reads it all the same, and fell over it in the trainer
    ("license: mit\nx: " + "[" * 20_000 + "]" * 20_000 + "\n", "its README.md's YAML header is nested too deeply"),
    ("{license: mit, tags: [a\n", "its README.md's YAML header is not valid YAML"),
])
def test_a_hub_layout_folder_whose_readme_configs_datasets_would_misread_is_refused(tmp_path, header, said):
    """A header that is no YAML was `datasets`' bare "while parsing a flow sequence"; a config named twice trained
    on the last one's files alone (100 of 3,100 rows), unsaid; one nested thousands deep was a RecursionError
    traceback from plan, launch and the trainer."""
    from trainer.data_sources import folder_problem

    write_records(tmp_path / "a.jsonl", ROWS[:40])
    write_records(tmp_path / "b.jsonl", ROWS[:5])
    (tmp_path / "README.md").write_text(f"---\n{header}---\n")
    assert said in folder_problem(tmp_path)


def test_a_folder_file_whose_suffix_is_not_lower_case_is_refused_with_its_new_name(tmp_path):
    """`datasets` finds a folder's files by lower-case suffix: a.JSONL was "No (supported) data files found"."""
    from trainer.data_sources import folder_problem

    write_records(tmp_path / "a.jsonl", ROWS[:10]).rename(tmp_path / "a.JsonL")
    assert folder_problem(tmp_path).endswith("holds a.JsonL, whose suffix `datasets` reads in lower case only: rename "
                                             "it a.jsonl")


def test_a_folder_file_that_links_out_of_the_folder_is_said_to_be_a_link(tmp_path):
    """A folder with no README.md, its file a link out of it, was said to have a README whose `configs:` named it."""
    write_records(tmp_path / "elsewhere.jsonl", ROWS[:10])
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    with pytest.raises(DataError, match=r"ds/a.jsonl, a link to .*elsewhere.jsonl, outside the dataset's folder"):
        load_records(job(dataset="ds"), tmp_path)


def test_a_hub_layout_folder_of_several_configs_and_none_chosen_names_them(tmp_path):
    """`datasets` said "Config name is missing" on its first line and the choices on a later one, left out."""
    write_records(tmp_path / "ds" / "a.jsonl", ROWS[:10])
    write_records(tmp_path / "ds" / "b.jsonl", ROWS[:10])
    (tmp_path / "ds" / "README.md").write_text("---\nconfigs:\n  - config_name: first\n    data_files: a.jsonl\n"
                                               "  - config_name: second\n    data_files: b.jsonl\n---\n")
    with pytest.raises(DataError, match=r"holds several configs \(first, second\) in its README.md: set "
                                        "`dataset_config`"):
        load_records(job(dataset="ds"), tmp_path)


def test_a_hub_layout_folder_naming_a_missing_file_says_which(tmp_path):
    """`datasets` named the file, then hundreds of suffixes, and the message was cut mid-word."""
    write_records(tmp_path / "ds" / "a.jsonl", ROWS[:10])
    (tmp_path / "ds" / "README.md").write_text("---\nconfigs:\n  - config_name: default\n    data_files: gone.jsonl\n"
                                               "---\n")
    with pytest.raises(DataError, match=r"its README.md's `configs:` names .*gone.jsonl, which is not there: fix its "
                                        r"data_files\.$"):
        load_records(job(dataset="ds"), tmp_path)


def test_a_folder_whose_split_named_file_would_leave_the_others_out_is_refused(tmp_path):
    """`datasets` reads a folder by its split names once one file has one: a.jsonl beside train.jsonl was left out
    unsaid (50 of 3,050 rows trained). Files each named for a split are read as they are."""
    from trainer.data_sources import folder_problem

    write_records(tmp_path / "ds" / "a.jsonl", ROWS[:40])
    write_records(tmp_path / "ds" / "train.jsonl", ROWS[:5])
    assert "holds train.jsonl, which `datasets` reads as a split by its name, and a.jsonl beside it, which it " \
           "would leave out unsaid" in folder_problem(tmp_path / "ds")
    (tmp_path / "ds" / "a.jsonl").rename(tmp_path / "ds" / "test.jsonl")
    assert folder_problem(tmp_path / "ds") is None


def test_a_folder_of_files_reads_them_all(tmp_path):
    write_records(tmp_path / "data" / "a.jsonl", ROWS[:10])
    write_records(tmp_path / "data" / "b.jsonl", ROWS[10:25])
    assert len(load_records(job(dataset="data"), tmp_path).train) == 25


@pytest.mark.parametrize("kind", ["pipe", "device"])
@pytest.mark.parametrize("key", ["dataset", "eval_dataset"])
def test_a_folder_holding_a_pipe_or_a_device_is_refused_naming_it(tmp_path, kind, key):
    """`datasets` passed over a pipe (or a link to /dev/zero) in a data folder without a word, and the run trained on
    the rest; one named alone was refused already."""
    write_records(tmp_path / "data" / "a.jsonl", ROWS[:10])
    write_records(tmp_path / "train.jsonl", ROWS[10:20])
    (tmp_path / "data" / "sub").mkdir()
    if kind == "pipe":
        os.mkfifo(tmp_path / "data" / "sub" / "b.jsonl")
    else:
        (tmp_path / "data" / "sub" / "b.jsonl").symlink_to("/dev/zero")
    datasets = {"dataset": "data"} if key == "dataset" else {"dataset": "train.jsonl", "eval_dataset": "data"}
    with pytest.raises(DataError, match=re.escape(f"dataset folder {tmp_path / 'data'} holds sub/b.jsonl, a pipe or a "
                                                  "device rather than a file")):
        load_records(job(**datasets), tmp_path)


def test_an_eval_set_that_cannot_be_read_is_named_by_its_own_key(tmp_path):
    """A broken eval set was said to be the `dataset`, and a user whose dataset was fine looked at the wrong key."""
    write_records(tmp_path / "train.jsonl", ROWS[:20])
    with pytest.raises(DataError, match="^eval_dataset '/dev/null' is not a file or a folder"):
        load_records(job(dataset="train.jsonl", eval_dataset="/dev/null"), tmp_path)
    (tmp_path / "eval.jsonl").write_bytes(b'{"text": "\xff"}\n')
    with pytest.raises(DataError, match=re.escape(f"eval_dataset {tmp_path / 'eval.jsonl'} line 1 is not UTF-8")):
        load_records(job(dataset="train.jsonl", eval_dataset="eval.jsonl"), tmp_path)


def test_a_dataset_repository_reads_the_config_and_split_asked_for(tmp_path):
    repo = hub_repo(tmp_path / "repo")
    records = load_records(job(dataset=str(repo), dataset_config="qa", eval_split="test"), tmp_path)
    assert len(records.train) == 250 and len(records.eval) == 50 and set(records.train[0]) == {"question", "answer"}


def test_a_bounded_run_streams_only_what_it_needs(tmp_path):
    repo = hub_repo(tmp_path / "repo")
    records = load_records(job(dataset=str(repo), dataset_config="qa", max_steps=1, micro_batch=1), tmp_path)
    assert 0 < len(records.train) < 250  # 64 tokens of training: a few records read, not the whole split


def test_an_eval_split_of_a_single_file_is_refused(tmp_path):
    path = write_records(tmp_path / "data.jsonl", ROWS[:5])
    with pytest.raises(DataError, match="eval_dataset: PATH"):
        load_records(job(dataset=str(path), eval_split="test"), tmp_path)
    with pytest.raises(DataError, match="eval_dataset .* is one file"):  # the split would be ignored
        load_records(job(dataset=str(path), eval_dataset=str(path), eval_split="test"), tmp_path)


@pytest.mark.parametrize("keys, named", [
    ({"dataset_config": "main"}, "`dataset_config` 'main'"),
    ({"dataset_split": "test"}, "`dataset_split` 'test'"),
    ({"dataset_config": "main", "dataset_split": "test"}, "`dataset_config` 'main' and `dataset_split` 'test'"),
])
def test_a_config_or_split_asked_of_one_file_is_refused(tmp_path, keys, named):
    """Read whole, one file has no config or split to pick: by the reader (hence `orch plan`), the trainer's checks
    and pre-flight. `dataset_split: train` is the default, which a file is read as: it cannot be told apart."""
    write_records(tmp_path / "data.jsonl", ROWS[:5])
    spec = job(dataset="data.jsonl", **keys)
    message = f"dataset data.jsonl is one file, read whole, so {named} (a part of a dataset repository) would be " \
              "ignored"
    with pytest.raises(DataError, match=re.escape(message)):
        load_records(spec, tmp_path)
    for problems in (dataset_problems(spec, tmp_path), preflight.dataset_problems(spec, tmp_path / "job.yaml")):
        assert len(problems) == 1 and problems[0].startswith(message), problems
    assert len(load_records(job(dataset="data.jsonl", dataset_split="train"), tmp_path).train) == 5


def test_a_folder_of_more_than_one_kind_of_file_is_refused_naming_them(tmp_path, capsys):
    """`datasets` reads a folder as its commonest kind and skips the other files without a word: the reader (hence
    `orch plan`), the trainer's checks and pre-flight refuse the folder instead."""
    folder = tmp_path / "data"
    write_records(folder / "a.jsonl", ROWS[:60])
    write_records(folder / "b.jsonl", ROWS[60:120])
    write_records(folder / "c.csv", ROWS[120:180])
    message = (f"dataset folder {folder} holds data files of more than one kind (1 .csv, 2 .jsonl), and a folder is "
               "read as one kind only: keep one kind per folder, or name one file instead of the folder")
    with pytest.raises(DataError, match=re.escape(message)):
        load_records(job(dataset="data"), tmp_path)
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, dataset="data", max_steps=1)), "--output", str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert preflight.dataset_problems(job(dataset="data"), tmp_path / "job.yaml") == [message]


@pytest.mark.parametrize("others", [("notes.txt", "todo.txt"), ("loss.png", "lr.png")])
def test_files_of_a_kind_orch_does_not_train_on_still_make_a_folder_mixed(tmp_path, others):
    """`datasets` reads .txt as text and .png as images too: two of them beside one .jsonl and it reads the folder
    as text (or images), and the .jsonl not at all. A README.md or a file with no suffix is passed over."""
    folder = tmp_path / "data"
    write_records(folder / "a.jsonl", ROWS[:30])
    for name in others:
        (folder / name).write_bytes(b"x")
    found = f"(1 .jsonl, 2 {Path(others[0]).suffix})"
    for problems in (dataset_problems(job(dataset="data"), tmp_path),
                     preflight.dataset_problems(job(dataset="data"), tmp_path / "job.yaml")):
        assert len(problems) == 1 and found in problems[0], problems
    for name in others:
        (folder / name).unlink()
    (folder / "README.md").write_text("# notes\n")
    (folder / "LICENSE").write_text("MIT\n")
    assert len(load_records(job(dataset="data"), tmp_path).train) == 30


def test_a_folder_of_one_reader_is_not_a_mix(tmp_path):
    """.json and .jsonl are read by one reader; a repository's README names each config's files itself; hidden
    files are left out, as `datasets` leaves them out."""
    write_records(tmp_path / "data" / "a.json", ROWS[:10])
    write_records(tmp_path / "data" / "b.jsonl", ROWS[10:25])
    write_records(tmp_path / "data" / ".cache" / "c.csv", ROWS[:3])
    assert len(load_records(job(dataset="data"), tmp_path).train) == 25
    repo = hub_repo(tmp_path / "repo")
    write_records(repo / "plain" / "extra.csv", [{"text": "unused"}])
    assert dataset_problems(job(dataset=str(repo), dataset_config="qa"), tmp_path) == []


def test_a_missing_split_is_a_data_error_naming_it(tmp_path):
    repo = hub_repo(tmp_path / "repo")
    with pytest.raises(DataError, match="split 'validation'"):
        load_records(job(dataset=str(repo), dataset_config="qa", dataset_split="validation"), tmp_path)


def train(tmp_path, **changes):
    output = tmp_path / "out"
    code = main([str(write_job(tmp_path, **{"seq_len": 64, "micro_batch": 2, "max_steps": 3, "eval_batches": 2,
                                            **changes})),
                 "--output", str(output)])
    return code, json.loads((output / "metrics.json").read_text())


@pytest.mark.parametrize("shape, suffix", [("sharegpt", ".jsonl"), ("messages", ".json"), ("alpaca", ".parquet"),
                                           ("prompt_completion", ".csv"), ("text", ".jsonl")])
def test_the_tiny_model_trains_on_each_shape(tmp_path, shape, suffix):
    write_records(tmp_path / f"{shape}{suffix}", [SHAPES[shape](r) for r in ROWS[:120]])
    code, metrics = train(tmp_path, dataset=f"{shape}{suffix}")
    assert code == 0 and metrics["steps"] == 3 and metrics["train_tokens"] > 0 and metrics["eval_sequences"] > 0


def test_the_tiny_model_trains_on_a_repository_with_a_column_mapping_and_an_eval_file(tmp_path):
    hub_repo(tmp_path / "repo")
    write_records(tmp_path / "eval.csv", [{"question": question(r), "answer": r["output"]} for r in ROWS[:16]])
    code, metrics = train(tmp_path, dataset="repo", dataset_config="qa", eval_dataset="eval.csv", eval_fraction=None,
                          dataset_columns={"instruction": "question", "output": "answer"})
    assert code == 0 and metrics["steps"] == 3 and metrics["eval_loss"] is not None
    assert metrics["config"]["dataset_columns"] == [["instruction", "question"], ["output", "answer"]]


def test_a_record_of_no_shape_fails_with_its_line(tmp_path, capsys):
    """It was said as `record 5`, counted from 0: the user looked at the file's fifth line, the wrong record."""
    write_records(tmp_path / "bad.jsonl", [*ROWS[:5], {"question": "?"}])
    code, metrics = train(tmp_path, dataset="bad.jsonl")
    assert code == 2 and "line 6 has none of the known shapes" in metrics["message"]
    assert metrics["status"] == "bad_config" and capsys.readouterr().err.startswith(
        f"error: dataset {tmp_path / 'bad.jsonl'} line 6")


def test_a_record_in_a_folder_of_files_is_named_by_its_file_and_line(tmp_path):
    """Numbered across the folder's files from 0, a record's number matched no line of any of them."""
    write_records(tmp_path / "folder" / "a.jsonl", ROWS[:5])
    write_records(tmp_path / "folder" / "b.jsonl", [*ROWS[5:7], {"question": "?"}])
    code, metrics = train(tmp_path, dataset="folder")
    assert code == 2 and "b.jsonl line 3 has none of the known shapes" in metrics["message"], metrics["message"]
    write_records(tmp_path / "nested" / "sub1" / "part.jsonl", ROWS[:5])  # the same name in two subfolders
    write_records(tmp_path / "nested" / "sub2" / "part.jsonl", [*ROWS[5:7], {"question": "?"}])
    (tmp_path / "n").mkdir()
    code, metrics = train(tmp_path / "n", dataset=str(tmp_path / "nested"))
    assert code == 2 and "sub2/part.jsonl line 3 has none" in metrics["message"], metrics["message"]
    write_records(tmp_path / "pq" / "a.parquet", [{"text": "hello"}] * 5)  # read by `datasets`: numbered across
    write_records(tmp_path / "pq" / "b.parquet", [{"text": "hello"}, {"text": None}])
    (tmp_path / "c").mkdir()
    code, metrics = train(tmp_path / "c", dataset=str(tmp_path / "pq"))
    assert code == 2 and "row 7 of its files in name order" in metrics["message"], metrics["message"]


def test_a_csv_header_that_repeats_a_column_is_refused_before_any_record(tmp_path, capsys):
    """pandas reads the second `output` as `output.1`: the run trained on the first without a word."""
    (tmp_path / "rep.csv").write_text("instruction,output,output\n" + "".join(
        f"q {n},answer {n},other {n}\n" for n in range(120)))
    code = main([str(write_job(tmp_path, seq_len=64, micro_batch=2, max_steps=3, dataset="rep.csv")),
                 "--output", str(tmp_path / "out")])
    assert code == 2 and not (tmp_path / "out").exists()
    assert "the header names column `output` more than once" in capsys.readouterr().err
    (tmp_path / "unread.csv").write_text("instruction,output,meta,meta\n" + "".join(
        f"q {n},answer {n},a,b\n" for n in range(120)))  # a repeat the trainer never reads is none of its business
    code = main([str(write_job(tmp_path, seq_len=64, micro_batch=2, max_steps=1, dataset="unread.csv")),
                 "--output", str(tmp_path / "out2")])
    assert code == 0


@pytest.mark.parametrize("line, message", [
    # pyarrow 26 reads a null among a list of turns into a corrupt column that crashes the process when read back
    ('{"conversations": [null, {"from": "gpt", "value": "x"}]}', "`conversations` must be a list of"),
    ('{"conversations": 3}', "`conversations` must be a list of"),
    ('{"messages": [{"role": [], "content": "x"}]}', "`messages` must be a list of {role, content}"),
    ('{"text": "a\\ud800b"}', "line 6: a string holds a lone UTF-16 surrogate"),
    ('{"messages": [{"role": "user", "content": "a\\u0000b"}]}', "line 6: a string holds a NUL character"),
    ('{"instruction": "a", "input": ["b"], "output": "c"}', "`input` must be a string"),
    ('["text", "x"]', "line 6: a record must be a JSON object"),
    ("null", "line 6: a record must be a JSON object ({\"text\": ...}, {\"messages\": [...]}, ...), got null"),
    ('"text"', "got a string"),  # Python's NoneType and str are no words of the file's
    ('{"text": "x"', "line 6: not a JSON record"),
    ('{"text": "x"}\r{"text": "y"}', "line 6: its lines end in a bare carriage return (\\r)"),  # "Extra data"
    ('{"text": "caf\xe9"}'.encode("latin-1"), "line 6 is not UTF-8 text"),
    ('{"text": NaN}', "line 6: the value of `text` must be a string, got NaN"),  # Python's json reads NaN
    ('{"text": null}', "line 6: the value of `text` must be a string, got null"),
])
def test_a_malformed_jsonl_record_is_refused_in_one_line(tmp_path, capsys, line, message):
    last = line if isinstance(line, bytes) else line.encode()
    (tmp_path / "bad.jsonl").write_bytes("".join(json.dumps(r) + "\n" for r in ROWS[:5]).encode() + last + b"\n")
    code, metrics = train(tmp_path, dataset="bad.jsonl")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in metrics["message"] and len(err) == 1 and message in err[0], err


def test_a_folder_of_jsonl_files_is_read_as_plain_json_too(tmp_path):
    """A folder's split resolves as `datasets` resolves it, then its JSON files are read without pyarrow: a null
    among a record's turns is that record's error, not a crash or a silently shifted column."""
    write_records(tmp_path / "folder" / "train.jsonl", ROWS[:5])
    write_records(tmp_path / "folder" / "test.jsonl", ROWS[5:8])
    assert len(load_records(job(dataset=str(tmp_path / "folder")), tmp_path).train) == 5
    (tmp_path / "folder" / "train.jsonl").write_text('{"conversations": [null, {"from": "gpt", "value": "x"}]}\n')
    code, metrics = train(tmp_path, dataset="folder")
    assert code == 2 and "`conversations` must be a list of" in metrics["message"]
    with pytest.raises(DataError, match="split 'validation': it has test, train"):
        load_records(job(dataset=str(tmp_path / "folder"), dataset_split="validation"), tmp_path)


def test_a_unicode_line_separator_inside_a_record_is_not_the_end_of_its_line(tmp_path):
    """JSON Lines end at a newline byte only: U+2028 in a string (which str.splitlines would cut at) stays text."""
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS[:5])
                                         + json.dumps({"text": "a\u2028b"}, ensure_ascii=False) + "\n")
    records = load_records(job(dataset=str(tmp_path / "data.jsonl")), tmp_path).train
    assert len(records) == 6 and records[-1] == {"text": "a\u2028b"}


def test_a_dataset_too_small_for_one_step_is_bad_input(tmp_path, capsys):
    write_records(tmp_path / "small.jsonl", ROWS[:1])  # one sequence; a step takes micro_batch 2
    code, metrics = train(tmp_path, dataset="small.jsonl", eval_fraction=0, eval_batches=None)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and metrics["status"] == "bad_config" and len(err) == 1, err
    assert err[0].startswith("error: the dataset packs into 1 training sequences, fewer than one step's 2")


@pytest.mark.parametrize("name, content, message", [
    ("bad.parquet", b"PAR1 not a parquet file", "dataset 'bad.parquet' is not a readable Parquet file (Parquet magic"),
    ("bad.csv", "text\ncaf\xe9 au lait\n".encode("latin-1"),
     "dataset 'bad.csv' is not UTF-8 text (byte 0xe9: invalid continuation byte): save it as UTF-8."),
    ("header.csv", b"instruction,output\n", "dataset 'header.csv' holds no records"),  # not `Instruction "train"...`
], ids=["parquet", "csv-latin-1", "csv-header-only"])
def test_a_file_the_datasets_library_cannot_read_is_one_error_line(tmp_path, capfd, name, content, message):
    """`datasets` logs its own `Failed to read ...` line before raising (to the stderr its handler took at import:
    hence capfd): the run says what is wrong once."""
    (tmp_path / name).write_bytes(content)
    code, metrics = train(tmp_path, dataset=name)
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and metrics["status"] == "bad_config" and len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("content, said", [(b"text,n\na,1\nb,2,3\n", "line 3: 3 fields, and the header has 2"),
                                           (b"text,n\na,b,1\nc,2\n", "line 2: 3 fields, and the header has 2")])
def test_a_csv_row_whose_fields_do_not_match_the_header_is_refused_before_any_work(tmp_path, capsys, content, said):
    """A later row with an extra field failed in pandas after the model was built (`Expected 2 fields in line 3`);
    an extra field in the first row made pandas take the first column for an index and train on shifted values."""
    (tmp_path / "ragged.csv").write_bytes(content)
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, dataset="ragged.csv")), "--output", str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0] and "quote each value that holds a comma" in err[0], err
    assert not output.exists()


@pytest.mark.parametrize("record, said", [
    ('{"text": "a", "n": 1' + "0" * 5000 + "}", "a number of thousands of digits, too long to read"),
    ('{"text": ' + "[" * 100_000 + "}", "a value nested too deeply"),
    ('{"text": "a", "text": "b"}', "key 'text' is given twice in one object"),  # json kept the last, unsaid
    ('{"messages": [{"role": "user", "role": "assistant", "content": "x"}]}', "key 'role' is given twice"),
])
def test_a_record_json_parses_but_python_cannot_hold_names_its_line(tmp_path, record, said):
    lines = [json.dumps(row) for row in ROWS[:5]]
    lines.insert(2, record)
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=re.escape(f"data.jsonl line 3: {said}")):
        load_records(job(dataset="data.jsonl"), tmp_path)


def test_a_dataset_that_is_no_file_or_folder_says_so_before_any_work(tmp_path, capfd):
    """/dev/null got `datasets`' "Couldn't find any data file at /dev/null"; then this, once torch had loaded, in a
    metrics.json left in the output folder."""
    code = main([str(write_job(tmp_path, dataset="/dev/null")), "--output", str(tmp_path / "out")])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not (tmp_path / "out").exists(), err
    assert "dataset '/dev/null' is not a file or a folder: use a .jsonl" in err[0]


@pytest.mark.parametrize("name, content, output, said", [
    ("nan.jsonl", b'{"text": "hello"}\n{"text": NaN}\n', None,
     "nan.jsonl line 2: the value of `text` must be a string, got NaN: fix or drop the record."),
    ("bad.parquet", b"not parquet", "made", "is not a readable Parquet file"),
    ("few.jsonl", b'{"text": "hello"}\n', "empty", "packs into 1 training sequences"),
], ids=["nan-record-default-output", "corrupt-parquet-new-output", "too-few-sequences-empty-output"])
def test_orch_train_refusing_the_data_leaves_no_files(tmp_path, monkeypatch, capfd, name, content, output, said):
    """The trainer reads the data once it has made its output folder, and its refusal was left there as a
    bad_config metrics.json (outputs/<name>/ made for it), where `orch plan` refuses the same data writing
    nothing. A folder that was there before stays; a record's error names its file, as plan's does."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    work = tmp_path / "work"
    work.mkdir()
    (work / name).write_bytes(content)
    (work / "empty").mkdir()
    job = write_job(work, name="refused", dataset=name, max_steps=1)
    monkeypatch.chdir(work)
    before = sorted(str(p) for p in work.rglob("*"))
    result = CliRunner().invoke(app, ["train", str(job), *(["--output", output] if output else [])])
    out, err = capfd.readouterr()
    assert result.exit_code == 2 and sorted(str(p) for p in work.rglob("*")) == before
    assert err.startswith("error: ") and err.count("\n") == 1 and said in err and "metrics" not in out, (out, err)
    if name == "nan.jsonl":
        assert f"error: dataset {work / name} line 2" in err


def test_an_eval_dataset_with_no_records_is_named_itself(tmp_path, capsys):
    """A blank eval file was said as the training dataset having no records."""
    (tmp_path / "blank.jsonl").write_text("\n   \n\t\n", encoding="utf-8")
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, eval_dataset="blank.jsonl", eval_fraction=None)), "--output",
                 str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"dataset {tmp_path / 'blank.jsonl'} has no records" in err[0], err


def test_a_parquet_file_of_no_rows_is_said_to_hold_no_records(tmp_path, capfd):
    """It was "not a readable Parquet file (BatchSize must be greater than 0, got 0): write it again"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": pa.array([], pa.string())}), tmp_path / "empty.parquet")
    code, metrics = train(tmp_path, dataset="empty.parquet")
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and metrics["status"] == "bad_config" and len(err) == 1, err
    assert "dataset 'empty.parquet' holds no records (a Parquet file of no rows)" in err[0], err


def test_a_folder_of_parquet_files_of_other_columns_and_a_nul_in_parquet_text_are_refused(tmp_path):
    """`datasets` cast a later file's numbers to the first's text (30,000 integers trained as text), or failed with
    arrow's `Couldn't cast`, naming no file; a NUL in Parquet text was trained on, where JSON and CSV refuse it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainer.config import config_from_dict
    from trainer.data_formats import DataError
    from trainer.data_sources import Source, dataset_problems, read_records

    (tmp_path / "d").mkdir()
    pq.write_table(pa.table({"text": ["hello world"] * 3}), tmp_path / "d" / "a.parquet")
    pq.write_table(pa.table({"text": [1, 2, 3]}), tmp_path / "d" / "b.parquet")
    job = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 1,
                            "dataset": "d"})
    (said,) = dataset_problems(job, tmp_path)
    assert "b.parquet's columns (text int64) are not those of a.parquet (text text)" in said, said
    pq.write_table(pa.table({"text": ["hello world"] * 3, "id": [1, 2, 3]}), tmp_path / "d" / "b.parquet")
    (said,) = dataset_problems(job, tmp_path)  # arrow's `Couldn't cast`, naming no file
    assert "b.parquet's columns (text text, id int64) are not those of a.parquet (text text)" in said, said
    pq.write_table(pa.table({"text": ["hi"] * 3, "extra": ["abc"] * 3}), tmp_path / "d" / "a.parquet")
    pq.write_table(pa.table({"text": ["hi"] * 3, "extra": [1, 2, 3]}), tmp_path / "d" / "b.parquet")
    (said,) = dataset_problems(job, tmp_path)  # a column the trainer never reads: arrow's `Failed to parse` too
    assert "b.parquet's columns (text text, extra int64) are not those of a.parquet (text text, extra text)" in said
    # text is text however arrow keeps it, and a column of nulls only is cast to any kind
    pq.write_table(pa.table({"text": pa.array(["hello world"] * 3)}), tmp_path / "d" / "a.parquet")
    pq.write_table(pa.table({"text": pa.array(["hello world"] * 3, pa.large_string())}), tmp_path / "d" / "b.parquet")
    pq.write_table(pa.table({"text": pa.array(["hi"] * 3).dictionary_encode()}), tmp_path / "d" / "c.parquet")
    pq.write_table(pa.table({"text": pa.array([None] * 3, pa.null())}), tmp_path / "d" / "e.parquet")
    assert dataset_problems(job, tmp_path) == []
    pq.write_table(pa.table({"text": ["fine", "bad\x00text"]}), tmp_path / "nul.parquet")
    with pytest.raises(DataError, match=r"nul.parquet row 2: a string holds a NUL character"):
        read_records(Source("nul.parquet", tmp_path / "nul.parquet", None, "train"), None)


def test_a_local_dataset_that_cannot_be_read_is_said_in_its_own_terms(tmp_path):
    """A folder of empty .txt files was `cannot read dataset 'tx' config default split 'train': Please pass
    `features` or at least one example when writing data`: the hub's words and `datasets`' internals."""
    from trainer.data_sources import Source, _unreadable

    (tmp_path / "tx").mkdir()
    source = Source("tx", tmp_path / "tx", None, "train")
    said = _unreadable(source, ValueError("Please pass `features` or at least one example when writing data"))
    assert said.startswith("dataset 'tx' holds no records") and "split" not in said
    assert "cannot be read (permission denied)" in _unreadable(source, PermissionError(13, "Permission denied"))
    # datasets' message for a bad split name starts with a line break: the error said nothing after the colon
    said = _unreadable(source, ValueError("\nSplit name should match '^\\w+(\\.\\w+)*$' but got '[b]'."))
    assert said.endswith("Split name should match '^\\w+(\\.\\w+)*$' but got '[b]'."), said


def test_a_dataset_folder_that_cannot_be_read_through_is_said_of_the_folder(tmp_path, monkeypatch):
    """`dataset: /proc` stopped `orch plan` with a PermissionError traceback from walking the folder; a folder of
    mode 000, passed over by the walk, was said to hold no data file."""
    import os

    from trainer.data import special_file_problem
    from trainer.data_sources import folder_problem

    (tmp_path / "1" / "cwd").mkdir(parents=True)
    scandir = os.scandir

    def refused(path="."):
        if str(path) == str(tmp_path / "1" / "cwd"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refused)
    said = special_file_problem(tmp_path)
    assert said.startswith(f"folder {tmp_path} cannot be read through (Permission denied: {tmp_path}/1/cwd)")
    assert folder_problem(tmp_path).startswith(f"folder {tmp_path} cannot be read through (Permission denied")


def test_a_csv_cell_is_read_as_the_text_in_the_file(tmp_path):
    """pandas guessed types: an answer `0` was a number the record was refused for, `01000` became 1000, `True` a
    boolean, and `NA`, `None` or an empty cell null (an input of `NA` trained as no input)."""
    from trainer.data_sources import Source, read_records

    path = tmp_path / "qa.csv"
    path.write_text("instruction,input,output\nwhat is 0+0,,0\nzip?,NA,01000\nbool?,None,True\n", encoding="utf-8")
    records = read_records(Source("qa.csv", path, None, "train"), None)[0]
    assert records == [{"instruction": "what is 0+0", "input": "", "output": "0"},
                       {"instruction": "zip?", "input": "NA", "output": "01000"},
                       {"instruction": "bool?", "input": "None", "output": "True"}]


def test_a_folder_of_csv_files_is_read_as_the_text_in_them_and_checked_file_by_file(tmp_path, capsys):
    """Only a single CSV file was read as text: a folder of them kept pandas' guesses (`01000` trained as 1000),
    and a ragged row in one of them was found by pandas after the model was built."""
    from trainer.data_sources import Source, read_records

    folder = tmp_path / "qa"
    folder.mkdir()
    (folder / "a.csv").write_text("instruction,input,output\nwhat is 0+0,,0\n", encoding="utf-8")
    (folder / "b.csv").write_text("instruction,input,output\nzip?,NA,01000\n", encoding="utf-8")
    records = read_records(Source("qa", folder, None, "train"), None)[0]
    assert sorted(records, key=str) == [{"instruction": "what is 0+0", "input": "", "output": "0"},
                                        {"instruction": "zip?", "input": "NA", "output": "01000"}]
    output = tmp_path / "out"
    capsys.readouterr()  # the reading above: datasets' progress lines
    for content, said in ((b"instruction,input,output\nzip?,NA,01000,extra\n", "b.csv, line 2: 4 fields, and the "
                                                                             "header has 3"),
                          (b"question,answer\nzip?,01000\n", "b.csv's columns (question, answer) are not those of "
                                                            "a.csv (instruction, input, output)"),
                          (b"", "b.csv is empty")):
        (folder / "b.csv").write_bytes(content)
        assert main([str(write_job(tmp_path, dataset="qa")), "--output", str(output)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err
        assert not output.exists()


def test_a_csv_header_with_a_blank_name_still_reads(tmp_path):
    """A trailing comma leaves a column without a name, which pandas calls `Unnamed: N`: read as text, its name was
    looked for as "" and the file said to be no CSV pandas can read."""
    from trainer.data_sources import Source, read_records

    path = tmp_path / "qa.csv"
    path.write_text("instruction,output,\nq1,0,\n", encoding="utf-8")
    assert read_records(Source("qa.csv", path, None, "train"), None)[0] == [
        {"instruction": "q1", "output": "0", "Unnamed: 2": ""}]


def test_a_csv_file_is_read_for_the_columns_the_trainer_reads(tmp_path):
    """A 120 KB file of 20,000 columns took `datasets` minutes to read whole; those orch reads are read, and a file
    with none of them, or of a usual width, is read whole, so its error can list what it has (`chosen, rejected`:
    preference data, said so)."""
    from trainer.data_sources import Source, read_records

    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{n}" for n in range(20_000)) + ",text,answer\n" + "," * 20_000 + "hi,42\n")
    assert read_records(Source("wide.csv", path, None, "train"), None)[0] == [{"text": "hi"}]
    mapped = Source("wide.csv", path, None, "train", columns=frozenset({"text", "answer"}))  # dataset_columns
    assert read_records(mapped, None)[0] == [{"text": "hi", "answer": "42"}]
    path.write_text("question,answer\nq,a\n")
    assert read_records(Source("wide.csv", path, None, "train"), None)[0] == [{"question": "q", "answer": "a"}]
    named_but_absent = Source("wide.csv", path, None, "train", columns=frozenset({"text", "answer", "missing"}))
    assert read_records(named_but_absent, None)[0] == [{"question": "q", "answer": "a"}]  # whole, for the error
    path.write_text("prompt,chosen,rejected\nq,a,b\n")
    assert read_records(Source("wide.csv", path, None, "train"), None)[0] == [
        {"prompt": "q", "chosen": "a", "rejected": "b"}]


def test_a_csv_record_is_named_by_its_row_after_the_header(tmp_path):
    """A CSV's rows were called records, as a JSON list's are; a row may span lines, so the row is said."""
    from trainer.data_sources import Source, read_records

    (tmp_path / "d.csv").write_text('text\n"two\nlines"\nthree\n', encoding="utf-8")
    records, places = read_records(Source("d.csv", tmp_path / "d.csv", None, "train"), None)
    assert records == [{"text": "two\nlines"}, {"text": "three"}]
    assert places == ["row 1 after the header", "row 2 after the header"]


def test_a_local_dataset_orch_cannot_read_is_refused_before_torch_loads(tmp_path):
    """`orch train J --set dataset=/etc/passwd` was refused after torch's seconds of imports; orch plan says it at
    once. The trainer now says it before them, in the same words."""
    import subprocess
    import sys

    job = write_job(tmp_path)
    probe = ("import sys; from trainer.__main__ import main; "
             f"code = main([{str(job)!r}, '--output', {str(tmp_path / 'out')!r}, '--set', 'dataset=/etc/passwd']); "
             "print(code, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "False"], done.stdout + done.stderr
    assert "dataset /etc/passwd: use a .jsonl, .json, .parquet or .csv file" in done.stderr
