import dataclasses

import pytest

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import get_gpu
from gpu_catalog.models import get_model
from orchestrator.cost import estimate_on_offer, hours_and_cost
from orchestrator.estimator.calibration import NO_CALIBRATION
from orchestrator.job import job_from_dict
from orchestrator.planner import PlanPolicy, job_fit, no_option_message, plan
from tests.conftest import make_offer
from trainer.config import config_from_dict

MODEL = get_model("Llama-3.1-8B")
JOB = job_from_dict({"model": "Llama-3.1-8B", "method": "qlora", "seq_len": 2048, "train_tokens": 20_000_000,
                         "micro_batch": 4, "grad_accum": 4})
A100, H100, T4 = get_gpu("A100 80GB"), get_gpu("H100 SXM"), get_gpu("T4")


def run(offers, spec=JOB, **policy):
    return plan(spec, MODEL, offers, PlanPolicy(**{"budget_usd": 1000.0} | policy))


def test_cost_objective_ranks_cheapest_first_and_time_objective_fastest_first():
    offers = [make_offer(H100, "fast", 4.0), make_offer(A100, "mid", 1.5), make_offer(T4, "slow", 0.3)]
    by_cost = run(offers)
    costs = [o.estimate.cost_usd for o in by_cost.options]
    assert costs == sorted(costs) and by_cost.chosen.offer.provider != "fast"
    by_time = run(offers, objective="time")
    assert by_time.chosen.offer.provider == "fast"
    assert [o.estimate.hours for o in by_time.options] == sorted(o.estimate.hours for o in by_time.options)


def test_the_time_objective_takes_the_cheapest_of_the_options_as_fast_as_the_fastest():
    """An H200 at $5.29 was chosen over an H100 at $2.82 to save one second of 756, within any estimate's scatter."""
    from orchestrator.planner import _cheapest_of_the_fastest_first

    base = run([make_offer(H100)]).chosen

    def option(provider: str, seconds: float, usd: float):
        return dataclasses.replace(base, offer=make_offer(H100, provider, 1.0), estimate=dataclasses.replace(
            base.estimate, hours=seconds / 3600, cost_usd=usd))

    options = [option("dear", 755, 5.29), option("cheap", 756, 2.82), option("slow", 900, 1.0)]
    _cheapest_of_the_fastest_first(options)
    assert [o.offer.provider for o in options] == ["cheap", "dear", "slow"]


def test_estimates_add_evaluations_and_start_up_to_training_time():
    option = run([make_offer(A100)]).chosen
    e = option.estimate
    eval_h = e.parts_usd["eval"] / option.offer.usd_per_hour
    assert 0 < eval_h < 0.05 * e.hours  # two passes of 20 forward-only micro-batches against 611 training steps
    whole_steps_tokens = 611 * JOB.effective_batch * JOB.seq_len  # train_tokens 20M, run in whole steps
    assert whole_steps_tokens >= 20_000_000 > whole_steps_tokens - JOB.effective_batch * JOB.seq_len
    assert e.hours == pytest.approx(whole_steps_tokens / e.tokens_per_s / 3600 + eval_h + e.startup_hours)
    # the spend is training, evaluation and start-up at the offer's price, plus the idle window before the VM downs
    assert e.cost_usd == pytest.approx(sum(e.parts_usd.values()))
    assert e.parts_usd["train"] + e.parts_usd["eval"] + e.parts_usd["startup"] == pytest.approx(
        e.hours * option.offer.usd_per_hour)
    assert e.parts_usd["idle"] > 0


@pytest.mark.parametrize("changes, more", [({"eval_every": 10}, True), ({"eval_fraction": 0.0}, False)])
def test_evaluations_cost_what_their_passes_cost(changes, more):
    """Every eval_every steps is a pass of eval_batches forward-only micro-batches; no eval set, no evaluation."""
    base = run([make_offer(A100)]).chosen.estimate.parts_usd["eval"]
    changed = run([make_offer(A100)], spec=dataclasses.replace(JOB, **changes)).chosen.estimate.parts_usd["eval"]
    assert (changed > 3 * base) if more else changed == 0


def test_over_budget_is_rejected_with_the_amount():
    result = run([make_offer(A100, usd_per_hour=50.0)], budget_usd=5.0)
    assert result.chosen is None
    (rejected,) = result.rejected
    assert rejected.kind == "budget" and rejected.reason.startswith("over budget: $") and "> $5.00" in rejected.reason


