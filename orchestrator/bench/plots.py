"""Every plot orch draws (the report's, the simulator's), with matplotlib's Agg backend: no display needed. Each
function draws one PNG and returns its path. Every report figure carries a caption (origin and the data's date)
inside the image, so a figure copied out of the report still says where it comes from; legends sit outside the
plotting area so they never cover data."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
# every text as written: a `$` pair in a model's folder name or a price label (`$1,600 ... $5`) was read as TeX, and
# `a$\frac{x$b` raised matplotlib's parse error after the report had begun writing its figures
matplotlib.rcParams["text.parse_math"] = False
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from gpu_catalog.units import percent_text, usd_text  # noqa: E402

WHERE_COLOURS = {"local": "#4c72b0", "cloud on-demand": "#dd8452", "cloud spot": "#f2b880"}
METHOD_COLOURS = {"full": "#c44e52", "lora": "#55a868", "qlora": "#8172b3"}
ORIGIN_COLOURS = {"measured": "#2a9d8f", "published": "#e76f51"}
CAPTION_HEIGHT = 0.07  # share of the figure kept for the caption line


def _save(fig, path: Path, caption: str = "", top: float = 1.0) -> Path:
    if caption:
        fig.text(0.01, 0.015, caption, fontsize=8, color="#444444", wrap=True)
    fig.tight_layout(rect=(0, CAPTION_HEIGHT if caption else 0, 1, top))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _log_scale(ax, *axes: str) -> None:
    """Log axes labelled 1, 2, 5, 10, 20, ... in plain numbers (matplotlib's 2x10^0 labels collide)."""
    for name in axes:
        axis = ax.xaxis if name == "x" else ax.yaxis
        (ax.set_xscale if name == "x" else ax.set_yscale)("log")
        low, high = ax.get_xlim() if name == "x" else ax.get_ylim()
        decades = math.log10(max(high, 1e-300) / max(low, 1e-300))
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))
        axis.set_minor_formatter(NullFormatter())


def _kind(target: dict) -> str:
    return "local" if target["where"] == "local" else "cloud spot" if target["spot"] else "cloud on-demand"


