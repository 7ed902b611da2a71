"""Shared by the trainer tests: a tiny job written to a temporary folder, pointing at the data the repo ships."""

import json
from pathlib import Path

import yaml

from tests.conftest import REPO

TINY_DATA = REPO / "examples" / "data" / "tiny_instruct.jsonl"
BASE_JOB = {"model": "orch/tiny-llama", "dataset": str(TINY_DATA), "method": "lora", "seq_len": 128,
            "micro_batch": 4, "max_steps": 12, "learning_rate": 3e-3, "lora_r": 8, "eval_batches": 4,
            "eval_fraction": 0.05, "log_every": 100}


def write_job(folder: Path, **changes) -> Path:
    job = {**BASE_JOB, **changes}
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in job.items() if v is not None}))
    return path


def read_steps(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "steps.jsonl").read_text().splitlines()]


def hub_accepts(name: str) -> bool:
    """Whether huggingface_hub takes `name` for a repo id: what orch's own checks of hub names agree with."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True
