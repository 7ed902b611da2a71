"""The scheduling policy on small cases worked out by hand."""

import dataclasses
import math

from gpu_catalog.gpus import cpu_gpu, get_gpu
from gpu_catalog.models import get_model
from gpu_catalog.units import usd_text
from orchestrator.job import job_from_dict
from orchestrator.schedule.policy import (
    DEADLINE_SAFETY_FACTOR,
    MAX_WAIT_WITHOUT_DEADLINE_H,
    JobAsk,
    LocalSlot,
    decide,
)
from tests.conftest import make_offer

MODEL = get_model("Llama-3.1-8B")
SPEC = job_from_dict({"model": "Llama-3.1-8B", "method": "qlora", "seq_len": 2048, "train_tokens": 20_000_000})
RTX4090 = make_offer(get_gpu("RTX 4090"), provider="local", usd_per_hour=0.25)
CLOUD = [make_offer(get_gpu("A100 80GB"), "lambda", 1.5), make_offer(get_gpu("A100 80GB"), "nebius", 0.6, spot=True),
         make_offer(get_gpu("H100 SXM"), "lambda", 3.0)]


def ask(deadline_h=None, budget=100.0, preemptions=0, spec=SPEC):
    return JobAsk("j", spec, budget, deadline_h, preemptions)


def local_hours():
    decision = decide(ask(), MODEL, [LocalSlot("0", RTX4090)], [])
    return decision.option.estimate.hours


def test_a_free_local_card_that_meets_the_deadline_takes_the_job():
    decision = decide(ask(deadline_h=100), MODEL, [LocalSlot("0", RTX4090)], CLOUD)
    assert decision.action == "start_local" and decision.slot.slot_id == "0"
    assert "fits locally and meets the deadline" in decision.reason
    assert usd_text(decision.option.estimate.cost_usd) in decision.reason  # $0.975, not $0.97 (sub-cent: $0.00)


def test_a_busy_card_that_still_meets_the_deadline_is_waited_for():
    finish = local_hours() + 2
    decision = decide(ask(deadline_h=finish * DEADLINE_SAFETY_FACTOR), MODEL, [LocalSlot("0", RTX4090, 2)], CLOUD)
    assert decision.action == "wait" and "waiting 2 h for local RTX 4090" in decision.reason
    # judged with a margin: a wait that meets the deadline only if every estimate is exact goes elsewhere
    tight = decide(ask(deadline_h=finish * 1.05), MODEL, [LocalSlot("0", RTX4090, 2)], CLOUD)
    assert tight.action == "start_cloud"


def test_without_a_deadline_a_job_waits_a_day_at_most():
    assert decide(ask(), MODEL, [LocalSlot("0", RTX4090, 20)], CLOUD).action == "wait"
    decision = decide(ask(), MODEL, [LocalSlot("0", RTX4090, MAX_WAIT_WITHOUT_DEADLINE_H + 1)], CLOUD)
    assert decision.action == "start_cloud" and "busy for over 24 h" in decision.reason


def test_a_busy_card_that_would_miss_the_deadline_sends_the_job_to_the_cloud():
    hours = local_hours()
    decision = decide(ask(deadline_h=hours + 1), MODEL, [LocalSlot("0", RTX4090, busy_for_h=2)], CLOUD)
    assert decision.action == "start_cloud" and "no local card meets the deadline" in decision.reason


def test_a_job_no_local_card_fits_goes_to_the_cheapest_cloud_offer():
    big = dataclasses.replace(SPEC, model="Qwen2.5-14B", method="lora")  # ~35 GiB: not a 24 GB card
    decision = decide(ask(spec=big), get_model("Qwen2.5-14B"), [LocalSlot("0", RTX4090)], CLOUD)
    assert decision.action == "start_cloud" and decision.option.offer.provider == "nebius"  # the $0.60 spot A100
    assert decision.reason.startswith("no local card fits")


