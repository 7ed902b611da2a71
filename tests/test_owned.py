import pytest
from typer.testing import CliRunner

from gpu_catalog.errors import UserError
from gpu_catalog.gpus import cpu_gpu, get_gpu, gpu_from_device_name
from gpu_catalog.local import LocalGPU, local_offers
from gpu_catalog.owned import HOURS_PER_YEAR, OwnedCard, load_owned_hardware
from orchestrator.cli.main import app
from tests.conftest import REPO

HARDWARE = """
electricity_usd_per_kwh: 0.20
pue: 1.0
cost_policy: amortized
cards:
  - gpu: RTX 4090
    purchase_price_usd: 1752
    life_years: 2
    utilization: 0.5
    power_w: 400
    host_power_w: 100
"""


def write_hardware(tmp_path, monkeypatch, text=HARDWARE):
    path = tmp_path / "hardware.yaml"
    path.write_text(text)
    monkeypatch.setenv("ORCH_HARDWARE", str(path))
    return path


def test_amortized_and_marginal_prices(tmp_path, monkeypatch):
    write_hardware(tmp_path, monkeypatch)
    hardware = load_owned_hardware()
    card = hardware.cards[0]
    electricity = 0.5 * 0.20  # (400 + 100) W at $0.20/kWh
    purchase = 1752 / (2 * HOURS_PER_YEAR * 0.5)  # $0.20 per busy hour
    assert hardware.usd_per_hour(card, "marginal") == pytest.approx(electricity)
    assert hardware.usd_per_hour(card, "amortized") == pytest.approx(electricity + purchase)


def test_lower_utilization_makes_each_hour_dearer():
    gpu = get_gpu("RTX 3090")
    busy = OwnedCard(gpu, 1, 1500, 4, 0.6, 350, 100).usd_per_hour("amortized", 0.15, 1.0)
    idle = OwnedCard(gpu, 1, 1500, 4, 0.1, 350, 100).usd_per_hour("amortized", 0.15, 1.0)
    assert idle > busy


def test_pue_scales_electricity():
    card = OwnedCard(get_gpu("RTX 3090"), 1, 0, 4, 0.5, 400, 100)
    assert card.usd_per_hour("marginal", 0.1, 1.5) == pytest.approx(1.5 * card.usd_per_hour("marginal", 0.1, 1))


def test_no_file_means_defaults(tmp_path, monkeypatch):
    assert load_owned_hardware().cards == ()


@pytest.mark.parametrize("text, message", [
    ("cards: [{gpu: RTX 4090, utilization: 2}]", "utilization must be at least 0.01 and at most 1"),
    ("cards: [{gpu: RTX 4070}]", "unknown GPU 'RTX 4070'"),
    ("cards: [{gpu: RTX 4090, colour: red}]", "unknown card key colour"),
    ("cost_policy: free", "cost_policy must be one of"),
    ("cards: [gpu: x", "not valid YAML"),
    # a purchase spread over 1e-300 years' busy hours divided by zero, or cost a 300-digit $/h
    ("cards: [{gpu: RTX 4090, life_years: 1e-300, utilization: 1e-300}]", "life_years must be at least 0.1"),
    ("cards: [{gpu: RTX 4090, utilization: 0.001}]", "utilization must be at least 0.01"),
    # shapes that read as "no cards"
    ("cards: {}", "cards must be a list"), ("cards: 0", "cards must be a list"),
    ("cards: ''", "cards must be a list"), ("cards: false", "cards must be a list"),
    ("0", "expected a mapping"), ("''", "expected a mapping"),
    ("cards: [{gpu: RTX 4090, ssh_pool: ''}]", "ssh_pool '' is not allowed"),
    ("cards: [{gpu: RTX 4090, ssh_pool: false}]", "ssh_pool false is not allowed"),
    # one card taken for two, with one of the two prices
    ("cards: [{gpu: RTX 4090, purchase_price_usd: 100}, {gpu: RTX4090, purchase_price_usd: 5000}]",
     "RTX 4090 is declared twice on this machine: declare it once with `count: N`"),
    ("cards: [{gpu: A10, ssh_pool: lab}, {gpu: A10, ssh_pool: lab}]", "A10 is declared twice in ssh_pool lab"),
])
def test_bad_hardware_file(tmp_path, monkeypatch, text, message):
    write_hardware(tmp_path, monkeypatch, text)
    with pytest.raises(UserError, match=message):
        load_owned_hardware()


