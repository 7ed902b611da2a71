"""The live view of a run being followed: the trainer's log lines, and under them a bar drawn from the progress.json
the trainer keeps in its output folder (step of steps, tokens/s, time left, spend so far). On a terminal only;
elsewhere the log is copied as it is."""

import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.units import usd_text
from orchestrator.cli.fold import folded
from orchestrator.db import MAX_STORED_NUMBER
from orchestrator.runs.store import RunRecord

POLL_S = 0.5
MTIME_SLACK_S = 1.0  # a file's mtime comes from the kernel's coarse clock, a tick behind time.time()


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class RunProgress:
    """A file-like `out` for a launcher's follow(): whole log lines print above the bar. A resumed run's bar waits
    for its new trainer's progress.json (the killed session's showed for minutes, its step, speed and ETA frozen)
    and shows the run's spend, earlier sessions' included (the trainer meters its own session)."""

    def __init__(self, record: RunRecord, console: Console):
        self.path = Path(record.run_dir) / "output" / "progress.json"
        # this session's start: `orch logs --follow` of a run well under way draws its bar at once
        self.since = (record.started_at or time.time()) - MTIME_SLACK_S
        self.spent_before_usd = record.cost_usd or 0.0
        self.console, self.pending = console, ""
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=16),
                                 MofNCompleteColumn(), TextColumn("{task.fields[tok_s]} tok/s"),
                                 TextColumn("ETA {task.fields[eta]}"), TextColumn("{task.fields[spent]}"),
                                 console=console)
        self.task = self.progress.add_task(record.run_id, total=None, tok_s="-", eta="-", spent="", visible=False)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> "RunProgress":
        self.progress.start()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()
        self._refresh()
        if self.pending:
            self._print(self.pending)
        self.progress.stop()

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            self._print(line.rsplit("\r", 1)[-1])
        return len(text)

    def _print(self, line: str) -> None:
        """A log line above the bar, folded at spaces as `say` folds one: rich cut it at the terminal's width, inside
        a checkpoint's path (`.../step-00000` and `010` on the next line), which then pasted broken."""
        self.progress.console.print(folded(line, self.console.width), markup=False, highlight=False, soft_wrap=True)

    def flush(self) -> None:
        pass

    def _poll(self) -> None:
        while not self.stopped.wait(POLL_S):
            self._refresh()

    def _refresh(self) -> None:
        """The bar as the trainer's last progress.json has it. One that cannot be read or is of another shape (not
        yet written, a pipe or a device, a hand edit, `[1]`, a text, infinite or absurd figure: 1e308 tok/s filled the
        line) is skipped until the next good one: it raised in the poll thread, and in __exit__ as a traceback."""
        try:
            if self.path.stat().st_mtime < self.since:  # an earlier session's
                return
            state = checks.parse_json(checks.read_text(self.path, "progress.json"), "progress.json")
            total = checks.number(state["planned_steps"], "planned_steps", 0, MAX_STORED_NUMBER, whole=True)
            step = checks.number(state["step"], "step", 0, MAX_STORED_NUMBER, whole=True)
            tokens_per_s = checks.number(state["tokens_per_s"], "tokens_per_s", 0, MAX_STORED_NUMBER)
            eta_s = checks.optional_number(state.get("eta_s"), "eta_s", 0, MAX_STORED_NUMBER)
            spent = checks.optional_number(state.get("spent_usd"), "spent_usd", 0, MAX_STORED_NUMBER)
        except (OSError, UserError, KeyError, TypeError, AttributeError):  # none yet, not a mapping, a figure missing
            return
        self.progress.update(self.task, total=total, completed=step, visible=True, tok_s=f"{tokens_per_s:,.0f}",
                             eta=_eta(eta_s), spent="" if spent is None else usd_text(self.spent_before_usd + spent))
