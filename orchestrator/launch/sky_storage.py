"""Where a cloud run's output lives, and bringing it home into the run folder.

The output folder (final/, metrics.json, steps.jsonl, checkpoints, train.log) is a bucket `orch-<run id>` where the
cloud mounts storage (orchestrator/delivery.py), else the VM's own disk. `pull_output` copies it into
`<run folder>/output`: from the cluster while it is up (rsync over the SSH alias SkyPilot writes for every cluster,
as SkyPilot's docs show: `rsync -Pavz CLUSTER:/path .`), else from the bucket with its store's own CLI. The
launcher calls it before it tears a cluster down, so teardown comes only after the output is safe. The only calls
that reach a cloud are `sky.storage_ls`, `sky.storage_delete` and the `rsync`/`aws`/`gsutil` subprocesses.
"""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gpu_catalog.errors import UserError
from gpu_catalog.offer import Offer
from gpu_catalog.units import usd_text
from orchestrator.delivery import REMOTE_OUTPUT, Delivery, bucket_name, delivery_for, on_the_vm
from orchestrator.launch.sky_server import import_sky
from orchestrator.planner import LaunchRefusal

PULL_TIMEOUT_S = 3600  # a merged 8B model is ~16 GB


@dataclass(frozen=True)
class OutputLocation:
    """`kind`: bucket or cluster; `name`: the bucket or the cluster; `remote_path`: the folder there."""

    kind: str
    name: str
    remote_path: str

    def describe(self) -> str:
        return f"bucket {self.name}" if self.kind == "bucket" else f"{self.name}:{self.remote_path} (until teardown)"


# The object stores orch copies a run's output home from (their CLIs in _bucket_command), by the cloud SkyPilot
# enables them under; and Azure's, which mounts in MOUNT_CACHED mode but is copied home by hand. SkyPilot itself
# picks the task's cloud's store, else the first enabled storage cloud: none (Lambda alone) refused the launch, IBM
# and OCI cannot mount in MOUNT_CACHED mode, and Azure's left the output where `orch pull` cannot reach it.
PULLED_STORES = {"AWS": "S3", "GCP": "GCS", "Nebius": "NEBIUS"}
MOUNTED_ONLY_STORES = {"Azure": "AZURE"}


def output_store(provider: str) -> str | None:
    """The store a run on `provider` keeps its output in, named in its task: the cloud's own where orch copies from
    it, else the first enabled one it copies from, else the cloud's own where it mounts; None: no enabled store
    will do. Reads SkyPilot's cached storage clouds (a `sky check` refreshes them)."""
    import_sky()
    from sky.data import storage as storage_lib

    enabled = storage_lib.get_cached_enabled_storage_cloud_names_or_refresh()
    own = next((cloud for cloud in enabled if cloud.lower() == provider.lower()), None)
    if own in PULLED_STORES:
        return PULLED_STORES[own]
    return next((PULLED_STORES[cloud] for cloud in enabled if cloud in PULLED_STORES),
                MOUNTED_ONLY_STORES.get(own))


def launch_delivery(delivery: Delivery, provider: str, for_launch: bool = True) -> tuple[Delivery, str | None]:
    """The delivery a launch builds its task from, and the store its bucket is named in: with no enabled store that
    will do, an on-demand run keeps its output on the VM and a spot run is refused (on_the_vm's UserError). Not
    `for_launch` (a dry run, on a machine that may have no cloud enabled), the bucket stays, for SkyPilot to pick."""
    store = output_store(provider) if delivery.output == "bucket" else None
    if delivery.output == "bucket" and store is None and for_launch:
        delivery = on_the_vm(delivery, provider)
    return delivery, store


def _launch_refusal(offer: Offer) -> str | None:
    """Why `orch launch` would refuse a run on this cloud offer before buying a VM, in its words, as its task builder
    decides (launch_delivery): a spot run keeps its checkpoints in a bucket, and with no storage cloud orch can use
    enabled it is refused. Reads SkyPilot's cached list of enabled clouds: local state, which `sky check` refreshes;
    nothing here reaches a cloud."""
    delivery = delivery_for(offer)
    if not isinstance(delivery, Delivery):
        return None
    try:
        launch_delivery(delivery, offer.provider)
    except UserError as exc:
        return str(exc)
    return None


