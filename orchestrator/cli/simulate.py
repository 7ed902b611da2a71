"""`orch simulate`: compare scheduling policies over a trace of jobs, or generate a synthetic trace.

The trace streams through the simulator: rows are read as simulated time reaches them and the first policy's decisions
are written to --out's decisions.csv as jobs end, so a million-job trace needs no more memory than a small one.
"""

import csv
from pathlib import Path
from typing import Annotated

import typer

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.offers import cloud_offers
from gpu_catalog.owned import hardware_file, load_owned_hardware, simulated_owned_offer
from gpu_catalog.whole_files import write_atomically
from orchestrator import home
from orchestrator.cli import display
from orchestrator.cli.errors import user_errors
from orchestrator.cli.options import JsonFlag, number_option, path_option, whole_option
from orchestrator.estimator.calibration import load_calibration
from orchestrator.simulate.engine import CLOUD_ONLY, POLICIES, SimSettings, Simulation, declared_cards, local_cards
from orchestrator.simulate.summary import DECISION_COLUMNS
from orchestrator.simulate.trace import (
    MAX_GENERATED_JOBS,
    check_rate,
    check_trace,
    generate,
    read_trace,
    write_trace,
)

MAX_SEED = 2**32 - 1  # random.Random takes any int, and -1 the same as 1: a seed past 32 bits, or below 0, is a slip
OUTPUT_NAMES = ("decisions.csv", "simulation.png")  # what --out's folder receives
# Options each mode ignores (--trace with --generate has its own message): given, they would do nothing unsaid.
SIMULATION_ONLY = {"local": "--local", "policy": "--policy", "spot_preemptions_per_h": "--spot-preemptions-per-h"}
GENERATE_ONLY = {"rate": "--rate"}


