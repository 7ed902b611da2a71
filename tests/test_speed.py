import json

import pytest

from gpu_catalog.gpus import get_gpu
from gpu_catalog.models import get_model
from orchestrator.estimator.calibration import NO_CALIBRATION, load_calibration
from orchestrator.estimator.speed import efficiency, estimate_speed, flops_per_token
from trainer.config import JobConfig

MODEL = get_model("Llama-3.1-8B")
H100 = get_gpu("H100 SXM")


def job(method, seq_len, micro_batch, grad_ckpt, **settings) -> JobConfig:
    return JobConfig(model="-", method=method, seq_len=seq_len, micro_batch=micro_batch, grad_ckpt=grad_ckpt,
                     **settings)


def speed(gpu=H100, calibration=NO_CALIBRATION, **settings):
    values = dict(method="lora", seq_len=2048, micro_batch=2, grad_ckpt=False) | settings
    return estimate_speed(MODEL, job(**values), gpu, calibration)


def test_full_fine_tuning_costs_about_six_flops_per_parameter():
    hardware, model_flops = flops_per_token(MODEL, job("full", 2048, 1, grad_ckpt=False))
    assert hardware == model_flops
    # 6 FLOPs per matmul weight (the embedding lookup has none; an untied head is a matmul), plus causal attention
    # at 2 * layers * width * seq forward and twice that backward
    matmul_weights = MODEL.params - MODEL.embedding_params
    attention = 2 * MODEL.n_layers * MODEL.n_heads * MODEL.head_dim * 2048
    assert model_flops == pytest.approx(6 * matmul_weights + 3 * attention, rel=0.01)


def test_lora_skips_weight_gradients():
    full, _ = flops_per_token(MODEL, job("full", 2048, 1, grad_ckpt=False))
    lora, _ = flops_per_token(MODEL, job("lora", 2048, 1, grad_ckpt=False))
    assert lora == pytest.approx(full * 2 / 3, rel=0.05)


def test_checkpointing_adds_a_recompute_and_slows_training():
    hardware, model_flops = flops_per_token(MODEL, job("lora", 2048, 1, grad_ckpt=True))
    assert hardware > model_flops
    assert speed(grad_ckpt=True).tokens_per_s < speed(grad_ckpt=False).tokens_per_s


def test_qlora_is_slower_than_lora_on_the_same_gpu():
    assert speed(method="qlora").tokens_per_s < speed(method="lora").tokens_per_s


def test_faster_gpu_trains_faster():
    assert speed(gpu=get_gpu("RTX 4090")).tokens_per_s < speed(gpu=get_gpu("A100 80GB")).tokens_per_s < \
        speed().tokens_per_s


def test_defaults_are_flagged_analytic_and_calibration_is_flagged_measured(tmp_path, monkeypatch):
    assert speed().basis == "analytic"
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"efficiency": {"H100 SXM": {"lora": 0.3}}}))
    monkeypatch.setenv("ORCH_CALIBRATION", str(path))
    calibration = load_calibration()
    measured = speed(calibration=calibration)
    assert measured.basis == "measured"
    assert measured.efficiency == pytest.approx(efficiency(MODEL, job("lora", 2048, 2, False), 0.3, H100))
    assert measured.tokens_per_s < speed().tokens_per_s  # 0.3 is below the default 0.6 x 0.8 (Hopper)
    assert speed(method="qlora", calibration=calibration).basis == "analytic"  # only lora was measured


def test_estimated_mfu_stays_physical():
    for gpu in (H100, get_gpu("RTX 4090"), get_gpu("T4")):
        result = speed(gpu=gpu)
        peak_tflops = gpu.peak_tflops("bf16" if gpu.supports_bf16 else "fp16")
        achieved = result.tokens_per_s * result.flops_per_token / (peak_tflops * 1e12)
        assert 0.05 < achieved <= result.efficiency


def test_fp32_on_a_gpu_computes_at_its_cuda_cores_rate_not_its_tensor_rate():
    """An A100 trains fp32 matmuls at 19.5 TFLOPS (PyTorch leaves TF32 off), not bf16's 312: estimated at the
    tensor rate, `--precision fp32` was planned about 16x too fast."""
    a100 = get_gpu("A100 80GB")
    bf16, fp32 = (speed(gpu=a100, micro_batch=8, precision=p) for p in ("bf16", "fp32"))
    assert fp32.terms_s["compute"] / bf16.terms_s["compute"] == pytest.approx(312 / 19.5, rel=0.01)
    assert fp32.tokens_per_s < bf16.tokens_per_s / 8


def test_the_cpu_never_borrows_a_gpu_fit_and_its_width_does_not_idle_it():
    from gpu_catalog.gpus import cpu_gpu

    cpu, tiny = cpu_gpu(), get_model("orch/tiny-llama")
    published = load_calibration()  # the shipped fit from published GPU runs has per-method fallbacks
    assert published.method_efficiency and published.efficiency_for(cpu, "lora")[1] == "analytic"
    settings = job("lora", 256, 8, False)
    assert efficiency(tiny, settings, 0.35, cpu) > 3 * efficiency(tiny, settings, 0.35, H100)  # hidden 64 vs 1024
    assert estimate_speed(tiny, settings, cpu, published).basis == "analytic"


def test_frozen_lower_blocks_run_no_backward():
    """freeze_layers N: every block runs forward, only the upper ones backward (the untied head still needs both
    gradients); half the blocks frozen leaves their backward's 4 FLOPs per weight out, and training is faster."""
    half = MODEL.n_layers // 2
    full, _ = flops_per_token(MODEL, job("full", 2048, 1, grad_ckpt=False))
    frozen, _ = flops_per_token(MODEL, job("full", 2048, 1, grad_ckpt=False, freeze_layers=half))
    attention = 2 * MODEL.n_layers * MODEL.n_heads * MODEL.head_dim * 2048
    assert full - frozen == pytest.approx(2 * (2 * MODEL.block_linear_params + attention) / 2)
    assert speed(method="full", freeze_layers=half).tokens_per_s > speed(method="full").tokens_per_s
