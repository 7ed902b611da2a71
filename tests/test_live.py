"""The live view of a followed run: its bar is drawn from the trainer's progress.json, and a progress.json that is
odd (not yet whole, of another shape, no file) is skipped until the next good one, never raised."""

import io
import json
import os

import pytest
from rich.console import Console
from rich.text import Text

from orchestrator.cli.live import RunProgress
from tests.test_runs_store import RUN_DIR, make_record

GOOD = {"step": 3, "planned_steps": 10, "loss": 1.5, "tokens_per_s": 1234.4, "eta_s": 75.0, "spent_usd": 0.01}


@pytest.mark.parametrize("odd", [
    "[1]", '{"step": 1}', json.dumps({**GOOD, "tokens_per_s": "x"}), json.dumps({**GOOD, "eta_s": 1e400}),
    json.dumps({**GOOD, "step": -1}), json.dumps({**GOOD, "spent_usd": "free"}), "pipe", "device",
    json.dumps({**GOOD, "tokens_per_s": 1e308}), json.dumps({**GOOD, "spent_usd": 1e300}),
])
def test_a_progress_file_of_another_shape_is_skipped_until_a_good_one(tmp_path, odd):
    """`[1]` raised AttributeError, `{"step": 1}` KeyError, a text tokens/s ValueError and an infinite ETA
    OverflowError: in the poll thread `Exception in thread`, in __exit__ a traceback. A pipe hung the view."""
    view = RunProgress(make_record(tmp_path / RUN_DIR), Console(file=io.StringIO(), force_terminal=True))
    view.path.parent.mkdir(parents=True)
    if odd == "pipe":
        os.mkfifo(view.path)
    elif odd == "device":
        view.path.symlink_to("/dev/zero")
    else:
        view.path.write_text(odd)
    view._refresh()
    (task,) = view.progress.tasks
    assert not task.visible
    view.path.unlink()
    view.path.write_text(json.dumps(GOOD))
    view._refresh()
    assert task.visible and (task.total, task.completed) == (10, 3)
    assert (task.fields["tok_s"], task.fields["eta"], task.fields["spent"]) == ("1,234", "1:15", "$0.010")


def test_a_resumed_runs_bar_waits_for_its_new_trainer_and_shows_the_runs_whole_spend(tmp_path):
    """After a kill and `orch resume`, the bar showed the killed session's progress.json for minutes (step 22 of 49,
    its speed and ETA frozen) and that session's $0.00013, where the run had spent $0.00038."""
    record = make_record(tmp_path / RUN_DIR, cost_usd=0.25)
    progress = tmp_path / RUN_DIR / "output" / "progress.json"
    progress.parent.mkdir(parents=True)
    progress.write_text(json.dumps(GOOD))
    an_hour_ago = os.stat(progress).st_mtime - 3600
    os.utime(progress, (an_hour_ago, an_hour_ago))  # the killed session's
    view = RunProgress(record, Console(file=io.StringIO(), force_terminal=True))
    view._refresh()
    (task,) = view.progress.tasks
    assert not task.visible
    progress.write_text(json.dumps({**GOOD, "step": 5}))  # the new trainer's first
    view._refresh()
    assert task.visible and task.completed == 5 and task.fields["spent"] == "$0.260"


def test_a_log_line_wider_than_the_terminal_is_folded_at_spaces_never_inside_a_path(tmp_path):
    """A checkpoint's path printed above the bar on an 80-column terminal was cut inside its step number
    (`.../step-00000`, then `010`), and pasted broken."""
    path = "/home/someone/projects/fine-tunes/.local/share/orch/runs/r-d87a0858/output/checkpoints/step-00000010"
    shown = io.StringIO()
    console = Console(file=shown, force_terminal=True, width=80)
    with RunProgress(make_record(tmp_path / RUN_DIR), console) as view:
        view.write(f"checkpoint: {path}\nstep 10: loss 2.5\n")
    lines = [Text.from_ansi(line).plain.strip() for line in shown.getvalue().splitlines()]
    assert path in lines and "step 10: loss 2.5" in lines
