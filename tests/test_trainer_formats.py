"""Every record shape renders to tokens with the loss on what the model should learn to write."""

import re

import pytest

from trainer.data_formats import DataError, map_columns, render
from trainer.random_model import train_tokenizer

TEXTS = ["hello world", "the opposite of hot is cold", "### Instruction:", "### Response:", "user assistant"] * 20
SYSTEM = "You are terse."


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300)


def trained_text(tokenizer, record, **kwargs):
    ids, mask = render(record, tokenizer, **kwargs)
    return tokenizer.decode([t for t, keep in zip(ids, mask, strict=True) if keep])


def test_openai_messages_with_a_system_turn_train_on_every_assistant_turn(tokenizer):
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"}, {"role": "user", "content": "again"},
                {"role": "assistant", "content": "world"}]
    trained = trained_text(tokenizer, {"messages": messages})
    assert "hello" in trained and "world" in trained
    assert not any(text in trained for text in ("hi", "again", SYSTEM))


@pytest.mark.parametrize("turns", [
    [{"from": "system", "value": SYSTEM}, {"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}],
    [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"},
     {"role": "assistant", "content": "hello"}],
    # read through pyarrow (a Parquet file, a hub dataset): every turn holds every key any turn has, None where absent
    [{"from": "system", "value": SYSTEM, "role": None, "content": None},
     {"from": None, "value": None, "role": "user", "content": "hi"},
     {"from": "gpt", "value": "hello", "role": None, "content": None}],
], ids=["from-value", "role-content", "both-with-nones"])
def test_sharegpt_conversations_train_on_gpt_turns(tokenizer, turns):
    sharegpt = trained_text(tokenizer, {"conversations": turns})
    messages = trained_text(tokenizer, {"messages": [{"role": "system", "content": SYSTEM},
                                                     {"role": "user", "content": "hi"},
                                                     {"role": "assistant", "content": "hello"}]})
    assert sharegpt == messages and "hello" in sharegpt and "hi" not in sharegpt


def test_conversational_prompt_completion_trains_on_the_completion(tokenizer):
    record = {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "hello"}]}
    trained = trained_text(tokenizer, record)
    assert "hello" in trained and "hi" not in trained


def test_alpaca_and_prompt_completion_train_on_the_response(tokenizer):
    assert trained_text(tokenizer, {"instruction": "Opposite?", "input": "hot", "output": "cold"}) == "cold<|eos|>"
    assert trained_text(tokenizer, {"prompt": "say hi", "completion": " hello"}) == " hello<|eos|>"


def test_whole_sequence_loss_counts_every_token(tokenizer):
    ids, mask = render({"instruction": "Opposite?", "output": "cold"}, tokenizer, completion_only_loss=False)
    assert all(mask) and "Opposite?" in tokenizer.decode(ids)


def test_a_record_of_no_shape_names_its_index_and_keys(tokenizer):
    with pytest.raises(DataError, match=r"record 7 has none of the known shapes.*its keys are 'answer', 'question'\."):
        render({"question": "?", "answer": "!"}, tokenizer, where="record 7")


@pytest.mark.parametrize("record, mapping", [
    ({"prompt": "q", "chosen": "a", "rejected": "b"}, "{completion: chosen}"),
    ({"chosen": "q a", "rejected": "q b"}, "{text: chosen}"),
    ({"chosen": [{"role": "user", "content": "q"}], "rejected": []}, "{messages: chosen}")])
def test_preference_data_is_named_with_the_mapping_that_trains_on_the_chosen_answers(tokenizer, record, mapping):
    """TRL's DPO rows were refused as `none of the known shapes`, which sent the user to rename columns blindly."""
    with pytest.raises(DataError, match=re.escape("record 3 is preference data") + ".*" +
                       re.escape(f"`dataset_columns: {mapping}`")):
        render(record, tokenizer, where="record 3")


@pytest.mark.parametrize("record, message", [
    ({"text": float("nan")}, "record 2: the value of `text` must be a string, got NaN"),
    ({"text": 3}, "record 2: the value of `text` must be a string, got 3"),
    ({"instruction": "Opposite?", "output": None}, "the value of `output` must be a string, got null"),
    ({"prompt": "hi", "completion": [{"role": "assistant", "content": "hello"}]},
     "the value of `completion` must be a string (or `prompt` and `completion` both lists of messages)"),
    ({"messages": []}, "record 2: `messages` is empty ([]): a conversation needs at least one turn"),
    ({"conversations": None}, "record 2: `conversations` is empty (null)"),
    ({"instruction": "q", "input": 0, "output": "a"}, "record 2: `input` must be a string (or absent), got 0"),
    ({"instruction": "q", "input": False, "output": "a"}, "`input` must be a string (or absent), got false"),
])
def test_a_shape_whose_value_is_not_a_string_names_the_key(tokenizer, record, message):
    """The key is there: "none of the known shapes, its keys are ['text']" would send the user to rename it."""
    with pytest.raises(DataError, match=re.escape(message)):
        render(record, tokenizer, where="record 2")


