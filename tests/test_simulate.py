"""The simulator: deterministic with a seed, every job ends exactly once, summaries kept online equal the ones computed
from the decisions it wrote, the shortcuts it takes give the policy's own decisions, memory does not grow with the
trace, and the CLI refuses bad input with one line."""

import csv
import gc
import json
import math
import os

import pytest
from typer.testing import CliRunner

from gpu_catalog.offers import cloud_offers
from gpu_catalog.owned import simulated_owned_offer
from orchestrator.cli.main import app
from orchestrator.cost import CONTROLLER_USD_PER_HOUR
from orchestrator.schedule.policy import JobAsk, LocalSlot, SpotMode, decide
from orchestrator.simulate.engine import POLICIES, SimSettings, Simulation, _Job, local_cards, simulate
from orchestrator.simulate.summary import DECISION_COLUMNS, SpendSeries
from orchestrator.simulate.trace import COLUMNS, generate, write_trace
from tests.conftest import REPO

runner = CliRunner()
TRACE = list(generate(300, seed=7, rate_per_h=3.0))
CARDS = "2x RTX4090, 1x A6000"
CLOUDS = list(cloud_offers()[0])


def run(policy="hybrid", seed=0, local=CARDS, rows=TRACE, preemptions_per_h=0.05):
    """(summary, decision rows in the order jobs ended)."""
    decisions = []
    summary = simulate(iter(rows), local_cards(local, simulated_owned_offer), CLOUDS,
                       SimSettings(policy, seed, preemptions_per_h), on_decision=decisions.append)
    return summary, decisions


def reference_summary(decisions: list[dict], slots_count: int) -> dict:
    """The summary computed the simple way, from every decision held in memory (what the engine did before it
    streamed). Local busy hours are end - start of local jobs never preempted (the others started in the cloud)."""
    done = [d for d in decisions if d["placement"] != "rejected"]
    waits = [d["start_h"] - d["arrival_h"] for d in done if d["start_h"] is not None]
    span = max(d["end_h"] for d in decisions) - min(d["arrival_h"] for d in decisions)
    local = [d for d in done if d["placement"].startswith("local")]
    busy_h = sum(d["end_h"] - d["start_h"] for d in local)
    return {
        "jobs": len(decisions), "completed": len(done), "rejected": len(decisions) - len(done),
        "total_cost_usd": sum(d["cost_usd"] for d in decisions),
        "local_cost_usd": sum(d["cost_usd"] - d["cloud_usd"] for d in local),
        "cloud_cost_usd": sum(d["cloud_usd"] for d in decisions),
        "deadline_misses": sum(d["deadline_h"] is not None and d["end_h"] - d["arrival_h"] > d["deadline_h"]
                               for d in done),
        "mean_wait_h": sum(waits) / len(waits) if waits else 0.0,
        "local_utilization": busy_h / (slots_count * span) if slots_count and span > 0 else 0.0,
        "preemptions": sum(d["preemptions"] for d in decisions), "makespan_h": span,
        "local_preempted": any(d["preemptions"] for d in local),
    }


def assert_matches_reference(summary: dict, decisions: list[dict], slots_count: int) -> None:
    expected = reference_summary(decisions, slots_count)
    for key in ("jobs", "completed", "rejected", "deadline_misses", "preemptions"):
        assert summary[key] == expected[key], key
    rounding_usd = 0.0001 * len(decisions)  # decision rows carry costs rounded to 4 decimals
    for key in ("total_cost_usd", "local_cost_usd"):  # the rows' costs, and owning the cards over the span
        assert summary[key] == pytest.approx(expected[key] + summary["ownership_usd"], abs=rounding_usd), key
    assert summary["cloud_cost_usd"] == pytest.approx(expected["cloud_cost_usd"], abs=rounding_usd)
    for key in ("mean_wait_h", "makespan_h"):
        assert summary[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-9), key
    if not expected["local_preempted"]:
        assert summary["local_utilization"] == pytest.approx(expected["local_utilization"], rel=1e-9, abs=1e-12)


def test_the_same_seed_gives_the_same_simulation():
    assert run(seed=3) == run(seed=3)
    assert run(seed=3)[0] != run(seed=4)[0]  # run times and preemptions are drawn from the seed


def test_every_job_ends_exactly_once_under_every_policy():
    for policy in POLICIES:
        summary, decisions = run(policy)
        assert sorted(d["job_id"] for d in decisions) == sorted(r["job_id"] for r in TRACE), policy
        assert summary["completed"] + summary["rejected"] == len(TRACE)
        assert all(d["end_h"] is not None and d["end_h"] >= d["arrival_h"] for d in decisions), policy
        assert [d["end_h"] for d in decisions] == sorted(d["end_h"] for d in decisions)  # written as jobs end
        assert all(tuple(d) == DECISION_COLUMNS for d in decisions)


def test_streamed_summaries_equal_the_in_memory_reference_under_every_policy():
    for policy in POLICIES:
        summary, decisions = run(policy, preemptions_per_h=0.5)
        slots = 0 if policy in ("cloud-only", "cloud-spot") else 3
        assert_matches_reference(summary, decisions, slots)
    assert run("cloud-spot", preemptions_per_h=0.5)[0]["preemptions"] > 0  # the reference covered preemptions


class Plain(Simulation):
    """The engine without its shortcuts: every card and every offer, for every decision."""

    def _local_slots(self, now):
        return [LocalSlot(s.slot_id, s.offer, max(0.0, s.free_at - now) + s.backlog_h) for s in self.slots]

    def _decide(self, ask, shape, slots):
        return decide(ask, shape.model, slots, self.cloud, self.calibration, spot_mode=self.spot_mode,
                      fit_cache=shape.fits)


def test_a_job_preempted_in_the_cloud_then_run_locally_keeps_its_cloud_spend_in_the_cloud():
    """A spot run preempted, then finished on an owned A6000: its spot hours were summed into "local $", about $11
    of a week's hybrid run, which made the owned cards look dearer than with no cloud at all."""
    summary, decisions = run("hybrid", preemptions_per_h=0.5)
    came_home = [d for d in decisions if d["placement"].startswith("local") and d["preemptions"]]
    assert came_home and all(0 < d["cloud_usd"] < d["cost_usd"] for d in came_home)
    assert all(d["cloud_usd"] == 0 for d in decisions if d["placement"].startswith("local") and not d["preemptions"])
    assert_matches_reference(summary, decisions, 3)


