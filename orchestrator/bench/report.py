"""The benchmark report: for each job the user names, a summary first (the planner's recommendation under the budget
and deadline, the fastest and the cheapest target with hours, $ per job and $ per million tokens, and when each owned
card beats renting), then the pictures behind it, the measured points beside the estimates, the estimator's error
in sample and cross-validated, and the hybrid question on a trace.

Every section says its origin: `measured` (orch's sweeps and runs), `published` (public measurements, cited) or
`analytic` (the estimator and the price catalogs). The data is built once (`build_report`) and rendered three ways:
report.md, report.html (images inline) and the --json output.
"""

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

from gpu_catalog.units import duration_text, given_duration_text, percent_text
from orchestrator.bench import plots
from orchestrator.bench.calibrate import measured_vram_gib
from orchestrator.bench.report_errors import COLUMNS, error_rows, origin_summary, point_error
from orchestrator.bench.report_hybrid import compare_policies
from orchestrator.bench.report_points import UNITS, estimate_points
from orchestrator.bench.report_summary import job_summary
from orchestrator.cli.display import optional, optional_usd
from orchestrator.estimator.calibration import load_calibration


@dataclass
class Section:
    title: str
    origin: str  # measured, published, analytic, or several joined by " + "
    text: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    row_origins: list[str] = field(default_factory=list)  # one per row: what the measured share counts
    image: Path | None = None
    caption: str = ""


def _today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


def _price_dates(targets: list[dict]) -> str:
    dates = sorted({d for t in targets for d in re.findall(r"as of ([0-9-]+)", t["price_source"])})
    return f"prices as of {dates[0]}" + (f" to {dates[-1]}" if len(dates) > 1 else "") if dates else \
        "prices from the catalog"


def _date_range(dates: list[str]) -> str:
    if not dates:
        return "no dates"
    return f"data of {dates[0]}" if dates[0] == dates[-1] else f"data from {dates[0]} to {dates[-1]}"


def _hours(h: float | None) -> str:
    return "-" if h is None else duration_text(h * 3600)


def _target_line(kind: str, t: dict | None) -> str:
    if t is None:
        return f"{kind}: none can run this job."
    limit = "" if t["verdict"] == "ok" else f"; but {t['reason']}"
    return (f"{kind}: {t['target']}: {_hours(t['hours'])}, {optional_usd(t['usd_per_job'])} per job, "
            f"{optional_usd(t['usd_per_million_tokens'])} per million tokens ({t['basis']} speed{limit}).")


def summary_lines(s: dict) -> list[str]:
    """The summary in words: the job, then the recommended, fastest and cheapest targets."""
    limits = f"budget {optional_usd(s['budget_usd']) if s['budget_usd'] is not None else 'none'}, deadline " + \
        (given_duration_text(s["deadline_h"] * 3600) if s["deadline_h"] is not None else "none")
    rec = s["recommended"]
    text = [f"Job `{s['name']}` ({s['model']}, {s['method']}, {s['train_tokens']:,} training tokens; {limits}).",
            _target_line("Recommended (as `orch plan` chooses)", rec) if rec else
            "Recommended: no target meets the budget and deadline; see the targets below.",
            _target_line("Fastest", s["fastest"]), _target_line("Cheapest", s["cheapest"])]
    for e in s["break_even"]:
        u, cloud = e["utilization"], e["cloud"] or "the cloud"
        never = e["verdict"].split(": ")[-1]
        text.append(f"{e['card']}: owning beats renting ({cloud}) above {percent_text(u)} yearly utilization."
                    if u is not None and u <= 1 else f"{e['card']}: owning never beats renting ({cloud}): {never}.")
    return text


def summary_section(s: dict) -> Section:
    text = summary_lines(s)[:4]
    declared = all(e["declared"] for e in s["break_even"])
    text.append("Owning against renting, per job, against the cheapest suitable cloud offer"
                + ("" if declared else " (no hardware file: common desktop cards at street price over 4 years)")
                + ":")
    table = [[e["card"], f"${e['purchase_usd']:,.0f} over {e['life_years']:g} y", _hours(e["hours"]),
              e["cloud"] or "-", optional_usd(e["cloud_usd_per_job"]), e["verdict"], "analytic"]
             for e in s["break_even"]]
    # the lines' speeds' origins beside the break-even's: "analytic" headed lines that ended "(measured speed)"
    bases = {t["basis"] for t in (s["recommended"], s["fastest"], s["cheapest"]) if t} | {"analytic"}
    origin = " + ".join(basis for basis in ("measured", "published", "analytic") if basis in bases)
    return Section(f"Summary: {s['name']}", origin, text,
                   ["owned card", "purchase", "time per job", "cheapest cloud offer", "cloud $ per job",
                    "owning wins at utilization", "origin"], table, ["analytic"] * len(table))