def test_a_bad_sharegpt_role_is_named(tokenizer):
    with pytest.raises(DataError, match="record 3: a ShareGPT turn needs `from`.*from='bot'"):
        render({"conversations": [{"from": "bot", "value": "x"}]}, tokenizer, where="record 3")


@pytest.mark.parametrize("record", [
    {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]},
    {"messages": [{"role": "User", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
    {"messages": [{"role": "", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
    {"messages": [{"role": "\x1b[31m" + "x" * 200, "content": "hi"}]},
    {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "bot", "content": "hello"}]},
], ids=["unknown", "capitalised", "empty", "long", "prompt-completion"])
def test_a_message_of_an_unknown_role_is_refused_naming_it(tokenizer, record):
    """A chat template renders a role it does not know as text, or drops the turn: either way not what was meant."""
    role = next(m["role"] for part in ("messages", "prompt", "completion") for m in record.get(part, [])
                if m["role"] not in ("user", "assistant"))
    with pytest.raises(DataError) as raised:
        render(record, tokenizer, where="record 6")
    message = str(raised.value)
    assert message.startswith("record 6: a message's `role` must be one of system, user, assistant, tool; got ")
    assert repr(role)[:60] in message and "\x1b" not in message and len(message) < 200


def test_a_tool_turn_is_a_known_role(tokenizer):
    """ShareGPT's tool and observation turns become `tool` messages, so an OpenAI `tool` message is read too."""
    messages = [{"role": "user", "content": "hi"}, {"role": "tool", "content": "the opposite"},
                {"role": "assistant", "content": "world"}]
    trained = trained_text(tokenizer, {"messages": messages})
    assert "world" in trained and "opposite" not in trained


def test_column_mapping_renames_columns_to_a_known_shape(tokenizer):
    record = map_columns({"question": "Opposite?", "answer": "cold"}, (("instruction", "question"),
                                                                       ("output", "answer")), "record 1")
    assert trained_text(tokenizer, record) == "cold<|eos|>"
    with pytest.raises(DataError, match=r"record 4: `dataset_columns` names column\(s\) 'reply' that"):
        map_columns({"question": "?"}, (("output", "reply"),), "record 4")


def test_a_conversation_the_chat_template_refuses_is_a_record_error(tokenizer):
    """Mistral's, Llama 2's and Gemma's templates raise on a system turn: the run ended `error` (exit 1) with a
    TemplateError and no record named, and `orch plan` sized the data by its bytes instead."""
    import copy

    strict = copy.deepcopy(tokenizer)
    strict.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role "
                            "not supported') }}{% endif %}{{ m['content'] }}{% endfor %}")
    with pytest.raises(DataError, match=re.escape("record 2: the model's chat template refuses this conversation "
                                                  "(System role not supported): fix or drop the record")):
        render({"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]}, strict,
               where="record 2")


def test_a_chat_template_that_is_no_template_is_blamed_not_the_record(tokenizer):
    """`{% for %}` was said to refuse record 1, to be fixed or dropped, as every record would have been."""
    import copy

    broken = copy.deepcopy(tokenizer)
    broken.chat_template = "{% for %}"
    with pytest.raises(DataError, match="the chat template of tokenizer .* is not a template .*: fix its "
                                        "chat_template, or give another `tokenizer`") as caught:
        render({"messages": [{"role": "user", "content": "hi"}]}, broken, where="record 1")
    assert "record 1" not in str(caught.value)


def test_records_whose_prompts_run_past_seq_len_say_to_raise_it(tokenizer):
    """Each cut at seq_len before its response, none trained a token: the run said the data "packs into 0 training
    sequences" and to lower the batch or seq_len, which makes it worse."""
    from trainer.config import config_from_dict
    from trainer.data import sequences_for

    config = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 48, "max_steps": 1})
    records = [{"instruction": "the opposite of hot is cold " * 20, "output": "cold"}] * 3
    with pytest.raises(DataError, match="no record reaches a token to train on within seq_len 48: each prompt runs "
                                        "past it before its response"):
        sequences_for(records, config, tokenizer)
    assert sequences_for([{"instruction": "hot?", "output": "cold"}] * 3, config, tokenizer).sequences


def test_records_seq_len_cuts_or_leaves_out_are_counted(tokenizer):
    """A record whose prompt ran past seq_len was left out, and one whose response did was cut, both unsaid while
    the rest trained: the plan priced the rest and the run trained on it."""
    from trainer.config import config_from_dict
    from trainer.data import SeqLenFit, sequences_for

    config = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 48, "max_steps": 1})
    whole = {"instruction": "hot?", "output": "cold"}
    past = {"instruction": "the opposite of hot is cold " * 20, "output": "cold"}
    cut = {"instruction": "hot?", "output": "the opposite of hot is cold " * 20}
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    text = {"text": "the opposite of hot is cold " * 20}  # split into sequences, not cut
    packed = sequences_for([whole, past, past, cut, text, chat], config, tokenizer)
    assert packed.fit == SeqLenFit(cut=1, past_seq_len=2, nothing_to_train=1)
    assert packed.fit.note(48) == (
        "records: 2 left out (the prompt runs past seq_len 48); 1 cut at seq_len 48 (the end of the response not "
        "trained on); 1 left out (no token to train on: a chat without an assistant turn, an empty response); a "
        "longer seq_len keeps them")
    assert sequences_for([whole, text], config, tokenizer).fit.note(48) is None