def run_both(policy: str, rows: list[dict], cards: list | None = None) -> list[tuple[dict, list[dict]]]:
    results = []
    for engine in (Simulation, Plain):
        decisions = []
        sim = engine(cards or local_cards(CARDS, simulated_owned_offer), CLOUDS, SimSettings(policy, 1, 0.5),
                     on_decision=decisions.append)
        results.append((sim.run(iter(rows)), decisions))
    return results


def test_the_shortcuts_give_the_policys_own_decisions():
    """The engine asks the policy with the cheapest offers first and one card of each kind (shapes.py); asking with
    every offer and every card must give the same decision for every job."""
    for policy in POLICIES:
        results = run_both(policy, TRACE)
        assert results[0] == results[1], policy


def test_the_policy_sees_one_card_of_each_kind_in_card_order_even_with_kinds_apart():
    """Cards 0 and 3 share one offer (a kind), card 2 has its own offer of the same GPU: with card 0 busy, the least
    busy card of each kind goes to the policy in card order (1, 2, 3), as the policy breaks ties by that order; and
    the decisions are those made with every card."""
    rtx4090, a6000 = local_cards("1x RTX4090, 1x A6000", simulated_owned_offer)
    other_rtx4090 = simulated_owned_offer(rtx4090.gpu)
    cards = [rtx4090, a6000, other_rtx4090, rtx4090]
    sim = Simulation(cards, CLOUDS, SimSettings("hybrid"))
    sim.slots[0].free_at = 5.0
    assert [s.slot_id for s in sim._local_slots(0.0)] == ["RTX A6000#1", "RTX 4090#2", "RTX 4090#3"]
    results = run_both("hybrid", TRACE, cards)
    assert results[0] == results[1]


def test_spot_first_falls_back_to_the_policys_own_choice_when_spot_is_out():
    """Where spot is preferred the engine asks with the cheapest spot offer alone first; on tight budgets and
    deadlines it is often out, and the decision must still be the one the policy makes with every offer."""
    tight = [{**row, "budget_usd": round(row["budget_usd"] * 0.18, 2),  # tight enough that some spot is out
              "deadline_h": None if row["deadline_h"] is None else row["deadline_h"] / 4} for row in TRACE]
    results = run_both("cloud-spot", tight)
    assert results[0] == results[1]
    placements = [d["placement"] for d in results[0][1]]
    assert any(p.startswith("cloud") and not p.endswith("spot") for p in placements)  # the fallback was taken
    assert "rejected" in placements and any(p.endswith("spot") for p in placements)


def test_a_shape_no_offer_can_take_gets_the_policys_own_reason_from_a_few_offers():
    sim = Simulation(local_cards(CARDS, simulated_owned_offer), CLOUDS, SimSettings("hybrid"))
    shape = sim.shapes.get("meta-llama/Llama-3.1-70B", "lora", 2048)
    assert not shape.cloud and 0 < len(shape.reason_offers) < len(sim.cloud)
    for spot_mode in SpotMode:
        for preemptions in (0, 5):  # spot allowed, then not
            for tokens, budget_usd, deadline_h in ((1, 0.0, None), (20_000_000, 50.0, 10.0), (10**9, 1e6, 1.0)):
                ask = JobAsk("j", shape.spec(tokens), budget_usd, deadline_h, preemptions)
                few, every = (decide(ask, shape.model, [], offers, spot_mode=spot_mode, fit_cache=shape.fits)
                              for offers in (shape.reason_offers, sim.cloud))
                assert few == every and few.action == "reject"


def test_a_job_sent_back_after_its_deadline_is_a_missed_deadline():
    """A spot run preempted after its deadline has passed goes back to the policy with no deadline left (before, a
    negative deadline reached the planner and raised), and the job ends, counted as a miss."""
    for policy, cards in (("cloud-spot", None), ("hybrid", CARDS), ("local-only", CARDS)):
        decisions = []
        sim = Simulation(local_cards(cards, simulated_owned_offer), CLOUDS, SimSettings(policy, 0, 0.0),
                         on_decision=decisions.append)
        row = {**TRACE[0], "arrival_h": 0.0, "deadline_h": 2.0}
        job = _Job(row, sim.shapes.get(row["model"], row["method"], row["seq_len"]))
        job.preemptions = 1  # sent back by a preemption, 3 h after its deadline
        sim.summary.arrived(0.0)
        sim._dispatch(job, 5.0)
        summary = sim.run(iter(()))
        assert len(decisions) == 1 and decisions[0]["missed_deadline"], policy
        assert summary["deadline_misses"] == 1 and summary["jobs"] == 1


def one_run_as_estimated(monkeypatch, policy: str) -> tuple[list[dict], list]:
    """One job under `policy`, never preempted, whose run takes exactly its estimate: its decision rows and the
    options its runs were started on."""
    decisions, chosen = [], []
    sim = Simulation([], CLOUDS, SimSettings(policy, 0, 0.0), on_decision=decisions.append)
    row = {**TRACE[0], "arrival_h": 0.0, "deadline_h": None}
    job = _Job(row, sim.shapes.get(row["model"], row["method"], row["seq_len"]))
    start_cloud = sim._start_cloud
    monkeypatch.setattr(sim, "_start_cloud", lambda job, option, now: chosen.append(option) or
                        start_cloud(job, option, now))
    monkeypatch.setattr(sim, "_actual", lambda estimated_h: estimated_h)
    sim.summary.arrived(0.0)
    sim._dispatch(job, 0.0)
    sim.run(iter(()))
    return decisions, chosen


def test_a_spot_run_never_preempted_runs_its_estimate_less_the_expected_recovery(monkeypatch):
    """The estimate's hours carry the recovery its expected preemptions cost; the simulation draws the preemptions
    itself, so a run it never preempted ran that recovery too."""
    decisions, chosen = one_run_as_estimated(monkeypatch, "cloud-spot")
    estimate = chosen[0].estimate
    assert chosen[0].offer.spot and estimate.recovery_hours > 0
    assert decisions[0]["end_h"] - decisions[0]["start_h"] == pytest.approx(estimate.hours - estimate.recovery_hours)


@pytest.mark.parametrize("policy", ["cloud-only", "cloud-spot"])
def test_a_cloud_run_that_takes_its_estimate_costs_its_estimate(monkeypatch, policy):
    """The simulator charged a cloud run its VM's hours alone: the last save, the idle window before autodown and a
    spot job's controller, which the estimate (and so the policy's choice) counts, were left out, a third of the
    README's plan example. A spot run never preempted pays all but the expected recovery."""
    decisions, chosen = one_run_as_estimated(monkeypatch, policy)
    estimate = chosen[0].estimate
    assert {"last_save", "idle"} <= set(estimate.parts_usd) and chosen[0].offer.spot == (policy == "cloud-spot")
    controller_usd_per_hour = CONTROLLER_USD_PER_HOUR if "controller" in estimate.parts_usd else 0.0
    unrecovered_usd = estimate.parts_usd["recovery"] + estimate.recovery_hours * controller_usd_per_hour
    assert decisions[0]["cost_usd"] == pytest.approx(estimate.cost_usd - unrecovered_usd, abs=1e-4)