def hours_vs_usd(targets: list[dict], pareto: list[str], title: str, caption: str, path: Path) -> Path:
    """One point per target that can run the job; the Pareto frontier as a step line, numbered fastest first (the
    report's table names each number); the planner's choice as a star; targets over budget or deadline hollow."""
    runnable = [t for t in targets if t["hours"] is not None and t["verdict"] in ("ok", "budget", "deadline")]
    fig, ax = plt.subplots(figsize=(9, 5.2))
    for kind, colour in WHERE_COLOURS.items():
        for within in (True, False):
            group = [t for t in runnable if _kind(t) == kind and (t["verdict"] == "ok") == within]
            if group:
                ax.scatter([t["hours"] for t in group], [t["usd_per_job"] for t in group], s=36,
                           facecolors=colour if within else "none", edgecolors=colour,
                           label=f"{kind}{'' if within else ' (over budget or deadline)'}")
    front = [next(t for t in runnable if t["target"] == name) for name in pareto]
    if front:
        ax.step([t["hours"] for t in front], [t["usd_per_job"] for t in front], where="post", color="#333333",
                linewidth=1, label="Pareto frontier (nothing is both faster and cheaper)")
        for number, t in enumerate(front, start=1):  # alternate sides: neighbours on the frontier sit close
            ax.annotate(str(number), (t["hours"], t["usd_per_job"]), textcoords="offset points", fontsize=8,
                        xytext=(6, 2) if number % 2 else (-12, -10))
    chosen = [t for t in runnable if t["chosen"]]
    if chosen:
        ax.scatter([chosen[0]["hours"]], [chosen[0]["usd_per_job"]], marker="*", s=260, color="#d62728", zorder=5,
                   label=f"recommended: {chosen[0]['target']}")
    _log_scale(ax, "x", "y")
    ax.set_xlabel("hours per job, start-up included (log scale)")
    ax.set_ylabel("$ per job (log scale)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _save(fig, path, caption)


def capacity(rows: list[dict], title: str, caption: str, path: Path) -> Path:
    """Per GPU (rows) and method (bars): memory the job needs beside the card's capacity, and tokens/s where the
    planner would run it. A bar past the capacity line is a job that does not fit there; one the planner refuses for
    another reason (`runs` false: no kernels, bf16 or flash-attention the card lacks, the CPU's time limit) is
    cross-hatched and, in place of a speed, names the planner's reason."""
    gpus = list(dict.fromkeys(r["gpu"] for r in rows))
    methods = [m for m in METHOD_COLOURS if any(r["method"] == m for r in rows)]
    height = 0.8 / max(1, len(methods))
    fig, (mem, speed) = plt.subplots(1, 2, figsize=(11, 0.42 * max(5, len(gpus)) + 1.6), sharey=True)
    for i, method in enumerate(methods):
        mine = {r["gpu"]: r for r in rows if r["method"] == method}
        ys = [g + i * height for g, name in enumerate(gpus) if name in mine]
        cells = [mine[name] for name in gpus if name in mine]
        bars = mem.barh(ys, [r["vram_gib"] for r in cells], height=height, color=METHOD_COLOURS[method])
        for bar, cell in zip(bars, cells, strict=True):
            if not cell["fits"] or not cell["runs"]:  # past the card's memory, or refused: drawn faint and hatched
                bar.set_alpha(0.35)
                bar.set_hatch("//" if not cell["fits"] else "xx")
        running = [(y, r) for y, r in zip(ys, cells, strict=True) if r["runs"] and r["tokens_per_s"]]
        speed.barh([y for y, _ in running], [r["tokens_per_s"] for _, r in running], height=height,
                   color=METHOD_COLOURS[method])
        for y, r in zip(ys, cells, strict=True):
            if r["fits"] and not r["runs"]:  # x in axes units: the speed axis is a log scale
                speed.text(0.01, y, f"not run: {r['rejected_kind']}", transform=speed.get_yaxis_transform(),
                           fontsize=7, va="center", color="#444444")
    capacity_gib = {r["gpu"]: r["capacity_gib"] for r in rows}
    for g, name in enumerate(gpus):
        mem.plot([capacity_gib[name]] * 2, [g - height / 2, g + 0.8 - height / 2], color="black", linewidth=2)
    mem.set_yticks([g + 0.4 - height / 2 for g in range(len(gpus))], gpus)
    mem.invert_yaxis()
    needs = [r["vram_gib"] for r in rows if r["vram_gib"]]
    if needs and max(capacity_gib.values()) / min(needs) > 100:  # a tiny job: linear bars would be invisible
        _log_scale(mem, "x")
        mem.set_xlabel("memory the job needs (GiB, log scale)")
    else:
        mem.set_xlabel("memory the job needs (GiB)")
    _log_scale(speed, "x")
    speed.set_xlabel("training tokens / s, where the planner runs it (log scale)")
    for ax in (mem, speed):
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(title + " (hatched: does not fit; crossed: not run)", fontsize=11)
    handles = [Patch(color=METHOD_COLOURS[m], label=m) for m in methods]
    handles.append(Line2D([], [], color="black", linewidth=2, label="card's memory"))
    if any(r["fits"] and not r["runs"] for r in rows):
        handles.append(Patch(facecolor="white", edgecolor="#444444", hatch="xx", label="not run by the planner"))
    top = 1 - 0.75 / fig.get_figheight()  # room for the title and, under it, the legend
    fig.legend(handles=handles, loc="upper center", fontsize=8, ncol=len(handles), bbox_to_anchor=(0.5, top + 0.03))
    return _save(fig, path, caption, top=top - 0.01)


def own_vs_rent(entries: list[dict], title: str, caption: str, path: Path) -> Path:
    """$ per job on each owned card against its yearly utilization, the cheapest suitable cloud offer as a
    horizontal line, each crossing marked with its utilization."""
    from orchestrator.bench.economics import owned_usd_per_job

    # each crossing on its curve: one below the grid's 2% (0.41% for a small job) was marked off every curve
    crossings = [e["utilization"] for e in entries if e["hours"] is not None and e["utilization"] is not None
                 and 0 < e["utilization"] <= 1]
    utilizations = sorted({u / 100 for u in range(2, 101)} | set(crossings))
    fig, ax = plt.subplots(figsize=(9, 5))
    colours = iter(plt.cm.tab10.colors)
    for index, entry in enumerate(entries):
        if entry["hours"] is None:
            continue
        colour = next(colours)
        ax.plot([u * 100 for u in utilizations],
                [owned_usd_per_job(entry["hours"], entry["energy_usd_per_hour"], entry["purchase_usd"],
                                   entry["life_years"], u) for u in utilizations],
                color=colour, label=f"own {entry['card']} (${entry['purchase_usd']:,.0f}, {entry['life_years']:g} y)")
        u = entry["utilization"]
        if u is not None and u <= 1:
            ax.scatter([u * 100], [entry["cloud_usd_per_job"]], color=colour, zorder=5, s=40)
            ax.annotate(f"{entry['card']}: {percent_text(u)}", (u * 100, entry["cloud_usd_per_job"]), fontsize=8,
                        color=colour,
                        textcoords="offset points", xytext=(30, -16 - 13 * index),  # stacked: crossings sit close
                        arrowprops={"arrowstyle": "-", "color": colour, "linewidth": 0.6},
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    cloud = next((e for e in entries if e["cloud_usd_per_job"] is not None), None)
    if cloud:
        ax.axhline(cloud["cloud_usd_per_job"], color="#333333", linestyle="--",
                   label=f"rent: {cloud['cloud']} ({usd_text(cloud['cloud_usd_per_job'])} per job)")
    _log_scale(ax, "y")
    ax.set_xlim(0, 100)
    ax.set_xlabel("yearly utilization of the owned card (% of hours)")
    ax.set_ylabel("$ per job (log scale)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _save(fig, path, caption)


def estimate_vs_measured(points: list, title: str, caption: str, path: Path) -> Path:
    """One point per measured or published number, coloured by origin; on the dashed line the estimate is exact."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    for ax, metric, unit in ((axes[0], "tokens_per_s", "training tokens / s"), (axes[1], "vram_gib", "peak GiB")):
        mine = [p for p in points if p.metric == metric]
        for origin, colour in ORIGIN_COLOURS.items():
            group = [p for p in mine if p.origin == origin]
            if group:
                ax.scatter([p.measured for p in group], [p.estimated for p in group], color=colour, s=30,
                           label=f"{origin} ({len(group)})", alpha=0.85)
        values = [v for p in mine for v in (p.measured, p.estimated) if v > 0]
        if values:
            low, high = min(values) / 1.5, max(values) * 1.5
            ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="estimate = measured")
            _log_scale(ax, "x", "y")
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)  # below: never on data
        else:
            ax.text(0.5, 0.5, "no measured or published points", ha="center", transform=ax.transAxes)
        ax.set_xlabel(f"measured {unit} (log scale)")
        ax.set_ylabel(f"estimated {unit} (log scale)")
        ax.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path, caption)


def spend_over_time(series: dict[str, tuple[list[float], list[float]]], deadline_misses: int, policy: str,
                    path: Path, ownership_usd: float = 0.0) -> Path:
    """A simulation's cumulative spend, owned cards against the cloud: (hours, cumulative USD) per placement, a
    bounded sample the simulator keeps as jobs end (orchestrator/simulate/summary.py). The owned cards' line is
    their power; owning them over the span (`ownership_usd`) is said in its label."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for where, (hours, usd) in series.items():
        owning = f"; owning the cards ${ownership_usd:,.0f} more" if where == "local" and ownership_usd else ""
        ax.step(hours, usd, where="post", label=f"{where} (${usd[-1] if usd else 0.0:,.0f}{owning})")
    ax.set_xlabel("hours")
    ax.set_ylabel("cumulative spend, $")
    ax.set_title(f"policy {policy}: {deadline_misses} deadline miss{'' if deadline_misses == 1 else 'es'}")
    ax.legend()
    return _save(fig, path)
