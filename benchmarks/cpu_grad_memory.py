"""When the gradients count towards a step's peak, measured on the CPU: full fine-tuning, where the gradients are as
large as the weights, with one micro-batch per step and with two, and with the lower blocks frozen; beside orch's
estimate of the same step.

With one micro-batch the optimizer's zero_grad(set_to_none=True) leaves no gradient alive at the start of the
backward, and each layer's gradients appear as its activations are freed: the step peaks either as the backward
starts (activations and logits, no gradients) or as it ends (every gradient, a tied embedding's three times for a
moment). With two, the first micro-batch's gradients stay through the second one's forward and backward, so they add
to the activations. `freeze_layers` blocks (and the embeddings) train nothing and save no activations.

Measured as benchmarks/cpu_loss_memory.py measures: each configuration in its own process, a first step to allocate
the optimizer state, then the peak RSS reset and one more step (every micro-batch of it and the optimizer step),
through the trainer's own loss, optimizer and step code. CPU numbers (fp32). Results go to
benchmarks/results/cpu-grad-memory.json with the machine's description.

    python benchmarks/cpu_grad_memory.py [--quick] [--out PATH]
"""

import contextlib
import sys

from benchmarks import cpu_loss_memory as rss
from benchmarks.script_args import RESULTS, Parser, file_path, output_file, run

MODEL = "random:Qwen/Qwen2.5-0.5B"
CONFIGS = [  # (model, seq_len, grad_accum, freeze_layers): a short step (gradients above activations) and a long
    # one, accumulated; the tiny model's 4 blocks trained, half frozen, all frozen
    (MODEL, 64, 1, 0), (MODEL, 64, 2, 0), (MODEL, 1024, 1, 0), (MODEL, 1024, 2, 0),
    ("orch/tiny-llama", 2048, 2, 0), ("orch/tiny-llama", 2048, 2, 2), ("orch/tiny-llama", 2048, 2, 4),
]
QUICK = [("orch/tiny-llama", 16, 1, 0), ("orch/tiny-llama", 16, 2, 0)]


def measure(model_name: str, seq_len: int, grad_accum: int, freeze_layers: int) -> dict:
    import torch

    from gpu_catalog.gpus import cpu_gpu
    from gpu_catalog.models import get_model
    from orchestrator.estimator.memory import estimate_memory
    from orchestrator.estimator.settings import settings_from_job
    from trainer.config import config_from_dict
    from trainer.data import file_records, record_texts
    from trainer.loop import forward_backward, optimizer_step
    from trainer.loss import loss_function
    from trainer.model import load_model
    from trainer.optim import build_optimizer, build_scheduler
    from trainer.random_model import build_random_model

    config = config_from_dict({"model": model_name, "method": "full", "seq_len": seq_len, "max_steps": 2,
                               "micro_batch": 1, "grad_accum": grad_accum, "loss": "full",
                               "freeze_layers": freeze_layers})
    rss.fix_mmap_threshold()
    path = build_random_model(model_name, record_texts(file_records(rss.TINY_DATA)), seq_len, seed=0)
    torch.manual_seed(0)
    device = torch.device("cpu")
    model = load_model(config, str(path), device, "fp32", grad_ckpt=False)
    model.train()
    optimizer = build_optimizer(config, model, device)
    scheduler = build_scheduler(optimizer, config, total_steps=2)
    loss_fn = loss_function(config.loss, config.loss_chunk_tokens, model, device)
    batches = []
    for _ in range(grad_accum):
        ids = torch.randint(10, model.config.vocab_size, (1, seq_len))
        batches.append({"input_ids": ids, "labels": ids.clone(), "position_ids": torch.arange(seq_len)[None]})

    def step() -> float:
        no_autocast = contextlib.nullcontext()  # as the trainer runs on the CPU
        losses = [forward_backward(model, b, seq_len * grad_accum, no_autocast, None, loss_fn) for b in batches]
        optimizer_step(model, optimizer, scheduler, None, max_grad_norm=1.0)
        return sum(losses)

    step()  # allocates the optimizer state
    loss_value, _, step_gib = rss.measured_step(step)
    estimate = estimate_memory(get_model(model_name), settings_from_job(config), cpu_gpu())
    parts = estimate.breakdown_gib
    return {"model": model_name, "method": "full", "seq_len": seq_len, "micro_batch": 1, "grad_accum": grad_accum,
            "freeze_layers": freeze_layers, "loss_value": loss_value, "step_peak_above_before_gib": step_gib,
            "estimated_step_gib": rss.estimated_step_gib(parts),
            "estimated_peak_phase": estimate.peak_phase, "estimated_breakdown_gib": parts}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the tiny model only")
    parser.add_argument("--out", type=file_path, default=RESULTS / "cpu-grad-memory.json")
    args = parser.parse_args(argv)
    output_file(args.out)  # before minutes of measuring
    results = [rss.run_in_subprocess(c, "benchmarks.cpu_grad_memory") for c in (QUICK if args.quick else CONFIGS)]
    rss.save_results(args.out, results)
    for r in results:
        print(f"{r['model']} full seq {r['seq_len']} x1, {r['grad_accum']} micro-batch(es) a step, "
              f"{r['freeze_layers']} block(s) frozen: step "
              f"+{r['step_peak_above_before_gib']:.3f} GiB (estimated {r['estimated_step_gib']:.3f}, peak at the "
              f"{r['estimated_peak_phase'].replace('_', ' ')})")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
