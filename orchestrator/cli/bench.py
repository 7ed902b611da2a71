"""`orch bench`, `orch calibrate`, `orch report`: measure, fit the estimator, and show where the money goes."""

from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog.errors import UserError
from orchestrator.bench.results import EXPORT_SUFFIXES, RESULTS_DIR, ResultStore, export, read_jsonl
from orchestrator.cli import display
from orchestrator.cli.errors import user_errors
from orchestrator.cli.options import JsonFlag
from orchestrator.estimator.calibration import calibration_file

DEFAULT_REPORT_JOB = Path("examples/llama31-8b-qlora.yaml")  # in a source checkout; elsewhere pass --job
DbOption = Annotated[Path | None, typer.Option("--db", help="Results database (default: $ORCH_HOME/bench.db).")]
ResultsOption = Annotated[list[Path] | None, typer.Option(
    "--results", help="Result files (JSONL) to use; default: the database plus benchmarks/results/*.jsonl.")]


def gather_rows(db: Path | None, results: list[Path] | None) -> tuple[list[dict], list[str]]:
    """(rows, where they came from): explicit files, or everything recorded plus the committed results."""
    if results:
        missing = [str(p) for p in results if not p.is_file()]
        if missing:
            raise UserError(f"no such result file: {', '.join(missing)}")
        return read_jsonl(results), [str(p) for p in results]
    files = sorted(RESULTS_DIR.glob("*.jsonl"))
    rows = {row["point_id"]: row for row in read_jsonl(files)}
    rows.update({row["point_id"]: row for row in ResultStore(db).rows()})
    return list(rows.values()), [str(ResultStore(db).path), *map(str, files)]


@user_errors
def bench_command(
    sweep: Annotated[Path, typer.Argument(help="Sweep YAML (see benchmarks/sweeps/).")],
    target: Annotated[str, typer.Option(help="Where the points run: local (this machine's GPU or CPU).")] = "local",
    db: DbOption = None,
    out: Annotated[Path | None, typer.Option(help="Also write the sweep's rows: .jsonl (every field; what "
                                                  "benchmarks/results/ holds), .csv or .parquet.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a sweep's points that are not done yet; out-of-memory points are recorded too."""
    from orchestrator.bench.runner import run_sweep
    from orchestrator.bench.sweep import load_sweep

    if target != "local":
        raise UserError("--target local is the only bench target: run `orch bench` on the GPU machine itself (for a "
                        "cloud GPU, through `sky launch` or `orch launch`), then pass its --out file to `orch report`.")
    if not sweep.is_file():
        raise UserError(f"sweep file '{sweep}' does not exist; see benchmarks/sweeps/.")
    if out is not None and out.suffix not in EXPORT_SUFFIXES:
        raise UserError(f"--out takes a {', '.join(EXPORT_SUFFIXES)} file, got '{out}'.")
    plan = load_sweep(sweep, target)
    store = ResultStore(db)
    run_sweep(plan, store, target)
    ids = {p.point_id for p in plan.points}
    rows = [row for row in store.rows() if row["point_id"] in ids]
    if out:
        export(rows, out)
    if as_json:
        display.print_json(rows)
    else:
        display.show_bench(rows)


@user_errors
def calibrate_command(
    db: DbOption = None,
    results: ResultsOption = None,
    out: Annotated[Path | None, typer.Option(help="Calibration file to write (default: the one the estimator "
                                                  "reads, $ORCH_HOME/calibration.json).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fit the estimator's efficiency (per GPU and method) and memory overheads to measured results."""
    from orchestrator.bench.calibrate import calibrate

    rows, sources = gather_rows(db, results)  # the published measurements shipped with orch are always added
    result = calibrate(rows, out or calibration_file(), sources)
    display.print_json(result) if as_json else display.show_calibration(result)


@user_errors
def report_command(
    db: DbOption = None,
    results: ResultsOption = None,
    out: Annotated[Path, typer.Option(help="Folder for report.md, report.html and the PNG plots.")] = Path("report"),
    html: Annotated[bool, typer.Option("--html", help="Also write a self-contained report.html.")] = False,
    job: Annotated[Path | None, typer.Option(help="The job that prices targets and owning against renting "
                                                  "(default: examples/llama31-8b-qlora.yaml).")] = None,
) -> None:
    """Markdown (and HTML) report with plots: speed, $ per million tokens, VRAM, owning against renting, fit, error."""
    from orchestrator.bench.report import write_report

    rows, sources = gather_rows(db, results)
    if not rows:
        raise UserError("no benchmark results yet: run `orch bench benchmarks/sweeps/tiny-cpu.yaml` first.")
    job = job or DEFAULT_REPORT_JOB
    if not job.is_file():
        raise UserError(f"job file '{job}' does not exist: pass the job to price with --job JOB.yaml.")
    written = write_report(rows, out, job, html=html, sources=sources)
    for path in written:
        display.console.print(f"wrote {path}")
