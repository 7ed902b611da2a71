"""python -m trainer.count_tokens BASE_DIR < config.json: the tokens one epoch trains on, as JSON on stdout.

`orch plan` runs this in its own process (planning imports no torch): the job's data is read, rendered and packed
exactly as the trainer does (chat template, loss mask, truncation, packing, eval split), with the model's tokenizer
from the local cache only (a model built offline trains its tokenizer on the data, as the trainer does). Exit 3 with
{"error": ...} when the tokenizer or the data is not available here, {"data_error": ...} when the records are ones
the trainer refuses, or {"config_error": ...} for a tokenizer folder it cannot load.
"""

import json
import sys
from pathlib import Path

from trainer.config import ConfigError, config_from_dict, model_folder
from trainer.data_formats import DataError
from trainer.offline_names import is_built_offline


def count(raw: dict, base_dir: Path) -> dict:
    from trainer.prepared import prepare

    config = config_from_dict(raw, base_dir=base_dir)
    if not is_built_offline(config.model) and (folder := model_folder(config.model, base_dir)) is not None:
        from trainer.model import model_config

        # as the trainer builds it before any data (check_weights_match): an unknown model_type (or dtype) was
        # planned, launched and charged, then refused; its dtype was said to be the tokenizer's fault, which loads
        # the same config.json
        model_config(str(folder))
    prepared = prepare(config, base_dir, build_model=False, local_only=True)
    return {"tokens": sum(s.real_tokens for s in prepared.train), "train_sequences": len(prepared.train),
            "eval_sequences": len(prepared.eval), "seq_len_fit": prepared.fit._asdict()}


def main() -> int:
    raw = json.loads(sys.stdin.read())
    try:
        result = count(raw, Path(sys.argv[1]))
    except DataError as exc:  # the records themselves: the trainer would stop on them too, so the plan says so
        print(json.dumps({"data_error": " ".join(str(exc).split())}))
        return 3
    except ConfigError as exc:  # a tokenizer folder the trainer cannot load: the same, said of the tokenizer
        print(json.dumps({"config_error": " ".join(str(exc).split())}))
        return 3
    except Exception as exc:  # noqa: BLE001 - any failure means "estimate instead", and the reason is reported
        print(json.dumps({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}))
        return 3
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
