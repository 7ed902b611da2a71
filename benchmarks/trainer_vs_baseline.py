"""orch's trainer against a plain baseline: transformers' Trainer + peft with default settings, each sample padded
(dynamically, to the longest in its batch), no packing. Same model, data, micro-batch, method and hardware; the
ratio of real (non-padding) training tokens per second is the result.

    .venv/bin/python benchmarks/trainer_vs_baseline.py                      # tiny model on this CPU
    .venv/bin/python benchmarks/trainer_vs_baseline.py --model random:meta-llama/Llama-3.1-8B --method lora \
        --seq-len 2048 --micro-batch 4 --steps 30 --out benchmarks/results/trainer_vs_baseline_h100.json  # a GPU

Exits 1 when the ratio is below --min-ratio (1.0 by default). Both runs skip their first --warmup steps.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "examples" / "data" / "tiny_instruct.jsonl"


def run_orch(args, workdir: Path) -> dict:
    from trainer.config import config_from_dict
    from trainer.loop import FineTune

    config = config_from_dict({"model": args.model, "method": args.method, "dataset": str(args.data),
                               "seq_len": args.seq_len, "micro_batch": args.micro_batch, "max_steps": args.steps,
                               "eval_fraction": 0.0, "log_every": 10**9, "lora_r": 16, "grad_ckpt": args.grad_ckpt,
                               "learning_rate": 2e-4})
    result = FineTune(config, workdir / "orch").run()
    if result["status"] != "ok":
        raise SystemExit(f"orch trainer: {result['status']}: {result.get('message')}")
    return {"tokens_per_s": result["tokens_per_s"], "mfu": result["mfu"], "peak_vram_gib": result["peak_vram_gib"],
            "padding_fraction": result["padding_fraction"], "steps": result["steps"], "gpu": result["gpu"],
            "model_path": result["model_path"]}


def _timed_trainer(warmup: int):
    """transformers' Trainer, counting real tokens and step time after the warm-up steps, and changing nothing else."""
    import torch
    from transformers import Trainer, TrainerCallback

    class Clock(TrainerCallback):
        seconds, tokens = 0.0, 0

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if state.global_step > warmup:
                self.seconds += time.perf_counter() - self.started

    clock = Clock()

    class TimedTrainer(Trainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            if self.state.global_step >= warmup:  # global_step counts finished steps: this is step global_step + 1
                clock.tokens += int(inputs["attention_mask"].sum())
            return super().training_step(model, inputs, num_items_in_batch)

    return TimedTrainer, clock


def run_baseline(args, model_path: str, workdir: Path) -> dict:
    """The tutorial recipe: tokenize prompt + response, pad per batch, Trainer(model=get_peft_model(...))."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        BitsAndBytesConfig,
        DataCollatorForLanguageModeling,
        TrainingArguments,
    )

    from trainer.data_formats import PROMPT_TEMPLATE, PROMPT_WITH_INPUT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    kwargs = {"dtype": dtype}
    if args.method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True)
    model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    if args.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.grad_ckpt)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))

    def tokenize(row):
        template = PROMPT_WITH_INPUT_TEMPLATE if row.get("input") else PROMPT_TEMPLATE
        text = template.format(instruction=row["instruction"], input=row.get("input", "")) + row["output"]
        return tokenizer(text + tokenizer.eos_token, truncation=True, max_length=args.seq_len)

    dataset = load_dataset("json", data_files=str(args.data), split="train")
    dataset = dataset.map(tokenize, remove_columns=dataset.column_names)
    timed_trainer, clock = _timed_trainer(args.warmup)
    training_args = TrainingArguments(output_dir=str(workdir / "baseline"), max_steps=args.steps,
                                      per_device_train_batch_size=args.micro_batch, learning_rate=2e-4, bf16=cuda,
                                      use_cpu=not cuda, gradient_checkpointing=args.grad_ckpt, report_to=[],
                                      save_strategy="no",
                                      logging_steps=10**9, dataloader_num_workers=0)
    timed_trainer(model=model, args=training_args, train_dataset=dataset,
                  data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False), callbacks=[clock]).train()
    return {"tokens_per_s": clock.tokens / clock.seconds, "timed_steps": args.steps - args.warmup}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="orch/tiny-llama")
    parser.add_argument("--method", default="lora", choices=["lora", "qlora"])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=1, help="the orch trainer always skips its first step")
    parser.add_argument("--grad-ckpt", action="store_true")
    parser.add_argument("--min-ratio", type=float, default=1.0)
    parser.add_argument("--out", type=Path, help="write the result as JSON here (benchmarks/results/ for GPU runs)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="orch-vs-baseline-"))
    try:
        orch = run_orch(args, workdir)
        baseline = run_baseline(args, orch["model_path"], workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ratio = orch["tokens_per_s"] / baseline["tokens_per_s"]
    result = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"), "model": args.model,
              "method": args.method, "seq_len": args.seq_len, "micro_batch": args.micro_batch, "steps": args.steps,
              "grad_ckpt": args.grad_ckpt, "orch": orch, "baseline": baseline, "ratio": ratio}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    print(f"{args.model} {args.method} seq {args.seq_len} x {args.micro_batch} on {orch['gpu']}: orch "
          f"{orch['tokens_per_s']:,.0f} tok/s (padding {orch['padding_fraction']:.1%}, MFU {orch['mfu'] or 0:.1%}) "
          f"vs baseline {baseline['tokens_per_s']:,.0f} tok/s: ratio {ratio:.2f}")
    return 0 if ratio >= args.min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
