"""The benchmark report: report.md with PNG plots, and with --html a self-contained report.html (plots embedded).

Sections: measured speed by GPU and method; $ per million training tokens by target (local amortized and marginal,
cloud on-demand and spot); measured peak VRAM against the estimate; owning against renting (the yearly utilization
at which each owned card beats each cloud offer); which GPUs each model and method fits on; the estimator's error.
Out-of-memory points stay in the tables. Each section is data first (title, text, table, plot), then rendered twice.
"""

import base64
import html
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.bench import plots
from orchestrator.bench.calibrate import errors, measured_vram_gib, observations
from orchestrator.bench.economics import break_even, owned_cards, price_table
from orchestrator.cli.display import optional
from orchestrator.estimator.calibration import load_calibration
from orchestrator.estimator.fit import auto_fit
from orchestrator.job import load_job
from trainer.config import JobConfig

FIT_MODELS = ("meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-3B", "meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-14B",
              "Qwen/Qwen2.5-32B", "meta-llama/Llama-3.1-70B")


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    image: Path | None = None


def results_section(rows: list[dict]) -> Section:
    table = []
    for row in rows:
        c = row["config"]
        table.append([c["model"], c["method"], str(c["seq_len"]), str(c.get("micro_batch", 4)),
                      "on" if c.get("grad_ckpt") is True else "off", row["status"],
                      optional(row.get("tokens_per_s"), ",.0f"),
                      optional(measured_vram_gib(row), ".2f"), optional(row.get("mfu"), ".1%"), row.get("gpu") or "-",
                      "yes" if row.get("random_weights") else "no"])
    return Section("Measured points", [f"{len(rows)} points; out-of-memory points are kept."],
                   ["model", "method", "seq", "batch", "ckpt", "status", "tok/s", "peak GiB", "MFU", "device",
                    "random weights"], table)


def speed_section(rows: list[dict], out: Path) -> Section:
    ok = [r for r in rows if r["status"] == "ok" and r.get("tokens_per_s")]
    image = plots.tokens_per_s_by_gpu(ok, out / "tokens_per_s.png")
    return Section("Tokens per second by GPU and method", ["Real (non-padding) training tokens per second."],
                   image=image)


def cost_section(prices: list[dict], out: Path, job_name: str) -> Section:
    image = plots.usd_per_million_tokens(prices, out / "usd_per_mtok.png")
    table = [[p["gpu"], p["target"], p["where"], optional(p["usd_per_hour"], ".3f"),
              optional(p["tokens_per_s"], ",.0f"), p["basis"], optional(p["usd_per_million_tokens"], ".3f")]
             for p in prices]
    return Section("$ per million training tokens by target",
                   [f"For the job `{job_name}`, with the estimator's tokens/s for each GPU (`measured` where "
                    "calibrated). Owned cards: amortized (purchase over life + power) and marginal (power only)."],
                   ["GPU", "target", "where", "$/h", "tok/s", "basis", "$/Mtok"], table, image)


def vram_section(rows: list[dict], out: Path) -> Section:
    points = errors(rows, load_calibration())
    ooms = [r for r in rows if r["status"] == "oom"]
    image = plots.vram_measured_vs_estimate(points, out / "vram.png")
    text = ["Measured peak (NVML's used memory where sampled, else torch's reserved memory; on the CPU the process "
            f"RSS) against the estimate. {len(ooms)} point(s) ran out of memory and have no measured peak."]
    return Section("Peak VRAM: measured against estimated", text, image=image)


