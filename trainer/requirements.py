"""What stops a job before training on this machine, known without torch: a package its settings need that is not
installed, or a budget stop given half. The trainer checks it before any work, and a sweep before it starts a
process for each of its points (which would each fail the same way, said only as `error` in a table)."""

import importlib.util

from trainer.config import JobConfig
from trainer.trackers import missing_package


def run_problems(config: JobConfig, on_cuda: bool) -> list[str]:
    """Each problem as a sentence for a bad-config error; `on_cuda`: the run would train on a CUDA GPU."""
    problems = []
    if (config.method == "qlora" or config.optimizer.endswith("8bit")) and not importlib.util.find_spec(
            "bitsandbytes"):
        problems.append("method qlora and the 8-bit optimizers need bitsandbytes: pip install bitsandbytes")
    if config.optimizer == "adamw_cpu_offload" and on_cuda and not importlib.util.find_spec("torchao"):
        problems.append("optimizer adamw_cpu_offload needs torchao: pip install \"orch[offload]\"")
    if tracker_problem := missing_package(config.report_to):
        problems.append(tracker_problem)
    if config.attention == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        problems.append("attention flash_attention_2 needs the flash-attn package (and a GPU): pip install "
                        "flash-attn, or use attention: sdpa")
    return problems
