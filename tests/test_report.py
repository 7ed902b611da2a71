"""The report: its summary against the planner and the cost model, the Pareto set against a brute force, the
break-even against the formula, the cross-validated error, and that every figure and section says its origin."""

import base64
import json
import os
import random
import re

import pytest
from typer.testing import CliRunner

from gpu_catalog.owned import HOURS_PER_YEAR
from gpu_catalog.units import percent_text, usd_per_million_tokens
from orchestrator.bench.economics import Point, break_even_utilization, owned_usd_per_job, pareto_front
from orchestrator.bench.report import summary_lines
from orchestrator.bench.report_errors import error_rows
from orchestrator.bench.report_points import EstimatePoint
from orchestrator.bench.report_render import write_report
from orchestrator.bench.report_summary import job_summary
from orchestrator.cli.limits import MAX_BUDGET_USD
from orchestrator.cli.main import app
from orchestrator.cli.planning import plan_job
from orchestrator.estimator.calibration import BASES
from tests.bench_fixtures import synthetic_rows
from tests.conftest import REPO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JOB = REPO / "examples" / "llama31-8b-qlora.yaml"
TRACE = REPO / "benchmarks" / "traces" / "team-week.csv"


def test_the_recommendation_is_the_planners_and_its_numbers_the_cost_models():
    summary = job_summary(JOB, 20.0, 24.0)
    _, _, plan = plan_job(JOB, 20.0, 24.0, "cost", True, None)
    recommended, chosen = summary["recommended"], plan.chosen
    assert recommended["gpu"] == chosen.offer.gpu.name and recommended["usd_per_hour"] == chosen.offer.usd_per_hour
    assert recommended["hours"] == pytest.approx(chosen.estimate.hours)
    assert recommended["usd_per_job"] == pytest.approx(chosen.estimate.cost_usd)  # the whole spend, start-up in
    assert recommended["usd_per_million_tokens"] == pytest.approx(
        usd_per_million_tokens(chosen.offer.usd_per_hour, chosen.estimate.tokens_per_s))
    assert recommended["usd_per_job"] <= 20.0 and recommended["hours"] <= 24.0


def test_fastest_and_cheapest_are_the_extremes_of_every_runnable_target():
    summary = job_summary(JOB, None, None)
    _, _, plan = plan_job(JOB, MAX_BUDGET_USD, None, "cost", True, None)
    estimates = [o.estimate for o in plan.options]
    assert summary["fastest"]["hours"] == pytest.approx(min(e.hours for e in estimates))
    assert summary["cheapest"]["usd_per_job"] == pytest.approx(min(e.cost_usd for e in estimates))
    assert summary["recommended"]["usd_per_job"] == pytest.approx(summary["cheapest"]["usd_per_job"])


def test_the_pareto_front_matches_a_brute_force():
    rng = random.Random(4)
    for _ in range(50):
        points = [Point(rng.choice([1, 2, 3, 4]) * rng.random() + 0.1, rng.random() * 10) for _ in range(15)]
        brute = {i for i, p in enumerate(points) if not any(
            q.hours <= p.hours and q.usd <= p.usd and (q.hours < p.hours or q.usd < p.usd) for q in points)}
        assert set(pareto_front(points)) == brute


def test_break_even_is_where_owning_costs_what_renting_does():
    hours, energy, purchase, life, cloud = 10.0, 0.08, 1600.0, 4.0, 9.0
    utilization = break_even_utilization(hours, energy, purchase, life, cloud)
    assert utilization == pytest.approx(purchase / (life * HOURS_PER_YEAR * (cloud / hours - energy)))
    assert owned_usd_per_job(hours, energy, purchase, life, utilization) == pytest.approx(cloud)
    assert owned_usd_per_job(hours, energy, purchase, life, utilization * 1.1) < cloud
    assert break_even_utilization(hours, 1.0, purchase, life, 5.0) is None  # electricity alone costs more