def launch_refusals() -> LaunchRefusal:
    """_launch_refusal, asked once per cloud and kind of instance (a plan, or a scheduler's pass, asks for every spot
    offer across regions); the scheduler's next pass asks again, after whatever `sky check` the user ran."""
    by_cloud: dict[tuple[str, bool], str | None] = {}

    def refusal(offer: Offer) -> str | None:
        key = (offer.provider, offer.spot)
        if key not in by_cloud:
            by_cloud[key] = _launch_refusal(offer)
        return by_cloud[key]

    return refusal


def idle_refusals(budget_usd: float, cost_usd_of: dict[Offer, float]) -> LaunchRefusal:
    """Why `orch launch` here would refuse an on-demand offer the plan priced with a bucket (`cost_usd_of`: the
    planned cost of each offer): with no storage cloud enabled, its output stays on the VM, which idles up to an hour
    before it downs itself, and a budget that no longer covers that hour is refused when the task is built
    (sky_task._uncovered). Asked before choosing, a launch takes the next offer the budget covers: it was planned,
    confirmed and recorded, then refused. Reads SkyPilot's cached storage clouds, once per cloud."""
    launched: dict[str, Delivery] = {}

    def refusal(offer: Offer) -> str | None:
        if offer not in cost_usd_of:
            return None
        extra_usd = idle_usd_past_plan(offer, launched)
        if extra_usd == 0 or cost_usd_of[offer] + extra_usd <= budget_usd:
            return None
        return (f"with no storage cloud enabled here (`sky check`), its output stays on the VM, which idles up to "
                f"{launched[offer.provider].idle_minutes} min before it downs itself: "
                f"{usd_text(cost_usd_of[offer] + extra_usd)} > the {usd_text(budget_usd)} budget")

    return refusal


def idle_usd_past_plan(offer: Offer, launched: dict[str, Delivery] | None = None) -> float:
    """What a launch from here pays for the VM's idle window past the one the plan priced: an on-demand offer planned
    with a bucket keeps its output on the VM where no storage cloud is enabled, idling up to an hour. A job queued
    without a budget gets its budget stop from the plan's cost, and was refused at its launch for lack of it.
    `launched`: each cloud's launch delivery, filled as they are read (SkyPilot's cached storage clouds, once a cloud
    for a whole plan)."""
    planned = delivery_for(offer)
    if offer.spot or not isinstance(planned, Delivery) or planned.output != "bucket":
        return 0.0
    launched = {} if launched is None else launched
    if offer.provider not in launched:
        launched[offer.provider] = launch_delivery(planned, offer.provider)[0]
    return launched[offer.provider].idle_usd_past(planned, offer.usd_per_hour)


def launch_refusal_for(budget_usd: float, cost_usd_of: dict[Offer, float],
                       spot: LaunchRefusal | None = None) -> LaunchRefusal:
    """What a launch from this machine asks of each cloud offer, the plan's budget and costs known: a spot offer
    with no storage cloud for its checkpoints (launch_refusals; `spot`, when the caller asks it across plans), and
    an on-demand one whose output would stay on the VM, idling past the budget (idle_refusals)."""
    spot = spot or launch_refusals()
    idle = idle_refusals(budget_usd, cost_usd_of)
    return lambda offer: spot(offer) or idle(offer)


def _offer_of(record) -> Offer:
    """Enough of the record's offer for delivery_for: the cloud and whether it is spot."""
    from gpu_catalog.gpus import get_gpu

    return Offer(gpu=get_gpu(record.gpu), provider=record.provider, region=record.region, spot=bool(record.spot),
                 usd_per_hour=record.usd_per_hour, source="run record")


def _cluster_name(record) -> str | None:
    name = (record.cluster or "").partition(":")[0]
    return name or None


