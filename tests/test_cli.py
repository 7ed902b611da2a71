"""The CLI contract: JSON fields scripts rely on, and short errors with exit code 2 for bad input."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import types

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from gpu_catalog.gpus import get_gpu
from orchestrator.cli import display
from orchestrator.cli.main import app
from orchestrator.home import orch_home
from tests.conftest import REPO

runner = CliRunner()
QLORA_JOB = str(REPO / "examples" / "llama31-8b-qlora.yaml")


def invoke(*args):
    return runner.invoke(app, list(args))


def json_of(*args):
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_catalog_gpus_json():
    gpus = json_of("catalog", "gpus")
    assert {"RTX 4090", "H100 SXM"} <= {g["name"] for g in gpus}
    assert all(g["source"] for g in gpus)


def test_catalog_offers_filters_by_gpu_and_spot():
    offers = json_of("catalog", "offers", "--gpu", "a100-80gb", "--spot")
    assert offers and all(o["gpu"] == "A100 80GB" and o["spot"] for o in offers)
    assert [o["usd_per_hour"] for o in offers] == sorted(o["usd_per_hour"] for o in offers)


def test_catalog_local_lists_the_cpu_without_a_gpu():
    local = json_of("catalog", "local")
    assert local["detected"] == [] and [o["gpu"] for o in local["offers"]] == ["CPU"]


def test_catalog_local_says_a_declared_card_is_not_on_this_machine(tmp_path, monkeypatch):
    """A declared RTX 4090 was listed as a local target beside the CPU, and every plan then rejected it as absent."""
    (tmp_path / "hardware.yaml").write_text("cards:\n  - gpu: RTX 4090\n")
    monkeypatch.setenv("ORCH_HARDWARE", str(tmp_path / "hardware.yaml"))
    monkeypatch.setenv("COLUMNS", "200")
    offers = {o["gpu"]: o["present"] for o in json_of("catalog", "local")["offers"]}
    assert offers == {"RTX 4090": False, "CPU": True}
    shown = invoke("catalog", "local").stdout
    assert "RTX 4090: declared in the hardware file, not on this machine: plans take it only with `ssh_pool" in shown


@pytest.mark.parametrize("policy", ["marginal", "amortized"])
def test_catalog_locals_title_names_the_policy_its_prices_follow(policy, monkeypatch):
    """`--local-cost marginal` priced the cards at power alone under a title that said the file's `amortized`."""
    monkeypatch.setenv("COLUMNS", "200")
    shown = invoke("catalog", "local", "--local-cost", policy)
    assert shown.exit_code == 0 and f"priced {policy} (hardware file:" in shown.stdout, shown.output
    assert json_of("catalog", "local", "--local-cost", policy)["cost_policy"] == policy


def test_the_gpus_a_job_fits_on_go_from_the_least_memory_then_the_slowest():
    """The H100 SXM (79.65 GiB) came before the A100 80GB (80), and was said to be the smallest that fits where both
    do: memory is compared to the nearest GiB, then the slower card comes first."""
    from gpu_catalog.gpus import get_gpu

    fits_on = json_of("estimate", "Llama-3.2-1B", "--method", "lora", "--seq-len", "512")["fits_on"]
    assert fits_on.index("A100 80GB") < fits_on.index("H100 SXM")
    gpus = [get_gpu(name) for name in fits_on]
    assert all(round(one.vram_gib) <= round(after.vram_gib) for one, after in zip(gpus, gpus[1:], strict=False))


def test_estimate_json_contract():
    result = json_of("estimate", "Llama-3.1-8B", "--method", "qlora", "--seq-len", "2048", "--micro-batch", "1")
    assert {"vram_gib", "breakdown", "params", "trainable_params", "smallest_gpu_that_fits"} <= set(result)
    assert result["vram_gib"] == pytest.approx(sum(result["breakdown"].values()), abs=0.01)
    with_gpu = json_of("estimate", "Llama-3.1-8B", "--method", "qlora", "--seq-len", "2048", "--micro-batch", "1",
                       "--grad-ckpt", "--gpu", "RTX4090")
    assert with_gpu["fits"] is True and with_gpu["tokens_per_s"] > 0
    assert with_gpu["basis"] in ("analytic", "published", "measured")


def test_estimate_auto_fit_reports_a_choice():
    result = json_of("estimate", "Llama-3.1-8B", "--method", "lora", "--micro-batch", "8", "--no-grad-ckpt", "--gpu",
                     "A100 80GB", "--auto-fit")
    fitted = result["auto_fit"]  # numbers a script reads, not a sentence
    assert fitted["micro_batch"] * fitted["grad_accum"] == 8 and fitted["grad_ckpt"] is False
    assert fitted["vram_gib"] == result["vram_gib"] <= result["usable_vram_gib"] and fitted["tokens_per_s"] > 0


def test_estimate_auto_fit_describes_the_fitted_job_throughout():
    """Its JSON said `fits: false` and the given job's 100+ GiB, with the fitted choice only in a sentence."""
    result = json_of("estimate", "Llama-3.1-8B", "--method", "qlora", "--micro-batch", "8", "--gpu", "RTX 4090",
                     "--auto-fit")
    assert result["fits"] is True and result["vram_gib"] <= result["usable_vram_gib"]
    assert result["auto_fit_from"] == {"micro_batch": 8, "grad_accum": 1, "grad_ckpt": "auto"}
    assert result["micro_batch"] * result["settings"]["grad_accum"] == 8  # the effective batch kept


def test_plan_json_contract():
    plan = json_of("plan", QLORA_JOB, "--budget", "20")
    assert plan["chosen"] == plan["options"][0]
    option_keys = {"gpu", "provider", "region", "spot", "usd_per_hour", "vram_gib", "tokens_per_s", "est_hours",
                   "est_cost_usd"}
    assert option_keys <= set(plan["chosen"])
    assert all(option_keys | {"reason"} <= set(r) for r in plan["rejected"] if r["kind"] != "memory")
    assert all({"gpu", "provider", "usd_per_hour", "vram_gib", "reason"} <= set(r) for r in plan["rejected"])
    assert all(o["est_cost_usd"] <= 20 for o in plan["options"])


def test_plan_says_a_launch_may_pass_over_its_spot_choice():
    """plan chose a spot offer that `orch launch` then passed over (no storage cloud enabled), unsaid."""
    spot_allowed = json_of("plan", QLORA_JOB, "--budget", "50")
    said = any("passes over spot offers" in note for note in spot_allowed["notes"])
    assert said == bool(spot_allowed["chosen"]["spot"] and spot_allowed["chosen"]["provider"] != "local")
    assert not any("spot" in note for note in json_of("plan", QLORA_JOB, "--budget", "50", "--no-spot")["notes"])


def test_plan_table_for_people():
    result = invoke("plan", QLORA_JOB, "--budget", "20", "--deadline", "8", "--objective", "time")
    assert result.exit_code == 0, result.output
    assert "chosen:" in result.stdout and "options" in result.stdout


def test_plan_respects_providers():
    plan = json_of("plan", QLORA_JOB, "--budget", "100", "--providers", "aws,local")
    assert {o["provider"] for o in plan["options"]} <= {"aws", "local"}