def test_a_local_card_that_cannot_run_a_setting_is_passed_over():
    """A T4 has no bf16: a job in precision bf16 goes to the cloud, as the planner would send it, not onto the card.
    (FlashAttention-2, which refuses a T4 too, runs on no cloud VM either: pre-flight refuses it there.)"""
    t4 = make_offer(get_gpu("T4"), provider="local", usd_per_hour=0.05)
    bf16 = dataclasses.replace(SPEC, precision="bf16", micro_batch=1, grad_ckpt=True)
    assert decide(ask(spec=dataclasses.replace(bf16, precision="auto")), MODEL, [LocalSlot("0", t4)],
                  CLOUD).action == "start_local"
    decision = decide(ask(spec=bf16), MODEL, [LocalSlot("0", t4)], CLOUD)
    assert decision.action == "start_cloud" and decision.option.offer.gpu.name != "T4"
    fa2 = dataclasses.replace(SPEC, attention="flash_attention_2", micro_batch=1, grad_ckpt=True)
    assert decide(ask(spec=fa2), MODEL, [LocalSlot("0", t4)], CLOUD).action == "reject"


def test_spot_with_slack_on_demand_without():
    relaxed = decide(ask(deadline_h=100), MODEL, [], CLOUD)
    assert relaxed.option.offer.spot and "spot: the job checkpoints" in relaxed.reason
    hours = relaxed.option.estimate.hours
    tight = decide(ask(deadline_h=hours * 1.2), MODEL, [], CLOUD)  # meets the deadline once, not with retries
    assert not tight.option.offer.spot


def test_after_repeated_preemptions_the_job_moves_to_on_demand():
    decision = decide(ask(preemptions=2), MODEL, [], CLOUD)
    assert not decision.option.offer.spot and "on-demand after 2 preemptions" in decision.reason


def test_the_monthly_cap_makes_the_job_wait():
    decision = decide(ask(budget=100), MODEL, [], CLOUD, spend_left_usd=0.01)
    assert decision.action == "wait" and "monthly spend cap" in decision.reason


def test_late_is_better_than_never_and_nothing_fits_is_rejected():
    late = decide(ask(deadline_h=0.1), MODEL, [LocalSlot("0", RTX4090)], CLOUD)  # nothing finishes in 6 min
    assert late.action == "start_local" and "late is better than never" in late.reason
    huge = dataclasses.replace(SPEC, model="Llama-3.1-70B", method="full")
    rejected = decide(ask(spec=huge, budget=math.inf), get_model("Llama-3.1-70B"), [LocalSlot("0", RTX4090)], CLOUD)
    assert rejected.action == "reject" and "fits no GPU" in rejected.reason


def test_a_local_card_inside_the_deadline_but_short_of_its_margin_is_not_called_late():
    """A card judged at 1.2x its estimate can miss the deadline while it would finish before it: `-0.5 h late`."""
    hours = local_hours()
    decision = decide(ask(deadline_h=hours * 1.1), MODEL, [LocalSlot("0", RTX4090)], [])
    assert decision.action == "start_local" and "late" in decision.reason and "-" not in decision.reason
    assert f"no {DEADLINE_SAFETY_FACTOR:g}x margin" in decision.reason, decision.reason


def test_a_job_no_local_card_fits_names_the_largest_local_card():
    """The reason named the smallest card (`has 15.2 GiB on T4`), the furthest from fitting; the largest local card
    is the nearest miss, whatever order the cards come in, and a GPU before the CPU."""
    t4 = make_offer(get_gpu("T4"), provider="local", usd_per_hour=0.05)
    cpu = make_offer(dataclasses.replace(cpu_gpu(), vram_gib=256.0), provider="local", usd_per_hour=0.0)
    huge = dataclasses.replace(SPEC, model="Llama-3.1-70B", method="full")
    slots = [LocalSlot("0", t4), LocalSlot("1", RTX4090), LocalSlot("cpu:0", cpu)]
    decision = decide(ask(spec=huge, budget=math.inf), get_model("Llama-3.1-70B"), slots, [])
    assert decision.action == "reject"
    assert decision.reason.startswith("no local card fits (the largest, RTX 4090: needs "), decision.reason
    assert "T4" not in decision.reason and "GiB at micro-batch 1" in decision.reason


def test_a_local_card_left_out_for_its_cost_or_a_setting_is_said_so():
    """A $0.0001 budget under the CPU's $0.00011 was rejected as `no local card fits`: the card fits, its cost
    does not."""
    cost = usd_text(decide(ask(), MODEL, [LocalSlot("0", RTX4090)], []).option.estimate.cost_usd)
    over = decide(ask(budget=0.5), MODEL, [LocalSlot("0", RTX4090)], [])
    assert over.action == "reject"
    assert over.reason.startswith(f"the local RTX 4090 fits but costs {cost}, over the $0.500 budget"), over.reason
    t4 = make_offer(get_gpu("T4"), provider="local", usd_per_hour=0.05)
    fa2 = dataclasses.replace(SPEC, attention="flash_attention_2", micro_batch=1, grad_ckpt=True)
    refused = decide(ask(spec=fa2), MODEL, [LocalSlot("0", t4)], [])
    assert refused.reason.startswith("no local card runs it (T4: attention flash_attention_2 needs"), refused.reason
    assert decide(ask(), MODEL, [], []).reason.startswith("no local card;")


