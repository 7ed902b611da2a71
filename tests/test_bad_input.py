"""Bad input, as a new user gives it: every case exits 2 with one `error: ...` line (typer's usage errors too), no
traceback, and no file anywhere but ORCH_HOME's databases. In process through typer's CliRunner; nothing trains.

Each case builds its inputs in a temporary folder (job, hardware, calibration, sweep, results, catalog and model
files) and returns the command line. A few good inputs run beside them, so a case fails for its own reason only.
"""

import dataclasses
import json
import math
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.bench.results import ResultStore
from orchestrator.cli.main import app
from orchestrator.runs.store import RunRecord, RunStore
from orchestrator.schedule.queue import JobQueue
from tests.conftest import REPO, SAFETENSORS

DATA = str(REPO / "examples" / "data" / "tiny_instruct.jsonl")
BASE_JOB = {"model": "Llama-3.1-8B", "method": "qlora", "seq_len": 512, "train_tokens": 100_000}
DROP = object()  # a key to leave out of the job
DB_FILES = (".db", ".db-wal", ".db-shm", ".db-journal")
ESCAPE_TARGET = Path("/tmp/orch-bad-input-escape")
RUN_ID = "r-20261201-101010-abc123"
JOB_ID = "j-20261201-101010-def456"


class Inputs:
    """The temporary world one case runs in: ORCH_HOME, a working folder, and writers for every kind of file."""

    def __init__(self, root: Path, monkeypatch):
        self.root, self.monkeypatch = root, monkeypatch
        self.reader: int | None = None  # a pipe's reading end, closed after the case
        self.home = root / "orch-home"
        self.work = root / "work"
        self.files = root / "in"
        for folder in (self.work, self.files):
            folder.mkdir()

    def file(self, name: str, content: str | bytes) -> str:
        path = self.files / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)

    def job(self, **changes) -> str:
        return self.file("job.yaml", self.job_text(**changes))

    def job_text(self, **changes) -> str:
        return yaml.safe_dump({k: v for k, v in {**BASE_JOB, **changes}.items() if v is not DROP})

    def pipe(self, name: str) -> str:
        """A named pipe, with a reader held open so that a wrongful write cannot block the test."""
        path = self.files / name
        os.mkfifo(path)
        self.reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        return str(path)

    def state_folder(self, name: str) -> str:
        (self.home / name).mkdir(parents=True, exist_ok=True)
        return str(self.home / name)

    def folder(self, name: str) -> str:
        (self.files / name).mkdir()
        return str(self.files / name)

    def env(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, value)

    def hardware_path(self, path: str) -> list[str]:
        self.env("ORCH_HARDWARE", path)
        return ["catalog", "local"]

    def hardware(self, text: str | bytes) -> list[str]:
        return self.hardware_path(self.file("hardware.yaml", text))

    def calibration(self, text: str | bytes) -> list[str]:
        return self.calibration_path(self.file("calibration.json", text))

    def calibration_path(self, path: str) -> list[str]:
        self.env("ORCH_CALIBRATION", path)
        return ["estimate", "Llama-3.1-8B", "--gpu", "H100 SXM"]

    def catalog(self, text: str | bytes) -> list[str]:
        self.file("catalog/lambda/vms.csv", text)
        self.env("ORCH_SKY_CATALOGS", str(self.files / "catalog"))
        return ["catalog", "offers"]

    def model(self, config: dict | str | bytes) -> list[str]:
        text = json.dumps(config) if isinstance(config, dict) else config
        self.file("model/config.json", text)
        return ["estimate", str(self.files / "model")]

    def sweep(self, **changes) -> list[str]:
        raw = {"name": "s", "dataset": DATA, "warmup_steps": 1, "measured_steps": 1,
               "grids": [{"model": ["orch/tiny-llama"], "method": ["lora"], "seq_len": [64]}],
               **changes}
        return ["bench", self.file("sweep.yaml", yaml.safe_dump(raw))]

    def results(self, *lines: str | bytes, command: str = "calibrate") -> list[str]:
        parts = [line if isinstance(line, bytes) else line.encode() for line in lines]
        return [command, "--results", self.file("results.jsonl", b"\n".join(parts) + b"\n")]

    def run_record(self) -> None:
        """One recorded run, so a pattern that matched anything would find it."""
        values = {f.name: None if "None" in str(f.type) else 0 if f.type in (int, float) else "x"
                  for f in dataclasses.fields(RunRecord)}
        values.update(run_id=RUN_ID, status="ok", run_dir=str(self.home / "runs" / RUN_ID), target="local",
                      job_json="{}")
        RunStore().insert(RunRecord(**values))

    def hand_edited(self, sql: str, *command: str) -> list[str]:
        """A run and a queued job, then runs.db changed by hand (sqlite3 stores whatever it is given) as `sql`."""
        self.run_record()
        self.queued_job()
        with closing(sqlite3.connect(self.home / "runs.db")) as db, db:
            db.execute(sql)
        return list(command)

    def bench_row(self, row_json: str) -> list[str]:
        """bench.db holding one result row as `row_json` (a hand edit, or a file from an older orch)."""
        ResultStore()
        with closing(sqlite3.connect(self.home / "bench.db")) as db, db:
            db.execute("INSERT INTO results VALUES ('p1', 's', 'ok', 1.0, ?)", [row_json])
        return ["report", "--out", str(self.work / "rep")]

    def queued_job(self) -> None:
        JobQueue().submit("j", "x.yaml", "{}", None, None, 0)


GOOD_ROW = {"point_id": "p1", "status": "ok", "sweep": "s", "created_at": 1.0, "gpu": "CPU", "tokens_per_s": 100.0,
            "config": {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 2}}
CATALOG_HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region,GpuInfo\n"
CATALOG_ROW = "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,\n"
GOOD_MODEL = {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 128,
              "vocab_size": 100}


def plan(i: Inputs, **changes) -> list[str]:
    return ["plan", i.job(**changes), "--budget", "10"]


def row(**changes) -> str:
    return json.dumps({**GOOD_ROW, **changes})


# (id, command line from the inputs): every one is refused with one `error: ...` line and exit 2
Case = tuple[str, Callable[[Inputs], list[str]], str]
CASES: list[Case] = []


def case(name: str, build: Callable[[Inputs], list[str]]) -> None:
    CASES.append((name, build))


# --- job file values, through `orch plan` -------------------------------------------------------------------------
BAD_JOB_VALUES = {
    "learning_rate": [math.nan, math.inf, -math.inf, 0, -1e-4, 5.0, "fast", True, 5e-324],
    "epochs": [math.nan, math.inf, 0, -1, 1e9],
    "seq_len": [0, -1, 1.5, math.nan, "long", 1e30, 2**60, 2**20 + 1],
    "micro_batch": [0, -2, 2.5, 10**11],
    "grad_accum": [0, math.inf, 10**11],
    "lora_r": [0, -8, 10**11],
    "lora_alpha": [0, 10**11],
    "lora_dropout": [1.0, -0.1, math.nan],
    "eval_fraction": [0.9, math.nan],
    "max_steps": [0, -5, "ten", math.inf],
    "train_tokens": [0, -100, math.nan, [1, 2]],
    "dataset_tokens": [0],
    "dataset_sequences": [0, -3, 2.5, math.nan, "many", 10**40],
    "warmup_steps": [-1, 1e15],
    "timing_warmup_steps": [10**12],
    "eval_every": [10**15],
    "weight_decay": [-0.1, math.nan, 1e11, 5e-324],
    "max_grad_norm": [0, math.inf, 5e-324],
    "save_every_minutes": [0, math.nan, -math.inf, 5e-324],
    "usd_per_hour": [math.nan, -1, 1e11],
    "budget_usd": [math.nan, -5, math.inf, 1e11],
    "num_workers": [10**11],
    "cpu_threads": [0, -2, 2.5, math.nan, 10**11, True],
    "neftune_noise_alpha": [1e11],
    "quant_bits": [3],
    "method": ["dora", ["lora"], ""],
    "optimizer": ["sgd"],
    "precision": ["fp8"],
    "attention": ["flash3"],
    "packing": ["yes"],
    "target_modules": [["foo"], "mlp"],
    "tokenizer": ["", "\x1b[31mx"],
    "dataset_config": [""],
    "eval_dataset": [" "],
    "dataset_split": ["\x07"],
    "modules_to_save": ["", ["lm_head", "\x1b[31m"]],
    "dataset_columns": [{"output": ""}, {"output": "answer\x07"}],
}
for key, values in BAD_JOB_VALUES.items():
    for value in values:
        case(f"job-{key}={value!r}", lambda i, key=key, value=value: plan(i, **{key: value}))
# with its price, so the budget stop is whole and the budget alone is wrong (0 is a budget spent: a launcher's
# resume passes what is left, and the trainer stops with exit 4)
case("job-budget_usd=5e-324", lambda i: plan(i, budget_usd=5e-324, usd_per_hour=1))

BAD_NAMES = ["", "../../x", str(ESCAPE_TARGET), "a/b", "[red]x[/]", ".hidden", "-x", "x y", "é", 123, "a" * 101]
for name in BAD_NAMES:
    case(f"job-name={name!r}", lambda i, name=name: plan(i, name=name))
    case(f"train-name={name!r}", lambda i, name=name: ["train", i.job(name=name)])
for key in ("model", "method", "seq_len"):
    case(f"job-missing-{key}", lambda i, key=key: plan(i, **{key: DROP}))
case("job-unknown-key", lambda i: plan(i, learning_rte=1e-4))
case("job-no-amount-to-train", lambda i: plan(i, train_tokens=DROP))
case("job-dataset-missing", lambda i: plan(i, dataset="data/missing.jsonl", train_tokens=DROP, epochs=1))
case("job-dataset-missing-with-tokens", lambda i: plan(i, dataset="./nowhere.jsonl"))
case("job-eval-dataset-missing", lambda i: plan(i, eval_dataset="data/missing-eval.jsonl"))
case("job-eval-dataset-empty", lambda i: plan(i, eval_dataset=i.file("empty-eval.jsonl", "")))
case("job-dataset-empty", lambda i: plan(i, dataset=i.file("empty.jsonl", ""), train_tokens=DROP))
case("job-zero-tokens", lambda i: plan(i, dataset=i.file("one.jsonl", "{}\n"), train_tokens=DROP, epochs=0.01))
case("job-model-unknown", lambda i: plan(i, model="Lama-3.1-8B"))
case("job-model-too-long", lambda i: plan(i, model="a" * 5000))  # Path.exists raises on a name this long
case("plan-flag-with-a-line-break", lambda i: plan(i) + ["--objective", "cost\nfast"])
case("job-model-empty-name", lambda i: plan(i, model="random:"))
case("job-freeze-more-blocks-than-the-model-has", lambda i: plan(i, method="full", freeze_layers=33))
case("job-dataset-too-long", lambda i: plan(i, dataset="a" * 5000, train_tokens=DROP))

# --- job files as files ----------------------------------------------------------------------------------------------
case("jobfile-not-utf8", lambda i: ["plan", i.file("j.yaml", b"model: Llama\xff\xfe\nmethod: lora\n"), "--budget", "1"])
case("jobfile-latin1", lambda i: ["plan", i.file("j.yaml", "name: caf\u00e9\n".encode("latin-1")), "--budget", "1"])
case("jobfile-duplicate-key", lambda i: ["plan", i.file("j.yaml", yaml.safe_dump(BASE_JOB) + "seq_len: 4096\n"),
                                         "--budget", "1"])
case("jobfile-nested-duplicate", lambda i: ["plan", i.file("j.yaml", yaml.safe_dump(BASE_JOB) + "method: lora\n"),
                                            "--budget", "1"])
case("jobfile-a-list", lambda i: ["plan", i.file("j.yaml", "- model: x\n"), "--budget", "1"])
case("jobfile-empty", lambda i: ["plan", i.file("j.yaml", ""), "--budget", "1"])
case("jobfile-bad-yaml", lambda i: ["plan", i.file("j.yaml", "model: [x\n"), "--budget", "1"])
case("jobfile-tabs", lambda i: ["plan", i.file("j.yaml", "model: x\n\tmethod: lora\n"), "--budget", "1"])
case("jobfile-binary", lambda i: ["plan", i.file("j.yaml", bytes(range(256))), "--budget", "1"])
case("jobfile-a-folder", lambda i: ["plan", str(i.files), "--budget", "1"])
case("jobfile-missing", lambda i: ["plan", str(i.files / "nope.yaml"), "--budget", "1"])
for command in ("plan", "train", "submit", "launch"):  # a name too long for the file system: Path.is_file raises
    case(f"jobfile-name-too-long-{command}", lambda i, c=command: [c, "a" * 5000 + ".yaml"]
         + (["--budget", "1"] if c in ("plan", "launch") else []))
case("jobfile-markup-in-path", lambda i: ["plan", str(i.files / "[red]x[/].yaml"), "--budget", "1"])
case("jobfile-python-tag", lambda i: ["plan", i.file("j.yaml", "model: !!python/object:os.system x\n"),
                                      "--budget", "1"])

# --- --set -----------------------------------------------------------------------------------------------------------
for override in ("max_steps=[", "nokey", "=5", "learning_rate=.nan", "name=../x", "epochs=.inf", "max_steps={a: 1",
                 "seq_len=0", "lora_r=-1", "name=[bold]x"):
    case(f"train-set-{override}", lambda i, o=override: ["train", i.job(), "--set", o])

# --- train output ----------------------------------------------------------------------------------------------------
case("train-output-is-a-file", lambda i: ["train", i.job(), "--output", i.file("taken", "x")])
case("train-output-under-a-file", lambda i: ["train", i.job(), "--output", i.file("taken", "x") + "/sub"])
case("train-resume-bogus", lambda i: ["train", i.job(), "--resume", "always"])
case("train-job-missing", lambda i: ["train", str(i.files / "nope.yaml")])

# --- plan and launch flags -------------------------------------------------------------------------------------------
for flag, value in (("--budget", "nan"), ("--budget", "inf"), ("--budget", "-inf"), ("--budget", "-1"),
                    ("--budget", "0"), ("--budget", "-0"), ("--budget", "1e30"), ("--deadline", "nan"),
                    ("--deadline", "inf"), ("--deadline", "0"),
                    ("--deadline", "-1"), ("--deadline", "1e9"), ("--providers", "awz"), ("--providers", ","),
                    ("--providers", ""), ("--providers", " , "), ("--providers", "lambdaa,local"),
                    ("--objective", "speed")):
    case(f"plan{flag}={value}", lambda i, f=flag, v=value: plan(i) + [f, v])
    case(f"launch{flag}={value}", lambda i, f=flag, v=value: ["launch", i.job(), "--budget", "10", "--yes", f, v])
for flag, value in (("--top", "0"), ("--top", "-1"), ("--top", "1e30"), ("--top", "99999999999999999999"),
                    ("--local-cost", "free")):
    case(f"plan{flag}={value}", lambda i, f=flag, v=value: plan(i) + [f, v])
for flag, value in (("--top", "abc"), ("--budget", "ten"), ("--deadline", "soon")):
    case(f"plan{flag}={value}", lambda i, f=flag, v=value: plan(i) + [f, v])
