"""`orch spend` over the runs store, and the planner's cloud rules: --max-usd-per-hour, failover offers within the
budget, a declared card absent from this machine, start-up measured by earlier runs."""

import dataclasses
import json
import os
import time

import pytest
from typer.testing import CliRunner

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import get_gpu
from gpu_catalog.local import local_offers
from gpu_catalog.models import get_model
from gpu_catalog.owned import load_owned_hardware
from gpu_catalog.units import usd_text
from orchestrator.cli.main import app
from orchestrator.job import job_from_dict
from orchestrator.planner import FAILOVER_PRICE_BAND, PlanPolicy, plan
from orchestrator.runs.status import RunStatus, Target
from orchestrator.runs.store import RunRecord, RunStore
from orchestrator.spend import spend_by, spend_usd
from orchestrator.startup_times import load_startup_times, record_startup
from tests.conftest import REPO, make_offer

SPEC = job_from_dict({"model": "Llama-3.1-8B", "method": "qlora", "seq_len": 2048, "train_tokens": 2_000_000})
MODEL = get_model(SPEC.model)
A100 = get_gpu("A100 80GB")


def record(run_id, provider="nebius", cost=None, status="ok", spot=0, created=1_764_590_400.0, job="a", **more):
    fields = {f.name: None for f in dataclasses.fields(RunRecord)}
    fields.update(run_id=run_id, job_name=job, job_path="/j.yaml", job_json="{}", target=Target.CLOUD,
                  gpu="A100 80GB", provider=provider, region="r1", spot=spot, usd_per_hour=2.0, budget_usd=50.0,
                  status=RunStatus(status),
                  run_dir=f"/x/runs/{run_id}", stop_requested=0, created_at=created, cost_usd=cost, **more)
    return RunRecord(**fields)


