"""One training run of one contender, in its own process, for benchmarks/trainer_vs_baseline.py:

    python -m benchmarks.baselines orch|trainer|trl SPEC.json OUT.json

- `orch`: this project's trainer (trainer.loop.FineTune), packing first-fit decreasing, rows padded to seq_len.
- `trainer`: transformers' Trainer + peft, fed orch's very packed rows in orch's step order (the Trainer has no
  packing of its own), so every optimizer step sees the same tensors as orch's: a comparison of training loops.
- `trl`: TRL's SFTTrainer with packing=True and its defaults (best-fit decreasing, padding-free rows), given the same
  tokenized samples and labels as orch; its own packing decides each step's tokens, so they are counted, not assumed.

Each writes per timed step (after `warmup` steps): real (non-padding) input tokens, loss tokens and seconds from the
step's first forward to after its optimizer step and a CUDA sync (no data loading), plus peak memory (CUDA
allocated/reserved since the model was loaded; the process's peak RSS on a CPU). A process per run keeps one run's
allocator, caches and RSS out of the next one's numbers.
"""

import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

RUNNERS = ("orch", "trainer", "trl")


@dataclasses.dataclass(frozen=True)
class BenchSpec:
    """What every contender trains: one model folder, one data file, one job config (LoRA, optimizer, precision)."""

    model: str  # the name orch is given (`random:...` builds the same folder model_path points at)
    model_path: str
    method: str
    data: str
    seq_len: int
    micro_batch: int
    grad_accum: int
    steps: int
    warmup: int
    grad_ckpt: bool
    attention: str
    cpu_threads: int
    workdir: str

    def job(self) -> dict:
        """orch's job config; the baselines read their LoRA, optimizer and schedule settings from the same object."""
        return {"model": self.model, "method": self.method, "dataset": self.data, "seq_len": self.seq_len,
                "micro_batch": self.micro_batch, "grad_accum": self.grad_accum, "max_steps": self.steps,
                "grad_ckpt": self.grad_ckpt, "attention": self.attention,
                "eval_fraction": 0.0, "log_every": 10**9, "save_every": 10**9, "timing_warmup_steps": self.warmup}


def _config(spec: BenchSpec):
    from trainer.config import config_from_dict

    return config_from_dict(spec.job())


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _precision(spec: BenchSpec) -> str:
    """orch's own choice (`precision: auto`): bf16 where the GPU has it, else fp16; fp32 on a CPU. Resolved in each
    run's process, so the parent never opens a CUDA context that would sit in the card's memory meanwhile."""
    from trainer.model import resolve_precision

    return resolve_precision(_config(spec), _device())


def _samples(spec: BenchSpec, tokenizer) -> list:
    """orch's rendering of every record: (token ids, loss mask), the prompt masked."""
    from trainer import data

    records = data.file_records(spec.data)
    return [data.render(record, tokenizer) for record in records]


