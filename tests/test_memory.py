import pytest

from gpu_catalog.gpus import cpu_gpu, get_gpu
from gpu_catalog.models import get_model
from orchestrator.estimator.calibration import Calibration
from orchestrator.estimator.fit import auto_fit
from orchestrator.estimator.memory import COMPONENTS, estimate_memory
from tests.conftest import make_gpu, make_model
from trainer.config import JobConfig

GPU = make_gpu(vram_gib=80)
MODEL = make_model()


def job(method, seq_len, micro_batch, grad_ckpt, **settings) -> JobConfig:
    """A job as the estimator reads it: every other key at the job's own default."""
    return JobConfig(model="-", method=method, seq_len=seq_len, micro_batch=micro_batch, grad_ckpt=grad_ckpt,
                     **settings)


def vram(model=MODEL, gpu=GPU, **settings) -> float:
    """With accumulation, so the step peaks with the activations and gradients together, whatever the method."""
    values = dict(method="lora", seq_len=2048, micro_batch=1, grad_ckpt=True, grad_accum=2) | settings
    return estimate_memory(model, job(**values), gpu).vram_gib


@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
@pytest.mark.parametrize("key, small, large", [("seq_len", 512, 4096), ("micro_batch", 1, 8)])
def test_grows_with_tokens(method, key, small, large):
    assert vram(method=method, **{key: small}) < vram(method=method, **{key: large})


def test_grows_with_lora_rank():
    assert vram(lora_r=8) < vram(lora_r=64) < vram(lora_r=256)


@pytest.mark.parametrize("grad_ckpt", [True, False])
def test_qlora_below_lora_below_full(grad_ckpt):
    assert vram(method="qlora", grad_ckpt=grad_ckpt) < vram(method="lora", grad_ckpt=grad_ckpt) < vram(
        method="full", grad_ckpt=grad_ckpt)


@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
def test_checkpointing_lowers_activations_only(method):
    on = estimate_memory(MODEL, job(method, 2048, 2, grad_ckpt=True, grad_accum=2), GPU).breakdown_gib
    off = estimate_memory(MODEL, job(method, 2048, 2, grad_ckpt=False, grad_accum=2), GPU).breakdown_gib
    assert on["activations"] < off["activations"] / 5
    assert on["weights"] == off["weights"] and on["logits"] == off["logits"]


@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
def test_breakdown_sums_to_the_total(method):
    memory = estimate_memory(MODEL, job(method, 1024, 2, grad_ckpt=False), GPU)
    assert tuple(memory.breakdown_gib) == COMPONENTS
    assert sum(memory.breakdown_gib.values()) == pytest.approx(memory.vram_gib)


def test_quantization_choices_order_the_weights():
    def weights(**kw):
        return estimate_memory(MODEL, job("qlora", 512, 1, True, **kw), GPU).breakdown_gib["weights"]

    assert weights(quant_bits=4, double_quant=True) < weights(quant_bits=4, double_quant=False) < weights(quant_bits=8)


def test_nf4_weights_of_an_8b_model():
    # 6.98 B block weights at 4.127 bits + 1.05 B embedding and head at 16 bits = 5.6 GB, i.e. about 5.2 GiB;
    # peft's fp32 upcast of embedding, head and norms adds 2 bytes each: 1.96 GiB
    def weights(upcast):
        settings = job("qlora", 512, 1, True, qlora_fp32_upcast=upcast)
        return estimate_memory(get_model("Llama-3.1-8B"), settings, GPU).breakdown_gib["weights"]

    assert weights(False) == pytest.approx(5.2, abs=0.3)
    assert weights(True) - weights(False) == pytest.approx(1.96, abs=0.02)


def test_8bit_optimizers_shrink_optimizer_state():
    def state(optimizer):
        settings = job("full", 512, 1, True, optimizer=optimizer)
        return estimate_memory(MODEL, settings, GPU).breakdown_gib["optimizer_state"]

    assert state("lion_8bit") < state("adamw_8bit") == state("paged_adamw_8bit") < state("adamw")
    assert state("adamw") == pytest.approx(2 * state("adamw_8bit"))  # two bf16 moments against two 8-bit ones


