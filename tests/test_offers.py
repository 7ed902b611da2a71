import csv
import json
import os
import re
from collections import Counter

import pytest

from gpu_catalog.errors import UserError
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


CATALOG_HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region,GpuInfo\n"


def write_catalog(tmp_path, *rows: str, provider: str = "lambda"):
    folder = tmp_path / "v8" / provider
    folder.mkdir(parents=True)
    (folder / "vms.csv").write_text(CATALOG_HEADER + "".join(f"{row}\n" for row in rows))
    return tmp_path / "v8"


@pytest.mark.parametrize("row, message", [
    ("a,A100,1,30,200,nan,,r,", "Price must be a finite number, got nan"),
    ("a,A100,1,30,200,inf,,r,", "Price must be a finite number, got inf"),
    ("a,A100,1,30,200,-1,,r,", "Price must be at least 0 and at most 10000000, got -1"),
    ("a,A100,1,30,200,cheap,,r,", "Price must be a number, got 'cheap'"),
    ("a,A100,nan,30,200,1.29,,r,", "AcceleratorCount must be a finite number, got nan"),
    ("a,A100,1.5,30,200,1.29,,r,", "AcceleratorCount must be a whole number, or a share of one GPU below 1"),
    ("a,A100,1,30,200,1.29,nan,r,", "SpotPrice must be a finite number, got nan"),
    ("a,A100,1,30,200,1.29,-5,r,", "SpotPrice must be at least 0 and at most 10000000, got -5"),
    ("a,A100,8,30,200,-1,,r,", "Price must be at least 0"),  # a row orch skips (8 GPUs) is still the file's
    # float() reads these: $1.29 from Arabic-Indic digits, $129 from `1_29`, ten GPUs (a row skipped) from `1_0`
    ("a,A100,1,30,200,١.٢٩,,r,", "Price must be a number"), ("a,A100,1,30,200,1_29,,r,", "Price must be a number"),
    ("a,A100,1_0,30,200,1.29,,r,", "AcceleratorCount must be a number"),
    # an offer's names go into --json and the task as they are
    ("a,A100,1,30,200,1.29,,,", "Region is empty"), ("a,A100,1,30,200,1.29,,r\x1b[31m,", "Region holds a control"),
    ("a\x07,A100,1,30,200,1.29,,r,", "InstanceType holds a control character"),
])
def test_a_catalog_row_with_a_bad_number_is_refused_with_its_line(tmp_path, row, message):
    """Such rows were skipped silently: missing from the plan and from `--dropped`, a NaN spot price read as none."""
    catalog = write_catalog(tmp_path, "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,", row)
    with pytest.raises(UserError, match=f"lambda/vms.csv line 3: {message}"):
        read_catalog_dir(catalog)


def test_a_catalog_row_that_is_no_csv_is_refused_with_its_own_line(tmp_path):
    """Said a line early: the line count was DictReader's, of the rows it had returned."""
    catalog = write_catalog(tmp_path, "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,", "a,A100," + "x" * 200_000)
    with pytest.raises(UserError, match="lambda/vms.csv line 3 is not CSV .a cell is longer than 131,072 characters"):
        read_catalog_dir(catalog)


def test_skypilot_s_own_blanks_and_gpu_shares_are_not_errors(tmp_path):
    """SkyPilot writes no spot price and no accelerator count as empty cells, no spot market as 0, and sells shares
    of a GPU (Azure's A10 by sixths): none is an offer of one GPU, and none is an error."""
    catalog = write_catalog(tmp_path, "cpu,,,8,32,0.2,,r,", "a10-share,A10,0.167,6,55,0.45,,r,",
                            "no-spot,A100,1,30,200,1.29,0,r,", "blank,A100,1,30,200,1.30,,r,")
    assert [(o.instance_type, o.spot) for o in read_catalog_dir(catalog)] == [("no-spot", False), ("blank", False)]


@pytest.mark.parametrize("column, row", [("Price", "a,A100,1,30,200,1e300,,r,"),
                                         ("SpotPrice", "a,A100,1,30,200,1.29,1e300,r,"),
                                         ("Price", "a,A100,8,30,200,2e7,,r,")])
def test_a_catalog_price_past_any_budget_is_refused_with_its_line(tmp_path, monkeypatch, column, row):
    """1e300 $/h was read as an offer and printed as a line of digits in `--dropped`; a whole instance's price (an
    8-GPU node, a TPU pod slice) above the most any budget may be is a broken file, whatever its row. The fix said
    is the one that mends it where orch reads it: a refresh left a broken file in ORCH_SKY_CATALOGS's folder as it
    was."""
    catalog = write_catalog(tmp_path, "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,", row)
    monkeypatch.delenv("ORCH_SKY_CATALOGS")
    with pytest.raises(UserError, match=f"lambda/vms.csv line 3: {column} must be at least 0 and at most 10000000, "
                                        "got .*: rerun `orch catalog refresh`"):
        read_catalog_dir(catalog)
    monkeypatch.setenv("ORCH_SKY_CATALOGS", str(catalog))
    with pytest.raises(UserError, match="got .*: fix or remove it: it is in a folder ORCH_SKY_CATALOGS names"):
        read_catalog_dir(catalog)


