import re

import pytest
from typer.testing import CliRunner

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import closest_variant, find_gpu, get_gpu, gpu_from_device_name, load_gpus
from gpu_catalog.names import normalize
from orchestrator.cli.main import app
from orchestrator.estimator.memory import precision
from trainer.config import JobConfig

REQUIRED = ["RTX 3060 12GB", "RTX 3090", "RTX 4060 Ti 16GB", "RTX 4090", "RTX 5090", "RTX A6000", "RTX 6000 Ada", "T4",
            "L4", "A10G", "L40S", "V100 16GB", "V100 32GB", "A100 40GB", "A100 80GB", "H100 SXM", "H100 PCIe", "H200",
            "B200"]


def test_every_required_gpu_is_in_the_catalog():
    names = {g.name for g in load_gpus()}
    assert set(REQUIRED) <= names


def test_every_row_has_a_source_date_and_positive_specs():
    for gpu in load_gpus():
        assert gpu.source and gpu.as_of, gpu.name
        assert gpu.vram_gib > 0 and gpu.mem_bw_gbps > 0 and gpu.tdp_w > 0, gpu.name
        assert 0 < gpu.fp32_tflops < gpu.fp16_tflops, gpu.name  # CUDA cores: below the tensor rate on every card
        assert gpu.supports_bf16 == (gpu.bf16_tflops > 0), gpu.name


def test_names_and_aliases_are_unique_after_normalisation():
    seen = {}
    for gpu in load_gpus():
        for spelling in (gpu.name, *gpu.aliases):
            key = normalize(spelling)
            assert seen.setdefault(key, gpu.name) == gpu.name, f"{spelling} names both {seen[key]} and {gpu.name}"


def test_consumer_cards_have_a_price():
    for gpu in load_gpus():
        if gpu.kind in ("consumer", "workstation"):
            assert gpu.street_price_usd and gpu.street_price_usd > 0, gpu.name


@pytest.mark.parametrize("spelling, expected", [
    ("A100-80GB", "A100 80GB"), ("a100 80g", "A100 80GB"), ("H100", "H100 SXM"), ("RTX4090", "RTX 4090"),
    ("NVIDIA GeForce RTX 4090", "RTX 4090"), ("l40s", "L40S"), ("V100-32GB", "V100 32GB"), ("A6000", "RTX A6000"),
])
def test_lookup_accepts_common_spellings(spelling, expected):
    assert get_gpu(spelling).name == expected


def test_a_miss_suggests_near_names():
    with pytest.raises(UserError, match="Did you mean: .*RTX 4090"):
        get_gpu("RTX 4070")  # not in the catalog (the RTX 4080 is now)


# Cards users name that the catalog lacked (`orch estimate --gpu "RTX 4080"` exited 2), and the spellings NVML and
# clouds use for cards it had: each resolves to the row named, with positive specs.
ADDED_NAMES = [
    ("A40", "A40"), ("L40", "L40"), ("RTX A5000", "RTX A5000"), ("A5000", "RTX A5000"), ("RTX A4000", "RTX A4000"),
    ("A4000", "RTX A4000"), ("RTX 4080", "RTX 4080"), ("RTX 4080 16GB", "RTX 4080"),
    ("NVIDIA GeForce RTX 4080", "RTX 4080"), ("RTX 4080 SUPER", "RTX 4080 SUPER"), ("RTX4080S", "RTX 4080 SUPER"),
    ("RTX 4070 Ti SUPER", "RTX 4070 Ti SUPER"), ("RTX 4070 Ti SUPER 16GB", "RTX 4070 Ti SUPER"),
    ("RTX 3090 Ti", "RTX 3090 Ti"), ("NVIDIA GeForce RTX 3090 Ti", "RTX 3090 Ti"), ("RTX 3080", "RTX 3080 10GB"),
    ("RTX 3080 10GB", "RTX 3080 10GB"), ("RTX 2080 Ti", "RTX 2080 Ti"), ("Titan RTX", "Titan RTX"),
    ("NVIDIA TITAN RTX", "Titan RTX"), ("A30", "A30"), ("RTX 5080", "RTX 5080"), ("A100 80GB PCIe", "A100 80GB PCIe"),
    ("A100-PCIE-80GB", "A100 80GB PCIe"), ("H100 80GB HBM3", "H100 SXM"), ("H100-SXM5-80GB", "H100 SXM"),
    ("NVIDIA L40S", "L40S"), ("A100-SXM4-40GB", "A100 40GB"),
]


