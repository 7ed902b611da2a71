"""What each cloud can and cannot do for a launch (bucket mounting, spot, autodown, stop), read from a data file
generated from SkyPilot's own cloud classes (orchestrator/launch/skypilot_features.py writes it). Pure: no sky
import, so planning stays fast. The feature names are SkyPilot's `CloudImplementationFeatures` values."""

import functools
import json
from pathlib import Path

from gpu_catalog.gpus import DATA_DIR

FEATURES_PATH = DATA_DIR / "cloud_features.json"

STORAGE_MOUNTING = "storage_mounting"
SPOT_INSTANCE = "spot_instance"
AUTODOWN = "autodown"


@functools.cache
def _table(path: Path = FEATURES_PATH) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def skypilot_version() -> str:
    """The SkyPilot release the table was generated from."""
    return _table()["skypilot_version"]


def known_cloud(provider: str) -> bool:
    return provider in _table()["clouds"]


def unsupported(provider: str, spot: bool) -> dict[str, str]:
    """{feature: SkyPilot's reason} for what `provider` cannot do; {} for a cloud SkyPilot does not know (then
    SkyPilot itself rejects the task at launch, and pre-flight says so first)."""
    modes = _table()["clouds"].get(provider)
    if modes is None:
        return {}
    return dict(modes["spot" if spot else "on_demand"])