@pytest.mark.parametrize("args, message", [
    (["estimate", "Llama-3.1-8B", "--gpu", "RTX 4070"], "unknown GPU 'RTX 4070'. Did you mean"),
    (["estimate", "Lama-3.1-8B"], "unknown model 'Lama-3.1-8B'. Did you mean"),
    (["estimate", "Llama-3.1-8B", "--seq-len", "0"], "--seq-len must be above 0"),
    (["estimate", "Llama-3.1-8B", "--method", "dpo"], "--method must be one of"),
    (["plan", QLORA_JOB, "--budget", "-5"], "--budget must be above 0"),
    (["plan", QLORA_JOB, "--budget", "0"], "--budget must be above 0"),
    (["plan", "missing.yaml", "--budget", "5"], "job file 'missing.yaml' does not exist"),
    (["catalog", "offers", "--gpu", "A100-90"], "unknown GPU"),
    (["plan", QLORA_JOB, "--budget", "5", "--local-cost", "free"], "--local-cost must be one of amortized, marginal"),
    (["catalog", "local", "--local-cost", "free"], "--local-cost must be one of amortized, marginal"),
])
def test_bad_input_exits_2_with_a_short_message(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_a_misspelt_dataset_file_gets_the_near_names_beside_it(tmp_path):
    """Job files, models, GPUs and providers got a `did you mean`; a dataset one letter off got none."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tiny_instruct.jsonl").write_text((REPO / "examples" / "data" / "tiny_instruct.jsonl")
                                                            .read_text())
    job = tmp_path / "job.yaml"
    job.write_text((REPO / "examples" / "tiny.yaml").read_text().replace("tiny_instruct.jsonl", "tiny_instruc.jsonl"))
    result = invoke("plan", str(job), "--budget", "1")
    assert result.exit_code == 2 and " ".join(result.stderr.split()).endswith(
        f"folder, {tmp_path}): did you mean `data/tiny_instruct.jsonl`?"), result.stderr


def test_options_after_a_double_dash_are_said_to_go_before_it(tmp_path):
    """`orch plan -- JOB --budget 5`: argparse read the options as more files and said --budget was missing."""
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.entry", "plan", "--", QLORA_JOB, "--budget", "5"],
                          cwd=REPO, env={**os.environ, "ORCH_HOME": str(tmp_path)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: after `--` comes the job file alone, and --budget "
                                                           "5 follows it: put the options before `--`"), done.stderr


def test_malformed_yaml_and_unknown_keys(tmp_path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model: Llama-3.1-8B\nmethod: [lora\n")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("model: Llama-3.1-8B\nmethod: lora\nseq_len: 512\ntrain_tokens: 1000\nbudget: 5\n")
    for path, message in ((bad_yaml, "is not valid YAML"), (unknown, "unknown key `budget`")):
        result = invoke("plan", str(path), "--budget", "5")
        assert result.exit_code == 2 and message in result.stderr


def test_a_plan_tables_title_says_how_to_see_more_from_the_command_that_shows_it():
    """launch's tables said "--top N shows more", an option launch refuses as plan's."""
    planned = " ".join(invoke("plan", QLORA_JOB, "--budget", "20", "--top", "2").stdout.split())
    assert "2 shown (--top N shows more)" in planned, planned
    launched = " ".join(invoke("launch", QLORA_JOB, "--budget", "20").stdout.split())  # no --yes: nothing launched
    assert "5 shown (`orch plan --top N` shows more)" in launched and "(--top N" not in launched, launched


def test_a_plan_tables_title_counts_rows_only_where_every_row_is_shown():
    """"43 rejected, 42 rows (regions alike share one), 5 shown" puzzled a first user over five rows, and folded
    mid-phrase at 80 columns; where every row is shown, why they are fewer than the targets is still said."""
    more = "`orch plan --top N` shows more"
    assert display._table_title("43 rejected", 43, 42, 5, more) == f"43 rejected, 5 shown ({more})"
    assert display._table_title("43 rejected", 43, 42, 50, more) == "43 rejected in 42 rows (regions alike share one)"
    assert display._table_title("3 options", 3, 3, 5, more) == "3 options"


def test_the_rejected_table_shows_the_limits_misses_first_the_nearest_first():
    """With no target meeting a deadline, the five rejected rows shown were an absent card, the CPU and a T4; the
    deadline's misses, the reason, came after them."""
    from orchestrator.cli.display import REJECTED_FIRST

    planned = json_of("plan", QLORA_JOB, "--budget", "20", "--deadline", "2h", "--top", "3")
    shown = " ".join(invoke("plan", QLORA_JOB, "--budget", "20", "--deadline", "2h", "--top", "3").stdout.split())
    misses = sorted((r for r in planned["rejected"] if r["kind"] == "deadline"), key=lambda r: r["est_hours"])
    assert REJECTED_FIRST[0] == "deadline" and misses
    assert shown.split(" rejected")[1].split(" why ")[1].lstrip("─ ").startswith(f"{misses[0]['gpu']} "), shown


def test_a_budget_no_target_meets_names_the_cheapest_at_its_rows_cost():
    """The cheapest was said at $2.57 where its plan row said $2.56: its cost is as the row shows it, the budget to
    give rounded up so that it takes the row in."""
    import re

    from gpu_catalog.units import usd_text

    result = invoke("plan", QLORA_JOB, "--budget", "0.01")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "no target meets the $0.010 budget: the cheapest is" in message and "Raise --budget to at least" in message
    cheapest = json.loads(invoke("plan", QLORA_JOB, "--budget", "1000", "--json").stdout)["chosen"]["est_cost_usd"]
    assert f"at {usd_text(cheapest)} for" in message, message
    enough = re.search(r"at least ([0-9.,]+)[ ,]", message)[1]
    assert invoke("plan", QLORA_JOB, "--budget", enough).exit_code == 0


def test_a_deadline_no_target_meets_at_any_price_asks_for_time_not_money():
    """A budget raise cannot help when nothing finishes in time; when something does, its price is what to raise
    the budget to."""
    fastest = min(json.loads(invoke("plan", QLORA_JOB, "--budget", "1000", "--json").stdout)["options"],
                  key=lambda o: o["est_hours"])["est_hours"]
    late = invoke("plan", QLORA_JOB, "--budget", "1000", "--deadline", str(fastest / 2))
    message = " ".join(late.stderr.split())
    assert late.exit_code == 2 and "deadline at any price" in message and "Extend --deadline" in message
    tight = invoke("plan", QLORA_JOB, "--budget", "0.01", "--deadline", str(fastest * 2))
    message = " ".join(tight.stderr.split())
    assert tight.exit_code == 2 and "the cheapest in time is" in message and "Raise --budget" in message
    hours = float(message.split(" for ")[1].split(" h.")[0])
    assert hours <= fastest * 2


def test_a_job_no_target_holds_is_said_of_the_targets_planned(tmp_path, monkeypatch):
    """Under `launch --target local` (plan's `--providers local`) the CPU was "the largest" GPU the job fits none
    of, and with more RAM than any GPU has it was named the nearest miss among cloud GPUs."""
    import dataclasses

    from gpu_catalog import local

    job = tmp_path / "huge.yaml"
    job.write_text("model: Llama-3.1-70B\nmethod: full\nseq_len: 8192\ntrain_tokens: 1000000\n")
    result = invoke("plan", str(job), "--budget", "100000", "--providers", "local")
    said = " ".join(result.stderr.split())
    assert result.exit_code == 2 and said.startswith("error: the job fits no target here (does not fit: needs "), said
    assert "GiB on CPU, the largest here)" in said
    real = local.cpu_gpu  # a machine with more RAM than any GPU has
    monkeypatch.setattr(local, "cpu_gpu", lambda cores=None: dataclasses.replace(real(cores), vram_gib=400.0))
    result = invoke("plan", str(job), "--budget", "100000")
    said = " ".join(result.stderr.split())
    assert result.exit_code == 2 and "the job fits no GPU (does not fit: needs " in said and "CPU" not in said, said


def test_a_job_that_fits_nowhere_says_so(tmp_path):
    job = tmp_path / "huge.yaml"
    job.write_text("model: Llama-3.1-70B\nmethod: full\nseq_len: 8192\ntrain_tokens: 1000000\n")
    result = invoke("plan", str(job), "--budget", "100000")
    said = " ".join(result.stderr.split())
    assert result.exit_code == 2 and "fits no GPU" in said and "on B200, the largest offered)" in said  # nearest miss
    # a lighter method is offered only where it fits the largest GPU, with what it needs there
    offered = re.search(r"Try (.*), a shorter seq_len", said)
    assert offered and re.fullmatch(r"(method (lora|qlora) \(\d+\.\d GiB there\)( or )?)+", offered[1]), said
    assert all(float(gib) <= 179.06 for gib in re.findall(r"\(([\d.]+) GiB there\)", said)), said
    for text in ("model: Llama-3.1-70B\nmethod: qlora\nseq_len: 131072\ntrain_tokens: 1000000\n",
                 "model: Llama-3.1-405B\nmethod: full\nseq_len: 8192\ntrain_tokens: 1000000\n"):
        job.write_text(text)  # "Try method qlora" was told to a QLoRA job, and to a 405B that QLoRA does not fit
        said = " ".join(invoke("plan", str(job), "--budget", "100000").stderr.split())
        assert "fits no GPU" in said and "Try a shorter seq_len" in said, said


def test_refresh_copies_an_offline_catalog(tmp_path, monkeypatch):
    from tests.conftest import SHARED_CATALOG

    result = invoke("catalog", "refresh", "--from", str(SHARED_CATALOG))
    assert result.exit_code == 0, result.output
    copied = tmp_path / "home" / ".sky" / "catalogs" / "v8" / "lambda" / "vms.csv"
    assert copied.read_bytes() == (SHARED_CATALOG / "lambda" / "vms.csv").read_bytes()
    assert invoke("catalog", "refresh", "--from", str(tmp_path / "nope")).exit_code == 2


def test_a_broken_catalog_file_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "v8" / "lambda").mkdir(parents=True)
    (tmp_path / "v8" / "lambda" / "vms.csv").write_text("name,cost\nx,1\n")
    monkeypatch.setenv("ORCH_SKY_CATALOGS", str(tmp_path / "v8"))
    from gpu_catalog.offers import cloud_offers

    cloud_offers.cache_clear()
    result = invoke("plan", QLORA_JOB, "--budget", "20")
    assert result.exit_code == 2 and "is not a SkyPilot v8 catalog file" in " ".join(result.stderr.split())


@pytest.mark.parametrize("columns, shown", [(80, False), (160, True)])
def test_the_source_column_shows_where_it_fits_and_the_caption_says_where_it_is_otherwise(monkeypatch, columns,
                                                                                          shown):
    """A row's source is a sentence: folded into an 80-column table it took ten lines a GPU. (The console's width
    is fixed here: rich reads COLUMNS once, when the console is made.)"""
    monkeypatch.setattr(display, "console", Console(width=columns))
    result = CliRunner().invoke(app, ["catalog", "gpus"])
    assert result.exit_code == 0 and ("whitepaper" in result.stdout) is shown
    assert ("each row's source: --json" in result.stdout) is not shown
    assert max(len(line) for line in result.stdout.splitlines()) <= columns


def test_a_table_its_edges_alone_push_past_the_terminal_drops_them_and_keeps_its_title_on_one_line():
    def lines(title, cells, width):
        table = display.Table(title=title)
        for _ in cells:
            table.add_column("x")
        table.add_row(*cells)
        console = Console(width=width, record=True)
        console.print(table)
        return console.export_text().splitlines()

    assert lines("t", ["a" * 38, "b" * 39], 80)[-2:] == ["a" * 38 + "  " + "b" * 39, ""]  # 81 with edges: cells whole
    assert lines("t", ["a" * 37, "b" * 38], 80)[-2] == " " + "a" * 37 + "  " + "b" * 38 + " "  # fits: edges kept
    assert lines("Peak memory on any bf16 GPU", ["c", "1"], 80)[0].strip() == "Peak memory on any bf16 GPU"


