"""A first user's findings: figures rounded to the same text, help that hid defaults and showed flags as taking
values, a column dropped at 80 columns, a --set mistake blamed on the job file, a GPU typo with no near names."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import get_gpu
from gpu_catalog.models import get_model, load_models
from orchestrator.cli import display
from orchestrator.cli.estimate import DEFAULT_METHOD, JOB_DEFAULTS
from orchestrator.cli.main import app
from orchestrator.estimator.calibration import NO_CALIBRATION
from orchestrator.estimator.fit import auto_fit, needed_and_usable_gib
from orchestrator.estimator.memory import estimate_memory
from orchestrator.estimator.settings import with_batch
from orchestrator.job import job_from_dict
from tests.conftest import REPO, make_gpu
from tests.trainer_helpers import write_job

runner = CliRunner()


def _estimate_json(*args: str) -> dict:
    result = runner.invoke(app, ["estimate", "meta-llama/Llama-3.2-1B", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- figures that round to the same text -----------------------------------------------------------------------------

def test_needed_and_usable_figures_get_the_decimals_that_tell_them_apart():
    assert needed_and_usable_gib(15.211, 15.2) == ("15.21", "15.20")
    assert needed_and_usable_gib(15.2004, 15.2) == ("15.200", "15.200")  # past 3 decimals: as close as said
    assert needed_and_usable_gib(17.3, 15.2) == ("17.3", "15.2")  # apart at one decimal: one


def test_a_does_not_fit_reason_never_says_needs_x_has_x():
    """`does not fit: needs 15.2 GiB ..., has 15.2 GiB`: 11 MiB over the usable share read as a bug."""
    settings = job_from_dict({"model": "meta-llama/Llama-3.2-1B", "method": "full", "seq_len": 2048,
                              "micro_batch": 1, "train_tokens": 1})
    model, gpu = get_model(settings.model), make_gpu(vram_gib=80)
    smallest = estimate_memory(model, with_batch(settings, 1, True), gpu, NO_CALIBRATION).vram_gib
    fit = auto_fit(model, settings, gpu, NO_CALIBRATION, vram_limit_gib=smallest - 0.01)
    needed, usable = re.fullmatch(r"does not fit: needs (\S+) GiB at micro-batch 1 with checkpointing, has (\S+) GiB",
                                  fit.reason).groups()
    assert needed != usable and float(needed) > float(usable)


def test_the_estimate_verdict_tells_needed_and_usable_apart(monkeypatch):
    """`T4: does not fit (15.2 of 16 GiB, 15.2 usable)`: 15.211 against 15.2."""
    from orchestrator.cli import estimate

    args = ("--method", "full", "--micro-batch", "1", "--gpu", "T4")
    needed_gib = _estimate_json(*args)["vram_gib"]
    monkeypatch.setattr(estimate, "usable_vram_gib", lambda gpu, calibration: needed_gib - 0.011)
    monkeypatch.setenv("COLUMNS", "200")  # the verdict on one line, to search
    monkeypatch.setattr(display, "console", Console(width=200))
    said = runner.invoke(app, ["estimate", "meta-llama/Llama-3.2-1B", *args]).stdout
    needed, usable = re.search(r"does not fit as given \((\S+) of \S+ GiB, (\S+) usable\)", said).groups()
    assert needed != usable and float(needed) > float(usable), said


def test_a_tiny_models_parameter_count_is_legible_and_the_column_no_wider():
    """`orch catalog models` said 0.00 B for orch/tiny-llama's 1.3 M parameters."""
    tiny = get_model("orch/tiny-llama")
    assert float(display._billions(tiny.params)) == pytest.approx(tiny.params / 1e9, rel=0.05)
    assert all(len(display._billions(m.params)) <= len("params B") for m in load_models())
    assert display._billions(8.03e9) == "8.03"


# --- help ------------------------------------------------------------------------------------------------------------

def _help(monkeypatch, *args: str) -> str:
    monkeypatch.setenv("COLUMNS", "200")  # each help line whole, to search
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_estimate_help_says_the_defaults_a_left_out_flag_takes(monkeypatch):
    """`--method` left out estimated LoRA, and `--micro-batch` 4, said nowhere in the help."""
    said = _help(monkeypatch, "estimate")
    assert f"default {DEFAULT_METHOD} " in said and f"default {JOB_DEFAULTS['micro_batch']}," in said
    result = _estimate_json()
    assert (result["method"], result["micro_batch"]) == (DEFAULT_METHOD, JOB_DEFAULTS["micro_batch"])


@pytest.mark.parametrize("command, flag", [((), "--version"), (("launch",), "--yes"), (("launch",), "--spot"),
                                           (("estimate",), "--json"), (("estimate",), "--help")])
