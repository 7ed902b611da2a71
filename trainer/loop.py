"""The fine-tuning recipe: one self-contained run from a config to an output folder with metrics.json.

Features: LoRA, QLoRA (NF4 or 8-bit) and full fine-tuning; packed sequences; gradient accumulation with the loss
normalised over the whole optimizer step; checkpointing every N steps or minutes and on SIGTERM; exact resume;
a budget stop; out-of-memory reported as a status, and with auto-fit retried at half the micro-batch, then with
gradient checkpointing; eval perplexity; the adapter (optionally merged) or full model saved at the end.

Raises ConfigError before any work starts when the config cannot run (missing dataset, no bitsandbytes, a model
bitsandbytes cannot quantize, an output folder holding another run's checkpoints).
"""

import contextlib
import dataclasses
import gc
import json
import math
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from transformers.integrations.neftune import activate_neftune

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.flops import training_flops_per_token
from gpu_catalog.models import shape_from_config
from gpu_catalog.units import usd_text
from trainer import checkpoint, checkpoint_folders, data, metrics
from trainer.batches import StepOrder, at_most_cores, collate, step_loader
from trainer.config import AUTO_SAVE_FRACTION, ConfigError, JobConfig, identity_changes, resolve_tokenizer, run_identity
from trainer.data_sources import dataset_problems
from trainer.jsonio import write_json_atomic
from trainer.loss import loss_function
from trainer.meter import EXIT_MARGIN_S, BudgetMeter, BudgetSpent
from trainer.model import (
    check_quantizable,
    check_weights_match,
    compile_blocks,
    load_model,
    missing_modules,
    most_frozen_blocks,
    resolve_precision,
)
from trainer.offline_names import build_folder_problem, is_built_offline, model_unreachable, tokenizer_unreachable
from trainer.optim import build_optimizer, build_scheduler
from trainer.prepared import Prepared, prepare
from trainer.progress import Progress
from trainer.requirements import run_problems
from trainer.signals import StopRequests
from trainer.status import TrainStatus
from trainer.trackers import open_tracker

BUDGET_STEP_MARGIN = 1.25


def _count_labels(batch: dict) -> int:
    return int((batch["labels"] != data.IGNORE_INDEX).sum())


class Diverged(Exception):
    """The loss, or the gradient norm, is not finite: a step would write NaN into the weights (and the checkpoints
    after it), so the run ends instead of training on."""

    def __init__(self, what: str, value: float):
        super().__init__(f"{what} {value}")
        self.what, self.value = what, value