@pytest.mark.parametrize("spelling, expected", ADDED_NAMES)
def test_added_cards_and_spellings_resolve_to_rows_with_positive_specs(spelling, expected):
    gpu = get_gpu(spelling)
    assert gpu.name == expected
    assert gpu.vram_gib > 0 and gpu.mem_bw_gbps > 0 and gpu.fp16_tflops > 0 and gpu.tdp_w > 0


def test_turing_cards_have_no_bf16_and_train_at_their_fp16_rate():
    for name in ("RTX 2080 Ti", "Titan RTX"):
        gpu = get_gpu(name)
        assert gpu.compute_capability == "7.5" and not gpu.supports_bf16 and gpu.bf16_tflops == 0, name
        assert precision(JobConfig(model="m", method="lora", seq_len=512), gpu) == "fp16"
        assert gpu.peak_tflops("fp16") == gpu.fp16_tflops > 0, name


def test_a100_pcie_is_its_own_row_as_h100_pcie_is():
    """The PCIe A100 80GB has less bandwidth than the SXM one (1935 vs 2039 GB/s); a cloud's bare `A100` with 80 GB
    is still the SXM card, as before the PCIe row."""
    assert get_gpu("A100 80GB PCIe").mem_bw_gbps < get_gpu("A100 80GB").mem_bw_gbps
    assert closest_variant(get_gpu("A100"), 80).name == "A100 80GB"
    assert closest_variant(get_gpu("A100 80GB PCIe"), 80).name == "A100 80GB PCIe"


def test_turing_rtx6000_is_not_mistaken_for_the_ada_card():
    assert find_gpu("RTX6000") is None


def test_closest_variant_picks_by_memory():
    assert closest_variant(get_gpu("A100"), 80).name == "A100 80GB"
    assert closest_variant(get_gpu("V100"), 31.5).name == "V100 32GB"


def test_dense_rates_not_sparse_for_known_cards():
    # the reference figures: RTX 4090 165.2 (not 330 or 1171), H100 SXM 989 (not 1979)
    assert get_gpu("RTX 4090").bf16_tflops == pytest.approx(165.2)
    assert get_gpu("H100 SXM").bf16_tflops == pytest.approx(989)
    # GeForce cards at the FP32-accumulate rate NVIDIA's whitepapers give, not the FP16-accumulate or sparse one
    assert get_gpu("RTX 4080").bf16_tflops == pytest.approx(97.5)
    assert get_gpu("RTX 3090 Ti").bf16_tflops == pytest.approx(80)


@pytest.mark.parametrize(("device_name", "vram_gib", "expected"), [
    ("NVIDIA GeForce RTX 4080 Laptop GPU", 11.6, None), ("NVIDIA RTX A4000 Laptop GPU", 7.8, None),
    ("NVIDIA GeForce RTX 3080 Ti", 12.0, None),  # other cards than their namesakes: unknown, not the desktop row
    ("NVIDIA GeForce RTX 4080 SUPER", 16.0, "RTX 4080 SUPER"), ("NVIDIA H100 80GB HBM3", 79.6, "H100 SXM"),
    ("Tesla V100-SXM2-32GB", 32.0, "V100 32GB"),
])
def test_a_device_name_matches_its_own_card_never_a_namesake(device_name, vram_gib, expected):
    gpu = gpu_from_device_name(device_name, vram_gib)
    assert (gpu.name if gpu else None) == expected