def test_a_spot_run_preempted_while_it_starts_up_has_trained_nothing(monkeypatch):
    """Its work was counted from the launch request, start-up included: a run preempted before its first step was
    credited tokens, and spot cost and deadline misses came out too low."""
    decisions = []
    sim = Simulation([], CLOUDS, SimSettings("cloud-spot", 0, 1.0), on_decision=decisions.append)
    row = {**TRACE[0], "arrival_h": 0.0, "deadline_h": None}
    job = _Job(row, sim.shapes.get(row["model"], row["method"], row["seq_len"]))
    tokens = job.remaining_tokens
    start_cloud = sim._start_cloud

    def preempted_before_its_start_up_ends(job, option, now):
        monkeypatch.setattr(sim.rng, "expovariate", lambda rate: 0.9 * option.estimate.startup_hours)
        start_cloud(job, option, now)

    monkeypatch.setattr(sim, "_start_cloud", preempted_before_its_start_up_ends)
    monkeypatch.setattr(sim, "_actual", lambda estimated_h: estimated_h)
    monkeypatch.setattr(sim.rng, "uniform", lambda low, high: 0.0)  # a checkpoint the moment before
    sim.summary.arrived(0.0)
    sim._dispatch(job, 0.0)
    sim.run(iter(()))
    assert "gave up after" in decisions[0]["reason"] and job.remaining_tokens == tokens


def test_hybrid_with_no_owned_cards_says_it_ran_as_cloud_only(tmp_path, monkeypatch):
    """With no --local and no hardware file, hybrid placed every job in the cloud (util 0%) and said nothing."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    monkeypatch.delenv("ORCH_HARDWARE", raising=False)  # and the default file is absent: the test's home is bare
    write_trace(TRACE[:5], tmp_path / "t.csv")
    result = runner.invoke(app, ["simulate", "--trace", str(tmp_path / "t.csv"), "--policy", "hybrid", "--json"])
    assert result.exit_code == 0, result.output
    assert "note: no owned cards" in result.stderr and "hybrid places every job in the cloud" in result.stderr


def test_a_spot_rate_that_never_lets_a_run_finish_still_ends_every_job():
    summary, decisions = run("cloud-spot", rows=TRACE[:20], preemptions_per_h=500.0)
    assert len(decisions) == 20 and summary["rejected"] > 0
    assert any("gave up after" in d["reason"] for d in decisions)


def test_policies_behave_as_named():
    local_only, cloud_only, spot = run("local-only")[0], run("cloud-only")[0], run("cloud-spot")[0]
    assert local_only["cloud_cost_usd"] == 0 and local_only["local_utilization"] > 0
    assert cloud_only["local_cost_usd"] == 0 and cloud_only["preemptions"] == 0
    assert spot["preemptions"] > 0
    hybrid = run("hybrid")[0]
    assert hybrid["local_cost_usd"] > 0 and hybrid["cloud_cost_usd"] > 0
    assert hybrid["deadline_misses"] < local_only["deadline_misses"]  # bursting to the cloud is the point


def test_memory_does_not_grow_with_the_trace():
    """Rows stream in and decisions stream out: a trace four times longer holds about as many objects at its peak.
    (Objects the garbage collector tracks, sampled every 250 decisions: a kept row, job or decision per job would
    add thousands.)"""

    def peak_objects(jobs: int) -> int:
        peak, ended = 0, 0

        def sample(row: dict) -> None:
            nonlocal peak, ended
            ended += 1
            if ended % 250 == 0:
                peak = max(peak, len(gc.get_objects()))

        simulate(generate(jobs, seed=5), local_cards(CARDS, simulated_owned_offer), CLOUDS, SimSettings("hybrid"),
                 on_decision=sample)
        return peak

    small, large = peak_objects(1000), peak_objects(4000)
    assert large < small + 1500, (small, large)


def test_the_spend_series_stays_bounded_and_ends_at_the_total():
    series = SpendSeries(max_points=10)
    for index in range(1000):
        series.add("cloud", float(index), 1.0)
    hours, usd = series.series()["cloud"]
    assert len(hours) <= 21 and (hours[-1], usd[-1]) == (999.0, 1000.0)
    assert hours == sorted(hours) and usd == sorted(usd)


def test_generate_then_simulate_from_the_cli(tmp_path):
    trace = tmp_path / "trace.csv"
    assert runner.invoke(app, ["simulate", "--generate", "120", "--seed", "2", "--out", str(trace)]).exit_code == 0
    with open(trace, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 120 and tuple(rows[0]) == COLUMNS
    result = runner.invoke(app, ["simulate", "--trace", str(trace), "--local", CARDS, "--seed", "1", "--json",
                                 "--out", str(tmp_path / "sim")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    with open(tmp_path / "sim" / "decisions.csv", newline="") as f:
        written = [_typed(d) for d in csv.DictReader(f)]
    assert len(written) == 120
    assert_matches_reference(summary, written, 3)
    assert (tmp_path / "sim" / "simulation.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in (tmp_path / "sim").iterdir()) == ["decisions.csv", "simulation.png"]
    # what it wrote is one line to a script or a log, however long its paths (it was folded at 80 columns)
    deep = tmp_path / ("a-long-folder-name-" * 4) / "sim"
    deep.parent.mkdir()
    said = runner.invoke(app, ["simulate", "--trace", str(trace), "--local", CARDS, "--out", str(deep)]).stderr
    assert f"wrote {deep / 'decisions.csv'} (hybrid) and {deep / 'simulation.png'}\n" in said, said
    compared = json.loads(runner.invoke(app, ["simulate", "--trace", str(trace), "--local", "1x RTX4090",
                                              "--policy", "all", "--json"]).stdout)
    assert set(compared) == set(POLICIES)


def _typed(row: dict) -> dict:
    number = lambda text: float(text) if text else None  # noqa: E731
    return {**row, "arrival_h": float(row["arrival_h"]), "start_h": number(row["start_h"]),
            "end_h": float(row["end_h"]), "cost_usd": float(row["cost_usd"]), "cloud_usd": float(row["cloud_usd"]),
            "deadline_h": number(row["deadline_h"]), "preemptions": int(row["preemptions"])}


GOOD_ROW = {"job_id": "j1", "arrival_h": "0.5", "model": "meta-llama/Llama-3.1-8B", "method": "lora",
            "seq_len": "2048", "train_tokens": "20000000", "deadline_h": "12", "budget_usd": "50", "priority": "0"}


def _trace_with(tmp_path, **changes) -> str:
    path = tmp_path / "t.csv"
    write_trace([GOOD_ROW, {**GOOD_ROW, "job_id": "j2", "arrival_h": "1.0", **changes}], path)
    return str(path)


BAD_ROWS = [
    ({"train_tokens": "-5"}, "column train_tokens"), ({"train_tokens": "nan"}, "column train_tokens"),
    ({"train_tokens": "1e30"}, "column train_tokens"), ({"train_tokens": "12.5"}, "column train_tokens"),
    ({"deadline_h": "inf"}, "column deadline_h"), ({"deadline_h": "-3"}, "column deadline_h"),
    ({"deadline_h": "0"}, "column deadline_h"), ({"budget_usd": "-1"}, "column budget_usd"),
    ({"budget_usd": "nan"}, "column budget_usd"), ({"arrival_h": "nan"}, "column arrival_h"),
    ({"arrival_h": "0.1"}, "sort the trace by arrival_h"), ({"model": "no-such-model"}, "column model"),
    ({"method": "dora"}, "column method"), ({"seq_len": "0"}, "column seq_len"), ({"seq_len": "abc"}, "column seq_len"),
    ({"seq_len": "99999999"}, "column seq_len"),
    ({"job_id": " "}, "column job_id"), ({"priority": "99999999999999999999"}, "column priority"),
    ({"job_id": "j1"}, "an earlier row's id"), ({"budget_usd": "1e30"}, "column budget_usd"),
    # an id as every name orch keeps: a formula went into decisions.csv, and 120,000 characters were taken
    ({"job_id": '=HYPERLINK("http://e")'}, "column job_id"), ({"job_id": "j" * 101}, "column job_id"),
    ({"deadline_h": "1e9"}, "column deadline_h"),
    # int() and float() read these, and no flag takes them
    ({"train_tokens": "١٠٠٠"}, "column train_tokens"), ({"seq_len": "2_048"}, "column seq_len: '2_048' is not a whole"),
    ({"budget_usd": "1_000"}, "column budget_usd"),
    ({"budget_usd": "5e-324"}, "column budget_usd: 5e-324 is too near 0"),  # as the flag and job key refuse it
    ({"deadline_h": "5e-324"}, "column deadline_h: 5e-324 is too near 0"),
    # as a job file's model: they passed, and the first plan of the job refused them with no file, line or column
    ({"model": "meta-llama/Llama-3.1-8B\x07"}, "column model: `model` must be a name or a path"),
    ({"model": "meta-llama/Llama-3.1-8B\u202e"}, "column model: `model` must be a name or a path"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_ROWS)
def test_a_bad_trace_row_is_one_line_naming_file_line_and_column(tmp_path, changes, message):
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path, **changes), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "line 3" in result.stderr, result.stderr
    assert message in " ".join(result.stderr.split()) and "t.csv" in result.stderr
    assert not (tmp_path / "out" / "decisions.csv").exists()  # a failed run leaves no half-written decisions


@pytest.mark.parametrize("changes", [{"seq_len": "1e3"}, {"seq_len": "2048.0"}, {"priority": "1e2"}])
def test_a_whole_number_in_exponent_or_point_form_is_read_as_the_flags_read_it(tmp_path, changes):
    """`--seq-len 1e3` and this file's train_tokens `1e6` were read, and seq_len `1e3` was "not a whole number
    written with the digits 0-9"."""
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path, **changes), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path, seq_len="1.5"), "--out",
                                 str(tmp_path / "out2")])
    assert result.exit_code == 2 and "column seq_len: '1.5' is not a whole number" in result.stderr, result.output