def test_every_owned_card_has_a_break_even_against_the_cheapest_cloud_offer():
    summary = job_summary(JOB, None, None)
    for entry in summary["break_even"]:
        assert entry["cloud_usd_per_job"] == pytest.approx(summary["cheapest"]["usd_per_job"])
        if entry["utilization"] is not None:
            assert owned_usd_per_job(entry["hours"], entry["energy_usd_per_hour"], entry["purchase_usd"],
                                     entry["life_years"], entry["utilization"]) == pytest.approx(
                entry["cloud_usd_per_job"])


def _point(gpu, source, measured, in_sample, leave_gpu_out=None, leave_source_out=None, metric="tokens_per_s"):
    return EstimatePoint("measured", source, "a point", gpu, "lora", metric, in_sample, measured, in_sample,
                         leave_gpu_out, leave_source_out)


def test_each_error_column_is_the_median_of_its_points_and_a_dash_where_none_has_it():
    """The groups' errors come from each point's estimates (calibrate's fits); a launched run, never fitted, has
    today's error only."""
    points = [_point("A", "s1", 50.0, 50.0, 100.0, 75.0), _point("A", "s2", 50.0, 50.0, 100.0, 50.0),
              _point("A", "run r-1", 100.0, 50.0)]
    row = error_rows(points)[0]
    assert row["points"] == 3 and row["current"] == pytest.approx(0.0) and row["in_sample"] == pytest.approx(0.0)
    assert row["leave_gpu_out"] == pytest.approx(1.0) and row["leave_source_out"] == pytest.approx(0.25)
    assert error_rows([_point("B", "run r-2", 100.0, 50.0)])[0]["leave_source_out"] is None


def test_the_report_says_where_every_figure_comes_from(tmp_path):
    data, written = write_report(synthetic_rows(), [], [JOB], tmp_path, html_page=True, sources=["fixture"],
                                 budget_usd=20.0, trace=TRACE)
    pngs = [p for p in written if p.suffix == ".png"]
    assert len(pngs) == 4 and all(p.read_bytes().startswith(PNG_MAGIC) for p in pngs)
    assert len(data["figures"]) == 4
    for figure in data["figures"]:
        assert set(figure["origin"].split(" + ")) <= set(BASES) and figure["origin"]
        assert figure["caption"].startswith("Origin: ") and "Generated" in figure["caption"]
    page = (tmp_path / "report.html").read_text()
    for png in pngs:  # one file: every plot inline, byte for byte
        assert f"data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}" in page
    assert "http://" not in page and "https://" not in page  # opens offline
    markdown = (tmp_path / "report.md").read_text()
    sections = re.findall(r"^## .*$", markdown, re.M)
    assert len(re.findall(r"^## .*\n\n\*Origin: (measured|published|analytic)", markdown, re.M)) == len(sections)
    assert 0 < data["measured_share"] < 1 and f"{data['measured_share']:.0%} of the table rows" in markdown
    assert set(data["hybrid"]["policies"]) == {"local-only", "cloud-only", "hybrid"}
    assert json.loads((tmp_path / "report.json").read_text())["jobs"][0]["recommended"] == \
        json.loads(json.dumps(data["jobs"][0]["recommended"]))