@pytest.mark.parametrize("spelling, expected", [
    ("A100 40GB PCIe", "A100 40GB PCIe"), ("NVIDIA A100-PCIE-40GB", "A100 40GB PCIe"), ("RTX 4090 24GB", "RTX 4090"),
    ("RTX 3090 (24GB)", "RTX 3090"), ("T4 16GB", "T4"), ("Tesla V100-SXM2-32GB", "V100 32GB"),
    ("H100 80GB PCIe", "H100 PCIe"), ("H100-PCIE-80GB", "H100 PCIe"), ("A100-SXM-80GB", "A100 80GB"),
    ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada"),
    ("Tesla V100-DGXS-32GB", "V100 32GB")])  # nvidia-smi's name of a DGX Station's V100 (SXM2) was refused
def test_a_typed_name_longer_than_a_catalog_name_is_its_card(spelling, expected):
    """A published table's `A100 40GB PCIe` or `RTX 4090 24GB`, or nvidia-smi's name, was an unknown GPU to --gpu
    while the machine's own detection (gpu_from_device_name) read it."""
    assert get_gpu(spelling).name == expected


@pytest.mark.parametrize("spelling, hint", [
    ("RTX 4090 48GB", ""), ("RTX 4060 Ti 8GB", ""), ("RTX 4080 Laptop GPU", ""), ("A100-90", ""),
    ("H200 NVL", ""), ("V100-PCIE-16GB", ""),  # a form the catalog has no row of: not the SXM card's rates
    ("2x A1000", "Name one GPU"), ("A1000:8", "Name one GPU"),  # a count beside no card
    ("RTX 4090 (48 GB)", ""), ("RTX 4090 48 GB", "")])  # memory with a space must still be the card's own
def test_a_longer_name_of_another_card_or_a_count_stays_unknown(spelling, hint):
    with pytest.raises(UserError, match=f"unknown GPU '{re.escape(spelling)}'.*{hint}"):
        get_gpu(spelling)


# nvidia-smi's name of a form or size the catalog has no row of was refused with 'did you mean: H100 NVL, H200, B200',
# which reads as a typo; the user is told which rows of that card the catalog has
@pytest.mark.parametrize("spelling, rows", [
    ("NVIDIA H200 NVL", "The catalog has no NVL H200: its H200 rows are H200 (SXM, 140.4 GiB); name one of those."),
    ("Tesla V100-PCIE-16GB", "The catalog has no 16 GB PCIe V100: its V100 rows are V100 16GB (SXM, 16 GiB), "
                             "V100 32GB (SXM, 31.72 GiB); name one of those."),
    ("Tesla V100-FHHL-16GB", "The catalog has no 16 GB PCIe V100"),  # the half-length PCIe card
    ("RTX 4090 48GB", "The catalog has no 48 GB RTX 4090: its RTX 4090 rows are RTX 4090 (23.99 GiB)"),
    ("A100 40GB 80GB", "It states 40 GB and 80 GB: give one of them."),  # was read as the 40 GB card, unsaid
    ("A100-SXM4-80GB 40GB", "It states 80 GB and 40 GB: give one of them.")])
def test_a_device_name_of_a_form_the_catalog_lacks_says_which_rows_exist(spelling, rows):
    with pytest.raises(UserError, match=f"unknown GPU '{re.escape(spelling)}'.*{re.escape(rows)}"):
        get_gpu(spelling)


@pytest.mark.parametrize("spelling, expected", [("A40 PCIe 48GB", "A40"), ("L40S PCIe", "L40S"), ("T4 PCIe", "T4"),
                                                ("RTX 4090 PCIe", "RTX 4090"), ("NVIDIA A100-SXM4-80GB", "A100 80GB")])
def test_a_pcie_board_named_with_its_form_is_that_card(spelling, expected):
    """Every row without a form word counted as SXM: `A40 PCIe` was refused, told the A40 was an SXM card."""
    assert get_gpu(spelling).name == expected


def test_estimate_names_the_rows_of_a_card_whose_form_the_catalog_lacks_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["estimate", "Llama-3.2-1B", "--gpu", "NVIDIA H200 NVL", "--json"])
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "its H200 rows are H200 (SXM, 140.4 GiB)" in lines[0], \
        result.output


