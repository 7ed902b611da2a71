"""How a cloud run keeps what it trained and how its VM ends, decided from what the cloud supports (SkyPilot's own
feature table, gpu_catalog/cloud_features.py), or why the cloud cannot take the run. Pure: the planner judges offers
with it and the task builder follows it, so every task orch builds passes SkyPilot's feature check.

- A bucket `orch-<run id>` mounted at the output folder in MOUNT_CACHED mode (SkyPilot's storage docs: MOUNT does
  not support appends or renames; steps.jsonl is appended every step and checkpoints are written by renaming a
  folder) where the cloud can mount storage. Spot runs need it: their checkpoints must outlive a preemption. Its
  store is chosen at launch from the enabled storage clouds (launch/sky_storage.py output_store); with none, an
  on-demand run keeps its output on the VM (on_the_vm).
- Elsewhere the output stays on the VM's disk and comes home by rsync from the cluster before teardown.
- Spot runs are SkyPilot managed jobs: the jobs controller relaunches them with `down=True`, so the cloud must
  support spot instances, autodown and bucket mounting.
- On-demand VMs end themselves after the job (`down` after an idle window): a cloud that cannot down an idle VM
  would keep billing once the client that launched it is gone, so it is rejected.
A provider SkyPilot does not know is judged capable here; pre-flight refuses it by name before a launch.
"""

from dataclasses import dataclass
from functools import lru_cache

from gpu_catalog.cloud_features import AUTODOWN, SPOT_INSTANCE, STORAGE_MOUNTING, unsupported
from gpu_catalog.errors import UserError
from gpu_catalog.offer import SSH_POOL_PROVIDER, Offer

BUCKET_PREFIX = "orch-"
REMOTE_OUTPUT = "/orch/output"
BUCKET_IDLE_MINUTES = 5  # the output is in the bucket: the VM may go as soon as the job ends
CLUSTER_IDLE_MINUTES = 60  # the output is on the VM: leave an hour for `orch pull` when the launcher was detached
# SkyPilot's skylet checks a VM's autostop once a minute (StopEvent, sky/skylet/events.py), so it downs up to a minute
# past its idle minutes, and the teardown is billed until the instance is gone (about a minute more: a guess)
AUTODOWN_LAG_S = 120


def autodown_after_s(idle_minutes: int) -> float:
    """Seconds a VM that downs itself is billed after its job: its idle minutes, SkyPilot's check and the teardown."""
    return idle_minutes * 60 + AUTODOWN_LAG_S


@dataclass(frozen=True)
class Delivery:
    """`output`: "bucket" or "cluster"; `managed`: a managed job with recovery (spot); `idle_minutes`: the VM downs
    itself after this long idle (None: the machine is the user's own, nothing to down); `features`: what the task
    asks of the cloud (SkyPilot's feature names), each supported there."""

    output: str
    managed: bool
    idle_minutes: int | None
    features: frozenset[str]

    def idle_hours(self) -> float:
        return 0.0 if self.idle_minutes is None else autodown_after_s(self.idle_minutes) / 3600

    def idle_usd_past(self, planned: "Delivery", usd_per_hour: float) -> float:
        """What this delivery's idle window costs past the one `planned` priced (no storage cloud enabled keeps the
        output on the VM, idling an hour where the plan counted 5 minutes)."""
        return max(0.0, self.idle_hours() - planned.idle_hours()) * usd_per_hour


@dataclass(frozen=True)
class NoDelivery:
    """The cloud cannot run orch's task: `feature` is the SkyPilot feature it lacks, `reason` says so with
    SkyPilot's own words."""

    feature: str
    reason: str


def on_the_vm(delivery: Delivery, provider: str) -> Delivery:
    """The delivery of a run whose cloud has no object store orch can use at launch (no storage cloud enabled): an
    on-demand run keeps its output on the VM's disk, pulled home before teardown; a spot run cannot run."""
    if delivery.managed:
        raise UserError(f"a spot run on {provider} keeps its checkpoints in a bucket, and SkyPilot has no storage "
                        "cloud enabled here that orch can use (AWS S3, GCS, Nebius, or the run's own Azure): enable "
                        "one (`sky check`), or launch on-demand (--no-spot).")
    return Delivery(output="cluster", managed=False, idle_minutes=CLUSTER_IDLE_MINUTES,
                    features=frozenset({AUTODOWN}))


def bucket_name(run_id: str) -> str:
    """The bucket a run's output lives in: lowercase letters, digits and hyphens, as every object store allows."""
    name = (BUCKET_PREFIX + run_id).lower()
    return "".join(c if c.isalnum() or c == "-" else "-" for c in name)[:63]


def _missing(provider: str, spot: bool, feature: str, why: str) -> NoDelivery:
    said = unsupported(provider, spot)[feature]
    return NoDelivery(feature, f"{provider} {why} (SkyPilot {feature}: {said.rstrip('.')})")


def delivery_for(offer: Offer) -> Delivery | NoDelivery:
    """How a run on this cloud offer brings its output home, or why it cannot run there."""
    return _delivery(offer.provider, offer.spot)


@lru_cache(maxsize=None)
def _delivery(provider: str, spot: bool) -> Delivery | NoDelivery:
    """Decided by the provider and the kind of instance alone, so each pair is decided once: a simulated million
    jobs ask again and again."""
    if provider == SSH_POOL_PROVIDER:
        return Delivery(output="cluster", managed=False, idle_minutes=None, features=frozenset())
    lacks = unsupported(provider, spot)
    if spot:
        for feature, why in ((SPOT_INSTANCE, "has no spot instances in SkyPilot"),
                             (STORAGE_MOUNTING, "cannot mount a bucket, and spot checkpoints must outlive the VM"),
                             (AUTODOWN, "cannot down a VM itself, as SkyPilot's managed jobs need")):
            if feature in lacks:
                return _missing(provider, spot, feature, why)
        return Delivery(output="bucket", managed=True, idle_minutes=BUCKET_IDLE_MINUTES,
                        features=frozenset({SPOT_INSTANCE, STORAGE_MOUNTING, AUTODOWN}))
    if AUTODOWN in lacks:
        return _missing(provider, spot, AUTODOWN,
                        "cannot down an idle VM, which would bill on once the launcher is gone")
    if STORAGE_MOUNTING in lacks:
        return Delivery(output="cluster", managed=False, idle_minutes=CLUSTER_IDLE_MINUTES,
                        features=frozenset({AUTODOWN}))
    return Delivery(output="bucket", managed=False, idle_minutes=BUCKET_IDLE_MINUTES,
                    features=frozenset({STORAGE_MOUNTING, AUTODOWN}))
