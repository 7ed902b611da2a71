"""Plain dicts of the core's results, for `--json`. Field names are the CLI contract scripts rely on. Dollars are
never rounded: a CPU job's whole cost is a few hundredths of a cent, and the runs store keeps every digit too."""

from dataclasses import asdict

from gpu_catalog.checks import one_line
from gpu_catalog.gpus import GPU
from gpu_catalog.models import ModelShape
from gpu_catalog.offer import Offer
from orchestrator.cost import Estimate
from orchestrator.data_size import DataSize
from orchestrator.planner import Option, Plan
from trainer.config import row_fill

USAGE_ERROR_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130  # Ctrl-C, as a shell reports a process SIGINT ended


def error_dict(message: str) -> dict:
    """A refusal as `--json` gives it on stdout (the `error: ...` line stays on stderr, for people): a script that
    parses stdout gets one JSON document whether the command worked or not, never an empty stream."""
    return {"error": one_line(message), "exit_code": USAGE_ERROR_EXIT_CODE}


def gpu_dict(gpu: GPU) -> dict:
    data = asdict(gpu)
    data["aliases"] = list(gpu.aliases)
    return data


def model_dict(model: ModelShape) -> dict:
    return asdict(model)


def offer_dict(offer: Offer) -> dict:
    return {"gpu": offer.gpu.name, "provider": offer.provider, "region": offer.region, "spot": offer.spot,
            "usd_per_hour": offer.usd_per_hour, "instance_type": offer.instance_type,
            "free_vram_gib": offer.free_vram_gib, "source": offer.source}


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in values.items()}


def estimate_dict(estimate: Estimate) -> dict:
    return {"vram_gib": round(estimate.vram_gib, 3), "breakdown": _rounded(estimate.breakdown),
            "peak_at": estimate.peak_at, "tokens_per_s": round(estimate.tokens_per_s, 1),
            "est_hours": round(estimate.hours, 4),
            "startup_hours": round(estimate.startup_hours, 4), "est_cost_usd": estimate.cost_usd,
            "usd_per_million_tokens": estimate.usd_per_million_tokens, "basis": estimate.basis,
            "micro_batch": estimate.micro_batch, "grad_accum": estimate.grad_accum, "grad_ckpt": estimate.grad_ckpt,
            "parts_usd": dict(estimate.parts_usd),
            "expected_preemptions": float(f"{estimate.expected_preemptions:.3g}"),
            "startup_measured": estimate.startup_measured}


def option_dict(option: Option) -> dict:
    """An option with how its output comes home and the offers SkyPilot may fail over to."""
    delivery = option.delivery
    return {**offer_dict(option.offer), **estimate_dict(option.estimate),
            "output": delivery.output if delivery else "local",
            "managed_job": bool(delivery and delivery.managed),
            "failover": [offer_dict(o) for o in option.failover],
            "worst_cost_usd": option.worst_cost_usd}


def plan_dict(plan: Plan) -> dict:
    options = [option_dict(o) for o in plan.options]
    rejected = [{**offer_dict(r.offer), "vram_gib": round(r.vram_gib, 3),
                 **(estimate_dict(r.estimate) if r.estimate else {}), "kind": r.kind, "reason": r.reason}
                for r in plan.rejected]
    return {"job": plan.spec.name, "model": plan.spec.model, "method": plan.spec.method,
            "train_tokens": plan.train_tokens, "budget_usd": plan.policy.budget_usd,
            "deadline_hours": plan.policy.deadline_hours, "objective": plan.policy.objective,
            "max_usd_per_hour": plan.policy.max_usd_per_hour,
            "chosen": options[0] if options else None, "options": options, "rejected": rejected}


ROW_FILL_WORTH_SAYING = 0.9  # packed rows fill 95-99%; unpacked short samples fill a few percent of theirs


def padding_worth_saying(data: dict | None) -> bool:
    """A counted dataset whose rows hold more padding than packing leaves (`data_dict`'s row_fill), which the GPU
    runs and a plan prices: worth saying beside the data's size."""
    return bool(data) and data.get("row_fill") is not None and data["row_fill"] < ROW_FILL_WORTH_SAYING


def data_dict(size: DataSize | None, train_tokens: int, seq_len: int) -> dict | None:
    """The dataset's tokens per epoch, where the count came from, and the epochs the run's tokens make of it: of its
    rows (seq_len tokens each, padding included, as the run's tokens count them) where the data was tokenized, with
    the share of the rows' tokens that are data (`row_fill`)."""
    if size is None:
        return None
    per_epoch = size.sequences * seq_len if size.sequences else size.tokens
    epochs = train_tokens / per_epoch if per_epoch else None
    return {"tokens": size.tokens, "sequences": size.sequences,
            "row_fill": row_fill(size.tokens, size.sequences, seq_len), "source": size.source, "detail": size.detail,
            "epochs": epochs}