def test_lora_adapters_keep_fp32_optimizer_moments():
    memory = estimate_memory(MODEL, job("lora", 512, 1, True, grad_accum=2), GPU)
    assert memory.breakdown_gib["optimizer_state"] == pytest.approx(2 * memory.breakdown_gib["gradients"])


def test_eager_attention_adds_the_score_matrix():
    assert vram(attention="eager", grad_ckpt=False) > vram(attention="sdpa", grad_ckpt=False)


def test_full_fine_tuning_without_bf16_keeps_fp32_master_weights():
    fp16_card = make_gpu(supports_bf16=False, bf16_tflops=0)
    assert vram(method="full", gpu=fp16_card) > vram(method="full", gpu=GPU)
    assert vram(method="lora", gpu=fp16_card) == pytest.approx(vram(method="lora", gpu=GPU))


def test_large_vocabulary_logits_dominate_a_small_model():
    memory = estimate_memory(get_model("Qwen2.5-0.5B"), job("lora", 4096, 4, True), GPU)
    assert memory.breakdown_gib["logits"] > memory.breakdown_gib["activations"]


@pytest.mark.parametrize("vram_gib, published_max_seq", [(24, 5789), (80, 28454)])
def test_qlora_max_context_matches_published_measurements(vram_gib, published_max_seq):
    """Unsloth README: Llama-3.1-8B QLoRA, r=32, batch 1, HF + FlashAttention-2, longest sequence that fits."""
    model, gpu = get_model("Llama-3.1-8B"), make_gpu(vram_gib=vram_gib)
    fits = [s for s in range(1024, 40000, 256)
            if estimate_memory(model, job("qlora", s, 1, True, lora_r=32, lora_dropout=0.0, loss="full"),
                               gpu).vram_gib <= vram_gib]
    assert max(fits) == pytest.approx(published_max_seq, rel=0.1)


def test_auto_fit_keeps_effective_batch_and_prefers_no_checkpointing():
    settings = job("lora", 2048, micro_batch=8, grad_ckpt=False, grad_accum=2)
    fit = auto_fit(get_model("Llama-3.1-8B"), settings, get_gpu("H100"), Calibration(), 80)
    assert fit.fits and not fit.settings.grad_ckpt
    assert fit.settings.micro_batch * fit.settings.grad_accum == 16
    assert fit.memory.vram_gib <= 80


def test_auto_fit_turns_checkpointing_on_when_needed():
    settings = job("qlora", 2048, micro_batch=4, grad_ckpt=False, grad_accum=4)
    fit = auto_fit(get_model("Llama-3.1-8B"), settings, get_gpu("T4"), Calibration(), 16)
    assert fit.fits and fit.settings.grad_ckpt and fit.settings.micro_batch * fit.settings.grad_accum == 16


def test_auto_fit_says_why_nothing_fits():
    settings = job("full", 2048, micro_batch=4, grad_ckpt=False)
    fit = auto_fit(get_model("Llama-3.1-70B"), settings, get_gpu("RTX 4090"), Calibration(), 24)
    assert not fit.fits
    assert fit.reason.startswith("does not fit: needs") and "has 24.0 GiB" in fit.reason


SMALL = make_model(n_layers=2, hidden=64, n_heads=4, n_kv_heads=2, intermediate=128, vocab=1000)