def test_orch_report_summarises_the_job_and_prints_the_same_numbers_as_json(tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows()))
    out = tmp_path / "report"
    runner = CliRunner()
    shown = runner.invoke(app, ["report", "--job", str(REPO / "examples" / "tiny.yaml"), "--results", str(results),
                                "--out", str(out), "--trace", str(TRACE)])
    assert shown.exit_code == 0, shown.output
    assert "Recommended (as `orch plan` chooses): local CPU" in shown.stdout and "per job" in shown.stdout
    # the documents by name and the plots by their count: one plot was named, then "and 3 plots"
    plots = len(list(out.glob("*.png")))
    assert shown.stderr.endswith(f"wrote {out / 'report.md'}, {out / 'report.json'} and {plots} plots "
                                 f"({out / '*.png'})\n"), shown.stderr
    assert "| # | target | time per job |" in (out / "report.md").read_text()  # it holds `53 s`, not hours
    as_json = runner.invoke(app, ["report", "--job", str(JOB), "--results", str(results), "--out", str(out),
                                  "--json", "--budget", "50"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["jobs"][0]["recommended"]["usd_per_job"] <= 50
    assert runner.invoke(app, ["report", "--job", "nope.yaml", "--results", str(results)]).exit_code == 2
    assert runner.invoke(app, ["report", "--job", str(JOB), "--results", str(results), "--budget", "-1"]).exit_code == 2
    # one job twice (its plots and summary were repeated), however its path is written
    twice = runner.invoke(app, ["report", "--job", str(JOB), "--job", str(JOB.parent / ".." / JOB.parent.name /
                                                                          JOB.name), "--out", str(tmp_path / "2")])
    assert twice.exit_code == 2 and "is given twice: give each job once" in twice.stderr, twice.output
    assert not (tmp_path / "2").exists()


def test_a_job_no_target_runs_is_refused_in_one_line_before_the_folder_is_made(tmp_path):
    """Its plots had no point to draw: matplotlib's traceback (exit 1), one PNG left in a new folder, and with --json
    no document at all."""
    job = tmp_path / "huge.yaml"
    job.write_text("model: meta-llama/Llama-3.1-8B\nmethod: lora\nseq_len: 262144\ntrain_tokens: 1000000\n")
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows()))
    for json_flag in ([], ["--json"]):
        result = CliRunner().invoke(app, ["report", "--job", str(job), "--results", str(results), "--out",
                                          str(tmp_path / "report"), *json_flag])
        assert result.exit_code == 2, result.output
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert line.startswith(f"error: job {job}: the job fits no GPU (does not fit: needs ")
        assert not (tmp_path / "report").exists()


def test_published_measurements_join_when_the_file_exists_and_are_skipped_when_not(tmp_path, monkeypatch):
    """The file is long-format (a metric and its converted value per row, `usable`): the report read columns it does
    not have (tokens_per_s, vram_gib) and joined no published point at all."""
    from orchestrator.bench import report_points
    from orchestrator.bench.published import PUBLISHED_CSV
    from orchestrator.estimator.calibration import NO_CALIBRATION

    monkeypatch.setattr(report_points, "PUBLISHED_CSV", tmp_path / "absent.csv")
    assert report_points.estimate_points([], [], NO_CALIBRATION) == []
    lines = PUBLISHED_CSV.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    speed = next(line for line in lines if ",tokens_per_s," in line and line.split(",")[header.index("usable")]
                 == "yes" and line.split(",")[header.index("gpu")])
    unusable = next(line for line in lines[1:] if ",no," in line)
    published = tmp_path / "published.csv"
    published.write_text("\n".join([lines[0], speed, unusable]) + "\n", encoding="utf-8")
    monkeypatch.setattr(report_points, "PUBLISHED_CSV", published)
    points = report_points.estimate_points([], [], NO_CALIBRATION)
    cells = dict(zip(header, speed.split(","), strict=False))
    assert [(p.origin, p.source, p.gpu, p.metric, p.measured) for p in points] == [
        ("published", cells["source_id"], cells["gpu"], "tokens_per_s", float(cells["value_converted"]))]


def test_every_usable_published_point_is_in_the_report_estimated_as_orch_estimate_does(tmp_path):
    """A fresh home, no sweeps: the report's estimate-against-measurement plot and error section were empty. Now every
    point orch calibrate fits is there, each estimated as `orch estimate` with the point's settings estimates it
    (benchmarks/score_estimator.py's path), its error shown per point and per origin, with units."""
    from benchmarks.score_estimator import estimate_json
    from orchestrator.bench.calibrate import published_observations
    from orchestrator.bench.published import comparable_vram_gib, load_points

    data, _ = write_report([], [], [REPO / "examples" / "tiny.yaml"], tmp_path)
    points = data["estimate_points"]
    published = published_observations()
    speed_points, vram_points = sum(bool(o.tokens_per_s) for o in published), sum(bool(o.vram_gib) for o in published)
    assert sum(p["metric"] == "tokens_per_s" for p in points) == speed_points > 50
    assert sum(p["metric"] == "vram_gib" for p in points) == vram_points > 50
    by_label = {(p["point"], p["metric"]): p for p in points}
    for point in [p for p in load_points() if p.gpu and p.metric != "oom"][::20]:
        est = estimate_json(point)
        if point.metric == "vram":
            assert by_label[(point.label, "vram_gib")]["estimated"] == pytest.approx(
                comparable_vram_gib(est["breakdown"], point.measures), rel=1e-3)
        else:
            assert by_label[(point.label, "tokens_per_s")]["estimated"] == pytest.approx(est["tokens_per_s"], rel=1e-3)
    assert {"published tokens_per_s", "published vram"} <= set(data["error_summary"]["leave_source_out"])
    assert {e["origins"][0] for e in data["errors"]} == {"published"}
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert re.search(rf"^\| published \| speed \(tokens/s\) \| {speed_points} \| \d+% \|", markdown, re.M)
    assert re.search(rf"^\| published \| memory \(GiB\) \| {vram_points} \| \d+% \|", markdown, re.M)
    assert re.search(r"^\| published \| [^|]+ \| [^|]+ \| [\d,.]+ tokens/s \| [\d,.]+ tokens/s \| [+-]\d", markdown,
                     re.M)