def test_the_cpu_takes_no_job_past_the_planners_limit():
    """The scheduler started a 1B full fine-tune on the CPU for 682 h: the planner's one-hour limit was not its own."""
    cpu = make_offer(dataclasses.replace(cpu_gpu(), vram_gib=256.0), provider="local", usd_per_hour=0.0)
    small = dataclasses.replace(SPEC, model="Llama-3.2-1B", method="lora", train_tokens=2_000_000)
    decision = decide(ask(spec=small), get_model("Llama-3.2-1B"), [LocalSlot("cpu:0", cpu)], CLOUD)
    assert decision.action == "start_cloud", decision.reason
    assert decision.reason.startswith("the local CPU would take "), decision.reason


NO_STORE = "a spot run on nebius keeps its checkpoints in a bucket: enable a storage cloud."


def refuses_nebius_spot(offer):
    return NO_STORE if offer.spot and offer.provider == "nebius" else None


def test_a_spot_offer_the_launch_would_refuse_is_passed_over():
    """The policy picked the cheapest spot offer although `orch launch` refuses it up front (no storage cloud for
    its checkpoints): the job was started there, refused, and tried again on every pass. The next offer the launch
    takes is picked: another cloud's spot, else on-demand, saying why."""
    aws_spot = make_offer(get_gpu("A100 80GB"), "aws", 0.9, spot=True)
    other_spot = decide(ask(deadline_h=100), MODEL, [], [*CLOUD, aws_spot], refusals=lambda *_: refuses_nebius_spot)
    assert other_spot.option.offer is aws_spot and "spot: the job checkpoints" in other_spot.reason
    on_demand = decide(ask(deadline_h=100), MODEL, [], CLOUD, refusals=lambda *_: refuses_nebius_spot)
    assert on_demand.action == "start_cloud" and on_demand.option.offer.provider == "lambda"
    assert f"on-demand (not spot: {NO_STORE.rstrip('.')}): A100 80GB on lambda" in on_demand.reason


def test_a_job_only_a_refused_spot_offer_takes_is_rejected_with_the_launchs_reason():
    spot_cost = decide(ask(deadline_h=100), MODEL, [], CLOUD).option.estimate.cost_usd
    on_demand_cost = decide(ask(deadline_h=100, preemptions=2), MODEL, [], CLOUD).option.estimate.cost_usd
    budget = (spot_cost + on_demand_cost) / 2
    assert decide(ask(deadline_h=100, budget=budget), MODEL, [], CLOUD).option.offer.spot
    rejected = decide(ask(deadline_h=100, budget=budget), MODEL, [], CLOUD, refusals=lambda *_: refuses_nebius_spot)
    assert rejected.action == "reject", rejected.reason
    assert rejected.reason == (f"no local card; {NO_STORE.rstrip('.')}; no other cloud offer meets the job's budget "
                               "and deadline")


def test_a_job_every_offer_of_both_kinds_is_refused_for_names_both_reasons():
    """Every spot and every on-demand offer refused (no storage cloud: spot checkpoints, and on-demand output idling
    on the VM past the budget): the job was told only the spot offer's reason, and to launch on-demand instead."""
    idle = "with no storage cloud enabled here, its output stays on the VM: $2 > the $1 budget."

    def refuses_all(budget_usd, cost_usd_of):
        assert set(cost_usd_of) >= {o for o in CLOUD if o.spot}  # each offer's planned cost, for the idle hour
        return lambda offer: NO_STORE if offer.spot else idle

    rejected = decide(ask(deadline_h=100), MODEL, [], CLOUD, refusals=refuses_all)
    assert rejected.action == "reject", rejected.reason
    assert rejected.reason == (f"no local card; {NO_STORE.rstrip('.')}; lambda {CLOUD[0].region}: {idle.rstrip('.')}; "
                               "no other cloud offer meets the job's budget and deadline")
