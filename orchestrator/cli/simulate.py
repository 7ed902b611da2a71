"""`orch simulate`: compare scheduling policies over a trace of jobs, or generate a synthetic trace."""

import csv
from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog.errors import UserError
from gpu_catalog.offers import cloud_offers
from gpu_catalog.owned import simulated_owned_offer
from orchestrator.cli import display
from orchestrator.cli.errors import user_errors
from orchestrator.cli.options import JsonFlag
from orchestrator.estimator.calibration import load_calibration
from orchestrator.simulate.engine import POLICIES, SimSettings, local_cards, simulate
from orchestrator.simulate.trace import generate, read_trace, write_trace


@user_errors
def simulate_command(
    trace: Annotated[Path | None, typer.Option(help="Trace CSV to simulate.")] = None,
    local: Annotated[str, typer.Option(help='Owned cards, e.g. "2x RTX4090, 1x A6000".')] = "",
    policy: Annotated[str, typer.Option(help=f"{', '.join(POLICIES)}, or all to compare them.")] = "hybrid",
    seed: Annotated[int, typer.Option(help="Seed for run-time scatter and preemptions.")] = 0,
    spot_preemptions_per_h: Annotated[float, typer.Option(help="Spot preemption rate per hour.")] = 0.05,
    generate_jobs: Annotated[int | None, typer.Option("--generate", help="Write a synthetic trace of N jobs.")]
    = None,
    rate: Annotated[float, typer.Option(help="With --generate: arrivals per hour.")] = 4.0,
    out: Annotated[Path | None, typer.Option(help="Trace file (--generate), or folder for decisions.csv and "
                                                  "simulation.png.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Simulate the scheduler over a trace: total cost, deadline misses, mean wait, local utilization."""
    if generate_jobs is not None:
        if generate_jobs <= 0 or out is None:
            raise UserError("--generate needs a job count above 0 and --out TRACE.csv.")
        write_trace(generate(generate_jobs, seed, rate), out)
        display.console.print(f"wrote {generate_jobs} jobs to {out}")
        return
    if trace is None:
        raise UserError("give --trace TRACE.csv (or make one with --generate N --out TRACE.csv).")
    policies = POLICIES if policy == "all" else (policy,)
    if policy != "all" and policy not in POLICIES:
        raise UserError(f"--policy must be one of {', '.join(POLICIES)} or all, got {policy!r}.")
    rows = read_trace(trace)
    cards = local_cards(local, simulated_owned_offer)
    if not cards and any(p == "local-only" for p in policies):
        raise UserError('--policy local-only needs owned cards: --local "2x RTX4090".')
    clouds, calibration = list(cloud_offers()[0]), load_calibration()
    summaries, first_decisions = {}, None
    for name in policies:
        settings = SimSettings(policy=name, seed=seed, spot_preemptions_per_h=spot_preemptions_per_h)
        summaries[name], decisions = simulate(rows, cards, clouds, settings, calibration)
        first_decisions = first_decisions or (name, decisions)
    if out is not None:
        _write_outputs(out, first_decisions, summaries)
    if as_json:
        display.print_json(summaries[policies[0]] if len(policies) == 1 else summaries)
    else:
        display.show_simulation(summaries)


def _write_outputs(folder: Path, decisions: tuple[str, list[dict]], summaries: dict) -> None:
    from orchestrator.bench.plots import spend_over_time

    folder.mkdir(parents=True, exist_ok=True)
    name, rows = decisions
    with open(folder / "decisions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    spend_over_time(rows, name, folder / "simulation.png")
    display.err_console.print(f"wrote {folder / 'decisions.csv'} ({name}) and {folder / 'simulation.png'}")
