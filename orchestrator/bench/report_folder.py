"""What a report folder holds: the files orch's last report wrote there (its report.json lists them), told apart
from anyone else's. Plain Python, so `orch report` checks its --out before matplotlib is imported."""

import os
import re
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError

# every name a report writes into its folder: only these are ever removed from it, whatever report.json lists
REPORT_FILE = re.compile(r"report\.(?:md|json|html)|(?:hours_vs_usd|capacity|own_vs_rent)_\d+\.png"
                         r"|estimate_vs_measured\.png")


def written_before(out: Path) -> set[str]:
    """The files the last report in `out` wrote, as its report.json lists them (`files`; an older orch's lists only
    its `figures`): none when there is no report.json, or it is not one orch wrote (a pipe there hung the report, a
    link to /dev/zero filled memory: checks.read_text reads regular files only)."""
    try:
        before = checks.parse_json(checks.read_text(out / "report.json", "report.json"), "report.json")
        names = before.get("files") or [figure["file"] for figure in before.get("figures") or []]
        return {name for name in names if isinstance(name, str) and REPORT_FILE.fullmatch(name)}
    except (UserError, AttributeError, KeyError, TypeError):
        return set()


def report_names(job_count: int) -> list[str]:
    """The files a report of `job_count` jobs may write: its pages, and its plots (three numbered per job, one for
    the estimator)."""
    plots = [f"{kind}_{index}.png" for index in range(job_count) for kind in ("hours_vs_usd", "capacity",
                                                                               "own_vs_rent")]
    return ["report.md", "report.json", "report.html", *plots, "estimate_vs_measured.png"]


def check_writable_names(out: Path, job_count: int) -> None:
    """Refuse, before any work, a folder standing where the report writes a file: --force replaces files, not
    folders, and the report did its work, wrote its plots, then failed on `report.md: Is a directory`."""
    if folders := [name for name in report_names(job_count) if (out / name).is_dir()]:
        raise UserError(f"--out {out} holds a folder named {folders[0]}, where the report writes a file: move it, "
                        "or choose another --out.")


def check_inputs_kept(out: Path, job_count: int, inputs: list[Path]) -> None:
    """Refuse, --force or not, a report that would write over one of its own inputs (a job, the trace, the results
    or the database) kept in --out under a report's name: with --force, `--job out/report.json` became the report."""
    for name in report_names(job_count):
        if given := next((path for path in inputs if checks.same_file(out / name, path)), None):
            raise UserError(f"--out {out}: the report writes {name} there, which is this command's input {given}: "
                            "choose another --out, or move the input.")


def foreign_files(out: Path, job_count: int) -> list[str]:
    """The files a report of `job_count` jobs writes that `out` already holds and no earlier orch report wrote: a
    user's own, which writing a report would replace. A plot's name is as likely a user's as a page's
    (capacity_0.png), so both are checked."""
    names = report_names(job_count)
    present = [name for name in names if os.path.lexists(out / name)]  # a dangling link would be written through
    ours = written_before(out) if present else set()
    return [name for name in present if name not in ours]