def run_at(monkeypatch, columns, *args):
    """stdout of a command in a terminal `columns` wide."""
    monkeypatch.setattr(display, "console", Console(width=columns))
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= columns and "…" not in result.stdout
    return result.stdout


def test_a_plans_head_says_when_its_tokens_are_padded_rows(monkeypatch):
    """An unpacked job's amount is its rows at seq_len, padding in: "16,564,224 tokens" of 203k tokens of data read
    as 80x the data. A packed job's tokens are data."""
    chat = " ".join(run_at(monkeypatch, 120, "plan", str(REPO / "examples" / "tiny-chat.yaml"), "--budget", "1",
                           "--providers", "local").split())
    assert re.search(r"lora, [0-9,]+ token slots at seq 256 \([0-9,]+ of them data\);", chat), chat[:200]
    packed = run_at(monkeypatch, 120, "plan", str(REPO / "examples" / "tiny.yaml"), "--budget", "1", "--providers",
                    "local")
    job = yaml.safe_load((REPO / "examples" / "tiny.yaml").read_text())
    step_tokens = job["micro_batch"] * job.get("grad_accum", 1) * job["seq_len"]
    whole = math.ceil(job["train_tokens"] / step_tokens) * step_tokens  # `train_tokens: 1` was priced as 1 token
    said = (f"lora, {whole:,} tokens ({whole // step_tokens} whole steps for the {job['train_tokens']:,} asked) at "
            "seq 256;")
    assert said in " ".join(packed.split()), packed[:200]


def test_a_plans_table_says_when_its_cost_counts_more_than_hours_at_the_price(monkeypatch):
    """`cost` checked by hand as hours x $/h was up to 67% short (a VM's idle hour, a spot run's controller), and
    nothing in the table said why."""
    said = "cost also counts the last save, idle VM time before autodown and a spot jobs controller"
    clouds = run_at(monkeypatch, 80, "plan", QLORA_JOB, "--budget", "20", "--top", "5")
    assert said in " ".join(clouds.split())
    on_demand = " ".join(run_at(monkeypatch, 80, "plan", QLORA_JOB, "--budget", "20", "--top", "5",
                                "--no-spot").split())  # no controller among these options: none named
    assert "cost also counts the last save and idle VM time before autodown" in on_demand
    assert "controller" not in on_demand
    here = run_at(monkeypatch, 80, "plan", str(REPO / "examples" / "tiny.yaml"), "--budget", "1", "--providers",
                  "local")
    assert "cost also counts" not in here


@pytest.mark.parametrize("columns", [80, 120])
def test_simulate_calibrate_runs_and_estimate_read_whole_in_80_columns(monkeypatch, tmp_path, columns):
    """Every policy's row is told apart, the fitted values are a line a GPU (not a dict's repr), no runs is one
    sentence, and a table's title is not broken across lines."""
    from tests.bench_fixtures import synthetic_rows

    out = run_at(monkeypatch, columns, "simulate", "--trace", str(REPO / "benchmarks" / "traces" / "team-week.csv"),
                 "--local", "1x RTX4090", "--policy", "all")
    assert all(f" {policy} " in out for policy in ("hybrid", "local-only", "cloud-only", "cloud-spot"))
    assert "total $  local $  cloud $" in out
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in synthetic_rows()))
    out = run_at(monkeypatch, columns, "calibrate", "--results", str(results), "--out", str(tmp_path / "c.json"))
    assert "efficiency H100 SXM (share of dense peak at full load): lora 0.52, qlora 0.31\n" in out and "{" not in out
    assert "memory cuda (measured, 8 runs on H100 SXM): context_gib 1.4, slack_fraction 0.25" in " ".join(out.split())
    assert ("meta-llama/Llama-3.1-8B qlora seq 2048 x2 ckpt on H100 SXM" in out) is (columns == 120)
    assert out.count("meta-llama/Llama-3.1-8B qlora seq ") == 4  # two points, in the tokens/s and the VRAM table
    out = run_at(monkeypatch, columns, "runs")  # the home named: a mistyped ORCH_HOME is a new, empty one
    assert " ".join(out.split()).endswith(": `orch launch JOB.yaml --budget USD` starts one.")
    assert "".join(out.split()).startswith("Norunsyetin" + "".join(str(orch_home()).split()) + ":"), out
    out = run_at(monkeypatch, columns, "estimate", "orch/tiny-llama", "--method", "lora", "--seq-len", "128")
    assert "Peak memory on any bf16 GPU \n" in out


@pytest.mark.parametrize("job", ["mistral-7b-lora.yaml", "llama31-8b-qlora.yaml", "tiny.yaml"])
def test_every_plan_option_is_one_line_in_80_columns(monkeypatch, job):
    """A long location (vast's `Taichung City, TW, AS`, `nebius eu-north1 spot`) folded rows onto three lines: the
    columns that follow from the others make room, and the caption says where they are."""
    out = run_at(monkeypatch, 80, "plan", str(REPO / "examples" / job), "--budget", "100")
    lines = out.splitlines()
    rule = next(n for n, line in enumerate(lines) if "──" in line)
    rows = lines[rule + 1:next(n for n in range(rule, len(lines)) if not lines[n].strip())]
    assert len(rows) == 10 and all(line.split()[0].isdigit() for line in rows), out
    wide = run_at(monkeypatch, 160, "plan", str(REPO / "examples" / job), "--budget", "100")
    assert "$/Mtok" in wide and "--json, or a terminal of" not in wide


@pytest.mark.parametrize("args, message", [
    (["--budget", "20", "--bud", "3"], "error: No such option: --bud (Possible options: --budget)"),
    (["--budget", "20", "--budget", "3"], "error: --budget given twice, as 20 and 3: give it once"),
    (["--budget", "20", "--objective", "cost", "--objective=time"], "--objective given twice, as cost and time"),
    (["--budget", "20", "--spot", "--no-spot"], "argument --no-spot: not allowed with argument --spot"),
])
def test_plan_takes_no_abbreviated_flag_nor_one_flag_with_two_values(args, message):
    """argparse took `--bud 3` for `--budget 3` and kept the last of two values: both planned with $3, unsaid."""
    result = invoke("plan", QLORA_JOB, *args)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert json_of("plan", QLORA_JOB, "--budget", "20", "--budget", "20.0")["chosen"]  # the same value twice: fine


@pytest.mark.parametrize("args, message", [
    (["--budjet", "20"], "error: No such option: --budjet (Possible options: --budget, --objective); see"),
    (["--budget", "20", "--topp", "3"], "error: No such option: --topp (Possible options: --top); see"),
    (["--topp=3", "--budget", "20"], "error: No such option: --topp (Possible options: --top); see"),
    (["--budget", "20", "--colour"], "error: No such option: --colour; see"),
    (["--budget", "20", "--json=maybe"], "error: --json takes no value, or one of true, false, yes, no, on, off, 1, "
                                         "0: got 'maybe'; see `orch plan --help`."),
])
def test_plan_says_an_unknown_option_first_with_the_nearest_ones(args, message):
    """`--budjet 20` read "the following arguments are required: --budget" (argparse checks the required flag
    first) and `--topp 3` "unrecognized arguments" with no hint, where every typer command names the near options."""
    result = invoke("plan", QLORA_JOB, *args)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(message), result.stderr
    negative = invoke("plan", QLORA_JOB, "--budget", "20", "--deadline", "-1")  # a value, not an option
    assert negative.exit_code == 2 and "--deadline must be above 0" in negative.stderr


def test_plan_help_names_providers_that_have_offers():
    """`--providers local,lambda` was the example, and lambda has no offers in the table orch ships (only in a
    SkyPilot catalog, as the tests' own): the example planned nothing there for a new user."""
    from gpu_catalog.offers import reference_offers

    example = invoke("plan", "--help").stdout.split("(e.g. ")[1].split(")")[0]
    assert set(example.split(",")) <= {"local"} | {o.provider for o in reference_offers()}, example


def test_a_folded_summary_line_goes_on_under_its_text(monkeypatch):
    """`chosen:`, `spend:` and `data:` fold on an 80-column terminal: the rest went back to the first column, where
    it read as a line of its own."""
    lines = run_at(monkeypatch, 80, "plan", QLORA_JOB, "--budget", "20").splitlines()
    for label in ("chosen: ", "  spend: ", "data: "):
        n = next(n for n, line in enumerate(lines) if line.startswith(label))
        assert lines[n + 1].startswith(" " * len(label)) and lines[n + 1].strip(), lines[n:n + 2]


def test_a_summary_line_is_whole_in_a_pipe(monkeypatch):
    """A log or a pipe got `chosen: ... (analytic` and `throughput)` on the next line, folded at 80 columns as a
    terminal would: a script grepping for the line got half of it."""
    monkeypatch.setenv("COLUMNS", "80")
    lines = invoke("plan", QLORA_JOB, "--budget", "20").stdout.splitlines()
    (chosen,) = [n for n, line in enumerate(lines) if line.startswith("chosen: ")]
    assert len(lines[chosen]) > 80 and lines[chosen + 1].startswith("  spend: "), lines[chosen:chosen + 2]