@pytest.mark.parametrize("loss, logit_tokens", [("full", 512), ("chunked", 100)])
def test_breakdown_from_first_principles_on_a_small_shape(loss, logit_tokens):
    """Every static term counted by hand for a 2-layer shape, and the loss term per loss mode."""
    settings = job("lora", 256, 2, True, lora_r=4, loss=loss, loss_chunk_tokens=100, grad_accum=2)
    parts = estimate_memory(SMALL, settings, GPU).breakdown_gib
    gib = 2 ** 30
    # per layer: q (64->64), k and v (64->32 each: 2 kv heads of 16), o (64->64), gate/up (64->128), down (128->64)
    in_plus_out = (64 + 64) + 2 * (64 + 32) + (64 + 64) + 2 * (64 + 128) + (128 + 64)
    adapters = 2 * 4 * in_plus_out
    assert parts["weights"] * gib == pytest.approx(SMALL.params * 2 + adapters * 4)  # bf16 base, fp32 adapters
    assert parts["gradients"] * gib == pytest.approx(adapters * 4)
    assert parts["optimizer_state"] * gib == pytest.approx(adapters * 8)  # AdamW: two fp32 moments
    assert parts["logits"] * gib == pytest.approx(logit_tokens * 1000 * (2 + 12))  # bf16 logits + fp32 loss tensors
    assert parts["cuda_context"] == pytest.approx(0.75)


def test_gradients_meet_the_activations_only_when_they_accumulate():
    """zero_grad(set_to_none=True) leaves no gradient at the start of a step's first backward: with one micro-batch
    per step the adapters' gradients never count beside the activations; with two, the first one's stay."""
    def memory(grad_accum):
        return estimate_memory(SMALL, job("lora", 256, 2, False, lora_r=4, grad_accum=grad_accum), GPU)

    one, two = memory(1), memory(2)
    assert one.peak_phase == two.peak_phase == "backward_start"
    assert one.breakdown_gib["gradients"] == 0
    adapters = 2 * 4 * ((64 + 64) + 2 * (64 + 32) + (64 + 64) + 2 * (64 + 128) + (128 + 64))
    assert (two.vram_gib - one.vram_gib) * 2 ** 30 == pytest.approx(adapters * 4)


@pytest.mark.parametrize("tied, grad_accum, table_copies", [(False, 1, 0), (True, 1, 2), (False, 2, 1), (True, 2, 3)])
def test_a_short_full_fine_tune_peaks_at_the_end_of_the_backward(tied, grad_accum, table_copies):
    """Full fine-tuning on a few tokens: the gradients (as large as the weights) outweigh the activations, and the
    step peaks once every gradient exists, the activations freed. A tied embedding's gradient is there three times
    for a moment (the head's, the lookup's, their sum); an accumulated table's new gradient sits beside the old."""
    model = make_model(n_layers=2, hidden=64, n_heads=4, n_kv_heads=2, intermediate=128, vocab=1000,
                       tied_embeddings=tied)
    memory = estimate_memory(model, job("full", 4, 1, False, grad_accum=grad_accum, loss="full"), GPU)
    parts = memory.breakdown_gib
    assert memory.peak_phase == "backward_end"
    assert parts["activations"] == parts["logits"] == parts["allocator_slack"] == 0
    assert parts["gradients"] * 2 ** 30 == pytest.approx((model.params + table_copies * 1000 * 64) * 2)  # bf16


@pytest.mark.parametrize("tied", [False, True])
def test_frozen_lower_blocks_train_nothing_and_keep_no_activations(tied):
    """freeze_layers N freezes the embeddings (a tied head with them) and the lowest N blocks: their weights have no
    gradient or moments, and they save no activation, since nothing at or below them needs a gradient."""
    model = make_model(n_layers=4, hidden=64, n_heads=4, n_kv_heads=2, intermediate=128, vocab=1000,
                       tied_embeddings=tied)
    def memory(freeze):
        return estimate_memory(model, job("full", 256, 1, False, freeze_layers=freeze, grad_accum=2), GPU)

    block = sum(i * o for i, o in model.linear_shapes().values()) + 2 * 64  # linears and two norms
    free, frozen = memory(0), memory(3)
    assert free.trainable_params - frozen.trainable_params == 1000 * 64 + 3 * block
    assert frozen.breakdown_gib["optimizer_state"] == pytest.approx(2 * frozen.breakdown_gib["gradients"])
    per_layer = (free.breakdown_gib["activations"] - memory(1).breakdown_gib["activations"]) * 2 ** 30
    assert per_layer > 0
    assert (free.breakdown_gib["activations"] - frozen.breakdown_gib["activations"]) * 2 ** 30 == pytest.approx(
        3 * per_layer)
    # a tied head freezes with the embeddings: no head gradient in the chunked loss, no tied sum at the end
    assert (frozen.breakdown_gib["logits"] < free.breakdown_gib["logits"]) == tied


