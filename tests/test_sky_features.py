"""Every task orch builds passes SkyPilot's own feature check for its cloud, and every offer the planner rejects
for a missing feature is one SkyPilot itself refuses. The features are collected the way SkyPilot's launch path
does (sky/execution.py: `task.get_required_cloud_features()`, each resource's spot request, AUTODOWN/AUTOSTOP from
its autostop config; and AUTODOWN for a managed job's cluster, which the jobs controller launches with `down=True`,
sky/jobs/recovery_strategy.py), then `cloud.check_features_are_supported(resources, features)` decides. Offline, no
credentials, no API server."""

import json
from pathlib import Path

import pytest
import yaml

from gpu_catalog.cloud_features import FEATURES_PATH
from gpu_catalog.models import get_model
from gpu_catalog.offers import cloud_offers, reference_offers
from gpu_catalog.skypilot_catalog import read_catalog_dir
from orchestrator.delivery import NoDelivery, delivery_for
from orchestrator.job import job_from_dict
from orchestrator.planner import Option, PlanPolicy, plan
from tests.conftest import REPO, SHARED_CATALOG

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
TINY_DATA = REPO / "examples" / "data" / "tiny_instruct.jsonl"
ALL_OFFERS = read_catalog_dir(SHARED_CATALOG) + reference_offers()
ALL_CLOUDS = sorted({o.provider for o in ALL_OFFERS})


def test_the_feature_table_is_what_the_installed_skypilot_says(sky):
    """Regenerated from SkyPilot's cloud classes and compared: the table is never kept by hand."""
    from orchestrator.launch.skypilot_features import unsupported_features

    assert json.loads(FEATURES_PATH.read_text()) == json.loads(json.dumps(unsupported_features(), sort_keys=True))


def required_features(task, managed: bool) -> set:
    """What SkyPilot's launch path asks of the cloud for this task."""
    from sky import clouds

    features = set(task.get_required_cloud_features())
    for resources in task.resources:
        if resources.use_spot:
            features.add(clouds.CloudImplementationFeatures.SPOT_INSTANCE)
        config = resources.autostop_config
        if config is not None and config.enabled:
            features.add(clouds.CloudImplementationFeatures.AUTODOWN if config.down
                         else clouds.CloudImplementationFeatures.AUTOSTOP)
    if managed:
        features.add(clouds.CloudImplementationFeatures.AUTODOWN)
    return features


def trainable(example: Path, tmp_path: Path) -> Path:
    """The example as a job that trains here (the tiny local dataset instead of a hub one)."""
    raw = yaml.safe_load(example.read_text())
    for key in ("dataset_config", "dataset_split", "dataset_columns", "eval_dataset", "eval_split"):
        raw.pop(key, None)
    raw["dataset"] = str(TINY_DATA)
    job = tmp_path / example.name
    job.write_text(yaml.safe_dump(raw))
    return job


def check_task(task, managed: bool) -> None:
    from sky.utils import registry

    features = required_features(task, managed)
    assert features, "every cloud task asks for something (autodown at least)"
    for resources in task.resources:
        cloud = registry.CLOUD_REGISTRY.from_str(str(resources.cloud).lower())
        cloud.check_features_are_supported(resources, features)  # raises NotSupportedError on a bad task


@pytest.mark.parametrize("spot", [False, True], ids=["on-demand", "spot"])
@pytest.mark.parametrize("provider", ALL_CLOUDS)
def test_each_cloud_gets_a_task_skypilot_accepts_or_a_rejection_skypilot_agrees_with(sky, tmp_path, provider,
                                                                                       spot):
    from sky import clouds, exceptions
    from sky.utils import registry

    from orchestrator.launch.sky_task import build_task

    offers = [o for o in ALL_OFFERS if o.provider == provider and o.spot == spot]
    if not offers:
        pytest.skip(f"no {'spot' if spot else 'on-demand'} offer of {provider} in the catalog or reference table")
    offer = min(offers, key=lambda o: o.usd_per_hour)
    tiny = job_from_dict({"model": "orch/tiny-llama", "method": "lora", "seq_len": 128, "train_tokens": 10_000})
    result = plan(tiny, get_model(tiny.model), [offer], PlanPolicy(budget_usd=1e6))
    delivery = delivery_for(offer)
    if isinstance(delivery, NoDelivery):
        assert not result.options and result.rejected[0].kind == "launch"
        cloud = registry.CLOUD_REGISTRY.from_str(provider)
        with pytest.raises(exceptions.NotSupportedError):
            cloud.check_features_are_supported(sky.Resources(cloud=cloud, use_spot=spot),
                                               {clouds.CloudImplementationFeatures(delivery.feature)})
        return
    option = result.chosen
    assert option is not None and option.delivery == delivery
    for example in EXAMPLES:
        spec = job_from_dict(yaml.safe_load(example.read_text()), base_dir=example.parent)
        model = get_model(spec.model)
        task = build_task(spec, trainable(example, tmp_path), option, 1e6, "r-features", model,
                          tmp_path / example.stem)
        check_task(task, delivery.managed)


def test_the_planned_task_of_every_example_passes_with_its_failover_offers(sky, tmp_path):
    """The plan over the whole offline catalog and reference table, spot and on-demand, for every example: the task
    with the chosen offer and each failover offer passes the check."""
    from orchestrator.launch.sky_task import build_task

    offers = list(cloud_offers()[0])
    for example in EXAMPLES:
        raw = {**yaml.safe_load(example.read_text()), "train_tokens": 5_000_000}
        spec = job_from_dict(raw, base_dir=example.parent)
        model = get_model(spec.model)
        for allow_spot in (True, False):
            result = plan(spec, model, offers, PlanPolicy(budget_usd=500, allow_spot=allow_spot))
            assert result.options, f"{example.name}: nothing planned"
            for option in result.options[:3]:
                assert isinstance(option, Option) and option.delivery is not None
                task = build_task(spec, trainable(example, tmp_path), option, 500, "r-plan", model,
                                  tmp_path / f"{example.stem}-{allow_spot}")
                assert len(task.resources) == 1 + len(option.failover)
                check_task(task, option.delivery.managed)
