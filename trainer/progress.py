"""What a person watches while the trainer runs: a progress bar (on a terminal), periodic log lines, and
progress.json in the output folder, from which `orch launch` and `orch logs -f` draw their own bar (step, tokens/s,
ETA, spend so far) when the trainer runs in the background."""

import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from gpu_catalog.units import usd_text
from trainer.jsonio import write_json_atomic

PROGRESS_FILE = "progress.json"


class Progress:
    def __init__(self, total_steps: int, first_step: int, output_dir: Path):
        self.bar = tqdm(total=total_steps, initial=first_step, unit="step", disable=None, dynamic_ncols=True)
        self.total_steps, self.first_step, self.started = total_steps, first_step, time.time()
        self.path = output_dir / PROGRESS_FILE

    def update(self, step: int, loss: float, lr: float, tokens_per_s: float, peak: dict, log: bool,
               spent_usd: float | None = None, train_tokens: int | None = None,
               session_tokens_per_s: float | None = None) -> None:
        """`train_tokens`: the run's so far (earlier sessions' included), kept in progress.json with the peak memory
        and this session's tokens/s over its timed steps (metrics.json's figure, so far), so a trainer killed before
        its metrics.json still leaves what it trained, and how fast, to its launcher."""
        self.bar.update(step - self.bar.n)
        postfix = {"loss": f"{loss:.3f}", "tok_s": f"{tokens_per_s:,.0f}"}
        if spent_usd is not None:
            postfix["spent"] = usd_text(spent_usd)  # as every dollar is written: `$0.0000` said a tiny job was free
        self.bar.set_postfix(postfix)
        done = step - self.first_step
        eta_s = (time.time() - self.started) / done * (self.total_steps - step) if done > 0 else None
        write_json_atomic(self.path, {"step": step, "planned_steps": self.total_steps, "loss": loss,
                                      "tokens_per_s": tokens_per_s, "eta_s": eta_s, "spent_usd": spent_usd,
                                      "train_tokens": train_tokens, "peak_vram_gib": peak,
                                      "session_tokens_per_s": session_tokens_per_s})
        if log:
            memory = peak["reserved"] if peak["reserved"] is not None else peak["process_rss"]
            where = "reserved" if peak["reserved"] is not None else "process RSS"
            self.say(f"step {step}: loss {loss:.4f}  lr {lr:.2e}  {tokens_per_s:,.0f} tok/s  "
                     f"peak {memory:.2f} GiB {where}")

    def say(self, line: str) -> None:
        """A line of the log while the bar is drawn: above it, as the step lines are (a plain print was glued to the
        bar's end on a terminal: `tok_s=7,166]checkpoint: ...`), and flushed, as print(flush=True) was: piped to a
        log, a line waited in the buffer."""
        self.bar.write(line)
        sys.stdout.flush()

    def close(self) -> None:
        self.bar.close()