def test_spend_sums_recorded_costs_and_the_spend_so_far_of_active_cloud_runs(monkeypatch, tmp_path):
    now = 1_764_600_000.0
    running = record("r-00000003", status="running", spot=1, created=now - 3600)
    assert spend_usd(running, now) > 2.0  # an hour of GPU plus the jobs controller
    rows = spend_by([record("r-00000001", cost=3.0), record("r-00000002", provider="lambda", cost=1.0), running],
                    "provider", now)
    assert [(r.key, r.runs) for r in rows] == [("nebius", 2), ("lambda", 1)]
    assert rows[0].usd == 3.0 + spend_usd(running, now) and rows[0].active_runs == 1
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    store = RunStore()
    for r in (record("r-00000001", cost=3.0), record("r-00000002", cost=1.5, job="b", created=time.time())):
        store.insert(r)
    result = CliRunner().invoke(app, ["spend", "--by", "job", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["total_usd"] == 4.5 and {r["job"]: r["usd"] for r in data["rows"]} == {"a": 3.0, "b": 1.5}
    assert CliRunner().invoke(app, ["spend", "--by", "colour"]).exit_code == 2


def test_an_active_runs_spend_so_far_never_passes_its_cap():
    """A local run whose end nobody recorded (the machine rebooted) counted its price since launch without end. Its
    cap is the budget and one meter interval, where its trainer's meter ends it, as its recorded cost would be."""
    from orchestrator.spend import cap_usd

    now = 1_764_600_000.0
    local = dataclasses.replace(record("r-00000004", status="running", created=now - 7 * 86_400, provider="local"),
                                target=Target.LOCAL)
    assert spend_usd(local, now) == cap_usd(local) > local.budget_usd
    assert spend_usd(dataclasses.replace(local, status=RunStatus.OK, cost_usd=60.0), now) == 60.0  # measured


def test_spend_ends_a_run_whose_trainer_died_unseen_as_orch_runs_does(monkeypatch, tmp_path):
    """CLI and trainer killed together: `orch spend` counted the run as still going (0.07 of a 0.045 budget a minute
    later, growing), while `orch runs` ended it at the trainer's last write."""
    import os

    from tests.test_runs_store import make_record

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    started = time.time() - 600
    run_dir = tmp_path / "runs" / "r-0a1b2c3d"
    run_dir.mkdir(parents=True)
    (run_dir / "train.log").write_text("step 1\n")
    os.utime(run_dir / "train.log", (started + 18, started + 18))  # its last write, then the kill
    RunStore().insert(make_record(run_dir, started_at=started, pid=999_999, usd_per_hour=3.6, budget_usd=0.045))
    spend = CliRunner().invoke(app, ["spend", "--json"])
    assert spend.exit_code == 0, spend.output
    assert json.loads(spend.stdout)["total_usd"] == pytest.approx(0.023, abs=1e-4)  # 18 s + one 5 s meter interval
    assert json.loads(spend.stdout)["rows"][0]["active_runs"] == 0
    runs = json.loads(CliRunner().invoke(app, ["runs", "--json"]).stdout)
    assert runs[0]["status"] == "failed" and runs[0]["cost_usd"] == json.loads(spend.stdout)["total_usd"]


def test_max_usd_per_hour_rejects_dearer_offers():
    offers = [make_offer(A100, "nebius", 1.0), make_offer(A100, "lambda", 3.0)]
    result = plan(SPEC, MODEL, offers, PlanPolicy(budget_usd=100, max_usd_per_hour=2.0))
    assert [o.offer.provider for o in result.options] == ["nebius"]
    assert result.rejected[0].kind == "price" and "$3.00/h > $2.00/h" in result.rejected[0].reason


def test_failover_lists_the_same_gpu_elsewhere_within_the_band_and_the_budget():
    offers = [make_offer(A100, "nebius", 1.0, region="a"), make_offer(A100, "nebius", 1.1, region="b"),
              make_offer(A100, "lambda", 1.2, region="c"), make_offer(A100, "lambda", 5.0, region="d"),
              make_offer(get_gpu("H100 SXM"), "lambda", 3.0, region="e")]
    chosen = plan(SPEC, MODEL, offers, PlanPolicy(budget_usd=100)).chosen
    assert chosen.offer.region == "a"
    assert [o.region for o in chosen.failover] == ["b", "c"]  # not the $5 one, not another GPU
    assert all(o.usd_per_hour <= 1.0 * FAILOVER_PRICE_BAND for o in chosen.failover)
    assert chosen.worst_cost_usd > chosen.estimate.cost_usd


def test_a_declared_card_absent_here_is_rejected_with_the_reason(tmp_path, monkeypatch):
    hardware = tmp_path / "hardware.yaml"
    hardware.write_text("cards:\n  - gpu: RTX 4090\n")
    monkeypatch.setenv("ORCH_HARDWARE", str(hardware))
    offers = [o for o in local_offers(load_owned_hardware(), []) if o.gpu.name == "RTX 4090"]
    result = plan(SPEC, MODEL, offers, PlanPolicy(budget_usd=100))
    assert not result.options and result.rejected[0].kind == "absent" and "ssh_pool" in result.rejected[0].reason
    estimate = result.rejected[0].estimate  # what it would take there, which only --json showed
    assert f"(it would take {estimate.hours:.3g} h, {usd_text(estimate.cost_usd)})" in result.rejected[0].reason
    too_big = dataclasses.replace(SPEC, model="meta-llama/Llama-3.1-70B", method="lora")  # no SSH pool makes it fit
    (rejected,) = plan(too_big, get_model(too_big.model), offers, PlanPolicy(budget_usd=100)).rejected
    assert rejected.kind == "memory" and "ssh_pool" not in rejected.reason


def test_measured_start_up_replaces_the_guess(tmp_path):
    path = tmp_path / "startup.json"
    for provision_s in (100.0, 120.0, 900.0):
        record_startup("nebius", provision_s, 60.0, path)
    times = load_startup_times(path)
    assert times["nebius"].provision_s == 120.0 and times["nebius"].measured
    offer = make_offer(A100, "nebius", 1.0)
    guessed = plan(SPEC, MODEL, [offer], PlanPolicy(budget_usd=100)).chosen.estimate
    measured = plan(SPEC, MODEL, [offer], PlanPolicy(budget_usd=100), startup_times=times).chosen.estimate
    assert measured.startup_measured and measured.startup_hours < guessed.startup_hours


def test_start_up_that_cannot_be_read_leaves_the_guesses(tmp_path):
    (tmp_path / "not-utf8.json").write_bytes(b"\xff")
    (tmp_path / "a-file").write_text("{}")
    # not UTF-8, under a file (ORCH_HOME set to a file), a folder
    for path in (tmp_path / "not-utf8.json", tmp_path / "a-file" / "startup.json", tmp_path):
        assert load_startup_times(path) == {}


@pytest.mark.parametrize("runs", [
    '[{"provision_s": NaN, "setup_s": 1}]', '[{"provision_s": Infinity, "setup_s": 1}]',
    '[{"provision_s": -1e9, "setup_s": 0}]', '[{"provision_s": 1e400, "setup_s": 0}]',
    '[{"provision_s": 1e9, "setup_s": 0}]', '[{"provision_s": true, "setup_s": 0}]',
])
def test_start_up_that_is_no_measure_leaves_the_guesses(tmp_path, runs):
    """A hand-edited or damaged startup_times.json: NaN won the ranking at $NaN (and broke `plan`'s table and JSON),
    a negative start-up planned a run at $-1108324.05, Infinity put every offer over budget."""
    path = tmp_path / "startup_times.json"
    path.write_text(f'{{"aws": {runs}}}')
    assert load_startup_times(path) == {}
    offer = make_offer(A100, "aws", 1.0)
    chosen = plan(SPEC, MODEL, [offer], PlanPolicy(budget_usd=100), startup_times=load_startup_times(path)).chosen
    assert chosen is not None and 0 < chosen.estimate.cost_usd < 100


def test_only_the_runs_that_are_a_measure_make_the_median(tmp_path):
    path = tmp_path / "startup_times.json"
    path.write_text(json.dumps({"aws": [{"provision_s": 100, "setup_s": 10}, {"provision_s": -1e9, "setup_s": 0},
                                        {"provision_s": -1e9, "setup_s": 0}, {"setup_s": 5}, "x"]}))
    assert load_startup_times(path)["aws"].provision_s == 100
    record_startup("aws", 200.0, 20.0, path)  # what is kept is only the measurements
    assert json.loads(path.read_text()) == {"aws": [{"provision_s": 100, "setup_s": 10},
                                                    {"provision_s": 200.0, "setup_s": 20.0}]}


def test_start_up_times_that_are_no_file_are_skipped_and_replaced_by_the_next_measure(tmp_path):
    """A pipe in startup_times.json's place hung every `orch plan`; a link to /dev/zero filled memory."""
    pipe, zero = tmp_path / "pipe.json", tmp_path / "zero.json"
    os.mkfifo(pipe)
    zero.symlink_to("/dev/zero")
    for path in (pipe, zero):
        assert load_startup_times(path) == {}
        record_startup("aws", 100.0, 10.0, path)
        assert path.is_file() and not path.is_symlink() and load_startup_times(path)["aws"].provision_s == 100.0


def test_spot_counts_expected_preemptions_and_the_controller():
    spot = plan(SPEC, MODEL, [make_offer(A100, "nebius", 1.0, spot=True)], PlanPolicy(budget_usd=100)).chosen
    e = spot.estimate
    assert e.expected_preemptions > 0 and e.parts_usd["recovery"] > 0 and e.parts_usd["controller"] > 0
    assert e.cost_usd == sum(e.parts_usd.values())


def test_a_few_expected_preemptions_keep_their_digits_in_json():
    """`round(x, 4)` wrote 0.0 beside a recovery cost above 0, where the table said 0.00005."""
    from orchestrator.cli.serialize import estimate_dict

    e = dataclasses.replace(plan(SPEC, MODEL, [make_offer(A100, "nebius", 1.0, spot=True)],
                                 PlanPolicy(budget_usd=100)).chosen.estimate, expected_preemptions=4.6e-5)
    assert estimate_dict(e)["expected_preemptions"] == 4.6e-5


def test_plan_shows_where_the_money_goes_and_how_the_output_comes_home():
    from tests.conftest import REPO

    job = str(REPO / "examples" / "llama31-8b-qlora.yaml")
    result = CliRunner().invoke(app, ["plan", job, "--budget", "50", "--providers", "nebius", "--no-spot"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "spend: train $" in text and "output: a bucket orch-<run id> (MOUNT_CACHED)" in text
    data = json.loads(CliRunner().invoke(app, ["plan", job, "--budget", "50", "--providers", "nebius",
                                               "--max-usd-per-hour", "2", "--json"]).stdout)
    chosen = data["chosen"]
    assert chosen["output"] == "bucket" and chosen["usd_per_hour"] <= 2 and data["max_usd_per_hour"] == 2
    assert chosen["est_cost_usd"] == pytest.approx(sum(chosen["parts_usd"].values()), abs=0.01)


@pytest.mark.parametrize("target, asked, message", [
    ("auto", "lambda", "--providers lambda: no offers from it in the catalogs here (`orch catalog refresh` brings "
                       "SkyPilot's); providers with offers: local, nebius."),
    ("cloud", "local", "--target cloud and --providers local leave no provider: drop one of them."),
    ("local", "nebius", "--target local and --providers nebius leave no provider: drop one of them."),
])
def test_flags_that_leave_no_provider_say_so_once(target, asked, message):
    """Every row used to say 'provider X not allowed (allowed: )' and the plan failed without saying why."""
    from orchestrator.cli.planning import allowed_providers

    offers = [make_offer(get_gpu("A100 80GB"), "nebius"), make_offer(get_gpu("RTX 4090"), "local")]
    with pytest.raises(UserError) as raised:
        allowed_providers(target, asked, offers)
    assert str(raised.value) == message
    assert allowed_providers("cloud", "nebius,lambda", offers) == {"nebius"}


def test_json_dollars_keep_every_digit_so_spend_runs_and_plan_agree(monkeypatch, tmp_path):
    """`orch spend --json` rounded to 4 decimals (a CPU run's $0.00004 read 0.0, and totals disagreed with
    `orch runs --json`); plan's est_cost_usd and parts_usd likewise, so a tiny job's parts were all 0.0."""
    from tests.conftest import REPO

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    store = RunStore()
    for run_id, cost in (("r-00000001", 7.9e-05), ("r-00000002", 1.15e-04), ("r-00000003", 4.8e-05)):
        store.insert(record(run_id, cost=cost, job="tiny", created=time.time()))
    runs = json.loads(CliRunner().invoke(app, ["runs", "--json"]).stdout)
    spend = json.loads(CliRunner().invoke(app, ["spend", "--by", "job", "--json"]).stdout)
    assert spend["total_usd"] == spend["rows"][0]["usd"] == pytest.approx(sum(r["cost_usd"] for r in runs), rel=1e-12)
    assert spend["total_usd"] > 0.00024
    chosen = json.loads(CliRunner().invoke(app, ["plan", str(REPO / "examples" / "tiny.yaml"), "--budget", "1",
                                                 "--json"]).stdout)["chosen"]
    assert chosen["est_cost_usd"] < 0.01 and chosen["parts_usd"]["train"] > 0
    assert chosen["est_cost_usd"] == pytest.approx(sum(chosen["parts_usd"].values()), rel=1e-9)


def test_the_budget_a_refusal_asks_for_is_enough(tmp_path, monkeypatch):
    """A $0.0001018 estimate was said as `over budget: $0.00010 > $0.00010`, and `Raise --budget to at least
    0.00010` asked for the budget just refused: the amount asked for is rounded up, and plans."""
    import re

    from tests.conftest import REPO

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    job = str(REPO / "examples" / "tiny.yaml")
    refused = CliRunner().invoke(app, ["plan", job, "--budget", "0.00001", "--providers", "local"])
    assert refused.exit_code == 2
    asked = re.search(r"Raise --budget to at least ([0-9.]+)", refused.stderr)[1]
    assert CliRunner().invoke(app, ["plan", job, "--budget", asked, "--providers", "local"]).exit_code == 0


@pytest.mark.parametrize("flags, said", [
    (["--budget", "10000000"], "That is more than any --budget (at most 10,000,000): train on fewer tokens."),
    (["--budget", "10000000", "--deadline", "87600"], "That is past any --deadline (at most 87,600 h): train on fewer"),
])
def test_a_job_no_allowed_budget_or_deadline_could_meet_is_not_told_to_raise_them(tmp_path, flags, said):
    """`Raise --budget to at least 15,574,766,219.66` where --budget takes at most 10,000,000."""
    job = tmp_path / "huge.yaml"
    job.write_text("model: orch/tiny-llama\nmethod: lora\nseq_len: 256\ntrain_tokens: 9e15\n")
    result = CliRunner().invoke(app, ["plan", str(job), *flags])
    assert result.exit_code == 2 and said in result.output, result.output


def test_a_plan_notes_an_eval_set_that_is_the_training_data(tmp_path, monkeypatch):
    """Its eval loss measures memorising, and nothing said so. A launch's dry run says it too, and its JSON holds
    the plan's data and notes as `orch plan --json` does (it held neither)."""
    from tests.conftest import REPO

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    data = REPO / "examples" / "data" / "tiny_instruct.jsonl"
    job = tmp_path / "job.yaml"
    job.write_text(f"model: orch/tiny-llama\nmethod: lora\nseq_len: 64\nmax_steps: 2\ndataset: {data}\n"
                   f"eval_dataset: {data}\n")
    planned = json.loads(CliRunner().invoke(app, ["plan", str(job), "--budget", "1", "--json"]).stdout)
    assert any("`eval_dataset` is the training data itself" in note for note in planned["notes"]), planned["notes"]
    dry = CliRunner().invoke(app, ["launch", str(job), "--budget", "1", "--target", "local", "--dry-run", "--json"])
    assert {key: json.loads(dry.stdout)["plan"][key] for key in ("data", "notes")} == {
        key: planned[key] for key in ("data", "notes")}, dry.output
    job.write_text(job.read_text().replace(f"eval_dataset: {data}\n", ""))
    notes = json.loads(CliRunner().invoke(app, ["plan", str(job), "--budget", "1", "--json"]).stdout)["notes"]
    assert not any("eval_dataset" in note for note in notes), notes


@pytest.mark.parametrize(("eval_split", "noted"), [("train", True), ("test", False)])
def test_a_plan_notes_an_eval_split_that_is_the_split_trained_on(tmp_path, monkeypatch, eval_split, noted):
    """`eval_split: train` of a folder with train and test files evaluated on the training data, unsaid, where the
    same file named as eval_dataset was noted."""
    from tests.conftest import REPO

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    lines = (REPO / "examples" / "data" / "tiny_instruct.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text("".join(lines[:200]))
    (tmp_path / "data" / "test.jsonl").write_text("".join(lines[200:260]))
    job = tmp_path / "job.yaml"
    job.write_text(f"model: orch/tiny-llama\nmethod: lora\nseq_len: 64\nmax_steps: 2\ndataset: data\n"
                   f"eval_split: {eval_split}\n")
    planned = CliRunner().invoke(app, ["plan", str(job), "--budget", "1", "--json"])
    notes = json.loads(planned.stdout)["notes"]
    assert any("`eval_split` train is the split the job trains on" in note for note in notes) == noted, notes


def test_a_plan_and_its_run_say_the_records_seq_len_leaves_out(tmp_path, monkeypatch, capsys):
    """A prompt past seq_len left its record out of the run, unsaid: the plan priced the rest as the whole data."""
    from trainer.__main__ import main as train_main

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    rows = [{"instruction": f"what is {n} plus {n}?", "output": f"{2 * n}"} for n in range(200)]
    rows += [{"instruction": "the opposite of hot is cold " * 40, "output": "cold"}] * 3
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    job = tmp_path / "job.yaml"
    job.write_text("model: orch/tiny-llama\nmethod: lora\nseq_len: 64\nmicro_batch: 2\nmax_steps: 1\n"
                   "dataset: qa.jsonl\n")
    notes = json.loads(CliRunner().invoke(app, ["plan", str(job), "--budget", "1", "--json"]).stdout)["notes"]
    assert "records: 3 left out (the prompt runs past seq_len 64); a longer seq_len keeps them" in notes, notes
    capsys.readouterr()
    assert train_main([str(job), "--output", str(tmp_path / "out")]) == 0
    assert "data: records: 3 left out (the prompt runs past seq_len 64)" in capsys.readouterr().out


def test_launch_prices_owned_cards_as_plan_does_under_local_cost(tmp_path, monkeypatch):
    """`orch plan --local-cost marginal` had no `orch launch` to act on it: the launch refused the option."""
    hardware = tmp_path / "hardware.yaml"
    hardware.write_text("cards:\n  - gpu: RTX 4090\n    purchase_price_usd: 1800\n")
    monkeypatch.setenv("ORCH_HARDWARE", str(hardware))
    job = str(REPO / "examples" / "tiny.yaml")
    prices = {}
    for policy in ("amortized", "marginal"):
        planned = json.loads(CliRunner().invoke(app, ["plan", job, "--budget", "1", "--local-cost", policy,
                                                      "--providers", "local", "--json"]).stdout)
        launched = CliRunner().invoke(app, ["launch", job, "--budget", "1", "--local-cost", policy, "--providers",
                                            "local", "--dry-run", "--json"])
        assert launched.exit_code == 0, launched.output
        card = next(r for r in json.loads(launched.stdout)["plan"]["rejected"] if r["gpu"] == "RTX 4090")
        prices[policy] = card["usd_per_hour"]  # declared, not on this machine: priced all the same
        assert prices[policy] == next(r for r in planned["rejected"] if r["gpu"] == "RTX 4090")["usd_per_hour"]
    assert prices["marginal"] < prices["amortized"]


def test_local_cost_is_taken_where_only_an_ssh_pools_owned_cards_are_allowed(tmp_path, monkeypatch):
    """`--local-cost` with no owned card to plan is refused; the cards of an SSH node pool are owned cards too, which
    it prices: `--providers ssh --local-cost marginal` was refused as planning none."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app
    from tests.conftest import REPO

    hardware = tmp_path / "hardware.yaml"
    hardware.write_text("cards:\n  - gpu: RTX 4090\n    count: 1\n    ssh_pool: lab\n")
    monkeypatch.setenv("ORCH_HARDWARE", str(hardware))
    job = str(REPO / "examples" / "tiny.yaml")
    result = CliRunner().invoke(app, ["plan", job, "--budget", "1", "--providers", "ssh", "--local-cost", "marginal"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["plan", job, "--budget", "1", "--providers", "aws", "--local-cost", "marginal"])
    assert result.exit_code == 2 and "plans none of them: leave --local-cost out, or allow local or ssh" in \
        result.stderr, result.output