@user_errors
def simulate_command(
    ctx: typer.Context,
    trace: Annotated[Path | None, path_option(what="a trace file", help="Trace CSV to simulate.")] = None,
    local: Annotated[str | None, typer.Option(help='Owned cards, e.g. "2x RTX4090, 1x A6000" (left out: the '
                                                   "hardware file's, if any).")] = None,
    policy: Annotated[str, typer.Option(help=f"{', '.join(POLICIES)}, or all to compare them.")] = "hybrid",
    # the numbers are read as every command reads its own (whole_option, number_option: the digits 0-9, `1e3` too),
    # where typer's int and float took `1_000`, refused `1e3`, and said neither how to write it
    seed: Annotated[int, whole_option(help="Seed for run-time scatter and preemptions.")] = 0,
    spot_preemptions_per_h: Annotated[float | None, number_option(
        help="Spot preemptions per hour of a spot VM (0: never; default: the rate plans price for each GPU).")] = None,
    generate_jobs: Annotated[int | None, whole_option("--generate", help="Write a synthetic trace of N jobs.")]
    = None,
    rate: Annotated[float, number_option(help="With --generate: arrivals per hour.")] = 4.0,
    out: Annotated[Path | None, path_option(what="a file or folder name", help="Trace file (--generate), or folder "
                                                                               "for decisions.csv and simulation.png.")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="Replace what --out holds: the trace (--generate), or "
                                                        "decisions.csv and simulation.png.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Simulate the scheduler over a trace: total cost, deadline misses, mean wait, local utilization."""
    seed = checks.number(seed, "--seed", 0, MAX_SEED, whole=True)
    if generate_jobs is not None:
        if trace is not None:
            raise UserError("--generate writes a new trace to --out; --trace reads one: give one of them.")
        _refuse_given(ctx, SIMULATION_ONLY, "with --generate (it writes a trace; --trace simulates one)")
        check_rate(rate)
        generate_jobs = checks.number(generate_jobs, "--generate", 1, MAX_GENERATED_JOBS, whole=True)
        if out is None:
            raise UserError("--generate needs --out TRACE.csv: the file to write the trace to.")
        if isinstance(out, str):  # typed with a trailing slash (options.path_option): a folder, where a file goes
            raise UserError(f"--out {checks.short_repr(out)} ends with a slash, which names a folder: --generate "
                            "writes a trace file; give its name.")
        # before any work (a trace may be a real week's only copy); written as CSV, whatever the name says
        home.output_file(out, "--out", force=force, suffixes=(".csv",))
        count = write_atomically(out, lambda path: write_trace(generate(generate_jobs, seed, rate), path))
        if as_json:
            display.print_json({"trace": str(out), "jobs": count})
        else:
            display.console.print(checks.printable(f"wrote {count} jobs to {out}"), markup=False, highlight=False)
        return
    if trace is None:
        raise UserError("give --trace TRACE.csv (or make one with --generate N --out TRACE.csv).")
    _refuse_given(ctx, GENERATE_ONLY, "with --trace (it paces --generate's arrivals)")
    out = Path(out) if isinstance(out, str) else out  # `--out results/`: the folder the simulation writes into
    if force and out is None:
        raise UserError("--force replaces what --out holds, and no --out is given: leave --force out.")
    policy = policy.strip().lower()  # `--policy Hybrid`: choices are read in any case, as a job file's are
    if policy != "all" and policy not in POLICIES:
        raise UserError(f"--policy must be one of {', '.join(POLICIES)} or all, got {policy!r}.")
    policies = POLICIES if policy == "all" else (policy,)
    settings = [SimSettings(policy=name, seed=seed, spot_preemptions_per_h=spot_preemptions_per_h)
                for name in policies]
    cards = local_cards(local, simulated_owned_offer)
    if cards and not set(policies) - set(CLOUD_ONLY):  # the cards were left out unsaid
        raise UserError(f"--local names owned cards, and --policy {policy} uses none: leave --local out, or choose "
                        "hybrid, local-only or all.")
    if local is None and set(policies) - set(CLOUD_ONLY):  # the cards plan and the scheduler use, as orch report's
        # hybrid question does
        hardware = load_owned_hardware()
        cards = declared_cards(hardware, hardware.cards, "simulate fewer with --local '2x RTX4090, ...'")
    if not cards and "local-only" in policies:
        asked = "--policy all compares local-only, which" if policy == "all" else "--policy local-only"
        raise UserError(f'{asked} needs owned cards: give --local "2x RTX4090", or declare them in the hardware '
                        f"file ({hardware_file()}).")
    check_trace(trace, every_row=out is not None)  # a bad later row left --out made and empty
    if out is not None:
        home.output_folder(out)  # before any work; made when the first policy's decisions are written
        if taken := [name for name in OUTPUT_NAMES if checks.same_file(out / name, trace)]:
            raise UserError(f"--out {out}: {taken[0]} there is the trace itself, which the simulation would "
                            "overwrite: choose another folder.")
        _refuse_what_force_cannot_replace(out, OUTPUT_NAMES)
        if not force and (kept := [name for name in OUTPUT_NAMES if (out / name).exists()]):
            raise UserError(f"--out {out} already holds {' and '.join(kept)}: pass --force to replace them, or "
                            "choose another folder.")
    clouds, calibration = list(cloud_offers()[0]), load_calibration()
    summaries = {}
    for index, policy_settings in enumerate(settings):
        sim = Simulation(cards, clouds, policy_settings, calibration)
        if index == 0 and out is not None:
            summaries[policy_settings.policy] = _run_writing(sim, trace, out)
        else:
            summaries[policy_settings.policy] = sim.run(read_trace(trace))
    if not cards and "hybrid" in policies:  # it ran as cloud-only, util 0%, unsaid
        display.say(f'note: no owned cards (no --local, none in {checks.printable(str(hardware_file()))}): hybrid '
                    'places every job in the cloud. Give --local "2x RTX4090" to simulate owned cards.', err=True)
    if as_json:
        display.print_json(summaries[policies[0]] if len(policies) == 1 else summaries)
    else:
        display.show_simulation(summaries)


def _refuse_given(ctx: typer.Context, options: dict[str, str], mode: str) -> None:
    """Options given that this mode would ignore: one line naming them all. A given option is told from its default
    by click's parameter source (typer's own copy of click, hence by name): `--policy hybrid` is given too."""
    given = [flag for name, flag in options.items() if ctx.get_parameter_source(name).name != "DEFAULT"]
    if given:
        one = len(given) == 1
        raise UserError(f"{', '.join(given)} {'does' if one else 'do'} nothing {mode}: leave {'it' if one else 'them'} "
                        "out.")


def _refuse_what_force_cannot_replace(folder: Path, names: tuple[str, ...]) -> None:
    """Refuse, before any work, what stands in `folder` where the simulation writes a file and --force cannot replace:
    a folder (the whole simulation ran and wrote decisions.csv, then failed on `simulation.png: Is a directory`), a
    device or a pipe (the plot waited on it forever), a loop of links. Said as `orch report --out` says it."""
    for name in names:
        path = folder / name
        if loop := checks.symlink_loop(path, "--out"):
            raise loop
        if path.is_dir():
            kind = "a folder"
        elif path.exists() and not path.is_file():
            kind = "a device or a pipe"
        else:
            continue
        raise UserError(f"--out {folder} holds {kind} named {name}, where the simulation writes a file: move it, or "
                        "choose another --out.")


def _run_writing(sim: Simulation, trace: Path, folder: Path) -> dict:
    """Runs the simulation with each decision written to decisions.csv as its job ends, then plots the spend."""
    from orchestrator.bench.plots import spend_over_time

    folder.mkdir(exist_ok=True)

    def run(path: Path) -> dict:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(DECISION_COLUMNS)
            sim.on_decision = lambda row: writer.writerow(row.values())  # rows are built in DECISION_COLUMNS order
            return sim.run(read_trace(trace))

    decisions, plot = (folder / name for name in OUTPUT_NAMES)
    summary = write_atomically(decisions, run)
    spend_over_time(sim.summary.spend.series(), summary["deadline_misses"], sim.settings.policy, plot,
                    summary["ownership_usd"])
    display.err_console.print(checks.printable(f"wrote {decisions} ({sim.settings.policy}) and {plot}"),
                              markup=False, highlight=False)
    return summary