@contextlib.contextmanager
def torch_threads(count: int | None):
    """torch's CPU threads for one run (`cpu_threads`: a scheduler's CPU slot gives each job its share of the cores,
    or two jobs each ran on all of them), set back after it for a process that goes on (a test, a notebook)."""
    before = torch.get_num_threads()
    if count is not None:  # 99 threads on 2 cores, and the run recorded 99, which calibrate fitted the CPU against
        torch.set_num_threads(at_most_cores(count, "cpu_threads", "it trains on {cores}"))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class FineTune:
    def __init__(self, config: JobConfig, output_dir: Path, base_dir: Path = Path("."), resume: str = "never",
                 auto_fit: bool = False, device: torch.device | None = None, started_at: float | None = None):
        self.config, self.output_dir, self.base_dir = config, Path(output_dir), base_dir
        self.auto_fit = auto_fit
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = resolve_precision(config, self.device)
        self.stops = StopRequests()
        # the budget counts from `started_at` (`python -m trainer`: the process's start), else from now
        self.meter = BudgetMeter(config.usd_per_hour, config.budget_usd, started_at or time.time())
        self._last_save_s: float | None = None
        self._longest_step_s = 0.0
        self._so_far: Callable[[], dict] | None = None  # the training loop's figures so far, once it runs
        self.identity = run_identity(config, base_dir)  # recorded in each checkpoint; a resume must match it
        self._validate(resume)
        self.resume = resume == "auto"

    def _validate(self, resume: str) -> None:
        config, problems = self.config, []
        if cache_problem := build_folder_problem(config.model):  # the built model is kept there
            raise ConfigError(f"{cache_problem}.")
        problems += dataset_problems(config, self.base_dir)
        problems += run_problems(config, on_cuda=self.device.type == "cuda")
        if resume not in ("auto", "never"):
            problems.append(f"--resume must be auto or never, got {resume!r}")
        elif unresumed := checkpoint_folders.unresumed_problem(self.output_dir, resume):
            problems.append(unresumed)
        elif resume == "auto" and (latest := checkpoint_folders.latest_checkpoint(self.output_dir)) and (
                changes := identity_changes(checkpoint_folders.saved_identity(latest), self.identity)):
            problems.append(f"checkpoint {latest} is from another job ({'; '.join(changes)}): resume with the "
                            "settings it was trained with, or choose another --output")
        elif resume == "auto" and (config.max_steps is not None or config.train_tokens is not None) and (
                fewer := checkpoint_folders.fewer_steps_problem(self.output_dir, config.planned_steps(0))):
            problems.append(fewer)  # epochs need the data counted: the check after the resume says those
        if config.precision == "fp16" and self.device.type != "cuda":
            problems.append("precision fp16 needs a CUDA GPU (its loss scaler runs there): use precision auto, bf16 "
                            "or fp32 on the CPU")
        if unreachable := model_unreachable(config.model):
            problems.append(unreachable)
        elif config.method != "full" and (missing := missing_modules(config.model, config.modules_to_save)):
            problems.append(f"`modules_to_save` names no module of {config.model}: {', '.join(missing)} (e.g. "
                            "embed_tokens, lm_head)")
        elif config.method == "full" and config.freeze_layers and (limit := most_frozen_blocks(config.model)) and \
                config.freeze_layers > limit[0]:
            tied = ", and its head is tied to the frozen embeddings: only the final norm would train" if limit[1] \
                and config.freeze_layers == limit[0] + 1 else ""
            problems.append(f"`freeze_layers` {config.freeze_layers} is more than {config.model} can freeze{tied}: "
                            f"freeze at most {limit[0]}")
        tokenizer = resolve_tokenizer(config.tokenizer, self.base_dir)
        if tokenizer and (unreachable := tokenizer_unreachable(tokenizer)):
            problems.append(unreachable)
        if problems:
            raise ConfigError("cannot train: " + "; ".join(problems) + ".")
        if not is_built_offline(config.model):
            check_weights_match(config.model)
        if config.method == "qlora" and not is_built_offline(config.model):
            try:
                check_quantizable(config.model)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None

    # -- preparation, shared by every attempt -------------------------------------------------------------------

    def _prepare(self) -> Prepared:
        return prepare(self.config, self.base_dir)

    # -- the run ------------------------------------------------------------------------------------------------

    def run(self) -> dict:
        """Train (retrying after out-of-memory when auto-fit is on) and write metrics.json; returns the metrics."""
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a folder the checks allowed but the system refuses (/proc, a full disk)
            raise UserError(f"--output '{self.output_dir}' cannot be made: {exc.strerror or exc}.") from None
        started = time.time()
        attempts: list[dict] = []
        self.meter.arm_alarm()
        try:
            with torch_threads(self.config.cpu_threads):
                result, config = self._attempts(attempts)
        except BudgetSpent as exc:  # the alarm, wherever it struck: before training, in a step, or in a handler below
            so_far = self._so_far() if self._so_far is not None else {}
            result, config = {"status": TrainStatus.BUDGET_STOPPED, "message": str(exc), **so_far}, self.config
        finally:
            self.meter.disarm_alarm()
        result.update(auto_fit_attempts=attempts, wall_s=time.time() - started, cost_usd=self.meter.spent_usd(),
                      config=dataclasses.asdict(config or self.config), versions=metrics.versions())
        write_json_atomic(self.output_dir / "metrics.json", result)
        return result

    def _attempts(self, attempts: list[dict]) -> tuple[dict, JobConfig | None]:
        config = self.config
        try:
            prepared = self._prepare()
            if note := prepared.fit.note(config.seq_len):
                print(checks.printable(f"data: {note}"), flush=True)
            while True:
                try:
                    return self._train(config, prepared), config
                except torch.OutOfMemoryError:
                    attempts.append(self._oom_attempt(config))
                    gc.collect()
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                    config = self._smaller(config) if self.auto_fit else None
                    if config is None:
                        return {"status": TrainStatus.OOM, "message": "out of memory; tried " + "; ".join(
                            f"micro-batch {a['micro_batch']} x {a['grad_accum']}, seq_len {a['seq_len']}, "
                            f"checkpointing {'on' if a['grad_ckpt'] else 'off'}" for a in attempts)}, None
                    self.resume = True  # a checkpoint of the failed attempt (same data order) is still good
        except (ConfigError, data.DataError) as exc:  # the job's data or settings, found once they are read: bad input
            return {"status": TrainStatus.BAD_CONFIG, "message": str(exc)}, config
        except BudgetSpent:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded, not lost: the traceback goes to error.log
            return {"status": TrainStatus.ERROR, "message": f"{type(exc).__name__}: {exc} "
                                                            f"({_kept_traceback(self.output_dir)})"}, config

    def _oom_attempt(self, config: JobConfig) -> dict:
        peak = metrics.peak_memory(self.device)
        return {"micro_batch": config.micro_batch, "grad_accum": config.grad_accum, "seq_len": config.seq_len,
                "grad_ckpt": config.grad_ckpt is True, "peak_vram_gib": peak}

    @staticmethod
    def _smaller(config: JobConfig) -> JobConfig | None:
        """Half the micro-batch with twice the accumulation; at micro-batch 1, checkpointing; then nothing."""
        if config.micro_batch > 1:
            return dataclasses.replace(config, micro_batch=config.micro_batch // 2, grad_accum=config.grad_accum * 2)
        if config.grad_ckpt is not True:
            return dataclasses.replace(config, grad_ckpt=True)
        return None

    def _train(self, config: JobConfig, prepared: Prepared) -> dict:
        device = self.device
        grad_ckpt = config.grad_ckpt is True
        order = StepOrder(len(prepared.train), config.effective_batch, config.seed)  # too little data: before the model
        total_steps = self.config.planned_steps(len(prepared.train))
        if self.resume and (fewer := checkpoint_folders.fewer_steps_problem(self.output_dir, total_steps)):
            raise ConfigError(fewer)  # epochs' steps, known once the data is counted: before the model loads
        if warm := config.epochs_warm_up_problem(len(prepared.train), f"{len(prepared.train):,} training sequences"):
            raise ConfigError(warm)  # epochs' steps, known once the data is counted: before the model loads
        torch.manual_seed(config.seed)  # adapter init, dropout and NEFTune noise repeat; a resume restores the state
        model = load_model(config, prepared.model_path, device, self.precision, grad_ckpt)
        if config.compile:
            compile_blocks(model)
        model.train()
        if config.neftune_noise_alpha:
            activate_neftune(model, config.neftune_noise_alpha)  # noise in training forwards only
        loss_fn = self._loss_fn = loss_function(config.loss, config.loss_chunk_tokens, model, device)
        optimizer = build_optimizer(config, model, device)
        save_every = config.save_every or max(1, math.ceil(total_steps * AUTO_SAVE_FRACTION))
        scheduler = build_scheduler(optimizer, config, total_steps)
        scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)
                    if device.type == "cuda" and self.precision != "fp32" else contextlib.nullcontext())
        state = {"step": 0, "train_tokens": 0, "wall_s": 0.0, "loss_curve": [], "eval_curve": []}
        if self.resume:
            state = self._resume(model, optimizer, scheduler, scaler) or state
        steps_log = self.output_dir / "steps.jsonl"
        _truncate_steps_log(steps_log, state["step"])
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        loader = step_loader(prepared.train, order, config.micro_batch, state["step"], total_steps, config.num_workers)
        self.stops.install()
        tracker = open_tracker(config, self.output_dir, resume=state["step"] > 0)
        sampler = metrics.NvmlSampler(device).start()
        session_start, last_save, first_step = time.time(), time.time(), state["step"]
        saved_step = first_step or None  # the step the newest checkpoint holds: a budget stop after it saves no copy
        step_times: list[float] = []  # timed steps, after the warm-up
        self._longest_step_s = 0.0
        timed_tokens, timed_s = 0, 0.0  # over step_times: progress.json's session rate, without a sum a step
        status, stop_message = TrainStatus.OK, None
        progress = Progress(total_steps, state["step"], self.output_dir)

        def so_far() -> dict:
            """What the run trained up to the step the alarm struck in (one that outlasted the budget: a stall, a
            suspended machine): its metrics.json held the status alone, and the run was recorded with no steps."""
            return {"steps": state["step"], "planned_steps": total_steps, "train_tokens": state["train_tokens"],
                    "tokens_per_s": timed_tokens / timed_s if step_times else None,
                    "peak_vram_gib": metrics.peak_memory(device), "loss_curve": state["loss_curve"]}

        self._so_far = so_far
        try:
            if state["step"] == 0 and prepared.eval:
                state["eval_curve"].append([0, self._evaluate(model, prepared.eval, config, autocast)])
            self.meter.loop_started()
            for step, indices, micro_batches in loader:
                if self._over_budget():
                    status, stop_message = TrainStatus.BUDGET_STOPPED, self._budget_stop_message(state["step"])
                    break
                start = time.perf_counter()
                n_items = sum(_count_labels(b) for b in micro_batches)
                loss = sum(forward_backward(model, {k: v.to(device) for k, v in b.items()}, n_items, autocast,
                                            scaler, loss_fn) for b in micro_batches)
                lr = scheduler.get_last_lr()[0]  # the rate this step trains at
                try:
                    if not math.isfinite(loss):
                        raise Diverged("loss", loss)
                    grad_norm = optimizer_step(model, optimizer, scheduler, scaler, config.max_grad_norm)
                except Diverged as exc:
                    status, stop_message = TrainStatus.DIVERGED, self._diverged_message(exc, step + 1)
                    break
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                step_time = time.perf_counter() - start
                self._longest_step_s = max(self._longest_step_s, step_time)
                step_tokens = sum(prepared.train[i].real_tokens for i in indices)
                if step >= first_step + config.timing_warmup_steps:  # a process's first steps are warm-up
                    step_times.append(step_time)
                    timed_tokens += step_tokens
                    timed_s += step_time
                state["step"] = step + 1
                state["train_tokens"] += step_tokens
                state["loss_curve"].append([step + 1, loss])
                line = {"step": step + 1, "loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens": step_tokens,
                        "step_time_s": step_time, "sequences": indices}
                with open(steps_log, "a") as log:
                    log.write(json.dumps(line) + "\n")
                progress.update(step + 1, loss, lr, step_tokens / step_time, metrics.peak_memory(device),
                                log=(step + 1) % config.log_every == 0, spent_usd=self.meter.spent_usd(),
                                train_tokens=state["train_tokens"],
                                session_tokens_per_s=timed_tokens / timed_s if step_times else None)
                if config.eval_every and (step + 1) % config.eval_every == 0 and prepared.eval:
                    state["eval_curve"].append([step + 1, self._evaluate(model, prepared.eval, config, autocast)])
                due = (step + 1) % save_every == 0 or \
                    time.time() - last_save >= config.save_every_minutes * 60
                tracker.log(step + 1, {"train/loss": loss, "train/lr": lr, "train/grad_norm": grad_norm,
                                       "train/tokens_per_s": step_tokens / step_time, "train/step_time_s": step_time,
                                       "train/peak_vram_gib": metrics.peak_memory(device),
                                       "eval/loss": state["eval_curve"][-1][1] if state["eval_curve"] and
                                       state["eval_curve"][-1][0] == step + 1 else None})
                if due or self.stops.reason:
                    path = self._save(model, optimizer, scheduler, scaler, state, session_start, config)
                    last_save, saved_step = time.time(), state["step"]
                    if self.stops.reason or (step + 1) % config.log_every == 0:  # beside a log line, not every save
                        progress.say(checks.printable(f"checkpoint: {path}"))
                if self.stops.reason:
                    status = self.stops.reason
                    break
        finally:
            self.stops.restore()
            tracker.close()
            sampler_result = sampler.stop()
            progress.close()
        if status is TrainStatus.BUDGET_STOPPED and saved_step != state["step"]:
            path = self._save(model, optimizer, scheduler, scaler, state, session_start, config)
            print(checks.printable(f"checkpoint: {path}"), flush=True)
        state["wall_s"] += time.time() - session_start
        if status is TrainStatus.OK:
            if prepared.eval and (not state["eval_curve"] or state["eval_curve"][-1][0] != state["step"]):
                state["eval_curve"].append([state["step"], self._evaluate(model, prepared.eval, config, autocast)])
            self._save_final(model, prepared)
        result = self._metrics(status, state, config, prepared, model, step_times, timed_tokens, sampler_result,
                               total_steps)
        if stop_message:
            result["message"] = stop_message
        return result

    def _resume(self, model, optimizer, scheduler, scaler) -> dict | None:
        """Load the newest whole checkpoint into the built objects and return its state; None when there is none.
        Newer folders cut short (a VM lost while its bucket uploaded them) are passed over, said in a line. One that
        does not read back gives way to the whole one before it, said too; with none before it, the run stops in one
        line naming the folder and the fix (torch's own error advises an unsafe load)."""
        folders = checkpoint_folders.whole_checkpoints(self.output_dir)
        cut_short = [f.name for f in checkpoint_folders.step_folders(self.output_dir) if f not in folders
                     and (not folders or checkpoint_folders.step_of(f) > checkpoint_folders.step_of(folders[0]))]
        if cut_short:
            instead = f"resuming from {folders[0].name}" if folders else "training from the start"
            where = checkpoint_folders.checkpoints_dir(self.output_dir)
            print(checks.printable(f"checkpoint {', '.join(cut_short)} in {where} is missing files or has them cut "
                                   f"short: {instead}"), flush=True)
        for i, folder in enumerate(folders):
            before = folders[i + 1] if i + 1 < len(folders) else None
            try:
                state = checkpoint.load_checkpoint(folder, model, optimizer, scheduler, scaler)
            except checkpoint.DamagedCheckpoint as exc:
                if before is None:
                    newest = "" if folder == folders[0] else f" (as is every one after it, up to {folders[0].name})"
                    where = checkpoint_folders.checkpoints_dir(self.output_dir)
                    raise ConfigError(f"checkpoint {folder} is damaged ({exc}){newest} and there is no whole one "
                                      f"before it: delete {where} to train this --output again from the start, or "
                                      "choose another --output.") from None
                print(checks.printable(f"checkpoint {folder} is damaged ({exc}): resuming from {before.name}, the one "
                                       "before it"), flush=True)
                continue
            print(checks.printable(f"resumed from {folder} at step {state['step']}"), flush=True)
            return state
        return None

    def _diverged_message(self, exc: Diverged, step: int) -> str:
        """Why the run ended at a non-finite loss, and what to change. The learning rate, precision and clipping are
        the run's identity, so a resume keeps them: the job is trained again from the start, changed."""
        fp16 = ", precision bf16 instead of fp16 (its narrower range overflows)" if self.precision == "fp16" else ""
        return (f"the {exc.what} is {exc.value} at step {step} (the weights were not updated with it): lower the "
                f"job's learning_rate (now {self.config.learning_rate}){fp16} or max_grad_norm (now "
                f"{self.config.max_grad_norm}) and train it again from the start")

    def _over_budget(self) -> bool:
        """Stop before the step that would carry the spend past the cap, keeping room for the checkpoint the stop
        saves: the longest step so far plus a quarter (steps vary), and the last save (before any, one more step)."""
        next_step_s = BUDGET_STEP_MARGIN * self._longest_step_s
        save_s = self._last_save_s if self._last_save_s is not None else next_step_s
        return self.meter.would_pass(next_step_s + save_s + EXIT_MARGIN_S)

    def _budget_stop_message(self, steps_done: int) -> str:
        """Why the loop stopped, in one line (the log's `budget_stopped:` line; a bare status read as a crash): the
        budget this process was given (a resumed run's launcher gives what is left) and its spend, both from the
        meter. The trainer cannot know which command started it, so it says what continues the run, not how."""
        return (f"the next step (and the checkpoint the stop saves) would pass this session's budget of "
                f"{usd_text(self.meter.budget_usd)} ({usd_text(self.meter.spent_usd())} spent); a larger budget "
                f"continues from the checkpoint at step {steps_done}")

    def _save(self, model, optimizer, scheduler, scaler, state, session_start, config) -> Path:
        """A whole checkpoint of the run so far (checkpoints/latest names it); returns its folder."""
        started = time.time()
        saved_state = {**state, "wall_s": state["wall_s"] + started - session_start,
                       "micro_batch": config.micro_batch, "grad_accum": config.grad_accum, "job": self.identity}
        path = checkpoint.save_checkpoint(self.output_dir, state["step"], model, optimizer, scheduler, scaler,
                                          saved_state)
        self._last_save_s = time.time() - started
        return path

    @torch.no_grad()
    def _evaluate(self, model, sequences: list[data.Sequence], config: JobConfig, autocast) -> float:
        model.eval()
        total_loss, total_items = 0.0, 0
        batches = [sequences[i:i + config.micro_batch] for i in range(0, len(sequences), config.micro_batch)]
        for chunk in batches[:config.eval_batches]:
            batch = {k: v.to(self.device) for k, v in collate(chunk).items()}
            items = _count_labels(batch)
            with autocast:
                loss = self._loss_fn(model, batch, items)
            total_loss += loss.item() * items
            total_items += items
        model.train()
        return total_loss / total_items

    def _save_final(self, model, prepared: Prepared) -> None:
        final = self.output_dir / checkpoint_folders.FINAL_DIR
        model.save_pretrained(final)
        prepared.tokenizer.save_pretrained(final)
        if self.config.merge_adapter and self.config.method != "full":
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            dtype = torch.float32 if self.device.type == "cpu" else torch.bfloat16
            base = AutoModelForCausalLM.from_pretrained(prepared.model_path, dtype=dtype)
            merged = PeftModel.from_pretrained(base, final).merge_and_unload()
            merged.save_pretrained(self.output_dir / "merged")
            prepared.tokenizer.save_pretrained(self.output_dir / "merged")

    def _metrics(self, status, state, config, prepared, model, step_times, timed_tokens, sampler_result,
                 total_steps) -> dict:
        device_name, peak_tflops, device_memory_gib = metrics.device_description(self.device, self.precision)
        tokens_per_s = timed_tokens / sum(step_times) if step_times else None
        shape = shape_from_config(config.model, model.config.to_dict(), source="trained model")
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        adapters = trainable if config.method != "full" else 0
        _, model_flops = training_flops_per_token(shape, config.method, config.seq_len, adapters,
                                                  eager_attention=config.attention == "eager",
                                                  frozen_layers=config.freeze_layers)
        eval_loss = state["eval_curve"][-1][1] if state["eval_curve"] else None
        return {
            "status": status,
            "steps": state["step"],
            "planned_steps": total_steps,
            "train_tokens": state["train_tokens"],
            "tokens_per_s": tokens_per_s,
            "step_time_s": statistics.median(step_times) if step_times else None,
            "peak_vram_gib": metrics.peak_memory(self.device),
            **sampler_result,
            "gpu": device_name,
            "gpu_vram_gib": device_memory_gib,
            "cpu_threads": torch.get_num_threads() if self.device.type == "cpu" else None,  # cpu_threads or torch's
            "precision": self.precision,
            "mfu": tokens_per_s * model_flops / (peak_tflops * 1e12) if tokens_per_s and peak_tflops else None,
            "model_flops_per_token": model_flops,
            "trainable_params": trainable,
            "loss_curve": state["loss_curve"],
            "eval_curve": state["eval_curve"],
            "eval_loss": eval_loss,
            "eval_perplexity": _perplexity(eval_loss) if eval_loss is not None else None,
            "train_wall_s": state["wall_s"],
            "model_path": prepared.model_path,
            "train_sequences": len(prepared.train),
            "eval_sequences": len(prepared.eval),
            "padding_fraction": 1 - sum(s.real_tokens for s in prepared.train) / (len(prepared.train) * config.seq_len),
        }