def test_deadline_rejects_slow_targets():
    result = run([make_offer(T4, "slow", 0.1), make_offer(H100, "fast", 3.0)], deadline_hours=10)
    assert [o.offer.provider for o in result.options] == ["fast"]
    assert result.rejected[0].kind == "deadline" and "misses deadline" in result.rejected[0].reason


def test_a_deadline_missed_by_minutes_shows_the_minutes():
    hours = run([make_offer(H100, "fast", 3.0)]).options[0].estimate.hours
    (rejected,) = run([make_offer(H100, "fast", 3.0)], deadline_hours=hours - 1e-4).rejected
    shown, deadline = rejected.reason.removeprefix("misses deadline: ").split(" > ")
    (value, unit), (limit, limit_unit) = shown.split(), deadline.split()
    assert unit == limit_unit and float(value) > float(limit), rejected.reason


@pytest.mark.parametrize("deadline_s, said", [(5, "min > 5 s"), (600, "min > 10 min"), (1800, "min > 30 min")])
def test_a_short_deadline_is_said_in_the_unit_it_reads_in(deadline_s, said):
    """A 5 s deadline read "misses deadline: 0.01 h > 0.00 h"."""
    hours = run([make_offer(H100, "fast", 3.0)]).options[0].estimate.hours
    assert 0.5 < hours < 1  # each deadline below is missed, by a run said in minutes
    (rejected,) = run([make_offer(H100, "fast", 3.0)], deadline_hours=deadline_s / 3600).rejected
    assert rejected.reason.endswith(said), rejected.reason


def test_gpu_too_small_is_rejected_for_memory():
    spec = dataclasses.replace(JOB, method="full")
    result = run([make_offer(get_gpu("RTX 4090"))], spec=spec)
    assert result.rejected[0].kind == "memory" and "does not fit: needs" in result.rejected[0].reason


def test_flash_attention_2_is_planned_only_where_its_kernel_runs():
    """FlashAttention-2 refuses T4 and V100 (before Ampere) and the CPU at the first step, after the machine is
    paid for: those targets are out, with the reason, whatever their price."""
    from gpu_catalog.gpus import cpu_gpu

    spec = dataclasses.replace(JOB, attention="flash_attention_2")
    result = run([make_offer(T4, "local", 0.1), make_offer(get_gpu("V100 32GB"), "local", 0.2),
                  make_offer(A100, "local", 2.0, region="r2")], spec=spec)
    assert result.chosen.offer.gpu == A100
    assert {(r.offer.gpu.name, r.kind) for r in result.rejected} == {("T4", "unsupported"),
                                                                     ("V100 32GB", "unsupported")}
    assert "compute capability 8.0+), T4 has 7.5: use attention sdpa" in result.rejected[0].reason
    # a cloud VM's setup cannot install flash-attn: pre-flight would refuse the launch, so the plan never offers it
    cloud = run([make_offer(A100, "lambda", 1.0)], spec=spec)
    assert cloud.chosen is None and "needs flash-attn, which a cloud VM's setup does not install" in \
        cloud.rejected[0].reason
    assert run([make_offer(T4, "cheap", 0.1)]).chosen is not None  # sdpa runs there
    tiny = job_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 256, "train_tokens": 100_000,
                          "attention": "flash_attention_2"})
    only_cpu = plan(tiny, get_model("orch/tiny-llama"), [make_offer(cpu_gpu(), "local", 0.01)], PlanPolicy(1.0))
    assert no_option_message(only_cpu) == ("no target can run this job: attention flash_attention_2 needs a GPU: use "
                                           "attention sdpa.")
    # the CPU's reason was said where every cloud GPU refused the job for another: the reason most targets give
    clouds = [make_offer(cpu_gpu(), "local", 0.01), make_offer(A100, "lambda", 1.0), make_offer(A100, "aws", 1.1)]
    message = no_option_message(plan(tiny, get_model("orch/tiny-llama"), clouds, PlanPolicy(1.0)))
    assert message.startswith("no target can run this job: attention flash_attention_2 needs flash-attn, which a "
                              "cloud VM's setup does not install"), message
    assert "(said by 2 of the 3 targets that cannot run it;" in message, message