def targets_section(s: dict, out: Path, index: int) -> Section:
    origin = "analytic"
    caption = (f"Origin: {origin} (orch's estimator and planner; {_price_dates(s['targets'])}). "
               f"Generated {_today()}.")
    image = plots.hours_vs_usd(s["targets"], s["pareto"], f"{s['name']}: hours and dollars per job on every target",
                               caption, out / f"hours_vs_usd_{index}.png")
    by_name = {t["target"]: t for t in s["targets"]}
    table = [[str(n), name, _hours(by_name[name]["hours"]), optional_usd(by_name[name]["usd_per_job"]),
              optional_usd(by_name[name]["usd_per_million_tokens"]), by_name[name]["verdict"], by_name[name]["basis"]]
             for n, name in enumerate(s["pareto"], start=1)]
    return Section(f"Hours against dollars: {s['name']}", origin,
                   ["Each point is one target that can run the job; the numbered ones are the Pareto frontier "
                    "(no other target is both faster and cheaper). Hollow points break the budget or deadline."],
                   ["#", "target", "time per job", "$ per job", "$/M tokens", "verdict", "speed basis"], table,
                   [by_name[name]["basis"] for name in s["pareto"]], image, caption)


def capacity_section(s: dict, out: Path, index: int) -> Section:
    caption = f"Origin: analytic (orch's estimator, auto-fit as the planner does it). Generated {_today()}."
    image = plots.capacity(s["capacity"], f"{s['model']}: memory and speed per GPU and method", caption,
                           out / f"capacity_{index}.png")
    refused: dict[tuple[str, str], list[str]] = {}  # (GPU, the planner's reason): methods it fits but never runs
    for r in s["capacity"]:
        if r["fits"] and not r["runs"]:
            refused.setdefault((r["gpu"], r["rejected"]), []).append(r["method"])
    text = ["The job's memory on each GPU for full fine-tuning, LoRA and QLoRA (after auto-fit), against the card's "
            "memory (black line), and its training speed where the planner would run it."]
    text += [f"Not run on {gpu} ({', '.join(methods)}), though it fits: {reason}."
             for (gpu, reason), methods in refused.items()]
    return Section(f"Memory and speed per GPU and method: {s['name']}", "analytic", text, image=image,
                   caption=caption)


def ownership_section(s: dict, out: Path, index: int) -> Section:
    caption = (f"Origin: analytic (purchase price over its life plus electricity; the cloud's "
               f"{_price_dates(s['targets'])}). Generated {_today()}.")
    image = plots.own_vs_rent(s["break_even"], f"{s['name']}: owning a card against renting, $ per job", caption,
                              out / f"own_vs_rent_{index}.png")
    return Section(f"Owning against renting: {s['name']}", "analytic",
                   ["The cost of one job on an owned card falls as the card is used more of the year (its purchase "
                    "spread over more busy hours); where it crosses the cheapest cloud offer, owning wins."],
                   image=image, caption=caption)


def _interval(interval: float | None) -> str:
    """A point's 95% interval of its median tokens/s; one timed step has none."""
    return f" (median ±{interval:.0%})" if interval is not None else " (one timed step)"


def sweep_section(rows: list[dict]) -> Section:
    table, origins = [], []
    for row in rows:
        c = row["config"]
        spread = row.get("tokens_per_s_spread")
        stable = row.get("stable")
        table.append([c["model"], c["method"], str(c["seq_len"]), str(c.get("micro_batch", 4)), row["status"],
                      optional(row.get("tokens_per_s"), ",.0f"), optional(spread, ".0%"),
                      optional(row.get("timed_steps"), "d"), "-" if stable is None else
                      f"{'yes' if stable else 'NO'}{_interval(row.get('tokens_per_s_interval'))}",
                      optional(measured_vram_gib(row), ".2f"),
                      f"{row.get('gpu') or '-'}, driver {row.get('driver_version') or '-'}",
                      datetime.datetime.fromtimestamp(row["created_at"], datetime.UTC).strftime("%Y-%m-%d")
                      if row.get("created_at") else "-"])
        origins.append("measured")
    return Section("Measured sweep points", "measured",
                   [f"{len(rows)} points from `orch bench`; out-of-memory points are kept. tok/s is the median of "
                    "the timed steps (warm-up left out), spread the interquartile range over the median; a point "
                    "is stable when its median is known within the sweep's `stable_within` (95%)."],
                   ["model", "method", "seq", "batch", "status", "tok/s", "spread", "timed steps", "stable",
                    "peak GiB", "device", "date"], table, origins)