def test_an_eval_sets_bad_record_is_said_of_the_eval_set(tokenizer):
    """It was `dataset <the eval file>: record 1`, sending the user to the training file's key."""
    from pathlib import Path

    from trainer.config import config_from_dict
    from trainer.data import DatasetRecords, sequences_for
    from trainer.data_sources import Source

    config = config_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 48, "max_steps": 1})
    records = DatasetRecords(([{"text": "hot"}, {"text": 3}], None),
                             Source("e.jsonl", Path("e.jsonl"), None, "train", key="eval_dataset"))
    with pytest.raises(DataError, match=re.escape("eval_dataset e.jsonl record 2: the value of `text` must be")):
        sequences_for(records, config, tokenizer)


def test_a_record_of_many_keys_is_refused_naming_the_first_few(tokenizer):
    """A record of 20,000 keys made a 289 KB one-line error, every key listed."""
    many = {f"k{i:05d}": 1 for i in range(20_000)}
    with pytest.raises(DataError) as shape:
        render(many, tokenizer, where="line 6")
    assert "its keys are 'k00000', 'k00001', 'k00002', 'k00003', 'k00004' and 19,995 more." in str(shape.value)
    with pytest.raises(DataError) as mapped:
        map_columns(many, (("output", "answer"),), "line 6")
    assert len(str(mapped.value)) < 300 and "and 19,995 more" in str(mapped.value)


def test_a_long_conversation_is_rendered_no_further_than_its_sample_is_cut(tokenizer, monkeypatch):
    """Each turn renders the conversation so far again: a record of 20,000 turns took more than 500 s to plan, though
    seq_len 256 keeps its first turns alone. Cut at the same place, the sample is the one the whole rendering gave;
    with the loss on every token it is split, not cut, so it is rendered whole."""
    from trainer import data

    turns = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"hello world {n}"} for n in range(60)]
    whole_ids, whole_mask = render({"messages": turns}, tokenizer)
    ids, mask = render({"messages": turns}, tokenizer, max_tokens=64)
    assert 64 < len(ids) < len(whole_ids) and (ids[:64], mask[:64]) == (whole_ids[:64], whole_mask[:64])
    config = data.JobConfig(model="orch/tiny-llama", method="lora", seq_len=64, max_steps=1)
    cut = data.sequences_for([{"messages": turns}], config, tokenizer)
    assert cut.sequences == data.pack([(whole_ids, whole_mask)], 64, tokenizer.pad_token_id)
    assert render({"messages": turns}, tokenizer, completion_only_loss=False, max_tokens=64)[0] == whole_ids
    rendered = []
    real = tokenizer.apply_chat_template
    monkeypatch.setattr(tokenizer, "apply_chat_template", lambda *a, **k: rendered.append(1) or real(*a, **k))
    render({"messages": turns * 300}, tokenizer, max_tokens=64)  # 18,000 turns
    assert len(rendered) < 20


def test_a_conversation_whose_prompt_runs_past_its_cut_still_says_it_had_a_turn_to_train_on(tokenizer):
    """Stopped after a long system turn, before any assistant turn was rendered, such a record was counted as one
    with nothing to train on, and the advice was `completion_only_loss: false` where it is a longer seq_len."""
    from trainer import data

    turns = [{"role": "system", "content": "hello world " * 40}, {"role": "user", "content": "hi"},
             {"role": "assistant", "content": "hello"}]
    config = data.JobConfig(model="orch/tiny-llama", method="lora", seq_len=32, max_steps=1)
    whole = render({"messages": turns}, tokenizer)
    assert data.seq_len_fit([render({"messages": turns}, tokenizer, max_tokens=32)], 32) == \
        data.seq_len_fit([whole], 32) == data.SeqLenFit(cut=0, past_seq_len=1, nothing_to_train=0)
    with pytest.raises(DataError, match="no record reaches a token to train on within seq_len 32"):
        data.sequences_for([{"messages": turns}], config, tokenizer)