@pytest.mark.parametrize("args, message", [
    (["submit", QLORA_JOB, "--budget", "1", "--budget", "500"], "--budget given twice, as 1 and 500: give it once"),
    (["launch", QLORA_JOB, "--budget=1", "--budget", "2", "--dry-run"], "--budget given twice, as 1 and 2"),
    (["launch", QLORA_JOB, "--budget", "1", "--spot", "--no-spot"], "--spot and --no-spot both given: give one"),
    (["spend", "--by", "month", "--by", "job"], "--by given twice, as month and job"),
    (["catalog", "offers", "--gpu", "A100", "--gpu", "H100"], "--gpu given twice, as A100 and H100"),
    (["scheduler", "run", "--once", "--interval", "3", "--interval", "4"], "--interval given twice, as 3 and 4"),
])
def test_no_command_takes_one_option_with_two_values(tmp_path, monkeypatch, args, message):
    """click keeps the last of two values silently: `orch submit job --budget 1 ... --budget 500` queued a $500 job.
    Every command refuses it, as `orch plan` does; the same value twice is harmless."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = invoke(*args)
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    same = invoke("catalog", "offers", "--gpu", "A100", "--gpu", "A100", "--json")
    assert same.exit_code == 0, same.output


def test_a_plan_in_a_40_column_pane_keeps_each_gpu_name_whole(monkeypatch, tmp_path):
    """At 40 columns the GPU column was squeezed to one letter a line (C/P/U, T/4): the batch, memory and cost go
    first, and the caption says where they are."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    monkeypatch.setattr(display, "console", Console(width=40))
    result = invoke("plan", "examples/llama31-8b-qlora.yaml", "--budget", "20", "--top", "4")
    out = result.stdout
    rows = [line.split() for line in out.splitlines() if line.split() and line.split()[0] in ("1", "2", "3", "4")]
    assert result.exit_code == 0 and all(len(line) <= 40 for line in out.splitlines() if "│" in line or "─" in line)
    assert len(rows) >= 4 and all(len(row[1]) > 2 for row in rows[:4]), out  # the options, then the rejected
    assert "batch, GiB and cost: --json" in " ".join(out.split()), out


def test_names_stay_whole_in_80_columns(monkeypatch, tmp_path):
    """`meta-llama/Llama-3.2-1B` folded every 10 characters in `orch catalog models` (three names, it read); the
    columns a terminal lacks room for go instead, and the caption says where they are."""
    from gpu_catalog.models import load_models

    out = run_at(monkeypatch, 80, "catalog", "models")
    assert {m.name for m in load_models()} <= {line.split()[0] for line in out.splitlines() if line.split()}, out
    header = next(line for line in out.splitlines() if "params B" in line)
    assert "head_dim" not in header and "head_dim, inter and layers: --json, or a terminal of" in out
    wide = run_at(monkeypatch, 160, "catalog", "models")
    assert "head_dim" in next(line for line in wide.splitlines() if "params B" in line)


def test_catalog_offers_of_a_family_lists_every_size():
    """`--gpu A100` listed the 40 GB card alone, hiding the 80 GB offers a plan picks first."""
    family = {row["gpu"] for row in json_of("catalog", "offers", "--gpu", "A100")}
    assert family == {"A100 40GB", "A100 80GB"}
    assert {row["gpu"] for row in json_of("catalog", "offers", "--gpu", "a100-80gb")} == {"A100 80GB"}


def test_the_count_of_dropped_offers_is_of_those_asked_for():
    """`--gpu 4090` said 4 offers were dropped as implausible, and `--dropped` then found none: they were A100s."""
    for flags in ([], ["--gpu", "A100"], ["--gpu", "4090"], ["--spot"], ["--providers", "aws"]):
        dropped = len(json_of("catalog", "offers", "--dropped", *flags))
        footer = invoke("catalog", "offers", *flags).stdout
        assert (f"{dropped} offer" in footer) == bool(dropped), (flags, dropped, footer[-300:])
        assert ("(add --dropped to list them)" in footer) == bool(dropped), footer[-300:]  # the filters kept
        assert ("dropped" in footer) == bool(dropped), flags


def test_a_named_provider_without_offers_is_said_not_silently_dropped():
    result = invoke("plan", QLORA_JOB, "--budget", "20", "--providers", "aws,paperspace", "--json")
    assert result.exit_code == 0, result.output
    assert "note: --providers paperspace: no offers in the catalogs here" in result.stderr
    assert json.loads(result.stdout)["chosen"]["provider"] == "aws"


def test_a_plan_of_a_job_without_data_says_a_run_needs_some(tmp_path):
    """It planned in silence, then launch and train refused it: the plan says so where it shows the data."""
    job = tmp_path / "no-data.yaml"
    job.write_text("model: orch/tiny-llama\nmethod: lora\nseq_len: 128\ntrain_tokens: 10000\n")
    result = invoke("plan", str(job), "--budget", "1")
    assert result.exit_code == 0 and "data: none named" in result.stdout and "need `dataset: PATH`" in \
        " ".join(result.stdout.split())


def test_a_plan_past_the_models_context_notes_it_and_still_plans(tmp_path):
    job = tmp_path / "long.yaml"
    text = (REPO / "examples" / "llama31-8b-qlora.yaml").read_text(encoding="utf-8")
    job.write_text(text.replace("meta-llama/Llama-3.1-8B", "meta-llama/Llama-2-7b-hf"), encoding="utf-8")
    within = invoke("plan", str(job), "--budget", "100", "--json")
    job.write_text(job.read_text(encoding="utf-8").replace("seq_len: 2048", "seq_len: 8192"), encoding="utf-8")
    past = invoke("plan", str(job), "--budget", "100", "--json")
    assert within.exit_code == past.exit_code == 0
    assert "context" not in within.stderr
    assert "note: seq_len 8192 is past meta-llama/Llama-2-7b-hf's 4096-token context" in " ".join(past.stderr.split())
    assert json.loads(past.stdout)["options"]  # stdout stays the JSON a script reads
    assert not any("context" in note for note in json.loads(within.stdout)["notes"])
    assert "4096-token context" in json.loads(past.stdout)["notes"][0]


def test_a_jobs_cpu_threads_past_this_machines_cores_is_noted_where_the_cpu_is_planned(tmp_path):
    """The CPU was planned on the cores there are, and nothing said the job's cpu_threads was more; estimate said
    it. A plan with no CPU in it (the providers given) says nothing."""
    import os

    cores = os.cpu_count() or 1
    job = tmp_path / "threads.yaml"
    job.write_text((REPO / "examples" / "tiny.yaml").read_text(encoding="utf-8").replace(
        "cpu_threads: 1", f"cpu_threads: {cores + 1}").replace("data/", f"{REPO / 'examples' / 'data'}/"))
    planned = invoke("plan", str(job), "--budget", "5", "--json")
    assert planned.exit_code == 0, planned.output
    said = f"the job's cpu_threads {cores + 1} is more than this machine's {cores} CPU cores"
    assert any(note.startswith(said) for note in json.loads(planned.stdout)["notes"]), planned.stderr
    cloud = invoke("plan", str(job), "--budget", "5", "--json", "--providers", "lambda")
    assert not any("cpu_threads" in note for note in json.loads(cloud.stdout)["notes"]), cloud.stderr


def test_the_trainers_last_line_says_its_cost_is_this_sessions_and_fits_80_columns():
    """After a resume the trainer's `$0.00072` sat two lines above orch's `cost $0.00080`: the trainer meters only
    its own process, orch the run's every session from its launch. The trainer's line now says whose it is, and it
    folded past 150 characters with the metrics path on it."""
    from pathlib import Path

    from trainer.__main__ import summary_line

    result = {"status": "preempted", "steps": 12345, "train_tokens": 123_456_789, "tokens_per_s": 123_456.0,
              "eval_perplexity": 888.01, "cost_usd": 0.00072}
    lines = summary_line(result, Path("out")).splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "123,456 tok/s and $0.00072 this session" in " ".join(lines) and lines[-1] == "metrics: out/metrics.json"


def test_the_trainers_last_line_says_when_its_perplexity_was_measured():
    """A run stopped before its first eval after training showed the untrained model's perplexity (step 0's) as its
    result."""
    from pathlib import Path

    from trainer.__main__ import summary_line

    def said(curve, steps=10):
        result = {"status": "budget_stopped", "steps": steps, "eval_curve": curve,
                  "eval_perplexity": math.exp(curve[-1][1])}
        return " ".join(summary_line(result, Path("out")).split())

    assert "eval perplexity 20.09 (before training) metrics:" in said([[0, 3.0]])
    assert "eval perplexity 20.09 (at step 5) metrics:" in said([[0, 4.0], [5, 3.0]])
    assert "eval perplexity 20.09 metrics:" in said([[0, 4.0], [10, 3.0]])


