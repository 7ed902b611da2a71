"""Peak memory of one training step on the CPU, measured through the trainer's own model, loss and optimizer code,
for the loss modes (full / chunked) and QLoRA's fp32 upcast on and off; beside orch's estimate of the same step.

Each configuration runs in its own process. After a first step (which allocates the optimizer state), the process's
peak RSS is reset (Linux /proc/self/clear_refs) and a second step runs: its peak minus the RSS before it is what one
step's per-step tensors (activations, logits, gradients) took. The whole process's peak is reported too.

CPU numbers only: they show what each setting saves, not GPU memory. Results go to
benchmarks/results/cpu-loss-memory.json with the machine's description.

    python benchmarks/cpu_loss_memory.py [--quick] [--out PATH]
"""

import ctypes
import functools
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.script_args import RESULTS, Parser, file_path, output_file, run
from gpu_catalog.units import BYTES_PER_GIB

CONFIGS = [  # (model, method, seq_len, micro_batch, loss_chunk_tokens, qlora_fp32_upcast): each loss mode measured
    ("orch/tiny-llama", "lora", 128, 4, 64, True),
    ("random:Qwen/Qwen2.5-0.5B", "lora", 512, 2, 128, True),
    ("random:Qwen/Qwen2.5-0.5B", "qlora", 256, 1, 128, True),
    ("random:Qwen/Qwen2.5-0.5B", "qlora", 256, 1, 128, False),
]
QUICK = CONFIGS[:1]
LOSSES = ("full", "chunked")
TINY_DATA = Path(__file__).resolve().parents[1] / "examples" / "data" / "tiny_instruct.jsonl"
# glibc serves blocks above this straight from the OS and returns them on free, so RSS follows the tensors' life
# (its default threshold grows with use and would hide a step's tensors in memory kept from the step before)
MMAP_THRESHOLD_BYTES = 128 * 1024
M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def fix_mmap_threshold() -> None:
    ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measured_step(step: Callable[[], float]) -> tuple[float, float, float]:
    """(the step's loss, the process's RSS before it in GiB, how far its peak RSS rose above that in GiB)."""
    before_kib = _rss_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    loss_value = step()
    peak_kib = _rss_kib("VmHWM")
    return loss_value, before_kib * 1024 / BYTES_PER_GIB, (peak_kib - before_kib) * 1024 / BYTES_PER_GIB


def measure(model_name: str, method: str, seq_len: int, micro_batch: int, chunk: int, upcast: bool) -> list[dict]:
    """One model in this process: a first step allocates the optimizer state, then one step per loss mode, each
    with the peak RSS reset before it."""
    import torch

    from gpu_catalog.gpus import cpu_gpu
    from gpu_catalog.models import get_model
    from orchestrator.estimator.memory import estimate_memory
    from orchestrator.estimator.settings import settings_from_job
    from trainer.config import config_from_dict
    from trainer.data import file_records, record_texts
    from trainer.loss import loss_function
    from trainer.model import load_model
    from trainer.optim import build_optimizer
    from trainer.random_model import build_random_model

    def config(loss: str):
        return config_from_dict({"model": model_name, "method": method, "seq_len": seq_len, "max_steps": 2,
                                 "micro_batch": micro_batch, "loss": loss, "loss_chunk_tokens": chunk,
                                 "lora_dropout": 0.0, "qlora_fp32_upcast": upcast})

    fix_mmap_threshold()
    path = build_random_model(model_name, record_texts(file_records(TINY_DATA)), seq_len, seed=0)
    torch.manual_seed(0)
    device = torch.device("cpu")
    model = load_model(config("full"), str(path), device, "fp32", grad_ckpt=False)
    model.train()
    optimizer = build_optimizer(config("full"), model, device)
    ids = torch.randint(10, model.config.vocab_size, (micro_batch, seq_len))
    batch = {"input_ids": ids, "labels": ids.clone(), "position_ids": torch.arange(seq_len).repeat(micro_batch, 1)}

    def step(loss: str) -> float:
        value = loss_function(loss, chunk, model, device)(model, batch, ids.numel())
        value.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return value.item()

    step("full")
    results = []
    for loss in LOSSES:
        loss_value, before_gib, step_gib = measured_step(functools.partial(step, loss))
        parts = estimate_memory(get_model(model_name), settings_from_job(config(loss)), cpu_gpu()).breakdown_gib
        results.append({
            "model": model_name, "method": method, "loss": loss, "seq_len": seq_len, "micro_batch": micro_batch,
            "loss_chunk_tokens": chunk, "qlora_fp32_upcast": upcast, "loss_value": loss_value,
            "rss_before_step_gib": before_gib, "step_peak_above_before_gib": step_gib,
            "estimated_step_gib": estimated_step_gib(parts),
            "estimated_weights_gib": parts["weights"], "estimated_breakdown_gib": parts})
    return results


def run_in_subprocess(config: tuple, module: str = "benchmarks.cpu_loss_memory", **options):
    """`module.measure(*config, **options)` in a fresh process, so one's peak never hides another's: its JSON."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = f"import json; from {module} import measure; print(json.dumps(measure(*{config!r}, **{options!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement {config} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


PER_STEP_PARTS = ("activations", "logits", "gradients", "allocator_slack")  # what a step allocates and frees


def estimated_step_gib(breakdown_gib: dict[str, float]) -> float:
    """The estimate's counterpart of the measured rise: the per-step parts of its breakdown."""
    return sum(breakdown_gib[k] for k in PER_STEP_PARTS)


def save_results(path: Path, results: list[dict]) -> None:
    path.write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n", encoding="utf-8")


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores_visible": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "note": "CPU, fp32, shared machine; RSS-based (glibc returns large blocks to the OS on free)"}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the tiny model only")
    parser.add_argument("--out", type=file_path, default=RESULTS / "cpu-loss-memory.json")
    args = parser.parse_args(argv)
    output_file(args.out)  # before minutes of measuring
    results = [r for c in (QUICK if args.quick else CONFIGS) for r in run_in_subprocess(c)]
    save_results(args.out, results)
    for r in results:
        print(f"{r['model']} {r['method']} loss={r['loss']} upcast={r['qlora_fp32_upcast']} seq {r['seq_len']} "
              f"x{r['micro_batch']}: step +{r['step_peak_above_before_gib']:.3f} GiB (estimated "
              f"{r['estimated_step_gib']:.3f}), RSS before the step {r['rss_before_step_gib']:.2f} GiB "
              f"(weights estimated {r['estimated_weights_gib']:.2f}), loss {r['loss_value']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
