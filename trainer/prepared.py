"""What every training attempt shares, and what `orch plan` counts: the model folder, the tokenizer, and the data
tokenized and packed exactly as training sees it (chat template, loss mask, truncation, packing, eval split)."""

import dataclasses
import json
import os
from pathlib import Path

from gpu_catalog import checks
from trainer import data
from trainer.batches import split_eval
from trainer.config import ConfigError, JobConfig, resolve_tokenizer
from trainer.offline_names import is_built_offline
from trainer.random_model import MAX_TOKENIZER_VOCAB, build_random_model, train_tokenizer


@dataclasses.dataclass
class Prepared:
    model_path: str
    tokenizer: object
    train: list[data.Sequence]
    eval: list[data.Sequence]
    fit: data.SeqLenFit  # what seq_len cost the training records


def _tokenizer(config: JobConfig, records: data.Records, build_model: bool, local_only: bool, base_dir: Path):
    """(model path, tokenizer). A model built offline trains its tokenizer on the data; planning (build_model
    False) trains the same tokenizer without building the weights. A `tokenizer` folder is found as the job's
    datasets are, from the job file's folder (`base_dir`)."""
    from transformers import AutoTokenizer

    model_path = config.model
    if is_built_offline(config.model):
        texts = data.record_texts(records.train + (records.eval or []))
        if build_model:
            model_path = str(build_random_model(config.model, texts, config.seq_len, config.seed))
        elif config.tokenizer is None:  # planning counts with the `tokenizer` the job names, as the trainer does
            from gpu_catalog.models import get_model

            tokenizer = train_tokenizer(texts, min(get_model(config.model).vocab, MAX_TOKENIZER_VOCAB))
            return config.model, tokenizer
    tokenizer = resolve_tokenizer(config.tokenizer, base_dir) or model_path
    try:
        return model_path, AutoTokenizer.from_pretrained(tokenizer, local_files_only=local_only)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:  # a hand-edited file; transformers names none
        raise ConfigError(_unreadable_tokenizer_file(tokenizer, exc)) from None
    # a folder with no file it can build from (ValueError, OSError), or a tokenizer.json that is JSON but no
    # tokenizer (KeyError): each was an exit 1 before
    except Exception as exc:  # noqa: BLE001 - whatever the tokenizer library raises for a folder's files
        if not os.path.isdir(tokenizer):  # a hub id not cached here: planning estimates instead, as it did
            raise
        first = checks.one_line(str(exc).split(". ")[0])
        if not isinstance(exc, (ValueError, OSError, ImportError)):  # KeyError's text is the key alone
            first = f"{type(exc).__name__}: {first}"
        raise ConfigError(f"the tokenizer in {checks.short_repr(tokenizer)} cannot be loaded ({first}): give a "
                          "folder holding the tokenizer.json a tokenizer was saved with, or its hub id.") from None


def _unreadable_tokenizer_file(tokenizer: str, exc: ValueError) -> str:
    """One line naming the file of a local tokenizer folder that is not UTF-8 text or not JSON (the first found), or
    the tokenizer itself when no file there is to blame (a hub id, whose cached files orch does not search)."""
    folder = Path(tokenizer)
    for path in sorted([*folder.glob("*.json"), *folder.glob("*.txt")]):
        if not path.is_file():  # a pipe would wait forever; transformers reads only the files it knows
            continue
        try:
            text = path.read_bytes().decode("utf-8")
            if path.suffix == ".json":
                json.loads(text)
        except UnicodeDecodeError as file_exc:
            return (f"{path.name} of the tokenizer in '{folder}' is not UTF-8 text (byte {file_exc.start}): save it "
                    "as UTF-8, or give another `tokenizer`.")
        except ValueError as file_exc:
            return (f"{path.name} of the tokenizer in '{folder}' is not valid JSON ({file_exc}): fix it, or give "
                    "another `tokenizer`.")
        except OSError:
            continue
    return f"tokenizer '{tokenizer}' cannot be read ({exc}): give another `tokenizer`."


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
        if tokenizer.eos_token_id is None:  # else a None among the ids fails when the first batch is built
            raise ConfigError(f"the tokenizer of {checks.short_repr(config.tokenizer or model_path)} has neither an "
                              "eos_token nor a pad_token (training ends samples with the first and pads with either): "
                              "set eos_token (and pad_token, if padding differs) in its tokenizer_config.json, or give "
                              "another `tokenizer`.")
        tokenizer.pad_token = tokenizer.eos_token
    _check_vocabulary(config, tokenizer)
    sequences, fit = data.sequences_for(records.train, config, tokenizer)
    if records.eval is not None:
        return Prepared(model_path, tokenizer, sequences, data.sequences_for(records.eval, config, tokenizer).sequences,
                        fit)
    train, held_out = split_eval(sequences, config)
    return Prepared(model_path, tokenizer, train, held_out, fit)


def _check_vocabulary(config: JobConfig, tokenizer) -> None:
    """A tokenizer with more tokens than the model has embedding rows (another model's, a folder mixed up): its ids
    past the last row failed the first step with a bare IndexError ("index out of range in self"), recorded as an
    error; a plan passed it. The model's size as orch reads it (its config.json, the catalog); unknown, not judged."""
    from gpu_catalog.errors import UserError
    from gpu_catalog.models import get_model

    try:
        vocab = get_model(config.model).vocab
    except UserError:  # a model orch cannot size here: the build says what is wrong with it
        return
    if len(tokenizer) > vocab:
        raise ConfigError(f"the tokenizer of {checks.short_repr(config.tokenizer or config.model)} has "
                          f"{len(tokenizer):,} tokens, more than the {vocab:,} embedding rows of model "
                          f"{checks.short_repr(config.model)} (its vocab_size): give the model's own tokenizer, or a "
                          "model whose vocab_size holds this one.")
