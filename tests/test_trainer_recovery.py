"""Nothing recorded is lost: kill -9 and resume, SIGTERM (spot preemption), the budget stop, out-of-memory."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gpu_catalog.units import usd_for
from tests.conftest import REPO
from tests.trainer_helpers import read_steps, write_job
from trainer.__main__ import main
from trainer.batches import StepOrder
from trainer.job_file import load_config
from trainer.loop import FineTune
from trainer.meter import METER_INTERVAL_S


def start_trainer(job, output, *extra):
    return subprocess.Popen([sys.executable, "-m", "trainer", str(job), "--output", str(output), *extra], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint_past(output, step, process, timeout_s=120):
    pointer = output / "checkpoints" / "latest"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if pointer.is_file() and int(pointer.read_text().split("-")[1]) >= step:
            return
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


def test_sigkill_then_resume_trains_every_step_once_in_the_planned_order(tmp_path):
    job, output = write_job(tmp_path, max_steps=40, save_every=5, micro_batch=2, grad_accum=2), tmp_path / "out"
    process = start_trainer(job, output)
    wait_for_checkpoint_past(output, 10, process)
    process.kill()
    process.wait()
    assert main([str(job), "--output", str(output), "--resume", "auto"]) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    steps = read_steps(output)
    assert [s["step"] for s in steps] == list(range(1, 41))  # every step once: none lost, none repeated
    order = StepOrder(metrics["train_sequences"], 4, seed=0)
    assert [s["sequences"] for s in steps] == [order.indices(k) for k in range(40)]  # the uninterrupted order
    assert metrics["steps"] == 40 and metrics["train_tokens"] == sum(s["tokens"] for s in steps)
    assert [step for step, _ in metrics["loss_curve"]] == list(range(1, 41))


def test_sigterm_saves_a_usable_checkpoint_and_says_preempted(tmp_path):
    job, output = write_job(tmp_path, max_steps=400, save_every=3), tmp_path / "out"
    process = start_trainer(job, output)
    wait_for_checkpoint_past(output, 3, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=600) == 5
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["status"] == "preempted"
    # the log says what happened, not which of the two senders it was (`orch stop`'s run read as a cloud's doing)
    said = process.stderr.read()
    assert "stopped by SIGTERM (a spot preemption or `orch stop`) at step" in said and "Resume with: " in said
    saved_step = int((output / "checkpoints" / "latest").read_text().split("-")[1])
    assert saved_step == metrics["steps"] >= 3  # the checkpoint holds every step that ran
    assert main([str(job), "--output", str(output), "--resume", "auto", "--set", f"max_steps={saved_step + 2}"]) == 0
    assert json.loads((output / "metrics.json").read_text())["steps"] == saved_step + 2


def test_budget_stop_counts_from_the_process_start_and_never_passes_the_cap(tmp_path):
    """At $36/h, $0.15 buys 15 s of the process, model build and data preparation included. However loaded the
    machine, the wall time of the whole process stays within the budget plus one meter interval."""
    job, output = write_job(tmp_path, max_steps=100_000, usd_per_hour=36.0, budget_usd=0.15), tmp_path / "out"
    started = time.time()
    process = subprocess.run([sys.executable, "-m", "trainer", str(job), "--output", str(output)],
                             capture_output=True, text=True)
    wall_s = time.time() - started
    assert process.returncode == 4, process.stderr
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["status"] == "budget_stopped"
    assert usd_for(wall_s, 36.0) <= 0.15 + usd_for(METER_INTERVAL_S, 36.0)
    assert metrics["cost_usd"] <= 0.15
    if metrics.get("steps"):  # stopped by the loop, not by the alarm during a slow start: a checkpoint to resume
        assert (output / "checkpoints" / "latest").is_file()


def fail_above_micro_batch(limit, monkeypatch):
    """The injected fault: any micro-batch above `limit` sequences runs out of memory."""
    import trainer.loop

    real = trainer.loop.forward_backward

    def forward_backward(model, batch, *args):
        if batch["input_ids"].shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory (injected by the test)")
        return real(model, batch, *args)

    monkeypatch.setattr(trainer.loop, "forward_backward", forward_backward)


def test_out_of_memory_is_a_status_with_what_was_tried(tmp_path, monkeypatch):
    fail_above_micro_batch(0, monkeypatch)
    config, base = load_config(write_job(tmp_path, max_steps=2))
    metrics = FineTune(config, tmp_path / "out", base).run()
    assert metrics["status"] == "oom"
    assert "micro-batch 4 x 1, seq_len 128" in metrics["message"]
    assert metrics["auto_fit_attempts"][0]["micro_batch"] == 4


def test_auto_fit_halves_the_micro_batch_and_keeps_the_effective_batch(tmp_path, monkeypatch):
    fail_above_micro_batch(1, monkeypatch)
    config, base = load_config(write_job(tmp_path, max_steps=3))
    metrics = FineTune(config, tmp_path / "out", base, auto_fit=True).run()
    assert metrics["status"] == "ok" and metrics["steps"] == 3
    assert [a["micro_batch"] for a in metrics["auto_fit_attempts"]] == [4, 2]
    assert (metrics["config"]["micro_batch"], metrics["config"]["grad_accum"]) == (1, 4)


def test_auto_fit_turns_checkpointing_on_last(tmp_path, monkeypatch):
    fail_above_micro_batch(0, monkeypatch)
    config, base = load_config(write_job(tmp_path, max_steps=2, micro_batch=2))
    metrics = FineTune(config, tmp_path / "out", base, auto_fit=True).run()
    assert metrics["status"] == "oom"
    assert [(a["micro_batch"], a["grad_ckpt"]) for a in metrics["auto_fit_attempts"]] == [(2, False), (1, False),
                                                                                          (1, True)]


def test_the_budget_alarm_inside_a_step_keeps_the_steps_tokens_and_peak_trained_before_it(tmp_path, monkeypatch):
    """A step that outlasted the budget (a stall, a suspended machine) was ended by the alarm with metrics.json
    holding the status alone: the run was recorded with no steps, tokens, tokens/s or peak memory."""
    import trainer.loop
    from trainer.meter import BudgetSpent

    real, calls = trainer.loop.forward_backward, []

    def forward_backward(*args):
        calls.append(1)
        if len(calls) > 3:  # micro-batch 4 x 1: a call a step
            raise BudgetSpent("this session's budget of $0.01 ran out (raised by the test)")
        return real(*args)

    monkeypatch.setattr(trainer.loop, "forward_backward", forward_backward)
    config, base = load_config(write_job(tmp_path, max_steps=8, eval_fraction=0, eval_batches=None,
                                                timing_warmup_steps=1))
    metrics = FineTune(config, tmp_path / "out", base).run()
    assert metrics["status"] == "budget_stopped" and metrics["message"].endswith("(raised by the test)")
    assert metrics["steps"] == 3 and len(metrics["loss_curve"]) == 3 and metrics["planned_steps"] == 8
    assert metrics["train_tokens"] == sum(line["tokens"] for line in read_steps(tmp_path / "out")) > 0
    assert metrics["tokens_per_s"] > 0 and metrics["peak_vram_gib"]["process_rss"] > 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["steps"] == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork for DataLoader workers")
def test_data_loader_workers_give_the_same_order(tmp_path):
    job = write_job(tmp_path, max_steps=4, num_workers=2)
    assert main([str(job), "--output", str(tmp_path / "a")]) == 0
    job = write_job(tmp_path, max_steps=4, num_workers=0)
    assert main([str(job), "--output", str(tmp_path / "b")]) == 0
    assert [s["sequences"] for s in read_steps(tmp_path / "a")] == [s["sequences"] for s in read_steps(tmp_path / "b")]


def test_more_cpu_threads_than_cores_train_on_the_cores_said_in_one_line(capsys):
    """`cpu_threads: 99` on 2 cores ran 99 torch threads, and the run recorded 99, which calibrate fitted against."""
    import torch

    from trainer.loop import torch_threads

    cores = len(os.sched_getaffinity(0))
    with torch_threads(cores + 97):
        assert torch.get_num_threads() == cores
    assert capsys.readouterr().out == (f"cpu_threads {cores + 97} is more than the {cores} cores this run may use: "
                                       f"it trains on {cores}\n")


def test_more_data_workers_than_cores_are_as_many_as_the_cores_said_in_one_line(capsys):
    """`num_workers: 300` on 2 cores forked 300 workers under torch's two multi-line warnings."""
    from trainer.batches import step_loader

    cores = len(os.sched_getaffinity(0))
    loader = step_loader([], StepOrder(8, 2, seed=0), 2, 0, 1, cores + 5)
    assert loader.num_workers == cores  # torch's warning tests the same count
    assert capsys.readouterr().out == (f"data: num_workers {cores + 5} is more than the {cores} cores this run may "
                                       f"use: {cores} workers load the batches\n")


