"""Build `random:` models into orch's cache before a GPU session's timed runs, drawing the weights on the GPU:

    python -m benchmarks.build_random_models random:meta-llama/Llama-3.1-8B random:meta-llama/Llama-3.2-1B

An 8B model's random init and save takes minutes on a CPU, and would otherwise fall to the first run that names it
(inside trainer_vs_baseline's parent, or a sweep point's trainer). The folder is the one the trainer and
trainer_vs_baseline then find: the same cache key (model, seed, positions, the data's texts). Run in a process of its
own, so its CUDA context is gone before any run is measured.
"""

import sys
import time
from pathlib import Path

from benchmarks.script_args import Parser, run, say_error

DATA = Path(__file__).resolve().parent.parent / "examples" / "data" / "tiny_instruct.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="random:<model id> names")
    parser.add_argument("--data", type=Path, default=DATA, help="the data file the runs train on (keys the cache)")
    parser.add_argument("--seq-len", type=int, default=2048, help="up to 8192 every seq_len shares one build")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="where to draw the weights (default: cuda where "
                                                                  "there is one)")
    args = parser.parse_args(argv)

    import torch

    from gpu_catalog.errors import UserError
    from gpu_catalog.models import get_model
    from trainer import data
    from trainer.config import config_from_dict
    from trainer.offline_names import is_built_offline
    from trainer.random_model import build_random_model, check_room_to_build

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:  # every name, the length and the data checked before the first build (an 8B one takes a while)
        if device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA GPU is visible here; leave --device out or pass --device cpu")
        for name in args.models:
            if not is_built_offline(name):
                raise UserError(f"{name!r} is not built offline: give random:<model id> (or orch/tiny-llama)")
            get_model(name)
            check_room_to_build(name, device)
        seeds = {name: config_from_dict({"model": name, "method": "lora", "dataset": str(args.data),
                                         "seq_len": args.seq_len}).seed for name in args.models}
        texts = data.record_texts(data.file_records(str(args.data.resolve())))
        if not texts:  # an empty file built an 8B model on no text
            raise UserError(f"--data {args.data} holds no records to train on: give the data file the runs use.")
    except (UserError, data.DataError) as exc:
        say_error(str(exc))
        return 2
    for name, seed in seeds.items():
        started = time.perf_counter()
        path = build_random_model(name, texts, args.seq_len, seed, device)
        print(f"{name}: {path} ({time.perf_counter() - started:.0f} s on {device})", flush=True)
        if device == "cuda":
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
