"""Peak memory of one training step on the CPU with packed documents, with the trainer's shared sdpa mask
(trainer/attention_mask.py) and with transformers' boolean mask, which PyTorch converts into a copy in every layer;
beside orch's estimate of the step (which describes the shared mask).

Measured as benchmarks/cpu_loss_memory.py measures: each configuration in its own process, a first step to allocate
the optimizer state, then the peak RSS reset and one more step. Positions restart `DOCUMENTS` times in every row, as
packing makes them. CPU numbers (fp32): they show what the shared mask saves, not GPU memory. Results go to
benchmarks/results/cpu-mask-memory.json with the machine's description.

    python benchmarks/cpu_mask_memory.py [--quick] [--out PATH]
"""

import sys

from benchmarks import cpu_loss_memory as rss
from benchmarks.script_args import RESULTS, Parser, file_path, output_file, run

CONFIGS = [  # (model, seq_len, micro_batch): each with the shared and with transformers' own mask
    ("orch/tiny-llama", 2048, 2),
    ("random:Qwen/Qwen2.5-0.5B", 1024, 1),
]
QUICK = CONFIGS[:1]
DOCUMENTS = 4


def measure(model_name: str, seq_len: int, micro_batch: int, shared: bool) -> dict:
    import torch
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

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

    config = config_from_dict({"model": model_name, "method": "lora", "seq_len": seq_len, "max_steps": 2,
                               "micro_batch": micro_batch, "loss": "chunked", "lora_dropout": 0.0})
    rss.fix_mmap_threshold()
    path = build_random_model(model_name, record_texts(file_records(rss.TINY_DATA)), seq_len, seed=0)
    torch.manual_seed(0)
    device = torch.device("cpu")
    model = load_model(config, str(path), device, "fp32", grad_ckpt=False)  # registers the shared mask
    if not shared:
        ALL_MASK_ATTENTION_FUNCTIONS.register("sdpa", sdpa_mask)
    model.train()
    optimizer = build_optimizer(config, model, device)
    ids = torch.randint(10, model.config.vocab_size, (micro_batch, seq_len))
    positions = torch.arange(seq_len) % (seq_len // DOCUMENTS)
    batch = {"input_ids": ids, "labels": ids.clone(), "position_ids": positions.repeat(micro_batch, 1)}
    loss_fn = loss_function(config.loss, config.loss_chunk_tokens, model, device)

    def step() -> float:
        value = loss_fn(model, batch, ids.numel())
        value.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return value.item()

    step()  # allocates the optimizer state
    loss_value, _, step_gib = rss.measured_step(step)
    parts = estimate_memory(get_model(model_name), settings_from_job(config), cpu_gpu()).breakdown_gib
    return {"model": model_name, "seq_len": seq_len, "micro_batch": micro_batch, "documents_per_row": DOCUMENTS,
            "mask": "shared (orch)" if shared else "transformers' boolean (a copy per layer)", "loss_value": loss_value,
            "step_peak_above_before_gib": step_gib,
            "estimated_step_gib": rss.estimated_step_gib(parts),
            "estimated_breakdown_gib": parts}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the tiny model only")
    parser.add_argument("--out", type=file_path, default=RESULTS / "cpu-mask-memory.json")
    args = parser.parse_args(argv)
    output_file(args.out)  # before minutes of measuring
    # each in a fresh process: one's peak never hides another's, and the mask registration is its own
    results = [rss.run_in_subprocess(c, "benchmarks.cpu_mask_memory", shared=shared)
               for c in (QUICK if args.quick else CONFIGS) for shared in (False, True)]
    rss.save_results(args.out, results)
    for r in results:
        print(f"{r['model']} seq {r['seq_len']} x{r['micro_batch']}, {r['mask']}: step "
              f"+{r['step_peak_above_before_gib']:.3f} GiB (estimated {r['estimated_step_gib']:.3f} for the shared "
              f"mask), loss {r['loss_value']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