case("launch-target-moon", lambda i: ["launch", i.job(), "--budget", "10", "--target", "moon", "--yes"])
case("launch-bad-job", lambda i: ["launch", i.job(learning_rate=math.nan), "--budget", "10", "--yes"])
case("launch-out-over-the-job", lambda i: ["launch", path := i.job(), "--budget", "10", "--dry-run", "--out", path])
case("launch-out-over-the-dataset", lambda i: ["launch", i.job(dataset="d.jsonl"), "--budget", "10", "--dry-run",
                                               "--out", i.file("d.jsonl", '{"text": "a"}\n')])
case("launch-out-files-a-file", lambda i: ["launch", i.job(), "--budget", "10", "--dry-run", "--out",
                                           str(Path(i.file("t-files", "x")).with_name("t.yaml"))])
def _model_job(i: Inputs) -> str:
    i.file("model/config.json", json.dumps(GOOD_MODEL))
    return i.job(model=str(i.files / "model"), method="lora")


# an input the plan reads, replaced even with --force: the task file over a model's config.json, or the cards' prices
case("launch-out-inside-the-model-folder", lambda i: ["launch", _model_job(i), "--budget", "10", "--dry-run", "--force",
                                                      "--out", str(i.files / "model" / "config.json")])


def _launch_over_the_hardware_file(i: Inputs) -> list[str]:
    i.hardware("cards: [{gpu: RTX 4090}]\n")
    return ["launch", i.job(), "--budget", "10", "--dry-run", "--force", "--out", str(i.files / "hardware.yaml")]


case("launch-out-over-the-hardware-file", _launch_over_the_hardware_file)
for name, out in (("missing-folder", lambda i: str(i.files / "no" / "task.yaml")), ("a-folder", lambda i: str(i.files)),
                  ("under-a-file", lambda i: i.file("f", "x") + "/task.yaml"), ("in-proc", lambda i: "/proc/x/t.yaml")):
    case(f"launch-dry-run-out-{name}", lambda i, out=out: ["launch", i.job(), "--budget", "10", "--dry-run",
                                                            "--out", out(i)])

# --- submit ----------------------------------------------------------------------------------------------------------
for flag, value in (("--budget", "nan"), ("--budget", "-1"), ("--budget", "inf"), ("--deadline", "0"),
                    ("--deadline", "nan"), ("--deadline", "-inf"), ("--priority", str(10**20)),
                    ("--priority", str(-10**20)), ("--priority", "9223372036854775808")):
    case(f"submit{flag}={value}", lambda i, f=flag, v=value: ["submit", i.job(), f, v])
case("submit-priority-float", lambda i: ["submit", i.job(), "--priority", "1.5"])
case("submit-dataset-missing", lambda i: ["submit", i.job(dataset="data/none.jsonl")])
case("submit-dataset-empty", lambda i: ["submit", i.job(dataset=i.file("e.jsonl", ""), train_tokens=DROP)])
case("submit-name-escapes", lambda i: ["submit", i.job(name="../../jobs/x")])
case("submit-bad-job", lambda i: ["submit", i.job(epochs=math.inf, train_tokens=DROP, dataset=DATA)])

# --- scheduler -------------------------------------------------------------------------------------------------------
for flag, value in (("--interval", "-1"), ("--interval", "nan"), ("--interval", "inf"), ("--interval", "0"),
                    ("--interval", "0.0001"),
                    ("--cpu-slots", "-1"), ("--cpu-slots", "100000"), ("--monthly-cap", "-5"),
                    ("--monthly-cap", "nan"), ("--monthly-cap", "inf")):
    # a bad --interval is refused before the loop starts; with --once it would be refused as the wrong pair
    case(f"scheduler{flag}={value}",
         lambda i, f=flag, v=value: ["scheduler", "run", f, v] + ([] if f == "--interval" else ["--once"]))

# --- a model that only ends in a known name: matched by its last part, each was estimated as Llama-3.1-8B ---------
for name in ("/meta-llama/Llama-3.1-8B", "meta-llama//Llama-3.1-8B", "hf.co/meta-llama/Llama-3.1-8B",
             "a b/Llama-3.1-8B", "[red]x[/red]/Llama-3.1-8B", "./none/Llama-3.1-8B"):
    case(f"estimate-model-{name}", lambda i, name=name: ["estimate", name])

# --- orch plan's own parser says what the typer commands say: a loop of links, a name too long, a pipe for a card --
def _home_a_loop(i: Inputs) -> list[str]:
    (i.files / "loopA").symlink_to(i.files / "loopB")
    (i.files / "loopB").symlink_to(i.files / "loopA")
    i.env("ORCH_HOME", str(i.files / "loopA"))
    return plan(i)


def _readme_a_pipe(i: Inputs) -> list[str]:
    i.file("cards/train.jsonl", (REPO / "examples" / "data" / "tiny_instruct.jsonl").read_text())
    os.mkfifo(i.files / "cards" / "README.md")  # read, it waited for a writer for ever
    return plan(i, model="orch/tiny-llama", dataset=str(i.files / "cards"), train_tokens=DROP, epochs=1, seq_len=64)


case("plan-orch-home-a-loop", _home_a_loop)
case("plan-model-name-too-long", lambda i: plan(i, model="/tmp/" + "a" * 300))
for command in ("plan", "submit"):
    case(f"{command}-dataset-readme-a-pipe", lambda i, c=command: [c, *_readme_a_pipe(i)[1:]])

# --- numbers that read as 0 only by underflow, where 0 is allowed: 1e-400 is no 0 the user wrote -------------------
for flag_at_zero in (["submit", "--priority"], ["scheduler", "run", "--once", "--monthly-cap"],
                     ["estimate", "Llama-3.1-8B", "--lora-dropout"], ["train", "--set"]):
    case(f"{flag_at_zero[0]}-{flag_at_zero[-1]}-underflow",
         lambda i, f=flag_at_zero: [*f[:1], *([i.job(dataset=DATA)] if f[0] in ("submit", "train") else []), *f[1:],
                                    "lora_dropout=1e-400" if f[-1] == "--set" else "1e-400"])
case("job-value-underflow", lambda i: ["plan", i.file("job.yaml", i.job_text() + "lora_dropout: -1.5e-400\n"),
                                       "--budget", "1"])
case("hardware-value-underflow", lambda i: i.hardware("cards: [{gpu: RTX 4090, host_power_w: 1e-400}]\n"))
case("calibration-value-underflow", lambda i: i.calibration('{"efficiency": {}, "memory": {"cuda": {"context_gib": 1, '
                                                            '"slack_fraction": 1e-400}}}'))

# --- run and job ids: never patterns ---------------------------------------------------------------------------------
for command in ("logs", "stop", "resume"):
    for text in ("%", "_", "", "r-%", "%abc%", "[bold]x"):
        def build(i, command=command, text=text):
            i.run_record()
            return [command, text]
        case(f"{command}-id={text!r}", build)
for text in ("%", "_", "", "j-%"):
    def build_cancel(i, text=text):
        i.queued_job()
        return ["cancel", text]
    case(f"cancel-id={text!r}", build_cancel)

# --- databases changed by hand: every command that lists them names the damaged row -----------------------------------
for column, value in (("tokens_per_s", "'fast'"), ("status", "'done'"), ("target", "'moon'"),
                      ("job_json", "'{broken'"), ("metrics_json", "'[1]'"), ("cost_usd", "9e999"), ("pid", "1.5"),
                      ("cost_usd", "1e308"), ("usd_per_hour", "-1"), ("spot", "7"), ("train_tokens", "-5"),
                      ("pid", "-3"), ("cluster", "'-e touch /tmp/x '")):  # a cluster reaches rsync's arguments
    for command in (["runs"], ["spend", "--json"], ["runs", "--export", "runs.csv"], ["report", "--out", "rep"],
                    ["logs", RUN_ID], ["pull", RUN_ID]):
        case(f"runs.db-{column}={value}-{command[0]}",
             lambda i, c=column, v=value, cmd=command: i.hand_edited(f"UPDATE runs SET {c} = {v}", *cmd))


def _resume_without_its_job(i: Inputs, job_text: str | None) -> list[str]:
    """A preempted run with budget left whose folder's copy of the job is gone (or `job_text`): the trainer would
    start, fail to read it, and the run would be recorded as ended again."""
    i.hand_edited("UPDATE runs SET status = 'preempted', budget_usd = 1")
    run_dir = i.home / "runs" / RUN_ID
    run_dir.mkdir(parents=True)
    if job_text is not None:
        (run_dir / "job.yaml").write_text(job_text, encoding="utf-8")
    return ["resume", RUN_ID]


for name, text in (("deleted", None), ("emptied", ""), ("edited", "model: orch/tiny-llama\nseq_len: -1\n")):
    case(f"resume-job-copy-{name}", lambda i, t=text: _resume_without_its_job(i, t))


def _resume_unreadable_checkpoints(i: Inputs) -> list[str]:
    """A preempted run whose checkpoints its user may not read (root reads every file, so the refusal is made as
    the OS makes it): the trainer started, died in a traceback, and the run was recorded failed."""
    import orchestrator.launch.lifecycle as lifecycle

    command = _resume_without_its_job(i, yaml.safe_dump({**BASE_JOB, "model": "orch/tiny-llama", "dataset": DATA}))
    checkpoints = i.home / "runs" / RUN_ID / "output" / "checkpoints"
    checkpoints.mkdir(parents=True)
    real_access = os.access
    i.monkeypatch.setattr(lifecycle.os, "access", lambda path, mode: Path(path) != checkpoints and
                          real_access(path, mode))
    return command


case("resume-checkpoints-unreadable", _resume_unreadable_checkpoints)
# the scheduler reads queued and running jobs only: one whose status was edited to 'paused' is not among them
SCHEDULER_PASS = ["scheduler", "run", "--once", "--cpu-slots", "0"]
for column, value, commands in (("status", "'paused'", (["queue"], ["cancel", "j-"])),
                                ("priority", "'high'", (["queue"], ["cancel", "j-"], SCHEDULER_PASS)),
                                ("job_json", "'nope'", (["queue"], SCHEDULER_PASS))):
    for command in commands:
        case(f"runs.db-jobs-{column}={value}-{command[0]}",
             lambda i, c=column, v=value, cmd=command: i.hand_edited(f"UPDATE jobs SET {c} = {v}", *cmd))
for name, text in (("broken-json", "{"), ("spread-text", json.dumps({**GOOD_ROW, "tokens_per_s_spread": "wide"})),
                   ("steps-fraction", json.dumps({**GOOD_ROW, "timed_steps": 2.5})),
                   ("step-time-negative", json.dumps({**GOOD_ROW, "step_time_s": -1})),
                   ("gpu-a-number", json.dumps({**GOOD_ROW, "gpu": 5})),
                   ("stable-without-interval", json.dumps({**GOOD_ROW, "stable": True})),
                   ("peak-past-the-card", json.dumps({**GOOD_ROW, "gpu": "NVIDIA H100 80GB HBM3", "gpu_vram_gib": 79.6,
                                                      "nvml_peak_used_gib": 9000}))):
    case(f"bench.db-{name}", lambda i, t=text: i.bench_row(t))

# --- exports and report folders --------------------------------------------------------------------------------------
case("runs-export-missing-folder", lambda i: ["runs", "--export", str(i.files / "no" / "runs.csv")])
case("runs-export-under-a-file", lambda i: ["runs", "--export", i.file("f", "x") + "/runs.csv"])
case("runs-export-a-folder", lambda i: ["runs", "--export", i.folder("dir.csv")])
case("runs-export-bad-suffix", lambda i: ["runs", "--export", str(i.files / "runs.txt")])
case("report-out-is-a-file", lambda i: ["report", "--out", i.file("report", "x"), "--results",
                                        i.file("r.jsonl", row() + "\n")])
case("report-budget-nan-before-the-default-job", lambda i: ["report", "--budget", "nan", "--out", str(i.work / "r")])
case("report-job-missing", lambda i: ["report", "--results", i.file("r.jsonl", row() + "\n"), "--job",
                                      str(i.files / "nope.yaml"), "--out", str(i.work / "rep")])
case("report-job-bad", lambda i: ["report", "--results", i.file("r.jsonl", row() + "\n"), "--job",
                                  i.job(learning_rate=math.inf), "--out", str(i.work / "rep")])
case("calibrate-results-a-csv-export", lambda i: ["calibrate", "--results",
                                                  i.file("b.csv", "point_id,status\np1,ok\n")])
case("calibrate-peak-past-the-card", lambda i: ["calibrate", "--results", i.file("r.jsonl", row(
    gpu="NVIDIA H100 80GB HBM3", gpu_vram_gib=79.6, peak_vram_gib={"reserved": 500.0}) + "\n"), "--out",
    str(i.files / "c.json")])
case("calibrate-out-missing-folder", lambda i: ["calibrate", "--results", i.file("r.jsonl", row() + "\n"),
                                                "--out", str(i.files / "no" / "c.json")])
case("calibrate-out-a-folder", lambda i: ["calibrate", "--results", i.file("r.jsonl", row() + "\n"),
                                          "--out", str(i.files)])
case("calibrate-db-under-a-file", lambda i: ["calibrate", "--db", i.file("f", "x") + "/bench.db"])

# --- sweeps ----------------------------------------------------------------------------------------------------------
case("sweep-missing", lambda i: ["bench", str(i.files / "nope.yaml")])
case("sweep-not-utf8", lambda i: ["bench", i.file("s.yaml", b"name: \xff\n")])
case("sweep-duplicate-key", lambda i: ["bench", i.file("s.yaml", f"name: a\nname: b\ndataset: {DATA}\ngrids: []\n")])
case("sweep-bad-yaml", lambda i: ["bench", i.file("s.yaml", "grids: [\n")])
case("sweep-grids-not-a-list", lambda i: i.sweep(grids={"model": ["x"]}))
case("sweep-grid-not-a-mapping", lambda i: i.sweep(grids=["x"]))
case("sweep-seq-len-0", lambda i: i.sweep(grids=[{"model": ["orch/tiny-llama"], "method": ["lora"], "seq_len": [0]}]))
case("sweep-unknown-key", lambda i: i.sweep(colour="red"))
case("sweep-warmup-nan", lambda i: i.sweep(warmup_steps=math.nan))
case("sweep-warmup-0", lambda i: i.sweep(warmup_steps=0))
case("sweep-measured-text", lambda i: i.sweep(measured_steps="five"))
case("sweep-dataset-missing", lambda i: i.sweep(dataset="none.jsonl"))
case("sweep-dataset-a-number", lambda i: i.sweep(dataset=5))
case("sweep-dataset-nul", lambda i: i.sweep(dataset="a\x00b"))  # a traceback: embedded null byte
case("sweep-name-escapes", lambda i: i.sweep(name="../x"))
case("sweep-settings-a-list", lambda i: i.sweep(settings=[1]))
case("bench-target-cloud", lambda i: i.sweep() + ["--target", "cloud"])
case("bench-out-bad-suffix", lambda i: i.sweep() + ["--out", str(i.files / "o.txt")])
case("bench-out-missing-folder", lambda i: i.sweep() + ["--out", str(i.files / "no" / "o.jsonl")])
case("bench-out-a-folder", lambda i: i.sweep() + ["--out", i.folder("x.jsonl")])
case("bench-out-over-the-dataset", lambda i: i.sweep(dataset=i.file("d.jsonl", '{"text": "a"}\n')) +
     ["--out", str(i.files / "d.jsonl")])
