"""Writes tiny_instruct.jsonl (alpaca rows) and tiny_chat.jsonl (ShareGPT conversations with a system turn, two
exchanges each): small, learnable pairs for the tiny CPU jobs and the tests. Generated here; licence: the project's.

    python examples/data/make_tiny_data.py

Deterministic (fixed seed); the output is committed, so nothing is downloaded. Patterns: arithmetic, counting,
opposites, plurals and a few made-up facts, enough for a 1M-parameter model's loss to fall within a minute.
"""

import json
import random
from pathlib import Path

OPPOSITES = {"hot": "cold", "big": "small", "fast": "slow", "up": "down", "light": "dark", "early": "late",
             "open": "closed", "full": "empty", "happy": "sad", "loud": "quiet", "old": "new", "wet": "dry"}
PLURALS = {"cat": "cats", "box": "boxes", "city": "cities", "mouse": "mice", "child": "children", "leaf": "leaves",
           "bus": "buses", "tooth": "teeth", "dog": "dogs", "baby": "babies", "knife": "knives", "fox": "foxes"}
SOUNDS = {"cow": "moo", "dog": "woof", "cat": "meow", "duck": "quack", "sheep": "baa", "owl": "hoot",
          "lion": "roar", "frog": "croak", "bee": "buzz", "horse": "neigh"}
COLOURS = {"grass": "green", "snow": "white", "coal": "black", "a banana": "yellow", "the sky": "blue",
           "a tomato": "red", "an orange": "orange", "a plum": "purple"}


def examples(rng: random.Random):
    a, b = rng.randint(0, 50), rng.randint(0, 50)
    yield {"instruction": f"Add {a} and {b}.", "input": "", "output": f"{a} plus {b} is {a + b}."}
    start = rng.randint(1, 20)
    stop = start + rng.randint(2, 6)
    numbers = ", ".join(str(n) for n in range(start, stop + 1))
    yield {"instruction": f"Count from {start} to {stop}.", "input": "", "output": f"{numbers}."}
    word = rng.choice(list(OPPOSITES))
    yield {"instruction": "Give the opposite of the word.", "input": word, "output": f"The opposite of {word} is "
           f"{OPPOSITES[word]}."}
    noun = rng.choice(list(PLURALS))
    yield {"instruction": f"What is the plural of {noun}?", "input": "", "output": f"One {noun}, two {PLURALS[noun]}."}
    animal = rng.choice(list(SOUNDS))
    yield {"instruction": f"What sound does a {animal} make?", "input": "", "output": f"A {animal} says "
           f"{SOUNDS[animal]}."}
    thing = rng.choice(list(COLOURS))
    yield {"instruction": f"What colour is {thing}?", "input": "", "output": f"{thing.capitalize()} is "
           f"{COLOURS[thing]}."}


def main(rows_per_pattern: int = 500, seed: int = 0) -> None:
    rng = random.Random(seed)
    rows = [row for _ in range(rows_per_pattern) for row in examples(rng)]
    rng.shuffle(rows)
    path = Path(__file__).with_name("tiny_instruct.jsonl")
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {len(rows)} rows to {path}")
    chats = [sharegpt(rows[i], rows[i + 1]) for i in range(0, len(rows) // 2, 2)]
    chat_path = path.with_name("tiny_chat.jsonl")
    chat_path.write_text("".join(json.dumps(chat) + "\n" for chat in chats))
    print(f"wrote {len(chats)} conversations to {chat_path}")


def _question(row: dict) -> str:
    return f"{row['instruction']} {row['input']}".strip()


def sharegpt(first: dict, second: dict) -> dict:
    """Two exchanges in ShareGPT's from/value form, after a system turn."""
    return {"conversations": [{"from": "system", "value": "You answer in one short sentence."},
                              {"from": "human", "value": _question(first)}, {"from": "gpt", "value": first["output"]},
                              {"from": "human", "value": _question(second)},
                              {"from": "gpt", "value": second["output"]}]}


if __name__ == "__main__":
    main()
