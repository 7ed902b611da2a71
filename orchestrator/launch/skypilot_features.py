"""Writes gpu_catalog/data/cloud_features.json: what each cloud cannot do, as the installed SkyPilot's own cloud
classes say (`_unsupported_features_for_resources`, which `check_features_are_supported` consults at launch), for
an on-demand and a spot resource. The planner reads the file, so `orch plan` never imports sky; a test regenerates
it from the installed SkyPilot and compares, so it is never kept by hand.

    python -m orchestrator.launch.skypilot_features      # after upgrading SkyPilot
"""

import json
import sys
from pathlib import Path

from gpu_catalog.cloud_features import FEATURES_PATH


def unsupported_features() -> dict:
    """{cloud: {"on_demand": {feature: reason}, "spot": {feature: reason}}} for every cloud SkyPilot registers.
    Clouds whose resources need optional dependencies to build (Kubernetes, SSH node pools) fall back to their
    class-level map, which is what the resource-specific one starts from."""
    from sky.utils import registry

    from orchestrator.launch.sky_server import import_sky

    sky = import_sky()

    clouds = {}
    for name in sorted(registry.CLOUD_REGISTRY):
        cloud = registry.CLOUD_REGISTRY.from_str(name)
        modes = {}
        for mode, spot in (("on_demand", False), ("spot", True)):
            try:
                features = cloud._unsupported_features_for_resources(sky.Resources(cloud=cloud, use_spot=spot))
            except ImportError:
                features = cloud._CLOUD_UNSUPPORTED_FEATURES
            modes[mode] = {feature.value: " ".join(str(reason).split()) for feature, reason in
                           sorted(features.items(), key=lambda item: item[0].value)}
        clouds[name] = modes
    return {"skypilot_version": sky.__version__, "generated_by": "python -m orchestrator.launch.skypilot_features",
            "clouds": clouds}


def main() -> int:
    text = json.dumps(unsupported_features(), indent=1, sort_keys=True) + "\n"
    Path(FEATURES_PATH).write_text(text, encoding="utf-8")
    print(f"wrote {FEATURES_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