def test_a_provider_left_out_by_providers_is_one_rejected_row():
    """`--providers local` filled the rejected table with one cloud's GPUs, each `provider aws not allowed`."""
    result = CliRunner().invoke(app, ["plan", str(REPO / "examples" / "tiny.yaml"), "--budget", "1", "--providers",
                                      "local"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "not allowed (allowed: local)" in line]
    assert rows and all(line.split()[:2] == ["every", "GPU"] for line in rows)
    assert len(rows) == len({line.split()[2] for line in rows})  # one per provider


def terminal(monkeypatch, columns=80, err=False):
    """A console that is a terminal `columns` wide, in place of display's stdout (or stderr) one."""
    monkeypatch.setattr(display, "err_console" if err else "console",
                        Console(width=columns, force_terminal=True, stderr=err))


def test_a_plain_line_wider_than_the_terminal_folds_at_spaces_and_a_pipe_gets_it_whole(monkeypatch):
    """`no offer matches ...` (86 columns), `orch submit`'s `queued ...; no scheduler is running` (95) and the
    scheduler's decisions (141) ran past 80 columns, where the terminal cut words in two and went on in the first
    column; a pipe or a log keeps one line a message, to grep."""
    args = ("catalog", "offers", "--gpu", "B200", "--spot", "--provider", "local")
    sentence = "no offer matches --gpu and --spot and --providers: `orch catalog offers` lists them all"
    assert invoke(*args).stdout == sentence + "\n"  # not a terminal: whole
    terminal(monkeypatch)
    result = invoke(*args)
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and len(lines) == 2 and all(len(line) <= 80 for line in lines), lines
    assert lines[1].startswith("  ") and " ".join(result.stdout.split()) == sentence and "\x1b" not in result.stdout


def test_a_folded_line_keeps_its_indent_and_its_words_whole(monkeypatch):
    """An indented line's later lines go in further than it; a path wider than the terminal stays whole, to copy,
    and a hyphenated name is never cut at a hyphen."""
    terminal(monkeypatch, columns=40, err=True)
    path = "/a/" + "very-long-folder/" * 4 + "run"
    name = "llama31-8b-qlora-with-a-long-name"
    display.err_console.begin_capture()
    display.say(f"  output: {path} and the name {name} too", err=True)
    lines = display.err_console.end_capture().splitlines()
    assert lines == ["  output:", f"    {path}", "    and the name", f"    {name}", "    too"], lines


def test_the_plan_header_says_the_budget_as_the_error_line_does():
    """The header said `budget $1e-05` above `error: no target meets the $0.000010 budget`."""
    result = invoke("plan", QLORA_JOB, "--budget", "0.00001")
    assert result.exit_code == 2 and "the $0.000010 budget" in result.stderr, result.output
    assert "budget $0.000010," in " ".join(result.stdout.split()) and "e-05" not in result.stdout


def test_one_point_is_a_point(monkeypatch):
    """`orch bench` titled its table `1 points of ...` and `orch calibrate` said `over 1 points`."""
    monkeypatch.setattr(display, "console", Console(width=120, record=True))
    display.show_bench([{"config": {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64}, "gpu": "CPU",
                         "status": "ok", "tokens_per_s": 100.0}])
    display.show_calibration({"calibration": "c.json", "sources": ["r.jsonl"], "rows_used": 1, "rows": 1,
                              "speed_rows_left_out": 0, "efficiency": {}, "memory": {}, "memory_basis": {},
                              "method_efficiency": {}, "method_efficiency_before": {}, "memory_before": {},
                              "at_bounds": [], "points": [],
                              "in_sample": {"CPU": {"median_abs_error": 0.1, "points": 1, "within_10": 1.0,
                                                    "within_20": 1.0}}})
    said = display.console.export_text()
    assert "1 point of orch/tiny-llama on CPU" in said and "over 1 point," in said, said


@pytest.mark.parametrize(("args", "said"), [
    (["runs", "--export", ""], "--export is empty: give a file name"),
    (["bench", ""], "the sweep argument is empty: give a sweep file"),
    (["bench", QLORA_JOB, "--out", " "], "--out is empty: give a file name"),
    (["bench", QLORA_JOB, "--db", ""], "--db is empty: give a file name"),
    (["calibrate", "--out", ""], "--out is empty: give a file name"),
    (["calibrate", "--results", QLORA_JOB, "--results", ""], "--results is empty: give a file name"),
    (["report", "--out", "rp", "--job", ""], "--job is empty: give a job file"),
    (["report", "--out", "rp", "--trace", ""], "--trace is empty: give a trace file"),
    (["report", "--out", "rp", "--db", ""], "--db is empty: give a file name"),
    (["import", ""], "the config argument is empty: give a config file"),
    (["import", QLORA_JOB, "--out", ""], "--out is empty: give a file name"),
    (["catalog", "refresh", "--from", ""], "--from is empty: give a catalog folder"),
    (["launch", "", "--budget", "1", "--dry-run"], "the job argument is empty: give a job file"),
    (["launch", QLORA_JOB, "--budget", "1", "--dry-run", "--out", ""], "--out is empty: give a task file name"),
    (["train", ""], "the config argument is empty: give a job file"),
    (["train", QLORA_JOB, "--output", ""], "--output is empty: give a folder name"),
    (["submit", ""], "the job argument is empty: give a job file"),
])
def test_an_empty_path_is_refused_naming_its_flag(tmp_path, monkeypatch, args, said):
    """typer reads '' as Path('.'): errors then quoted '.' where the user typed '' (`--export` "got '.'"), or the
    working folder was used as the path."""
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2 and result.stderr == f"error: {said}.\n", result.output
    assert list(tmp_path.iterdir()) == []


def test_plan_refuses_an_empty_job_path(tmp_path, monkeypatch):
    """argparse's Path('') is the working folder, refused as "a folder, not a job file"."""
    monkeypatch.chdir(tmp_path)
    result = invoke("plan", "", "--budget", "1")
    assert result.exit_code == 2 and "the job file is empty: give a job file" in result.stderr, result.output


def test_a_refused_launch_dry_run_says_one_line_on_stderr_and_its_tables_go_to_stdout(monkeypatch):
    """A dry run shows its plan on stderr, as stdout carries the task file: a refused one printed the plan and
    rejected tables there, 12 lines before its `error:` line. With no task, the tables go to stdout as `orch plan`
    puts them; a dry run that has a task still keeps stdout for it."""
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    tiny = str(REPO / "examples" / "tiny.yaml")
    refused = invoke("launch", tiny, "--budget", "0.0001", "--target", "cloud", "--dry-run")
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith("error: no target meets the $0.00010 budget") and "rejected" in refused.stdout
    local = invoke("launch", tiny, "--budget", "1", "--target", "local", "--dry-run")
    assert local.exit_code == 0 and local.stdout == "" and "chosen:" in local.stderr, local.output


def test_a_plan_under_a_price_cap_names_the_cap_and_the_price_to_raise_it_to():
    """A --max-usd-per-hour under every offer (0.005, when the tiny job trained on both cores) left them all out, and
    the error said the one V100 has no kernels for compute capability 7.0: the GPU was blamed for the price cap."""
    result = invoke("plan", str(REPO / "examples" / "tiny.yaml"), "--budget", "1", "--max-usd-per-hour", "0.001")
    assert result.exit_code == 2 and "compute capability" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: no target that can run this job is within --max-usd-per-hour $0.0010/h: "
                                    "raise --max-usd-per-hour to at least $"), result.stderr
    raised = result.stderr.split("at least $")[1].split("/h")[0]
    assert invoke("plan", str(REPO / "examples" / "tiny.yaml"), "--budget", "1", "--max-usd-per-hour", raised
                  ).exit_code == 0


TINY_JOB = str(REPO / "examples" / "tiny.yaml")


@pytest.mark.parametrize("budget", ["$20", "20usd", "20 USD", " $20 usd "])
@pytest.mark.parametrize("deadline, hours", [("1.5h", 1.5), ("90m", 1.5), ("45min", 0.75), ("1d", 24.0),
                                             ("2 hours", 2.0), ("5400s", 1.5)])  # `30s` was "not a duration"
def test_money_and_durations_are_read_as_people_write_them(budget, deadline, hours):
    """`--budget 20usd` and `--deadline 2h` were "invalid float value" on plan and "unable to parse string as a number"
    on the other commands; a bare number is still US dollars and hours."""
    plan = json_of("plan", TINY_JOB, "--budget", budget, "--deadline", deadline)
    assert (plan["budget_usd"], plan["deadline_hours"]) == (20.0, hours)


