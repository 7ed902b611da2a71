"""orch's trainer against what a user would pick instead: transformers' Trainer + peft, and TRL's SFTTrainer with
packing. Same model folder, data, LoRA settings (rank, alpha, dropout, target modules), optimizer, schedule, precision,
micro-batch and sequence length; each run in its own process; repeats interleaved (orch, trainer, trl, orch, ...).

    python -m benchmarks.trainer_vs_baseline                                     # tiny model on this CPU
    python -m benchmarks.trainer_vs_baseline --model random:meta-llama/Llama-3.1-8B --method qlora --seq-len 2048 \
        --micro-batch 4 --steps 12 --warmup 2 --repeats 3 --out benchmarks/results/trainer_vs_baseline-8b-qlora.json

Tokens per second count real (non-padding) input tokens over the timed steps of a run (steps after --warmup); each
contender's median over the repeats is reported with min and max, and the ratio of orch's median to each baseline's.
Each contender's real and loss tokens per timed step are reported beside it: `trainer` trains on orch's own packed
rows (equal by construction), `trl` on its own packing of the same samples (equal to within a few percent). With
--out, the file is rewritten after every run, so a run cut short keeps what it measured. Exits 1 when orch's ratio
to a baseline is below --min-ratio, 2 on bad arguments.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.baselines import RUNNERS, BenchSpec
from benchmarks.script_args import Parser, file_path, output_file, say_error
from gpu_catalog.errors import UserError
from gpu_catalog.local import detect_gpus
from gpu_catalog.models import get_model
from orchestrator.bench.sweep import MOST_CPU_THREADS, cannot_run_here
from trainer.config import config_from_dict
from trainer.data_formats import DataError

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "examples" / "data" / "tiny_instruct.jsonl"
BASELINES = RUNNERS[1:]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="orch/tiny-llama")
    parser.add_argument("--method", default="lora", choices=["lora", "qlora"])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run, warm-up included")
    parser.add_argument("--warmup", type=int, default=2, help="first steps of each run left out of the timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grad-ckpt", action="store_true")
    parser.add_argument("--attention", default="sdpa", choices=["sdpa", "eager", "flash_attention_2"])
    parser.add_argument("--cpu-threads", type=int, default=1,
                        help="torch threads of each run on a CPU: one, so no run's idle threads spin-wait against "
                             "another process (on a shared 2-core machine that swung a run 40x)")
    parser.add_argument("--baselines", default=",".join(BASELINES), help=f"comma-separated, from {BASELINES}")
    parser.add_argument("--min-ratio", type=float, default=1.0, help="exit 1 when orch is slower than this")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--out", type=file_path,
                        help="write the result as JSON here (benchmarks/results/ for GPU runs)")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> list[str]:
    """Every bad argument at once; the names of the baselines to run."""
    problems = [f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
                for name in ("seq_len", "micro_batch", "grad_accum", "steps", "repeats", "cpu_threads")
                if getattr(args, name) < 1]
    if args.cpu_threads > MOST_CPU_THREADS:
        problems.append(f"--cpu-threads must be at most {MOST_CPU_THREADS}, got {args.cpu_threads}")
    if not 0 <= args.warmup < args.steps:
        problems.append(f"--warmup must be 0 or more and below --steps ({args.steps}), got {args.warmup}")
    if not (args.min_ratio >= 0 and args.min_ratio < float("inf")):
        problems.append(f"--min-ratio must be a finite number, 0 or more, got {args.min_ratio}")
    if not args.data.is_file() or args.data.stat().st_size == 0:
        problems.append(f"--data {args.data} is not a file of records")
    try:  # the model and the settings as the trainer reads them, and the --out file, before any model is built
        get_model(args.model)
        config = config_from_dict({"model": args.model, "method": args.method, "seq_len": args.seq_len,
                                   "micro_batch": args.micro_batch, "grad_accum": args.grad_accum,
                                   "max_steps": args.steps, "attention": args.attention})
        if problem := cannot_run_here(config, {}, cpu_only=not detect_gpus()):  # flash-attn on a CPU: each
            problems.append(f"cannot train here: {problem}")  # contender failed in turn, after the model was built
        output_file(args.out, inputs=(args.data,))
    except UserError as exc:
        problems.append(str(exc).removeprefix("bad config: ").rstrip("."))
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown or not baselines:
        problems.append(f"--baselines takes names from {', '.join(BASELINES)}, got {args.baselines!r}")
    if "trl" in baselines and importlib.util.find_spec("trl") is None:
        problems.append("the trl baseline needs TRL: pip install 'orch[bench]', or pass --baselines trainer")
    if problems:
        raise UserError("; ".join(problems) + ".")
    return baselines


def prepare(args: argparse.Namespace, workdir: Path) -> BenchSpec:
    """Build the random model once, before any timed process (orch would build it in its first run, inflating that
    run's memory): the same folder, by orch's own cache key, that orch's trainer then finds."""
    from trainer import data
    from trainer.offline_names import is_built_offline
    from trainer.random_model import build_random_model

    spec = BenchSpec(model=args.model, model_path=args.model, method=args.method, data=str(args.data.resolve()),
                     seq_len=args.seq_len, micro_batch=args.micro_batch, grad_accum=args.grad_accum, steps=args.steps,
                     warmup=args.warmup, grad_ckpt=args.grad_ckpt, attention=args.attention,
                     cpu_threads=args.cpu_threads, workdir=str(workdir))
    config = config_from_dict(spec.job())
    if is_built_offline(args.model):
        records = data.file_records(spec.data)
        path = build_random_model(args.model, data.record_texts(records), config.seq_len, config.seed)
        spec = BenchSpec(**{**spec.__dict__, "model_path": str(path)})
    return spec


def run_one(runner: str, spec: BenchSpec, repeat: int) -> dict:
    """One contender's run in a fresh process."""
    workdir = Path(spec.workdir) / f"{runner}-{repeat}"
    workdir.mkdir(parents=True)
    spec_path, out_path = workdir / "spec.json", workdir / "result.json"
    spec_path.write_text(json.dumps({**spec.__dict__, "workdir": str(workdir)}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "benchmarks.baselines", runner, str(spec_path), str(out_path)],
                          cwd=REPO, env=env, capture_output=True, text=True)
    if out_path.is_file():
        return json.loads(out_path.read_text())
    return {"runner": runner, "status": "error", "steps": [], "peak_memory_gib": {},
            "message": f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-500:]}"}


