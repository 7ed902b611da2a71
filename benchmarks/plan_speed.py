"""How fast `orch plan` answers, beside SkyPilot answering "where is an A100 and at what price" from the same offline
catalog, measured side by side in one run; and proof that planning imports neither torch nor sky.

    .venv/bin/python benchmarks/plan_speed.py [--runs 10] [--job examples/llama31-8b-qlora.yaml] [--json]

Each run is a fresh process, the two interleaved so load hits both alike: `orch plan JOB --budget 1000 --json`
(interpreter start, imports, catalog, auto-fit on every GPU, ranking) and `python -c "import sky;
sky.catalog.list_accelerators(name_filter='A100', clouds=[...])"` with HOME holding the same catalog copy. One more
plan runs under `python -X importtime` to list every module imported. Exits 1 when orch is under TARGET_RATIO times
faster, or when a heavy module was imported.

orch's own modules are byte-compiled first, as `pip install` compiles an installed package and every SkyPilot
module: where PYTHONDONTWRITEBYTECODE is set (this project's machines set it), a source checkout would otherwise
compile its ~45 planning modules from source on every run, about 35 ms that no installed orch pays.
"""

import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.script_args import Parser, run, whole_at_least
from gpu_catalog.errors import UserError

REPO = Path(__file__).resolve().parent.parent
OFFLINE_CATALOG = REPO.parent / "shared" / "data" / "skypilot-catalog" / "v8"
HEAVY_MODULES = ("torch", "sky", "transformers", "peft", "bitsandbytes", "accelerate", "pandas", "numpy", "typer",
                 "rich", "pydantic")
TARGET_RATIO = 20.0
SKY_QUERY = ("import sky; from sky import catalog; "
             "r = catalog.list_accelerators(gpus_only=True, name_filter='A100', clouds={clouds}); "
             "print(sum(len(v) for v in r.values()))")


def plan_command(job: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli.entry", "plan", job, "--budget", "1000", "--json"]


def sky_command(clouds: list[str]) -> list[str]:
    return [sys.executable, "-c", SKY_QUERY.format(clouds=clouds)]


def compile_orch() -> None:
    """What `pip install` does for an installed package: every module's bytecode written beside it."""
    for package in ("gpu_catalog", "orchestrator", "trainer"):
        compileall.compile_dir(REPO / package, quiet=1)


def timed(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = _ran(command, env)
    return time.perf_counter() - start, done.stdout


def _ran(command: list[str], env: dict | None) -> subprocess.CompletedProcess:
    """The finished command; one that failed is a UserError with its own last line (a plan's `error:` on a broken
    --catalog), where CalledProcessError's traceback hid it."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1].removeprefix("error: ")
        raise UserError(f"{'orch plan' if 'plan' in command else 'the SkyPilot query'} failed: {said}")
    return done


def imported_modules(job: str, env: dict | None = None) -> set[str]:
    """Top-level package of every module the plan imports, from `python -X importtime` (written to stderr)."""
    command = [sys.executable, "-X", "importtime", *plan_command(job)[1:]]
    done = _ran(command, env)
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def main() -> int:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=whole_at_least(1), default=10)
    parser.add_argument("--job", default="examples/llama31-8b-qlora.yaml")
    parser.add_argument("--catalog", type=Path, default=OFFLINE_CATALOG, help="a SkyPilot v8 catalog folder")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if not (REPO / args.job).is_file():  # relative to the repository, where the plans run
        raise UserError(f"--job {args.job}: no such job file (relative paths start at {REPO}).")
    if not args.catalog.is_dir() or not any(args.catalog.glob("*/vms.csv")):
        raise UserError(f"--catalog {args.catalog}: give a SkyPilot v8 catalog folder (one <cloud>/vms.csv each).")
    with tempfile.TemporaryDirectory() as home:
        shutil.copytree(args.catalog, Path(home) / ".sky" / "catalogs" / "v8")
        env = {**os.environ, "HOME": home, "ORCH_SKY_CATALOGS": str(args.catalog), "ORCH_HOME": f"{home}/orch",
               "SKYPILOT_DISABLE_USAGE_COLLECTION": "1", "SKYPILOT_DISABLE_LOCAL_API_SERVER": "1"}
        clouds = sorted(p.name for p in args.catalog.iterdir() if (p / "vms.csv").is_file())
        timed(plan_command(args.job), env)  # fills the catalog cache, as any earlier plan would have
        compile_orch()  # once a plan has run here: a broken --catalog wrote no bytecode first
        orch_s, sky_s, plan, a100_rows = [], [], {}, 0
        for _ in range(args.runs):
            seconds, out = timed(plan_command(args.job), env)
            orch_s.append(seconds)
            plan = json.loads(out)
            seconds, out = timed(sky_command(clouds), env)
            sky_s.append(seconds)
            a100_rows = int(out.strip().splitlines()[-1])
        python_s = statistics.median(timed([sys.executable, "-c", "pass"], env)[0] for _ in range(args.runs))
        heavy = sorted(imported_modules(args.job, env) & set(HEAVY_MODULES))
    result = {"job": args.job, "runs": args.runs, "orch_plan_median_s": statistics.median(orch_s),
              "orch_plan_max_s": max(orch_s), "skypilot_a100_median_s": statistics.median(sky_s),
              "python_startup_median_s": python_s, "ratio": statistics.median(sky_s) / statistics.median(orch_s),
              "targets": len(plan["options"]) + len(plan["rejected"]), "skypilot_a100_rows": a100_rows,
              "clouds": clouds, "heavy_imports": heavy}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"orch plan {args.job} ({result['targets']} targets): median {result['orch_plan_median_s']:.3f} s; "
              f"SkyPilot A100 lookup ({a100_rows} rows): median {result['skypilot_a100_median_s']:.3f} s; "
              f"ratio {result['ratio']:.1f}x over {args.runs} interleaved runs (python alone {python_s:.3f} s); "
              f"heavy imports: {', '.join(heavy) or 'none'}")
    return 0 if result["ratio"] >= TARGET_RATIO and not heavy else 1


if __name__ == "__main__":
    sys.exit(run(main))