def test_the_precision_the_trainer_resolves_sets_the_bytes():
    """auto is bf16 on a bf16 card and fp16 on an older one; fp16 full fine-tuning keeps fp32 master weights (with
    fp32 gradients and moments), and fp32 makes the activations 4 bytes too."""
    fp16_card = make_gpu(supports_bf16=False, bf16_tflops=0)

    def parts(gpu=GPU, **settings):
        return estimate_memory(SMALL, job("full", 256, 1, False, grad_accum=2, **settings), gpu).breakdown_gib

    assert parts() == parts(precision="bf16") and parts(fp16_card) == parts(fp16_card, precision="fp16")
    half, fp16, fp32 = parts(precision="bf16"), parts(precision="fp16"), parts(precision="fp32")
    for part in ("weights", "gradients", "optimizer_state"):
        assert fp16[part] == pytest.approx(2 * half[part]) and fp32[part] == pytest.approx(fp16[part])
    assert fp16["activations"] == half["activations"] < fp32["activations"]


def test_a_long_full_fine_tune_peaks_as_the_backward_starts_without_its_gradients():
    settings = job("full", 4096, 2, False)
    memory = estimate_memory(MODEL, settings, GPU)
    accumulated = estimate_memory(MODEL, job("full", 4096, 2, False, grad_accum=4), GPU)
    assert memory.peak_phase == "backward_start" and memory.breakdown_gib["gradients"] == 0
    assert (accumulated.vram_gib - memory.vram_gib) * 2 ** 30 == pytest.approx(MODEL.params * 2)


def test_compile_recomputes_pointwise_results_instead_of_keeping_them():
    """Full fine-tuning without checkpointing, per layer per token: compiled, the two norms keep their 16-bit inputs
    instead of fp32 copies (2 x h x 2 bytes less), silu(gate) is not kept (i x 2), and the norm outputs and the
    gate-up product the weight gradients read are recomputed ((2h + i) x 2)."""
    eager, compiled = (estimate_memory(MODEL, job("full", 1024, 2, False, compile=c, grad_accum=2), GPU).breakdown_gib[
        "activations"] for c in (False, True))
    h, i = MODEL.hidden, MODEL.intermediate
    per_token_layer = 2 * h * (4 - 2) + i * 2 + (2 * h + i) * 2
    assert (eager - compiled) * 2 ** 30 == pytest.approx(MODEL.n_layers * 2048 * per_token_layer)


def test_dropout_adds_a_mask_per_targeted_input_on_a_gpu_and_a_copy_on_the_cpu():
    """On a GPU every adapted module keeps its own bf16 copy of its input either way (peft's fp32 adapters under
    autocast), so dropout adds CUDA's 1-byte mask; in the CPU's fp32 run the adapters share their inputs until
    dropout gives each its own dropped-out copy and a float noise mask."""

    def activations(dropout, gpu=GPU):
        return estimate_memory(SMALL, job("lora", 256, 1, False, lora_dropout=dropout), gpu).breakdown_gib[
            "activations"] * 2 ** 30

    inputs = 64 * 6 + 128  # q, k, v, o, gate, up read a 64-wide input, down the 128-wide one
    assert activations(0.1) - activations(0.0) == pytest.approx(2 * 256 * inputs * 1)  # 2 layers
    shared = 64 + 64 + 64 + 128  # without dropout: the attention norm's output, o's, the MLP norm's, down's input
    cpu_gap = activations(0.1, cpu_gpu()) - activations(0.0, cpu_gpu())
    assert cpu_gap == pytest.approx(2 * 256 * (inputs * (4 + 4) - shared * 4))