def _bad_files(tmp_path) -> list[tuple[list[str], str]]:
    def file(name: str, data: bytes) -> str:
        (tmp_path / name).write_bytes(data)
        return str(tmp_path / name)

    header = ",".join(COLUMNS).encode()
    good = ",".join(GOOD_ROW.values()).encode()
    a_file = file("plain.txt", b"x")
    return [
        (["--trace", file("latin1.csv", header + b"\n" + good.replace(b"j1", b"j\xe91") + b"\n")], "UTF-8"),
        (["--trace", file("bom.csv", b"\xff\xfe" + header)], "UTF-8"),
        (["--trace", file("cols.csv", b"job_id,arrival_h\nx,1\n")], "lacks columns"),
        (["--trace", file("tabs.csv", header.replace(b",", b"\t") + b"\n")], "separate the columns with commas"),
        (["--trace", file("quote.csv", header + b"\n" + good + b'\n"j2,1\n')], "line 3: not CSV (unexpected end"),
        (["--trace", file("budget.csv", header.replace(b"budget_usd", b"budget") + b"\n")],
         "lacks column budget_usd and has column 'budget' (misspelt?)"),
        # each column said in its one line, and each counted once: 100,000 of them took minutes, and filled the line
        (["--trace", file("wide.csv", header + b"".join(b",x%d" % n for n in range(100_000)) + b"\n")],
         "has columns 'x0', 'x1', 'x2' and 99,997 more, which no simulation reads"),
        (["--trace", file("twice.csv", header + b",job_id\n" + good + b",j2\n")], "names column job_id twice"),
        (["--trace", file("extra.csv", header + b",budget\n" + good + b",5\n")],
         "has column 'budget', which no simulation reads"),
        (["--trace", str(tmp_path / "cols.csv"), "--local", "0x RTX4090"], "N of 1 or more"),
        (["--trace", str(tmp_path / "cols.csv"), "--generate", "5", "--out", str(tmp_path / "g.csv")],
         "give one of them"),
        (["--trace", file("long.csv", header + b"\n" + good + b",extra\n")], "10 fields"),
        (["--trace", file("short.csv", header + b"\n" + good.rsplit(b",", 2)[0] + b"\n")], "7 fields"),
        (["--trace", file("nul.csv", header + b"\n" + good.replace(b"j1", b"j\x001") + b"\n")], "control"),
        # the line the field is on: Python's reader counted it a line early
        (["--trace", file("huge.csv", header + b"\n" + good + b"\n" + good.replace(b"j1", b"j" * 200_000) + b"\n")],
         "line 3: not CSV (a cell is longer than 131,072 characters"),
        (["--trace", file("late.csv", header + b"\n" + good + b"\n" + good.replace(b"j1", b"j\xe9") + b"\n")],
         "line 3: not UTF-8"),
        (["--trace", str(tmp_path / "no.csv")], "does not exist"),
        (["--trace", file("ok.csv", header + b"\n" + good + b"\n"), "--policy", "fifo"], "--policy must be one of"),
        (["--trace", str(tmp_path / "ok.csv"), "--spot-preemptions-per-h", "-1"], "--spot-preemptions-per-h"),
        (["--trace", str(tmp_path / "ok.csv"), "--spot-preemptions-per-h", "nan"], "--spot-preemptions-per-h"),
        (["--trace", str(tmp_path / "ok.csv"), "--spot-preemptions-per-h", "inf"], "--spot-preemptions-per-h"),
        (["--trace", str(tmp_path / "ok.csv"), "--out", a_file], "is a file"),
        (["--trace", str(tmp_path / "ok.csv"), "--out", a_file + "/sub"], "is a file, not a folder"),
        (["--trace", str(tmp_path / "ok.csv"), "--local", "5000x RTX4090"], "--local"),
        (["--trace", str(tmp_path / "ok.csv"), "--local", "2x RTX4090", "--policy", "cloud-spot"],
         "--local names owned cards, and --policy cloud-spot uses none"),  # they were left out unsaid
        (["--generate", "5"], "--generate needs"),
        (["--generate", "0", "--out", str(tmp_path / "g.csv")], "--generate must be at least 1 and at most"),
        (["--generate", "5", "--rate", "0", "--out", str(tmp_path / "g.csv")], "--rate"),
        (["--generate", "5", "--rate", "-2", "--out", str(tmp_path / "g.csv")], "--rate"),
        (["--generate", "5", "--rate", "nan", "--out", str(tmp_path / "g.csv")], "--rate"),
        (["--generate", "5", "--rate", "inf", "--out", str(tmp_path / "g.csv")], "--rate"),
        (["--generate", "5", "--out", str(tmp_path / "missing" / "g.csv")], "does not exist"),
        (["--generate", "5", "--out", str(tmp_path)], "is a folder"),
    ]