def test_submit_and_launch_read_money_and_durations_as_plan_does(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    queued = json_of("submit", TINY_JOB, "--budget", "$20", "--deadline", "90m")
    assert queued["budget_usd"] == 20.0 and queued["deadline_at"] - queued["submitted_at"] == pytest.approx(5400)
    plan = json_of("launch", TINY_JOB, "--budget", "20usd", "--deadline", "1d", "--max-usd-per-hour", "$5",
                   "--dry-run")["plan"]
    assert (plan["budget_usd"], plan["deadline_hours"], plan["max_usd_per_hour"]) == (20.0, 24.0, 5.0)


MONEY_AND_DURATION_MISTAKES = [
    ("--budget", "20eur", "error: --budget '20eur' is not an amount of US dollars: write 20, 20.5, $20, $1,800 or "
                          "20usd."),
    ("--budget", "1,5", "error: --budget '1,5' is not an amount of US dollars: write 20, 20.5, $20, $1,800 or 20usd (a "
                        "decimal point, not a comma)."),
    ("--budget", "1,5000", "error: --budget '1,5000' is not an amount of US dollars: write 20, 20.5, $20, $1,800 or "
                           "20usd."),
    ("--budget", "0", "error: --budget must be above 0 and at most 10000000 (US dollars), got 0 (an unquoted $ is "
                      "expanded by the shell: quote it as '$20', or write 20usd)."),
    ("--budget", "", "error: --budget '' is not an amount of US dollars: write 20, 20.5, $20, $1,800 or 20usd (an "
                     "unquoted $ is expanded by the shell: quote it as '$20', or write 20usd)."),
    ("--budget", "1e400", "error: --budget must be above 0 and at most 10000000 (US dollars), got 1e400."),
    ("--max-usd-per-hour", "5 euros", "error: --max-usd-per-hour '5 euros' is not an amount of US dollars: write "
                                      "20, 20.5, $20, $1,800 or 20usd."),
    ("--deadline", "tomorrow", "error: --deadline 'tomorrow' is not a duration: write hours as a number (1.5) or "
                               "with a unit (90m, 45min, 2h, 1d, 3600s)."),
    ("--deadline", "2 weeks", "error: --deadline '2 weeks' is not a duration"),
    ("--deadline", "1e400h", "error: --deadline must be above 0 and at most 87600 hours (ten years), got 1e400h."),
    ("--deadline", "0m", "error: --deadline must be above 0 and at most 87600 hours (ten years), got 0m."),
    # float() reads other scripts' digits and underscores: no amount a person means to type
    ("--budget", "٢٠", "error: --budget '٢٠' is not an amount of US dollars"),
    ("--budget", "1_000", "error: --budget '1_000' is not an amount of US dollars"),
    ("--deadline", "２h", "error: --deadline '２h' is not a duration"),
]


@pytest.mark.parametrize("command, flag, value, said", [
    (command, *mistake) for command in ("plan", "launch", "submit") for mistake in MONEY_AND_DURATION_MISTAKES
    if not (command == "submit" and mistake[0] == "--max-usd-per-hour")])  # submit takes no price cap
def test_a_money_or_duration_mistake_is_one_line_that_says_the_forms_on_every_command(tmp_path, monkeypatch, command,
                                                                                       flag, value, said):
    """The same mistake read "invalid float value" on plan and pydantic's "Input should be a valid number" elsewhere;
    an unquoted `--budget $20` reached orch as 0 (the shell read $2) with no hint; `--budget 1e400` said "got inf"."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    budget = [] if flag == "--budget" or command == "submit" else ["--budget", "20"]
    result = invoke(command, TINY_JOB, *budget, flag, value, *(["--dry-run"] if command == "launch" else []))
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert " ".join(result.stderr.split()).startswith(said), result.stderr


@pytest.mark.parametrize("command", ["plan", "launch", "submit"])
def test_the_help_says_a_bare_deadline_is_hours_and_the_forms_of_money(command):
    shown = " ".join(invoke(command, "--help").stdout.replace("│", " ").split())
    assert "hours as a number (1.5) or with a unit (90m, 45min, 2h, 1d, 3600s)" in shown, shown
    assert "20, 20.5, $20, $1,800 or 20usd" in shown, shown


@pytest.mark.parametrize("args", [["plan", TINY_JOB, "--budget", "1", "--objective", "COST", "--json"],
                                  ["plan", TINY_JOB, "--budget", "1", "--local-cost", "Marginal", "--json"],
                                  ["launch", TINY_JOB, "--budget", "1", "--target", "LOCAL", "--dry-run", "--json"],
                                  ["spend", "--by", "Provider", "--json"],
                                  ["catalog", "local", "--local-cost", "AMORTIZED", "--json"]])
def test_a_choice_on_the_command_line_is_read_in_any_case_as_in_a_job_file(tmp_path, monkeypatch, args):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = invoke(*args)
    assert result.exit_code == 0, result.output


def test_train_reads_its_resume_choice_in_any_case(tmp_path, monkeypatch):
    """`orch train --resume AUTO` was refused, where `--target LOCAL` and `--local-cost Marginal` are read."""
    from orchestrator.cli import train

    started = []
    monkeypatch.setattr(train, "_run_forwarding_signals", lambda command: started.append(command) or 0)
    result = invoke("train", TINY_JOB, "--output", str(tmp_path / "out"), "--resume", " AUTO ")
    assert result.exit_code == 0 and "--resume=auto" in started[0], result.output


# every flag that takes a whole number, with a command line it completes; each is read as `--budget` reads money
WHOLE_NUMBER_FLAGS = [(["plan", TINY_JOB, "--budget", "1"], "--top"), (["submit", TINY_JOB], "--priority"),
                      (["scheduler", "run", "--once"], "--cpu-slots"),
                      *((["estimate", "orch/tiny-llama"], flag) for flag in (
                          "--seq-len", "--micro-batch", "--grad-accum", "--lora-r", "--quant-bits", "--freeze-layers",
                          "--loss-chunk-tokens"))]


@pytest.mark.parametrize("value", ["١٢", "1_000", "１２"])
@pytest.mark.parametrize("args, flag", WHOLE_NUMBER_FLAGS)
def test_a_whole_number_is_written_with_the_digits_0_to_9_on_every_flag(tmp_path, monkeypatch, args, flag, value):
    """int() and pydantic read other scripts' digits and `1_000`: `plan --top ١٢` and `--priority 1_000` were taken
    while `--budget 1_000` and `estimate --seq-len ١٢` were refused, with pydantic's words."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = invoke(*args, flag, value)
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"error: {flag} {value!r} is not a whole number: write it with the digits 0-9 (no _ between them, and a "
        "comma only between groups of three: 2,048)."), result.output


@pytest.mark.parametrize("value, seq_len", [("2,048", 2048), ("16,384", 16384), ("1,048,576", 1048576)])
def test_a_whole_number_may_group_its_digits_in_threes_with_commas_as_tables_print_them(value, seq_len):
    """A published table's `2,048` tokens was refused, where `--budget $1,800` is read; `1,5` (a decimal comma in
    some locales) stays refused, with the rule."""
    result = invoke("estimate", "orch/tiny-llama", "--seq-len", value, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["settings"]["seq_len"] == seq_len, result.output
    refused = invoke("estimate", "orch/tiny-llama", "--seq-len", "1,5")
    assert refused.exit_code == 2 and "a comma only between groups of three: 2,048" in refused.stderr


@pytest.mark.parametrize("args, said", [
    (["estimate", "orch/tiny-llama", "--lora-dropout", "0.1_0"], "--lora-dropout '0.1_0' is not a number"),
    (["estimate", "orch/tiny-llama", "--lora-dropout", "٠٫١"], "--lora-dropout '٠٫١' is not a number"),
    (["scheduler", "run", "--once", "--interval", "1_000"], "--interval '1_000' is not a duration: write seconds as a "
                                                            "number (30) or with a unit (90s, 5m, 1h)."),
    (["scheduler", "run", "--once", "--interval", "2 weeks"], "--interval '2 weeks' is not a duration"),
    (["scheduler", "run", "--once", "--interval", "1\n2s"], "--interval '1\\n2s' is not a duration"),
    (["scheduler", "run", "--once", "--interval", "2d"], "--interval (seconds) must be at least 0.1 and at most 86400"),
])
def test_a_number_and_a_number_of_seconds_are_read_as_money_and_hours_are(tmp_path, monkeypatch, args, said):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = invoke(*args)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {said}"), result.output


@pytest.mark.parametrize("text, seconds", [("30", 30.0), ("2s", 2.0), ("90 s", 90.0), ("5m", 300.0),
                                           ("1.5min", 90.0), ("1h", 3600.0), ("2e1", 20.0)])
def test_the_scheduler_interval_takes_a_unit_as_every_duration_flag_does(tmp_path, monkeypatch, text, seconds):
    """`orch scheduler run --interval 2s` was refused, while `--deadline 90m` is read; a bare number is seconds."""
    from orchestrator.cli.options import seconds_amount

    assert seconds_amount(text, "--interval") == seconds
    from orchestrator.schedule.scheduler import Scheduler

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    looped = []
    monkeypatch.setattr(Scheduler, "run_forever", lambda self, interval_s, on_pass: looped.append(interval_s))
    assert invoke("scheduler", "run", "--interval", text).exit_code == 0 and looped == [seconds]


def test_no_spend_says_where_it_looked(tmp_path, monkeypatch):
    """`orch spend` with no run printed an empty table and `total: $0.000`, where `orch runs` names the home."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = invoke("spend")
    assert result.exit_code == 0 and " ".join(result.stdout.split()) == \
        f"No spend yet in {tmp_path}: no run has been recorded there; `orch launch JOB.yaml --budget USD` starts one."


def test_an_empty_queue_says_how_to_queue_a_job(tmp_path, monkeypatch):
    """It printed an empty table's header, where `orch runs` says how to start a run."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = invoke("queue")
    assert result.exit_code == 0 and result.stdout.startswith("No jobs queued in ")
    assert "`orch submit JOB.yaml` queues one" in " ".join(result.stdout.split())


def test_the_looping_scheduler_says_what_its_passes_do_once_each(tmp_path, monkeypatch):
    """`orch scheduler run` printed its first line and then nothing: starts, ends and rejections went unseen. A job
    that waits pass after pass (its hours left changing) is said once."""
    from orchestrator.schedule.policy import Decision
    from orchestrator.schedule.scheduler import Scheduler

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    job = types.SimpleNamespace(job_id="j-0a1b2c3d")

    def three_passes(self, interval_s, on_pass):
        on_pass([(job, Decision("wait", "its card frees in 0.50 h"))])
        on_pass([(job, Decision("wait", "its card frees in 0.49 h"))])
        on_pass([(job, Decision("start_local", "RTX 4090 is free"))])

    monkeypatch.setattr(Scheduler, "run_forever", three_passes)
    said = [line.split(" ", 1)[1] for line in invoke("scheduler", "run").stdout.splitlines()[1:]]
    assert said == ["j-0a1b2c3d: wait: its card frees in 0.50 h", "j-0a1b2c3d: start_local: RTX 4090 is free"]


def test_catalog_offers_of_the_cpu_lists_its_offer_as_estimate_names_it():
    """`orch catalog offers --gpu cpu` said "unknown GPU 'cpu'" while `estimate --gpu cpu` and `--provider local`
    name it."""
    offers = json_of("catalog", "offers", "--gpu", "CPU ")
    assert offers and {o["gpu"] for o in offers} == {"CPU"}


def test_a_flag_given_a_value_it_cannot_take_points_at_its_commands_help():
    """click raises `does not take a value` with no context: the line pointed at `orch --help`. Nor was it true:
    `--json=true` is read."""
    result = invoke("estimate", "Llama-3.1-8B", "--json=maybe")
    assert result.exit_code == 2 and result.stderr.strip().endswith(" estimate --help`."), result.stderr
    assert "--json takes no value, or one of true, false" in result.stderr


@pytest.mark.parametrize("args, help_of", [
    (["catalog", "gpus", "--json=maybe"], " catalog gpus"), (["scheduler", "run", "--once=x"], " scheduler run"),
])
def test_a_nested_commands_usage_error_points_at_its_own_help(args, help_of):
    """A command under a group pointed at the group's help (`orch catalog --help`), which lists no option of it."""
    result = invoke(*args)
    assert result.exit_code == 2 and result.stderr.strip().endswith(f"{help_of} --help`."), result.stderr


@pytest.mark.parametrize("args, option, example", [
    (["--json", "runs"], "--json", "runs --json"), (["--json", "catalog", "gpus"], "--json", "catalog gpus --json"),
    (["catalog", "--json", "gpus"], "--json", "gpus --json"), (["--follow"], "--follow", "logs --follow"),
])
def test_a_commands_option_given_before_it_is_said_to_go_after_it(args, option, example):
    """`orch --json runs` said "No such option: --json (Possible options: --version)", as if orch had no --json."""
    result = invoke(*args)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"No such option: {option}: options go after the command, as in `" in result.stderr, result.stderr
    assert f" {example}`" in result.stderr, result.stderr
    assert "options go after" not in invoke("--jsno", "runs").stderr  # no command's option: click's own line


@pytest.mark.parametrize("args, flag, following", [
    (["estimate", "Llama-3.1-8B", "--seq-len", "--json"], "--seq-len", "--json"),
    (["estimate", "Llama-3.1-8B", "--gpu", "--seq-len", "5"], "--gpu", "--seq-len"),
    (["simulate", "--trace", "--json"], "--trace", "--json"),
    (["estimate", "Llama-3.1-8B", "--seq-len", "--help"], "--seq-len", "--help"),  # "'--help' is not a whole number"
])
def test_an_option_whose_value_is_another_option_is_said_to_miss_its_value(args, flag, following):
    """`--seq-len --json` said "--seq-len '--json' is not a whole number", where the length was left out."""
    result = invoke(*args)
    assert result.exit_code == 2 and result.stderr.startswith(
        f"error: {flag} is missing its value (the word after it, {following}, is an option): give {flag} VALUE"), \
        result.stderr
    assert invoke("estimate", "Llama-3.1-8B", "--seq-len", "512", "--json").exit_code == 0


@pytest.mark.parametrize("args, flag", [
    (["launch", "examples/tiny.yaml", "--budget"], "--budget"),
    (["plan", "examples/tiny.yaml", "--budget"], "--budget"),
    (["scheduler", "run", "--once", "--monthly-cap"], "--monthly-cap"),
    (["estimate", "Llama-3.1-8B", "--seq-len"], "--seq-len"),
])
def test_a_value_left_out_at_the_end_says_so_and_a_money_flags_names_the_shell(args, flag):
    """`--budget $5` reaches orch as `--budget` alone (the shell expands `$5` to nothing): "requires an argument",
    where `--budget $20` (read as 0) was told to quote the `$`."""
    result = invoke(*args)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert flag in result.stderr and ("expected one argument" in result.stderr or
                                      f"{flag} is missing its value: give {flag} VALUE" in result.stderr)
    assert ("an unquoted $ is expanded by the shell" in result.stderr) == (flag != "--seq-len"), result.stderr


@pytest.mark.parametrize("args, said", [
    (["--bf16", "--precision", "fp16"], "--bf16 sets --precision bf16, and --precision gives it as fp16: give one"),
    (["--cutoff_len", "1024", "--max_length", "2048"],
     "--cutoff_len sets --seq-len 1024, and --max_length gives it as 2048: give one"),
])
def test_a_setting_another_trainers_option_gave_and_another_gives_again_names_both_as_typed(args, said):
    """`--bf16 --precision fp16` read "--precision given twice, as bf16 and fp16": an option never typed twice."""
    result = invoke("estimate", "Llama-3.1-8B", *args)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {said}"), result.stderr
    assert invoke("estimate", "Llama-3.1-8B", "--bf16", "--precision", "bf16", "--json").exit_code == 0


def test_two_names_of_one_flag_are_one_flag_given_twice():
    """`orch logs -f --follow` was refused as two different values."""
    result = invoke("logs", "-f", "--follow", "r-nothing")
    assert "both given" not in result.stderr and "no run matching" in result.stderr
    result = invoke("estimate", "Llama-3.1-8B", "--compile", "--no-compile")
    assert result.exit_code == 2 and "--compile and --no-compile both given: give one" in result.stderr


def test_estimates_help_cuts_no_option_at_80_columns():
    """`--no-qlora-fp32-upcast` was cut to `--no-qlora-fp32-upc…` in an 80-column terminal."""
    result = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["estimate", "--help"], terminal_width=80)
    assert result.exit_code == 0 and "--no-fp32-upcast" in result.stdout and "…" not in result.stdout, result.stdout