def test_fused_loss_holds_less_than_chunked_and_falls_back_on_the_cpu():

    def logits(loss, gpu=GPU):
        return estimate_memory(MODEL, job("lora", 4096, 2, True, loss=loss), gpu).breakdown_gib["logits"]

    assert logits("fused") < logits("chunked") < logits("full")
    assert logits("fused", cpu_gpu()) == logits("chunked", cpu_gpu())


def test_fits_keeps_headroom():
    from orchestrator.estimator.memory import FIT_HEADROOM_FRACTION, usable_vram_gib

    assert usable_vram_gib(make_gpu(vram_gib=24)) == pytest.approx(24 * (1 - FIT_HEADROOM_FRACTION))
    assert 0 < FIT_HEADROOM_FRACTION < 0.1


def test_fp32_upcast_makes_the_residual_stream_and_the_head_copy_count_on_a_gpu():
    """prepare_model_for_kbit_training leaves embeddings, norms and lm_head in fp32: under autocast the checkpointed
    layer inputs are fp32 (+2 bytes each; the final norm keeps an fp32 upcast either way), and the lm_head matmul
    saves autocast's bf16
    copy of the fp32 head weight (vocab x hidden x 2 bytes). The 2-layer shape's loss outweighs one layer's
    recompute, so nothing else moves."""
    def parts(upcast, gpu=GPU):
        settings = job("qlora", 256, 2, True, lora_r=4, lora_dropout=0.0, loss="full", qlora_fp32_upcast=upcast)
        return estimate_memory(SMALL, settings, gpu).breakdown_gib

    gib, tokens = 2 ** 30, 512
    on, off = parts(True), parts(False)
    assert (on["activations"] - off["activations"]) * gib == pytest.approx(2 * 64 * 2 * tokens)  # 2 layer inputs
    assert (on["logits"] - off["logits"]) * gib == pytest.approx(1000 * 64 * 2)

    cpu_on, cpu_off = parts(True, cpu_gpu()), parts(False, cpu_gpu())  # fp32 everywhere already: no difference
    assert cpu_on["activations"] == pytest.approx(cpu_off["activations"])
    assert cpu_on["logits"] == pytest.approx(cpu_off["logits"])


def test_a_checkpointed_layer_recompute_counts_only_beyond_the_loss_peak():
    """With checkpointing the one-layer recompute starts after the loss's backward has freed the logits: a tiny
    vocabulary lets the layer dominate (its excess over the loss counts), a large one hides it entirely."""
    def activations(vocab):
        model = make_model(n_layers=2, hidden=64, n_heads=4, n_kv_heads=2, intermediate=128, vocab=vocab)
        return estimate_memory(model, job("lora", 256, 1, True, lora_r=4, loss="full"), GPU).breakdown_gib[
            "activations"] * 2 ** 30

    # two bf16 layer inputs, the final norm's fp32 upcast, the head's input; and sdpa's shared bf16 256 x 256 mask
    kept = (2 * 64 * 2 + 64 * (4 + 2)) * 256 + 256 * 256 * 2
    assert activations(100_000) == pytest.approx(kept)
    assert activations(2) > kept