@pytest.mark.parametrize("damage, said", [("latin-1", "is not UTF-8 text (byte 0)"),
                                          ("folder", "is a folder, not a file")])
def test_a_catalog_file_with_nothing_to_read_gets_the_fix_where_orch_reads_it(tmp_path, monkeypatch, damage, said):
    """A vms.csv orch had copied said "save it as UTF-8", and one that was a folder no fix at all, where every other
    damage to it says how to mend it where orch reads it."""
    catalog = write_catalog(tmp_path, "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,")
    vms_csv = catalog / "lambda" / "vms.csv"
    vms_csv.unlink()
    if damage == "folder":
        vms_csv.mkdir()
    else:
        vms_csv.write_bytes("é,A100\n".encode("latin-1"))
    monkeypatch.delenv("ORCH_SKY_CATALOGS")
    with pytest.raises(UserError, match=re.escape(f"'{vms_csv}' {said}: rerun `orch catalog refresh`, or remove it.")):
        read_catalog_dir(catalog)
    monkeypatch.setenv("ORCH_SKY_CATALOGS", str(catalog))
    with pytest.raises(UserError, match=re.escape(f"'{vms_csv}' {said}: fix or remove it: it is in a folder ORCH_SKY")):
        read_catalog_dir(catalog)


@pytest.mark.parametrize("gpu_info", ["[" * 100_000, "-" * 100_000 + "1", "1" + "+1" * 50_000])
def test_a_gpu_info_nested_too_deeply_is_unreadable_like_any_other(tmp_path, gpu_info):
    """Nested this deeply, json raised RecursionError and Python's parser RecursionError or MemoryError: a traceback
    from `orch plan`. Like a GpuInfo of any other wrong shape it is ignored, and the GPU's name picks the card."""
    catalog = write_catalog(tmp_path, f"deep,A100,1,30,200,1.29,,r,{gpu_info}", "plain,A100,1,30,200,1.29,,r,odd")
    assert [(o.instance_type, o.gpu.name) for o in read_catalog_dir(catalog)] == [("deep", "A100 40GB"),
                                                                                  ("plain", "A100 40GB")]


class _Runs:
    def __reduce__(self):
        return (print, ("code from the cache ran",))


def test_the_catalog_cache_gives_back_the_offers_built_and_runs_no_code_put_there(tmp_path, monkeypatch, capsys):
    """The cache was a pickle: one put in its place ran its code in the next plan (a SystemExit in it ended the
    plan with exit 1 and no word). It is JSON now, read back as the offers it kept; anything else is rebuilt."""
    import pickle

    from gpu_catalog import offers

    monkeypatch.setenv("ORCH_SKY_CATALOGS", str(SHARED_CATALOG))
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    offers.cloud_offers.cache_clear()
    built = offers.cloud_offers()
    (entry,) = (tmp_path / "cache" / "catalog").iterdir()
    offers.cloud_offers.cache_clear()
    with monkeypatch.context() as patch:
        patch.setattr(offers, "read_catalog_dir", lambda folder: pytest.fail("the catalog was read again"))
        assert offers.cloud_offers() == built  # read back from the cache, equal to the offers built
    entry.write_bytes(pickle.dumps([_Runs()]))
    offers.cloud_offers.cache_clear()
    assert offers.cloud_offers() == built and "code from the cache ran" not in capsys.readouterr().out
    kept = json.loads(entry.read_text())["items"]
    # an edited entry is rebuilt too: a price of 'abc' failed every plan that compared prices, a GPU of 0 TFLOPS
    # divided by zero, and a price of -5 dropped the offer unsaid
    for edit in ({}, [{**kept[0], "usd_per_hour": "abc"}], [{**kept[0], "spot": "yes"}],
                 [{**kept[0], "gpu": {**kept[0]["gpu"], "vram_gib": None}}],
                 {"items": [{**kept[0], "usd_per_hour": -5.0}], "digest": "0"},
                 {"items": [{**kept[0], "gpu": {**kept[0]["gpu"], "bf16_tflops": 0}}]}):
        entry.write_text(json.dumps(edit))
        offers.cloud_offers.cache_clear()
        assert offers.cloud_offers() == built, edit
    offers.cloud_offers.cache_clear()