def test_bad_simulator_input_is_one_line_and_exit_2(tmp_path):
    for args, message in _bad_files(tmp_path):
        result = runner.invoke(app, ["simulate", *args])
        assert result.exit_code == 2, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert message in " ".join(result.stderr.split()), (args, result.stderr)
    assert not (tmp_path / "g.csv").exists()


def test_an_out_folder_under_a_missing_folder_is_refused_before_any_work(tmp_path):
    """--out's folder is made, but not the folders above it: a missing one is a typo (`ok.csv/sub` for `ok/sub`), as
    every other --out refuses it; the simulation made the whole chain."""
    out = tmp_path / "ok.csv" / "sub"
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr == f"error: --out '{out}': folder '{out.parent}' does not exist; create it first.\n"
    assert not out.parent.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        result = runner.invoke(app, ["simulate", "--generate", "5", "--out", str(folder / "g.csv")])
        assert result.exit_code == 2 and "not writable" in result.stderr
    finally:
        folder.chmod(0o700)


def test_a_trace_with_no_deadlines_or_a_preemption_rate_of_zero_runs():
    rows = [{**row, "deadline_h": None} for row in TRACE[:50]]
    summary, decisions = run("cloud-spot", rows=rows, preemptions_per_h=0.0)
    assert summary["preemptions"] == 0 and summary["deadline_misses"] == 0 and len(decisions) == 50
    assert not math.isnan(summary["mean_wait_h"])


def test_an_arrival_past_any_trace_is_refused_naming_file_line_and_column(tmp_path):
    """1e308 h + any run time is 1e308 h: every job ran in no time, and the trace "completed" with a makespan of 0."""
    for arrival_h in ("1e308", "2e9"):
        result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path, arrival_h=arrival_h), "--json"])
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "t.csv, line 3, column arrival_h" in result.stderr and "at most 1e+09" in result.stderr
    # 28 years: where --generate's million-job trace at 4 an hour ends, so the cap is not MAX_DEADLINE_H's ten
    assert runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path, arrival_h="250000")]).exit_code == 0


def test_generate_refuses_a_trace_longer_than_a_trace_may_be(tmp_path):
    """A million jobs at one in 1000 hours span 1e9 hours: a trace the simulator would refuse to read back."""
    result = runner.invoke(app, ["simulate", "--generate", "1000000", "--rate", "0.001", "--out",
                                 str(tmp_path / "g.csv")])
    assert result.exit_code == 2 and "raise --rate or generate fewer jobs" in " ".join(result.stderr.split())
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("local", ["", " ", ",,,"])
def test_a_local_naming_no_card_is_refused_and_leaving_it_out_means_none(tmp_path, local):
    """`--local ''` ran as "no cards" while `--local '0x RTX4090'` was refused; left out, there are none, as before."""
    trace = _trace_with(tmp_path)
    result = runner.invoke(app, ["simulate", "--trace", trace, "--local", local])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "error: --local: give at least one card, e.g. '2x RTX4090' (or leave --local " \
                                    "out for none)."
    assert runner.invoke(app, ["simulate", "--trace", trace, "--json"]).exit_code == 0


def test_a_trace_model_that_names_a_file_is_no_model_not_bad_json(tmp_path):
    """`../../etc/passwd` in the model column was reported as "is not valid JSON: Expecting value"."""
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path, model=str(tmp_path / "passwd"))])
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2 and "line 3, column model" in message, result.output
    assert "is a file, and neither a known model name nor a model folder with config.json" in message
    assert "JSON" not in message


@pytest.mark.parametrize("local", ["1x RTX4090,,1x A6000", "1x RTX4090,", ", 1x A6000"])
def test_a_local_with_an_empty_entry_is_refused(tmp_path, local):
    """`1x RTX4090,,1x A6000` ran with the empty entry dropped unsaid: a card left out reads the same."""
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path), "--local", local])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "error: --local: an entry between commas is empty; give 'N x GPU' entries " \
                                    "separated by single commas, e.g. '2x RTX4090, 1x A6000'."


