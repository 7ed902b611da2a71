"""Every plot orch draws (the report's, the simulator's), with matplotlib's Agg backend: no display needed. Each
function draws one PNG and returns its path."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGET_COLOURS = {"local amortized": "#4c72b0", "local marginal": "#8fb0e0", "cloud on-demand": "#dd8452",
                  "cloud spot": "#f2b880"}
METHOD_COLOURS = {"full": "#c44e52", "lora": "#55a868", "qlora": "#8172b3"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tokens_per_s_by_gpu(rows: list[dict], path: Path) -> Path:
    rows = sorted(rows, key=lambda r: (r.get("gpu") or "", r["config"]["method"], r["tokens_per_s"]))
    fig, ax = plt.subplots(figsize=(9, 0.35 * max(4, len(rows)) + 1))
    labels = [f"{r['config']['model'].split('/')[-1]} {r['config']['method']} s{r['config']['seq_len']} "
              f"x{r['config'].get('micro_batch', 4)}{' ckpt' if r['config'].get('grad_ckpt') is True else ''} "
              f"[{(r.get('gpu') or '-').split(' (')[0]}]" for r in rows]
    ax.barh(labels, [r["tokens_per_s"] for r in rows],
            color=[METHOD_COLOURS.get(r["config"]["method"], "grey") for r in rows])
    ax.set_xlabel("training tokens / s (measured)")
    ax.invert_yaxis()
    return _save(fig, path)


def usd_per_million_tokens(prices: list[dict], path: Path) -> Path:
    gpus = list(dict.fromkeys(p["gpu"] for p in prices))
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(4, len(gpus)) + 1))
    height = 0.8 / len(TARGET_COLOURS)
    for i, (target, colour) in enumerate(TARGET_COLOURS.items()):
        values = {p["gpu"]: p["usd_per_million_tokens"] for p in prices if p["target"] == target}
        ax.barh([g_index + i * height for g_index, g in enumerate(gpus) if g in values],
                [values[g] for g in gpus if g in values], height=height, color=colour, label=target)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(gpus))], gpus)
    ax.set_xscale("log")
    ax.set_xlabel("$ per million training tokens (log scale)")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    return _save(fig, path)


def vram_measured_vs_estimate(points: list[dict], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 6))
    measured = [p for p in points if p["vram_gib"] is not None]
    xs, ys = [p["est_vram_gib"] for p in measured], [p["vram_gib"] for p in measured]
    ax.scatter(xs, ys, color="#4c72b0")
    top = max(xs + ys + [1.0]) * 1.1
    ax.plot([0, top], [0, top], color="grey", linestyle="--", label="estimate = measured")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("estimated peak GiB")
    ax.set_ylabel("measured peak GiB")
    ax.legend()
    return _save(fig, path)


def owning_vs_renting(curves: list, hardware, clouds: list[dict], path: Path) -> Path:
    """curves: (OwnedCard, its local-amortized price entry); clouds: price entries drawn as horizontal lines."""
    from orchestrator.bench.economics import owned_usd_per_million_tokens

    utilizations = [u / 100 for u in range(3, 101)]
    fig, ax = plt.subplots(figsize=(9, 5))
    for card, entry in curves:
        ax.plot([u * 100 for u in utilizations],
                [owned_usd_per_million_tokens(card, hardware, entry["tokens_per_s"], u) for u in utilizations],
                label=f"own {card.gpu.name}")
    styles = iter([":", "--", "-."] * len(clouds))
    for cloud in clouds:
        ax.axhline(cloud["usd_per_million_tokens"], linestyle=next(styles), color=TARGET_COLOURS[cloud["target"]],
                   label=f"rent {cloud['gpu']} {cloud['where']} ({cloud['target'].split()[-1]})")
    ax.set_yscale("log")
    ax.set_xlabel("yearly utilization of the owned card (%)")
    ax.set_ylabel("$ per million training tokens (log scale)")
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def spend_over_time(series: dict[str, tuple[list[float], list[float]]], deadline_misses: int, policy: str,
                    path: Path) -> Path:
    """A simulation's cumulative spend, owned cards against the cloud: (hours, cumulative USD) per placement, a
    bounded sample the simulator keeps as jobs end (orchestrator/simulate/summary.py)."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for where, (hours, usd) in series.items():
        ax.step(hours, usd, where="post", label=f"{where} (${usd[-1] if usd else 0.0:,.0f})")
    ax.set_xlabel("hours")
    ax.set_ylabel("cumulative spend, $")
    ax.set_title(f"policy {policy}: {deadline_misses} deadline misses")
    ax.legend()
    return _save(fig, path)
