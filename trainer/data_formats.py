"""Record shapes: each record becomes token ids and, per token, whether the loss counts it.

Shapes, in the order they are tried (TRL's dataset conventions where they apply):
- OpenAI chat: `messages: [{role, content}, ...]` (system, user, assistant, tool; any number of turns).
- ShareGPT: `conversations: [{from, value}, ...]` with from human/gpt/system (also user/assistant), or role/content.
- prompt + completion: strings, or TRL's conversational form (lists of messages).
- alpaca: `instruction` [+ `input`] + `output`.
- plain `text`.
Chat turns are rendered with the tokenizer's chat template; the loss is on assistant turns and on responses
(`completion_only_loss: true`), or on every token (`completion_only_loss: false`). TRL's defaults differ by shape: a
prompt+completion record's completion only, but every token of a `messages` record unless `assistant_only_loss`; orch
keeps one rule for every shape, so a job from a TRL config on chat data sets `completion_only_loss: false` to match.
A column mapping (`dataset_columns: {instruction: question, output: answer}`) renames a dataset's columns first.
"""

from enum import Enum
from typing import NamedTuple

from gpu_catalog import checks

IGNORE_INDEX = -100
PROMPT_TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n"
PROMPT_WITH_INPUT_TEMPLATE = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
MESSAGE_ROLES = ("system", "user", "assistant", "tool")  # the roles chat templates render, and ShareGPT's map to
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "model": "assistant",
                  "system": "system", "tool": "tool", "function_call": "assistant", "observation": "tool"}
SHAPES = "messages; conversations; prompt+completion; instruction+output; text"
COLUMNS = ("messages", "conversations", "prompt", "completion", "instruction", "input", "output", "text")  # orch's
STRING_FIELDS = (("prompt", "completion"), ("instruction", "output"), ("text",))  # the shapes made of strings
# the data files the trainer reads, by suffix, and the `datasets` builder each is read with
FILE_KINDS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
TURN_KEYS = {"role": ("from", "role"), "content": ("value", "content")}  # a turn's keys the ShareGPT reader takes


class DataError(ValueError):
    pass


SHAPE_COLUMNS = ("messages", "conversations", "prompt", "completion", "instruction", "input", "output", "text")


def read_columns(columns: tuple[tuple[str, str], ...] = ()) -> set[str]:
    """The dataset columns the trainer reads: the shapes' own, and those `dataset_columns` maps to them."""
    return {*SHAPE_COLUMNS, *(source for _, source in columns)}


def _names(keys: list) -> str:
    """A record's keys as a message lists them, each echoed short, the first few: a record of 20,000 keys made a
    289 KB one-line error."""
    return checks.first_few([checks.short_repr(key) for key in keys])


def map_columns(record: dict, columns: tuple[tuple[str, str], ...], where: str) -> dict:
    """The record with its columns renamed to orch's names (orch name <- dataset column)."""
    if not columns:
        return record
    missing = [source for _, source in columns if source not in record]
    if missing:
        raise DataError(f"{where}: `dataset_columns` names column(s) {_names(missing)} that the dataset lacks; "
                        f"its columns are {_names(sorted(record))}.")
    mapped = {k: v for k, v in record.items() if k not in {source for _, source in columns}}
    mapped.update((name, record[source]) for name, source in columns)
    return mapped


def _messages_from_sharegpt(turns: list, where: str) -> list[dict]:
    if not isinstance(turns, list) or not all(isinstance(turn, dict) for turn in turns):
        raise DataError(f"{where}: `conversations` must be a list of {{from, value}} turns.")
    messages = []
    for turn in turns:
        # a None is an absent key: a Parquet (or hub) column of turns holds every key any turn has
        role = turn["from"] if turn.get("from") is not None else turn.get("role")
        content = turn["value"] if turn.get("value") is not None else turn.get("content")
        if not isinstance(role, str) or role not in SHAREGPT_ROLES or not isinstance(content, str):
            raise DataError(f"{where}: a ShareGPT turn needs `from` (one of {', '.join(SHAREGPT_ROLES)}) "
                            f"and a string `value`; got keys {sorted(turn)} and from={role!r}.")
        messages.append({"role": SHAREGPT_ROLES[role], "content": content})
    return messages


