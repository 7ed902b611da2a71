import csv
from collections import Counter

from gpu_catalog.gpus import DATA_DIR
from gpu_catalog.offers import cloud_offers, reference_offers, split_plausible
from gpu_catalog.skypilot_catalog import read_catalog_dir
from tests.conftest import SHARED_CATALOG, make_gpu, make_offer


def test_reference_rows_have_positive_prices_dates_and_sources():
    with open(DATA_DIR / "reference_offers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"aws", "gcp", "azure", "runpod"} <= {r["provider"] for r in rows}
    for row in rows:
        assert float(row["usd_per_hour"]) > 0 and row["as_of"] and row["source"], row
        if row["spot_usd_per_hour"]:
            assert 0 < float(row["spot_usd_per_hour"]) < float(row["usd_per_hour"]), row
    assert len(reference_offers()) >= len(rows)  # every row resolves to a catalog GPU


def test_skypilot_catalog_single_gpu_rows_only():
    offers = read_catalog_dir(SHARED_CATALOG)
    assert offers and all(o.usd_per_hour > 0 for o in offers)
    # mithril sells H100 and H200 only as 8-GPU nodes, and A100 also as one GPU
    mithril = {o.gpu.family for o in offers if o.provider == "mithril"}
    assert mithril == {"A100"}


def test_lambda_pcie_instances_are_h100_pcie():
    lambda_h100 = {(o.instance_type, o.gpu.name) for o in read_catalog_dir(SHARED_CATALOG)
                   if o.provider == "lambda" and o.gpu.family == "H100"}
    assert ("gpu_1x_h100_pcie", "H100 PCIe") in lambda_h100
    assert all(name == "H100 SXM" for instance, name in lambda_h100 if "pcie" not in instance)


def test_a_zero_spot_price_means_no_spot_offer():
    vast = [o for o in read_catalog_dir(SHARED_CATALOG) if o.provider == "vast"]
    assert vast and not any(o.spot for o in vast)  # vast lists SpotPrice 0.00 everywhere


def test_placeholder_prices_are_dropped():
    gpu = make_gpu()
    offers = [make_offer(gpu, usd_per_hour=p) for p in (2.0, 2.2, 1.8, 0.01, 0.15)]
    kept, dropped = split_plausible(offers)
    assert sorted(o.usd_per_hour for o in dropped) == [0.01, 0.15]
    assert len(kept) == 3


def test_without_enough_offers_only_the_absolute_floor_applies():
    gpu = make_gpu()
    kept, dropped = split_plausible([make_offer(gpu, usd_per_hour=0.14), make_offer(gpu, usd_per_hour=3.0)])
    assert len(kept) == 2 and not dropped


def test_cloud_offers_merge_catalog_and_reference_table():
    kept, dropped = cloud_offers()
    providers = Counter(o.provider for o in kept)
    assert {"lambda", "vast", "aws", "gcp", "azure", "runpod"} <= set(providers)
    assert all(o.usd_per_hour >= 0.05 for o in kept)
    assert any(o.provider == "mithril" for o in dropped)  # the $0.01/h A100 placeholder rows are reported


def test_a_provider_in_the_skypilot_catalog_replaces_its_reference_rows(tmp_path, monkeypatch):
    aws_dir = tmp_path / "v8" / "aws"
    aws_dir.mkdir(parents=True)
    (aws_dir / "vms.csv").write_text(
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo,SpotPrice\n"
        "g5.xlarge,A10G,1,4,16,0.999,us-west-2,,0.3\n")
    monkeypatch.setenv("ORCH_SKY_CATALOGS", str(tmp_path / "v8"))
    cloud_offers.cache_clear()
    aws = [o for o in cloud_offers()[0] if o.provider == "aws"]
    assert {(o.gpu.name, o.usd_per_hour, o.region) for o in aws} == {("A10G", 0.999, "us-west-2"),
                                                                       ("A10G", 0.3, "us-west-2")}