def test_the_fp32_residual_and_head_copy_premises_hold_in_transformers():
    """The premises of the fp32-upcast terms, on a tiny random Llama under bf16 autocast (CPU autocast has CUDA's cast
    policy for linears): with embeddings, norms and lm_head in fp32 (what prepare_model_for_kbit_training leaves)
    every decoder layer's input is fp32, and the lm_head matmul saves a bf16 vocab x hidden copy of its weight."""
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)

    def run(upcast: bool) -> tuple[set, bool]:
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).to(torch.bfloat16)
        for p in model.parameters():
            p.requires_grad_(False)
            if upcast and (p.ndim == 1 or p.shape[0] == config.vocab_size):  # norms, embeddings, lm_head
                p.data = p.data.float()
        model.get_input_embeddings().register_forward_hook(lambda m, a, out: out.requires_grad_())
        dtypes, saved = set(), []
        for layer in model.model.layers:
            layer.register_forward_pre_hook(lambda m, a, k: dtypes.add((a or (k["hidden_states"],))[0].dtype),
                                            with_kwargs=True)
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(
                lambda t: saved.append(t) or t, lambda t: t):
            model(torch.randint(0, 64, (1, 8)))
        weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
        head_copy = any(t.numel() == config.vocab_size * config.hidden_size and t.dtype == torch.bfloat16
                        and t.untyped_storage().data_ptr() not in weights for t in saved)
        return dtypes, head_copy

    assert run(upcast=True) == ({torch.float32}, True)
    assert run(upcast=False) == ({torch.bfloat16}, False)



def saved_activation_bytes(torch, model, tokens: int, autocast: bool, documents: int = 2) -> int:
    """Bytes of every tensor autograd saves in one forward of `tokens` tokens (weights left out): what the backward
    will need, the quantity the estimator's activation term counts. As in the trainer: `documents` packed into the
    sequence, their positions restarting, and the trainer's shared SDPA mask."""
    from trainer.attention_mask import share_sdpa_masks

    share_sdpa_masks()
    model.get_input_embeddings().register_forward_hook(lambda m, a, out: out.requires_grad_())
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast), \
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        positions = torch.arange(tokens) % -(-tokens // documents)
        model(input_ids=torch.randint(0, 500, (1, tokens)), position_ids=positions[None], use_cache=False)
    return sum(saved.values())

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.mark.parametrize("run, targets, dropout", [
    ("fp32", ("q_proj", "v_proj"), 0.05),
    ("fp32", ALL_LINEAR, 0.0),
    ("bf16", ("q_proj", "v_proj"), 0.0),
    ("bf16", ALL_LINEAR, 0.05),
    ("autocast", ("q_proj", "v_proj"), 0.0),
    ("autocast", ALL_LINEAR, 0.0),
])
def test_a_layers_activations_match_what_transformers_and_peft_save(run, targets, dropout):
    """The per-layer count against the bytes autograd really saves for one decoder layer of a tiny transformers Llama
    with peft's LoRA: an fp32 run (the CPU trainer), a bf16 run without autocast (the CPU trainer in precision bf16:
    each adapter casts its input to its fp32 weights, a copy apiece), and a bf16-autocast run with fp32 adapters (a
    GPU run's semantics; dropout off, as the CPU's dropout keeps a float mask where CUDA keeps a bool one). 256
    tokens, so the per-layer constants (autocast's bf16 copies of the fp32 adapter weights, the attention's
    log-sum-exp) stay small."""
    torch = pytest.importorskip("torch")
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from orchestrator.estimator.memory import _layer_bytes_per_token

    hidden, intermediate, tokens = 256, 688, 256

    def saved_bytes(layers: int) -> int:
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=500, hidden_size=hidden, intermediate_size=intermediate,
                             num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                             attn_implementation="sdpa")
        model = LlamaForCausalLM(config).to(torch.float32 if run == "fp32" else torch.bfloat16).requires_grad_(False)
        model = get_peft_model(model, LoraConfig(r=8, lora_dropout=dropout, target_modules=list(targets)))
        return saved_activation_bytes(torch, model, tokens, autocast=run == "autocast")

    measured = (saved_bytes(3) - saved_bytes(2)) / tokens
    shape = make_model(n_layers=3, hidden=hidden, n_heads=4, n_kv_heads=2, intermediate=intermediate, vocab=500)
    settings = job("lora", tokens, 1, False, lora_r=8, lora_dropout=dropout, target_modules=targets,
                   precision="bf16" if run == "bf16" else "auto")
    device = GPU if run == "autocast" else cpu_gpu()
    assert _layer_bytes_per_token(shape, settings, device) == pytest.approx(measured, rel=0.08)