def _check_messages(messages, where: str) -> list[dict]:
    if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages):
        raise DataError(f"{where}: `messages` must be a list of {{role, content}} turns with string values.")
    # a chat template renders a role it does not know as text, or drops the turn: either way not what was meant
    if (unknown := next((m["role"] for m in messages if m["role"] not in MESSAGE_ROLES), None)) is not None:
        raise DataError(f"{where}: a message's `role` must be one of {', '.join(MESSAGE_ROLES)}; got "
                        f"{repr(unknown)[:60]}: fix or drop the record.")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def record_texts(records: list[dict]) -> list[str]:
    """Every string in the records: what the tiny model's tokenizer learns from (before the records are checked, so
    anything else is passed over here and refused, with its record, when it is tokenized)."""
    texts = []
    for record in records:
        for value in record.values():
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, list):
                turns = (m.get("content", m.get("value")) for m in value if isinstance(m, dict))
                texts.extend(text for text in turns if isinstance(text, str))
    return texts


def _eos_id(tokenizer, shape: str) -> int:
    """The token that ends a sample of a shape made of strings. A tokenizer with a pad_token and no eos_token put None
    among the ids, and training crashed on the first batch; chat data ends where its template ends, and needs none."""
    if tokenizer.eos_token_id is None:
        raise DataError(f"{shape} records end each sample with the tokenizer's eos_token, and the tokenizer "
                        f"{checks.short_repr(tokenizer.name_or_path)} has none: set eos_token in its "
                        "tokenizer_config.json, or give another `tokenizer`.")
    return tokenizer.eos_token_id


def _prompt_response(tokenizer, prompt: str, response: str, shape: str) -> tuple[list[int], list[bool]]:
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [_eos_id(tokenizer, shape)]
    return prompt_ids + response_ids, [False] * len(prompt_ids) + [True] * len(response_ids)


def _chat(tokenizer, messages: list[dict], where: str, max_tokens: int | None = None) -> tuple[list[int], list[bool]]:
    """Loss on assistant turns: each turn's tokens are those its rendering adds to the conversation before it. Past
    `max_tokens`, once a turn without loss and one with it are in (or no assistant turn is left), the rest is left
    unrendered: such a sample is cut there (pack), and whether it trains on anything, and where, is already known
    (seq_len_fit); each turn renders the conversation so far again, so a record of 20,000 turns took hours to read."""
    from jinja2 import TemplateError, TemplateSyntaxError

    ids: list[int] = []
    mask: list[bool] = []
    last_assistant = max((n for n, m in enumerate(messages, start=1) if m["role"] == "assistant"), default=0)
    for end, message in enumerate(messages, start=1):
        try:
            rendered = tokenizer.apply_chat_template(messages[:end], tokenize=False)
        except TemplateSyntaxError as exc:  # the template itself is broken: no record is to blame
            raise DataError(f"the chat template of tokenizer {checks.short_repr(tokenizer.name_or_path)} is not a "
                            f"template ({str(exc)[:200]}): fix its chat_template, or give another `tokenizer`.") \
                from None
        except TemplateError as exc:  # Mistral's, Llama 2's, Gemma's raise on a system turn or roles out of turn
            raise DataError(f"{where}: the model's chat template refuses this conversation "
                            f"({str(exc)[:200]}): fix or drop the record, or give a `tokenizer` whose template "
                            "takes it.") from None
        turn_ids = tokenizer(rendered, add_special_tokens=False)["input_ids"][len(ids):]
        ids += turn_ids
        mask += [message["role"] == "assistant"] * len(turn_ids)
        if max_tokens is not None and len(ids) > max_tokens and not all(mask) and \
                (any(mask[1:]) or end >= last_assistant):
            break
    return ids, mask


class ShapeKind(str, Enum):
    """How a record is rendered: a conversation, TRL's conversational prompt and completion, a prompt and its
    response, or plain text."""

    CHAT = "chat"  # parts: (messages,)
    PROMPT_CHAT = "prompt_chat"  # parts: (prompt messages, completion messages)
    PROMPT = "prompt"  # parts: (prompt, response, the shape's name)
    TEXT = "text"  # parts: (text,)


class Shaped(NamedTuple):
    """A record as its shape reads it, checked, before any tokenizer sees it: a plan checks every record of a file it
    tokenizes only the start of this way."""

    kind: ShapeKind
    parts: tuple


