"""python -m trainer CONFIG [--output DIR] [--set KEY=VALUE ...] [--resume auto] [--auto-fit]

Exit codes: 0 ok, 1 error, 2 bad config, 3 out of memory, 4 budget stopped, 5 preempted (SIGTERM), 130 stopped by
Ctrl-C (the first writes a checkpoint; a second stops at once).
metrics.json in the output folder says the same, and more.
"""

import argparse
import shlex
import sys
from pathlib import Path

from trainer.config import ConfigError, load_config


def _resume_command(args, output: Path) -> str:
    overrides = "".join(f" --set {shlex.quote(v)}" for v in args.set)
    return f"orch train {shlex.quote(args.config)} --output {shlex.quote(str(output))} --resume auto{overrides}"


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
        output = Path(args.output or Path("outputs") / config.name)
        from trainer.loop import EXIT_CODES, FineTune  # torch and friends load only once the config is good

        result = FineTune(config, output, base_dir, resume=args.resume, auto_fit=args.auto_fit).run()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once; every checkpoint written before is whole
        print(f"\nstopped. Resume from the last checkpoint with: {_resume_command(args, output)}", file=sys.stderr)
        return 130
    if result["status"] == "interrupted":
        print(f"interrupted at step {result['steps']}, checkpoint saved. Resume with: {_resume_command(args, output)}",
              file=sys.stderr)
        return 130
    if result["status"] != "ok":
        print(f"{result['status']}: {result.get('message', '')}".rstrip(": "), file=sys.stderr)
    summary = {k: result.get(k) for k in ("status", "steps", "train_tokens", "tokens_per_s", "eval_perplexity")}
    print(f"metrics: {output / 'metrics.json'} {summary}", flush=True)
    return EXIT_CODES[result["status"]]


if __name__ == "__main__":
    sys.exit(main())
