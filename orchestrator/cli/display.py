"""The one place that formats output for people: rich tables and short summaries. Everything else returns data."""

import json
import sys

from rich.console import Console
from rich.table import Table

from gpu_catalog.gpus import GPU
from gpu_catalog.local import LocalGPU
from gpu_catalog.models import ModelShape
from gpu_catalog.offer import Offer
from gpu_catalog.owned import OwnedHardware
from orchestrator.planner import Option, Plan
from orchestrator.runs.store import RunRecord
from orchestrator.schedule.queue import JobRecord

console = Console()
err_console = Console(stderr=True)


def print_json(data) -> None:
    """Plain JSON on stdout, unwrapped, for scripts."""
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.995 else f"${value:.3f}"


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def show_gpus(gpus: list[GPU]) -> None:
    table = Table(title="GPUs (dense tensor TFLOPS; 0 = no such dtype)")
    for column in ("GPU", "VRAM GiB", "BW GB/s", "bf16 TF", "fp16 TF", "CC", "TDP W", "price $", "source"):
        table.add_column(column, justify="left" if column in ("GPU", "source") else "right")
    for g in gpus:
        price = f"{g.street_price_usd:,.0f}" if g.street_price_usd else "-"
        table.add_row(g.name, f"{g.vram_gib:g}", f"{g.mem_bw_gbps:,.0f}", f"{g.bf16_tflops:g}", f"{g.fp16_tflops:g}",
                      g.compute_capability, f"{g.tdp_w:.0f}", price, g.source)
    console.print(table)