def test_a_flag_shows_no_value_type_in_help(monkeypatch, command, flag):
    """`--version <bool>`, `--yes -y <bool>`: read as flags that take a value."""
    line = next(line for line in _help(monkeypatch, *command).splitlines() if f" {flag} " in line)
    assert "<bool>" not in line, line
    assert "<str>" in next(line for line in _help(monkeypatch, "estimate").splitlines() if " --method " in line)


# --- the options table at 80 columns ---------------------------------------------------------------------------------

def _row(rank: int, where: str, spot: bool) -> dict[str, str]:
    return {"#": str(rank), "GPU": "L4", "where": f"{where} spot" if spot else where,
            display.MARKED_WHERE: f"{where}{display.SPOT_MARK}" if spot else where, "$/h": "$0.282", "GiB": "17.1",
            "batch": "4x4 ckpt", "tok/s": "1,036", "hours": "13.67", "cost": "$6.53", "$/Mtok": "$0.076"}


def _columns_of(table) -> list[str]:
    return [column.header for column in table.columns]


def test_a_spot_offer_is_marked_before_a_figure_column_goes():
    """The default `orch plan` at 80 columns left `$/Mtok` out, 3 columns short, beside `gcp us-central1 spot`."""
    rows = [_row(1, "gcp us-central1", True), _row(2, "runpod US", False)]
    full = display._plan_table("t", rows, ()).natural_width(Console(width=200))
    out = Console(width=full - 2 - 3)  # the 2 edges a table may drop, and 3 short of the whole row
    table = display._options_table("t", rows, out)
    assert "$/Mtok" in _columns_of(table) and table.caption == f"{display.SPOT_MARK}: spot"
    with out.capture() as captured:
        out.print(table)
    assert "gcp us-central1*" in captured.get() and "us-central1 spot" not in captured.get()


def test_offers_that_fit_or_have_no_spot_are_not_marked():
    rows = [_row(1, "gcp us-central1", True)]
    assert display._options_table("t", rows, Console(width=200)).caption is None  # room for every word
    on_demand = [_row(1, "gcp us-central1", False)]
    narrow = display._plan_table("t", on_demand, ()).natural_width(Console(width=200)) - 5
    table = display._options_table("t", on_demand, Console(width=narrow))
    assert "$/Mtok" not in _columns_of(table) and display.SPOT_MARK not in table.caption


# --- --set and GPU names ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("override, problem", [
    ("max_step=2", "unknown key `max_step` (did you mean `max_steps`?)"),
    ("micro_batch=abc", "`micro_batch` must be a whole number, got 'abc'"),
    ("lora_dropout=2", "`lora_dropout` must be in [0, 1), got 2"),
    ("target_modules=[q_proj, qq]", "`target_modules` must be all-linear or a list drawn from"),
    ("modules_to_save=[model]", "`modules_to_save` names model, which holds other modules"),
    ("dataset_columns=3", "`dataset_columns` maps orch's names to your columns"),
])
def test_a_set_mistake_is_said_of_set_not_of_the_job_file(tmp_path, override, problem):
    result = runner.invoke(app, ["train", str(write_job(tmp_path)), "--output", str(tmp_path / "out"),
                                 "--set", override])
    assert result.exit_code == 2 and f"error: --set {override}: {problem}" in result.output, result.output
    assert "job file" not in result.output


@pytest.mark.parametrize("overrides, problem", [
    (["warmup_ratio=0.1", "warmup_steps=5"], "`warmup_steps` and `warmup_ratio` are both set"),
    (["method=full", "lora_r=8"], "`lora_r` applies to methods lora and qlora"),
])
def test_a_mistake_of_set_values_together_names_them_beside_the_file(tmp_path, overrides, problem):
    """Two --set values fine alone but not together were said of the job file (`job file 'x.yaml': bad config:
    ...`), which holds neither key."""
    job = write_job(tmp_path)
    args = [arg for value in overrides for arg in ("--set", value)]
    result = runner.invoke(app, ["train", str(job), "--output", str(tmp_path / "out"), *args])
    assert result.exit_code == 2 and f"error: job file '{job}' with {' '.join(args)}: bad config: {problem}" in \
        result.output, result.output


def test_a_job_files_own_mistake_is_still_said_of_the_file(tmp_path):
    job = write_job(tmp_path, lora_alfa=8)
    result = runner.invoke(app, ["train", str(job), "--output", str(tmp_path / "out"), "--set", "max_steps=2"])
    assert result.exit_code == 2 and f"job file '{job}': bad config: unknown key `lora_alfa`" in result.output


@pytest.mark.parametrize("typed, meant", [("H1OO", "H100 SXM"), ("RTX 4O90", "RTX 4090"), ("Hl00", "H100 SXM"),
                                          ("L4O", "L40"), ("A1OO 8OGB", "A100 80GB")])
