"""What orch's launchers (local and cloud) tell a trainer process through its environment, in one place both sides
import: the trainer must not import the orchestrator, and the launchers must not import the trainer's entry point."""

import re

RUN_ID_ENV = "ORCH_RUN_ID"  # the run this process trains a session of
RUN_ID = re.compile(r"r-[0-9a-f]{8}")  # orch's run ids (orchestrator/runs/store.py makes them)