# Published tables put the GPU count beside the name (LitGPT's `1xA10G`, `4xA10G`): a count of one is the card, where
# `1xA10G` and `A100:1` were unknown GPUs
@pytest.mark.parametrize("spelling, expected", [
    ("1xA10G", "A10G"), ("1x A100 80GB", "A100 80GB"), ("1x L4", "L4"), ("1xH100", "H100 SXM"),
    ("A100:1", "A100 40GB"), ("1 x H100", "H100 SXM"), ("A10G x 1", "A10G"), ("1×L40S", "L40S"),
    ("1x RTX 4090 (24 GB)", "RTX 4090")])
def test_a_count_of_one_beside_a_name_is_that_card(spelling, expected):
    assert get_gpu(spelling).name == expected


@pytest.mark.parametrize("spelling", ["١xA100", "𝟙xA100", "٢x A100", "RTX ٤٠٩٠"])
def test_a_name_with_digits_other_than_0_to_9_is_refused(spelling):
    """`١xA100` (an Arabic-Indic one) was one A100 and `٢xA100` two, where every number orch reads elsewhere is
    refused in such digits."""
    with pytest.raises(UserError, match=f"the GPU name '{spelling}' writes a number in other digits than 0-9: write "
                                        "it with the digits 0-9"):
        get_gpu(spelling)


# A count above one was refused in some forms and silently read as one card in others (`A100 80GB x8`, `RTX 4090 x2`)
MANY_GPUS = [("8xH100", 8, "H100 SXM"), ("4xA10G", 4, "A10G"), ("2x A100", 2, "A100 40GB"), ("A100:8", 8, "A100 40GB"),
             ("A10G x 4", 4, "A10G"), ("A100 80GB x8", 8, "A100 80GB"), ("RTX 4090 x2", 2, "RTX 4090"),
             ("2 x 4090", 2, "RTX 4090"), ("8×H100", 8, "H100 SXM"),
             # a count in brackets or glued to the number was dropped as a stray word: one card, silently
             ("rtx 4090 (x2)", 2, "RTX 4090"), ("RTX 4090 (2x)", 2, "RTX 4090"), ("4090x2", 2, "RTX 4090"),
             ("(2x) L4", 2, "L4")]


@pytest.mark.parametrize("spelling, count, card", MANY_GPUS)
def test_a_count_above_one_is_refused_and_names_the_one_card(spelling, count, card):
    message = f"'{re.escape(spelling)}' is {count} GPUs: orch plans and estimates a job on a single card; name one, " \
              f"e.g. '{card}'"
    with pytest.raises(UserError, match=message):
        get_gpu(spelling)


@pytest.mark.parametrize("spelling", [s for s, _, _ in MANY_GPUS])
def test_estimate_refuses_a_gpu_count_in_one_line_with_exit_2(spelling, tmp_path, monkeypatch):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["estimate", "Llama-3.1-8B", "--gpu", spelling, "--json"])
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "GPUs: orch plans and estimates a job on a single card" \
        in lines[0], result.output


@pytest.mark.parametrize("spelling", ["1xA10G", "A100:1", "RTX 4090 (24 GB)"])
def test_estimate_takes_a_count_of_one_or_a_spaced_memory_size(spelling, tmp_path, monkeypatch):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["estimate", "Llama-3.1-8B", "--gpu", spelling, "--json"])
    assert result.exit_code == 0, result.output


# `RTX 4090 (24 GB)`: the memory's number, a word of its own, made the name no card's while `(24GB)` worked
@pytest.mark.parametrize("spelling, expected", [
    ("RTX 4090 (24 GB)", "RTX 4090"), ("A10G (24 GB)", "A10G"), ("L4 (24 GB)", "L4"), ("L40S (48 GB)", "L40S"),
    ("RTX A6000 48 GB", "RTX A6000"), ("Tesla T4 (16 GB)", "T4"), ("H100 PCIe (80 GB)", "H100 PCIe")])