def output_location(record) -> OutputLocation:
    """Where this run's output is: as recorded at its launch (with no store enabled, an on-demand run keeps it on the
    VM), else the decision the task is built from (delivery_for the record's cloud)."""
    if record.output_uri:
        kind, _, name = record.output_uri.partition(" ")
        if kind == "bucket":
            return OutputLocation("bucket", name, "")
        return OutputLocation("cluster", _cluster_name(record) or "", REMOTE_OUTPUT)
    delivery = delivery_for(_offer_of(record))
    if isinstance(delivery, Delivery) and delivery.output == "bucket":
        return OutputLocation("bucket", bucket_name(record.run_id), "")
    return OutputLocation("cluster", _cluster_name(record) or "", REMOTE_OUTPUT)


def _run(command: list[str]) -> bool:
    if shutil.which(command[0]) is None:
        raise UserError(f"pulling the output needs `{command[0]}` on this machine: install it (apt install "
                        f"{'rsync' if command[0] == 'rsync' else 'awscli'}), then run `orch pull` again.")
    return subprocess.run(command, timeout=PULL_TIMEOUT_S).returncode == 0


def _from_cluster(cluster: str, dest: Path) -> bool:
    """The run's results first (final/, metrics.json, steps.jsonl, the log), its checkpoints after. A VM that holds
    the output downs itself its idle window after the job, whatever SSH session is open (its autostop waits for
    jobs alone), and rsync copies in name order: a copy too slow for the window was cut in checkpoints/, before the
    trained model in final/."""
    source = f"{cluster}:{REMOTE_OUTPUT}/"
    return _run(["rsync", "-a", "--partial", "--exclude", "/checkpoints/", source, f"{dest}/"]) and \
        _run(["rsync", "-a", "--partial", source, f"{dest}/"])


def _bucket_command(store: str, bucket: str, dest: Path) -> list[str] | None:
    """The store's own CLI, as SkyPilot itself uses it to sync buckets (sky/data/storage.py)."""
    if store == "S3":
        return ["aws", "s3", "sync", f"s3://{bucket}", str(dest)]
    if store == "GCS":
        return ["gsutil", "-m", "rsync", "-r", f"gs://{bucket}", str(dest)]
    if store == "NEBIUS":
        return ["aws", "s3", "sync", f"s3://{bucket}", str(dest), "--profile", "nebius"]
    return None


def _bucket_stores(bucket: str) -> list[str]:
    sky = import_sky()
    for storage in sky.get(sky.storage_ls()):
        if storage.name == bucket:
            return [getattr(store, "value", str(store)) for store in storage.store]
    return []


def _from_bucket(bucket: str, dest: Path) -> bool:
    stores = _bucket_stores(bucket)
    if not stores:
        raise UserError(f"bucket {bucket} is not among SkyPilot's storage (`sky storage ls`): it was never created "
                        "or was deleted.")
    for store in stores:
        command = _bucket_command(store, bucket, dest)
        if command is not None:
            return _run(command)
    raise UserError(f"bucket {bucket} lives in {', '.join(stores)}: copy it with that store's CLI into {dest}.")


def pull_output(record) -> Path:
    """Copy the run's output into `<run folder>/output` and return that folder. Raises UserError when it cannot."""
    location = output_location(record)
    # `could not bring ... home from :/orch/output`, of a launch that failed before any VM; and a bucket of the
    # offer's kind asked for, of a launch refused before any machine (no cluster, no output place recorded)
    if not location.name or (record.cluster is None and not record.output_uri):
        raise UserError(f"run {record.run_id} has no output to bring home: no VM or bucket was ever recorded for it "
                        f"(it ended {record.status.value} before one came up; `orch logs {record.run_id}` says why).")
    dest = Path(record.run_dir) / "output"
    dest.mkdir(parents=True, exist_ok=True)
    cluster = _cluster_name(record)
    if cluster and not record.spot and _from_cluster(cluster, dest):
        return dest
    if location.kind == "bucket" and _from_bucket(location.name, dest):
        return dest
    raise UserError(f"could not bring the output of {record.run_id} home from {location.describe()}.")