for name, changes in (("empty-grid-list", {"grids": [{"model": ["orch/tiny-llama"], "method": []}]}),
                      ("too-many-points", {"grids": [{"model": ["orch/tiny-llama"], "seq_len": list(range(1, 201)),
                                                      "micro_batch": list(range(1, 201))}]}),
                      ("unknown-key", {"lora_r": 8}),
                      ("model-markup", {"grids": [{"model": ["[bold red]x[/]"], "method": ["lora"]}]})):
    case(f"bench-sweep-{name}", lambda i, c=changes: i.sweep(**c))
case("bench-sweep-dataset-not-utf8", lambda i: i.sweep(dataset=i.file("bad.jsonl", b"\xff\xfe bad")))
case("bench-out-is-the-db", lambda i: i.sweep() + ["--db", str(i.work / "r.jsonl"), "--out", str(i.work / "r.jsonl")])
case("calibrate-out-is-the-db", lambda i: ["calibrate", "--db", str(i.work / "b.db"), "--out", str(i.work / "b.db")])
case("calibrate-out-not-json", lambda i: ["calibrate", "--out", str(i.work / "calibration.yaml")])

# --- results files ---------------------------------------------------------------------------------------------------
for command in ("calibrate", "report"):
    case(f"{command}-results-broken-json", lambda i, c=command: i.results(row(), '{"point_id": "p2", ', command=c))
    case(f"{command}-results-not-utf8", lambda i, c=command: i.results(b'{"point_id": "\xff"}', command=c))
    case(f"{command}-results-a-list", lambda i, c=command: i.results("[1, 2]", command=c))
    case(f"{command}-results-no-config", lambda i, c=command: i.results(json.dumps({"point_id": "p", "status": "ok"}),
                                                                         command=c))
    case(f"{command}-results-nan", lambda i, c=command: i.results(row().replace("100.0", "NaN"), command=c))
    case(f"{command}-results-missing-file", lambda i, c=command: [c, "--results", str(i.files / "nope.jsonl")])
    case(f"{command}-results-no-rows", lambda i, c=command: i.results("", "  ", command=c))
case("calibrate-results-none-usable", lambda i: i.results(row(status="error"), row(point_id="p2", status="oom")))
case("calibrate-results-bad-config", lambda i: i.results(row(config={"model": "x", "method": "dora", "seq_len": 1})))
case("calibrate-results-negative-speed", lambda i: i.results(row(tokens_per_s=-5)))
case("calibrate-results-text-speed", lambda i: i.results(row(tokens_per_s="fast")))
case("calibrate-results-peak-a-list", lambda i: i.results(row(peak_vram_gib=[1])))
case("calibrate-results-infinity", lambda i: i.results(row().replace("100.0", "Infinity")))
case("calibrate-results-speed-1e308", lambda i: i.results(row(tokens_per_s=1e308)))
case("calibrate-results-key-twice", lambda i: i.results(row().replace('"sweep": "s"', '"sweep": "s", "status": "oom"')))
case("calibrate-into-orch-calibration-not-json", lambda i: [i.env("ORCH_CALIBRATION", str(i.files / "cal.txt")),
                                                           i.results(row())][1])
case("calibrate-results-point-id-empty", lambda i: i.results(row(point_id="")))
case("calibrate-results-point-id-control", lambda i: i.results(row(point_id="p\x1b[31m1")))
case("calibrate-results-point-id-newline", lambda i: i.results(row(point_id="p\n1")))
case("calibrate-results-status-unknown", lambda i: i.results(row(status="great")))
case("calibrate-results-model-unknown", lambda i: i.results(row(config={**GOOD_ROW["config"], "model": "Llama-9-8X"})))
case("calibrate-results-peak-huge", lambda i: i.results(row(peak_vram_gib={"reserved": 1e300})))
for field, value in (("padding_fraction", 0.999999999), ("mfu", 10), ("gpu_util_mean_pct", -50),
                     ("cpu_threads", -4), ("cpu_threads", 0), ("created_at", 1e11), ("train_tokens", 10**300)):
    case(f"calibrate-results-{field}-{value}", lambda i, f=field, v=value: i.results(row(**{f: v})))
# a whole number typed in full past a float's range (10^309 up): OverflowError wherever it met math.isfinite
PAST_FLOATS = 10**400
for key in ("learning_rate", "weight_decay", "lora_dropout", "epochs"):
    case(f"job-{key}-past-floats", lambda i, k=key: plan(i, **{k: PAST_FLOATS}))
case("job-learning_rate-past-floats-below", lambda i: plan(i, learning_rate=-PAST_FLOATS))
case("train-set-past-floats", lambda i: ["train", i.job(), "--set", f"learning_rate={PAST_FLOATS}"])
case("calibrate-results-speed-past-floats", lambda i: i.results(row(tokens_per_s=PAST_FLOATS)))
case("hardware-pue-past-floats", lambda i: i.hardware(f"pue: {PAST_FLOATS}\n"))
case("hardware-price-past-floats", lambda i: i.hardware(
    f"cards:\n  - gpu: RTX 4090\n    purchase_price_usd: {PAST_FLOATS}\n"))
case("calibration-efficiency-past-floats", lambda i: i.calibration(
    f'{{"efficiency": {{"H100 SXM": {{"lora": {PAST_FLOATS}}}}}}}'))
for command in ("calibrate", "report"):  # --db was read by neither beside --results, unsaid
    case(f"{command}-db-beside-results", lambda i, c=command: i.results(row(), command=c)
         + ["--db", i.file("text.db", "hello")])
TRACE_HEADER = "job_id,arrival_h,model,method,seq_len,train_tokens,deadline_h,budget_usd,priority\n"
TRACE_ROW = "job-%d,1.2,meta-llama/Llama-3.2-1B,qlora,2048,25306047,39.93,45.77,0\n"
for column, at in (("seq_len", 4), ("priority", 8)):  # a whole number of 400 digits: OverflowError in isfinite
    case(f"simulate-trace-{column}-past-floats", lambda i, at=at: ["simulate", "--trace", i.file("t.csv", TRACE_HEADER
         + ",".join(str(PAST_FLOATS) if n == at else v for n, v in enumerate((TRACE_ROW % 1).strip().split(",")))
         + "\n")])
case("report-trace-bad-third-row", lambda i: ["report", "--out", str(i.work / "rep"), "--trace", i.file(
    "t.csv", TRACE_HEADER + TRACE_ROW % 1 + TRACE_ROW % 2 + "job-x,1\n")])

# --- another trainer's config, through `orch import` ----------------------------------------------------------------
AXOLOTL = "base_model: meta-llama/Llama-3.1-8B\nadapter: lora\nsequence_len: 2048\nmax_steps: 10\n"
case("import-not-utf8", lambda i: ["import", i.file("ax.yaml", "base_model: caf\u00e9\n".encode("latin-1"))])
case("import-a-folder", lambda i: ["import", i.folder("ax")])
case("import-missing-file", lambda i: ["import", str(i.files / "none.yaml")])
case("import-broken-yaml", lambda i: ["import", i.file("ax.yaml", "adapter: [\n")])
case("import-a-list", lambda i: ["import", i.file("ax.yaml", "- a\n- b\n")])
case("import-duplicate-key", lambda i: ["import", i.file("ax.yaml", AXOLOTL + "adapter: qlora\n")])
case("import-incomplete", lambda i: ["import", i.file("ax.yaml", "adapter: lora\n")])
case("plan-dataset-records-of-no-shape", lambda i: i.file("shapeless.jsonl", '{"foo": 1}\n' * 50) and
     plan(i, model="orch/tiny-llama", method="lora", seq_len=64, dataset="shapeless.jsonl"))
for args in (["--method", ""], ["--gpu", ""]):
    case(f"estimate-empty{args[0]}", lambda i, a=args: ["estimate", "Llama-3.1-8B", *a])
case("catalog-offers-empty-gpu", lambda i: ["catalog", "offers", "--gpu", ""])
for value in ("../../x", "[bold red]x[/]", "lm head"):
    case(f"estimate-modules-to-save-{value}", lambda i, v=value: ["estimate", "Llama-3.1-8B", "--modules-to-save", v])
# a pipe waits forever for a writer and /dev/zero never ends: read whole, they hung or ran out of memory
case("import-a-pipe", lambda i: ["import", i.pipe("ax.yaml")])
case("import-dev-zero", lambda i: ["import", "/dev/zero"])
case("hardware-a-pipe", lambda i: i.hardware_path(i.pipe("hw.yaml")))
case("plan-job-dev-zero", lambda i: ["plan", "/dev/zero", "--budget", "1"])


def _catalog_pipe(i: Inputs) -> list[str]:
    """A pipe as a cloud's vms.csv: a cold cache hung on it, a warm one showed that cloud with no offers."""
    i.env("ORCH_SKY_CATALOGS", i.folder("pipes"))
    (i.files / "pipes" / "lambda").mkdir()
    i.pipe("pipes/lambda/vms.csv")
    return ["catalog", "offers"]


case("catalog-a-pipe", _catalog_pipe)
CSV_REPEATED = "instruction,output,output\n" + "".join(f"question {n},answer {n},other {n}\n" for n in range(60))
case("plan-modules-to-save-typo", lambda i: plan(i, model="orch/tiny-llama", method="lora",
                                                  modules_to_save=["embed_token"]))
case("launch-modules-to-save-typo", lambda i: ["launch", i.job(method="lora", modules_to_save=["lm_heads"]),
                                               "--budget", "10", "--target", "cloud", "--dry-run"])
case("plan-csv-header-repeats-a-column", lambda i: plan(i, model="orch/tiny-llama", method="lora", seq_len=64,
                                                         dataset=i.file("rep.csv", CSV_REPEATED)))
case("launch-csv-header-repeats-a-column", lambda i: ["launch", i.job(dataset=i.file("rep.csv", CSV_REPEATED)),
                                                      "--budget", "10", "--target", "cloud", "--dry-run"])
CSV_RAGGED = "instruction,input,output\n" + "".join(f"question {n},,answer {n}\n" for n in range(60)) + "q,,a, b,c\n"
case("plan-csv-row-with-more-fields-than-the-header", lambda i: plan(i, model="orch/tiny-llama", method="lora",
                                                                    seq_len=64, dataset=i.file("rag.csv", CSV_RAGGED)))
case("launch-csv-row-with-more-fields-than-the-header",
     lambda i: ["launch", i.job(dataset=i.file("rag.csv", CSV_RAGGED)), "--budget", "10", "--target", "cloud",
                "--dry-run"])
case("plan-dataset-of-preference-pairs", lambda i: plan(i, model="orch/tiny-llama", method="lora", seq_len=64,
                                                         dataset=i.file("dpo.jsonl", '{"prompt": "q", "chosen": "a", '
                                                                                     '"rejected": "b"}\n' * 50)))
case("plan-dataset-smaller-than-a-step", lambda i: i.file("two.jsonl", '{"text": "a b c"}\n' * 2) and
     plan(i, model="orch/tiny-llama", method="lora", seq_len=64, micro_batch=8, dataset="two.jsonl"))
DEEP = "[" * 5000 + "]" * 5000
case("jobfile-nested-deep", lambda i: ["plan", i.file("deep.yaml", "model: Llama-3.1-8B\nlora_r: " + DEEP), "--budget",
                                       "1"])
case("train-set-nested-deep", lambda i: ["train", i.job(), "--set", "seq_len=" + DEEP])
case("train-set-empty-value", lambda i: ["train", i.job(), "--set", "lora_r="])
case("train-set-blank-value", lambda i: ["train", i.job(), "--set", "max_steps=  "])
case("hardware-nested-deep", lambda i: i.hardware("pue: " + DEEP))
case("model-config-nested-deep", lambda i: i.model('{"hidden_size": ' + "[" * 100_000 + "]" * 100_000 + "}"))
case("calibration-nested-deep", lambda i: i.calibration('{"efficiency": ' + DEEP + "}"))


def _import_over_its_dataset(i: Inputs) -> list[str]:
    """The job written among the files of the dataset folder it names: the next run reads it as data."""
    data = Path(i.file("data/d.jsonl", '{"text": "a"}\n')).parent
    config = i.file("ax.yaml", AXOLOTL + f"datasets: [{{path: {data}, type: completion}}]\n")
    return ["import", config, "--out", str(data / "job.yaml"), "--force"]


case("import-out-over-its-dataset", _import_over_its_dataset)
for command in (["calibrate"], ["report", "--out", "rep"]):  # runs.db as no database was passed over, exit 0
    case(f"{command[0]}-runs-db-a-folder", lambda i, c=command: (i.state_folder("runs.db"), c)[1])
    case(f"{command[0]}-runs-db-a-pipe", lambda i, c=command: (i.home.mkdir(), os.mkfifo(i.home / "runs.db"), c)[2])


def _completion_over(i: Inputs, bashrc: bytes | None) -> list[str]:
    """`--install-completion` in bash in a home whose ~/.bashrc is `bashrc`'s bytes, or a folder (None)."""
    home = Path(i.folder("shell-home"))
    i.env("HOME", str(home))
    i.monkeypatch.setattr("typer._completion_shared._get_shell_name", lambda: "bash")  # wherever the tests run
    if bashrc is None:
        (home / ".bashrc").mkdir()
    else:
        (home / ".bashrc").write_bytes(bashrc)
    return ["--install-completion"]


case("install-completion-bashrc-not-utf8", lambda i: _completion_over(i, b"\xff\xfe alias x=y\n"))
case("install-completion-bashrc-a-folder", lambda i: _completion_over(i, None))


def in_a_run_folder(i: Inputs, name: str) -> str:
    """A file in a recorded run's folder under ORCH_HOME: what `orch resume` trains (job.yaml) and reports."""
    i.run_record()
    folder = i.home / "runs" / RUN_ID
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.yaml").write_text(i.job_text())
    return str(folder / name)


# an output among orch's own records: `--force` replaced a run's job.yaml, and `orch resume` trained the swap
case("import-out-a-runs-job", lambda i: ["import", i.file("ax.yaml", AXOLOTL), "--out", in_a_run_folder(i, "job.yaml"),
                                         "--force"])
case("launch-dry-run-out-a-runs-job", lambda i: ["launch", i.job(), "--budget", "10", "--dry-run", "--out",
                                                 in_a_run_folder(i, "job.yaml"), "--force"])
case("runs-export-into-a-run-folder", lambda i: ["runs", "--export", in_a_run_folder(i, "runs.csv")])
case("calibrate-out-into-a-run-folder", lambda i: ["calibrate", "--out", in_a_run_folder(i, "calibration.json")])
case("simulate-generate-into-a-run-folder", lambda i: ["simulate", "--generate", "5", "--out",
                                                       in_a_run_folder(i, "trace.csv")])