def _cpu_rows() -> list[dict]:
    """What `orch bench benchmarks/sweeps/tiny-cpu.yaml` records: CPU points, RSS as the peak."""
    rows = []
    for index, (seq_len, tokens_per_s) in enumerate(((128, 5200.0), (256, 4100.0), (512, 2300.0))):
        config = {"model": "orch/tiny-llama", "method": "lora", "seq_len": seq_len, "micro_batch": 8,
                  "max_steps": 10, "dataset": "data.jsonl"}
        rows.append({"point_id": f"cpu-{index}", "sweep": "tiny-cpu", "target": "local", "created_at": 1.7e9,
                     "status": "ok", "config": config, "gpu": "CPU", "tokens_per_s": tokens_per_s,
                     "peak_vram_gib": {"allocated": None, "reserved": None, "process_rss": 0.9 + index / 10}})
    return rows


def test_the_reports_cross_validated_error_is_the_one_orch_calibrate_prints(tmp_path):
    """For the same CPU points orch calibrate printed a 33% leave-one-source-out error and the report a dash."""
    from orchestrator.bench.calibrate import calibrate

    rows = _cpu_rows() + synthetic_rows()
    fitted = calibrate(rows, tmp_path / "calibration.json")
    data, _ = write_report(rows, [], [REPO / "examples" / "tiny.yaml"], tmp_path / "report")
    for key in ("measured tokens_per_s", "measured vram", "published tokens_per_s", "published vram"):
        assert data["error_summary"]["leave_source_out"][key] == pytest.approx(fitted["leave_one_source_out"][key])
        assert data["error_summary"]["in_sample"][key] == pytest.approx(fitted["in_sample"][key])
    cpu = next(e for e in data["errors"] if e["gpu"] == "CPU" and e["metric"] == "tokens_per_s")
    assert cpu["leave_source_out"] is not None and cpu["leave_gpu_out"] is not None
    shown = fitted["leave_one_source_out"]["measured tokens_per_s"]["median_abs_error"]
    markdown = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert re.search(rf"^\| measured \| speed \(tokens/s\) \| \d+ \| \d+% \| \d+% \| \d+% \| {shown:.0%} \|",
                     markdown, re.M)


def test_the_capacity_plot_runs_the_job_only_where_the_planner_would():
    """The V100 (no torch kernels) was drawn as fitting, at ~130k tokens/s, though every plan rejects it."""
    import dataclasses
    import math

    from orchestrator.estimator.calibration import load_calibration
    from orchestrator.planner import PlanPolicy, plan

    tiny = REPO / "examples" / "tiny.yaml"
    summary = job_summary(tiny, None, None)
    model, targets, result = plan_job(tiny, MAX_BUDGET_USD, None, "cost", True, None)
    v100 = [r for r in summary["capacity"] if r["gpu"] == "V100 16GB"]
    assert v100 and all(not r["runs"] and r["tokens_per_s"] is None and "kernels" in r["rejected"] for r in v100)
    for method in ("full", "lora", "qlora"):
        planned = plan(dataclasses.replace(result.spec, method=method), model, list(targets.offers),
                       PlanPolicy(budget_usd=math.inf), load_calibration())
        runs = {o.offer.gpu.name for o in planned.options}
        assert {r["gpu"] for r in summary["capacity"] if r["method"] == method and r["runs"]} == runs
    eight_b = {(r["gpu"], r["method"]): r for r in job_summary(JOB, None, None)["capacity"]}
    assert not eight_b[("V100 16GB", "full")]["fits"]  # 76 GiB on a 16 GiB card, whatever else rules it out


