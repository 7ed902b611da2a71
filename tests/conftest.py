"""Every test runs offline and isolated: SkyPilot's offline catalog copy from ../shared, no hardware file, no
calibration file, no hub. Factories build small inputs, one behaviour per test (dstack's style)."""

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gpu_catalog.gpus import GPU
from gpu_catalog.models import ModelShape
from gpu_catalog.offer import Offer
from gpu_catalog.offers import cloud_offers

REPO = Path(__file__).resolve().parent.parent
SHARED_CATALOG = REPO.parent / "shared" / "data" / "skypilot-catalog" / "v8"
OFFLINE_CLOUDS = ("lambda", "vast", "verda", "nebius", "seeweb", "hyperbolic")  # the clouds that copy holds
# One compute thread per process, trainers started by tests included: the suite runs a process per core already, and
# torch's idle threads spin-wait, which burns the CPU the other workers need
os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One ORCH_CACHE for the session, and for every pytest-xdist worker of it: tests only read what it holds (built
    tiny models, the parsed catalog, token counts), and orch writes each entry whole (a temporary file, then a
    rename), so workers that build the same entry at once leave one good copy."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    path = root / "orch-cache"
    path.mkdir(exist_ok=True)
    return path


def go_offline(patch: pytest.MonkeyPatch, folder: Path, cache: Path) -> None:
    """The environment every test runs in, with its state (HOME, hence ORCH_HOME) under `folder`."""
    patch.setenv("ORCH_SKY_CATALOGS", str(SHARED_CATALOG))
    patch.delenv("ORCH_HARDWARE", raising=False)  # the default file, under HOME below: none
    patch.delenv("ORCH_CALIBRATION", raising=False)  # the default, under ORCH_HOME below: none
    patch.delenv("ORCH_HOME", raising=False)  # the default, under HOME below
    patch.setenv("HF_HUB_OFFLINE", "1")
    patch.setenv("SKYPILOT_DISABLE_LOCAL_API_SERVER", "1")  # a SkyPilot client call fails, starts no server
    patch.setenv("HOME", str(folder / "home"))
    patch.setenv("ORCH_CACHE", str(cache))


@pytest.fixture(autouse=True)
def offline_env(monkeypatch, tmp_path, shared_cache):
    go_offline(monkeypatch, tmp_path, shared_cache)
    cloud_offers.cache_clear()
    yield
    cloud_offers.cache_clear()


_WEIGHTS_HEADER = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
# a model.safetensors the safetensors library reads (one float32): the weights of a model folder whose files are
# checked, not loaded (trainer/model_files.py reads headers only)
SAFETENSORS = len(_WEIGHTS_HEADER).to_bytes(8, "little") + _WEIGHTS_HEADER + bytes(4)


def write_weights(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(SAFETENSORS)


def make_gpu(name="Test GPU", vram_gib=24.0, bf16_tflops=100.0, mem_bw_gbps=1000.0, supports_bf16=True,
             kind="datacenter", compute_capability="8.0", **overrides) -> GPU:
    fields = dict(name=name, family=name, vram_gib=vram_gib, mem_bw_gbps=mem_bw_gbps, bf16_tflops=bf16_tflops,
                  fp16_tflops=bf16_tflops, fp32_tflops=bf16_tflops / 8, supports_bf16=supports_bf16,
                  compute_capability=compute_capability,
                  tdp_w=300.0, street_price_usd=None, kind=kind, source="test", as_of="2026-11")
    return GPU(**{**fields, **overrides})


def make_model(n_layers=32, hidden=4096, n_heads=32, n_kv_heads=8, intermediate=14336, vocab=128256,
               tied_embeddings=False, name="test/model") -> ModelShape:
    shape = ModelShape(name=name, params=0, n_layers=n_layers, hidden=hidden, n_heads=n_heads, n_kv_heads=n_kv_heads,
                       head_dim=hidden // n_heads, intermediate=intermediate, vocab=vocab,
                       tied_embeddings=tied_embeddings, source="test")
    return dataclasses.replace(shape, params=shape.computed_params)


def make_offer(gpu=None, provider="testcloud", usd_per_hour=1.0, spot=False, region="r1", **overrides) -> Offer:
    return Offer(gpu=gpu or make_gpu(), provider=provider, region=region, spot=spot, usd_per_hour=usd_per_hour,
                 source="test", **overrides)


@pytest.fixture(scope="session")
def sky(tmp_path_factory):
    """sky imported once per session with its catalog in a temporary HOME (SkyPilot fixes HOME at import), and
    only the offline catalog's clouds enabled."""
    home = tmp_path_factory.mktemp("skyhome")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("SKYPILOT_DISABLE_LOCAL_API_SERVER", "1")  # a stray client call fails instead of starting one
        patch.setenv("SKYPILOT_DISABLE_USAGE_COLLECTION", "1")
        patch.delenv("SKY_RUNTIME_DIR", raising=False)
        import sky
        from sky.catalog import common

        catalog_dir = Path(common.get_catalog_path("x")).parent
        # a test that imported sky first did so under its own temporary HOME (offline_env): the catalog goes there;
        # never under the user's own home
        assert catalog_dir.is_relative_to(tmp_path_factory.getbasetemp()), "sky was imported with a real HOME"
        shutil.copytree(SHARED_CATALOG, catalog_dir, dirs_exist_ok=True)
        from sky.utils import registry

        enabled = [registry.CLOUD_REGISTRY.from_str(name) for name in OFFLINE_CLOUDS]
        patch.setattr("sky.check.get_cached_enabled_clouds_or_refresh", lambda *a, **k: list(enabled))
        patch.setattr("sky.check.check_capability", lambda *a, **k: None)
        yield sky
    servers = subprocess.run(["ps", "aux"], capture_output=True, text=True).stdout
    assert "sky.server.server" not in servers, "a SkyPilot API server was left running"


# The files that start trainer processes take most of the suite's time: run first, they spread over the workers,
# and the last minutes are not one worker's alone
SLOWEST_FILES = ("test_budget.py", "test_bench.py", "test_scheduler.py", "test_scheduler_faults.py",
                 "test_launch_local.py", "test_trainer_recovery.py", "test_trainer_vs_baseline.py",
                 "test_trainer_interrupt.py", "test_trainer_runs.py", "test_data_size.py", "test_sky_features.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