def test_estimate_without_a_gpu_also_names_the_smallest_gpu_plan_would_fit_it_on():
    """An 8B QLoRA at the job's micro-batch 4 without checkpointing needed an H200, while plan ran it on 24 GB."""
    given = json_of("estimate", "Llama-3.1-8B", "--method", "qlora")
    fitted = given["smallest_gpu_with_auto_fit"]
    assert fitted is not None and get_gpu(fitted).vram_gib < get_gpu(given["smallest_gpu_that_fits"]).vram_gib
    assert given["auto_fit_on_smallest"]["grad_ckpt"] is True  # the job leaves it auto: auto-fit may turn it on
    kept_off = json_of("estimate", "Llama-3.1-8B", "--method", "qlora", "--no-grad-ckpt")
    assert kept_off["auto_fit_on_smallest"]["grad_ckpt"] is False
    assert get_gpu(kept_off["smallest_gpu_with_auto_fit"]).vram_gib > get_gpu(fitted).vram_gib


def test_estimate_auto_fit_on_a_gpu_keeps_checkpointing_the_job_turns_off():
    """`--no-grad-ckpt --auto-fit --gpu` turned checkpointing on, where plan and estimate without --gpu kept it off."""
    kept_off = json_of("estimate", "Llama-3.1-8B", "--method", "qlora", "--no-grad-ckpt", "--gpu", "RTX 4090",
                       "--auto-fit")
    assert kept_off["grad_ckpt"] is False and kept_off["fits"] is False and "without checkpointing" in \
        kept_off["auto_fit"]["reason"]
    auto = json_of("estimate", "Llama-3.1-8B", "--method", "qlora", "--gpu", "RTX 4090", "--auto-fit")
    assert auto["fits"] is True and auto["auto_fit_from"]["grad_ckpt"] == "auto"


def test_a_plan_that_chose_a_cloud_for_a_gated_model_says_a_launch_would_refuse_it(tmp_path, monkeypatch):
    """The README's plan of Llama-3.1-8B chose an Azure offer unsaid, where `orch submit` of the same file said every
    cloud would refuse it without HF_TOKEN, and the scheduler rejected it."""
    gated = tmp_path / "gated.yaml"
    gated.write_text(f"model: meta-llama/Llama-3.1-8B\nmethod: qlora\nseq_len: 2048\ntrain_tokens: 10000000\n"
                     f"dataset: {REPO / 'examples' / 'data' / 'tiny_instruct.jsonl'}\n")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    planned = json_of("plan", str(gated), "--budget", "20")
    assert planned["chosen"]["provider"] != "local", planned["chosen"]
    assert any(note.startswith("`orch launch` here would refuse the chosen offer: meta-llama/Llama-3.1-8B is gated")
               for note in planned["notes"]), planned["notes"]
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    assert not any("would refuse" in note for note in json_of("plan", str(gated), "--budget", "20")["notes"])
    # on a terminal the note comes under the chosen line it is about: above the tables, it had scrolled away
    monkeypatch.delenv("HF_TOKEN")
    shown = subprocess.run([sys.executable, "-m", "orchestrator.cli.entry", "plan", str(gated), "--budget", "20"],
                           cwd=REPO, env={**os.environ, "ORCH_HOME": str(tmp_path)}, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120).stdout
    assert shown.index("chosen: ") < shown.index("note: `orch launch` here would refuse the chosen offer"), shown


def test_plans_notes_fold_at_a_terminal_as_display_says_lines_do(monkeypatch, capsys):
    """`orch plan` prints without rich: its spot note ran 202 columns past an 80-column terminal, which cut words."""
    from orchestrator.cli import fold

    note = "note: the chosen offer is spot: `orch launch` keeps its checkpoints in a storage cloud " * 2
    fold.note(note)
    assert capsys.readouterr().err == note + "\n"  # not a terminal: whole, to grep
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "80")
    fold.note(note)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) > 1 and all(len(line) <= 80 for line in lines) and lines[1].startswith("  ")
    assert " ".join(" ".join(lines).split()) == " ".join(note.split())


@pytest.mark.parametrize("args", [["catalog", "gpus"], ["catalog", "gpus", "--json"],
                                  ["plan", QLORA_JOB, "--budget", "20", "--json"], ["--help"], ["estimate", "--help"]])
