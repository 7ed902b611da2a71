"""Models built offline: random weights in a catalog shape, and a byte-level BPE tokenizer trained on the job's own
data. `orch/tiny-llama` lets the whole trainer run on a laptop CPU and in CI, where nothing can be downloaded;
`random:<model id>` (e.g. random:meta-llama/Llama-3.1-8B) gives a real model's exact shape for speed and memory
benchmarks, which depend on the architecture and not on the weight values.

The shape comes from gpu_catalog, so `orch plan` estimates exactly the model the trainer builds.
"""

import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from gpu_catalog import checks
from gpu_catalog.cache import cache_dir
from gpu_catalog.models import get_model
from trainer.model_files import weights_problem

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


MIN_POSITIONS = 8192  # one built model serves every usual seq_len


def build_random_model(model_name: str, texts: list[str], seq_len: int, seed: int, device: str = "cpu") -> Path:
    """The folder with config, random weights and tokenizer for this shape, seed and data; built on first use.
    `device` is where the weights are drawn: "cuda" takes seconds where an 8B model's CPU init takes minutes, but needs
    the model's fp32 size free on the card, so only a benchmark building before its runs asks for it."""
    positions = max(MIN_POSITIONS, seq_len)
    key = hashlib.sha1("\n".join([model_name, str(seed), str(positions), *texts]).encode()).hexdigest()[:12]
    out_dir = cache_dir() / "random-models" / f"{model_name.replace('/', '--').replace(':', '-')}-{key}"
    if (out_dir / "config.json").is_file():
        if (problem := weights_problem(out_dir)) is None:
            return out_dir
        # written whole (a rename), so damaged since (a disk, a sync): built again, where every run of the job
        # failed with the safetensors library's error and no hint
        print(checks.printable(f"rebuilding the cached model {out_dir.name}: {problem}"), file=sys.stderr)
        shutil.rmtree(out_dir, ignore_errors=True)
    shape = get_model(model_name)
    tokenizer = train_tokenizer(texts, min(shape.vocab, MAX_TOKENIZER_VOCAB))
    config = LlamaConfig(vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                         num_hidden_layers=shape.n_layers, num_attention_heads=shape.n_heads,
                         num_key_value_heads=shape.n_kv_heads, head_dim=shape.head_dim,
                         tie_word_embeddings=shape.tied_embeddings, max_position_embeddings=positions,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16 if shape.params > 1e8 else torch.float32)
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(out_dir)
    except OSError:  # another process built the same model meanwhile: theirs is identical, keep it
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