def test_the_catalog_cache_is_read_again_when_the_code_that_reads_it_changes(tmp_path, monkeypatch):
    """A catalog cached by an older orch kept what that orch read from it (a 1e300 $/h offer, before prices were
    capped) until the catalog itself changed."""
    from gpu_catalog import offers

    catalog = write_catalog(tmp_path, "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,")
    reader = tmp_path / "reader.py"
    reader.write_text("# v1\n")
    monkeypatch.setenv("ORCH_SKY_CATALOGS", str(catalog))
    monkeypatch.setenv("ORCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(offers, "READER_FILES", (reader,))
    reads = []
    monkeypatch.setattr(offers, "read_catalog_dir", lambda d: reads.append(d) or read_catalog_dir(d))

    def lambda_prices():
        offers.cloud_offers.cache_clear()
        return [o.usd_per_hour for o in offers.cloud_offers()[0] if o.provider == "lambda"]

    assert lambda_prices() == lambda_prices() == [1.29] and len(reads) == 1  # read once, then from the cache
    reader.write_text("# v2: a new rule\n")
    assert lambda_prices() == [1.29] and len(reads) == 2


@pytest.mark.parametrize("provider, said", [
    ("local", "is named 'local', orch's name for your own cards, not a cloud"),
    ("ssh", "is named 'ssh', orch's name for your own cards, not a cloud"),
    ("[red]aws", "is not named as a cloud"), ("aws\x1b[31m", "is not named as a cloud"),
    ("AWS", "is not named as a cloud"), ("-aws", "is not named as a cloud"), (".aws", "is not named as a cloud"),
])
def test_a_catalog_folder_not_named_as_a_cloud_is_refused_when_read_and_when_copied(tmp_path, provider, said):
    """A `local` folder planned a rented A100 as the user's own card; `[red]aws` reached every plan's table."""
    from orchestrator.launch.sky_catalog import copy_catalog

    catalog = write_catalog(tmp_path, "gpu_1x_a100,A100,1,30,200,0.50,,us-east-1,", provider=provider)
    for read in (read_catalog_dir, lambda d: copy_catalog(d, tmp_path / "sky")):
        with pytest.raises(UserError, match=f"SkyPilot catalog folder '.*' {re.escape(said)}"):
            read(catalog)
    assert not (tmp_path / "sky").exists()  # nothing copied


@pytest.mark.parametrize("common, said", [
    ("pipe", "is not a regular file (a device or a pipe): put the file itself there, or remove it from the --from"),
    ("zero", "is not a regular file (a device or a pipe)"),
    ("folder", "is a folder, not a file"),
    (b"Name,Price\n\xff\xfe\n", "is not UTF-8 text (byte 11)"),
    (b"", "is empty, with no header row: fix it, or remove it from the --from folder"),
    (b'Name,Price\n"unterminated\n', "line 2 is not CSV (unexpected end of data)"),
    (b"Name,Price\n" + b"x" * 2000, "is 0 MB, more than any catalog's 0 MB: check it, or remove it"),
])
def test_a_common_file_that_is_no_csv_is_refused_before_anything_is_copied(tmp_path, monkeypatch, common, said):
    """Only */vms.csv were read before copying: common/zero.csv linked to /dev/zero grew to 13 GB in 30 s, a pipe
    stopped the copy after vms.csv had replaced SkyPilot's, and a file that was not UTF-8 was copied in silence."""
    from orchestrator.launch import sky_catalog as refresh

    monkeypatch.setattr(refresh, "MOST_CATALOG_BYTES", 1000)
    catalog = write_catalog(tmp_path, "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,")
    path = catalog / "common" / "images.csv"
    path.parent.mkdir()
    if common == "pipe":
        os.mkfifo(path)
    elif common == "zero":
        path.symlink_to("/dev/zero")
    elif common == "folder":
        path.mkdir()
    else:
        path.write_bytes(common)
    with pytest.raises(UserError, match=f"SkyPilot catalog file '{re.escape(str(path))}' {re.escape(said)}"):
        refresh.copy_catalog(catalog, tmp_path / "sky")
    assert not (tmp_path / "sky").exists()  # nothing copied


@pytest.mark.parametrize("blocked, said", [
    ("gcp", "is a file where SkyPilot's catalog folder goes"),
    ("gcp/vms.csv/", "is a folder where SkyPilot's catalog file goes"),
])
def test_a_landing_place_that_takes_no_catalog_file_is_refused_before_anything_is_copied(tmp_path, blocked, said):
    """`~/.sky/catalogs/v8/gcp` as a file: aws/vms.csv was copied, then gcp's failed with the system's bare words."""
    from orchestrator.launch.sky_catalog import copy_catalog

    catalog = write_catalog(tmp_path, "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,", provider="aws")
    write_catalog(tmp_path, "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,", provider="gcp")
    sky = tmp_path / "sky"
    sky.mkdir()
    if blocked.endswith("/"):
        (sky / blocked).mkdir(parents=True)
    else:
        (sky / blocked).write_text("x")
    with pytest.raises(UserError, match=re.escape(said)):
        copy_catalog(catalog, sky)
    assert not (sky / "aws").exists()  # nothing copied


def test_a_row_given_twice_is_one_offer(tmp_path):
    row = "gpu_1x_a100,A100,1,30,200,1.29,0.5,us-east-1,"
    offers = read_catalog_dir(write_catalog(tmp_path, row, row, "gpu_1x_a100,A100,1,30,200,1.29,0.5,us-west-1,"))
    assert [(o.region, o.spot) for o in offers] == [("us-east-1", False), ("us-east-1", True), ("us-west-1", False),
                                                    ("us-west-1", True)]


def test_a_catalog_folder_named_twice_is_refused(tmp_path, monkeypatch):
    """Read twice, each of its offers counted twice: `27 options, 22 distinct`."""
    from gpu_catalog.offers import skypilot_catalog_dirs

    catalog = write_catalog(tmp_path, "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,")
    for named in (f"{catalog}{os.pathsep}{catalog}", f"{catalog}{os.pathsep}{catalog}/../v8/"):
        monkeypatch.setenv("ORCH_SKY_CATALOGS", named)
        with pytest.raises(UserError, match=f"ORCH_SKY_CATALOGS names {catalog} more than once: list each folder once"):
            skypilot_catalog_dirs()


def test_a_cloud_in_two_catalog_folders_is_refused(tmp_path, monkeypatch):
    """Two copies of lambda/ listed every Lambda offer twice (68 instead of 34)."""
    from gpu_catalog.offers import skypilot_catalog_dirs

    first = write_catalog(tmp_path / "a", "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,")
    second = write_catalog(tmp_path / "b", "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,")
    monkeypatch.setenv("ORCH_SKY_CATALOGS", f"{first}{os.pathsep}{second}")
    with pytest.raises(UserError, match=f"lambda has a catalog in both {first} and {second}: keep one of them"):
        skypilot_catalog_dirs()


def test_a_catalog_that_starts_with_a_byte_order_mark_is_read(tmp_path):
    """Saved by a Windows editor: its first column read as `\\ufeffInstanceType`, "not a SkyPilot v8 catalog"."""
    catalog = write_catalog(tmp_path, "gpu_1x_a100,A100,1,30,200,1.29,,us-east-1,")
    vms_csv = catalog / "lambda" / "vms.csv"
    vms_csv.write_bytes(b"\xef\xbb\xbf" + vms_csv.read_bytes())
    assert [o.instance_type for o in read_catalog_dir(catalog)] == ["gpu_1x_a100"]


def test_a_catalog_list_of_separators_only_is_refused(monkeypatch):
    """`ORCH_SKY_CATALOGS=:` named no folder and planned on SkyPilot's own catalog unsaid."""
    from gpu_catalog.offers import skypilot_catalog_dirs

    monkeypatch.setenv("ORCH_SKY_CATALOGS", os.pathsep * 2)
    with pytest.raises(UserError, match="names no folder"):
        skypilot_catalog_dirs()


@pytest.mark.parametrize("text", ["aws,,gcp", "aws,", ",aws"])
def test_an_empty_provider_between_commas_is_refused(text):
    from orchestrator.cli.limits import parse_providers

    with pytest.raises(UserError, match="an empty name between commas"):
        parse_providers(text)
    assert parse_providers("AWS, gcp") == {"aws", "gcp"}


def test_no_offer_to_show_is_one_sentence_not_an_empty_table():
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    result = CliRunner().invoke(app, ["catalog", "offers", "--gpu", "B200", "--provider", "local"])
    assert result.exit_code == 0 and result.stdout.strip() == ("no offer matches --gpu and --providers: `orch catalog "
                                                               "offers` lists them all")


def test_an_instance_sold_only_as_spot_has_no_on_demand_offer(tmp_path):
    """Google sells a3-highgpu-1g as Spot or Flex-start only, and its catalog lists an on-demand price: planned on
    demand (qwen25-14b at $18.33), every zone refused the VM."""
    offers = read_catalog_dir(write_catalog(tmp_path, "a3-highgpu-1g,H100,1,26,234,10.98,2.39,us-east4,",
                                            "a2-highgpu-1g,A100,1,12,85,3.67,1.80,us-central1,", provider="gcp"))
    assert sorted((o.instance_type, o.spot) for o in offers) == [
        ("a2-highgpu-1g", False), ("a2-highgpu-1g", True), ("a3-highgpu-1g", True)]
    reference = [(o.spot, o.usd_per_hour) for o in reference_offers() if o.instance_type == "a3-highgpu-1g"]
    assert reference and all(spot for spot, _ in reference), reference