case("train-output-a-run-folder", lambda i: ["train", i.job(), "--output", in_a_run_folder(i, "output")])
def _resume_with_output_a_file(i: Inputs) -> list[str]:
    """A stopped run whose output/ was replaced by a file: its trainer was started, refused it, and the run was
    recorded failed, exit 1."""
    output = Path(in_a_run_folder(i, "output"))
    output.write_text("not the run's folder\n")
    with closing(sqlite3.connect(i.home / "runs.db")) as db, db:
        db.execute("UPDATE runs SET status = 'stopped' WHERE run_id = ?", (RUN_ID,))
    return ["resume", RUN_ID]



def test_a_run_whose_output_is_no_folder_is_refused_before_its_resume_starts(inputs):
    result = CliRunner().invoke(app, _resume_with_output_a_file(inputs))
    assert result.exit_code == 2 and "cannot resume: its output" in result.stderr and "is no longer a folder" in \
        result.stderr, result.output
# a run's log is the file its trainer wrote: a link was followed anywhere (`/etc/shadow` printed), a folder was "no log"
case("logs-train-log-a-link", lambda i: [Path(in_a_run_folder(i, "train.log")).symlink_to(i.file("secret", "s\n")),
                                         "logs", RUN_ID][1:])
case("logs-train-log-a-folder", lambda i: [Path(in_a_run_folder(i, "train.log")).mkdir(), "logs", RUN_ID][1:])
case("train-output-the-jobs-folder", lambda i: ["train", i.job(), "--output", i.state_folder("jobs")])
for out in ("-", "job.json", "job"):  # `-` wrote a file named so; JSON or no suffix, YAML under the name
    case(f"import-out-{out}", lambda i, out=out: ["import", i.file("ax.yaml", AXOLOTL), "--out", out])
    case(f"launch-dry-run-out-{out}", lambda i, out=out: ["launch", i.job(), "--budget", "10", "--dry-run", "--out",
                                                           out])
case("report-out-dash", lambda i: ["report", "--out", "-"])
case("import-set-nan", lambda i: ["import", i.file("ax.yaml", AXOLOTL), "--set", "learning_rate=nan"])
case("import-set-no-value", lambda i: ["import", i.file("ax.yaml", AXOLOTL), "--set", "seq_len"])
case("import-out-no-folder", lambda i: ["import", i.file("ax.yaml", AXOLOTL), "--out", str(i.files / "no" / "j.yaml")])
case("import-out-a-folder", lambda i: ["import", i.file("ax.yaml", AXOLOTL), "--out", i.folder("out")])
case("import-out-over-its-input", lambda i: ["import", path := i.file("ax.yaml", AXOLOTL), "--out", path])
for name in ("a\x1b[31mX.yaml", "b\n.yaml", "c\u202e.yaml", "d\t.yaml"):
    case(f"import-out-{name!r}", lambda i, n=name: ["import", i.file("ax.yaml", AXOLOTL), "--out", str(i.files / n)])
case("import-out-a-pipe", lambda i: ["import", i.file("ax.yaml", AXOLOTL), "--out", i.pipe("job.yaml")])

# --- orch simulate ---------------------------------------------------------------------------------------------------
TRACE = ("job_id,arrival_h,model,method,seq_len,train_tokens,deadline_h,budget_usd,priority\n"
         "j1,1.0,meta-llama/Llama-3.1-8B,qlora,2048,20000000,38.8,118.3,1\n")
for flags in (["--spot-preemptions-per-h", "1e30"], ["--spot-preemptions-per-h", "3601"], ["--rate", "nan"],
              ["--rate", "-inf"], ["--rate", "1e30"], ["--generate", "5", "--rate", "1e-308", "--out", "t.csv"],
              ["--generate", "5", "--rate", "99999999999", "--out", "t.csv"]):
    case(f"simulate{' '.join(flags)}", lambda i, f=flags: ["simulate", "--trace", i.file("t.csv", TRACE), *f])
case("simulate-out-holds-the-trace", lambda i: ["simulate", "--trace", i.file("d/decisions.csv", TRACE),
                                                "--out", str(i.files / "d")])
case("simulate-generate-into-a-pipe", lambda i: ["simulate", "--generate", "5", "--out", i.pipe("trace.csv")])
TRACE_HEADER = TRACE.splitlines(keepends=True)[0]
case("simulate-trace-of-no-jobs", lambda i: ["simulate", "--trace", i.file("t.csv", TRACE_HEADER)])
case("report-trace-of-no-jobs", lambda i: ["report", "--trace", i.file("t.csv", TRACE_HEADER), "--out",
                                           str(i.files / "rep")])
case("simulate-trace-budget-0", lambda i: ["simulate", "--trace", i.file("t.csv", TRACE.replace(",118.3,", ",0,"))])
case("simulate-out-with-a-bad-later-row", lambda i: ["simulate", "--trace", i.file("t.csv", TRACE + TRACE.splitlines(
    keepends=True)[1].replace("j1,", "j2,").replace("meta-llama/Llama-3.1-8B", "x")), "--out", str(i.files / "d")])
case("simulate-out-holds-earlier-results", lambda i: [i.file("d/simulation.png", b"\x89PNG"), "simulate", "--trace",
                                                      i.file("t.csv", TRACE), "--out", str(i.files / "d")][1:])

# --- hardware file ---------------------------------------------------------------------------------------------------
CARD = "cards: [{gpu: RTX 4090, %s}]"
for text in (CARD % "purchase_price_usd: lots", CARD % "purchase_price_usd: -1800", CARD % "host_power_w: -100",
             CARD % "life_years: .nan", CARD % "life_years: 0", CARD % "utilization: 2", CARD % "utilization: .nan",
             CARD % "count: 0", CARD % "count: 1.5", CARD % "power_w: .inf", CARD % "ssh_pool: ../x",
             CARD % "power_w: 0.45",  # kilowatts written as watts: priced its power a thousand times too low
             CARD % "ssh_pool: lab, accelerator: .nan", CARD % "ssh_pool: lab, accelerator: '[red]x'",
             CARD % "accelerator: RTX4090", "cards: 1",
             CARD % "colour: red", "pue: .nan", "pue: .inf", "pue: 0.5", "electricity_usd_per_kwh: -1",
             "cost_policy: free", "cards: [gpu: x", "cards: [{gpu: RTX 4070}]", "cards: [{count: 1}]",
             "pue: 1.2\npue: 1.5", "- a list", "cards: {gpu: RTX 4090}"):
    case(f"hardware-{text}", lambda i, t=text: i.hardware(t))
case("hardware-not-utf8", lambda i: i.hardware(b"pue: 1.0 # \xff\n"))
case("hardware-a-folder", lambda i: i.hardware_path(i.folder("hardware.yaml")))
case("hardware-named-but-missing", lambda i: i.hardware_path(str(i.files / "hardwre.yaml")))
case("hardware-gpu-a-bool", lambda i: i.hardware("cards: [{gpu: true}]"))
case("hardware-card-key-at-top", lambda i: i.hardware("ssh_pool: lab"))

def broken_catalog(i: Inputs, content: bytes) -> list[str]:
    i.file("v8/aws/vms.csv", content)
    return ["catalog", "refresh", "--from", str(i.files / "v8")]


case("catalog-refresh-not-utf8", lambda i: broken_catalog(i, b"\xff\xfe,,,\n"))
case("catalog-refresh-wrong-columns", lambda i: broken_catalog(i, b"a,b\n1,2\n"))
case("catalog-refresh-from-a-file", lambda i: ["catalog", "refresh", "--from", i.file("v8.txt", "x")])

# --- environment variables that name folders -------------------------------------------------------------------------
def with_env(variable: str, value: str, command: list[str]) -> Callable[[Inputs], list[str]]:
    return lambda i: i.env(variable, value.format(files=i.files)) or command


# a local run of what this machine can neither find nor download started, was recorded and charged, then failed
for name, changes in (("model", {"model": "Qwen/Qwen2.5-0.5B", "dataset": DATA}),
                      ("dataset", {"model": "orch/tiny-llama", "dataset": "someorg/some-ds", "seq_len": 64})):
    case(f"launch-local-{name}-unreachable", lambda i, changes=changes: with_env("HF_HUB_OFFLINE", "1", [
        "launch", i.job(**changes), "--budget", "1", "--target", "local", "--yes"])(i))
# ` ~/orch-home` opened a new, empty home: every run recorded before looked lost
case("orch-home-with-spaces-around", with_env("ORCH_HOME", " {files}/home ", ["runs"]))


for variable, command in (("ORCH_HOME", ["runs"]), ("ORCH_CACHE", ["catalog", "offers"]),
                          ("ORCH_HARDWARE", ["catalog", "local"])):
    case(f"env-{variable}-no-such-user", with_env(variable, "~no-such-user-orch/x", command))
# ORCH_CACHE a file: a tiny job's launch recorded and charged a run its trainer then refused, and submit queued it
TINY = {"model": "orch/tiny-llama", "method": "lora", "seq_len": 64, "max_steps": 2, "dataset": DATA}
for name, tail in (("launch", ["--budget", "1", "--target", "local", "--yes"]), ("submit", [])):
    case(f"env-ORCH_CACHE-a-file-{name}", lambda i, name=name, tail=tail: [
        i.env("ORCH_CACHE", i.file("cache-file", "x")), name, i.file("tiny.yaml", yaml.safe_dump(TINY)), *tail][1:])
case("env-ORCH_SKY_CATALOGS-missing", with_env("ORCH_SKY_CATALOGS", "{files}/nope", ["catalog", "offers"]))
case("env-ORCH_SKY_CATALOGS-empty-folder",
     lambda i: with_env("ORCH_SKY_CATALOGS", i.folder("empty-catalog"), ["catalog", "offers"])(i))

# --- calibration file ------------------------------------------------------------------------------------------------
for name, text in (("efficiency-0", '{"efficiency": {"H100 SXM": {"lora": 0}}}'),
                   ("efficiency-nan", '{"efficiency": {"H100 SXM": {"lora": NaN}}}'),
                   ("efficiency-negative", '{"efficiency": {"H100 SXM": {"lora": -0.1}}}'),
                   ("efficiency-2", '{"efficiency": {"H100 SXM": {"lora": 2}}}'),
                   ("efficiency-text", '{"efficiency": {"H100 SXM": {"lora": "x"}}}'),
                   ("efficiency-inf", '{"efficiency": {"A100 80GB": {"qlora": Infinity}}}'),
                   ("memory-nan", '{"efficiency": {}, "memory": {"cuda": {"context_gib": NaN}}}'),
                   ("headroom-whole-card", '{"efficiency": {}, "memory": {"cuda": {"headroom_fraction": 1}}}'),
                   ("basis-unknown", '{"efficiency": {"L4": {"lora": 0.5}}, "efficiency_basis": {"L4": {"lora": 1}}}'),
                   ("basis-a-number", '{"efficiency": {}, "efficiency_basis": {"L4": 1}}'),
                   ("method-basis-nan", '{"efficiency": {}, "method_basis": NaN}'),
                   ("not-json", "efficiency: 1"), ("a-list", "[1]"), ("no-efficiency", "{}"),
                   ("memory-no-slack", '{"efficiency": {}, "memory": {"cuda": {"context_gib": 0.5}}}'),
                   ("memory-kind-unknown", '{"efficiency": {}, "memory": {"gpu": {"context_gib": 0.5}}}'),
                   ("memory-key-unknown", '{"efficiency": {}, "memory": {"cuda": {"context_gib": 0.5, '
                                          '"slack_fraction": 0.1, "slak": 1}}}'),
                   ("key-unknown", '{"efficiency": {}, "efficency": {}}'),
                   ("key-twice", '{"efficiency": {"L4": {"lora": 0.5}}, "efficiency": {}}'),
                   ("gpu-unknown", '{"efficiency": {"H900": {"lora": 0.5}}}'),
                   ("method-unknown", '{"efficiency": {"L4": {"dora": 0.5}}}'),
                   ("efficiency-a-number", '{"efficiency": 5}'),
                   ("memory-a-list", '{"efficiency": {}, "memory": [1]}'),
                   ("memory-basis-unknown", '{"efficiency": {}, "memory_basis": {"cuda": "guessed"}}'),
                   ("memory-basis-alone", '{"efficiency": {}, "memory_basis": {"cuda": "published"}}'),
                   ("memory-basis-analytic", '{"efficiency": {}, "memory": {"cuda": {"context_gib": 1, '
                                             '"slack_fraction": 0.1}}, "memory_basis": {"cuda": "analytic"}}'),
                   ("basis-analytic-fitted", '{"efficiency": {"L4": {"lora": 0.5}}, "efficiency_basis": {"L4": '
                                             '{"lora": "analytic"}}}'),
                   ("basis-alone", '{"efficiency": {}, "efficiency_basis": {"L4": {"lora": "published"}}}'),
                   ("memory-basis-kind-unknown", '{"efficiency": {}, "memory_basis": {"gpu": "published"}}')):
    case(f"calibration-{name}", lambda i, t=text: i.calibration(t))
case("calibration-not-utf8", lambda i: i.calibration(b'{"efficiency": {"\xff": {}}}'))
case("calibration-a-folder", lambda i: i.calibration_path(i.folder("cal")))

# --- SkyPilot catalogs -----------------------------------------------------------------------------------------------
case("catalog-row-too-long", lambda i: i.catalog(CATALOG_HEADER + CATALOG_ROW + "a,A100,1,2,3,4,5,6,7,8,9\n"))
case("catalog-row-too-short", lambda i: i.catalog(CATALOG_HEADER + CATALOG_ROW + "a,A100,1\n"))
case("catalog-not-utf8", lambda i: i.catalog(CATALOG_HEADER.encode() + b"\xff\xfe,A100,1,2,3,4,5,6,7\n"))
case("catalog-no-columns", lambda i: i.catalog("a,b,c\n1,2,3\n"))
case("catalog-bad-quote", lambda i: i.catalog(CATALOG_HEADER + 'a,"A100,1,30,200,1.29,,r,\n'))
case("catalog-column-twice", lambda i: i.catalog(CATALOG_HEADER.replace(",Region", ",Price,Region") +
                                                "gpu_1x_a100,A100,1,30,200,1.29,,0.01,us-east-1,\n"))
case("catalog-plan", lambda i: [i.catalog(CATALOG_HEADER + "x,A100\n"), plan(i)][1])

# --- model configs ---------------------------------------------------------------------------------------------------
for key, value in (("num_attention_heads", 0), ("num_attention_heads", [32]), ("hidden_size", "big"),
                   ("num_hidden_layers", -2), ("vocab_size", 1.5), ("intermediate_size", None),
                   ("num_key_value_heads", 0), ("head_dim", 2**40), ("num_attention_heads", 1000)):
    case(f"model-{key}={value!r}", lambda i, k=key, v=value: i.model({**GOOD_MODEL, k: v}))