def test_launched_runs_sit_beside_the_sweep_points_with_estimate_measurement_and_spend():
    import dataclasses

    from orchestrator.bench.report import runs_section
    from orchestrator.bench.report_points import estimate_points
    from orchestrator.cli.bench import launched_runs
    from orchestrator.estimator.calibration import NO_CALIBRATION
    from orchestrator.home import orch_home
    from orchestrator.job import load_job
    from orchestrator.runs.store import RunRecord, RunStore

    assert launched_runs() == []  # no runs.db: nothing, and none created
    spec = load_job(REPO / "examples" / "tiny.yaml")
    RunStore().insert(RunRecord(
        run_id="r-0000aaaa", job_name="tiny", job_path="tiny.yaml", job_json=json.dumps(dataclasses.asdict(spec)),
        target="local", gpu="CPU", provider="local", region="local", spot=0, usd_per_hour=0.01, budget_usd=1.0,
        est_vram_gib=0.8, est_tokens_per_s=9000.0, est_hours=0.01, est_cost_usd=0.0001, est_basis="analytic",
        status="ok", run_dir=str(orch_home() / "runs" / "r-0000aaaa"), pid=None, cluster=None, stop_requested=0,
        created_at=1.7e9, started_at=None, ended_at=None, train_tokens=100000, tokens_per_s=4500.0, peak_vram_gib=0.9,
        wall_s=22.0, cost_usd=0.00006, message=None, metrics_json=None))
    runs = launched_runs()
    points = estimate_points(synthetic_rows(), runs, NO_CALIBRATION)
    mine = [p for p in points if p.source.startswith("run r-0000aaaa")]
    assert {(p.metric, p.measured) for p in mine} == {("tokens_per_s", 4500.0), ("vram_gib", 0.9)}
    assert any(p.source.startswith("sweep synthetic") for p in points)  # beside the sweep points
    section = runs_section(runs)
    assert section.rows[0][4:] == ["9,000", "4,500", "0.8", "0.9", "$0.00010", "$0.000060"]
    assert section.origin == "measured"


def test_a_run_named_with_markdown_cannot_break_or_inject_into_the_report(tmp_path):
    """Run rows come from runs.db (a hand edit, a name from before names were checked): a `|` would split the cell,
    a link or raw HTML would render as one, a line break would end the table."""
    runs = [{"run_id": "r-1", "job_name": "a|b <img src=x> [x](javascript:y) `c`\nnext", "gpu": "CPU",
             "provider": "local", "spot": False, "status": "error", "est_tokens_per_s": None, "tokens_per_s": None,
             "est_vram_gib": None, "peak_vram_gib": None, "est_cost_usd": None, "cost_usd": 0.0}]
    write_report([], runs, [JOB], tmp_path)
    row = next(line for line in (tmp_path / "report.md").read_text().splitlines() if line.startswith("| r-1"))
    assert row.count(" | ") == 9 and "\n" not in row  # ten cells, on one line
    assert "<img" not in row and "](" not in row.replace("\\](", "") and "\\`c\\`" in row


def test_no_control_character_from_a_results_row_reaches_either_page(tmp_path):
    """A row's sweep, GPU or driver with an ESC in it reached report.html raw (`cat` coloured the terminal); the
    Markdown's cells had it escaped."""
    rows = synthetic_rows()
    rows[0] = {**rows[0], "sweep": "\x1b[31mevil", "gpu": "NVIDIA H200\x1b]0;title\x07", "driver_version": "\u202e58"}
    write_report(rows, [], [JOB], tmp_path, html_page=True)
    for page in ("report.md", "report.html"):
        text = (tmp_path / page).read_text(encoding="utf-8")
        assert not {"\x1b", "\x07", "\u202e"} & set(text), page
    assert "NVIDIA H200\\x1b]0;title\\x07" in text  # shown in the page, escaped