@pytest.mark.parametrize("text, said", [
    ("cards: [{gpu: RTX 4090, purchase_prise_usd: 1600}]",
     "unknown card key purchase_prise_usd (did you mean `purchase_price_usd`?): use accelerator, count, "),
    ("electricty_usd_per_kwh: 0.2", "unknown key electricty_usd_per_kwh (did you mean `electricity_usd_per_kwh`?): "
                                    "use cards, "),
])
def test_a_misspelt_hardware_key_comes_with_its_near_match(tmp_path, monkeypatch, text, said):
    """Every key was listed, and the user left to spot the typo, where a job's misspelt key says which was meant."""
    path = write_hardware(tmp_path, monkeypatch, text)
    with pytest.raises(UserError) as error:
        load_owned_hardware()
    assert str(error.value).startswith(f"{path}: {said}"), str(error.value)


def test_one_gpu_model_in_two_places_is_two_cards(tmp_path, monkeypatch):
    write_hardware(tmp_path, monkeypatch, "cards: [{gpu: A10}, {gpu: A10, ssh_pool: lab}]")
    assert [card.ssh_pool for card in load_owned_hardware().cards] == [None, "lab"]


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "cards:", "cards: []", "pue: 1.2"])
def test_a_file_without_cards_declares_none(tmp_path, monkeypatch, text):
    write_hardware(tmp_path, monkeypatch, text)
    assert load_owned_hardware().cards == ()


def test_the_shortest_life_and_least_use_still_price_a_card(tmp_path, monkeypatch):
    write_hardware(tmp_path, monkeypatch, "cards: [{gpu: RTX 4090, purchase_price_usd: 1752, life_years: 0.1, "
                                          "utilization: 0.01}]")
    hardware = load_owned_hardware()
    assert hardware.usd_per_hour(hardware.cards[0], "amortized") == pytest.approx(1752 / (0.1 * HOURS_PER_YEAR * 0.01),
                                                                                 rel=0.01)


def test_declared_cards_and_the_cpu_are_local_offers(tmp_path, monkeypatch):
    write_hardware(tmp_path, monkeypatch)
    offers = local_offers(load_owned_hardware(), detected=[])
    assert [o.gpu.name for o in offers] == ["RTX 4090", "CPU"]
    assert all(o.is_local and o.usd_per_hour > 0 for o in offers)


def test_a_detected_card_carries_its_free_memory_and_uses_the_declared_price(tmp_path, monkeypatch):
    write_hardware(tmp_path, monkeypatch)
    hardware = load_owned_hardware()
    seen = LocalGPU(0, "NVIDIA GeForce RTX 4090", get_gpu("RTX 4090"), 23.99, 20.0, 90.0)
    offers = local_offers(hardware, detected=[seen, seen])
    cards = [o for o in offers if o.gpu.name == "RTX 4090"]
    assert len(cards) == 2  # two cards seen, no third for the declaration
    assert all(o.free_vram_gib == pytest.approx(3.99) for o in cards)
    assert cards[0].usd_per_hour == pytest.approx(hardware.usd_per_hour(hardware.cards[0]))


@pytest.mark.parametrize("device_name, vram_gib, expected", [
    ("NVIDIA H100 80GB HBM3", 79.6, "H100 SXM"), ("NVIDIA A100-SXM4-80GB", 80, "A100 80GB"),
    ("Tesla V100-SXM2-32GB", 32, "V100 32GB"), ("NVIDIA RTX 6000 Ada Generation", 48, "RTX 6000 Ada"),
    ("NVIDIA GeForce RTX 4060 Ti", 16, "RTX 4060 Ti 16GB"), ("Tesla T4", 15, "T4"),
    ("NVIDIA H100 PCIe", 80, "H100 PCIe"),
])
def test_nvml_names_match_catalog_gpus(device_name, vram_gib, expected):
    assert gpu_from_device_name(device_name, vram_gib).name == expected


def test_unknown_nvml_card_is_not_guessed():
    assert gpu_from_device_name("Radeon Pro W7900", 48) is None


def test_cpu_target_describes_this_machine():
    cpu = cpu_gpu()
    assert cpu.kind == "cpu" and cpu.vram_gib > 0 and cpu.fp32_tflops > 0


def test_a_card_named_with_its_count_is_told_to_give_count(tmp_path, monkeypatch):
    """`gpu: 2x RTX 4090` was told orch estimates one card; a hardware file has `count` for that."""
    write_hardware(tmp_path, monkeypatch, "cards:\n  - gpu: 2x RTX 4090\n")
    with pytest.raises(UserError, match=r"`gpu: 2x RTX 4090` counts 2 cards: write `gpu: RTX 4090` with `count: 2`"):
        load_owned_hardware()