case("model-not-utf8", lambda i: i.model(b'{"hidden_size": 64, "x": "\xff"}'))
case("model-not-json", lambda i: i.model("hidden_size: 64"))
case("model-a-list", lambda i: i.model("[1, 2]"))
case("model-nan", lambda i: i.model(json.dumps(GOOD_MODEL).replace("128", "NaN")))
case("model-text-config-a-list", lambda i: i.model({"text_config": [1]}))
case("model-folder-without-config", lambda i: ["estimate", str(i.files)])
case("model-context-1e308", lambda i: i.model({**GOOD_MODEL, "max_position_embeddings": 1e308}))
case("plan-model-folder-whose-config-is-broken", lambda i: [i.file("m/config.json", "{not json"),
                                                            i.file("m/tokenizer.json", "{}"),
                                                            plan(i, model=str(i.files / "m"), method="lora",
                                                                 dataset=DATA, train_tokens=DROP, epochs=1)][2])
case("model-sizes-in-range-multiplying-past-any-model", lambda i: i.model(
    {key: 2**24 for key in (*GOOD_MODEL, "num_key_value_heads", "head_dim")}))

# --- estimate and catalog flags --------------------------------------------------------------------------------------
for flags in (["--seq-len", "0"], ["--seq-len", "-1"], ["--micro-batch", "0"], ["--lora-r", "0"],
              ["--seq-len", "99999999999"], ["--micro-batch", "99999999999"], ["--grad-accum", "99999999999"],
              ["--lora-r", "99999999999"], ["--loss-chunk-tokens", "99999999999"],
              ["--quant-bits", "3"], ["--method", "dpo"], ["--gpu", "RTX 4070"], ["--target-modules", "foo"],
              ["--auto-fit"], ["--seq-len", str(2**60)], ["--optimizer", "sgd"], ["--attention", "flash3"],
              ["--quantization", "gguf"], ["--quantization", ""], ["--method", "full", "--quantization", "nf4"],
              ["--method", "qlora", "--quantization", "none"], ["--quantization", "nf4", "--quant-bits", "8"],
              ["--method", "DoRA", "--no-use-dora"]):
    case(f"estimate{' '.join(flags)}", lambda i, f=flags: ["estimate", "Llama-3.1-8B", *f])
case("estimate-seq-len-text", lambda i: ["estimate", "Llama-3.1-8B", "--seq-len", "long"])
for flags in (["--loss", "full", "--loss-chunk-tokens", "512"], ["--target-modules", "q_proj,Q_PROJ"],
              ["--modules-to-save", "lm_head,lm_head"], ["--seq-len", "1e308"]):
    case(f"estimate{' '.join(flags)}", lambda i, f=flags: ["estimate", "Llama-3.1-8B", *f])
case("plan-provider-twice", lambda i: plan(i) + ["--providers", "local,LOCAL"])
case("simulate-trace-empty", lambda i: ["simulate", "--trace", i.file("e.csv", "")])
case("job-empty-key", lambda i: ["plan", i.file("j.yaml", yaml.safe_dump(BASE_JOB) + "'': 3\n"), "--budget", "1"])
case("job-model-a-file", lambda i: plan(i, model=i.file("weights.bin", "x")))
case("orch-home-a-symlink-loop", lambda i: [os.symlink("loop", i.root / "loop"),
                                            i.env("ORCH_HOME", str(i.root / "loop")), ["runs"]][2])
case("launch-out-whose-files-folder-is-too-long", lambda i: ["launch", i.job(model="orch/tiny-llama", method="lora",
                                                                             seq_len=64, dataset=DATA), "--dry-run",
                                                             "--budget", "1", "--out", str(i.work / ("b" * 250))
                                                             + ".yaml"])
case("job-null-key", lambda i: ["plan", i.file("j.yaml", yaml.safe_dump(BASE_JOB) + "~: 3\n"), "--budget", "1"])
case("plan-csv-dataset-with-nul", lambda i: plan(i, model="orch/tiny-llama", method="lora", seq_len=64,
                                                  dataset=i.file("d.csv", "instruction,input,output\n"
                                                                 + "What is 2+2?,,4\x00\n" * 50)))
case("estimate-lora-r-above-the-width", lambda i: ["estimate", "orch/tiny-llama", "--lora-r", "129"])
for flags in (["--seq-len", "1e308"], ["--micro-batch", "1e308"], ["--quant-bits", "1e308"]):  # said by its size
    case(f"estimate-said-by-size{' '.join(flags)}", lambda i, f=flags: ["estimate", "Llama-3.1-8B", *f])
IMPORTED = ("base_model: orch/tiny-llama\nadapter: lora\nsequence_len: 64\n"
            "datasets:\n  - path: org/ds\n    type: alpaca\n")
case("import-out-a-folder-by-its-slash", lambda i: ["import", i.file("ax.yaml", IMPORTED), "--out",
                                                    str(i.work / "newdir") + "/"])
case("import-out-over-the-runs-database", lambda i: [i.run_record(), ["import", i.file("ax.yaml", IMPORTED), "--out",
                                                                    str(i.home / "runs.db"), "--force"]][1])
for command in (["report", "--out"], ["calibrate", "--out", "c.json", "--db"], ["train", "JOB", "--output"]):
    case(f"{command[0]}-path-name-too-long", lambda i, c=command: [
        i.job() if part == "JOB" else part for part in c] + [str(i.work / ("a" * 300))])
case("import-out-name-too-long", lambda i: ["import", i.file("ax.yaml", IMPORTED), "--out",
                                            str(i.work / ("a" * 300 + ".yaml"))])
case("import-model-a-folder-without-tokenizer", lambda i: ["import", i.file(
    "ax.yaml", IMPORTED.replace("orch/tiny-llama", [i.file("m/config.json", "{}"), str(i.files / "m")][1]))])
for dataset in ("/dev/zero", "/etc"):  # what plan refuses, refused where the job is written
    case(f"import-dataset-{dataset}", lambda i, d=dataset: ["import", i.file("ax.yaml", IMPORTED), "--set",
                                                            f"dataset={d}"])
case("import-dataset-of-no-kind", lambda i: ["import", i.file("ax.yaml", IMPORTED), "--set",
                                             "dataset=" + i.file("passwd", "root:x:0:0\n")])
case("hardware-a-symlink-loop", lambda i: [os.symlink("loop.yaml", i.files / "loop.yaml"),
                                           i.hardware_path(str(i.files / "loop.yaml"))][1])
case("refresh-from-a-symlink-loop", lambda i: [os.symlink("loop", i.files / "loop"),
                                               ["catalog", "refresh", "--from", str(i.files / "loop")]][1])
case("estimate-model-unknown", lambda i: ["estimate", "Lama-3.1-8B"])
case("offers-provider-unknown", lambda i: ["catalog", "offers", "--provider", "lamda"])
case("offers-provider-empty", lambda i: ["catalog", "offers", "--provider", ""])
case("offers-provider-a-cloud-with-no-catalog-here", lambda i: ["catalog", "offers", "--provider", "fluidstack"])
case("offers-gpu-unknown", lambda i: ["catalog", "offers", "--gpu", "A100-90"])
case("local-cost-free", lambda i: ["catalog", "local", "--local-cost", "free"])
case("no-such-command", lambda i: ["plna"])
for group in ("catalog", "scheduler"):  # the help on stdout, then the one line saying what is missing
    case(f"no-command-after-{group}", lambda i, g=group: [g])
case("model-name-with-escapes", lambda i: ["estimate", "\x1b]0;owned\x07\x1b[31mred"])

# --- sweeps that run nothing, or set what the sweep sets itself; imports of wrong-typed values -----------------------
SWEEP_GRID = {"model": ["orch/tiny-llama"], "method": ["lora"], "seq_len": [64]}
case("bench-sweep-no-grids", lambda i: i.sweep(grids=[]))
case("bench-sweep-grid-dataset", lambda i: i.sweep(grids=[{**SWEEP_GRID, "dataset": ["../x.jsonl"]}]))
case("bench-sweep-grid-max-steps", lambda i: i.sweep(grids=[{**SWEEP_GRID, "max_steps": [2]}]))
case("bench-sweep-settings-eval-fraction", lambda i: i.sweep(settings={"eval_fraction": 0.1}))
case("bench-sweep-settings-name", lambda i: i.sweep(settings={"name": "x"}))
case("bench-sweep-stable-within-a-denormal", lambda i: i.sweep(stable_within=1e-320))
for value in ("[embed_tokens, lm_head]", "5"):  # carried over, or listed as not: the job still lacks a model
    case(f"import-additional-target-{value}", lambda i, v=value: ["import", i.file("lf.yaml", "finetuning_type: "
                                                                                   f"lora\nadditional_target: {v}\n")])

# --- values read as zero or as none: owned cards, ORCH_CALIBRATION and ORCH_HOME, catalog numbers -------------------
for text in (CARD % "life_years: 1e-300, utilization: 1e-300", CARD % "utilization: 0.001", "cards: {}", "cards: 0",
             "cards: ''", "cards: false", "0", "''", CARD % "ssh_pool: ''", CARD % "ssh_pool: false"):
    case(f"hardware-as-none-{text}", lambda i, t=text: i.hardware(t))
case("plan-hardware-life-1e-300", lambda i: [i.hardware(CARD % "life_years: 1e-300, utilization: 1e-300"), plan(i)][1])
case("calibration-named-but-missing", lambda i: i.calibration_path(str(i.files / "calibraton.json")))
case("plan-orch-home-too-long", lambda i: [i.env("ORCH_HOME", str(i.root / ("a" * 300))),
                                           i.env("ORCH_CALIBRATION", ""), plan(i)][2])
for cells in ("1,30,200,nan,", "1,30,200,inf,", "1,30,200,-1,", "nan,30,200,1.29,", "1.5,30,200,1.29,",
              "1,30,200,1.29,nan", "1,30,200,1.29,-5"):
    case(f"catalog-number-{cells}", lambda i, c=cells: i.catalog(f"{CATALOG_HEADER}{CATALOG_ROW}b,A100,{c},r,\n"))