def test_busy_local_card_is_rejected():
    busy = make_offer(get_gpu("RTX 4090"), provider="local", free_vram_gib=2.0)
    result = run([busy])
    assert result.rejected[0].kind == "busy" and "2.0 GiB free" in result.rejected[0].reason


def test_providers_and_spot_filters():
    offers = [make_offer(A100, "lambda"), make_offer(A100, "nebius", 0.5, spot=True)]
    result = run(offers, providers=frozenset({"lambda", "nebius"}), allow_spot=False)
    assert {r.kind for r in result.rejected} == {"spot"}
    result = run(offers, providers=frozenset({"nebius"}))
    assert {r.kind for r in result.rejected} == {"provider"}


def test_a_launch_passes_over_a_spot_offer_it_would_refuse():
    """A launch chose a spot offer, then refused it (no storage cloud for its checkpoints): asked at plan time, the
    offer is out with the launch's reason, and the next one is chosen. Every cloud offer is asked: an on-demand one
    may be refused too (its output idling on the VM past the budget)."""
    spot, on_demand = make_offer(A100, "nebius", 0.5, spot=True), make_offer(A100, "lambda", 1.5)
    asked = []

    def refusal(offer):
        asked.append(offer)
        return "a spot run on nebius keeps its checkpoints in a bucket: launch on-demand (--no-spot)." \
            if offer.spot else None

    result = run([spot, on_demand], launch_refusal=refusal)
    assert result.chosen.offer == on_demand and asked == [spot, on_demand]
    assert [(r.kind, r.reason) for r in result.rejected] == [("launch", refusal(spot))]
    assert run([spot, on_demand]).chosen.offer == spot  # `orch plan` does not ask


def test_cpu_is_only_for_tiny_jobs():
    from gpu_catalog.gpus import cpu_gpu

    result = run([make_offer(cpu_gpu(), "local", 0.01)], spec=dataclasses.replace(JOB, model="x", method="lora"),
                 budget_usd=1e9)
    assert result.rejected[0].kind in ("cpu", "memory")
    tiny = job_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 256, "train_tokens": 100_000})
    small = plan(tiny, get_model("orch/tiny-llama"), [make_offer(cpu_gpu(), "local", 0.01)], PlanPolicy(1.0))
    assert small.chosen is not None and small.chosen.estimate.hours < 1


def test_the_plan_leaves_its_inputs_unchanged():
    offers = [make_offer(A100), make_offer(T4, usd_per_hour=0.2)]
    before = list(offers)
    run(offers)
    assert offers == before


@pytest.mark.parametrize("policy, message", [
    ({"budget_usd": -1}, "--budget must be 0 or more"), ({"budget_usd": 1, "deadline_hours": 0}, "--deadline"),
    ({"budget_usd": 1, "objective": "fun"}, "--objective must be one of cost, time"),
])
def test_bad_policy(policy, message):
    with pytest.raises(UserError, match=message):
        PlanPolicy(**policy)


def test_hours_and_cost_are_the_estimates_own_to_the_bit():
    fits = {}
    for offer in [make_offer(A100, "cloud", 1.5), make_offer(H100, "cloud", 4.0, spot=True),
                  make_offer(T4, "local", 0.1)]:
        fit = job_fit(JOB, MODEL, offer.gpu, NO_CALIBRATION, fits)
        for tokens in (1, 12_345_679, 10**9):
            estimate = estimate_on_offer(fit, offer, MODEL, tokens, None, 17.0)
            assert hours_and_cost(fit, offer, MODEL, tokens, None, 17.0) == (estimate.hours, estimate.cost_usd)



def test_sub_cent_budget_and_cost_keep_their_digits_in_the_rejection():
    """A tiny job's cost and budget are written as everywhere else (usd_text), not as "$0.00 > $0.00"."""
    offers = [make_offer(A100, "dear", usd_per_hour=0.02), make_offer(T4, "cheap", 0.0001)]
    rejected = run(offers, budget_usd=0.0001, max_usd_per_hour=0.01).rejected
    reasons = {r.kind: r.reason for r in rejected}
    assert reasons["price"] == "over --max-usd-per-hour: $0.020/h > $0.010/h"
    assert reasons["budget"].startswith("over budget: $0.00") and reasons["budget"].endswith(" > $0.00010")
    assert not reasons["budget"].startswith("over budget: $0.00 ")