def _tokenizer(spec: BenchSpec):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.model_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_peft_model(spec: BenchSpec, device: torch.device):
    """What a user writes for the baselines: from_pretrained (+ NF4), prepare_model_for_kbit_training, get_peft_model,
    with orch's precision, attention and LoRA settings (rank, alpha, dropout, target modules)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from trainer.config import LINEAR_MODULES
    from trainer.model import DTYPES

    config = _config(spec)
    dtype = DTYPES[_precision(spec)]
    kwargs = {"dtype": dtype, "attn_implementation": config.attention}
    if config.method == "qlora":
        kwargs.update(quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=config.double_quant), device_map={"": device})
    model = AutoModelForCausalLM.from_pretrained(spec.model_path, **kwargs)
    if config.method != "qlora":
        model.to(device)
    model.config.use_cache = False
    ckpt_kwargs = {"use_reentrant": False}
    if config.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=spec.grad_ckpt,
                                                gradient_checkpointing_kwargs=ckpt_kwargs)
    elif spec.grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)
    targets = "all-linear" if set(config.target_modules) == set(LINEAR_MODULES) else list(config.target_modules)
    return get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                            lora_dropout=config.lora_dropout, target_modules=targets,
                                            task_type="CAUSAL_LM"))


def _training_arguments(spec: BenchSpec, arguments_class, **extra):
    """The same optimizer (torch AdamW, fused on CUDA), schedule (the job's lr_scheduler and warm-up, through the same
    transformers schedules orch uses), clipping and precision as orch."""
    from trainer.optim import warmup_steps

    config, precision = _config(spec), _precision(spec)
    cuda = torch.cuda.is_available()
    return arguments_class(
        output_dir=str(Path(spec.workdir) / "out"), max_steps=spec.steps, per_device_train_batch_size=spec.micro_batch,
        gradient_accumulation_steps=spec.grad_accum, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
        warmup_steps=warmup_steps(config, spec.steps), lr_scheduler_type=config.lr_scheduler,
        optim="adamw_torch_fused" if cuda else "adamw_torch", bf16=precision == "bf16",
        fp16=precision == "fp16", use_cpu=not cuda, gradient_checkpointing=False,  # set on the model, as orch
        report_to=[], save_strategy="no", logging_steps=10**9, disable_tqdm=True, dataloader_num_workers=0,
        seed=config.seed, **extra)


class StepClock:
    """Counts what each optimizer step trained on and how long it took; steps up to `warmup` are left out."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.steps: list[list] = []  # [real tokens, loss tokens, seconds] per timed step
        self._real = self._labels = 0
        self._started = 0.0

    def micro_batch(self, real_tokens: int, label_tokens: int) -> None:
        self._real += real_tokens
        self._labels += label_tokens

    def begin(self) -> None:
        self._real = self._labels = 0
        self._started = time.perf_counter()

    def end(self, finished_steps: int) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - self._started
        if finished_steps > self.warmup:
            self.steps.append([self._real, self._labels, seconds])