def test_a_step_saved_again_and_stopped_halfway_leaves_its_earlier_copy_found(tmp_path):
    """Saving a step again deleted the copy `latest` named before the new one was in place: a stop between the two
    lost the run's progress. The earlier copy is moved aside, and found there."""
    from trainer.checkpoint_folders import checkpoints_dir, latest_checkpoint

    root = checkpoints_dir(tmp_path)
    (root / "step-00000003.old").mkdir(parents=True)
    (root / "step-00000003.old" / "state.json").write_text("{}")
    (root / "latest").write_text("step-00000003")
    assert latest_checkpoint(tmp_path) == root / "step-00000003.old"


def test_a_checkpoint_whose_state_is_nested_too_deeply_is_not_whole(tmp_path):
    """json's RecursionError on such a state.json was a traceback from `orch train --output OUT`, where a state.json
    that does not read is a checkpoint passed over."""
    from trainer.checkpoint_folders import is_whole, saved_identity

    folder = tmp_path / "step-00000002"
    folder.mkdir()
    (folder / "state.json").write_text('{"file_bytes": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert not is_whole(folder) and saved_identity(folder) is None


@pytest.mark.parametrize("cut_short", ["optimizer.pt", "trainable.pt", "state.json", "every file"])
def test_a_checkpoint_cut_short_on_upload_is_passed_over_for_the_whole_one_before(tmp_path, cut_short, capsys):
    """On a cloud the output is a bucket that uploads each file on its own: a VM lost while the newest checkpoint
    uploads left `latest` naming a folder with a file missing. The resume crashed on it (exit 1, which a managed
    job does not recover) or, with state.json missing, trained from step 0 again over the recorded steps. It takes
    the whole checkpoint before, and the log keeps every step once."""
    job, output = write_job(tmp_path, max_steps=6, save_every=2), tmp_path / "out"
    assert main([str(job), "--output", str(output)]) == 0
    newest = output / "checkpoints" / "step-00000006"
    for name in ("optimizer.pt", "trainable.pt", "state.json") if cut_short == "every file" else (cut_short,):
        if name == "state.json":
            (newest / name).unlink()
        else:  # a file uploaded in part reads as a shorter one
            (newest / name).write_bytes((newest / name).read_bytes()[:100])
    (output / "metrics.json").unlink()
    capsys.readouterr()
    assert main([str(job), "--output", str(output), "--resume", "auto"]) == 0
    assert "step-00000004 at step 4" in capsys.readouterr().out  # resumed, not trained from the start
    assert [s["step"] for s in read_steps(output)] == list(range(1, 7))
    assert json.loads((output / "metrics.json").read_text())["steps"] == 6
    from trainer.checkpoint_folders import latest_checkpoint
    assert latest_checkpoint(output) == newest  # saved again, whole


def test_a_resume_from_an_earlier_step_clears_the_later_folders_it_replaces(tmp_path):
    """Folders past the step a resume started from belong to the abandoned attempt; left in place they would count
    among the kept checkpoints and push out the whole ones."""
    from trainer.checkpoint_folders import checkpoints_dir, latest_checkpoint

    job, output = write_job(tmp_path, max_steps=4, save_every=1), tmp_path / "out"
    assert main([str(job), "--output", str(output)]) == 0
    stale = checkpoints_dir(output) / "step-00000009"
    stale.mkdir()
    (stale / "trainable.pt").write_bytes(b"cut")
    assert latest_checkpoint(output).name == "step-00000004"
    (output / "metrics.json").unlink()
    assert main([str(job), "--output", str(output), "--resume", "auto", "--set", "max_steps=5"]) == 0
    assert sorted(p.name for p in checkpoints_dir(output).glob("step-*")) == ["step-00000004", "step-00000005"]


def test_a_log_line_cut_short_past_the_checkpoint_is_dropped_on_resume(tmp_path, capsys):
    """A kill mid-append to steps.jsonl (or a part-uploaded copy in a bucket) leaves its last line cut short. The
    resume parsed every line and died on that one (exit 1), and so did every resume after it: the run could never
    continue. The line is past the checkpoint: it is dropped, and the steps after the checkpoint are trained again."""
    import shutil

    from trainer.checkpoint_folders import checkpoints_dir

    job, output = write_job(tmp_path, max_steps=2, save_every=1), tmp_path / "out"
    assert main([str(job), "--output", str(output)]) == 0
    shutil.rmtree(checkpoints_dir(output) / "step-00000002")  # lost with the process, as the line being written
    with open(output / "steps.jsonl", "a") as log:
        log.write('{"step": 3, "lo')
    capsys.readouterr()
    assert main([str(job), "--output", str(output), "--resume", "auto", "--set", "max_steps=3"]) == 0
    assert "step-00000001 at step 1" in capsys.readouterr().out
    assert [s["step"] for s in read_steps(output)] == [1, 2, 3]


def damage(file):
    """The file's bytes zeroed at its size: whole by state.json's record, unreadable all the same."""
    file.write_bytes(bytes(file.stat().st_size))


@pytest.mark.parametrize("damaged", ["trainable.pt", "optimizer.pt"])
def test_a_damaged_checkpoint_gives_way_to_the_whole_one_before(tmp_path, damaged, capsys):
    """A checkpoint file of the right size but damaged bytes failed the resume with torch's advice to load it with
    weights_only=False (running whatever code the file holds). The whole checkpoint before it is taken, said in a
    line, and the steps after it are trained again."""
    from trainer.checkpoint_folders import checkpoints_dir

    job, output = write_job(tmp_path, max_steps=3, save_every=1), tmp_path / "out"
    assert main([str(job), "--output", str(output)]) == 0
    newest = checkpoints_dir(output) / "step-00000003"
    damage(newest / damaged)
    capsys.readouterr()
    assert main([str(job), "--output", str(output), "--resume", "auto"]) == 0
    said = capsys.readouterr()
    assert f"checkpoint {newest} is damaged ({damaged} unreadable: " in said.out
    assert "step-00000002 at step 2" in said.out and "weights_only" not in said.out + said.err
    assert [s["step"] for s in read_steps(output)] == [1, 2, 3]


class _Planted:
    """A pickle that writes a file when it is loaded: what a stranger's optimizer.pt could do at a resume."""

    def __init__(self, mark):
        self.mark = str(mark)

    def __reduce__(self):
        return (Path.touch, (Path(self.mark),))


def test_an_optimizer_file_holding_code_is_read_as_data_and_gives_way(tmp_path, capsys):
    """optimizer.pt was read with weights_only=False ("our own file"): a pickle put in a run folder ran its code at
    the next resume. torch's own optimizers' states are read as data alone; such a file is a damaged checkpoint."""
    from trainer.checkpoint_folders import FILE_BYTES_KEY, checkpoints_dir

    job, output = write_job(tmp_path, max_steps=3, save_every=1), tmp_path / "out"
    assert main([str(job), "--output", str(output)]) == 0
    newest, mark = checkpoints_dir(output) / "step-00000003", tmp_path / "code-ran"
    torch.save({"optimizer": _Planted(mark)}, newest / "optimizer.pt")
    state = json.loads((newest / "state.json").read_text())
    state[FILE_BYTES_KEY]["optimizer.pt"] = (newest / "optimizer.pt").stat().st_size  # whole by its record
    (newest / "state.json").write_text(json.dumps(state))
    capsys.readouterr()
    assert main([str(job), "--output", str(output), "--resume", "auto"]) == 0
    assert not mark.exists()
    assert f"checkpoint {newest} is damaged (optimizer.pt unreadable: " in capsys.readouterr().out


@pytest.mark.parametrize("key, value", [("step", float("nan")), ("step", 2**64), ("step", "[red]3[/red]"),
                                        ("step", -1), ("step", 2), ("step", True), ("train_tokens", -5),
                                        ("wall_s", float("inf")), ("loss_curve", None)])
def test_a_checkpoint_whose_state_is_not_as_written_gives_way_to_the_one_before(tmp_path, key, value, capsys):
    """A state.json edited at its size was trained from: a step of NaN stopped the data loader with a traceback
    (exit 1), and -1 trained five steps where three were asked for, and counted three."""
    import json

    from trainer.checkpoint_folders import checkpoints_dir

    job, output = write_job(tmp_path, max_steps=3, save_every=1), tmp_path / "out"
    assert main([str(job), "--output", str(output)]) == 0
    newest = checkpoints_dir(output) / "step-00000003"
    state = json.loads((newest / "state.json").read_text())
    (newest / "state.json").write_text(json.dumps({**state, key: value}))
    capsys.readouterr()
    assert main([str(job), "--output", str(output), "--resume", "auto"]) == 0
    said = capsys.readouterr().out
    assert f"checkpoint {newest} is damaged (state.json's {key} is " in said and "step-00000002 at step 2" in said
    assert [s["step"] for s in read_steps(output)] == [1, 2, 3]


def test_a_damaged_checkpoint_with_none_before_it_is_refused_in_one_line(tmp_path, capsys):
    from trainer.checkpoint_folders import checkpoints_dir

    job, output = write_job(tmp_path, max_steps=1, save_every=1), tmp_path / "out"
    assert main([str(job), "--output", str(output)]) == 0
    only = checkpoints_dir(output) / "step-00000001"
    damage(only / "trainable.pt")
    capsys.readouterr()
    assert main([str(job), "--output", str(output), "--resume", "auto"]) == 2
    err = capsys.readouterr().err
    # a long path is shortened in the middle on the way out: the folder's own name and what is wrong stay whole
    assert err.startswith("error: checkpoint ") and err.count("\n") == 1
    assert f"{only.name} is damaged (trainable.pt unreadable: " in err
    assert f"delete {checkpoints_dir(output)} to train this --output again from the start" in err
    assert "weights_only" not in err


def test_a_checkpoint_that_fails_to_read_is_not_taken_for_damaged_and_kept(tmp_path, monkeypatch):
    """A read that failed (a bucket mount's I/O error, no memory) was taken for damage: the resume fell back a step,
    and its next save deleted the newer, whole checkpoint. The error ends this attempt; the checkpoint stays."""
    import trainer.checkpoint
    from trainer.checkpoint_folders import checkpoints_dir

    job, output = write_job(tmp_path, max_steps=3, save_every=1), tmp_path / "out"
    assert main([str(job), "--output", str(output)]) == 0
    real_load = torch.load

    def failing_read(path, *args, **kwargs):
        if "step-00000003" in str(path):
            raise OSError(5, "Input/output error")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(trainer.checkpoint.torch, "load", failing_read)
    assert main([str(job), "--output", str(output), "--resume", "auto", "--set", "max_steps=4"]) == 1
    assert (checkpoints_dir(output) / "step-00000003" / "trainable.pt").is_file()
    assert [s["step"] for s in read_steps(output)] == [1, 2, 3]


def test_a_newer_checkpoint_cut_short_is_said_when_passed_over(tmp_path, capsys):
    job, output = write_job(tmp_path, max_steps=2, save_every=1), tmp_path / "out"
    assert main([str(job), "--output", str(output)]) == 0
    (output / "checkpoints" / "step-00000002" / "optimizer.pt").unlink()
    capsys.readouterr()
    assert main([str(job), "--output", str(output), "--resume", "auto"]) == 0
    said = capsys.readouterr().out
    assert "checkpoint step-00000002 in " in said and "is missing files or has them cut short: resuming from " \
        "step-00000001" in said


def test_a_run_orch_launched_is_resumed_through_orch(monkeypatch):
    """A stopped run's log said `orch train ... --set budget_usd=...`, which trains outside the run's record with its
    whole budget again: a run orch launched says `orch resume RUN`."""
    from argparse import Namespace
    from pathlib import Path

    from trainer.__main__ import _resume_command
    from trainer.run_env import RUN_ID_ENV

    args = Namespace(config="job.yaml", set=["budget_usd=0.05"])
    monkeypatch.setenv(RUN_ID_ENV, "r-0123abcd")
    assert _resume_command(args, Path("out")) == "orch resume r-0123abcd"
    monkeypatch.delenv(RUN_ID_ENV)
    assert _resume_command(args, Path("out")).startswith("orch train job.yaml --output out --resume auto")


def test_a_second_trainer_into_a_live_trainers_folder_is_refused_and_touches_nothing(tmp_path, capsys, monkeypatch):
    """Two launchers that both believed a run had ended started two trainers into its folder: both resumed from one
    checkpoint and wrote every file twice. The live one holds its heartbeat locked; the second is refused."""
    from trainer.heartbeat import Heartbeat

    output = tmp_path / "out"
    live = Heartbeat()
    live.start(output)
    try:
        before = sorted(p.name for p in output.iterdir())
        monkeypatch.setenv("ORCH_RUN_ID", "r-second")  # as a launcher starts it: a refusal is recorded in the folder
        assert main([str(write_job(tmp_path, max_steps=1)), "--output", str(output), "--resume", "auto"]) == 2
        monkeypatch.delenv("ORCH_RUN_ID")
        err = capsys.readouterr().err
        assert err == f"error: --output '{output}' is being written by another trainer now: wait for it to end, or " \
                      "give another --output.\n"
        assert sorted(p.name for p in output.iterdir()) == before and not (output / "metrics.json").exists()
    finally:
        live.stop()
    assert main([str(write_job(tmp_path, max_steps=1)), "--output", str(output), "--resume", "auto"]) == 0


def test_a_file_system_without_locks_still_gets_a_heartbeat(tmp_path, monkeypatch):
    """A bucket mounted through FUSE may take no flock: the trainer beats and trains there unguarded, not crashed."""
    import errno

    from trainer import heartbeat

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(heartbeat.fcntl, "flock", no_locks)
    beating = heartbeat.Heartbeat()
    beating.start(tmp_path / "out")
    beating.stop()
    assert (tmp_path / "out" / heartbeat.HEARTBEAT_FILE).is_file()


def test_a_budget_years_long_at_its_price_arms_the_alarm_without_overflow():
    """$30,000 on a CPU priced at $0.00975 an hour is 1.1e10 s, past what setitimer takes: an OverflowError traceback
    failed the run before its first step."""
    import signal as signals

    from trainer.meter import LONGEST_ALARM_S, BudgetMeter

    meter = BudgetMeter(0.00975, 30_000.0, time.time())
    try:
        meter.arm_alarm()
        assert 0 < signals.getitimer(signals.ITIMER_REAL)[0] <= LONGEST_ALARM_S
    finally:
        BudgetMeter.disarm_alarm()
        signals.signal(signals.SIGALRM, signals.SIG_DFL)


@pytest.mark.parametrize("name", ["AdamW8bit", "PagedAdamW8bit", "Lion8bit"])
def test_a_bitsandbytes_optimizer_state_reads_back_as_data_alone(tmp_path, name):
    """bitsandbytes' 8-bit states were read with weights_only=False, unchecked; they are tensors, numbers and a dict
    of its quantization state, and read back whole as data alone (torch's 8-bit kernels run on this CPU too)."""
    import bitsandbytes as bnb

    from trainer.checkpoint import load_checkpoint, save_checkpoint

    def built():
        torch.manual_seed(0)
        model = torch.nn.Linear(128, 64)  # 8,192 weights: past bitsandbytes' 4,096, so its state is 8-bit
        optimizer = getattr(bnb.optim, name)(model.parameters(), lr=1e-3)
        return model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)

    model, optimizer, scheduler = built()
    for _ in range(2):
        model(torch.randn(4, 128)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    state = {"step": 2, "train_tokens": 8, "wall_s": 1.0, "loss_curve": [], "eval_curve": []}
    saved = save_checkpoint(tmp_path, 2, model, optimizer, scheduler, None, state)
    fresh, fresh_optimizer, fresh_scheduler = built()
    load_checkpoint(saved, fresh, fresh_optimizer, fresh_scheduler, None)
    state, restored = optimizer.state_dict()["state"], fresh_optimizer.state_dict()["state"]
    assert state.keys() == restored.keys() and state[0]["step"] == restored[0]["step"] == 2
    quantized = state[0]["__bnb_optimizer_quant_state__"]
    assert any(value.dtype == torch.uint8 for value in quantized.values() if isinstance(value, torch.Tensor))
    for key, value in quantized.items():
        again = restored[0]["__bnb_optimizer_quant_state__"][key]
        assert torch.equal(value, again) if isinstance(value, torch.Tensor) else value == again, key
    assert torch.equal(model.weight, fresh.weight)
