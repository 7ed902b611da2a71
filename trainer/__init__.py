"""The single-GPU trainer (LoRA, QLoRA, full): a job config in, metrics.json and an exit code out
(`python -m trainer JOB.yaml`). It imports nothing from orchestrator/, only gpu_catalog's pure lookups, so it runs
the same on this machine and on a cloud VM.
"""