def _clocked(trainer_class, clock: StepClock):
    """trainer_class with a clock around each optimizer step; the batch it trains on is left as it is."""
    from transformers import TrainerCallback

    class Callback(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            clock.begin()

        def on_step_end(self, args, state, control, **kwargs):
            clock.end(state.global_step)

    class Clocked(trainer_class):
        def training_step(self, model, inputs, num_items_in_batch=None):
            real = inputs.pop("real_tokens", None)  # the `trainer` rows carry it; TRL's padding-free rows have none
            if real is not None:
                real_tokens = int(real.sum())
            elif "attention_mask" in inputs:
                real_tokens = int(inputs["attention_mask"].sum())
            else:  # padding-free: one flattened row, every token real
                real_tokens = inputs["input_ids"].numel()
            clock.micro_batch(real_tokens, int((inputs["labels"] != -100).sum()))
            return super().training_step(model, inputs, num_items_in_batch)

    return Clocked, Callback()


class _OrchRows(torch.utils.data.Dataset):
    """orch's packed sequences in orch's step order: row k is the k-th sequence orch trains on."""

    def __init__(self, sequences: list, order: list[int]):
        self.sequences, self.order = sequences, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> dict:
        s = self.sequences[self.order[i]]
        return {"input_ids": torch.tensor(s.input_ids), "labels": torch.tensor(s.labels),
                "position_ids": torch.tensor(s.position_ids), "real_tokens": torch.tensor(s.real_tokens)}


def run_orch(spec: BenchSpec, clock: StepClock) -> dict:
    from trainer import data
    from trainer.loop import FineTune

    result = FineTune(_config(spec), Path(spec.workdir) / "orch").run()
    if result["status"] != "ok":
        raise RuntimeError(f"orch trainer: {result['status']}: {result.get('message')}")
    tokenizer = _tokenizer(spec)  # orch's sequences again (deterministic), for each step's loss tokens
    sequences = data.pack(_samples(spec, tokenizer), spec.seq_len, tokenizer.pad_token_id)
    for line in (Path(spec.workdir) / "orch" / "steps.jsonl").read_text().splitlines():
        step = json.loads(line)
        if step["step"] > spec.warmup:
            labels = sum(sum(t != data.IGNORE_INDEX for t in sequences[i].labels) for i in step["sequences"])
            clock.steps.append([step["tokens"], labels, step["step_time_s"]])
    return {"trainable_params": result["trainable_params"]}


def run_trainer(spec: BenchSpec, clock: StepClock) -> dict:
    from transformers import Trainer, TrainingArguments, default_data_collator

    from trainer import data
    from trainer.batches import StepOrder

    tokenizer = _tokenizer(spec)
    sequences = data.pack(_samples(spec, tokenizer), spec.seq_len, tokenizer.pad_token_id)
    order = StepOrder(len(sequences), spec.micro_batch * spec.grad_accum, _config(spec).seed)
    rows = _OrchRows(sequences, [i for step in range(spec.steps) for i in order.indices(step)])
    model = load_peft_model(spec, _device())
    clocked, callback = _clocked(Trainer, clock)
    trainer = clocked(model=model, args=_training_arguments(spec, TrainingArguments,
                                                            train_sampling_strategy="sequential",
                                                            remove_unused_columns=False),
                      train_dataset=rows, data_collator=default_data_collator, callbacks=[callback])
    _train(trainer)
    return {"trainable_params": _trainable(model)}


def trl_dataset(spec: BenchSpec, tokenizer):
    """One row per sample as orch renders it (prompt and each sample's first token masked), unpadded, for TRL to
    tokenize no further and pack itself."""
    from datasets import Dataset

    from trainer import data

    pieces = data.pack(_samples(spec, tokenizer), spec.seq_len, tokenizer.pad_token_id, packing=False)
    return Dataset.from_list([{"input_ids": p.input_ids[:p.real_tokens], "labels": p.labels[:p.real_tokens]}
                              for p in pieces])


def run_trl(spec: BenchSpec, clock: StepClock) -> dict:
    from trl import SFTConfig, SFTTrainer

    tokenizer = _tokenizer(spec)
    dataset = trl_dataset(spec, tokenizer)
    model = load_peft_model(spec, _device())
    clocked, callback = _clocked(SFTTrainer, clock)
    args = _training_arguments(spec, SFTConfig, packing=True, max_length=spec.seq_len)
    trainer = clocked(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=[callback])
    _train(trainer)
    return {"trainable_params": _trainable(model), "trl_padding_free": trainer.padding_free,
            "trl_packing_strategy": args.packing_strategy}


def _trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _train(trainer) -> None:
    if torch.cuda.is_available():  # peak memory from here, as orch counts from after its model is loaded
        torch.cuda.reset_peak_memory_stats()
    trainer.train()


def run(runner: str, spec: BenchSpec) -> dict:
    """The measurement of one run; a run that fails or runs out of memory is a result too."""
    from trainer.metrics import device_description, peak_memory

    if _device().type == "cpu":  # the same thread count for every contender; a GPU run leaves torch's default
        torch.set_num_threads(spec.cpu_threads)
    clock = StepClock(spec.warmup)
    started = time.time()
    try:
        extra = {"orch": run_orch, "trainer": run_trainer, "trl": run_trl}[runner](spec, clock)
        status, message = "ok", None
    except torch.OutOfMemoryError as exc:
        extra, status, message = {}, "oom", str(exc).splitlines()[0]
    except Exception as exc:  # noqa: BLE001 - recorded in the results, not lost
        extra, status, message = {}, "error", f"{type(exc).__name__}: {exc}"
    precision = _precision(spec)
    return {"runner": runner, "status": status, "message": message, "steps": clock.steps,
            "peak_memory_gib": peak_memory(_device()), "device": device_description(_device(), precision)[0],
            "precision": precision, "wall_s": time.time() - started, **extra}


def main(argv: list[str]) -> int:
    """The child process trainer_vs_baseline.py starts for one contender's run; not a command of its own."""
    if len(argv) != 3 or argv[0] not in RUNNERS:
        print(f"error: baselines.py takes {{{','.join(RUNNERS)}}} SPEC.json RESULT.json: it is started by "
              "trainer_vs_baseline.py, which writes the spec; run that instead.", file=sys.stderr)
        return 2
    runner, spec_path, out_path = argv
    try:
        spec = BenchSpec(**json.loads(Path(spec_path).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:  # a spec trainer_vs_baseline.py did not write
        print(f"error: {spec_path!r} is not a spec trainer_vs_baseline.py wrote ({type(exc).__name__}): run that "
              "script instead.", file=sys.stderr)
        return 2
    result = run(runner, spec)
    Path(out_path).write_text(json.dumps(result))
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
