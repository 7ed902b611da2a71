"""`orch catalog ...`: what GPUs, models, cloud offers and local cards orch knows about."""

from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog.gpus import cpu_gpu, get_gpu, load_gpus
from gpu_catalog.models import load_models
from gpu_catalog.names import normalize
from gpu_catalog.targets import gather_targets
from orchestrator.cli import display
from orchestrator.cli.errors import OneLineUsageErrors, user_errors
from orchestrator.cli.limits import check_providers
from orchestrator.cli.options import JsonFlag, LocalCostOption, ProvidersOption, path_option
from orchestrator.cli.serialize import gpu_dict, model_dict, offer_dict

app = typer.Typer(help="What orch knows: GPUs, model shapes, cloud offers, your own cards.", no_args_is_help=True,
                  cls=OneLineUsageErrors)


@app.command("gpus")
@user_errors
def gpus(as_json: JsonFlag = False) -> None:
    """GPU specs: VRAM, bandwidth, dense bf16/fp16 TFLOPS, power, price, and the source of each row."""
    rows = list(load_gpus())
    display.print_json([gpu_dict(g) for g in rows]) if as_json else display.show_gpus(rows)


@app.command("models")
@user_errors
def models(as_json: JsonFlag = False) -> None:
    """Model shapes known offline (any other Hugging Face id is read through AutoConfig when online)."""
    rows = list(load_models())
    display.print_json([model_dict(m) for m in rows]) if as_json else display.show_models(rows)


@app.command("offers")
@user_errors
def offers(
    gpu: Annotated[str | None, typer.Option(help="Only offers of this GPU (any common spelling), or of every size of "
                                                 "a family (A100: 40 and 80 GB).")] = None,
    spot: Annotated[bool, typer.Option("--spot", help="Only spot offers.")] = False,
    provider: ProvidersOption = None,
    dropped: Annotated[bool, typer.Option("--dropped", help="Show the offers dropped as implausible.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Where each GPU can be had and its $/h: cloud catalogs and your local cards, cheapest first."""
    targets = gather_targets()
    wanted = gpu_names(gpu) if gpu is not None else None
    wanted_providers = check_providers(provider, {o.provider for o in (*targets.offers, *targets.dropped)}) \
        if provider is not None else None

    def asked_for(offers) -> list:
        """The offers the filters given keep: the footer's count of dropped ones is of these too (it said 4 of a
        4090's were dropped, and `--dropped` found none: they were A100s)."""
        return [o for o in offers if (wanted is None or o.gpu.name in wanted) and (o.spot or not spot)
                and (wanted_providers is None or o.provider in wanted_providers)]

    rows = asked_for(targets.dropped if dropped else targets.offers)
    rows.sort(key=lambda o: o.usd_per_hour)
    if as_json:
        display.print_json([offer_dict(o) for o in rows])
    elif not rows:  # an empty table said less than this
        given = [flag for flag, value in (("--gpu", gpu), ("--spot", spot), ("--providers", provider)) if value]
        display.say(f"no offer was dropped as implausible{' of those asked for' if given else ''}" if dropped else
                    f"no offer matches {' and '.join(given)}: `orch catalog offers` lists them all")
    else:
        display.show_offers(rows, 0 if dropped else len(asked_for(targets.dropped)))


def gpu_names(name: str) -> set[str]:
    """The GPUs a --gpu filter means: every size of a family it names (`A100` was the 40 GB card alone, hiding the 80 GB
    offers a plan picks), `cpu` the CPU's offer (as `orch estimate --gpu cpu` names it), else the one GPU it spells."""
    if name.strip().lower() == "cpu":
        return {cpu_gpu().name}
    family = {g.name for g in load_gpus() if normalize(g.family) == normalize(name)}
    return family if len(family) > 1 else {get_gpu(name).name}


@app.command("local")
@user_errors
def local(
    local_cost: LocalCostOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Cards on this machine (NVML) and in your hardware file, with what an hour on each costs you."""
    if local_cost is not None:  # `--local-cost AMORTIZED`: choices are read in any case, as `orch plan` reads them
        local_cost = local_cost.strip().lower()
    targets = gather_targets(local_cost)
    local_offers = [o for o in targets.offers if o.is_local]
    policy = local_cost or targets.hardware.cost_policy  # the prices' own: the table's title said the file's
    if as_json:
        display.print_json({"hardware_file": targets.hardware.source, "cost_policy": policy,
                            "detected": [{"index": d.index, "device_name": d.device_name,
                                          "gpu": d.gpu.name if d.gpu else None, "vram_gib": d.vram_gib,
                                          "used_vram_gib": d.used_vram_gib, "utilization_pct": d.utilization_pct}
                                         for d in targets.detected],
                            "offers": [{**offer_dict(o), "present": o.present} for o in local_offers]})
    else:
        display.show_local(targets.hardware.source, policy, list(targets.detected), local_offers)


@app.command("refresh")
@user_errors
def refresh(
    from_dir: Annotated[Path | None, path_option("--from", what="a catalog folder", help="Copy a SkyPilot v8 "
                                                 "catalog folder instead of downloading (for offline machines).")]
    = None,
) -> None:
    """Update ~/.sky/catalogs/v8 with SkyPilot's current prices (network), or from a local copy."""
    from orchestrator.launch.sky_catalog import refresh_catalog

    for line in refresh_catalog(from_dir):
        display.say(line)