def test_a_letter_typed_for_a_digit_gets_the_card_it_meant(typed, meant):
    """`--gpu H1OO` (letter O) got no near match, though README promises them for unknown names."""
    with pytest.raises(UserError, match=f"Did you mean: {meant}[,?]"):
        get_gpu(typed)


@pytest.mark.parametrize("name", ["foo", "lol", "Lol", "oo"])
def test_a_word_with_no_digits_is_not_read_as_one(name):
    with pytest.raises(UserError) as error:
        get_gpu(name)
    assert "Did you mean" not in str(error.value)


@pytest.mark.parametrize("option, key", [("--grad-accum", "grad_accum"), ("--optimizer", "optimizer"),
                                         ("--lora-r", "lora_r"), ("--attention", "attention"), ("--loss", "loss"),
                                         ("--loss-chunk-tokens", "loss_chunk_tokens")])
def test_estimate_help_states_each_default_a_left_out_flag_takes(option, key):
    """Only --method and --micro-batch said theirs: a user left --loss out and could not tell chunked was estimated."""
    import typer.main

    command = typer.main.get_command(app).commands["estimate"]
    param = next(p for p in command.params if option in p.opts)
    assert f"default {JOB_DEFAULTS[key]}" in param.help


def test_figures_in_a_printed_line_are_not_coloured_by_rich():
    """rich's automatic highlighting coloured `orch plan`'s heading digit run by digit run: "100,000 tokens" showed
    as 100 and 000 in bold cyan with a plain comma between."""
    for out in (display.console, display.err_console):
        assert not out.render_str("tiny: 100,000 tokens at seq 256; budget $5.00").spans


def test_a_spend_rows_name_stays_on_its_row(monkeypatch):
    """A job name edited into runs.db as `tiny\\r\\nx` split `orch spend --by job`'s row in two."""
    from orchestrator.spend import SpendRow

    monkeypatch.setattr(display, "console", Console(width=80, force_terminal=False, record=True))
    display.show_spend_rows("job", [SpendRow("tiny\r\nx [b]y[/b]", 1, 0.5, 0)], Path("home"))
    table = display.console.export_text()
    assert "tiny\\r\\nx [b]y[/b]" in table and not any(line.strip() == "x" for line in table.splitlines())


