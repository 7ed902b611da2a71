"""A `tokenizer` folder the trainer cannot use is bad config, said in one line before training: a file in it that is
not UTF-8 (transformers' codec error named none), and a tokenizer with nothing to end or pad a sample with."""

import json
import re

import pytest

from tests.trainer_helpers import TINY_DATA, write_job
from trainer.__main__ import main
from trainer.data import file_records, record_texts
from trainer.random_model import train_tokenizer


def test_a_tokenizer_file_that_is_not_utf8_is_named(tmp_path, capsys):
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "tokenizer_config.json").write_bytes(b'{"x": "\xff"}')
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, tokenizer=str(folder))), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    # the file by its name ahead of its folder: a long path is shortened in the middle on the way out
    assert err.startswith("error: tokenizer_config.json of the tokenizer in '") and err.endswith(
        "' is not UTF-8 text (byte 7): save it as UTF-8, or give another `tokenizer`.\n")
    assert json.loads((output / "metrics.json").read_text())["status"] == "bad_config"


def test_a_tokenizer_without_eos_and_pad_tokens_is_refused_before_training(tmp_path, capsys):
    """Its pad id was None: the first batch failed with `RuntimeError: Could not infer dtype of NoneType`."""
    folder = tmp_path / "tok"
    train_tokenizer(record_texts(file_records(TINY_DATA)), 300).save_pretrained(folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.pop("eos_token"), config.pop("pad_token")
    config_path.write_text(json.dumps(config))
    (folder / "special_tokens_map.json").unlink(missing_ok=True)
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, tokenizer=str(folder))), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: the tokenizer of '{folder}' has neither an eos_token nor a pad_token") and \
        err.count("\n") == 1
    assert "set eos_token (and pad_token, if padding differs) in its tokenizer_config.json" in err
    assert not (output / "steps.jsonl").exists()


def test_a_tokenizer_with_a_pad_token_but_no_eos_token_is_refused_for_samples_of_strings(tmp_path, capsys):
    """Text, prompt+completion and instruction samples end with the eos id, which was None: training crashed on the
    first batch. Said in one line as bad config; chat samples end where their template ends, and need none."""
    from transformers import AutoTokenizer

    from trainer.data_formats import DataError, render

    folder = tmp_path / "tok"
    train_tokenizer(record_texts(file_records(TINY_DATA)), 300).save_pretrained(folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.pop("eos_token")
    config_path.write_text(json.dumps(config))
    (folder / "special_tokens_map.json").unlink(missing_ok=True)
    output = tmp_path / "out"
    assert main([str(write_job(tmp_path, tokenizer=str(folder))), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "instruction+output records end each sample with the tokenizer's eos_token, " \
        f"and the tokenizer '{folder}' has none: set eos_token in its tokenizer_config.json, or give another " \
        "`tokenizer`." in err, err
    assert json.loads((output / "metrics.json").read_text())["status"] == "bad_config"
    assert not (output / "steps.jsonl").exists()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.eos_token_id is None and tokenizer.pad_token_id is not None
    ids, mask = render({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]},
                       tokenizer)
    assert None not in ids and any(mask)
    for record, shape in (({"text": "hi"}, "text"), ({"prompt": "a", "completion": "b"}, "prompt+completion")):
        with pytest.raises(DataError, match=f"^{re.escape(shape)} records end each sample with the tokenizer's eos"):
            render(record, tokenizer)


def test_the_bpe_learns_a_long_run_in_pieces_and_usual_text_as_it_did_whole():
    """A record of megabytes with no space was one word the BPE trainer rescanned for each of its 32,000 merges:
    `orch plan` counted it for minutes. Cut into runs of at most LONGEST_LEARNED_RUN, it learns in a moment, and
    text of usual words learns the merges the whole texts gave."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from trainer.random_model import LONGEST_LEARNED_RUN, SPECIAL_TOKENS, learning_pieces

    texts = record_texts(file_records(TINY_DATA)) + ["  lead\n\n  trailing \n", "a\t\tb   c\r\n", "x 数字123abc!!  ??"]
    whole = Tokenizer(models.BPE())
    whole.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    whole.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=2000, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    learned = train_tokenizer(texts, 2000).backend_tokenizer
    assert json.loads(learned.to_str())["model"] == json.loads(whole.to_str())["model"]
    long_run = "x" * (3 * LONGEST_LEARNED_RUN + 5)
    pieces = list(learning_pieces([f"{long_run} end  ", "\n"]))
    assert "".join(pieces) == f"{long_run} end  \n" and max(map(len, pieces)) == LONGEST_LEARNED_RUN
    from_run = train_tokenizer([long_run], 2000)
    assert max(map(len, from_run.get_vocab())) == LONGEST_LEARNED_RUN  # whole, it learned runs of up to 773
    assert from_run.decode(from_run(long_run)["input_ids"]) == long_run  # and the run still encodes


def test_a_tokenizer_folder_transformers_cannot_build_from_is_bad_config_in_plan_and_trainer(tmp_path, capsys):
    """A folder with only a vocab.txt: plan counted with the tokenizer it trains for orch/tiny-llama instead of the
    one named, said nothing, and the trainer then ended `error` (exit 1) with transformers' paragraph."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "vocab.txt").write_text("a\nb\n", encoding="utf-8")
    job = write_job(tmp_path, tokenizer=str(folder))
    planned = CliRunner().invoke(app, ["plan", str(job), "--budget", "1"])
    assert planned.exit_code == 2 and "cannot be loaded" in planned.stderr, planned.output
    output = tmp_path / "out"
    assert main([str(job), "--output", str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: the tokenizer in '{folder}' cannot be loaded"), err
    assert json.loads((output / "metrics.json").read_text())["status"] == "bad_config"