def _perplexity(eval_loss: float) -> float:
    """exp(eval loss); infinite past a float's range (a loss above ~709), which metrics.json writes as null."""
    try:
        return math.exp(eval_loss)
    except OverflowError:
        return math.inf


def forward_backward(model, batch: dict, n_items: int, autocast, scaler, loss_fn) -> float:
    """One micro-batch. The loss is summed over tokens and divided by the whole step's token count, so accumulated
    gradients equal those of one big batch however the step is split."""
    with autocast:
        loss = loss_fn(model, batch, n_items)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    return loss.item()


def optimizer_step(model, optimizer, scheduler, scaler, max_grad_norm: float) -> float:
    """Clip and step; returns the gradient norm before clipping. fp16's grad scaler skips a step whose gradients
    overflowed (and lowers its scale); without it, a non-finite norm raises Diverged before the optimizer steps."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    params = [p for p in model.parameters() if p.requires_grad]
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    if scaler is None and not math.isfinite(grad_norm):
        raise Diverged("gradient norm", grad_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    return grad_norm


def _logged_step(line: str) -> int | None:
    """The step a steps.jsonl line records; None for a line cut short (a kill mid-append, a part-uploaded file) or
    otherwise not one the loop writes."""
    try:
        logged = json.loads(line)["step"]
    except (ValueError, TypeError, KeyError):
        return None
    return logged if isinstance(logged, int) else None


def _truncate_steps_log(path: Path, step: int) -> None:
    """Drop log lines past the checkpoint being resumed: those steps are trained again. A line that does not parse is
    dropped too: it was the last one, cut short, so past the checkpoint; kept, it stopped every later resume. Replaced
    whole (the budget alarm may end the process at any moment before the loop: a truncate-then-write emptied the
    log)."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = [line for line in lines if (logged := _logged_step(line)) is not None and logged <= step]
    partial = path.with_name(path.name + ".tmp")
    partial.write_text("".join(line + "\n" for line in kept))
    os.replace(partial, path)


def _kept_traceback(output: Path) -> str:
    """Where the traceback of an unforeseen error went: error.log, or why not. Writing it raised in turn when the
    output folder had gone read-only or full, and the trainer ended in a chained traceback instead of its one line."""
    try:  # every frame, whatever sys.tracebacklimit says: SkyPilot's print_exception_no_traceback leaves it at 0
        (output / "error.log").write_text(traceback.format_exc(limit=sys.getrecursionlimit()))
    except OSError as exc:
        return f"its traceback could not be kept: {exc.strerror or exc}"
    return "traceback in error.log"
