"""Render the report's sections: report.md (PNGs beside it) and report.html (one file, images inline as base64,
no network: it opens offline and can be mailed). Data in, text out; the numbers come from orchestrator/bench/report.py.
"""

import base64
import contextlib
import html
import json
import os
import re
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.whole_files import write_text_atomically
from orchestrator.bench.report import Section, build_report
from orchestrator.bench.report_folder import report_names, written_before

STYLE = ("body{font-family:system-ui,sans-serif;max-width:1150px;margin:1.5em auto;padding:0 1em;color:#222}"
         "h1{margin-bottom:.2em}.meta{color:#555;font-size:14px}"
         ".summary{background:#f4f8fb;border-left:5px solid #4c72b0;padding:.6em 1em;margin:1em 0}"
         ".summary p{margin:.35em 0}.origin{display:inline-block;font-size:12px;padding:1px 7px;border-radius:9px;"
         "background:#eee;margin-left:.5em;vertical-align:middle}.o-measured{background:#d3f0eb}"
         ".o-analytic{background:#e8e8f6}.o-published{background:#fbe1d8}"
         "code{background:#eef;padding:0 3px;border-radius:3px}"
         "table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 7px;"
         "font-size:13px;text-align:left}th{background:#f3f3f3}img{max-width:100%}")


def _header(data: dict, sources: list[str]) -> list[str]:
    return [f"Generated {data['generated']}. {data['measured_share']:.0%} of the table rows below are measured "
            "(orch's own sweeps and runs); the rest are analytic (orch's estimator and price catalogs) or "
            "published (cited).", f"Results read from: {', '.join(sources) or '-'}."]


_MARKDOWN_SPECIAL = re.compile(r"([\\`\[\]|])")


def _cell(text: str) -> str:
    """A table cell as literal Markdown text: one line, printable, with no `|` that splits the cell, link, code span
    or raw HTML, since cells hold names and messages from files and databases (`_` and `*` stay: model names)."""
    folded = checks.one_line(text)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(folded, quote=False))


def _paragraph(text: str) -> str:
    """A section's paragraph as Markdown: its code spans and emphasis kept, but no raw HTML and no link, since it
    quotes names from files (a model folder named `x<img src=x>` or `[a](b)`)."""
    return re.sub(r"([\[\]])", r"\\\1", html.escape(checks.printable(text), quote=False))


def markdown(sections: list[Section], data: dict, sources: list[str]) -> str:
    sources = [_cell(source) for source in sources]
    lines = ["# orch benchmark report", ""] + [part for line in _header(data, sources) for part in (line, "")]
    for s in sections:
        lines += [f"## {checks.printable(s.title)}", "", f"*Origin: {s.origin}*", ""]
        lines += [part for line in s.text for part in (_paragraph(line), "")]  # one paragraph each
        if s.image:
            lines += [f"![{s.title}]({s.image.name})", ""]  # the caption (origin, date) is in the image
        if s.rows:
            lines += ["| " + " | ".join(s.headers) + " |", "|" + "---|" * len(s.headers)]
            lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in s.rows] + [""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """Escaped text with markdown's `code` as <code> and a leading "Recommended...:" style label in bold. Printable
    first: a results row's sweep or GPU name carried a raw ESC into report.html (`cat` coloured the terminal)."""
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(checks.printable(text)))
    return re.sub(r"^((?:Recommended|Fastest|Cheapest)[^:]*:)", r"<strong>\1</strong>", escaped)


def _origin_badges(origin: str) -> str:
    return "".join(f"<span class='origin o-{html.escape(o)}'>{html.escape(o)}</span>" for o in origin.split(" + "))


def page(sections: list[Section], data: dict, sources: list[str]) -> str:
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>orch benchmark report</title>"
             f"<style>{STYLE}</style></head><body><h1>orch benchmark report</h1>"]
    parts += [f"<p class='meta'>{_inline(line)}</p>" for line in _header(data, sources)]
    for s in sections:
        summary = s.title.startswith("Summary")
        parts.append(f"<h2>{html.escape(checks.printable(s.title))}{_origin_badges(s.origin)}</h2>")
        text = "".join(f"<p>{_inline(t)}</p>" for t in s.text)
        parts.append(f"<div class='summary'>{text}</div>" if summary else text)
        if s.image:
            encoded = base64.b64encode(s.image.read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(checks.printable(s.title + '. ' + s.caption))}' "
                         f"src='data:image/png;base64,{encoded}'>")
        if s.rows:
            head = "".join(f"<th>{html.escape(h)}</th>" for h in s.headers)
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in s.rows)
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
    return "".join(parts) + "</body></html>"


def _unlink_special_files(out: Path, job_count: int) -> None:
    """Remove what stands under a name this report writes and is no regular file of the folder's own (a pipe, a
    device, a link to anything): written through, a pipe hung the report (`--force` lets it be replaced), /dev/null
    kept nothing, and a link to a file elsewhere had that file replaced by the report. A folder of such a name was
    refused before any work (report_folder.check_writable_names); a name this report does not write is not touched
    (a link `capacity_5.png` beside a one-job report is the user's)."""
    for path in (out / name for name in report_names(job_count)):
        if path.is_symlink() or os.path.lexists(path) and not (path.is_file() or path.is_dir()):
            path.unlink()


def write_report(rows: list[dict], runs: list[dict], jobs: list[Path], out: Path, html_page: bool = False,
                 sources: list[str] = (), budget_usd: float | None = None, deadline_h: float | None = None,
                 trace: Path | None = None) -> tuple[dict, list[Path]]:
    """Build, then write report.md (+ report.html) and report.json; (the numbers, the files written). What the last
    report in `out` wrote and this one does not (its report.html, the plots of a job no longer named) is removed, so
    the folder holds one report; any other file there is left alone."""
    before = written_before(out)
    _unlink_special_files(out, len(jobs))
    data, sections = build_report(rows, runs, jobs, out, budget_usd, deadline_h, trace)
    written = [out / "report.md", out / "report.json"] + ([out / "report.html"] if html_page else [])
    written += [s.image for s in sections if s.image]
    data["files"] = [path.name for path in written]
    write_text_atomically(written[0], markdown(sections, data, list(sources)))
    write_text_atomically(written[1], json.dumps(data, indent=1, default=str) + "\n")
    if html_page:
        write_text_atomically(written[2], page(sections, data, list(sources)))
    for stale in (out / name for name in sorted(before - set(data["files"]))):
        if stale.is_file() or stale.is_symlink():  # a folder of that name is none a report wrote
            with contextlib.suppress(OSError):  # left, rather than the report just written called failed
                stale.unlink()
    return data, written