def test_an_out_folder_under_a_missing_folder_is_refused_before_any_work(tmp_path):
    """Every other --out refuses a missing parent (a typo) rather than make the chain; the report made all of it."""
    out = tmp_path / "nodir" / "report"
    result = CliRunner().invoke(app, ["report", "--job", str(JOB), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr == f"error: --out '{out}': folder '{out.parent}' does not exist; create it first.\n"
    assert not out.parent.exists()


def test_orchs_runs_database_given_as_the_results_database_says_so(tmp_path):
    """runs.db's schema is newer than bench.db's: it was called a newer orch's file, and `upgrade orch` fixed
    nothing."""
    from orchestrator.home import orch_home
    from orchestrator.runs.store import RunStore

    runs_db = orch_home() / "runs.db"
    RunStore(runs_db)
    before = runs_db.read_bytes()
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--job", str(JOB), "--db", str(runs_db), "--out", str(out)])
    assert result.exit_code == 2 and "upgrade orch" not in result.stderr
    assert "runs.db is orch's runs database, not a bench results database: give --db a bench .db" in \
        result.stderr and len(result.stderr.splitlines()) == 1  # the folder may be shortened: a long path is cut
    assert runs_db.read_bytes() == before and not out.exists()


def test_a_report_rewritten_in_its_folder_leaves_none_of_the_last_ones_files(tmp_path):
    """Without --html the last run's report.html stayed, and so did the plots of a job no longer named, beside the new
    report.md: a folder of two reports. Files the report never wrote stay."""
    tiny = REPO / "examples" / "tiny.yaml"
    _, first = write_report([], [], [JOB, tiny], tmp_path, html_page=True)
    assert {"report.html", "capacity_1.png", "own_vs_rent_1.png"} <= {p.name for p in first}
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "capacity_7.png").write_bytes(PNG_MAGIC)  # named like a plot, but no report wrote it
    data, second = write_report([], [], [JOB], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in second] + ["notes.txt",
                                                                                            "capacity_7.png"])
    assert data["files"] == [p.name for p in second] and "report.html" not in data["files"]


def test_a_pipe_or_device_under_a_report_name_is_replaced_not_written_through(tmp_path):
    """With --force the report wrote through whatever stood under its names: a pipe hung it for ever, and a link to
    /dev/null kept nothing; a link to nowhere made its target. Each is removed and the report written in its place."""
    import signal

    os.mkfifo(tmp_path / "report.md")
    os.mkfifo(tmp_path / "capacity_0.png")
    (tmp_path / "report.json").symlink_to("/dev/null")
    (tmp_path / "report.html").symlink_to(tmp_path / "nowhere")

    def hung(*_):
        raise TimeoutError("the report hung writing into a pipe")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        _, written = write_report([], [], [JOB], tmp_path, html_page=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    for path in written:
        assert path.is_file() and not path.is_symlink() and path.stat().st_size > 0, path
    assert json.loads((tmp_path / "report.json").read_text())["files"] == [p.name for p in written]


def test_a_small_break_even_is_said_with_its_digits():
    """A break-even at 0.4% yearly utilization was said as `above 0%`."""
    assert [percent_text(share) for share in (0.004, 0.0004, 1e-9, 0.0123, 0.456, 1.0, 0.0)] == \
        ["0.4%", "0.04%", "0.01%", "1.2%", "46%", "100%", "0%"]
    summary = job_summary(JOB, None, None)
    summary["break_even"] = [{**summary["break_even"][0], "utilization": 0.004}]
    assert f"owning beats renting ({summary['break_even'][0]['cloud']}) above 0.4% yearly utilization." in \
        summary_lines(summary)[-1]


def test_the_default_trace_is_found_from_any_folder_and_a_missing_one_is_said(tmp_path, monkeypatch):
    """Run outside the source folder, `orch report` looked for benchmarks/traces/team-week.csv in the working folder
    and left the hybrid section out without a word."""
    from orchestrator.cli import bench

    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows()))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    args = ["report", "--job", str(REPO / "examples" / "tiny.yaml"), "--results", str(results), "--json"]
    found = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "found")])
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["hybrid"]["trace"].endswith("team-week.csv")
    monkeypatch.setattr(bench, "SOURCE_DIR", tmp_path)  # an installed orch: no trace beside it
    missing = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "missing")])
    assert missing.exit_code == 0, missing.output
    markdown = (tmp_path / "missing" / "report.md").read_text()
    assert "## Local, cloud or both: the hybrid question" in markdown and "Left out: no job trace" in markdown


