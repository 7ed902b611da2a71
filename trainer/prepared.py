"""What every training attempt shares, and what `orch plan` counts: the model folder, the tokenizer, and the data
tokenized and packed exactly as training sees it (chat template, loss mask, truncation, packing, eval split)."""

import dataclasses
from pathlib import Path

from trainer import data
from trainer.batches import split_eval
from trainer.config import JobConfig, resolve_tokenizer
from trainer.offline_names import is_built_offline
from trainer.random_model import MAX_TOKENIZER_VOCAB, build_random_model, train_tokenizer


@dataclasses.dataclass
class Prepared:
    model_path: str
    tokenizer: object
    train: list[data.Sequence]
    eval: list[data.Sequence]


def _tokenizer(config: JobConfig, records: data.Records, build_model: bool, local_only: bool, base_dir: Path):
    """(model path, tokenizer). A model built offline trains its tokenizer on the data; planning (build_model
    False) trains the same tokenizer without building the weights. A `tokenizer` folder is found as the job's
    datasets are, from the job file's folder (`base_dir`)."""
    from transformers import AutoTokenizer

    if is_built_offline(config.model):
        texts = data.record_texts(records.train + (records.eval or []))
        if build_model:
            model_path = str(build_random_model(config.model, texts, config.seq_len, config.seed))
        else:
            from gpu_catalog.models import get_model

            tokenizer = train_tokenizer(texts, min(get_model(config.model).vocab, MAX_TOKENIZER_VOCAB))
            return config.model, tokenizer
    else:
        model_path = config.model
    tokenizer = resolve_tokenizer(config.tokenizer, base_dir) or model_path
    return model_path, AutoTokenizer.from_pretrained(tokenizer, local_files_only=local_only)


def prepare(config: JobConfig, base_dir: Path, build_model: bool = True, local_only: bool = False) -> Prepared:
    import datasets
    import transformers

    datasets.disable_progress_bars()  # the trainer's own bar and log lines are the ones to watch
    transformers.utils.logging.disable_progress_bar()
    if is_built_offline(config.model):  # its tokenizer is trained on the data
        records = data.load_records(config, base_dir)
        model_path, tokenizer = _tokenizer(config, records, build_model, local_only, base_dir)
    else:  # the tokenizer first: without it there is no point reading the data
        model_path, tokenizer = _tokenizer(config, data.Records([], None), build_model, local_only, base_dir)
        records = data.load_records(config, base_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    sequences = data.sequences_for(records.train, config, tokenizer)
    if records.eval is not None:
        return Prepared(model_path, tokenizer, sequences, data.sequences_for(records.eval, config, tokenizer))
    train, held_out = split_eval(sequences, config.eval_fraction, config.seed)
    return Prepared(model_path, tokenizer, train, held_out)
