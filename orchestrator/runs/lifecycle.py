"""A run's life in the store: created from the plan's chosen option, started, and finished from its metrics.json.
A finished run's status is the trainer's own (ok, oom, budget_stopped, error), `stopped` when the user stopped it,
`failed` when the trainer died without a word."""

import dataclasses
import json
import time
from pathlib import Path

from gpu_catalog.errors import UserError
from gpu_catalog.units import usd_for
from orchestrator.home import orch_home
from orchestrator.launch import local
from orchestrator.planner import Option
from orchestrator.runs.store import ACTIVE_STATUSES, RunRecord, RunStore, new_run_id
from trainer.config import JobConfig


def create_run(store: RunStore, spec: JobConfig, job_path: Path, option: Option, budget_usd: float,
               run_id: str | None = None) -> RunRecord:
    run_id = run_id or new_run_id()
    run_dir = orch_home() / "runs" / run_id
    run_dir.mkdir(parents=True)
    local.run_job_file(job_path, run_dir)
    offer, estimate = option.offer, option.estimate
    record = RunRecord(
        run_id=run_id, job_name=spec.name, job_path=str(job_path.resolve()),
        job_json=json.dumps(dataclasses.asdict(spec)), target="local" if offer.is_local else "cloud",
        gpu=offer.gpu.name, provider=offer.provider, region=offer.region, spot=int(offer.spot),
        usd_per_hour=offer.usd_per_hour, budget_usd=budget_usd, est_vram_gib=estimate.vram_gib,
        est_tokens_per_s=estimate.tokens_per_s, est_hours=estimate.hours, est_cost_usd=estimate.cost_usd,
        est_basis=estimate.basis, status="launching", run_dir=str(run_dir), pid=None, cluster=None,
        stop_requested=0, created_at=time.time(), started_at=None, ended_at=None, train_tokens=None,
        tokens_per_s=None, peak_vram_gib=None, wall_s=None, cost_usd=None, message=None, metrics_json=None)
    store.insert(record)
    return record


def start_local(store: RunStore, record: RunRecord, detected, device: str | None = None):
    """Start a recorded local run (again, for a resume) on `device` (CUDA_VISIBLE_DEVICES; "" for the CPU), or on
    the planned card with the most free memory. The device is kept in the record, so a scheduler knows the card is
    taken."""
    if device is None:
        try:
            device = local.pick_device(record.gpu, record.est_vram_gib or 0.0, detected)
        except RuntimeError as exc:
            store.update(record.run_id, status="failed", message=str(exc), ended_at=time.time())
            raise UserError(str(exc)) from None
    process = local.start(record, device)
    store.update(record.run_id, status="running", pid=process.pid, started_at=time.time(), stop_requested=0,
                 cluster=f"local:{device or 'cpu'}")
    return process


def finish(store: RunStore, record: RunRecord, metrics: dict | None = None) -> RunRecord:
    """Record the end of a run from its metrics (read from the run folder unless given)."""
    metrics_file = Path(record.run_dir) / "output" / "metrics.json"
    if metrics is None and metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
    ended_at = time.time()
    wall_s = (record.wall_s or 0.0) + ended_at - (record.started_at or ended_at)  # resumed runs add up sessions
    if metrics is None:
        status, message = "failed", f"the trainer exited without metrics.json: see `orch logs {record.run_id}`"
    else:
        status, message = metrics["status"], metrics.get("message")
        if status == "interrupted" or (status == "preempted" and record.stop_requested):  # Ctrl-C is a stop
            status = "stopped"
    peak = (metrics or {}).get("peak_vram_gib") or {}
    store.update(record.run_id, status=status, message=message, ended_at=ended_at, wall_s=wall_s,
                 cost_usd=usd_for(wall_s, record.usd_per_hour),
                 train_tokens=(metrics or {}).get("train_tokens"), tokens_per_s=(metrics or {}).get("tokens_per_s"),
                 peak_vram_gib=peak.get("reserved") or peak.get("process_rss"),
                 metrics_json=json.dumps(metrics) if metrics else None)
    return store.get(record.run_id)


def refresh(store: RunStore) -> list[RunRecord]:
    """Every run, with local runs whose trainer has exited since we last looked finished from their metrics."""
    for record in store.all():
        if record.status in ACTIVE_STATUSES and record.target == "local" and record.pid and \
                not local.is_running(record):
            finish(store, record)
    return store.all()
