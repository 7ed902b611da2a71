"""`orch catalog refresh` without a network: one error line, none of SkyPilot's own."""

import errno
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.launch import sky_catalog
from orchestrator.launch.sky_catalog import GPU_CLOUDS, _sky_loggers_off
from tests.conftest import REPO, SHARED_CATALOG

CLOSED_PORT = "http://127.0.0.1:9"  # every download goes through a proxy nobody answers: offline, network or not


def test_an_offline_refresh_says_one_line(tmp_path):
    env = {name: value for name, value in os.environ.items() if name.lower() not in ("no_proxy", "all_proxy")}
    env.update(HTTP_PROXY=CLOSED_PORT, HTTPS_PROXY=CLOSED_PORT, http_proxy=CLOSED_PORT, https_proxy=CLOSED_PORT,
               SKYPILOT_DISABLE_USAGE_COLLECTION="1")  # HOME is tmp_path's (conftest), so ~/.sky is a new one
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.entry", "catalog", "refresh"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert done.stdout == "", said  # SkyPilot logged "Failed to fetch AWS catalog ..." there, once per cloud
    assert len(said.splitlines()) == 1 and said.startswith("error: could not download any catalog"), said
    assert all(f"{cloud}: not refreshed (" in said for cloud in GPU_CLOUDS), said  # orch's own summary stays


def test_an_offline_refresh_over_a_catalog_says_none_was_refreshed(tmp_path):
    """SkyPilot keeps (and touches) the catalog it has when a download fails: each cloud was listed as refreshed, and
    the refresh exited 0 with nothing downloaded."""
    env = {name: value for name, value in os.environ.items() if name.lower() not in ("no_proxy", "all_proxy")}
    env.update(HTTP_PROXY=CLOSED_PORT, HTTPS_PROXY=CLOSED_PORT, http_proxy=CLOSED_PORT, https_proxy=CLOSED_PORT,
               SKYPILOT_DISABLE_USAGE_COLLECTION="1")

    def refresh(*args):
        return subprocess.run([sys.executable, "-m", "orchestrator.cli.entry", "catalog", "refresh", *args], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=300)

    copied = refresh("--from", str(SHARED_CATALOG))
    assert copied.returncode == 0, copied.stderr
    done = refresh()
    said = done.stdout + done.stderr
    assert done.returncode == 2 and said.startswith("error: could not download any catalog"), said
    assert "lambda: not refreshed (no download; " in said and " rows in " not in said, said


class Kept(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_sky_loggers_are_off_for_the_block_only():
    sky, child = logging.getLogger("sky"), logging.getLogger("sky.catalog.refresh_test")
    kept = Kept()
    child.addHandler(kept)
    child.setLevel(logging.INFO)  # SkyPilot gives some of its loggers a level of their own
    before = sky.level
    try:
        with _sky_loggers_off():
            child.error("hidden")
            assert sky.level > logging.CRITICAL
        child.error("shown")
        assert kept.messages == ["shown"]
        assert (child.level, sky.level) == (logging.INFO, before)
    finally:
        child.removeHandler(kept)
        child.setLevel(logging.NOTSET)


def test_a_refresh_says_orch_plans_from_orch_sky_catalogs_while_it_is_set(tmp_path, monkeypatch):
    """`orch catalog refresh --from DIR` with ORCH_SKY_CATALOGS set refreshed SkyPilot's folder, exit 0, while every
    plan went on reading the folders ORCH_SKY_CATALOGS names: said in the refresh's last line."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("ORCH_SKY_CATALOGS", str(SHARED_CATALOG))
    done = CliRunner().invoke(app, ["catalog", "refresh", "--from", str(SHARED_CATALOG)])
    assert done.exit_code == 0, done.output
    last = " ".join(done.stdout.split()).rsplit("note: ", 1)[1]
    assert last.startswith(f"ORCH_SKY_CATALOGS is set ({SHARED_CATALOG}), so orch plans from those folders") and \
        last.endswith("unset it to plan from the refreshed catalog."), done.stdout


def test_a_refresh_that_runs_out_of_disk_replaces_no_catalog(tmp_path, monkeypatch):
    """Copied straight over SkyPilot's files, a full disk cut one mid-row after the clouds before it were replaced,
    and every later plan failed on it: each copy is now whole beside its file before any is replaced."""
    header = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region,GpuInfo\n"
    source, home = tmp_path / "v8", tmp_path / "home"
    for cloud in ("aws", "lambda"):
        (source / cloud).mkdir(parents=True)
        (source / cloud / "vms.csv").write_text(header + "new,A100,1,30,200,1.00,,us-east-1,\n")
    kept = home / ".sky" / "catalogs" / "v8"
    for cloud in ("aws", "lambda"):
        (kept / cloud).mkdir(parents=True)
        (kept / cloud / "vms.csv").write_text(header + "old,A100,1,30,200,2.00,,us-east-1,\n")
    before = {path: path.read_bytes() for path in kept.rglob("*") if path.is_file()}
    real_copy = shutil.copyfile

    def full_disk(src, dst, **kwargs):
        if "lambda" in str(dst):
            Path(dst).write_bytes(Path(src).read_bytes()[:20])  # cut, as a full disk cuts it
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(src, dst, **kwargs)

    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(sky_catalog.shutil, "copyfile", full_disk)
    result = CliRunner().invoke(app, ["catalog", "refresh", "--from", str(source)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "(No space left on device), so no catalog was replaced" in " ".join(result.stderr.split())
    assert {path: path.read_bytes() for path in kept.rglob("*") if path.is_file()} == before