@pytest.mark.parametrize("written", ["$1800", "'$1800'", "1800usd", "1800 USD", "' $1800 usd '", "$ 1800"])
def test_prices_take_dollars_as_the_flags_do(tmp_path, monkeypatch, written):
    """`purchase_price_usd: $1800` was "must be a number" while `--budget $20` was read; the same reader reads both."""
    write_hardware(tmp_path, monkeypatch, f"electricity_usd_per_kwh: $0.30\ncards:\n  - gpu: RTX 4090\n"
                                          f"    purchase_price_usd: {written}\n")
    hardware = load_owned_hardware()
    assert (hardware.cards[0].purchase_price_usd, hardware.electricity_usd_per_kwh) == (1800, 0.3)


@pytest.mark.parametrize("written, message", [
    # a comma not in whole groups of three is a decimal comma in some locales: refused with the forms, not guessed
    ("'$1,80'", r"purchase_price_usd '\$1,80' is not an amount of US dollars: write 20, 20\.5, \$20, \$1,800 or "
                r"20usd\.$"),
    ("1800eur", r"purchase_price_usd '1800eur' is not an amount of US dollars: write 20"),
    ("'１８００'", r"purchase_price_usd '１８００' is not an amount of US dollars"),
    ("'1_800'", r"purchase_price_usd '1_800' is not an amount of US dollars"),
    ("'$nan'", r"purchase_price_usd must be a finite number, got nan\.$"),
    ("$inf", r"purchase_price_usd must be a finite number, got inf\.$"),
    ("$-1", r"purchase_price_usd must be at least 0 and at most 10000000, got -1\.$"),
    ("$2e7", r"purchase_price_usd must be at least 0 and at most 10000000, got 20000000\.$"),
])
def test_a_price_that_is_no_amount_of_dollars_says_how_to_write_one(tmp_path, monkeypatch, written, message):
    write_hardware(tmp_path, monkeypatch, f"cards: [{{gpu: RTX 4090, purchase_price_usd: {written}}}]")
    with pytest.raises(UserError, match=message):
        load_owned_hardware()


def test_a_price_is_text_or_a_number_and_no_other_yaml_value(tmp_path, monkeypatch):
    """YAML reads `$1800` and `1800usd` as text and `1800` as a number, all dollars; a boolean or a list is none."""
    for written in ("$1800", "1800usd", "1800", "'$1,800'", "'1,800.00 USD'"):
        write_hardware(tmp_path, monkeypatch, f"cards: [{{gpu: RTX 4090, purchase_price_usd: {written}}}]")
        assert load_owned_hardware().cards[0].purchase_price_usd == 1800
    for written, shown in (("yes", "true"), ("[1800]", r"\[1800\]")):
        write_hardware(tmp_path, monkeypatch, f"cards: [{{gpu: RTX 4090, purchase_price_usd: {written}}}]")
        with pytest.raises(UserError, match=rf"purchase_price_usd must be a number, got {shown}\.$"):
            load_owned_hardware()


def test_a_bad_price_is_one_line_and_exit_2_on_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    write_hardware(tmp_path, monkeypatch, "cards: [{gpu: RTX 4090, purchase_price_usd: '$18,00'}]")
    result = CliRunner().invoke(app, ["plan", str(REPO / "examples" / "tiny.yaml"), "--budget", "1"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "purchase_price_usd '$18,00' is not an amount of US dollars" in result.stderr, result.stderr
    write_hardware(tmp_path, monkeypatch, "cards: [{gpu: RTX 4090, purchase_price_usd: $1800}]")
    result = CliRunner().invoke(app, ["plan", str(REPO / "examples" / "tiny.yaml"), "--budget", "1"])
    assert result.exit_code == 0, result.output


def test_a_card_named_by_its_number_alone_is_that_card(tmp_path, monkeypatch):
    """YAML reads `gpu: 4090` as a number: refused as no GPU name, while `--gpu 4090` was the RTX 4090."""
    write_hardware(tmp_path, monkeypatch, "cards: [{gpu: 4090}]")
    assert load_owned_hardware().cards[0].gpu.name == "RTX 4090"
    write_hardware(tmp_path, monkeypatch, "cards: [{gpu: 12345}]")
    with pytest.raises(UserError, match="unknown GPU '12345'"):
        load_owned_hardware()


def test_the_cost_policy_is_read_in_any_case_as_local_cost_is(tmp_path):
    from gpu_catalog.owned import load_owned_hardware

    path = tmp_path / "hardware.yaml"
    path.write_text("cost_policy: MARGINAL\n")
    assert load_owned_hardware(path).cost_policy == "marginal"
