"""quick_init builds the same frozen dataclass instances as the generated __init__: same arguments and defaults,
same equality, still frozen, __post_init__ still run; and the planner's types built with it hold every field."""

import dataclasses

import pytest

from gpu_catalog.gpus import get_gpu
from gpu_catalog.models import get_model
from orchestrator.cost import Estimate
from orchestrator.frozen import quick_init
from orchestrator.job import job_from_dict
from orchestrator.planner import Option, Plan, PlanPolicy, Rejected, plan
from orchestrator.schedule.policy import Decision, JobAsk, LocalSlot, decide
from tests.conftest import make_offer


def _check_hours(self):
    if self.hours < 0:
        raise ValueError("hours below 0")


@dataclasses.dataclass(frozen=True)
class Plain:
    name: str
    hours: float = 1.5
    tags: tuple = ()
    __post_init__ = _check_hours


@quick_init
@dataclasses.dataclass(frozen=True)
class Quick(Plain):
    """Plain's fields, defaults and check, built by quick_init's constructor."""


@pytest.mark.parametrize("args, kwargs", [(("a",), {}), (("a", 2.0), {}), (("a",), {"tags": (1,)}),
                                          ((), {"name": "b", "hours": 0.0, "tags": ("x",)})])
def test_quick_init_takes_the_same_arguments_and_gives_the_same_fields(args, kwargs):
    quick, plain = Quick(*args, **kwargs), Plain(*args, **kwargs)
    assert dataclasses.astuple(quick) == dataclasses.astuple(plain)
    assert quick == Quick(*args, **kwargs) and hash(quick) == hash(Quick(*args, **kwargs))
    assert dataclasses.replace(quick, hours=3.0).hours == 3.0


def test_quick_init_keeps_the_class_frozen_and_its_checks():
    quick = Quick("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.hours = 2.0
    with pytest.raises(ValueError, match="below 0"):
        Quick("a", -1.0)
    with pytest.raises(TypeError):
        Quick()  # a field without a default is still required
    with pytest.raises(TypeError):
        Quick("a", 1.0, (), "one too many")


def test_quick_init_refuses_fields_it_cannot_build():
    @dataclasses.dataclass(frozen=True)
    class WithFactory:
        items: list = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="plain fields"):
        quick_init(WithFactory)


def test_the_planners_and_policys_types_hold_every_field():
    model = get_model("Llama-3.1-8B")
    spec = job_from_dict({"model": "Llama-3.1-8B", "method": "qlora", "seq_len": 2048, "train_tokens": 20_000_000})
    offers = [make_offer(get_gpu("A100 80GB"), "cloud", 1.5), make_offer(get_gpu("T4"), "cloud", 0.3),
              make_offer(get_gpu("A100 80GB"), "other", 1.7), make_offer(get_gpu("T4"), "cloud", 0.1, spot=True)]
    result = plan(spec, model, offers, PlanPolicy(budget_usd=50.0, allow_spot=False))
    local = LocalSlot("card#0", make_offer(get_gpu("RTX 4090"), "local", 0.1), 2.0)
    decision = decide(JobAsk("j", spec, 50.0, 12.0), model, [local], offers)
    built = [result, *result.options, *result.rejected, result.policy, decision, local,
             *(o.estimate for o in result.options)]
    assert {type(b) for b in built} == {Plan, Option, Rejected, PlanPolicy, Decision, LocalSlot, Estimate}
    for instance in built:
        assert list(vars(instance)) == [f.name for f in dataclasses.fields(instance)]