@pytest.mark.parametrize("upcast", [True, False])
def test_a_qlora_layers_activations_match_what_bitsandbytes_and_peft_save(tmp_path, upcast):
    """The same check for QLoRA: a tiny Llama loaded in 4-bit NF4 by transformers + bitsandbytes (CPU), with and
    without prepare_model_for_kbit_training's fp32 upcast, every linear adapted, bf16 autocast. With the upcast the
    norms and MLP run in fp32 (bitsandbytes returns a 4-bit linear's output in its input's dtype)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("bitsandbytes")
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    from orchestrator.estimator.memory import _layer_bytes_per_token

    hidden, intermediate, tokens, targets = 256, 688, 256, ALL_LINEAR

    def saved_bytes(layers: int) -> int:
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=500, hidden_size=hidden, intermediate_size=intermediate,
                             num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                             attn_implementation="sdpa")
        LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(tmp_path / str(layers))
        nf4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
        model = LlamaForCausalLM.from_pretrained(tmp_path / str(layers), quantization_config=nf4, dtype=torch.bfloat16,
                                                 device_map={"": "cpu"})
        for module in model.modules():  # known-issues.md: keep the autograd path on CPUs with AVX512-BF16
            if hasattr(module, "support_avx512bf16_for_cpu"):
                module.support_avx512bf16_for_cpu = False
        if upcast:
            prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        else:
            model.requires_grad_(False)
        model = get_peft_model(model, LoraConfig(r=8, lora_dropout=0.0, target_modules=list(targets)))
        return saved_activation_bytes(torch, model, tokens, autocast=True)

    measured = (saved_bytes(3) - saved_bytes(2)) / tokens
    shape = make_model(n_layers=3, hidden=hidden, n_heads=4, n_kv_heads=2, intermediate=intermediate, vocab=500)
    settings = job("qlora", tokens, 1, False, lora_r=8, lora_dropout=0.0, target_modules=targets,
                   qlora_fp32_upcast=upcast)
    assert _layer_bytes_per_token(shape, settings, GPU) == pytest.approx(measured, rel=0.05)  # bf16 autocast


def test_packed_documents_keep_one_mask_for_every_layer_and_repeated_kv():
    """The premises of the sdpa terms, measured: with positions restarting (packed documents), transformers' sdpa
    repeats grouped k and v to every head and takes a seq x seq mask; the trainer's additive mask is one tensor that
    every layer keeps. Against one unmasked document, autograd keeps exactly what the estimator adds for sdpa over
    flash_attention_2 (which takes grouped heads and positions as they are)."""
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, tokens, layers = 128, 256, 2

    def saved_bytes(documents: int) -> int:
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=500, hidden_size=hidden, intermediate_size=256, num_hidden_layers=layers,
                             num_attention_heads=4, num_key_value_heads=2, attn_implementation="sdpa")
        model = LlamaForCausalLM(config).requires_grad_(False)
        return saved_activation_bytes(torch, model, tokens, autocast=False, documents=documents)

    def activations(attention: str) -> float:
        shape = make_model(n_layers=layers, hidden=hidden, n_heads=4, n_kv_heads=2, intermediate=256, vocab=500)
        settings = job("lora", tokens, 1, False, attention=attention)
        return estimate_memory(shape, settings, cpu_gpu()).breakdown_gib["activations"] * 2 ** 30

    repeated_kv = layers * 2 * (hidden - hidden // 2) * 4 * tokens  # fp32 on the CPU
    assert saved_bytes(2) - saved_bytes(1) == tokens * tokens * 4 + repeated_kv  # one mask, not one per layer
    assert activations("sdpa") - activations("flash_attention_2") == pytest.approx(tokens * tokens * 4 + repeated_kv)
