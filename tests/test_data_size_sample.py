"""A large JSON-lines file is sized from a sample of its first records (orchestrator/data_size.py): each plan keeps a
sample of its own, a sample not written is never blamed on the user's file, and a file with no whole record in the
sample is sized as its bytes allow. `_count_tokens` is replaced by a stub, so no test here waits on a tokenizer
or on timing."""

import json
from pathlib import Path

import pytest

from gpu_catalog.errors import UserError
from orchestrator import data_size
from trainer.config import config_from_dict

RECORD = json.dumps({"text": "hello world"}) + "\n"


@pytest.fixture
def job(tmp_path, monkeypatch):
    """A spec whose .jsonl dataset is over a (shrunk) SAMPLE_BYTES, and orch's cache in tmp_path."""
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data_size, "SAMPLE_BYTES", 10 * len(RECORD))
    (tmp_path / "data.jsonl").write_text(RECORD * 40)
    return config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "dataset": "data.jsonl",
                             "max_steps": 2})


def test_a_second_plan_counting_beside_the_first_never_removes_its_sample(job, tmp_path, monkeypatch):
    """Both plans wrote `<cache>/<digest>-sample.jsonl` and removed it when done, so a plan whose count had not yet
    opened it failed and blamed the user's file ("Couldn't find any data file at ..."). The second plan runs here
    inside the first one's count, which is the race without its timing."""
    samples = []

    def count(spec, base_dir):
        samples.append(spec.dataset)
        if len(samples) == 1:
            data_size.dataset_size(job, tmp_path)  # another plan of the same file, while this count runs
        assert Path(spec.dataset).is_file(), "a sample was removed under its count"
        return {"error": "stub"}

    monkeypatch.setattr(data_size, "_count_tokens", count)
    data_size.dataset_size(job, tmp_path)
    assert len(samples) == 2 and samples[0] != samples[1] and all(s.endswith(".jsonl") for s in samples)
    assert not list((tmp_path / "cache").rglob("*sample*"))  # each plan removes its own


def test_a_sample_that_cannot_be_written_is_not_blamed_on_the_dataset(job, tmp_path, monkeypatch):
    """A cache that is a file: the sample was never written, its count said `Couldn't find any data file at
    <sample>`, and that name was rewritten to the user's file, which the plan then refused."""
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    monkeypatch.setattr(data_size, "_count_tokens", lambda spec, base_dir: {
        "data_error": f"Couldn't find any data file at {spec.dataset}."})
    try:
        size = data_size.dataset_size(job, tmp_path)
    except UserError as exc:
        pytest.fail(f"the user's file was blamed: {exc}")
    assert size.source == "estimate" and "tokenizing failed" in size.detail


def test_a_file_over_the_tokenize_limit_with_no_whole_record_in_the_sample_is_estimated_not_counted_whole(
        job, tmp_path, monkeypatch):
    """A first record longer than the sample sent a 66 MB file to be tokenized whole (into the 600 s timeout); over
    TOKENIZE_MAX_BYTES it gets the byte estimate it got before sampling existed, and under it a whole count."""
    (tmp_path / "data.jsonl").write_text(json.dumps({"text": "x " * 200}) + "\n" + RECORD * 40)
    counted = []
    monkeypatch.setattr(data_size, "_count_tokens", lambda spec, base_dir: counted.append(spec.dataset) or
                        {"tokens": 1000, "train_sequences": 100})
    monkeypatch.setattr(data_size, "TOKENIZE_MAX_BYTES", 1000)
    size = data_size.dataset_size(job, tmp_path)
    assert size.source == "estimate" and "not tokenized at plan time" in size.detail and counted == []
    monkeypatch.setattr(data_size, "TOKENIZE_MAX_BYTES", 10**6)
    assert data_size.dataset_size(job, tmp_path).source == "tokenized" and counted == ["data.jsonl"]