def test_a_local_card_named_without_a_count_is_one_card_and_semicolons_are_told(tmp_path):
    """`--local 'rtx 4090'` was split at its `x ` into a count 'rt' and refused; `a100;4090` got a GPU-name error."""
    trace = _trace_with(tmp_path)
    one = runner.invoke(app, ["simulate", "--trace", trace, "--local", "rtx 4090", "--json"])
    same = runner.invoke(app, ["simulate", "--trace", trace, "--local", "1x RTX 4090", "--json"])
    assert one.exit_code == 0 and one.stdout == same.stdout, one.output
    result = runner.invoke(app, ["simulate", "--trace", trace, "--local", "1x A100;1x RTX 4090"])
    assert result.exit_code == 2 and "separate them with commas" in result.stderr
    for twice in ("2x H100 (x2)", "3x H100 x 2"):
        result = runner.invoke(app, ["simulate", "--trace", trace, "--local", twice])
        assert result.exit_code == 2 and "gives its count twice" in result.stderr, twice
    for miscounted in ("-1x RTX 4090", "2.5x A6000", "1e308x A6000"):  # the last two were looked up as GPU names
        result = runner.invoke(app, ["simulate", "--trace", trace, "--local", miscounted])
        assert result.exit_code == 2 and "is not 'N x GPU' with N of 1 or more" in result.stderr, miscounted
    assert runner.invoke(app, ["simulate", "--trace", trace, "--local", "A100 x 2", "--json"]).exit_code == 0
    # a card given twice was summed unsaid, 1024 at a time past the cap; `٢x` (Arabic-Indic) was read as 2
    for repeated in ("2x RTX4090, 2x RTX 4090", ", ".join(["1024x RTX4090"] * 3)):
        result = runner.invoke(app, ["simulate", "--trace", trace, "--local", repeated])
        assert result.exit_code == 2 and "RTX 4090 is given more than once" in result.stderr, result.output
    assert "e.g. '4x RTX 4090'" in runner.invoke(app, ["simulate", "--trace", trace, "--local",
                                                        "1x RTX4090, 3x RTX 4090"]).stderr
    result = runner.invoke(app, ["simulate", "--trace", trace, "--local", "\u0662x RTX4090"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output


@pytest.mark.parametrize(("args", "named"), [
    (["--local", "1x RTX4090", "--policy", "all"], "--local, --policy do nothing with --generate"),
    (["--policy", "hybrid"], "--policy does nothing with --generate"),  # the default, given: still refused
    (["--spot-preemptions-per-h", "0.1"], "--spot-preemptions-per-h does nothing with --generate"),
])
def test_generate_refuses_the_flags_it_would_ignore(tmp_path, args, named):
    """--generate only writes a trace: a --local or --policy given with it was dropped unsaid."""
    out = tmp_path / "g.csv"
    result = runner.invoke(app, ["simulate", "--generate", "10", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and named in result.stderr, result.stderr
    assert not out.exists()


def test_a_simulation_refuses_a_rate_it_would_ignore(tmp_path):
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path), "--rate", "2"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "error: --rate does nothing with --trace (it paces --generate's arrivals): " \
                                    "leave it out."


def test_a_rejected_job_counts_as_rejected_only_not_late(tmp_path):
    """A job the simulator rejects (a budget nothing meets) was counted both rejected and late, one failure shown
    twice."""
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path, budget_usd="0.0001"), "--json", "--out",
                                 str(tmp_path / "sim")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rejected"] == 1 and summary["deadline_misses"] == 0, summary
    with open(tmp_path / "sim" / "decisions.csv", newline="") as f:
        rejected = [d for d in csv.DictReader(f) if d["placement"] == "rejected"]
    assert [(d["job_id"], d["missed_deadline"]) for d in rejected] == [("j2", "False")]


def test_generate_refuses_to_replace_an_existing_trace_without_force(tmp_path):
    """`--generate 10 --out trace.csv` replaced a 200-job trace unasked; `orch import --out` already asked first."""
    trace = tmp_path / "trace.csv"
    assert runner.invoke(app, ["simulate", "--generate", "20", "--seed", "1", "--out", str(trace)]).exit_code == 0
    before = trace.read_bytes()
    result = runner.invoke(app, ["simulate", "--generate", "10", "--out", str(trace)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and "--force" in result.stderr
    assert trace.read_bytes() == before
    assert runner.invoke(app, ["simulate", "--generate", "10", "--out", str(trace), "--force"]).exit_code == 0
    assert len(trace.read_text().splitlines()) == 11
    refused = runner.invoke(app, ["simulate", "--trace", str(trace), "--force"])  # it would replace nothing
    assert refused.exit_code == 2 and "no --out is given: leave --force out" in refused.stderr


def test_a_simulation_keeps_the_results_an_out_folder_holds_unless_forced(tmp_path):
    """The second `--trace T --out d` replaced d/decisions.csv and d/simulation.png unasked, and --force was refused."""
    trace, out = tmp_path / "trace.csv", tmp_path / "d"
    assert runner.invoke(app, ["simulate", "--generate", "5", "--seed", "1", "--out", str(trace)]).exit_code == 0
    assert runner.invoke(app, ["simulate", "--trace", str(trace), "--out", str(out)]).exit_code == 0
    before = (out / "decisions.csv").read_bytes()
    again = runner.invoke(app, ["simulate", "--trace", str(trace), "--out", str(out), "--seed", "2"])
    assert again.exit_code == 2 and "already holds decisions.csv and simulation.png: pass --force" in again.stderr
    assert (out / "decisions.csv").read_bytes() == before
    assert runner.invoke(app, ["simulate", "--trace", str(trace), "--out", str(out), "--force"]).exit_code == 0


def test_local_utilization_is_never_over_one(tmp_path):
    """Three jobs back to back on one card: busy hours summed job by job came to the span plus a rounding error, and
    the JSON said `"local_utilization": 1.0000000000000002`."""
    trace = tmp_path / "trace.csv"
    trace.write_text(",".join(COLUMNS) + "\n" + "".join(
        f"j{n},{arrival},meta-llama/Llama-3.1-8B,qlora,1024,20000000,,100,0\n"
        for n, arrival in enumerate(("0.1", "0.2", "0.3"))))
    result = runner.invoke(app, ["simulate", "--trace", str(trace), "--local", "1x RTX 4090", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["completed"] == 3 and summary["local_utilization"] == 1.0, summary


def test_an_empty_path_is_refused_naming_its_flag_not_read_as_the_working_folder(tmp_path, monkeypatch):
    """typer reads '' as Path('.'): `--out ''` wrote decisions.csv and simulation.png into the working folder, and
    `--trace ''` was called a folder, with advice to `--generate N --out .`."""
    trace = _trace_with(tmp_path)
    monkeypatch.chdir(tmp_path)
    for args, said in ((["--trace", trace, "--out", ""], "--out is empty: give a file or folder name"),
                       (["--generate", "5", "--out", " "], "--out is empty: give a file or folder name"),
                       (["--trace", ""], "--trace is empty: give a trace file")):
        result = runner.invoke(app, ["simulate", *args])
        assert result.exit_code == 2 and result.stderr == f"error: {said}.\n", (args, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == [os.path.basename(trace)]


def test_policy_all_without_owned_cards_says_it_compares_local_only(tmp_path):
    """`--policy all` with no --local said "--policy local-only needs owned cards", a policy the user never named."""
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path), "--policy", "all"])
    assert result.exit_code == 2 and result.stderr.startswith(
        'error: --policy all compares local-only, which needs owned cards: give --local "2x RTX4090", or declare '
        "them in the hardware file (") and result.stderr.count("\n") == 1
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path), "--policy", "local-only"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --policy local-only needs owned cards")


def test_without_local_the_hardware_files_cards_are_simulated(tmp_path, monkeypatch):
    """`--policy all` was refused for want of --local where the hardware file declares cards, which `orch report`'s
    hybrid question simulates on its own."""
    hardware = tmp_path / "hardware.yaml"
    hardware.write_text("cards:\n  - gpu: RTX 4090\n    count: 2\n")
    monkeypatch.setenv("ORCH_HARDWARE", str(hardware))
    trace = _trace_with(tmp_path)
    declared = runner.invoke(app, ["simulate", "--trace", trace, "--policy", "all", "--json"])
    given = runner.invoke(app, ["simulate", "--trace", trace, "--policy", "all", "--local", "2x RTX4090", "--json"])
    assert declared.exit_code == 0 and json.loads(declared.stdout) == json.loads(given.stdout)


@pytest.mark.parametrize("local", ["1025x H100", "1000x H100, 25x A100 80GB"])
def test_more_cards_than_the_simulator_models_are_refused_in_all(tmp_path, local):
    """The cap was per kind: 36 kinds of 1,024 passed."""
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path), "--local", local])
    assert result.exit_code == 2 and "error: --local: 1,025 cards is past the 1,024 the simulator models" in \
        result.stderr, result.stderr