def test_the_default_job_and_committed_results_are_found_from_any_folder(tmp_path, monkeypatch):
    """`orch report` run outside the source folder failed: its default job was looked for in the working folder."""
    from orchestrator.bench.results import RESULTS_DIR

    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows()))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", "--results", str(results), "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    assert RESULTS_DIR == REPO / "benchmarks" / "results"


def test_a_command_that_only_reads_the_results_database_refuses_a_missing_one(tmp_path):
    """`calibrate --db` and `report --db` made an empty database at a typo'd path and went on with no results."""
    missing = tmp_path / "typo.db"
    for command in (["calibrate", "--out", str(tmp_path / "cal.json")], ["report", "--out", str(tmp_path / "rep")]):
        result = CliRunner().invoke(app, [*command, "--db", str(missing)])
        assert result.exit_code == 2 and "--db" in result.stderr and "does not exist" in result.stderr, result.output
    assert not missing.exists()
    folder = CliRunner().invoke(app, ["calibrate", "--db", str(tmp_path)])
    assert folder.exit_code == 2 and "is not a file" in folder.stderr, folder.output


def test_the_summary_folds_at_spaces_in_an_80_column_terminal(monkeypatch):
    """`orch report`'s summary lines ran 85 to 133 columns, cut mid-word by the terminal; now each folds at spaces,
    its later lines indented under it."""
    from rich.console import Console

    from orchestrator.cli import display

    monkeypatch.setattr(display, "console", Console(width=80, force_terminal=True, record=True))
    sentences = summary_lines(job_summary(JOB, 20.0, 24.0))
    assert max(len(sentence) for sentence in sentences) > 80  # the case: a line wider than the terminal
    display.show_lines(sentences)
    lines = display.console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines) and len(lines) > len(sentences), lines
    firsts = [line for line in lines if not line.startswith("  ")]  # a sentence's first line each, in order
    assert all(sentence.startswith(line) for sentence, line in zip(sentences, firsts, strict=True)), firsts
    assert " ".join(" ".join(lines).split()) == " ".join(" ".join(sentences).split())


def test_an_empty_out_is_refused_not_read_as_the_working_folder(tmp_path, monkeypatch):
    """typer reads '' as Path('.'): `orch report --out ''` wrote report.md and its plots into the working folder."""
    monkeypatch.chdir(tmp_path)
    for blank in ("", "  "):
        result = CliRunner().invoke(app, ["report", "--job", str(JOB), "--out", blank])
        assert result.exit_code == 2
        assert result.stderr == "error: --out is empty: give a folder name.\n"
    assert list(tmp_path.iterdir()) == []


