"""`orch bench`, `orch calibrate`, `orch report`: measure, fit the estimator, and show where the money goes."""

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from orchestrator import home
from orchestrator.bench.report_folder import check_inputs_kept, check_writable_names, foreign_files
from orchestrator.bench.results import EXPORT_SUFFIXES, RESULTS_DIR, ResultStore, default_db, export, read_jsonl
from orchestrator.cli import display
from orchestrator.cli.errors import SaidInJson, user_errors
from orchestrator.cli.limits import MAX_BUDGET_USD, check_deadline
from orchestrator.cli.options import DeadlineOption, JsonFlag, path_argument, path_option, usd_option
from orchestrator.cli.serialize import error_dict
from orchestrator.db import ensure_data_folder
from orchestrator.estimator.calibration import calibration_file, load_calibration
from orchestrator.home import runs_db
from orchestrator.job import load_job
from orchestrator.simulate.trace import check_trace
from trainer.config import read_folders
from trainer.status import TrainStatus

MESSAGE_CHARS = 300  # of a failed point's message on the screen; the database and --json keep it whole
SOURCE_DIR = Path(__file__).resolve().parents[2]  # orch's source checkout (an installed wheel has no benchmarks/)
DEFAULT_REPORT_JOB = SOURCE_DIR / "examples" / "llama31-8b-qlora.yaml"  # from any folder; a wheel: pass --job
DbOption = Annotated[Path | None, path_option("--db", help="Results database (default: $ORCH_HOME/bench.db).")]
ResultsOption = Annotated[list[Path] | None, path_option(
    "--results", help="Result files (JSONL) to use; default: the database plus benchmarks/results/*.jsonl.")]


def check_db(db: Path | None, reads_only: bool = False) -> None:
    """--db names a results database: an existing file, or (for `orch bench`, which records into it) one to create
    in a writable folder. A command that only reads it refuses a missing one: it made an empty database at a typo'd
    path and went on with no results."""
    if db is not None:
        checks.fits_the_file_system(db, "--db")
    if db is not None and db.is_file() and db.stat().st_size == 0:  # SQLite would make it a database
        instead = "the one `orch bench --db` recorded into" if reads_only else "a new file, or a results database"
        raise UserError(f"--db '{db}' is an empty file, not a results database: give {instead}, or leave --db out "
                        "for $ORCH_HOME/bench.db.")
    if reads_only and db is not None and db.is_file() and _no_tables(db):  # made orch's by a command that reads
        raise UserError(f"--db '{db}' is a SQLite file with no tables, not a results database: give the one `orch "
                        "bench --db` recorded into, or leave --db out for $ORCH_HOME/bench.db.")
    if db is None or db.is_file():
        return
    if reads_only:
        state = "is not a file" if db.exists() else "does not exist"  # a folder, /dev/null
        raise UserError(f"--db '{db}' {state}: give the results database `orch bench --db` recorded into, or "
                        "leave --db out for $ORCH_HOME/bench.db.")
    home.output_file(db, "--db")


def _no_tables(db: Path) -> bool:
    """Whether `db` is a SQLite file holding no table, read without writing (a file SQLite cannot read is left to the
    database's own checks, which say what is wrong with it)."""
    try:
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as reader:
            return reader.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    except sqlite3.DatabaseError:
        return False


def check_one_source(db: Path | None, results: list[Path] | None) -> None:
    """--db beside --results was read by neither command, unsaid (a file of text passed as the database); said first,
    before a missing --db is (which sent the user to find a database they did not need)."""
    if results and db is not None:
        raise UserError("--db and --results both name what to read, and --results replaces the database: give one "
                        "of them.")


def gather_rows(db: Path | None, results: list[Path] | None) -> tuple[list[dict], list[str]]:
    """(rows, where they came from): explicit files, or everything recorded plus the committed results. Its callers
    have refused --db beside --results first (check_one_source)."""
    if results:
        for path in results:
            checks.input_file(path, "result file", "give a .jsonl file that `orch bench --out` wrote.")
        # a point given twice (a file listed twice, a rerun appended) counts once, its last row, as in the database;
        # said, for the rows before it were left out unsaid, and `fitted on 1 of 1 rows` hid them
        read = read_jsonl(results)
        by_point = {row["point_id"]: row for row in read}
        if repeats := len(read) - len(by_point):
            display.say(f"note: {repeats} result row{'s' if repeats > 1 else ''} repeat a point given earlier: each "
                        "point counts once, as its last row.", err=True)
        return list(by_point.values()), [str(p) for p in results]
    files = sorted(RESULTS_DIR.glob("*.jsonl"))
    rows = {row["point_id"]: row for row in read_jsonl(files)}
    rows.update({row["point_id"]: row for row in ResultStore(db).rows()})
    return list(rows.values()), [str(ResultStore(db).path), *map(str, files)]