def test_a_memory_size_with_a_space_picks_the_card(spelling, expected):
    assert get_gpu(spelling).name == expected


@pytest.mark.parametrize("local, cards", [
    ("2xA10G", ["A10G", "A10G"]), ("RTX 4090 x2, 1x A6000", ["RTX 4090", "RTX 4090", "RTX A6000"]),
    ("1xA10G", ["A10G"])])
def test_simulates_local_cards_take_a_count_in_any_form(local, cards):
    """`2xA10G` for --local was told orch estimates one card: a list of local cards counts them."""
    from orchestrator.simulate.engine import local_cards

    assert [offer.gpu for offer in local_cards(local, lambda gpu: type("Offer", (), {"gpu": gpu.name}))] == cards


def test_a_count_without_its_x_is_told_the_format():
    from orchestrator.simulate.engine import local_cards

    with pytest.raises(UserError, match=r"'2 RTX4090' is not 'N x GPU'"):
        local_cards("2 RTX4090", lambda gpu: gpu)


# Words after a card's name were dropped until a name matched: `L4 or T4` ran as an L4, `h100 h200` as an H100 SXM
@pytest.mark.parametrize("spelling, why", [
    ("L4 or T4", "'or T4' after 'L4' is no part of a GPU's name"), ("h100 h200", "'h200' after 'h100'"),
    ("4090 foo bar", "'foo bar' after '4090'"), ("4090!!!", "No GPU's name has '!' in it"),
    ("rtx4090; 1x a100", "No GPU's name has ';' in it"), ("A100/H100", "No GPU's name has '/' in it")])
def test_a_typed_name_with_words_no_device_name_carries_is_refused(spelling, why):
    with pytest.raises(UserError, match=f"unknown GPU '{re.escape(spelling)}'.*{re.escape(why)}"):
        get_gpu(spelling)


def test_estimate_refuses_a_gpu_name_with_a_stray_word_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["estimate", "orch/tiny-llama", "--method", "lora", "--seq-len", "128",
                                      "--micro-batch", "1", "--gpu", "L4 or T4"])
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "unknown GPU 'L4 or T4'" in lines[0], result.output


def test_simulates_local_cards_lose_no_card_to_a_wrong_separator():
    """`2x rtx4090; 1x a100` simulated two RTX 4090s: the A100 after the `;` was dropped without a word."""
    from orchestrator.simulate.engine import local_cards

    with pytest.raises(UserError, match="separates entries with ';': separate them with commas"):
        local_cards("2x rtx4090; 1x a100", lambda gpu: gpu)


@pytest.mark.parametrize("spelling", ["MI300X", "AMD Instinct MI300X", "Gaudi2", "TPU v5e", "Trainium2"])
def test_another_makers_accelerator_is_told_orch_trains_on_nvidia(spelling):
    with pytest.raises(UserError, match=f"orch trains on NVIDIA CUDA GPUs; '{re.escape(spelling)}' is not one"):
        get_gpu(spelling)


def test_nvidias_own_product_names_are_read_and_its_old_cards_are_not_called_another_makers():
    """`L4 Tensor Core GPU` (NVIDIA's naming) was refused as holding stray words; `Tesla M4` was told it is no NVIDIA
    card."""
    assert get_gpu("L4 Tensor Core GPU").name == "L4"
    with pytest.raises(UserError) as refused:
        get_gpu("Tesla M4")
    assert "not one" not in str(refused.value) and "unknown GPU 'Tesla M4'" in str(refused.value)


@pytest.mark.parametrize("text", ["", "  ", ",,"])
def test_local_cards_that_name_no_card_are_refused_and_none_is_no_card(text):
    """simulate_speed.py took `--local ''` as no card where `orch simulate` refused it: one check, in local_cards."""
    from orchestrator.simulate.engine import local_cards

    with pytest.raises(UserError, match="--local: give at least one card"):
        local_cards(text, lambda gpu: gpu)
    assert local_cards(None, lambda gpu: gpu) == []