def show_models(models: list[ModelShape]) -> None:
    table = Table(title="Model shapes")
    for column in ("model", "params B", "layers", "hidden", "heads", "kv", "head_dim", "inter", "vocab", "tied"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for m in models:
        table.add_row(m.name, f"{m.params / 1e9:.2f}", str(m.n_layers), str(m.hidden), str(m.n_heads),
                      str(m.n_kv_heads), str(m.head_dim), str(m.intermediate), str(m.vocab),
                      "yes" if m.tied_embeddings else "no")
    console.print(table)


def show_offers(offers: list[Offer], dropped_count: int) -> None:
    table = Table(title=f"{len(offers)} offers, cheapest first")
    for column in ("GPU", "provider", "region", "instance", "spot", "$/h", "source"):
        table.add_column(column, justify="right" if column == "$/h" else "left")
    for o in offers:
        table.add_row(o.gpu.name, o.provider, o.region, o.instance_type, "spot" if o.spot else "",
                      _money(o.usd_per_hour), o.source)
    console.print(table)
    if dropped_count:
        console.print(f"{dropped_count} offers with implausible prices dropped (see `--json` of `orch catalog "
                      "offers --dropped`).")


def show_local(hardware: OwnedHardware, detected: list[LocalGPU], local_offers: list[Offer]) -> None:
    if detected:
        table = Table(title="GPUs on this machine (NVML)")
        for column in ("index", "device", "matched", "VRAM GiB", "used GiB", "util %"):
            table.add_column(column)
        for d in detected:
            table.add_row(str(d.index), d.device_name, d.gpu.name if d.gpu else "unknown: not plannable",
                          f"{d.vram_gib:.1f}", f"{d.used_vram_gib:.1f}", f"{d.utilization_pct:.0f}")
        console.print(table)
    else:
        console.print("No NVIDIA GPU visible through NVML on this machine.")
    table = Table(title=f"Local targets, priced {hardware.cost_policy} (hardware file: {hardware.source})")
    for column in ("target", "$/h", "source"):
        table.add_column(column)
    for o in local_offers:
        table.add_row(o.gpu.name, _money(o.usd_per_hour), o.source)
    console.print(table)


def show_estimate(result: dict) -> None:
    """`result` is the estimate command's JSON dict: one formatting of one structure."""
    console.print(f"[bold]{result['model']}[/] {result['method']}: {result['params'] / 1e9:.2f} B params, "
                  f"{result['trainable_params'] / 1e6:,.1f} M trainable; seq {result['seq_len']} x micro-batch "
                  f"{result['micro_batch']}, checkpointing {'on' if result['grad_ckpt'] else 'off'}, "
                  f"{result['optimizer']}")
    table = Table(title=f"Peak memory on {result['memory_device']}")
    table.add_column("component")
    table.add_column("GiB", justify="right")
    for part, gib in result["breakdown"].items():
        table.add_row(part, f"{gib:.2f}")
    table.add_row("[bold]total[/]", f"[bold]{result['vram_gib']:.2f}[/]")
    console.print(table)
    if "gpu" in result:
        verdict = (f"fits ({result['usage']}; {result['headroom_fraction']:.0%} kept free)" if result["fits"]
                   else f"does not fit ({result['usage']}, {result['usable_vram_gib']:g} usable)")
        console.print(f"{result['gpu']}: {verdict}; {result['tokens_per_s']:,.0f} tokens/s "
                      f"(efficiency {result['efficiency']:.2f}, {result['basis']})")
    elif result.get("smallest_gpu_that_fits"):
        console.print(f"Smallest catalog GPU that fits: {result['smallest_gpu_that_fits']}")
    else:
        console.print("No catalog GPU fits these settings.")
    if result.get("auto_fit"):
        console.print(f"auto-fit: {result['auto_fit']}")


def _where(offer: Offer, region_count: int = 1) -> str:
    region = offer.region if region_count == 1 else f"{region_count} regions"
    where = offer.provider if offer.is_local else f"{offer.provider} {region}"
    return f"{where} spot" if offer.spot else where


def _distinct_options(plan: Plan) -> list[tuple[Option, int]]:
    """Options with the same GPU, provider, spot and price differ only by region: one row, with the region count."""
    rows: dict[tuple, list] = {}
    for option in plan.options:
        o = option.offer
        key = (o.gpu.name, o.provider, o.spot, round(o.usd_per_hour, 4))
        rows.setdefault(key, [option, 0])[1] += 1
    return [(option, count) for option, count in rows.values()]


def show_plan(plan: Plan, top: int) -> None:
    spec = plan.spec
    deadline = f", deadline {plan.policy.deadline_hours:g} h" if plan.policy.deadline_hours else ""
    console.print(f"[bold]{spec.name}[/]: {spec.model} {spec.method}, {plan.train_tokens:,} tokens at seq "
                  f"{spec.seq_len}; budget ${plan.policy.budget_usd:g}{deadline}, objective {plan.policy.objective}")
    distinct = _distinct_options(plan)
    table = Table(title=f"{len(plan.options)} options, {len(distinct)} distinct ({min(top, len(distinct))} shown)")
    for column in ("#", "GPU", "where", "$/h", "GiB", "batch", "tok/s", "hours", "cost", "$/Mtok"):
        table.add_column(column, justify="left" if column in ("GPU", "where") else "right")
    for rank, (option, region_count) in enumerate(distinct[:top], start=1):
        o, e = option.offer, option.estimate
        batch = f"{e.micro_batch}x{e.grad_accum}" + (" ckpt" if e.grad_ckpt else "")
        table.add_row(str(rank), o.gpu.name, _where(o, region_count), _money(o.usd_per_hour), f"{e.vram_gib:.1f}",
                      batch, _number(e.tokens_per_s), f"{e.hours:.2f}", _money(e.cost_usd),
                      _money(e.usd_per_million_tokens))
    console.print(table)
    _show_rejected(plan, top)
    if plan.chosen:
        o, e = plan.chosen.offer, plan.chosen.estimate
        console.print(f"[bold green]chosen:[/] {o.gpu.name} on {_where(o)}: {e.hours:.2f} h, {_money(e.cost_usd)}, "
                      f"{e.vram_gib:.1f} GiB, {_number(e.tokens_per_s)} tok/s [dim]({e.basis} throughput)[/]")


def _show_rejected(plan: Plan, top: int) -> None:
    """One row per distinct (GPU, provider, spot, reason kind): regions repeat the same story."""
    seen, rows = set(), []
    for r in plan.rejected:
        key = (r.offer.gpu.name, r.offer.provider, r.offer.spot, r.kind)
        if key not in seen:
            seen.add(key)
            rows.append(r)
    if not rows:
        return
    table = Table(title=f"{len(plan.rejected)} rejected ({min(top, len(rows))} of {len(rows)} kinds shown)")
    for column in ("GPU", "where", "why"):
        table.add_column(column)
    for r in rows[:top]:
        table.add_row(r.offer.gpu.name, _where(r.offer), r.reason)
    console.print(table)


def optional(value, fmt: str) -> str:
    """A number formatted for people, or "-" where there is none (a run not ended, a point out of memory)."""
    return "-" if value is None else format(value, fmt)


def show_runs(records: list[RunRecord]) -> None:
    table = Table(title=f"{len(records)} runs (estimate / measured)")
    for column in ("run", "job", "target", "status", "tok/s", "VRAM GiB", "hours", "cost"):
        table.add_column(column, justify="left" if column in ("run", "job", "target", "status") else "right")
    for r in records:
        hours = None if r.wall_s is None else r.wall_s / 3600
        table.add_row(r.run_id, r.job_name, f"{r.gpu} ({r.provider}{' spot' if r.spot else ''})", r.status,
                      f"{optional(r.est_tokens_per_s, ',.0f')} / {optional(r.tokens_per_s, ',.0f')}",
                      f"{optional(r.est_vram_gib, '.1f')} / {optional(r.peak_vram_gib, '.1f')}",
                      f"{optional(r.est_hours, '.2f')} / {optional(hours, '.2f')}",
                      f"{optional(r.est_cost_usd, '.3f')} / {optional(r.cost_usd, '.3f')}")
    console.print(table)


def show_run(record: RunRecord) -> None:
    colour = "green" if record.status == "ok" else "red"
    console.print(f"[bold {colour}]{record.status}[/]: run {record.run_id} on {record.gpu} ({record.provider})"
                  + (f": {record.message}" if record.message else ""))
    show_runs([record])


def _percent(value) -> str:
    return "-" if value is None else f"{value:+.0%}"


def show_bench(rows: list[dict]) -> None:
    table = Table(title=f"{len(rows)} benchmark points")
    for column in ("model", "method", "seq", "batch", "ckpt", "status", "tok/s", "peak GiB", "MFU", "device"):
        table.add_column(column, justify="right" if column in ("seq", "tok/s", "peak GiB", "MFU") else "left")
    for row in rows:
        c = row["config"]
        peak = row.get("nvml_peak_used_gib") or (row.get("peak_vram_gib") or {}).get("reserved") or \
            (row.get("peak_vram_gib") or {}).get("process_rss")
        table.add_row(c["model"], c["method"], str(c["seq_len"]), str(c.get("micro_batch", 4)),
                      "on" if c.get("grad_ckpt") is True else "off", row["status"],
                      optional(row.get("tokens_per_s"), ",.0f"), optional(peak, ".2f"),
                      optional(row.get("mfu"), ".1%"), row.get("gpu") or "-")
    console.print(table)


def show_calibration(result: dict) -> None:
    console.print(f"wrote {result['calibration']}: efficiency {result['efficiency']}, memory {result['memory']}")
    table = Table(title="estimator error per point, before -> after calibration")
    for column in ("point", "tok/s", "est before", "err", "est after", "err", "GiB", "est before", "err",
                   "est after", "err"):
        table.add_column(column, justify="left" if column == "point" else "right")
    for p in result["points"]:
        table.add_row(p["point"], optional(p["tokens_per_s"], ",.0f"), optional(p["est_tokens_per_s"], ",.0f"),
                      _percent(p["tokens_per_s_error"]), optional(p["est_tokens_per_s_after"], ",.0f"),
                      _percent(p["tokens_per_s_error_after"]), optional(p["vram_gib"], ".2f"),
                      optional(p["est_vram_gib"], ".2f"), _percent(p["vram_error"]),
                      optional(p["est_vram_gib_after"], ".2f"), _percent(p["vram_error_after"]))
    console.print(table)
    for name in ("in_sample", "leave_one_source_out"):
        for group, e in result.get(name, {}).items():
            console.print(f"{name.replace('_', ' ')}, {group}: median |error| {e['median_abs_error']:.1%} over "
                          f"{e['points']} points, {e['within_10']:.0%} within 10%, {e['within_20']:.0%} within 20%")


def show_queue(jobs: list[JobRecord], explain: bool) -> None:
    table = Table(title=f"{len(jobs)} jobs, in scheduling order")
    for column in ("job", "name", "priority", "status", "decision", "run") + (("why",) if explain else ()):
        table.add_column(column)
    for j in jobs:
        row = [j.job_id, j.name, str(j.priority), j.status, j.decision or "-", j.run_id or "-"]
        table.add_row(*row, *((j.reason or "-",) if explain else ()))
    console.print(table)


def show_simulation(summaries: dict[str, dict]) -> None:
    table = Table(title="simulated policies")
    for column in ("policy", "jobs", "rejected", "total $", "local $", "cloud $", "deadline misses", "mean wait h",
                   "local util", "preemptions"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, s in summaries.items():
        table.add_row(name, str(s["jobs"]), str(s["rejected"]), f"{s['total_cost_usd']:,.0f}",
                      f"{s['local_cost_usd']:,.0f}", f"{s['cloud_cost_usd']:,.0f}", str(s["deadline_misses"]),
                      f"{s['mean_wait_h']:.2f}", f"{s['local_utilization']:.0%}", str(s["preemptions"]))
    console.print(table)