def tokens_per_s(run: dict) -> float | None:
    seconds = sum(s[2] for s in run["steps"])
    return sum(s[0] for s in run["steps"]) / seconds if run["status"] == "ok" and seconds > 0 else None


def summarize(runs: list[dict]) -> dict:
    """One contender's repeats: tokens/s (median, min, max, each repeat), tokens per timed step, peak memory."""
    rates = [r for r in (tokens_per_s(run) for run in runs) if r is not None]
    steps = [s for run in runs if run["status"] == "ok" for s in run["steps"]]
    peaks = [run["peak_memory_gib"] for run in runs if run["status"] == "ok"]
    peak = {k: max(p[k] for p in peaks) for k in (peaks[0] if peaks else {}) if all(p.get(k) is not None
                                                                                       for p in peaks)}
    ok = [run for run in runs if run["status"] == "ok"]
    return {
        "tokens_per_s_median": statistics.median(rates) if rates else None,
        "tokens_per_s_min": min(rates, default=None),
        "tokens_per_s_max": max(rates, default=None),
        "tokens_per_s_repeats": [tokens_per_s(run) for run in runs],
        "real_tokens_per_step": statistics.fmean(s[0] for s in steps) if steps else None,
        "label_tokens_per_step": statistics.fmean(s[1] for s in steps) if steps else None,
        "timed_steps_per_repeat": [len(run["steps"]) for run in runs],
        "peak_memory_gib": peak,
        "trainable_params": ok[0].get("trainable_params") if ok else None,
        "statuses": [run["status"] for run in runs],
        "messages": [run.get("message") for run in runs if run.get("message")],
        **{k: ok[0][k] for k in ("precision", "trl_padding_free", "trl_packing_strategy") if ok and k in ok[0]},
    }