def test_a_price_cap_that_leaves_out_every_offer_the_job_runs_on_names_the_price_to_raise_it_to():
    """Under --max-usd-per-hour the error blamed the one V100 (no kernels for compute capability 7.0), or listed
    rejection counts with no fix: the cap is named, with the cheapest $/h that lets an offer run the job in, rounded up
    so that the amount said lets it in."""
    offers = [make_offer(get_gpu("V100 16GB"), "aws", 0.9), make_offer(T4, "aws", 0.20712, spot=True, region="us-e"),
              make_offer(A100, "aws", 1.5), make_offer(T4, "cheap", 0.001, spot=True)]
    message = no_option_message(run(offers[:3], max_usd_per_hour=0.01))
    assert message == ("no target that can run this job is within --max-usd-per-hour $0.010/h: raise "
                       "--max-usd-per-hour to at least $0.208/h (T4 on aws (us-e, spot)).")
    assert run(offers[:3], max_usd_per_hour=0.208).chosen.offer.usd_per_hour == 0.20712
    # an offer within the cap that the job cannot run on (over budget) is no reason to raise it
    result = run(offers, budget_usd=0.01, max_usd_per_hour=0.01)
    assert "--max-usd-per-hour" not in no_option_message(result) and result.chosen is None


def test_a_price_cap_over_offers_that_would_miss_the_budget_anyway_does_not_blame_a_device():
    """Every offer the cap took out is over budget too: raising the cap is no fix, and the one V100's missing kernels
    are not the reason either."""
    offers = [make_offer(get_gpu("V100 16GB"), "aws", 0.9), make_offer(T4, "aws", 0.2), make_offer(A100, "aws", 1.5)]
    message = no_option_message(run(offers, budget_usd=0.0001, max_usd_per_hour=0.01))
    assert "compute capability" not in message and "raise --max-usd-per-hour" not in message, message


def test_a_resumed_run_is_priced_for_the_rows_it_has_left():
    """A run records the real tokens it trained; the job's tokens are its rows', padding included. Unpacked data a
    tenth full, 40 of 100 rows done (4,000 real tokens): 60 rows are left, not 100 rows less 4,000 tokens."""
    spec = config_from_dict({"model": "Llama-3.1-8B", "method": "lora", "seq_len": 1000, "micro_batch": 1,
                             "epochs": 1, "dataset": "data.jsonl", "dataset_tokens": 10_000, "dataset_sequences": 100,
                             "packing": False})
    assert spec.resolved_train_tokens() == 100 * 1000
    assert run([make_offer(A100)], spec).train_tokens == 100 * 1000
    resumed = plan(spec, MODEL, [make_offer(A100)], PlanPolicy(budget_usd=1000.0), tokens_done=4_000)
    assert resumed.train_tokens == 60 * 1000
    packed = dataclasses.replace(spec, dataset_sequences=None)  # rows unknown: tokens are real tokens throughout
    assert plan(packed, MODEL, [make_offer(A100)], PlanPolicy(budget_usd=1000.0), tokens_done=4_000).train_tokens \
        == 6_000


def test_a_job_on_part_of_the_cpu_is_planned_and_priced_on_that_part(monkeypatch):
    """`cpu_threads` of a CPU's cores (a scheduler's CPU slot sets it): that share of the CPU's peak and of its price.
    Two jobs sharing the CPU each ran at half the speed planned, and each was priced at the whole CPU."""
    import os

    from gpu_catalog.gpus import cpu_gpu

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    tiny = job_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 256, "train_tokens": 100_000})
    offers = [make_offer(cpu_gpu(), "local", 0.02), make_offer(T4, "lambda", 1.0)]

    def cpu_option(spec):
        return next(o for o in plan(spec, get_model("orch/tiny-llama"), offers, PlanPolicy(1.0)).options
                    if o.offer.gpu.kind == "cpu")

    whole, quarter = cpu_option(tiny), cpu_option(dataclasses.replace(tiny, cpu_threads=1))
    assert quarter.offer.usd_per_hour == pytest.approx(0.005) and whole.offer.usd_per_hour == 0.02
    assert quarter.offer.gpu.fp32_tflops == pytest.approx(whole.offer.gpu.fp32_tflops / 4)
    assert whole.estimate.tokens_per_s / 4 <= quarter.estimate.tokens_per_s < whole.estimate.tokens_per_s / 2
    assert cpu_option(dataclasses.replace(tiny, cpu_threads=64)).offer == whole.offer  # no more than the cores
    t4 = [o for o in plan(dataclasses.replace(tiny, cpu_threads=1), get_model("orch/tiny-llama"), offers,
                          PlanPolicy(1.0)).options if o.offer.gpu == T4]
    assert t4 and t4[0].offer.usd_per_hour == 1.0  # a GPU's offer is its own


