"""python -m trainer CONFIG [--output DIR] [--set KEY=VALUE ...] [--resume auto] [--auto-fit]

Exit codes: 0 ok, 1 error, 2 bad config, 3 out of memory, 4 budget stopped, 5 preempted (SIGTERM).
metrics.json in the output folder says the same, and more.
"""

import argparse
import sys
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from trainer.config import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description="Fine-tune one model on one GPU (or CPU).")
    parser.add_argument("config", help="job YAML (the same file `orch plan` reads)")
    parser.add_argument("--output", help="output folder (default: outputs/<job name>)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--resume", default="never", choices=["auto", "never"],
                        help="auto: continue from the output folder's latest checkpoint, if any")
    parser.add_argument("--auto-fit", action="store_true",
                        help="on out-of-memory, retry at half the micro-batch, then with checkpointing")
    args = parser.parse_args(argv)
    try:
        config, base_dir = load_config(args.config, args.set)
        output = checks.output_folder(args.output or Path("outputs") / config.name, "--output")
        from trainer.loop import EXIT_CODES, FineTune  # torch and friends load only once the config is good

        result = FineTune(config, output, base_dir, resume=args.resume, auto_fit=args.auto_fit).run()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result["status"] != "ok":
        print(f"{result['status']}: {result.get('message', '')}".rstrip(": "), file=sys.stderr)
    summary = {k: result.get(k) for k in ("status", "steps", "train_tokens", "tokens_per_s", "eval_perplexity")}
    print(f"metrics: {output / 'metrics.json'} {summary}", flush=True)
    return EXIT_CODES[result["status"]]


if __name__ == "__main__":
    sys.exit(main())