def ratios(summaries: dict) -> dict:
    """orch's median tokens/s over each baseline's; None where either side has no successful run."""
    orch = summaries["orch"]["tokens_per_s_median"]
    return {name: orch / s["tokens_per_s_median"] if orch and s["tokens_per_s_median"] else None
            for name, s in summaries.items() if name != "orch"}


def report(args, spec: BenchSpec, order: list[str], runs: dict[str, list[dict]]) -> dict:
    from trainer.metrics import versions

    summaries = {name: summarize(r) for name, r in runs.items()}
    device = next((run["device"] for rs in runs.values() for run in rs if run.get("device")), None)
    return {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device": device,
            "load_average_1m": os.getloadavg()[0], "cpu_count": os.cpu_count(),
            "versions": {**versions(), "trl": _version("trl"), "datasets": _version("datasets")},
            "settings": {k: v for k, v in spec.__dict__.items() if k not in ("workdir", "model_path")},
            "repeats": args.repeats, "order": order, "complete": len(order) == args.repeats * len(runs),
            "contenders": summaries, "ratio": ratios(summaries)}


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def measure(args: argparse.Namespace, baselines: list[str], workdir: Path) -> dict:
    spec = prepare(args, workdir)
    runs: dict[str, list[dict]] = {name: [] for name in ("orch", *baselines)}
    order: list[str] = []
    result: dict = {}
    for repeat in range(args.repeats):
        for name in runs:
            runs[name].append(run_one(name, spec, repeat))
            order.append(name)
            result = report(args, spec, order, runs)
            if args.out:  # after every run: a run cut short keeps what it measured (its folder checked first)
                args.out.write_text(json.dumps(result, indent=2) + "\n")
            if not args.json:
                last = runs[name][-1]
                rate = tokens_per_s(last)
                print(f"repeat {repeat + 1}/{args.repeats} {name}: "
                      + (f"{rate:,.0f} tokens/s" if rate else f"{last['status']}: {last.get('message')}"),
                      file=sys.stderr, flush=True)
    return result


def print_table(result: dict) -> None:
    settings = result["settings"]
    print(f"{settings['model']} {settings['method']} seq {settings['seq_len']} x {settings['micro_batch']} "
          f"on {result['device']} (load average {result['load_average_1m']:.1f}, {result['repeats']} repeats)")
    print(f"{'contender':<10}{'tokens/s median':>16}{'min':>10}{'max':>10}{'real tok/step':>15}{'loss tok/step':>15}"
          f"{'peak GiB':>10}{'orch ×':>8}")
    for name, s in result["contenders"].items():
        peak = max((v for v in s["peak_memory_gib"].values() if v is not None), default=None)
        ratio = result["ratio"].get(name)
        cells = [s["tokens_per_s_median"], s["tokens_per_s_min"], s["tokens_per_s_max"], s["real_tokens_per_step"],
                 s["label_tokens_per_step"]]
        text = [f"{c:,.0f}" if c is not None else "-" for c in cells]
        print(f"{name:<10}{text[0]:>16}{text[1]:>10}{text[2]:>10}{text[3]:>15}{text[4]:>15}"
              f"{f'{peak:.2f}' if peak is not None else '-':>10}{f'{ratio:.2f}' if ratio else '':>8}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        baselines = check_args(args)
    except UserError as exc:
        say_error(str(exc))
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="orch-vs-baseline-") as tmp:
            result = measure(args, baselines, Path(tmp))
    except (UserError, DataError) as exc:  # the data, read as the trainer reads it (not UTF-8, no records)
        say_error(str(exc))
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    slowest = [r for r in result["ratio"].values()]
    return 0 if all(r is not None and r >= args.min_ratio for r in slowest) else 1


if __name__ == "__main__":
    sys.exit(main())