@pytest.mark.parametrize("columns", ["0", "5", "abc", "99999999999", "\u0663"])
def test_a_pane_too_narrow_for_a_table_gets_the_table_wrapped_not_a_traceback(tmp_path, columns):
    """COLUMNS=5 (a narrow tmux pane) raised rich's `Sum of ratios must be > 0` from every table, and COLUMNS=0
    printed nothing at all, help included; COLUMNS=99999999999 ran help out of memory (a traceback)."""
    env = {**os.environ, "COLUMNS": columns, "ORCH_HOME": str(tmp_path)}
    for args in (["catalog", "gpus"], ["runs"], ["--help"]):
        done = subprocess.run([sys.executable, "-m", "orchestrator.cli.entry", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip() and "Traceback" not in done.stderr, (args, done.stderr)


@pytest.mark.parametrize("hours, shown", [(None, "-"), (0.0, "0.00"), (20 / 3600, "0.0056"), (0.01, "0.010"),
                                          (0.0148, "0.015"), (0.5, "0.50"), (0.999, "1.00"), (1.0, "1.00"),
                                          (1234.5, "1,234.50"), (9.2e-06, "0.0000092"), (1e-12, "0.00000000")])
def test_a_short_runs_hours_are_not_shown_as_nought(hours, shown):
    """`orch runs` showed "0.00" hours beside a 20 s run's $0.000046."""
    from orchestrator.cli.display import hours_text

    assert hours_text(hours) == shown


def test_a_commands_help_reads_at_80_columns_as_plans_does(tmp_path):
    """rich's option panel left `orch estimate --help` a 24-column strip for its help text at 80 columns, and a
    column of its own for each `--no-` name: 115 lines. A command's help is click's plain one, as `orch plan`'s is
    argparse's; a group still lists its commands whole."""
    env = {**os.environ, "COLUMNS": "80", "ORCH_HOME": str(tmp_path)}
    shown = subprocess.run([sys.executable, "-m", "orchestrator.cli.entry", "estimate", "--help"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120).stdout
    lines = shown.splitlines()
    assert all(len(line) <= 80 for line in lines) and len(lines) < 80, shown
    assert any(line.split()[:3] == ["--grad-ckpt", "/", "--no-grad-ckpt"] for line in lines if line.strip()), shown
    assert "╭" not in shown
    listed = subprocess.run([sys.executable, "-m", "orchestrator.cli.entry", "--help"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120).stdout
    assert "Estimate peak VRAM (with its breakdown) and, with --gpu, fit and" in listed and "fit..." not in listed


@pytest.mark.parametrize("run_budget_usd, said", [
    (0.000286, "budget $0.00030 ($0.00029 for its run r-aaaaaaaa)"),  # a retry's share of what the job has left
    (0.0003, "budget $0.00030;"),
])
def test_queue_explain_says_the_jobs_budget_and_its_runs_share_where_they_differ(tmp_path, monkeypatch, run_budget_usd,
                                                                                said):
    """A job submitted with --budget 0.0003 whose third run got what was left was said to have "budget $0.00029"."""
    import time

    from orchestrator.schedule.queue import JobRecord, JobStatus
    from tests.test_runs_store import make_record

    now = time.time()
    job = JobRecord(job_id="j-aaaaaaaa", name="tiny", job_path="/x/job.yaml", job_json="{}", budget_usd=0.0003,
                    deadline_at=None, priority=0, submitted_at=now, status=JobStatus.RUNNING, run_id="r-aaaaaaaa",
                    owner=None, claimed_at=now, attempts=3, preemptions=0, decision="start_local", reason="fits",
                    updated_at=now)
    run = make_record(tmp_path, run_id="r-aaaaaaaa", budget_usd=run_budget_usd)
    console = Console(width=200, record=True)
    monkeypatch.setattr(display, "console", console)
    display.show_queue([job], explain=True, runs={run.run_id: run})
    assert said in " ".join(console.export_text().split())


def test_a_tables_caption_folds_from_the_left_as_other_text_does():
    """Centred, the plan's caption left `controller` alone in the middle of an 80-column screen."""
    table = display.Table(caption="cost also counts the last save, idle VM time before autodown and a spot jobs "
                                  "controller")
    table.add_column("GPU")
    table.add_row("A100 80GB " * 7)  # a table as wide as the plan's
    console = Console(width=80, record=True)
    console.print(table)
    lines = [line.rstrip() for line in console.export_text().splitlines() if line.strip()]
    assert lines[-1] == "jobs controller", lines  # its last words start at the left edge, not mid-screen


def test_a_running_runs_hours_and_cost_are_over_the_same_span_in_the_table_and_its_json(tmp_path, monkeypatch):
    """The table showed the earlier sessions' hours beside a live cost; then, with the live hours in the record, the
    cost priced this session twice (~$0.000074 where --json's spent_usd and `orch spend` said $0.000037)."""
    import time

    from orchestrator.cli import runs as runs_cli
    from orchestrator.runs.status import RunStatus
    from tests.test_runs_store import make_record

    record = make_record(tmp_path, run_id="r-aaaaaaaa", status=RunStatus.RUNNING, usd_per_hour=3.6, budget_usd=100.0,
                         wall_s=None, cost_usd=None, started_at=time.time() - 3600)  # a first session, an hour in
    monkeypatch.setattr(runs_cli, "refreshed_runs", lambda: [record])
    monkeypatch.setattr(display, "console", Console(width=120, record=True))
    table = CliRunner().invoke(app, ["runs"])
    (row,) = [line.split() for line in table.stdout.splitlines() if "r-aaaaaaaa" in line]
    assert row[-2:] == ["~1.00", "~$3.60"], table.stdout
    (listed,) = json.loads(CliRunner().invoke(app, ["runs", "--json"]).stdout)
    assert listed["spent_usd"] == pytest.approx(3.6, rel=1e-3) and listed["live"]["wall_s"] == pytest.approx(3600, 1)


@pytest.mark.parametrize("status, code", [("failed", 1), ("budget_stopped", 4), ("ok", 0)])
def test_following_a_run_that_has_already_ended_exits_with_its_code(status, code):
    """`orch logs RUN --follow` came a moment after the run failed, printed its log and exited 0, where the same
    command started a moment earlier exited 1: a script's result hung on a race."""
    from orchestrator.home import orch_home
    from orchestrator.launch.local import LOG_NAME
    from orchestrator.runs.status import RunStatus
    from orchestrator.runs.store import RunStore
    from tests.test_runs_store import make_record

    run_dir = orch_home() / "runs" / "r-aaaaaaaa"
    (run_dir / "output").mkdir(parents=True)
    (run_dir / LOG_NAME).write_text("step 1: loss 2.0\n", encoding="utf-8")
    RunStore().insert(make_record(run_dir, run_id="r-aaaaaaaa", status=RunStatus(status), cost_usd=0.01))
    result = CliRunner().invoke(app, ["logs", "r-aaaaaaaa", "--follow"])
    assert result.exit_code == code and "step 1: loss 2.0" in result.stdout, result.output