def runs_section(runs: list[dict]) -> Section:
    table = [[r["run_id"], r["job_name"], f"{r['gpu']} {r['provider']}{' spot' if r['spot'] else ''}", r["status"],
              optional(r["est_tokens_per_s"], ",.0f"), optional(r["tokens_per_s"], ",.0f"),
              optional(r["est_vram_gib"], ".1f"), optional(r["peak_vram_gib"], ".1f"),
              optional_usd(r["est_cost_usd"]), optional_usd(r["cost_usd"])] for r in runs]
    return Section("Launched runs: estimate against measurement", "measured",
                   [f"{len(runs)} runs from `orch runs` (read-only)." if runs else
                    "No launched runs yet (`orch launch JOB.yaml`); they appear here with their estimate, "
                    "measurement and spend."],
                   ["run", "job", "target", "status", "est tok/s", "tok/s", "est GiB", "peak GiB", "est $", "spent $"],
                   table, ["measured"] * len(table))


def _error_cells(values: list[float | None]) -> list[str]:
    return [optional(v, ".0%") for v in values]


def _metric_name(metric: str) -> str:
    return f"{'speed' if metric == 'tokens_per_s' else 'memory'} ({UNITS[metric]})"


def error_section(points: list, out: Path) -> Section:
    """The estimate against every point (the figure) and the error per origin: calibrate's own figures."""
    origins = sorted({p.origin for p in points}) or ["measured"]
    dates = sorted(set(re.findall(r"\d{4}-\d{2}-\d{2}", " ".join(p.source for p in points))))
    caption = (f"Origin: {' + '.join(origins)} ({len(points)} points; "
               f"{_date_range(dates)}). Generated {_today()}.")
    image = plots.estimate_vs_measured(points, "Estimate against measurement", caption,
                                       out / "estimate_vs_measured.png")
    summary = origin_summary(points)
    table, row_origins = [], []
    for key, today in summary["estimated"].items():
        origin, metric = key.split(" ")
        table.append([origin, _metric_name("vram_gib" if metric == "vram" else metric), str(today["points"]),
                      *_error_cells([summary[c].get(key, {}).get("median_abs_error") for c in COLUMNS]),
                      optional(today["within_20"], ".0%")])
        row_origins.append(origin)
    text = ["Median |estimate / measured - 1| over every point of each origin. `today`: the estimate with the "
            "current calibration file. `in sample`, `leave GPU out`, `leave source out`: with the calibration "
            "`orch calibrate` fits from the bench results and the published points, from all of them, from all but "
            "the point's GPU (a card never measured), and from all but the point's source; `in sample` and `leave "
            "source out` are the figures `orch calibrate` prints for the same results. orch calibrate counts all "
            "bench results as one source, so leaving it out scores them by the published points alone. These fits "
            "leave launched runs out (`orch calibrate` fits them only where no sweep measured their GPU and "
            "method), so launched runs have today's error only. Published points are the rows of "
            "gpu_catalog/data/published_measurements.csv marked usable, on a catalog GPU; their source is the "
            "file's source_id, whose rows give the URL and date."]
    if not points:
        text.append("No measured or published points: the published measurements file is not there, and no "
                    "`orch bench SWEEP.yaml` results were given.")
    return Section("Estimator error per origin, in sample and cross-validated", " + ".join(origins), text,
                   ["origin", "metric", "points", "today", "in sample", "leave GPU out", "leave source out",
                    "today within 20%"], table, row_origins, image, caption)


def error_by_gpu_section(points: list) -> Section:
    origins = sorted({p.origin for p in points}) or ["measured"]
    table, row_origins = [], []
    for e in error_rows(points):
        table.append([_metric_name(e["metric"]), e["gpu"], e["method"], str(e["points"]), ", ".join(e["origins"]),
                      *_error_cells([e["current"], e["in_sample"], e["leave_gpu_out"], e["leave_source_out"]])])
        row_origins.append(e["origins"][0] if len(e["origins"]) == 1 else "measured")
    return Section("Estimator error per GPU and method", " + ".join(origins),
                   ["Median |estimate / measured - 1| per GPU and method, with the same four estimates as above. "
                    "Cross-validated errors are what to expect on a new card or setup; a dash means no point of the "
                    "group has that estimate (launched runs only)."],
                   ["metric", "GPU", "method", "points", "origin", "today", "in sample", "leave GPU out",
                    "leave source out"], table, row_origins)