def test_a_hardware_file_past_the_simulators_cards_is_refused_before_any_work(tmp_path, monkeypatch):
    """--local refused 1,025 cards, and a hardware file of 200 pools of 1,024 each ran for minutes."""
    hardware = tmp_path / "hardware.yaml"
    hardware.write_text("cards:\n" + "".join(f"  - gpu: H100\n    count: 600\n    ssh_pool: p{i}\n"
                                              for i in range(2)))
    monkeypatch.setenv("ORCH_HARDWARE", str(hardware))
    result = runner.invoke(app, ["simulate", "--trace", _trace_with(tmp_path), "--policy", "hybrid"])
    assert result.exit_code == 2 and f"the hardware file ({hardware}) declares 1,200 cards, past the 1,024" in \
        result.stderr, result.stderr
    # `orch report`, whose hybrid section simulates them, worked 34 s and then lost the whole report to it
    report = tmp_path / "report"
    result = runner.invoke(app, ["report", "--job", str(REPO / "examples" / "tiny.yaml"), "--trace",
                                 _trace_with(tmp_path), "--out", str(report)])
    assert result.exit_code == 2 and "declares 1,200 cards" in result.stderr and "without --trace" in result.stderr
    assert not report.exists()


def test_a_missing_trace_is_made_where_it_could_be_written(tmp_path):
    """`--trace /proc/x` advised `orch simulate --generate N --out /proc/x`, a file that cannot be written: the
    advice names the trace's own path only where --generate could write it, for simulate and report alike."""
    job = REPO / "examples" / "tiny.yaml"
    for trace, out in ((tmp_path / "no.csv", tmp_path / "no.csv"), ("/proc/x", "trace.csv"),
                       (tmp_path / "missing" / "x.csv", "trace.csv"), (tmp_path, "trace.csv"),
                       (tmp_path / "no.jsonl", "trace.csv")):  # --generate writes .csv only
        for args in (["simulate", "--trace", str(trace)],
                     ["report", "--job", str(job), "--trace", str(trace), "--out", str(tmp_path / "report")]):
            result = runner.invoke(app, args)
            assert result.exit_code == 2 and result.stderr.endswith(
                f"make one with `orch simulate --generate N --out {out}`.\n"), (args, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("force", [[], ["--force"]])
@pytest.mark.parametrize("name", ["decisions.csv", "simulation.png"])
def test_a_folder_or_pipe_where_the_simulation_writes_a_file_is_refused_before_any_work(tmp_path, name, force):
    """--force replaces files, not folders: with a folder named simulation.png in --out, the whole simulation ran and
    wrote decisions.csv, then failed on `simulation.png: Is a directory` (a pipe there hung the plot); without
    --force, the advice was to pass --force. Refused up front, as `orch report --out` refuses it, nothing written."""
    trace, out = _trace_with(tmp_path), tmp_path / "o"
    (out / name).mkdir(parents=True)
    result = runner.invoke(app, ["simulate", "--trace", trace, "--out", str(out), *force])
    assert result.exit_code == 2 and result.stderr == (
        f"error: --out {out} holds a folder named {name}, where the simulation writes a file: move it, or choose "
        "another --out.\n"), result.stderr
    assert [p.name for p in out.iterdir()] == [name]
    (out / name).rmdir()
    os.mkfifo(out / name)
    result = runner.invoke(app, ["simulate", "--trace", trace, "--out", str(out), *force])
    assert result.exit_code == 2 and result.stderr == (
        f"error: --out {out} holds a device or a pipe named {name}, where the simulation writes a file: move it, or "
        "choose another --out.\n"), result.stderr
    assert [p.name for p in out.iterdir()] == [name]


@pytest.mark.parametrize("make", ["file", "folder", "loop"])
def test_a_name_beside_an_output_ending_in_partial_is_the_users_and_left_alone(tmp_path, make):
    """Outputs were written as OUT.partial, then renamed: a file of the user's by that name was deleted, a folder
    failed the write after all the work (naming a file never given), and a loop of links was blamed on the disk. The
    partial name is now hidden and unique: what stands there is left as it was, and the output written."""
    taken = tmp_path / "t.csv.partial"
    if make == "file":
        taken.write_text("precious\n")
    elif make == "folder":
        taken.mkdir()
    else:
        taken.symlink_to(taken.name)
    result = runner.invoke(app, ["simulate", "--generate", "5", "--out", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.csv.partial"]
    assert make != "file" or taken.read_text() == "precious\n"


# The numeric flags are read as every other command reads its own (orchestrator/cli/options.py: whole_option as
# `orch submit --priority`, number_option as `orch estimate --lora-dropout`) and range-checked by checks.number:
# typer's own int and float took `1_000`, refused `1e3` as "Input should be a valid integer", and let any seed by.
NOT_WHOLE = ("is not a whole number: write it with the digits 0-9 (no _ between them, and a comma only between groups "
             "of three: 2,048).")
NOT_A_NUMBER = "is not a number: write it with the digits 0-9 (no _ or , between them)."
SIMULATE_NUMBERS_REFUSED = [
    ("--generate", "1_000", f"--generate '1_000' {NOT_WHOLE}"),
    ("--generate", "", f"--generate '' {NOT_WHOLE}"),
    ("--generate", "nan", "--generate must be a whole number, got nan."),
    ("--generate", "2.5", "--generate must be a whole number, got 2.5."),
    ("--generate", str(10**30), f"--generate must be at least 1 and at most 10000000, got {10**30}."),
    ("--generate", "-1", "--generate must be at least 1 and at most 10000000, got -1."),
    ("--generate", "0", "--generate must be at least 1 and at most 10000000, got 0."),
    ("--seed", "1_000", f"--seed '1_000' {NOT_WHOLE}"),
    ("--seed", "", f"--seed '' {NOT_WHOLE}"),
    ("--seed", "nan", "--seed must be a whole number, got nan."),
    ("--seed", str(10**30), f"--seed must be at least 0 and at most 4294967295, got {10**30}."),
    ("--seed", "-1", "--seed must be at least 0 and at most 4294967295, got -1."),
    ("--rate", "1_000", f"--rate '1_000' {NOT_A_NUMBER}"),
    ("--rate", "", f"--rate '' {NOT_A_NUMBER}"),
    ("--rate", "nan", "--rate (arrivals per hour) must be a finite number, got nan."),
    ("--rate", str(10**30), "--rate (arrivals per hour) must be at least"),
    ("--rate", "-1", "--rate (arrivals per hour) must be at least"),
    ("--spot-preemptions-per-h", "1_000", f"--spot-preemptions-per-h '1_000' {NOT_A_NUMBER}"),
    ("--spot-preemptions-per-h", "", f"--spot-preemptions-per-h '' {NOT_A_NUMBER}"),
    ("--spot-preemptions-per-h", "nan", "--spot-preemptions-per-h must be a finite number, got nan."),
    ("--spot-preemptions-per-h", str(10**30), "--spot-preemptions-per-h must be at least 0 and at most 3600, got "
                                              "1e+30."),
    ("--spot-preemptions-per-h", "-1", "--spot-preemptions-per-h must be at least 0 and at most 3600, got -1."),
    ("--spot-preemptions-per-h", "1e-320", "--spot-preemptions-per-h 1e-320 is too near 0 to compute with"),
]


def _simulate_args(tmp_path, flag: str, value: str) -> list[str]:
    """`flag value` in the mode that reads it: --generate's own flags with --generate, the others with --trace."""
    if flag in ("--generate", "--rate"):
        generate = [] if flag == "--generate" else ["--generate", "5"]
        return [*generate, flag, value, "--out", str(tmp_path / "g.csv")]
    return ["--trace", _trace_with(tmp_path), flag, value, "--json"]


@pytest.mark.parametrize(("flag", "value", "message"), SIMULATE_NUMBERS_REFUSED)
def test_a_simulate_number_is_read_and_refused_as_every_commands_are(tmp_path, flag, value, message):
    result = runner.invoke(app, ["simulate", *_simulate_args(tmp_path, flag, value)])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr
    assert "Input should be" not in result.stderr
    assert not (tmp_path / "g.csv").exists()


@pytest.mark.parametrize(("flag", "value"), [
    ("--generate", "1e3"), ("--generate", "1000.0"), ("--generate", " 1000 "),
    ("--seed", "1e3"), ("--seed", "0"), ("--seed", str(2**32 - 1)), ("--seed", "+7"),
    ("--rate", "1e3"), ("--spot-preemptions-per-h", "1e-1"), ("--spot-preemptions-per-h", "0"),
])
def test_a_simulate_number_takes_the_forms_other_commands_take(tmp_path, flag, value):
    result = runner.invoke(app, ["simulate", *_simulate_args(tmp_path, flag, value)])
    assert result.exit_code == 0, result.output


def test_a_seed_written_as_1e3_is_the_seed_1000(tmp_path):
    """`--seed 1e3` is the seed 1000, read as `--priority 1e3` is 1000: the same trace, not a float's."""
    written = {}
    for seed in ("1000", "1e3"):
        out = tmp_path / f"{seed}.csv"
        assert runner.invoke(app, ["simulate", "--generate", "20", "--seed", seed, "--out", str(out)]).exit_code == 0
        written[seed] = out.read_text()
    assert written["1000"] == written["1e3"]


def test_owned_cards_cost_their_power_while_busy_and_their_purchase_over_the_span():
    """The cards were charged the hardware file's price, the purchase spread over its 25% utilization, for each
    busy hour: kept 70-96% busy in the simulation, they cost 2-3x what owning them for the span does, and hybrid
    came out dearer than cloud-only in the same report that found owning pays."""
    from gpu_catalog.owned import HOURS_PER_YEAR, default_card

    summary, decisions = run("local-only", local="1x RTX4090")
    card = default_card(local_cards("1x RTX4090", simulated_owned_offer)[0].gpu)
    energy = simulated_owned_offer(card.gpu).energy_usd_per_hour
    busy_h = sum(d["end_h"] - d["start_h"] for d in decisions if d["placement"].startswith("local"))
    ownership = card.purchase_price_usd / (card.life_years * HOURS_PER_YEAR) * summary["makespan_h"]
    assert summary["ownership_usd"] == pytest.approx(ownership)
    assert summary["local_cost_usd"] == pytest.approx(busy_h * energy + ownership, rel=1e-3)
    assert summary["local_utilization"] > card.utilization  # where the hardware file's price overcharged
    assert summary["local_cost_usd"] < busy_h * simulated_owned_offer(card.gpu).usd_per_hour
    assert run("cloud-only")[0]["ownership_usd"] == 0  # a policy that uses no card pays for none


def test_the_default_spot_rate_is_the_one_plans_price_for_each_gpu(monkeypatch):
    """The simulator preempted spot VMs at a flat 0.05/h, about 350x the rate every plan priced them at: its default
    is now the plan's own rate for the offer's GPU (cost.preemptions_per_hour), and a given rate still wins."""
    from orchestrator.simulate import engine

    asked = []
    monkeypatch.setattr(engine, "preemptions_per_hour", lambda offer: asked.append(offer.gpu.name) or 5.0)
    summary, _ = run("cloud-spot", preemptions_per_h=None, rows=TRACE[:40])
    assert asked and summary["preemptions"] > 0
    asked.clear()
    summary, _ = run("cloud-spot", preemptions_per_h=0.0, rows=TRACE[:40])
    assert asked == [] and summary["preemptions"] == 0
