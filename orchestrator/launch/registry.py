"""Which launcher serves a target: the one place that knows every implementation of launch/base.py's Launcher."""

import functools

from orchestrator.launch.base import Launcher
from orchestrator.runs.status import Target


@functools.cache
def launcher_for(target: Target) -> Launcher:
    """The launcher of a target, one per process (the local one keeps the handles of the trainers it started); sky
    is imported only for a cloud one."""
    if target is Target.LOCAL:
        from orchestrator.launch.local import LocalLauncher

        return LocalLauncher()
    from orchestrator.launch.skypilot import SkyPilotLauncher

    return SkyPilotLauncher()