def _value(value: float, metric: str) -> str:
    return f"{value:,.0f} {UNITS[metric]}" if metric == "tokens_per_s" else f"{value:,.2f} {UNITS[metric]}"


def points_section(points: list) -> Section:
    """Every measured and published point: what it measured, what orch estimates, and the error, with units."""
    origins = sorted({p.origin for p in points}) or ["measured"]
    table = [[p.origin, p.source, p.point, _value(p.measured, p.metric), _value(p.estimated, p.metric),
              optional(point_error(p), "+.1%"), optional(point_error(p, "leave_source_out"), "+.1%")]
             for p in points]
    return Section("Every point: estimate against measurement", " + ".join(origins),
                   [f"{len(points)} points. `error`: today's estimate / measured - 1; `source left out`: the same "
                    "with the calibration fitted without the point's source."],
                   ["origin", "source", "point", "measured", "estimated today", "error", "source left out"], table,
                   [p.origin for p in points])


HYBRID_TITLE = "Local, cloud or both: the hybrid question"


def hybrid_section(hybrid: dict | None) -> Section:
    """The simulated policies on the trace; with no trace, the section says so and how to add one rather than
    vanishing unsaid (a report made outside orch's source folder found no default trace)."""
    if hybrid is None:
        return Section(HYBRID_TITLE, "analytic", ["Left out: no job trace. Pass `--trace TRACE.csv` to `orch report` "
                                                  "(`orch simulate --generate N --out TRACE.csv` makes one)."])
    table = [[name, str(s["completed"]), str(s["rejected"]), optional_usd(s["total_cost_usd"]),
              str(s["deadline_misses"]), _hours(s["mean_wait_h"]), percent_text(s["local_utilization"])]
             for name, s in hybrid["policies"].items()]
    return Section(HYBRID_TITLE, "analytic",
                   [f"The simulator (`orch simulate`) on {hybrid['jobs']} jobs of {hybrid['trace']}, with owned cards "
                    f"{', '.join(hybrid['cards'])}"
                    + ("" if hybrid["cards_declared"] else " (no hardware file: default desktop cards)")
                    + ", and every cloud offer. An owned card costs its power while busy"
                    + (", and its purchase over its life for each hour of the trace, busy or not (not spread over "
                       "the hardware file's utilization: the simulation knows how busy it was)"
                       if hybrid["cost_policy"] == "amortized" else " (cost_policy marginal)")
                    + ". Run times scatter around the estimate."],
                   ["policy", "completed", "rejected", "total cost", "deadline misses", "mean wait",
                    "local utilization"], table, ["analytic"] * len(table))


def measured_share(sections: list[Section]) -> float:
    """The share of the report's table rows whose numbers were measured (orch's sweeps and runs)."""
    origins = [o for s in sections for o in s.row_origins]
    return sum(o == "measured" for o in origins) / len(origins) if origins else 0.0


def build_report(rows: list[dict], runs: list[dict], jobs: list[Path], out: Path, budget_usd: float | None = None,
                 deadline_h: float | None = None, trace: Path | None = None) -> tuple[dict, list[Section]]:
    """(the numbers, for --json; the sections, for report.md and report.html). Writes the PNGs into `out`."""
    summaries = [job_summary(job, budget_usd, deadline_h) for job in jobs]  # a job nothing runs: refused first
    out.mkdir(parents=True, exist_ok=True)
    sections = [summary_section(s) for s in summaries]
    for index, s in enumerate(summaries):
        sections += [targets_section(s, out, index), capacity_section(s, out, index), ownership_section(s, out, index)]
    points = estimate_points(rows, runs, load_calibration())
    hybrid = compare_policies(trace) if trace is not None else None
    sections += [sweep_section(rows), runs_section(runs), error_section(points, out), error_by_gpu_section(points),
                 points_section(points), hybrid_section(hybrid)]
    data = {"generated": _today(), "measured_share": measured_share(sections), "jobs": summaries,
            "sweep_points": [{k: v for k, v in r.items() if k != "metrics"} for r in rows], "runs": runs,
            "estimate_points": [p.__dict__ for p in points], "errors": error_rows(points),
            "error_summary": origin_summary(points), "hybrid": hybrid,
            "figures": [{"title": s.title, "file": s.image.name, "origin": s.origin, "caption": s.caption}
                        for s in sections if s.image]}
    return data, sections