def record_shape(record: dict, where: str) -> Shaped:
    """The record's shape, or the DataError the trainer stops on for it."""
    if record.get("messages"):
        return Shaped(ShapeKind.CHAT, (_check_messages(record["messages"], where),))
    if record.get("conversations"):
        return Shaped(ShapeKind.CHAT, (_messages_from_sharegpt(record["conversations"], where),))
    prompt, completion = record.get("prompt"), record.get("completion")
    if isinstance(prompt, list) and isinstance(completion, list):  # TRL's conversational prompt-completion
        return Shaped(ShapeKind.PROMPT_CHAT, (_check_messages(prompt, where), _check_messages(completion, where)))
    if isinstance(prompt, str) and isinstance(completion, str):
        return Shaped(ShapeKind.PROMPT, (prompt, completion, "prompt+completion"))
    if isinstance(record.get("instruction"), str) and isinstance(record.get("output"), str):
        if record.get("input") is not None and not isinstance(record["input"], str):  # 0 and false were dropped
            raise DataError(f"{where}: `input` must be a string (or absent), got "
                            f"{checks.as_written(record['input'])}.")
        template = PROMPT_WITH_INPUT_TEMPLATE if record.get("input") else PROMPT_TEMPLATE
        prompt = template.format(instruction=record["instruction"], input=record.get("input", ""))
        return Shaped(ShapeKind.PROMPT, (prompt, record["output"], "instruction+output"))
    if isinstance(record.get("text"), str):
        return Shaped(ShapeKind.TEXT, (record["text"],))
    for keys in STRING_FIELDS:  # the keys of a shape are there, but a value is a number or null (NaN, an empty cell)
        key = next((key for key in keys if not isinstance(record.get(key, ""), str)), None)
        if key is not None and all(name in record for name in keys):
            also = " (or `prompt` and `completion` both lists of messages)" if "prompt" in keys else ""
            raise DataError(f"{where}: the value of `{key}` must be a string{also}, got "
                            f"{checks.as_written(record[key])}: fix or drop the record.")
    for key in ("messages", "conversations"):  # the shape's key is there, with no turn in it
        if key in record and not record[key]:
            raise DataError(f"{where}: `{key}` is empty ({checks.as_written(record[key])}): a conversation "
                            "needs at least one turn; fix or drop the record.")
    if "chosen" in record and "rejected" in record:
        raise DataError(f"{where} is preference data (chosen and rejected: TRL's DPO and reward-model format); "
                        f"orch's trainer runs supervised fine-tuning only. To train on the chosen answers, add "
                        f"`dataset_columns: {{{_chosen_as(record)}: chosen}}` (rejected is then left unread).")
    raise DataError(f"{where} has none of the known shapes ({SHAPES}): its keys are {_names(sorted(record))}. "
                    "Rename columns with `dataset_columns: {orch_name: your_column}`.")


def _render_shape(record: dict, tokenizer, where: str, max_tokens: int | None) -> tuple[list[int], list[bool]]:
    shaped = record_shape(record, where)
    if shaped.kind is ShapeKind.CHAT:
        return _chat(tokenizer, shaped.parts[0], where, max_tokens)
    if shaped.kind is ShapeKind.PROMPT_CHAT:
        prompt_part, completion_part = shaped.parts
        ids, mask = _chat(tokenizer, prompt_part + completion_part, where, max_tokens)
        prompt_len = len(_chat(tokenizer, prompt_part, where, max_tokens)[0])
        return ids, [False] * prompt_len + mask[prompt_len:]
    if shaped.kind is ShapeKind.PROMPT:
        return _prompt_response(tokenizer, *shaped.parts)
    ids = tokenizer(shaped.parts[0], add_special_tokens=True)["input_ids"] + [_eos_id(tokenizer, "text")]
    return ids, [True] * len(ids)


def _chosen_as(record: dict) -> str:
    """The orch column a preference record's chosen answer reads as: the completion of its prompt (TRL's explicit
    prompt), else a whole conversation or text (TRL's implicit prompt)."""
    if "prompt" in record:
        return "completion"
    return "messages" if isinstance(record["chosen"], list) else "text"


def render(record: dict, tokenizer, where: str = "record 1", completion_only_loss: bool = True,
           max_tokens: int | None = None) -> tuple[list[int], list[bool]]:
    """Token ids and, per token, whether the loss counts it. `where`: the record as its errors name it (its line in
    a JSON Lines file, else its number from 1). `max_tokens`: the sequence length a sample is cut at, past which a
    conversation need not be rendered (its tokens then stop somewhere past it); with the loss on every token, a
    sample is split, not cut, and is rendered whole."""
    ids, mask = _render_shape(record, tokenizer, where, max_tokens if completion_only_loss else None)
    return ids, mask if completion_only_loss else [True] * len(ids)