def _snapshot(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _inputs_as_written(inputs: Inputs) -> dict[Path, bytes]:
    """Every input file a case wrote, and every run folder's file: a refused command leaves each as it was (an --out
    naming it overwrites)."""
    return {p: p.read_bytes() if p.is_file() else p.lstat().st_mode
            for root in (inputs.files, inputs.home / "runs") for p in root.rglob("*") if not p.is_dir()}


def _outside_snapshot(root: Path) -> set[str]:
    """Names beside this test's folder: where a name like `../../x` would land."""
    return set(os.listdir(root.parent))


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    world = Inputs(tmp_path, monkeypatch)
    monkeypatch.setenv("ORCH_HOME", str(world.home))
    monkeypatch.chdir(world.work)
    yield world
    if world.reader is not None:
        os.close(world.reader)


@pytest.mark.parametrize("name, build", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_cleanly(inputs, name, build):
    args = build(inputs)
    assert args, "the case built no command"
    before, outside_before = _snapshot(inputs.root), _outside_snapshot(inputs.root)
    written = _inputs_as_written(inputs)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "\x1b" not in result.output and "\x07" not in result.output  # no escape reaches the terminal
    new = _snapshot(inputs.root) - before
    assert {p for p in new if inputs.home not in p.parents and p != inputs.home} == set(), new
    assert all(p.is_dir() and p == inputs.home or p.name.endswith(DB_FILES) for p in new), new
    assert _outside_snapshot(inputs.root) == outside_before
    assert _inputs_as_written(inputs) == written
    assert not ESCAPE_TARGET.exists()


def test_there_are_at_least_150_cases():
    assert len(CASES) >= 150


# Good inputs beside the bad ones: each fixture and writer works, so a bad case fails for the reason it names.
@pytest.mark.parametrize("build", [
    lambda i: plan(i),
    lambda i: ["submit", i.job(dataset=DATA, train_tokens=DROP)],
    lambda i: i.hardware(CARD % "purchase_price_usd: 1800, host_power_w: 0"),
    lambda i: i.calibration('{"efficiency": {"H100 SXM": {"lora": 0.4}}}'),
    lambda i: i.catalog(CATALOG_HEADER + CATALOG_ROW),
    lambda i: i.catalog(CATALOG_HEADER + CATALOG_ROW.replace("us-east-1", '"Bavaria, DE, EU"')),  # Vast's regions
    lambda i: i.model(GOOD_MODEL),
    lambda i: ["scheduler", "run", "--once", "--cpu-slots", "0", "--monthly-cap", "0"],
    # JSON text holds U+2028 and U+0085 as they are: the line was split there and called "not valid JSON"
    lambda i: i.results(json.dumps({**GOOD_ROW, "message": "a\u2028b\x85c"}, ensure_ascii=False)),
])
def test_good_inputs_beside_them_pass(inputs, build):
    result = CliRunner().invoke(app, build(inputs))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("text", ["[red]x[/]", ":x:"])  # rich markup, and an emoji code rich showed as ❌
def test_markup_in_an_error_is_shown_as_written(inputs, text):
    result = CliRunner().invoke(app, ["logs", text])
    assert result.exit_code == 2 and f"'{text}'" in result.stderr


def test_an_id_is_matched_exactly_or_by_its_start(inputs):
    inputs.run_record()
    for text in (RUN_ID, RUN_ID[:12]):
        result = CliRunner().invoke(app, ["logs", text])
        assert "has no log" in result.stderr, (text, result.stderr)
    assert "no run matching" in CliRunner().invoke(app, ["logs", RUN_ID[-6:]]).stderr  # an end is not a prefix


def test_a_run_starting_without_a_log_is_no_error(inputs):
    """A run at its start (imports, the model build) has written nothing yet: `orch logs` said so as an error, exit 2,
    as if the id were wrong."""
    inputs.run_record()
    RunStore().update(RUN_ID, status="running")
    result = CliRunner().invoke(app, ["logs", RUN_ID])
    assert result.exit_code == 0 and "has written no log yet (running)" in result.stdout, result.output


def test_a_job_id_is_matched_by_its_start_not_its_end(inputs):
    """`orch cancel`'s help said "its unique end"; ids are matched exactly or by a unique prefix, as runs are."""
    job_id = JobQueue().submit("j", "x.yaml", "{}", None, None, 0).job_id
    assert "no job matching" in CliRunner().invoke(app, ["cancel", job_id[-4:]]).stderr
    for kind_alone in ("j", "j-"):  # the start every job id has names none of them (`cancel j` cancelled the job)
        said = CliRunner().invoke(app, ["cancel", kind_alone]).stderr
        assert "only the start of an id: give a job id" in said, kind_alone
    assert "prefix" in CliRunner().invoke(app, ["cancel", "--help"]).stdout
    result = CliRunner().invoke(app, ["cancel", job_id[:5]])
    assert result.exit_code == 0 and f"cancelled {job_id}" in result.stdout


@pytest.mark.parametrize("command, what, lister", [("stop", "run", "orch runs"), ("logs", "run", "orch runs"),
                                                   ("cancel", "job", "orch queue")])
def test_an_empty_id_is_said_to_be_empty(inputs, command, what, lister):
    """`orch stop ''` said "no run matching ''", as if the runs had been searched for an empty id."""
    inputs.run_record()
    for empty in ("", "  "):
        result = CliRunner().invoke(app, [command, empty])
        assert result.exit_code == 2 and result.stderr == f"error: the {what} id is empty: give a {what} id or a " \
            f"unique prefix of one (`{lister}` lists them).\n", result.stderr


def test_a_stored_name_with_markup_is_shown_as_written(inputs, monkeypatch):
    """Names are checked now, but a runs.db from before may hold one: the table shows it, and styles nothing."""
    inputs.run_record()
    RunStore().update(RUN_ID, job_name="[red]x[/]\ty\nz", message="[bold]boom")
    monkeypatch.setenv("COLUMNS", "300")
    result = CliRunner().invoke(app, ["runs"])
    assert result.exit_code == 0 and "[red]x[/]\\ty\\nz" in result.stdout  # its row stays one line


# The trainer reads jobs itself (`python -m trainer`): the same loader refuses the same files, before torch loads.
@pytest.mark.parametrize("changes", [
    {"learning_rate": math.inf}, {"epochs": math.nan, "train_tokens": DROP, "dataset": DATA}, {"name": "../../x"},
    {"name": str(ESCAPE_TARGET)}, {"name": ""}, {"seq_len": 0}, {"max_steps": -1}, {"budget_usd": math.nan},
])
def test_the_trainer_refuses_a_bad_job_before_any_work(inputs, capsys, changes):
    from trainer.__main__ import main

    job = inputs.job(model="orch/tiny-llama", **changes)
    before = _snapshot(inputs.root)
    assert main([job]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert _snapshot(inputs.root) == before and not ESCAPE_TARGET.exists()


@pytest.mark.parametrize("override", ["max_steps=[", "learning_rate=.nan", "name=../x", "nokey"])
def test_the_trainer_refuses_a_bad_override(inputs, capsys, override):
    from trainer.__main__ import main

    assert main([inputs.job(model="orch/tiny-llama"), "--set", override]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (inputs.work / "outputs").exists()


def test_the_trainer_refuses_an_output_that_is_a_file(inputs, capsys):
    from trainer.__main__ import main

    assert main([inputs.job(model="orch/tiny-llama"), "--output", inputs.file("taken", "x")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_orch_train_passes_names_that_start_with_a_dash_as_values(inputs):
    """`orch train -job.yaml --output -inf`: the trainer's own parser reads both as values, not as options it does
    not know. A budget spent before the start ends the run before torch loads, with metrics.json in the folder."""
    job = inputs.file("-job.yaml", yaml.safe_dump({**BASE_JOB, "model": "orch/tiny-llama", "usd_per_hour": 1.0,
                                                   "budget_usd": 1e-9}))
    os.rename(job, inputs.work / "-job.yaml")
    result = CliRunner().invoke(app, ["train", "--output", "-inf", "--", "-job.yaml"])
    assert result.exit_code == 4, result.output
    assert json.loads((inputs.work / "-inf" / "metrics.json").read_text())["status"] == "budget_stopped"


def test_the_trainer_prints_an_output_folder_without_its_escapes():
    from trainer.__main__ import summary_line

    line = summary_line({"status": "ok", "steps": 1}, Path("out\x1b]0;owned\x07\x1b[31m"))
    assert "\x1b" not in line and "\x07" not in line and "\\x1b" in line


def test_launch_checks_its_out_before_it_plans(inputs):
    """A dry run's --out in a folder that does not exist is said first, not after the plan (here: not after the
    job's own mistake, which planning would find)."""
    result = CliRunner().invoke(app, ["launch", inputs.job(learning_rate=math.nan), "--budget", "10", "--dry-run",
                                      "--out", str(inputs.files / "no" / "task.yaml")])
    assert result.exit_code == 2 and "--out" in result.stderr and "learning_rate" not in result.stderr


def test_simulate_refuses_an_output_folder_with_escapes_naming_it_escaped(inputs):
    """Such a folder was made (its name styled the terminal at every later `ls`), said escaped."""
    folder = inputs.files / "out\x1b]0;owned\x07\x1b[31m"
    result = CliRunner().invoke(app, ["simulate", "--trace", inputs.file("t.csv", TRACE), "--out", str(folder)])
    assert result.exit_code == 2 and "holds a control character (\\x1b)" in result.stderr, result.output
    assert not folder.exists() and "\x1b" not in result.output and "\x07" not in result.output


def test_a_budget_below_a_cent_is_told_a_cost_above_zero(inputs):
    """The nearest miss under a tiny budget costs a fraction of a cent: "Raise --budget to at least 0.00" said
    nothing."""
    job = inputs.job(model="orch/tiny-llama", seq_len=64, train_tokens=2000)
    result = CliRunner().invoke(app, ["plan", job, "--budget", "1e-9"])
    assert result.exit_code == 2 and "Raise --budget to at least" in result.stderr, result.stderr
    assert "at least 0.00," not in result.stderr and "$0.00 for" not in result.stderr


@pytest.mark.parametrize("value", ["nan", "1e30", "0", "-inf"])
def test_resume_checks_its_budget_before_it_looks_up_the_run(inputs, value):
    result = CliRunner().invoke(app, ["resume", RUN_ID, "--budget", value])  # no such run: the budget is said first
    assert result.exit_code == 2 and result.stderr.startswith("error: --budget must be"), result.stderr


def test_a_bidirectional_control_in_a_value_is_shown_escaped(inputs):
    """U+202E shows the rest of a line reversed ("Trojan Source"): an error quoting it prints `\\u202e` instead."""
    result = CliRunner().invoke(app, ["estimate", "gpt\u202e4-lm"])
    assert result.exit_code == 2 and "\u202e" not in result.output and "'gpt\\u202e4-lm'" in result.stderr


@pytest.mark.parametrize("build", [
    lambda i, long: ["estimate", long],
    lambda i, long: ["estimate", "Llama-3.1-8B", "--gpu", long],
    lambda i, long: ["estimate", " ".join(long[:5_000])],
    lambda i, long: ["plan", str(i.files / long[:200] / "job.yaml"), "--budget", "1"],
    lambda i, long: ["launch", str(i.files / long[:200] / "job.yaml"), "--budget", "1"],
    lambda i, long: ["logs", long],
    lambda i, long: ["cancel", long],
])
def test_a_very_long_value_is_cut_in_its_error_line(inputs, build):
    """A pasted file as a model name filled screens with one `error:` line; its start and end are enough to know it,
    and the advice after it stays in view."""
    result = CliRunner().invoke(app, build(inputs, "x" * 10_000))
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert len(lines[0]) < 200 and "…" in lines[0], lines[0][:300]


# --- (appended) a path variable that is not UTF-8; catalog folders that are not clouds; a device as calibration ----
def _not_utf8_home(i: Inputs, *command: str) -> list[str]:
    i.env("ORCH_HOME", os.fsdecode(bytes(i.root) + b"/home-\xff"))  # made its folders, then sqlite refused it
    return list(command)


def _catalog_folder(i: Inputs, provider: str, command: str) -> list[str]:
    i.file(f"v8/{provider}/vms.csv", CATALOG_HEADER + "gpu_1x_a100,A100,1,30,200,0.50,,us-east-1,\n")
    i.env("HOME", str(i.root / "user-home"))  # refresh copies into HOME's ~/.sky, here inside the test's folder
    if command == "refresh":
        return ["catalog", "refresh", "--from", str(i.files / "v8")]
    i.env("ORCH_SKY_CATALOGS", str(i.files / "v8"))
    return plan(i, model="orch/tiny-llama", seq_len=64, train_tokens=2000)


@pytest.mark.parametrize("build", [
    lambda i: _not_utf8_home(i, "submit", i.job()),
    lambda i: _not_utf8_home(i, "runs"),
    *(lambda i, p=provider, c=command: _catalog_folder(i, p, c)
      for provider in ("local", "ssh", "[red]aws", "aws\x1b[31m") for command in ("plan", "refresh")),
    lambda i: [i.file("twice/lambda/vms.csv", CATALOG_HEADER + CATALOG_ROW),
               i.env("ORCH_SKY_CATALOGS", f"{i.files / 'twice'}{os.pathsep}{i.files / 'twice'}"), plan(i)][2],
    lambda i: i.calibration_path("/dev/null"),
])
def test_bad_paths_and_catalog_folders_are_refused_cleanly(inputs, build):
    test_bad_input_is_refused_cleanly(inputs, "appended", build)


def test_a_calibration_that_is_a_device_is_said_to_be_one(inputs):
    """It was said not to exist."""
    result = CliRunner().invoke(app, inputs.calibration_path("/dev/null"))
    assert "'/dev/null' is not a regular file" in result.stderr, result.stderr


# --- (appended) outputs that exist, an empty sweep dataset, a model the trainer refuses, a folder of mixed kinds ----
def _tokenizerless_model(i: Inputs) -> list[str]:
    """A model folder with its config and weights and no tokenizer: plan said the data packed into 0 sequences."""
    i.file("model/config.json", json.dumps(GOOD_MODEL))
    i.file("model/model.safetensors", SAFETENSORS)
    return plan(i, model=str(i.files / "model"), dataset=DATA, train_tokens=DROP, epochs=1)


def _model_folder(i: Inputs, weights: bytes | None) -> list[str]:
    """A model folder with config and tokenizer, and `weights` as its model.safetensors (None: no weight file):
    plan passed it, and the trainer failed with exit 1, leaving its output folder."""
    i.file("model/config.json", json.dumps(GOOD_MODEL))
    i.file("model/tokenizer.json", json.dumps({"version": "1.0"}))
    if weights is not None:
        i.file("model/model.safetensors", weights)
    return plan(i, model=str(i.files / "model"), dataset=DATA, train_tokens=DROP, epochs=1)


def _indexed_model_folder(i: Inputs, index: bytes) -> list[str]:
    """A model folder whose weights are shards listed by `index`: one nested too deeply was a RecursionError, and
    shards outside the folder were read here (and are not in the folder a VM mounts)."""
    i.file("model/config.json", json.dumps(GOOD_MODEL))
    i.file("model/tokenizer.json", json.dumps({"version": "1.0"}))
    i.file("outside.safetensors", SAFETENSORS)
    i.file("model/model.safetensors.index.json", index)
    return plan(i, model=str(i.files / "model"), dataset=DATA, train_tokens=DROP, epochs=1)


def _not_a_tokenizer(i: Inputs) -> list[str]:
    """A `tokenizer` folder whose tokenizer.json is JSON but no tokenizer: plan priced the job by bytes instead."""
    i.file("tok/tokenizer.json", '{"x": 1}')
    return plan(i, tokenizer=str(i.files / "tok"), dataset=DATA, train_tokens=DROP, epochs=1)


H200_RESULTS = "gpu-session-h200-2026-12-04.jsonl"  # a results file orch wrote: every row of it reads


def _task_out_over_another_job(i: Inputs) -> list[str]:
    """A dry run that pre-flight passes, its --out naming a job file: the task replaced it."""
    i.env("HF_TOKEN", "hf_not_a_real_token")
    return ["launch", i.job(dataset=DATA), "--budget", "10", "--target", "cloud", "--dry-run", "--out",
            i.file("other-job.yaml", yaml.safe_dump(BASE_JOB))]


def _task_out_beside_a_users_files(i: Inputs) -> list[str]:
    """A dry run whose task file is new, its `<stem>-files/` a folder of the user's: its src/ was deleted and its
    job.yaml replaced, with no --force asked."""
    i.env("HF_TOKEN", "hf_not_a_real_token")
    i.file("mine-files/src/important.txt", "precious\n")
    i.file("mine-files/job.yaml", "mine\n")
    return ["launch", i.job(dataset=DATA), "--budget", "10", "--target", "cloud", "--dry-run", "--out",
            str(i.files / "mine.yaml")]


@pytest.mark.parametrize("token, said", [
    (" ", "meta-llama/Llama-3.1-8B is gated on the Hugging Face Hub: accept its licence there and set HF_TOKEN"),
    ("\n", "meta-llama/Llama-3.1-8B is gated on the Hugging Face Hub: accept its licence there and set HF_TOKEN"),
    ("hf_abc\ndef", "HF_TOKEN holds a space, a line break or a control character, which no token has"),
    ("hf_abc\u2019def", "HF_TOKEN holds a character that is not ASCII, which no token has"),
])
def test_a_blank_or_broken_hf_token_is_no_token(inputs, token, said):
    """A blank HF_TOKEN passed the gated model's check, and a cloud launch went ahead to a download refused on the
    VM; one holding a line break was sent as it was."""
    inputs.env("HF_TOKEN", token)
    result = CliRunner().invoke(app, ["launch", inputs.job(model="meta-llama/Llama-3.1-8B", dataset=DATA), "--budget",
                                      "20", "--target", "cloud", "--no-spot", "--yes"])
    assert result.exit_code == 2 and said in " ".join(result.stderr.split()), result.output
    assert "hf_abc" not in result.output  # a token is never echoed


@pytest.mark.parametrize("variable, value, said", [
    ("WANDB_MODE", "bogus", "WANDB_MODE 'bogus' is no mode W&B takes: set it to one of online, offline"),
    ("WANDB_MODE", "Offline", "WANDB_MODE 'Offline' is no mode W&B takes"),  # sent as it is: its case counts
    ("WANDB_PROJECT", "a\x1b[31mred", "WANDB_PROJECT holds a control character or a line break"),
    ("WANDB_ENTITY", "a\nb: c", "WANDB_ENTITY holds a control character or a line break"),
])
def test_wandb_settings_a_vm_would_refuse_are_refused_before_it(inputs, variable, value, said):
    """W&B's settings went to the VM as they were: a mode wandb.init does not take failed there, after the VM was
    paid for."""
    inputs.env(variable, value)
    result = CliRunner().invoke(app, ["launch", inputs.job(model="Qwen/Qwen2.5-0.5B", dataset=DATA, report_to="wandb"),
                                      "--budget", "10", "--target", "cloud", "--dry-run"])
    assert result.exit_code == 2 and said in " ".join(result.stderr.split()), result.output
    assert "\x1b" not in result.output


def _calibration_over(i: Inputs, database: str) -> list[str]:
    """calibrate --out naming one of ORCH_HOME's databases: --force made it JSON, and orch failed on it after."""
    ResultStore(), RunStore()
    return ["calibrate", "--out", str(i.home / database), "--force"]


def _task_out_beside_another_tasks_files(i: Inputs) -> list[str]:
    """A dry run to `task.yml` beside an earlier one to `task.yaml`: both stage in `task-files/`, and the second
    replaced the job the first task mounts, with no --force asked."""
    i.env("HF_TOKEN", "hf_not_a_real_token")
    first = ["launch", i.job(dataset=DATA), "--budget", "10", "--target", "cloud", "--dry-run", "--out"]
    assert CliRunner().invoke(app, [*first, str(i.files / "task.yaml")]).exit_code == 0
    assert (i.files / "task-files" / "job.yaml").is_file()
    return [*first, str(i.files / "task.yml")]


def _mixed_folder(i: Inputs) -> list[str]:
    i.file("data/a.jsonl", '{"text": "a"}\n')
    i.file("data/b.csv", "text\nb\n")
    return plan(i, dataset=str(i.files / "data"))


@pytest.mark.parametrize("build", [
    _task_out_over_another_job,
    _task_out_beside_a_users_files,
    _task_out_beside_another_tasks_files,
    lambda i: _calibration_over(i, "bench.db"),
    lambda i: _calibration_over(i, "runs.db"),
    lambda i: ["runs", "--export", i.file("kept.csv", "precious\n")],
    lambda i: ["calibrate", "--out", i.file("kept.yaml", "model: x\n")],
    lambda i: ["calibrate", "--force"],
    lambda i: [i.file("rep/report.md", "# my own notes\n"), "report", "--out", str(i.files / "rep")][1:],
    lambda i: ["calibrate", "--db", i.file("empty.db", "")],
    lambda i: ["report", "--db", i.file("empty.db", ""), "--out", str(i.files / "rep")],
    lambda i: ["calibrate", "--db", _tableless(i.files / "other.db")],  # a results table was written into it
    lambda i: ["report", "--db", _tableless(i.files / "other.db"), "--out", str(i.files / "rep")],
    lambda i: i.sweep() + ["--db", i.file("notes.txt", "")],  # made a database by `orch bench`
    lambda i: i.sweep(dataset=""),
    _mixed_folder,
    lambda i: ["report", "--job", i.file("rep/report.json", yaml.safe_dump(BASE_JOB)), "--out", str(i.files / "rep"),
               "--force"],
    lambda i: ["report", "--results", i.file("rep/report.md", (REPO / "benchmarks" / "results" / H200_RESULTS)
                                             .read_text()), "--out", str(i.files / "rep"), "--force"],
], ids=["launch-out-exists", "launch-out-files-a-users-folder", "launch-out-files-another-tasks",
        "calibrate-out-bench-db-forced",
        "calibrate-out-runs-db-forced", "runs-export-exists", "calibrate-out-exists", "calibrate-force-without-out",
        "report-out-holds-a-users-report",
        "calibrate-db-empty", "report-db-empty", "calibrate-db-tableless", "report-db-tableless",
        "bench-db-an-empty-file",
        "sweep-dataset-empty", "dataset-folder-of-mixed-kinds", "report-force-over-its-job",
        "report-force-over-its-results"])
def test_outputs_that_exist_and_inputs_the_trainer_refuses_are_refused_cleanly(inputs, build):
    test_bad_input_is_refused_cleanly(inputs, "appended", build)


def _tableless(path: Path) -> str:
    """A SQLite file that holds no table yet (another program's, just made)."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE made (x)")  # the file is a database now, and stays one with no table
        db.execute("DROP TABLE made")
    return str(path)


def _foreign_database(path: Path, version: int = 0) -> Path:
    """Another program's SQLite file; `version` its user_version (many programs set one: at orch's own schema's, it
    was said to be orch's file with its tables dropped)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        db.execute(f"PRAGMA user_version = {version}")
    return path


@pytest.mark.parametrize("build, said", [
    (lambda i: ["launch", i.job(), "--budget", "10", "--dry-run", "--force"], "--force replaces an existing --out"),
    (lambda i: ["launch", i.job(), "--budget", "10", "--dry-run", "--detach"], "a dry run starts none"),
    (lambda i: [i.env("ORCH_HOME", i.file("afile", "x")), ["calibrate"]][1], "Set ORCH_HOME to a writable folder"),
    (lambda i: ["runs", "--force"], "--force replaces an existing --export"),
    (lambda i: i.sweep() + ["--force"], "--force replaces an existing --out"),
    (_tokenizerless_model, "holds no tokenizer"),
    (lambda i: _model_folder(i, None), "holds no weights (none of model.safetensors, "),
    (lambda i: _model_folder(i, b"garbage"), "model.safetensors does not read as safetensors (Error while "),
    (lambda i: _model_folder(i, SAFETENSORS[:-1]), "does not read as safetensors (Error while "),
    # a weight file that is no file was "no weights"; .bin weights of other bytes passed plan and failed the trainer
    (lambda i: [(i.files / "model" / "model.safetensors").mkdir(parents=True), _model_folder(i, None)][1],
     "model.safetensors' is a folder, not a file"),
    (lambda i: [i.file("model/pytorch_model.bin", b"garbage"), _model_folder(i, None)][1],
     "pytorch_model.bin does not read as PyTorch weights (neither the zip archive nor the pickle torch.save"),
    (lambda i: _indexed_model_folder(i, b'{"weight_map": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
     "index.json is not a weight index (JSON with a weight_map)"),
    (lambda i: _indexed_model_folder(i, b'{"weight_map": {"x": "../outside.safetensors"}}'),
     "model.safetensors.index.json lists '"),
    (lambda i: _indexed_model_folder(i, b'{"weight_map": {"x": "/etc/passwd"}}'),
     "lists '/etc/passwd', which is no .safetensors or .bin file of the model folder"),
    (_not_a_tokenizer, "cannot be loaded (KeyError: "),
    (lambda i: ["calibrate", "--results", i.file("r.jsonl", "{}\n"), "--db", str(i.files / "missing.db")],
     "--db and --results both name what to read"),
    (lambda i: ["report", "--results", i.file("r.jsonl", "{}\n"), "--db", str(i.files / "missing.db"), "--out",
                str(i.files / "rep")], "--db and --results both name what to read"),
    (lambda i: plan(i, model="orch/tiny-llamaX", dataset=DATA, train_tokens=DROP, epochs=1), "unknown model"),
    (lambda i: plan(i, dataset=DATA, eval_dataset=i.file("eval.txt", "x\n"), train_tokens=DROP, epochs=1),
     "eval_dataset "),
    # sized by its bytes (the model's tokenizer is not here), the data was read by no check before the trainer's
    (lambda i: plan(i, dataset=str(Path(i.file("notes/a.yaml", "x: 1\n")).parent), train_tokens=DROP, epochs=1),
     "holds no data file"),
    (lambda i: plan(i, dataset=i.file("mid.jsonl", b'{"text": "a"}\n{"text": "caf\xe9 au lait"}\n{"text": "b"}\n'),
                    train_tokens=DROP, epochs=1), "is not UTF-8 text (byte 27)"),
    (lambda i: plan(i, dataset=i.file("end.jsonl", b'{"text": "a"}\n{"text": "caf\xe9"}'), train_tokens=DROP,
                    epochs=1), "is not UTF-8 text (byte 27)"),  # a whole file's last bytes are no cut character
    # ORCH_HOME with a line break was taken, a run recorded and charged, and its trainer refused an --output
    (lambda i: [i.env("ORCH_HOME", str(i.root / "home\nline")), ["runs"]][1],
     "home\\nline' holds a control character (\\n): name it with printable characters"),
    (lambda i: [i.env("ORCH_CACHE", str(i.root / "cache\x1b[31m")), plan(i)][1], "holds a control character (\\x1b)"),
    # PyYAML spoke of "special characters" in "<unicode string>"
    (lambda i: ["plan", i.file("u16.yaml", "model: orch/tiny-llama\n".encode("utf-16-le")), "--budget", "10"],
     "at character 2: it holds the control character U+0000 (a file saved as UTF-16 holds one beside every letter)"),
    # another program's database was taken over: WAL, a user_version and orch's tables written into it
    (lambda i: [_foreign_database(i.home / "runs.db"), ["runs"]][1], "is another program's database (its tables: "),
    (lambda i: [_foreign_database(i.home / "runs.db", 2), ["runs"]][1], "is another program's database (its tables: "),
    (lambda i: ["calibrate", "--db", str(_foreign_database(i.files / "app.db", 1)), "--out", str(i.work / "c.json")],
     "app.db is another program's database (its tables: 'notes')"),
    (lambda i: ["calibrate", "--db", str(_foreign_database(i.files / "app.db")), "--out", str(i.work / "c.json")],
     "app.db is another program's database (its tables: 'notes'); orch never writes into it: move it away, or give "
     "--db another file"),
    # the task file replaced a model's config.json, the cards' prices, an imported job's own dataset (with --force)
    (lambda i: ["launch", _model_job(i), "--budget", "10", "--dry-run", "--force", "--out",
                str(i.files / "model" / "config.json")], "model/config.json' is inside "),
    (_launch_over_the_hardware_file, "hardware.yaml' is one of this command's input files"),
    (_import_over_its_dataset, "data/job.yaml' is inside "),
    (lambda i: plan(i, learning_rate=5e-324), "`learning_rate` 5e-324 is too near 0 to compute with"),
    # `output: yes` is `output: true` to YAML, and the refusal did not say so
    (lambda i: plan(i, dataset="org/ds", dataset_columns={"output": True}),
     "got {'output': true} (YAML reads an unquoted yes or on as true: quote a name"),
    (lambda i: plan(i, tokenizer=False),
     "`tokenizer` must be a string, got false (YAML reads an unquoted no or off as false"),
    # a folder of .txt was trained as lines of text, where one .txt file was refused
    (lambda i: plan(i, dataset=str(Path(i.file("notes/a.txt", "hello\n")).parent), train_tokens=DROP, epochs=1),
     "holds .txt files (1 .txt), which orch does not read as data: use a .jsonl, .json, .parquet or .csv file"),
    # a hub link where the id goes, as `orch estimate` reads it; a name with spaces around it, taken or refused by side
    (lambda i: plan(i, model="https://huggingface.co/meta-llama/Llama-3.1-8B"),
     "is a link to the Hugging Face Hub: give the model's id alone (`model: meta-llama/Llama-3.1-8B`)"),
    (lambda i: plan(i, model="Llama-3.1-8B "), "has spaces around it, which no model's name or folder has"),
    # a file named where a folder goes: a dataset's name could be a hub id, so plan took it and train failed
    (lambda i: i.file("m.jsonl", "{}\n") and plan(i, model="m.jsonl"), "is a file, not a model's folder: give the"),
    (lambda i: i.file("t.csv", "a\n") and plan(i, tokenizer="t.csv"), "is a file, not a tokenizer's folder: give"),
    # click blamed the word ("unexpected extra argument"), not the on/off flag it was given to
    (lambda i: ["estimate", "Llama-3.1-8B", "--grad-ckpt", "maybe"],
     "--grad-ckpt is on or off, and takes no word but true, false, yes, no, on, off, 1 or 0: got 'maybe'"),
    (lambda i: ["launch", i.job(), "--yes", "maybe", "--budget", "1"], "--yes is on or off"),
    # the same for the rest of a value the shell split at its space ("unexpected extra argument (4090)")
    (lambda i: ["estimate", "Llama-3.1-8B", "--gpu", "RTX", "4090"],
     "'4090' is left over after --gpu 'RTX', which takes one value (one with spaces goes in quotes: --gpu 'RTX 4090')"),
    (lambda i: plan(i) + ["--deadline", "2", "h"], "'h' is left over after --deadline '2', which takes one value ("),
    (lambda i: ["launch", i.job(), "--budget", "20", "30"], "'30' is left over after --budget '20', which takes one "
     "value; see"),
    # before the job file, argparse and click blamed the job file ("unrecognized arguments: job.yaml")
    (lambda i: ["plan", "--budget", "20", "30", i.job()], "'30' is left over after --budget '20', which takes one"),
    (lambda i: ["launch", "--budget", "20", "30", i.job()], "'30' is left over after --budget '20', which takes one"),
    (lambda i: plan(i) + ["--providers", "aws gcp"], "(the list is comma-separated: --providers aws,gcp)"),
    # named as typed: another trainer's switch was named as the orch option it becomes (`--precision 'bf16 maybe'`)
    (lambda i: ["estimate", "Llama-3.1-8B", "--bf16", "maybe"], "--bf16 is on or off, and takes no word but true"),
    (lambda i: ["estimate", "Llama-3.1-8B", "--json", "true", "false"], "'false' is left over after --json 'true', "
     "which takes one value; see"),
    # quoted as advised, a repeatable option's two values were one ("`max_steps` must be a whole number")
    (lambda i: ["import", i.file("ax.yaml", "base_model: x\n"), "--set", "max_steps=2", "seq_len=64"],
     "(give it again for another: --set 'max_steps=2' --set 'seq_len=64')"),
    # a mistyped option after an on/off flag was blamed on the flag ("--yes is on or off ... got '--buget'")
    (lambda i: ["launch", i.job(), "--yes", "--buget", "1"], "No such option: --buget (Possible options: --budget"),
    (lambda i: ["runs", "--json=yes", "--bogus"], "No such option: --bogus"),
    (lambda i: ["catalog", "refresh", "--from", "a" * 256], "--from: the name 'aaaa"),  # the system's bare words
    # a carriage return or tab folded away: read as the card or the cloud without it, unsaid
    (lambda i: ["estimate", "orch/tiny-llama", "--gpu", "H100\r"], "the GPU name 'H100\\r' holds a control character"),
    (lambda i: plan(i) + ["--providers", "lambda\t"], "--providers 'lambda\\t' holds a control character"),
    # read as a float, it was "must be a whole number, got inf"
    (lambda i: ["estimate", "Llama-3.1-8B", "--seq-len", "1" * 5000], "--seq-len is a number of 5,000 digits"),
    (lambda i: ["submit", i.job(), "--priority", "1e400"], "--priority '1e400' is past any number orch computes"),
    # priced nothing and said nothing, where every other flag that does nothing is refused
    (lambda i: plan(i) + ["--local-cost", "marginal", "--providers", "aws"], "--local-cost prices your own cards, and "
     "--providers aws plans none"),
    # planned and launched, then refused by `datasets` on the VM
    (lambda i: plan(i, dataset="org/ds", eval_split="[bold]x[/bold]"), "`eval_split` '[bold]x[/bold]' is no split"),
    (lambda i: plan(i, dataset="org/ds", dataset_split="train/x"), "`dataset_split` 'train/x' is no split name"),
    # Python's csv said "do you need to open the file in universal-newline mode?"
    (lambda i: ["simulate", "--trace", i.file("cr.csv", TRACE.replace("\n", "\r"))],
     "its lines end in a bare carriage return (\\r): end them with \\n or \\r\\n"),
    # the providers there are, each named, as a choice flag's refusal names its choices
    (lambda i: ["catalog", "offers", "--providers", "nope"], "unknown provider 'nope'. Providers with offers: aws, "),
    # a sweep's tokenizer and eval settings, judged before any point trains (a trainer was started, then refused it)
    (lambda i: i.sweep(settings={"tokenizer": str(i.files)}), "holds no tokenizer (none of tokenizer.json"),
    (lambda i: i.sweep(settings={"eval_dataset": DATA}), "a benchmark point never evaluates, saves or logs"),
    (lambda i: i.results(row(gpu="NVIDIA\x00H200")), "`gpu` 'NVIDIA\\x00H200' holds a control character"),
    (lambda i: i.calibration('{"efficency": {}}'), "unknown key 'efficency' (did you mean `efficiency`"),
    (lambda i: i.calibration('{"points": -5, "efficiency": {}}'), "points must be a whole number from 0, got -5"),
    (lambda i: i.hardware("peu: 1.2\n"), "unknown key peu (did you mean `pue`?)"),  # swapped: it got no hint
    # said as written, not as its link's target's name (`dataset zero`)
    (lambda i: [(i.files / "zero.jsonl").symlink_to("/dev/zero"), i.sweep(dataset=str(i.files / "zero.jsonl"))][1],
     "zero.jsonl' is not a file or a folder"),
    # which GPU it was: "none of the rows is an ok run on a GPU orch knows" named none
    (lambda i: i.results(row(gpu="Voodoo 5")), "(the first ok one ran on 'Voodoo 5', a GPU `orch catalog gpus` "),
    # orch's own bench.db or runs.db given as results: "is not UTF-8 text: save it as UTF-8"
    (lambda i: [i.run_record(), ["calibrate", "--results", str(i.home / "runs.db")]][1],
     "runs.db' is an SQLite database (a bench.db or runs.db): give it with --db"),
    (lambda i: i.results(row(status="oom")), "is an ok run on a GPU orch knows (none ended ok)"),
    (lambda i: [i.env("ORCH_HOME", "/"), ["queue"]][1], "ORCH_HOME is /, the file system's root"),  # made /runs.db
    # wrote /catalog/ and /data-sizes/ at the root
    (lambda i: [i.env("ORCH_CACHE", "/"), plan(i)][1], "ORCH_CACHE is /, the file system's root"),
    # a slot trains on a core at least: more slots than cores were each priced at a core's share, sharing one
    (lambda i: ["scheduler", "run", "--once", "--cpu-slots", str((os.cpu_count() or 1) + 1)],
     f"--cpu-slots {(os.cpu_count() or 1) + 1} is more than this machine's {os.cpu_count() or 1} CPU cores"),
    # an output in the folder a job reads whole: its files were read as data by the next plan ("holds .png files")
    (lambda i: ["report", "--results", i.file("r.jsonl", row() + "\n"), "--out", i.folder("data"),
                "--job", i.job(dataset=[i.file("data/a.jsonl", open(DATA).read()), "data"][1], train_tokens=DROP)],
     "/data' is '"),
    (lambda i: ["train", i.job(dataset=[i.file("data/a.jsonl", open(DATA).read()), "data"][1], train_tokens=DROP),
                "--output", str(i.files / "data" / "out")], "/data/out' is inside '"),
    # SkyPilot's `infra` is cloud/region/zone: a dry run ended in its bare ValueError (exit 1)
    # `see benchmarks/sweeps/`, said in another folder, named nothing there
    (lambda i: ["bench", str(i.files / "nope.yaml")], f"see {REPO / 'benchmarks' / 'sweeps'} for examples"),
    # a hub dataset's name was said as a missing file alone
    (lambda i: i.sweep(dataset="mlabonne/FineTome-100k"), "a sweep times every point on one local file or folder"),
    (lambda i: i.catalog(CATALOG_HEADER + CATALOG_ROW.replace("us-east-1", "a/b/c/d")),
     "Region 'a/b/c/d' holds a /, which no cloud's names hold: fix or remove it: it is in a folder "
     "ORCH_SKY_CATALOGS names"),
    # the CPU estimated is this machine's: 1000 threads were said in the JSON, and 2 cores' speed estimated
    (lambda i: ["estimate", "orch/tiny-llama", "--gpu", "cpu", "--cpu-threads", str((os.cpu_count() or 1) + 1)],
     f"--cpu-threads {(os.cpu_count() or 1) + 1} is more than this machine's {os.cpu_count() or 1} CPU cores"),
    # the broken file is --from's own: "rerun `orch catalog refresh`" led back to it
    (lambda i: broken_catalog(i, b"a,b\n1,2\n"), "fix that file of --from's, or copy from a whole catalog folder"),
    # run folders written into the data: the trainer refused its --output only once started, and later plans failed
    (lambda i: [i.env("ORCH_HOME", str(i.files / "data" / "home")), i.file("data/a.jsonl", open(DATA).read()),
                ["submit", i.job(dataset="data", train_tokens=DROP)]][2],
     "/data/home is inside "),
    (lambda i: ["import", i.file("axolotl.yaml", "- base_model: x\n")], "axolotl.yaml' must be a mapping of keys to "
                                                                        "values (as a trainer's config is); this one "
                                                                        "is a list"),
    # one pass has no time between passes: --interval was silently unused
    (lambda i: ["scheduler", "run", "--once", "--interval", "5"], "--interval sets the time between passes, and"),
    # a JSON job is no YAML mapping: the message said YAML of a .json file
    (lambda i: ["plan", i.file("job.json", "[1, 2]"), "--budget", "10"],
     "a job must be a mapping of keys to values (model: ..., method: ..., seq_len: ...); this one is a list"),
    # a JSON config's error is a JSON one: it was called not valid YAML
    (lambda i: ["import", i.file("lf.json", '{"stage": "sft",\n "cutoff_len": 1024\n')],
     "lf.json' is not valid JSON at line 3, column 1"),
    # another command's option is said to be that command's (click offered --method, the nearest spelling), in
    # plan's own parser too, naming every command that takes it
    (lambda i: plan(i) + ["--db", "x.db"],
     "No such option: --db for `orch plan`; it is an option of `orch bench`, `orch calibrate` and `orch report`"),
    (lambda i: ["runs", "--top", "3"], "No such option: --top for `root runs`; it is an option of `root plan`"),
    (lambda i: ["queue", "--set", "seq_len=128"],
     "No such option: --set for `root queue`; it is an option of `root estimate`, `root import` and `root train`"),
])
def test_the_refusal_says_what_is_wrong_not_something_else(inputs, build, said):
    """A --force with nothing to replace is said as `orch import` says it (it was a usage error, or nothing); a
    model the trainer refuses is said as the trainer says it, not as a dataset that packs into 0 sequences."""
    result = CliRunner().invoke(app, build(inputs))
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert said in result.stderr and "packs into" not in result.stderr, result.stderr


def test_a_dry_runs_task_file_is_printed_without_its_escapes(sky, inputs):
    """The task file's --out name reached the terminal raw; every printed path is shown escaped. (A run's folder is
    the one beside runs.db, in an ORCH_HOME refused with a control character, so no longer one to print.)"""
    inputs.env("HF_TOKEN", "hf_not_a_real_token")  # past pre-flight's gated-model check
    dry = CliRunner().invoke(app, ["launch", inputs.job(dataset=DATA), "--budget", "10", "--target", "cloud",
                                   "--dry-run", "--out", str(inputs.work / "t\x1b[31m.yaml")])
    # refused (no file orch writes has a control character in its name), and the name said escaped
    assert dry.exit_code == 2 and "holds a control character" in dry.stderr, dry.output
    assert "\x1b" not in dry.output and "\\x1b[31m" in dry.stderr


def test_a_dry_run_out_skypilot_cannot_copy_is_refused_before_the_plan(inputs, monkeypatch):
    """A quote in --out's name (its files' folder) was refused only once the plan and the data's size were made."""
    import orchestrator.cli.launch

    def no_plan(*args, **kwargs):
        raise AssertionError("planned before --out was checked")

    monkeypatch.setattr(orchestrator.cli.launch, "plan_job", no_plan)
    dry = CliRunner().invoke(app, ["launch", inputs.job(dataset=DATA), "--budget", "10", "--target", "cloud",
                                   "--dry-run", "--out", str(inputs.work / "a'b.yaml")])
    assert dry.exit_code == 2 and "SkyPilot cannot copy to a VM" in dry.stderr, dry.output
    inside = inputs.work / "q'd" / "sub"  # `--out ../t.yaml` from inside such a folder: the task names it resolved
    inside.mkdir(parents=True)
    monkeypatch.chdir(inside)
    dry = CliRunner().invoke(app, ["launch", inputs.job(dataset=DATA), "--budget", "10", "--target", "cloud",
                                   "--dry-run", "--out", "../t.yaml"])
    assert dry.exit_code == 2 and "SkyPilot cannot copy to a VM" in dry.stderr, dry.output


# --- (appended) symlink loops in paths; long lists and YAML aliases in values ----------------------------------------
def _loop(i: Inputs) -> str:
    """Two links in the working folder that point at each other: Python 3.11's Path.resolve() raises RuntimeError for
    them, which was a traceback."""
    (i.work / "loop").symlink_to("loop-2")
    (i.work / "loop-2").symlink_to("loop")
    return str(i.work / "loop")


@pytest.mark.parametrize("build", [
    lambda i: plan(i, dataset=_loop(i), train_tokens=DROP),
    lambda i: plan(i, eval_dataset=_loop(i)),
    lambda i: ["submit", i.job(dataset=_loop(i))],
    lambda i: ["plan", _loop(i), "--budget", "10"],  # said not to exist
    lambda i: ["import", i.file("ax.yaml", AXOLOTL), "--out", _loop(i)],
    lambda i: ["import", i.file("ax.yaml", AXOLOTL), "--out", _loop(i) + "/job.yaml"],
    lambda i: ["launch", i.job(), "--budget", "10", "--dry-run", "--out", _loop(i)],
    lambda i: ["simulate", "--trace", i.file("t.csv", TRACE), "--out", _loop(i)],
    lambda i: i.sweep() + ["--out", _loop(i) + "/b.jsonl"],
    lambda i: i.sweep(dataset=_loop(i)),
], ids=["dataset", "eval-dataset", "submit-dataset", "job-file", "import-out", "import-out-under", "launch-out",
        "simulate-out", "bench-out-under", "sweep-dataset"])
def test_a_symlink_loop_is_said_to_be_one(inputs, build):
    result = CliRunner().invoke(app, build(inputs))
    assert result.exit_code == 2 and "Traceback" not in result.output, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "loop' is a symlink loop (too many levels of symbolic links): fix or remove the link." in lines[0], lines


def _dangling(i: Inputs, name: str = "gone.jsonl") -> str:
    """A link in the working folder to a file that is not there: said not to exist, "did you mean" its own name."""
    (i.work / name).symlink_to(f"/nonexistent/{name}")
    return str(i.work / name)


@pytest.mark.parametrize("build", [
    lambda i: plan(i, dataset=_dangling(i), train_tokens=DROP),
    lambda i: plan(i, eval_dataset=_dangling(i)),
    lambda i: ["submit", i.job(dataset=_dangling(i))],
    lambda i: ["plan", _dangling(i), "--budget", "10"],
    lambda i: ["estimate", _dangling(i, "gone.yaml")],
    lambda i: i.sweep(dataset=_dangling(i)),
], ids=["dataset", "eval-dataset", "submit-dataset", "job-file", "estimate-job-file", "sweep-dataset"])
def test_a_link_to_nothing_is_said_to_be_one(inputs, build):
    result = CliRunner().invoke(app, build(inputs))
    assert result.exit_code == 2 and "Traceback" not in result.output, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "' is a link to '/nonexistent/gone." in lines[0] and "which does not exist: fix or remove the link" in \
        lines[0], lines


def test_the_trainer_says_a_dataset_link_to_nothing_is_one(inputs, capfd):
    """What every local and cloud run executes said "dataset file 'gone.jsonl' not found", where plan said the link."""
    from trainer.__main__ import main

    assert main([inputs.job(dataset=_dangling(inputs)), "--output", str(inputs.work / "out")]) == 2
    said = capfd.readouterr().err
    assert "' is a link to '/nonexistent/gone.jsonl', which does not exist: fix or remove the link" in said, said


LONG_LIST = "[" + ", ".join(["1"] * 20_000) + "]"
# four levels of ten aliases: 12,330 values from 300 bytes, past the loader's 10,000 (seven levels made ten million)
ALIAS_BOMB = "[&a [x, x, x, x, x, x, x, x, x, x], " + ", ".join(
    f"&{name} [{', '.join([f'*{prev}'] * 10)}]" for prev, name in zip("abc", "bcd", strict=True)) + "]"


@pytest.mark.parametrize("value, said", [(LONG_LIST, "got [1, 1, 1, 1, 1, 1, ...]"),
                                         (ALIAS_BOMB, "YAML aliases expand past 10000 values: write the values out.")],
                         ids=["long-list", "alias-bomb"])
@pytest.mark.parametrize("build", [
    lambda i, value: ["plan", i.file("j.yaml", yaml.safe_dump(BASE_JOB) + f"lora_r: {value}\n"), "--budget", "10"],
    lambda i, value: ["import", i.file("ax.yaml", AXOLOTL + f"learning_rate: {value}\n")],
    lambda i, value: i.hardware(f"pue: {value}\n"),
], ids=["job", "import", "hardware"])
def test_a_long_or_aliased_value_is_cut_in_its_error_line(inputs, build, value, said):
    """A value was echoed whole: a 20,000-item list made a 60 KB error line, and 319 bytes of aliases a 58 MB one,
    after 20 seconds and 1.2 GB."""
    result = CliRunner().invoke(app, build(inputs, value))
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output[:300]
    assert said in lines[0] and len(lines[0]) < 400, lines[0][:500]


def test_an_output_folder_that_is_a_dangling_link_or_a_device_is_said_to_be_so(tmp_path):
    """`orch report --out LINK` to nothing read "'LINK': File exists." (the folder could not be made over the link),
    and `--out /dev/full` "is a file"."""
    from gpu_catalog.checks import output_folder
    from gpu_catalog.errors import UserError

    (tmp_path / "link").symlink_to(tmp_path / "nowhere" / "x")
    with pytest.raises(UserError, match="is a link to '.*nowhere/x', which does not exist: remove the link"):
        output_folder(tmp_path / "link")
    with pytest.raises(UserError, match="'/dev/null' is a device or a pipe, not a folder"):
        output_folder("/dev/null")


@pytest.mark.parametrize("command", [["launch", "--budget", "1", "--dry-run"], ["submit"]])
def test_an_unusable_orch_cache_is_refused_before_the_data_is_counted(tmp_path, monkeypatch, command):
    """The job's tiny model is built in ORCH_CACHE: unusable, the job was refused only after its data was counted
    (11 s on a 2-core machine), which could not be kept there either."""
    import orchestrator.data_size

    def counted(*args):
        raise AssertionError("the data was counted before ORCH_CACHE was checked")

    monkeypatch.setattr(orchestrator.data_size, "_count_tokens", counted)
    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    (tmp_path / "cache-file").write_text("x")
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache-file"))
    job = tmp_path / "tiny.yaml"
    job.write_text(yaml.safe_dump(TINY))
    result = CliRunner().invoke(app, [command[0], str(job), *command[1:]])
    assert result.exit_code == 2 and "pre-flight: ORCH_CACHE" in result.stderr, result.output


@pytest.mark.parametrize(("env", "said"), [
    ({"_ORCH_COMPLETE": "complete_bash", "COMP_WORDS": "orch lo", "COMP_CWORD": "abc"}, "COMP_CWORD='abc' is no word"),
    ({"_ORCH_COMPLETE": "bogus"}, "_ORCH_COMPLETE='bogus' is no completion request orch answers"),
    ({"_ORCH_COMPLETE": "complete_tcsh"}, "_ORCH_COMPLETE='complete_tcsh' is no completion request"),
])
def test_a_completion_request_no_shell_script_makes_is_one_line(env, said):
    """COMP_CWORD that is no number was click's ValueError, a traceback into the shell; an instruction typer lacks
    was its "Invalid completion instruction.", exit 1."""
    result = CliRunner().invoke(app, [], prog_name="orch", env=env)
    assert result.exit_code == 2 and said in result.stderr and result.stderr.count("\n") == 1, result.output
    asked = CliRunner().invoke(app, [], prog_name="orch", env={"_ORCH_COMPLETE": "complete_bash",
                                                               "COMP_WORDS": "orch lo", "COMP_CWORD": "1"})
    assert asked.exit_code == 0 and asked.stdout.split() == ["logs"]