def test_output_to_a_reader_that_left_ends_silently_as_a_pipes_writer_does(tmp_path, args):
    """`orch queue | head -1` exited 1, orch's code for a failure, with nothing said: rich's console raised
    SystemExit(1) and click ended a print's BrokenPipeError with 1."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left before orch wrote
    env = {**os.environ, "ORCH_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.entry", *map(str, args)], cwd=REPO, env=env,
                          stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300)
    os.close(write_end)
    said = done.stderr.lower()  # a plan's notes go to stderr as always
    assert done.returncode == 128 + signal.SIGPIPE and "error" not in said and "pipe" not in said, done.stderr


@pytest.mark.parametrize("args, said", [
    (["--seq-len", "0"], "error: --seq-len must be above 0, got 0."),
    (["--freeze-layers", "5"], "error: --freeze-layers applies to method full only"),
    (["--micro-batch", "4096", "--grad-accum", "64"], "--micro-batch x --grad-accum = 262144 sequences a step"),
])
def test_estimates_refusals_name_the_flags_typed_not_the_job_keys(args, said):
    """`orch estimate --seq-len 0` read "bad config: `seq_len` must be above 0": a job file's words for a flag."""
    result = invoke("estimate", "Llama-3.1-8B", *args)
    assert result.exit_code == 2 and said in result.stderr and "`" not in result.stderr, result.stderr


def test_the_runs_table_reads_in_80_columns_whatever_its_status_and_gpu(monkeypatch, tmp_path):
    """With `budget_stopped` beside a 16-character job, every target was spelt down the screen a letter a line, and a
    cloud GPU's name folded over three."""
    from orchestrator.runs.status import RunStatus
    from orchestrator.runs.store import RunStore
    from tests.test_runs_store import make_record

    store, runs = RunStore(), orch_home() / "runs"
    store.insert(make_record(runs / "r-aaaaaaaa", run_id="r-aaaaaaaa", job_name="llama31-8b-qlora", gpu="RTX 6000 Ada",
                             provider="runpod", status=RunStatus.BUDGET_STOPPED, cost_usd=3.96,
                             tokens_per_s=6932.0, peak_vram_gib=39.8, wall_s=14904.0))
    store.insert(make_record(runs / "r-bbbbbbbb", run_id="r-bbbbbbbb", job_name="qwen25-14b-lora", status=RunStatus.OK,
                             cost_usd=0.00000023))
    out = run_at(monkeypatch, 80, "runs")
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    # every figure whole: the cost column was cut to `$0.0000` and `cos`
    assert any("RTX 6000" in line for line in lines) and "$3.96" in out and "$0.00000023" in out, out
    assert lines[2].split()[-1] == "cost", out
    assert "budget_stopped" in out and not any(line.split() in (["t"], ["C"]) for line in lines), out


def test_the_runs_table_keeps_job_names_whole_where_its_figures_leave_room(monkeypatch, tmp_path):
    """At 80 columns `tiny-chat` was spelt `tiny-cha` over `t`, two spaces between columns and the cost's spare room
    beside it; names up to 16 characters now stay whole while the target folds, where every figure still fits."""
    from orchestrator.runs.status import RunStatus
    from orchestrator.runs.store import RunStore
    from tests.test_runs_store import make_record

    store, runs = RunStore(), orch_home() / "runs"
    store.insert(make_record(runs / "r-aaaaaaaa", run_id="r-aaaaaaaa", job_name="qwen25-14b-lora", gpu="RTX 6000 Ada",
                             provider="runpod", status=RunStatus.FAILED, cost_usd=0.0, wall_s=3.0))
    store.insert(make_record(runs / "r-bbbbbbbb", run_id="r-bbbbbbbb", job_name="tiny-chat", status=RunStatus.OK,
                             cost_usd=0.000071, tokens_per_s=1808.0, peak_vram_gib=0.8, wall_s=36.0))
    out = run_at(monkeypatch, 80, "runs")
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert "qwen25-14b-lora" in out and " tiny-chat " in out and "$0.000071" in out, out


def test_a_long_job_name_folds_onto_two_lines_at_most_and_its_estimate_line_follows_its_run(monkeypatch, tmp_path):
    """A 55-character name folded over three lines at 80 columns, and its run's estimate line came two lines below
    it, as if another run's."""
    from orchestrator.runs.status import RunStatus
    from orchestrator.runs.store import RunStore
    from tests.test_runs_store import make_record

    name = "customer-support-assistant-llama-tiny-ablation-lr3e-3-r8"
    RunStore().insert(make_record(orch_home() / "runs" / "r-aaaaaaaa", run_id="r-aaaaaaaa", job_name=name,
                                  status=RunStatus.OK, cost_usd=0.000014, tokens_per_s=3538.0, wall_s=10.0))
    monkeypatch.setattr(display, "console", Console(width=80))
    result = invoke("runs")
    lines = result.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "r-aaaaaaaa" in line)
    assert "estimate" in lines[first + 2] and lines[first + 1].strip().endswith("…"), result.stdout
    assert name.startswith(lines[first].split()[1] + lines[first + 1].split()[0][:-1]), result.stdout
    assert max(len(line) for line in lines) <= 80, result.stdout


@pytest.mark.parametrize("columns", [40, 50, 60, 70])
def test_a_narrow_runs_table_leaves_columns_out_before_it_cuts_a_figure(monkeypatch, tmp_path, columns):
    """Below about 75 columns the cost was cut (`$0.00005` for $0.000050, `cos`), and at 40 every figure was: the
    job, memory, hours and tokens/s columns now go, in that order, and the cost stays whole (a status folds last)."""
    from orchestrator.runs.status import RunStatus
    from orchestrator.runs.store import RunStore
    from tests.test_runs_store import make_record

    store, runs = RunStore(), orch_home() / "runs"
    store.insert(make_record(runs / "r-aaaaaaaa", run_id="r-aaaaaaaa", job_name="llama31-8b-qlora", gpu="RTX 6000 Ada",
                             provider="runpod", status=RunStatus.BUDGET_STOPPED, cost_usd=3.96,
                             tokens_per_s=6932.0, peak_vram_gib=39.8, wall_s=14904.0))
    store.insert(make_record(runs / "r-bbbbbbbb", run_id="r-bbbbbbbb", job_name="tiny", status=RunStatus.OK,
                             cost_usd=0.000050, est_cost_usd=0.000072))
    out = run_at(monkeypatch, columns, "runs")
    lines = out.splitlines()
    assert all(len(line) <= columns for line in lines) and "…" not in out, out
    assert "$3.96" in out and "$0.000050" in out and "$0.000072" in out, out
    assert "budget_stopped" in out or columns == 40 and "budget_s" in out, out  # at 40, all else gone, it folds
    header = next(line.split() for line in lines if line.split()[:1] == ["run"])
    assert header[-1] == "cost", out


def test_a_budget_stopped_run_says_the_command_that_continues_it(tmp_path, capsys):
    """The trainer's words, `a larger budget continues from the checkpoint at step 14`, named no command."""
    from orchestrator.runs.status import RunStatus
    from tests.test_runs_store import make_record

    display.show_run(make_record(tmp_path, run_id="r-cccccccc", status=RunStatus.BUDGET_STOPPED, cost_usd=0.0002))
    assert "`orch resume r-cccccccc --budget USD` continues it from its latest checkpoint" in capsys.readouterr().out
    display.show_run(make_record(tmp_path, run_id="r-dddddddd", status=RunStatus.OK, cost_usd=0.0002))
    assert "orch resume" not in capsys.readouterr().out


def test_a_failed_run_says_why_right_under_how_it_ended(tmp_path, capsys):
    """A cloud launch's reason came last, under the figures and the output folder: a user read `failed` with no
    reason, and went to `orch logs` for it."""
    from orchestrator.runs.status import RunStatus
    from tests.test_runs_store import make_record

    display.show_run(make_record(tmp_path, run_id="r-ffffffff", status=RunStatus.FAILED,
                                 message="SkyPilot could not launch: CloudError: no network"))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("failed: run r-ffffffff") and lines[1] == "  SkyPilot could not launch: CloudError: " \
        "no network", lines


def test_a_run_says_how_long_it_took_in_the_unit_its_plan_did(tmp_path, capsys):
    """The plan said `53 s` and the run's end `0.014 h`: the two could not be compared at a glance."""
    from orchestrator.runs.status import RunStatus
    from tests.test_runs_store import make_record

    for wall_s, said in ((50.4, ", 50 s"), (1500, ", 25 min"), (4 * 3600 + 240, ", 4.07 h")):
        display.show_run(make_record(tmp_path, run_id="r-aaaaaaaa", status=RunStatus.OK, wall_s=wall_s))
        assert capsys.readouterr().out.splitlines()[0].endswith(said)


def test_a_run_whose_trainer_died_after_a_checkpoint_says_the_command_that_continues_it(tmp_path, capsys):
    """A trainer killed (kill -9, a crash) said "exited without metrics.json" and no more, though its checkpoint
    was there for `orch resume`; one killed before its first checkpoint has nothing to continue."""
    from orchestrator.runs.status import RunStatus
    from tests.test_runs_store import make_record

    record = make_record(tmp_path / "r-eeeeeeee", run_id="r-eeeeeeee", status=RunStatus.FAILED, cost_usd=0.0002)
    display.show_run(record)
    assert "orch resume" not in capsys.readouterr().out
    (record.output_dir / "checkpoints").mkdir(parents=True)
    (record.output_dir / "checkpoints" / "latest").write_text("step-00000010")
    display.show_run(record)
    assert "`orch resume r-eeeeeeee` continues it from its latest checkpoint" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["catalog", "offers"], ["plan", QLORA_JOB, "--budget", "20"],
                                     ["launch", QLORA_JOB, "--budget", "20", "--dry-run"]])
@pytest.mark.parametrize("flag", ["--providers", "--provider"])
def test_every_command_that_filters_providers_takes_one_spelling_of_the_flag(command, flag):
    """`orch catalog offers --providers aws` and `orch plan --provider aws` were refused as unknown options."""
    result = invoke(*command, flag, "aws", "--json")
    assert result.exit_code in (0, 2) and "No such option" not in result.output, result.output
