"""Models built offline: random weights in a catalog shape, and a byte-level BPE tokenizer trained on the job's own
data. `orch/tiny-llama` lets the whole trainer run on a laptop CPU and in CI, where nothing can be downloaded;
`random:<model id>` (e.g. random:meta-llama/Llama-3.1-8B) gives a real model's exact shape for speed and memory
benchmarks, which depend on the architecture and not on the weight values.

The shape comes from gpu_catalog, so `orch plan` estimates exactly the model the trainer builds.
"""

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from gpu_catalog import checks
from gpu_catalog.models import ModelShape, get_model
from gpu_catalog.units import BYTES_PER_GIB
from trainer.config import ConfigError
from trainer.model_files import weights_problem
from trainer.offline_names import built_models_folder

MAX_TOKENIZER_VOCAB = 32000  # the BPE learns what the data supports; the model keeps its real vocabulary size
SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


# A text as the pieces the BPE learns from: each run of non-space characters, at most LONGEST_LEARNED_RUN of them,
# with the spaces before it, and spaces that end the text. Joined, the pieces are the text.
LONGEST_LEARNED_RUN = 256
_PIECES = re.compile(r"\s*\S{1,%d}|\s+" % LONGEST_LEARNED_RUN)


def learning_pieces(texts: list[str]):
    """The texts as the BPE trainer reads them, a run of non-space characters cut every LONGEST_LEARNED_RUN: the
    trainer rescans a word for each merge it learns, so one 3 MB record with no space in it kept `orch plan` counting
    for minutes. The byte-level pre-tokenizer cuts text into words at the same spaces, so a text whose words are
    shorter than a run learns the merges it learned whole."""
    for text in texts:
        yield from (match.group(0) for match in _PIECES.finditer(text))


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `texts`: deterministic for the same texts, and any byte sequence encodes."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(learning_pieces(texts), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<|pad|>", bos_token="<|bos|>",
                                      eos_token="<|eos|>")
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def free_memory_bytes(device: str) -> int | None:
    """What `device` can still hold: the card's free memory, or the host's available memory (Linux's MemAvailable);
    None where it cannot be read."""
    if device.startswith("cuda"):
        return torch.cuda.mem_get_info()[0]
    try:
        lines = Path("/proc/meminfo").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    kib = next((line.split()[1] for line in lines if line.startswith("MemAvailable:")), None)
    return int(kib) * 1024 if kib is not None else None


def weight_dtype(shape: ModelShape) -> torch.dtype:
    """bf16 for a real model's shape, as its checkpoint ships; fp32 for the tiny test model, which trains on a CPU."""
    return torch.bfloat16 if shape.params > 1e8 else torch.float32


def check_room_to_build(model_name: str, device: str) -> None:
    """A model too large for the memory it is built in is refused before the build: the kernel's OOM killer ended
    the process with no word (random:meta-llama/Llama-3.1-70B on a 24 GiB machine)."""
    shape = get_model(model_name)
    weight_bytes = shape.params * weight_dtype(shape).itemsize
    free = free_memory_bytes(device)
    if free is not None and weight_bytes > free:
        where = "this GPU" if device.startswith("cuda") else "this machine"
        raise ConfigError(f"building {checks.printable(model_name)}'s random weights takes "
                          f"{weight_bytes / BYTES_PER_GIB:.1f} GiB and {where} has {free / BYTES_PER_GIB:.1f} GiB "
                          "free: build it where there is more memory, or pick a smaller model.")


MIN_POSITIONS = 8192  # one built model serves every usual seq_len


BUILT_JSON_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")  # what save_pretrained writes as JSON


def _damage(out_dir: Path) -> str | None:
    """What no longer reads in a cached build, or None: a JSON file it wrote, or its weights."""
    for name in BUILT_JSON_FILES:
        try:
            json.loads((out_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            return f"its {name} does not read ({type(exc).__name__})"
    return weights_problem(out_dir)


def build_random_model(model_name: str, texts: list[str], seq_len: int, seed: int, device: str = "cpu") -> Path:
    """The folder with config, random weights and tokenizer for this shape, seed and data; built on first use.
    `device` is where the weights are drawn: "cuda" takes seconds where an 8B model's CPU init takes minutes, but needs
    the model's size free on the card, so only a benchmark building before its runs asks for it."""
    positions = max(MIN_POSITIONS, seq_len)
    key = hashlib.sha1("\n".join([model_name, str(seed), str(positions), *texts]).encode()).hexdigest()[:12]
    out_dir = built_models_folder() / f"{model_name.replace('/', '--').replace(':', '-')}-{key}"
    if out_dir.exists():
        if (problem := _damage(out_dir)) is None:
            return out_dir
        # written whole (a rename), so damaged since (a disk, a sync): built again, where every run of the job
        # failed with the safetensors library's error, or blamed "the tokenizer in" the cache, with no hint
        print(checks.printable(f"rebuilding the cached model {out_dir.name}: {problem}"), file=sys.stderr)
        shutil.rmtree(out_dir, ignore_errors=True)
    check_room_to_build(model_name, device)
    shape = get_model(model_name)
    tokenizer = train_tokenizer(texts, min(shape.vocab, MAX_TOKENIZER_VOCAB))
    config = LlamaConfig(vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                         num_hidden_layers=shape.n_layers, num_attention_heads=shape.n_heads,
                         num_key_value_heads=shape.n_kv_heads, head_dim=shape.head_dim,
                         tie_word_embeddings=shape.tied_embeddings, max_position_embeddings=positions,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    with torch.device(device):  # drawn in its own dtype: drawn in fp32 and cast, an 8B model needed 32 GB
        model = LlamaForCausalLM._from_config(config, dtype=weight_dtype(shape))
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(out_dir)
    except OSError:  # another process built the same model meanwhile: theirs is identical, keep it
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