def test_the_records_seq_len_cuts_are_scaled_with_the_sample(job, tmp_path, monkeypatch):
    """The plan's data line was scaled from the sample and its note on records left out was not: 388 of about
    1,164, beside figures for the whole file."""
    counted = {"tokens": 100, "train_sequences": 10, "eval_sequences": 0,
               "seq_len_fit": {"cut": 1, "past_seq_len": 2, "nothing_to_train": 0}}
    monkeypatch.setattr(data_size, "_count_tokens", lambda spec, base_dir: dict(counted))
    size = data_size.dataset_size(job, tmp_path)
    assert size.source == "sampled" and size.seq_len_fit == {"cut": 4, "past_seq_len": 8, "nothing_to_train": 0}


@pytest.mark.parametrize("last, said", [
    ('{"text": "cut off\n', "line 41: not a JSON record"),
    ('{"txt": "a typo"}\n', "line 41 has none of the known shapes"),
    ('{"messages": [{"role": "robot", "content": "hi"}]}\n', "line 41: a message's `role` must be one of"),
])
def test_a_record_past_the_sample_the_trainer_would_stop_on_is_refused(job, tmp_path, monkeypatch, last, said):
    """Only the sample was read: a bad record past it stopped the trainer once a cloud VM was paid for. The records
    past it are read for their JSON and shape, and the file is refused with the record's line."""
    monkeypatch.setattr(data_size, "_count_tokens", lambda spec, base_dir: {"tokens": 100, "train_sequences": 10})
    assert data_size.dataset_size(job, tmp_path).source == "sampled"  # the same file, whole: counted from its sample
    with (tmp_path / "data.jsonl").open("a") as data:
        data.write(last)
    with pytest.raises(UserError, match=f"dataset {tmp_path / 'data.jsonl'} {said}") as refused:
        data_size.dataset_size(job, tmp_path)
    assert "the trainer would stop on it" in str(refused.value)


def test_a_sample_a_long_record_cuts_under_half_is_not_scaled_up(job, tmp_path, monkeypatch):
    """A 10 MB record at line 6 cut the 1 MB sample to five records, scaled 10,000 times by the file's bytes: a
    4-step run (the record is cut at seq_len) was planned at 19 min, "its first 0 MB tokenized". Such a file is
    sized as before sampling: counted whole under TOKENIZE_MAX_BYTES."""
    (tmp_path / "data.jsonl").write_text(RECORD * 4 + json.dumps({"text": "x " * 400}) + "\n" + RECORD * 40)
    counted = []
    monkeypatch.setattr(data_size, "_count_tokens", lambda spec, base_dir: counted.append(spec.dataset) or
                        {"tokens": 1000, "train_sequences": 100})
    size = data_size.dataset_size(job, tmp_path)
    assert size.source == "tokenized" and counted == ["data.jsonl"] and size.tokens == 1000


def test_a_count_made_by_an_earlier_rule_is_made_again(job, tmp_path, monkeypatch):
    """A count is kept until its file changes: one inflated by an earlier rule (a sample a long record cut short,
    scaled 10,000 times) was still read after the rule was mended."""
    counted = []
    monkeypatch.setattr(data_size, "_count_tokens", lambda spec, base_dir: counted.append(1) or
                        {"tokens": 100, "train_sequences": 10})
    monkeypatch.setattr(data_size, "COUNT_RULES", data_size.COUNT_RULES - 1)
    data_size.dataset_size(job, tmp_path)
    data_size.dataset_size(job, tmp_path)
    assert len(counted) == 1  # kept
    monkeypatch.undo()
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data_size, "SAMPLE_BYTES", 10 * len(RECORD))
    monkeypatch.setattr(data_size, "_count_tokens", lambda spec, base_dir: counted.append(1) or
                        {"tokens": 100, "train_sequences": 10})
    data_size.dataset_size(job, tmp_path)
    assert len(counted) == 2