@user_errors
def bench_command(
    sweep: Annotated[Path, path_argument("a sweep file", help="Sweep YAML (see benchmarks/sweeps/).")],
    target: Annotated[str, typer.Option(help="Where the points run: local (this machine's GPU or CPU).")] = "local",
    db: DbOption = None,
    out: Annotated[Path | None, path_option(help="Also write the sweep's rows: .jsonl (every field; what "
                                                  "benchmarks/results/ holds), .csv or .parquet.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --out file if it exists.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run a sweep's points that are not done yet; out-of-memory points are recorded too."""
    from orchestrator.bench.runner import run_sweep
    from orchestrator.bench.sweep import Point, load_sweep

    target = target.strip().lower()  # `--target LOCAL`: choices are read in any case, as `orch launch` reads them
    if force and out is None:  # as `orch import` says it: --force alone does nothing
        raise UserError("--force replaces an existing --out file: give --out FILE with it, or leave --force out.")
    if target != "local":
        raise UserError("--target local is the only bench target: run `orch bench` on the GPU machine itself (for a "
                        "cloud GPU, through `sky launch` or `orch launch`), then pass its --out file to `orch report`.")
    # the folder where it is: `benchmarks/sweeps/`, said to a user in another folder, named nothing there
    checks.input_file(sweep, "sweep file", f"see {RESULTS_DIR.parent / 'sweeps'} for examples.")
    if out is not None:
        checks.file_suffix(out, "--out", EXPORT_SUFFIXES)
    check_db(db)
    plan = load_sweep(sweep, target)  # read and checked: nothing runs yet
    for note in plan.notes:
        display.say(f"note: {note}", err=True)
    if out is not None:  # an earlier sweep's results (another machine's) were replaced, hours later, unasked
        home.output_file(out, inputs=(sweep, plan.dataset, *([db] if db else [])), force=force,
                         read_folders=(plan.dataset,))  # a dataset folder's: read as data by the next sweep
    store = ResultStore(db)
    run_sweep(plan, store, target)
    ids = {p.point_id for p in plan.points}
    rows = [row for row in store.rows() if row["point_id"] in ids]
    if out:
        export(rows, out)
    refusal = _refusal(rows, len(plan.points))
    if as_json:  # the rows are the document; a refusal's, as a launch's plan, carries its error beside them
        display.print_json({"rows": rows, **error_dict(refusal)} if refusal else rows)
    else:
        display.show_bench(rows)
        for row in rows:  # the table has no room for why a point failed
            if row["status"] != "ok" and row.get("message"):
                display.say(f"{Point(row['point_id'], row['config']).label}: {row['status']}: "
                            f"{checks.one_line(row['message'])[:MESSAGE_CHARS]}")
    if refusal:
        raise (SaidInJson if as_json else UserError)(refusal)


def _refusal(rows: list[dict], points: int) -> str | None:
    """Why the sweep is refused (a point the trainer refused), or None."""
    if not (refused := [row for row in rows if row["status"] == TrainStatus.BAD_CONFIG]):
        return None
    said = checks.one_line(refused[0].get("message") or "bad config")[:MESSAGE_CHARS].rstrip(".")
    left = points - len(rows)  # run_sweep stops at a refusal of the dataset every point reads
    stopped = f" ({left} more not run: they read the same dataset)" if left else ""
    return (f"{len(refused)} of {len(rows)} points were refused by the trainer and are not recorded as done{stopped}: "
            f"{said}; fix the sweep and run it again (the points done are kept).")


@user_errors
def calibrate_command(
    db: DbOption = None,
    results: ResultsOption = None,
    out: Annotated[Path | None, path_option(help="Calibration file to write (default: the one the estimator "
                                                  "reads, $ORCH_HOME/calibration.json).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --out file if it exists.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fit the estimator's efficiency (per GPU and method) and memory overheads to measured results."""
    from orchestrator.bench.calibrate import calibrate

    if force and out is None:
        raise UserError("--force replaces an existing --out file, and the default file is refitted anyway: give "
                        "--out FILE with it, or leave --force out.")
    check_one_source(db, results)
    inputs = (*(results or ()), *([db] if db else []))
    if out is not None:
        check_not_a_database(out, "--out", "drop --out to refit the one the estimator reads")
        # JSON was written under .yaml, .jsonl or no suffix at all
        home.output_file(out, inputs=inputs, force=force, suffixes=(".json",))
    else:
        check_refitted(calibration_file(), inputs)
    check_db(db, reads_only=True)
    rows, sources = gather_rows(db, results)  # the published measurements shipped with orch are always added
    if not results and (runs := launched_run_rows()):  # the jobs a team launched measure its cards too
        rows, sources = [*rows, *runs], [*sources, str(runs_db())]
    result = calibrate(rows, out or calibration_file(), sources)
    display.print_json(result) if as_json else display.show_calibration(result)


def check_not_a_database(out: Path, what: str, fix: str) -> None:
    """A calibration is never written over one of ORCH_HOME's own databases, --force or not: written over with JSON,
    every later `orch runs` (runs.db) or `orch calibrate` (bench.db, the one it reads when no --db is given) failed
    on it."""
    for name, database in (("runs database", runs_db()), ("bench results database", default_db())):
        if checks.same_file(out, database):
            raise UserError(f"{what} '{out}' is orch's {name}: write the calibration to another file, or {fix}.")


def check_refitted(path: Path, inputs: tuple[Path, ...]) -> None:
    """The file `orch calibrate` refits without --out (ORCH_CALIBRATION, else ORCH_HOME's) is checked as --out is,
    before the fit, and replaced only where it holds a calibration: ORCH_CALIBRATION naming runs.db wrote JSON over
    every run record, a sweep file or a results file was replaced unsaid, and a pipe hung the fit."""
    named = checks.env_value("ORCH_CALIBRATION") is not None
    what, fix = (("ORCH_CALIBRATION", "point ORCH_CALIBRATION at a calibration file (or a new one)") if named else
                 ("ORCH_HOME's calibration file", "move it away"))
    check_not_a_database(path, what, fix)
    if not named:  # ORCH_HOME itself, on a machine that has not run orch yet (or a file: said as ORCH_HOME's)
        ensure_data_folder(path.parent)
    home.output_file(path, what, inputs=inputs, suffixes=(".json",))  # as --out: JSON under .txt was read by none
    if path.is_file():
        try:
            load_calibration(path)
        except UserError:
            raise UserError(f"{what} '{path}' holds something other than a calibration orch can read, and is left "
                            f"as it is: {fix}, or delete it if it is an old calibration.") from None


def launched_runs() -> list[dict]:
    """The runs store's records, read only: a report never creates runs.db where there is none, and one that is no
    database (a folder, a pipe) is refused as `orch runs` refuses it, not passed over."""
    from orchestrator.runs.store import RunStore

    path = runs_db()
    return [record.as_dict() for record in RunStore(path).all()] if os.path.lexists(path) else []


LEAST_LAUNCHED_STEPS = 20  # a launched run's rate is fitted from this many steps on (a sweep's points time 20-80)


def launched_run_rows() -> list[dict]:
    """The launched runs that ended ok, as result rows: what their trainer's metrics.json measured, with the job it
    trained. `orch calibrate` read only sweeps, and a team's own runs on its own card, with `orch runs` showing
    their gap to the estimate, changed nothing. A run's tokens/s is its mean over its timed steps, not a sweep's
    median of stable ones: a run of fewer than LEAST_LAUNCHED_STEPS steps gives its memory alone (a 3-step rate
    fitted is every later estimate's `measured` one). A run whose record no longer reads as a row (its job named a
    tokenizer folder since moved) is left out, said in a note: one such run failed the whole command."""
    from orchestrator.bench.calibrate import LAUNCHED_RUNS
    from orchestrator.bench.results import checked_row
    from orchestrator.bench.runner import RESULT_METRICS

    rows = []
    for run in launched_runs():
        metrics = run["metrics"] or {}
        if run["status"] != "ok" or not isinstance(metrics.get("config"), dict):
            continue
        row = {"point_id": f"run {run['run_id']}", "sweep": LAUNCHED_RUNS, "config": metrics["config"],
               "cpu_threads": metrics.get("cpu_threads"), **{key: metrics.get(key) for key in RESULT_METRICS},
               "metrics": metrics}
        if not (isinstance(steps := metrics.get("steps"), int) and steps >= LEAST_LAUNCHED_STEPS):
            row["stable"] = False
        try:
            rows.append(checked_row(row, f"run {run['run_id']}", model_known=False))
        except UserError as exc:
            display.say(f"note: left out of the fit: {checks.one_line(str(exc))}", err=True)
    return rows


@user_errors
def report_command(
    job: Annotated[list[Path] | None, path_option(what="a job file", help="A job to summarise (repeat for several; "
                                                  "default: examples/llama31-8b-qlora.yaml).")] = None,
    budget: Annotated[float | None, usd_option(help="Most you will spend per job, in US dollars (default: no "
                                                    "limit).")] = None,
    deadline: DeadlineOption = None,
    trace: Annotated[Path | None, path_option(what="a trace file", help="Job trace (CSV) for the hybrid section "
                                              "(default: benchmarks/traces/team-week.csv in orch's source folder, "
                                              "when present).")] = None,
    db: DbOption = None,
    results: ResultsOption = None,
    out: Annotated[Path, path_option(what="a folder name", help="Folder for report.md, report.json, report.html "
                                                                "and the PNG plots.")] = Path("report"),
    html: Annotated[bool, typer.Option("--html", help="Also write report.html: one file, images inline.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a report.md, .json, .html or PNG plot in --out "
                                                        "that no orch report wrote.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """A team's report: best targets per job, owning against renting, estimator error, runs, local against cloud."""
    checks.optional_number(budget, "--budget", 0, MAX_BUDGET_USD, above=True)  # the flags first: cheapest to fix
    check_deadline(deadline)
    check_one_source(db, results)
    home.output_folder(out)
    jobs = job or [DEFAULT_REPORT_JOB]
    seen = set()
    for path in jobs:  # a job given twice: its plots and summary were repeated
        if (resolved := checks.resolved(path)) in seen:
            raise UserError(f"--job {path} is given twice: give each job once.")
        seen.add(resolved)
    check_writable_names(out, len(jobs))
    check_inputs_kept(out, len(jobs), [*jobs, *(results or []), *(path for path in (trace, db) if path is not None)])
    if not force and (theirs := foreign_files(out, len(jobs))):  # an earlier report of orch's is rewritten: its use
        named = " and ".join(theirs) if len(theirs) <= 3 else f"{', '.join(theirs[:3])} and {len(theirs) - 3} more"
        raise UserError(f"--out {out} holds {named}, which no orch report wrote: pass --force to replace "
                        f"{'them' if len(theirs) > 1 else 'it'}, or choose another folder.")
    default = " (the default one is in orch's source folder)" if job is None else ""
    for path in jobs:
        checks.input_file(path, "job file", f"pass the job to price with --job JOB.yaml{default}.")
    # a bad job fails before the report folder is made, and the folder is none a job reads
    checks.outside_read_folders(out, "--out", [folder for path in jobs for folder in read_folders(load_job(path),
                                                                                                   path.parent)])
    if trace is not None:
        check_trace(trace, every_row=True)
    from orchestrator.bench.report_hybrid import DEFAULT_TRACE, hybrid_cards

    default_trace = SOURCE_DIR / DEFAULT_TRACE  # whatever the working folder: run elsewhere, it was not found
    if (trace := trace or (default_trace if default_trace.is_file() else None)) is not None:
        hybrid_cards()  # more owned cards than the simulator models: refused before any work, not after 34 s
    check_db(db, reads_only=True)
    rows, sources = gather_rows(db, results)  # every row checked as it is read, runs.db's too
    runs = launched_runs()
    from orchestrator.bench.report_render import write_report  # matplotlib: only once the inputs are good

    data, written = write_report(rows, runs, jobs, out, html, sources, budget, deadline, trace)
    if as_json:
        display.print_json(data)
    else:
        from orchestrator.bench.report import summary_lines

        display.show_lines([line for summary in data["jobs"] for line in summary_lines(summary)])
    # the plots by their count: "report.json, report/hours_vs_usd_0.png and 3 plots" read as if the first were none
    documents, plots = [p for p in written if p.suffix != ".png"], [p for p in written if p.suffix == ".png"]
    display.say(f"wrote {', '.join(map(str, documents))} and {len(plots)} plots ({out / '*.png'})", err=True)
