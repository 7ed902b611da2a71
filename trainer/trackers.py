"""Experiment trackers (`report_to`): the series steps.jsonl has (loss, learning rate, grad norm, tokens/s, step time,
peak memory, and eval loss when evaluated), sent where a team already looks. Each tracker's package is an optional
extra (`pip install "orch[tensorboard]"`, `"orch[wandb]"`), imported only when chosen.

W&B reads WANDB_API_KEY, WANDB_PROJECT, WANDB_ENTITY and WANDB_MODE itself; without a key or a login, and with no
mode set, the run is logged offline under the output folder (`wandb sync` uploads it later) rather than prompting.
"""

import dataclasses
import importlib.util
import os
from pathlib import Path

from gpu_catalog import checks

EXTRAS = {"tensorboard": "tensorboard", "wandb": "wandb"}


def missing_package(report_to: str) -> str | None:
    """The install line for a chosen tracker whose package is absent, else None."""
    package = EXTRAS.get(report_to)
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    return f"report_to {report_to} needs the {package} package: pip install \"orch[{package}]\""


class TensorBoard:
    def __init__(self, output_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(output_dir / "tensorboard"))

    def log(self, step: int, values: dict) -> None:
        for key, value in flat(values).items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class WandB:
    def __init__(self, config, output_dir: Path, resume: bool):
        import wandb

        logged_in = os.environ.get("WANDB_API_KEY") or (Path.home() / ".netrc").is_file()
        mode = os.environ.get("WANDB_MODE") or ("online" if logged_in else "offline")
        if mode == "offline" and not os.environ.get("WANDB_MODE"):
            print(checks.printable(f"W&B: no WANDB_API_KEY, logging offline under {output_dir / 'wandb'} "
                                 "(upload with `wandb sync`)"), flush=True)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "orch"), name=config.name, mode=mode,
                              dir=str(output_dir), config=dataclasses.asdict(config), resume="allow" if resume
                              else None, id=_run_id(output_dir))

    def log(self, step: int, values: dict) -> None:
        self.run.log(flat(values), step=step)

    def close(self) -> None:
        self.run.finish()


def flat(values: dict) -> dict[str, float]:
    """Scalars only: a nested dict (peak memory: allocated, reserved, process_rss) becomes key/sub; None is left out."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flat({f"{key}/{sub}": v for sub, v in value.items()}))
        elif value is not None:
            out[key] = value
    return out


def _run_id(output_dir: Path) -> str:
    """One W&B run per output folder, so a resumed run continues its own series."""
    path = output_dir / "wandb-run-id"
    if not path.is_file():
        import wandb

        path.write_text(wandb.util.generate_id())
    return path.read_text().strip()


class NoTracker:
    def log(self, step: int, values: dict) -> None:
        pass

    def close(self) -> None:
        pass


def open_tracker(config, output_dir: Path, resume: bool):
    if config.report_to == "tensorboard":
        return TensorBoard(output_dir)
    if config.report_to == "wandb":
        return WandB(config, output_dir, resume)
    return NoTracker()