def ownership_section(prices: list[dict], out: Path) -> Section:
    hardware, cards = owned_cards()
    clouds = [p for target in ("cloud on-demand", "cloud spot")
              for p in [q for q in prices if q["target"] == target][:3]]  # prices come sorted, cheapest first
    table, curves = [], []
    for card in cards:
        mine = next((p for p in prices if p["gpu"] == card.gpu.name and p["target"] == "local amortized"), None)
        if mine is None:
            continue
        curves.append((card, mine))
        for cloud in clouds:
            utilization = break_even(card, hardware, mine["tokens_per_s"], cloud)
            verdict = "never (power alone costs more)" if utilization is None else \
                "never (needs > 100%)" if utilization > 1 else f"{utilization:.0%}"
            table.append([card.gpu.name, f"{cloud['gpu']} {cloud['where']} ({cloud['target']})",
                          optional(cloud["usd_per_million_tokens"], ".3f"), verdict])
    image = plots.owning_vs_renting(curves, hardware, clouds, out / "own_vs_rent.png") if curves else None
    source = hardware.source if hardware.cards else \
        f"no hardware file: {', '.join(c.gpu.name for c in cards)} at street price over 4 years"
    return Section("Owning against renting",
                   [f"Owned cards: {source}.",
                    "The yearly utilization above which an owned card costs less per training token than each of the "
                    "three cheapest on-demand and spot cloud offers (purchase over its life, spread over the busy "
                    "hours, plus electricity)."],
                   ["owned card", "cloud offer", "cloud $/Mtok", "owning wins above"], table, image)


def fit_section(job) -> Section:
    from gpu_catalog.gpus import load_gpus
    from gpu_catalog.models import get_model

    calibration = load_calibration()
    table = []
    for name in FIT_MODELS:
        model = get_model(name)
        for method in ("full", "lora", "qlora"):
            settings = JobConfig(model=name, method=method, seq_len=2048, micro_batch=1, grad_ckpt=True)
            fits = [g.name for g in load_gpus()
                    if auto_fit(model, settings, g, calibration, g.vram_gib, (True,)).fits]
            table.append([name, method, ", ".join(fits) or "none"])
    return Section("Which GPUs each model and method fits on",
                   ["Estimated at seq 2048, micro-batch 1, checkpointing on, AdamW, LoRA r=16 on all linear layers."],
                   ["model", "method", "fits on"], table)


def error_section(rows: list[dict]) -> Section:
    table = [[p["point"], optional(p["tokens_per_s"], ",.0f"), optional(p["est_tokens_per_s"], ",.0f"),
              optional(p["tokens_per_s_error"], "+.0%"), optional(p["vram_gib"], ".2f"),
              optional(p["est_vram_gib"], ".2f"), optional(p["vram_error"], "+.0%")]
             for p in errors(rows, load_calibration())]
    return Section("Estimator error", ["Estimates with the current calibration file, against each measured point."],
                   ["point", "tok/s", "estimated", "error", "peak GiB", "estimated", "error"], table)


def _markdown(sections: list[Section], header: list[str]) -> str:
    lines = [*header, ""]
    for s in sections:
        lines += [f"## {s.title}", "", *s.text, ""]
        if s.image:
            lines += [f"![{s.title}]({s.image.name})", ""]
        if s.headers:
            lines += ["| " + " | ".join(s.headers) + " |", "|" + "---|" * len(s.headers)]
            lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in s.rows] + [""]
    return "\n".join(lines)


def _html(sections: list[Section], header: list[str]) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>orch benchmark report</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}img{max-width:100%}</style></head><body>"]
    parts += [f"<p>{html.escape(line.lstrip('# '))}</p>" for line in header]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>" + "".join(f"<p>{html.escape(t)}</p>" for t in s.text))
        if s.image:
            data = base64.b64encode(s.image.read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(s.title)}' src='data:image/png;base64,{data}'>")
        if s.headers:
            head = "".join(f"<th>{html.escape(h)}</th>" for h in s.headers)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in s.rows)
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
    return "".join(parts) + "</body></html>"


def write_report(rows: list[dict], out: Path, job_path: Path, html: bool = False,
                 sources: list[str] = ()) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    job = load_job(job_path)
    prices = price_table(job)
    sections = [results_section(rows), speed_section(rows, out), cost_section(prices, out, job.name),
                vram_section(rows, out), ownership_section(prices, out), fit_section(job), error_section(rows)]
    measured_on = sorted({r.get("gpu") or "-" for r in rows})
    header = ["# orch benchmark report", f"Generated {time.strftime('%Y-%m-%d %H:%M')} from {len(rows)} points "
              f"({len(observations(rows))} usable by the estimator), measured on: {', '.join(measured_on)}. "
              f"Sources: {', '.join(sources) or '-'}."]
    written = [out / "report.md"]
    written[0].write_text(_markdown(sections, header))
    if html:
        written.append(out / "report.html")
        written[1].write_text(_html(sections, header))
    return written + [s.image for s in sections if s.image]