def test_a_budget_refusal_whose_cheapest_is_spot_says_what_an_on_demand_offer_needs():
    """The plan said "raise --budget to at least 2.57" for a spot offer; `orch launch` at 2.57, with no storage
    cloud, passed over spot and refused the budget again for a $3.99 on-demand one."""
    offers = [make_offer(A100, "aws", 1.0, spot=True), make_offer(A100, "lambda", 2.0)]
    cheap = run(offers).chosen.estimate.cost_usd
    message = no_option_message(run(offers, budget_usd=cheap / 4))
    assert "(it is spot: " in message and " for an on-demand offer, which `orch launch` takes without a storage " \
        "cloud)" in message, message
    assert "it is spot" not in no_option_message(run(offers[1:], budget_usd=cheap / 4))
    assert "it is spot" not in no_option_message(run(offers[:1], budget_usd=cheap / 4))  # no on-demand offer


def test_the_catch_all_refusal_says_the_reason_most_of_its_largest_kind_give():
    """An axolotl job's flash_attention on a machine with a declared card: "39 that cannot run one of its settings;
    see the table above", whose rows named the CPU's and the T4's reasons, not the cloud VMs' (28 of the 39)."""
    from gpu_catalog.gpus import cpu_gpu

    tiny = job_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 256, "train_tokens": 100_000,
                          "attention": "flash_attention_2"})
    absent = dataclasses.replace(make_offer(get_gpu("RTX 4090"), "local", 0.3), present=False)
    offers = [absent, make_offer(cpu_gpu(), "local", 0.01), make_offer(A100, "lambda", 1.0),
              make_offer(A100, "aws", 1.1)]
    message = no_option_message(plan(tiny, get_model("orch/tiny-llama"), offers, PlanPolicy(100.0)))
    assert message.startswith("no target can run this job: 1 declared in the hardware file but not on this machine; 3 "
                              "that cannot run one of its settings (2 of them: attention flash_attention_2 needs "
                              "flash-attn, which a cloud VM's setup does not install"), message
    # the offers --providers leaves out are counted apart, not as the largest kind
    gcp = [make_offer(A100, "gcp", 1.0 + n / 10) for n in range(5)]
    narrowed = no_option_message(plan(tiny, get_model("orch/tiny-llama"), offers + gcp,
                                      PlanPolicy(100.0, providers={"lambda", "aws", "local"})))
    assert "3 that cannot run one of its settings (2 of them: attention flash_attention_2" in narrowed, narrowed


def test_the_catch_all_refusal_says_each_kind_in_words_and_apart_what_the_user_left_out():
    """`--target local` was refused "rejections: 2 absent, 1 cpu, 217 provider": internal words, and the cloud
    offers the user's own flag left out counted as if tried."""
    from gpu_catalog.gpus import cpu_gpu

    absent = dataclasses.replace(make_offer(get_gpu("RTX 4090"), "local", 0.3), present=False)
    offers = [absent, make_offer(cpu_gpu(), "local", 0.01), make_offer(A100, "lambda", 1.0),
              make_offer(A100, "aws", 1.1)]
    message = no_option_message(plan(JOB, MODEL, offers, PlanPolicy(100.0, providers={"local"})))
    assert message == ("no target can run this job: 1 declared in the hardware file but not on this machine; 1 CPU "
                       "past its time limit (2 left out by --target, --providers or --no-spot); see the "
                       "table above or --json for each reason."), message


def test_train_tokens_are_priced_in_the_whole_steps_the_trainer_runs():
    """`train_tokens: 1` was priced as one token, and the trainer ran a whole step of micro_batch x seq_len."""
    one_token = dataclasses.replace(JOB, train_tokens=1)
    assert one_token.resolved_train_tokens() == JOB.effective_batch * JOB.seq_len == \
        one_token.planned_steps(0) * JOB.effective_batch * JOB.seq_len
    assert run([make_offer(A100)], spec=one_token).train_tokens == JOB.effective_batch * JOB.seq_len