def test_a_users_own_plots_in_the_out_folder_are_kept_without_force(tmp_path):
    """report.md/.json/.html were protected, but a user's capacity_0.png or estimate_vs_measured.png (orch's plot
    names) were replaced unasked; a plot named for a job this report does not have is not in the way."""
    out = tmp_path / "rp"
    out.mkdir()
    mine = {"capacity_0.png": b"mine", "estimate_vs_measured.png": b"mine too", "own_vs_rent_5.png": b"kept"}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    result = CliRunner().invoke(app, ["report", "--job", str(JOB), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr == (f"error: --out {out} holds capacity_0.png and estimate_vs_measured.png, which no orch "
                             "report wrote: pass --force to replace them, or choose another folder.\n")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == mine  # checked before any work: nothing written


@pytest.mark.parametrize("make", ["pipe", "device"])
def test_a_report_json_that_is_no_file_is_no_report_of_orchs(tmp_path, make):
    """report.json in --out was read to learn what the last report wrote: a pipe hung `orch report`, a link to
    /dev/zero filled memory. It is none orch wrote, so refused as a user's own file."""
    import os

    out = tmp_path / "rp"
    out.mkdir()
    if make == "pipe":
        os.mkfifo(out / "report.json")
    else:
        (out / "report.json").symlink_to("/dev/zero")
    result = CliRunner().invoke(app, ["report", "--job", str(JOB), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr == (f"error: --out {out} holds report.json, which no orch report wrote: pass --force to "
                             "replace it, or choose another folder.\n")


def test_a_folder_where_the_report_writes_a_file_is_refused_before_any_work_even_with_force(tmp_path):
    """`--force` with a folder named report.md did the work, wrote the plots, then failed on `Is a directory`."""
    out = tmp_path / "rp"
    (out / "report.md").mkdir(parents=True)
    result = CliRunner().invoke(app, ["report", "--job", str(JOB), "--out", str(out), "--force"])
    assert result.exit_code == 2
    assert result.stderr == (f"error: --out {out} holds a folder named report.md, where the report writes a file: "
                             "move it, or choose another --out.\n")
    assert [p.name for p in out.iterdir()] == ["report.md"]  # nothing written


def test_force_replaces_a_link_in_the_out_folder_not_the_file_it_points_to(tmp_path):
    """A link named report.md to a file outside --out had that file overwritten by the report."""
    victim = tmp_path / "victim.yaml"
    victim.write_text("mine\n")
    out = tmp_path / "rp"
    out.mkdir()
    (out / "report.md").symlink_to(victim)
    result = CliRunner().invoke(app, ["report", "--job", str(JOB), "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "mine\n"
    assert not (out / "report.md").is_symlink() and (out / "report.md").read_text().startswith("# ")


def test_a_link_under_a_name_this_report_does_not_write_is_left_alone(tmp_path):
    """A link capacity_5.png beside a one-job report was deleted without --force: the name is a report's, though not
    this report's, and nothing asked before removing it."""
    out = tmp_path / "rp"
    out.mkdir()
    (tmp_path / "mine.png").write_text("img\n")
    (out / "capacity_5.png").symlink_to(tmp_path / "mine.png")
    result = CliRunner().invoke(app, ["report", "--job", str(JOB), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "capacity_5.png").is_symlink()


def test_a_dollar_pair_in_a_name_is_drawn_as_written_not_read_as_tex(tmp_path):
    """A model folder named `a$\\frac{x$b` raised matplotlib's TeX parse error after the report had begun writing."""
    from orchestrator.bench import plots

    fig, ax = plots.plt.subplots()
    ax.set_title("job (/m/a$\\frac{x$b, own 4090 ($1,600) rent ($5)")
    fig.savefig(tmp_path / "t.png")
    plots.plt.close(fig)
    assert (tmp_path / "t.png").stat().st_size > 0


def test_a_paragraph_of_the_markdown_report_keeps_its_code_but_no_html_or_link():
    from orchestrator.bench.report_render import _paragraph

    said = _paragraph("Job `j` (/m/[bold red]X<img src=x>|a, lora) & [a](b)")
    assert "`j`" in said and "<img" not in said and "&lt;img" in said and "\\[a\\](b)" in said


def test_the_summarys_origin_is_its_speeds_and_a_jobs_time_reads_in_its_unit():
    """`## Summary: tiny` was headed *Origin: analytic* over lines that each ended "(measured speed)", and its
    `hours per job` column said `0.5 min`."""
    from gpu_catalog.units import duration_text
    from orchestrator.bench.report import summary_section

    summary = job_summary(JOB, None, None)
    targets = ("recommended", "fastest", "cheapest")
    analytic = {**summary, **{key: {**summary[key], "basis": "analytic"} for key in targets}}
    measured = {**summary, "fastest": {**summary["fastest"], "basis": "measured"}}
    assert summary_section(analytic).origin == "analytic"
    assert summary_section(measured).origin.startswith("measured + ")
    section = summary_section(summary)
    assert section.headers[2] == "time per job"
    assert section.rows[0][2] == duration_text(summary["break_even"][0]["hours"] * 3600)
