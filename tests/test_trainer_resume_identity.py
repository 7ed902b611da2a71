"""A resume continues exactly the run it resumes: each checkpoint records the settings that make the run what it is,
and `--resume auto` with other ones (another dataset, another LoRA rank) is refused as bad input, in one line and
before any weights load. What may change between the sessions of a run (its budget, the micro-batch split) still
resumes."""

import json
import shutil

import pytest

from tests.conftest import REPO, go_offline
from tests.trainer_helpers import TINY_DATA, read_steps, write_job
from trainer.__main__ import main

CHAT_DATA = REPO / "examples" / "data" / "tiny_chat.jsonl"


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, shared_cache):
    """One tiny run of two steps with a checkpoint after each, trained once for the module: each test resumes a copy."""
    folder = tmp_path_factory.mktemp("first-run")
    with pytest.MonkeyPatch.context() as patch:
        go_offline(patch, folder, shared_cache)
        job = write_job(folder, max_steps=2, save_every=1)
        assert main([str(job), "--output", str(folder / "out")]) == 0
    return folder / "out"


@pytest.fixture
def output(first_run, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(first_run, copy)
    return copy


def saved_state(output) -> dict:
    latest = output / "checkpoints" / (output / "checkpoints" / "latest").read_text().strip()
    return json.loads((latest / "state.json").read_text())


def resume(tmp_path, output, *sets, **job_changes) -> int:
    job = write_job(tmp_path, max_steps=2, save_every=1, **job_changes)
    return main([str(job), "--output", str(output), "--resume", "auto", *[a for s in sets for a in ("--set", s)]])


def assert_refused(capsys, output, first_run, code, *said):
    """Exit 2 with one `error:` line naming what differs, and the earlier run's files as they were."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "is from another job" in lines[0] and "--output" in lines[0], lines[0]
    for text in said:
        assert text in lines[0], lines[0]
    assert "Traceback" not in err and "size mismatch" not in err
    for name in ("metrics.json", "steps.jsonl", "checkpoints/latest"):
        assert (output / name).read_text() == (first_run / name).read_text()
    assert not (output / "error.log").exists()


def test_resuming_the_same_job_continues_it_and_its_checkpoints_record_the_job(tmp_path, output):
    assert resume(tmp_path, output, "max_steps=3") == 0
    assert [s["step"] for s in read_steps(output)] == [1, 2, 3]
    assert json.loads((output / "metrics.json").read_text())["steps"] == 3
    job = saved_state(output)["job"]
    assert (job["dataset"], job["lora_r"], job["seed"]) == (str(TINY_DATA), 8, 0)
    assert "budget_usd" not in job and "max_steps" not in job and "micro_batch" not in job


def test_a_checkpoint_without_the_record_resumes_and_gains_it(tmp_path, output):
    """Checkpoints written before orch recorded the job: unknown, not refused."""
    for state_file in (output / "checkpoints").glob("step-*/state.json"):
        state = json.loads(state_file.read_text())
        del state["job"]
        state_file.write_text(json.dumps(state))
    assert resume(tmp_path, output, "max_steps=3") == 0
    assert saved_state(output)["job"]["lora_r"] == 8


def test_another_dataset_is_refused_in_one_line(tmp_path, first_run, output, capsys):
    code = resume(tmp_path, output, dataset=str(CHAT_DATA))
    assert_refused(capsys, output, first_run, code, f"dataset {TINY_DATA} there, {CHAT_DATA} here")


def test_another_lora_rank_is_refused_before_the_weights_load(tmp_path, first_run, output, capsys):
    code = resume(tmp_path, output, "lora_r=4")
    assert_refused(capsys, output, first_run, code, "lora_r 8 there, 4 here")


@pytest.mark.parametrize("sets", [("usd_per_hour=2.5", "budget_usd=10"), ("micro_batch=2", "grad_accum=2")],
                         ids=["budget", "micro-batch-split"])
def test_what_a_session_may_change_still_resumes(tmp_path, output, sets):
    """The launchers resume with the budget that is left (`--set usd_per_hour=... --set budget_usd=...`); auto-fit
    and a smaller GPU split the step into more micro-batches: the same run, the same data order."""
    recorded = saved_state(output)["job"]
    assert resume(tmp_path, output, "max_steps=3", *sets) == 0
    assert [s["step"] for s in read_steps(output)] == [1, 2, 3]
    assert saved_state(output)["job"] == recorded


def test_a_resume_with_more_steps_takes_its_rate_from_the_new_schedule():
    """A finished 2-step run resumed with max_steps 4 trained step 3 at the saved schedule's end rate (0 for linear
    decay), learning nothing, where a 4-step run trains it at half the peak."""
    import torch
    from transformers import get_scheduler

    from trainer.checkpoint import _rate_from_this_schedule

    def schedule(total_steps):
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        return optimizer, get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=total_steps)

    optimizer, scheduler = schedule(2)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    assert scheduler.get_last_lr() == [0.0]
    saved = optimizer.state_dict(), scheduler.state_dict()
    optimizer, scheduler = schedule(4)
    optimizer.load_state_dict(saved[0])
    scheduler.load_state_dict(saved[1])
    _rate_from_this_schedule(optimizer, scheduler)
    assert scheduler.get_last_lr() == pytest.approx([5e-4]) and optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)


def test_fewer_steps_than_the_run_trained_is_refused_before_anything_is_touched(tmp_path, output, capsys):
    """`--resume auto --set max_steps=1` on a checkpoint at step 2 made the step loader's length negative: exit 1 with
    "__len__() should return >= 0", and metrics.json said error. Refused as bad input now, in one line, before the
    model loads: the run's files stay as they were."""
    kept = {name: (output / name).read_bytes() for name in ("metrics.json", "steps.jsonl")}
    code = resume(tmp_path, output, "max_steps=1")
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "holds a run trained to step 2, past the 1 step this job plans" in lines[0], lines[0]
    assert "give it at least 2 steps" in lines[0]
    assert {name: (output / name).read_bytes() for name in kept} == kept
    assert resume(tmp_path, output, "max_steps=2") == 0  # exactly its steps: a finished run, resumed as one


def test_a_finished_run_past_its_last_checkpoint_is_not_rolled_back_to_it(tmp_path, output, capsys):
    """A run that finished at step 3 with its last checkpoint at step 2, resumed with max_steps 2, trained nothing
    and wrote step 2's weights over its final/, exit 0: the step it had trained past its checkpoint, lost."""
    assert resume(tmp_path, output, "max_steps=3", "save_every=100") == 0  # no checkpoint at step 3
    assert saved_state(output)["step"] == 2 and json.loads((output / "metrics.json").read_text())["steps"] == 3
    final = {path.name: path.read_bytes() for path in (output / "final").iterdir() if path.is_file()}
    assert resume(tmp_path, output, "max_steps=2") == 2
    assert "trained to step 3, past the 2 steps" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in (output / "final").iterdir() if path.is_file()} == final
