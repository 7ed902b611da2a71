"""The cards a user owns and what an hour on them costs: purchase price spread over the hours they are used, plus
electricity. SkyPilot and dstack price owned hardware at $0; orch does not, so local and cloud compare fairly.

The file (ORCH_HARDWARE, else ~/.config/orch/hardware.yaml) looks like:

    electricity_usd_per_kwh: 0.15
    pue: 1.0                  # power usage effectiveness: 1.0 under a desk, ~1.3-1.6 in a server room
    cost_policy: amortized    # amortized (purchase over life + power) or marginal (power only)
    cards:
      - gpu: RTX 4090
        count: 1
        purchase_price_usd: 1800  # or $1800, 1800usd (dollars as the flags take them)
        life_years: 4
        utilization: 0.25     # share of the year the card trains; the purchase is spread over those hours
        power_w: 450          # default: the card's TDP
        host_power_w: 100     # the rest of the machine while it trains
      - gpu: RTX 3090         # a card in another machine, reached through a SkyPilot SSH node pool
        ssh_pool: lab-boxes   # the pool's name in ~/.sky/ssh_node_pools.yaml (`sky ssh up`)
        accelerator: RTX3090  # how SkyPilot names the card (default: the name without spaces)

An empty file, or one without `cards` (or with `cards: []`), declares no cards: NVML's are priced by the defaults.
"""

from dataclasses import dataclass
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.checks import short_repr
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import GPU, CountedGPUs, get_gpu
from gpu_catalog.names import near_hint
from gpu_catalog.offer import LOCAL_PROVIDER, Offer
from gpu_catalog.units import USD_FORMS, TooNearZero, usd_from_text

HOURS_PER_YEAR = 24 * 365
COST_POLICIES = ("amortized", "marginal")
# Defaults for a card nobody described: a desktop, a typical US household rate (EIA 2025 average ~ $0.17/kWh)
DEFAULT_HARDWARE_FILE = "~/.config/orch/hardware.yaml"
DEFAULT_ELECTRICITY_USD_PER_KWH = 0.15
DEFAULT_LIFE_YEARS = 4.0
DEFAULT_UTILIZATION = 0.25
DEFAULT_HOST_POWER_W = 100.0

_CARD_KEYS = {"gpu", "count", "purchase_price_usd", "life_years", "utilization", "power_w", "host_power_w",
              "ssh_pool", "accelerator"}
_TOP_KEYS = {"electricity_usd_per_kwh", "pue", "cost_policy", "cards"}


def purchase_usd_per_busy_hour(purchase_usd: float, life_years: float, utilization: float) -> float:
    """A card's price spread over the hours it is busy in its life: what owning adds to each hour of training."""
    return purchase_usd / (life_years * HOURS_PER_YEAR * utilization)


@dataclass(frozen=True)
class OwnedCard:
    gpu: GPU
    count: int
    purchase_price_usd: float
    life_years: float
    utilization: float
    power_w: float
    host_power_w: float
    ssh_pool: str | None = None  # on another machine, through SkyPilot's SSH node pools; None: this machine
    accelerator: str | None = None

    def usd_per_hour(self, policy: str, electricity_usd_per_kwh: float, pue: float) -> float:
        """$ per hour of training: electricity always; with `amortized`, also the purchase over the busy hours."""
        power_kw = (self.power_w + self.host_power_w) / 1000 * pue
        energy_usd = power_kw * electricity_usd_per_kwh
        if policy == "marginal":
            return energy_usd
        return energy_usd + purchase_usd_per_busy_hour(self.purchase_price_usd, self.life_years, self.utilization)


@dataclass(frozen=True)
class OwnedHardware:
    cards: tuple[OwnedCard, ...] = ()
    electricity_usd_per_kwh: float = DEFAULT_ELECTRICITY_USD_PER_KWH
    pue: float = 1.0
    cost_policy: str = "amortized"
    source: str = "defaults (no hardware file)"

    def usd_per_hour(self, card: OwnedCard, policy: str | None = None) -> float:
        return card.usd_per_hour(policy or self.cost_policy, self.electricity_usd_per_kwh, self.pue)


def owned_offer(card: OwnedCard, hardware: OwnedHardware, policy: str | None, source: str,
                provider: str = LOCAL_PROVIDER, region: str = "local", **details) -> Offer:
    """The one place an owned card becomes an Offer: priced by the cost model, under the chosen policy, with the
    two parts of that price a simulation counts apart (Offer.energy_usd_per_hour, purchase_usd_per_hour)."""
    amortized = (policy or hardware.cost_policy) == "amortized"
    return Offer(gpu=card.gpu, provider=provider, region=region, spot=False,
                 usd_per_hour=hardware.usd_per_hour(card, policy), source=source,
                 energy_usd_per_hour=hardware.usd_per_hour(card, "marginal"),
                 purchase_usd_per_hour=card.purchase_price_usd / (card.life_years * HOURS_PER_YEAR) if amortized
                 else 0.0, **details)


def simulated_owned_offer(gpu: GPU) -> Offer:
    """An owned card for a simulation: the hardware file's card when declared, else the street price."""
    hardware = load_owned_hardware()
    card = next((c for c in hardware.cards if c.gpu.name == gpu.name), None) or default_card(gpu)
    return owned_offer(card, hardware, None, "simulated owned card")


def hardware_file() -> Path:
    return checks.env_path("ORCH_HARDWARE", DEFAULT_HARDWARE_FILE)


def default_card(gpu: GPU) -> OwnedCard:
    """A card NVML found but the hardware file does not describe: its street price and desktop defaults."""
    return OwnedCard(gpu=gpu, count=1, purchase_price_usd=gpu.street_price_usd or 0.0, life_years=DEFAULT_LIFE_YEARS,
                     utilization=DEFAULT_UTILIZATION, power_w=gpu.tdp_w, host_power_w=DEFAULT_HOST_POWER_W)


# Ranges for the hardware file's numbers: beyond them a value is a typo (a price in cents, power in kW)
MAX_PURCHASE_USD = 1e7
MAX_POWER_W = 1e5
# a card training draws tens to hundreds of watts (the catalog's TDPs: 70-1000 W): below this, kilowatts written as
# watts (`power_w: 0.45`), which priced its power a thousand times too low
MIN_POWER_W = 10.0
MAX_LIFE_YEARS = 50.0
# Below these a purchase is spread over next to no hours (`life_years: 1e-300` divided by zero): a typo, not a card
MIN_LIFE_YEARS = 0.1
MIN_UTILIZATION = 0.01
MAX_PUE = 5.0
MAX_USD_PER_KWH = 10.0
MAX_COUNT = 1024


def _positive(value, what: str, path: Path, upper: float, whole: bool = False) -> float:
    return float(checks.number(value, f"{path}: {what}", 0, upper, above=True, whole=whole))


def _watts(value, path: Path) -> float:
    watts = _positive(value, "power_w", path, MAX_POWER_W)
    if watts < MIN_POWER_W:
        raise UserError(f"{path}: power_w {value} is below any GPU's draw while it trains (at least {MIN_POWER_W:g} "
                        "W): give the card's power in watts, not kilowatts (an RTX 4090: 450).")
    return watts


def _at_least(value, what: str, path: Path, low: float, upper: float) -> float:
    return float(checks.number(value, f"{path}: {what}", low, upper))


def _usd(value, what: str, path: Path, upper: float) -> float:
    """Dollars (a price, a rate per kWh), written as a number or as `--budget` takes them (`$1800`, `1800usd`):
    such text was "must be a number" here while the flags read it."""
    if isinstance(value, str):
        try:
            value = usd_from_text(value)
        except TooNearZero as exc:
            raise UserError(f"{path}: {what} {exc}.") from None
        except ValueError:
            raise UserError(f"{path}: {what} {short_repr(value)} is not an amount of US dollars: write "
                            f"{USD_FORMS}.") from None
    return _at_least(value, what, path, 0, upper)


def _check_declared_once(cards: tuple[OwnedCard, ...], path: Path) -> None:
    """Two entries for one GPU model on one machine were silently taken as one card, with one of their prices."""
    seen = set()
    for card in cards:
        if (card.gpu.name, card.ssh_pool) in seen:
            where = f"in ssh_pool {card.ssh_pool}" if card.ssh_pool else "on this machine"
            raise UserError(f"{path}: {card.gpu.name} is declared twice {where}: declare it once with `count: N`, or "
                            "give each its own ssh_pool.")
        seen.add((card.gpu.name, card.ssh_pool))


def _with_hints(unknown: list[str], keys) -> str:
    """Each unknown key with the near one it may misspell (`purchase_prise_usd (did you mean ...?)`), as a job's are
    said: a list of every key left the user to spot the typo."""
    return ", ".join(key + near_hint(key, sorted(keys)) for key in unknown)


def _parse_card(raw, path: Path) -> OwnedCard:
    if not isinstance(raw, dict) or "gpu" not in raw:
        raise UserError(f"{path}: each entry under `cards` needs at least `gpu: NAME`.")
    if unknown := sorted(map(str, set(raw) - _CARD_KEYS)):
        raise UserError(f"{path}: unknown card key {_with_hints(unknown, _CARD_KEYS)}: use "
                        f"{', '.join(sorted(_CARD_KEYS))}.")
    if raw.get("accelerator") is not None and raw.get("ssh_pool") is None:  # as a job's idle keys are refused
        raise UserError(f"{path}: a card's `accelerator` is how SkyPilot names it in an SSH node pool, and this card "
                        "has no `ssh_pool`: add the pool's name, or leave `accelerator` out for a card on this "
                        "machine.")
    if isinstance(raw["gpu"], int) and not isinstance(raw["gpu"], bool):  # YAML's `gpu: 4090`, as --gpu 4090 reads
        raw = {**raw, "gpu": str(raw["gpu"])}
    if not isinstance(raw["gpu"], str):
        raise UserError(f"{path}: a card's `gpu` is a GPU name such as RTX 4090, got {short_repr(raw['gpu'])}.")
    try:
        base = default_card(get_gpu(raw["gpu"]))
    except CountedGPUs as counted:
        raise UserError(f"{path}: `gpu: {raw['gpu']}` counts {counted.count} cards: write `gpu: {counted.gpu.name}` "
                        f"with `count: {counted.count}`.") from None
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return OwnedCard(
        gpu=base.gpu,
        count=int(_positive(raw.get("count", 1), "count", path, MAX_COUNT, whole=True)),
        purchase_price_usd=_usd(raw.get("purchase_price_usd", base.purchase_price_usd), "purchase_price_usd", path,
                                MAX_PURCHASE_USD),
        life_years=_at_least(raw.get("life_years", base.life_years), "life_years", path, MIN_LIFE_YEARS,
                             MAX_LIFE_YEARS),
        utilization=_at_least(raw.get("utilization", base.utilization), "utilization", path, MIN_UTILIZATION, 1.0),
        power_w=_watts(raw.get("power_w", base.power_w), path),
        host_power_w=_at_least(raw.get("host_power_w", base.host_power_w), "host_power_w", path, 0, MAX_POWER_W),
        ssh_pool=checks.safe_name(raw["ssh_pool"], f"{path}: ssh_pool") if raw.get("ssh_pool") is not None
        else None,
        accelerator=checks.safe_name(raw["accelerator"], f"{path}: accelerator") if raw.get("accelerator") is not None
        else base.gpu.name.replace(" ", ""),
    )


def load_owned_hardware(path: Path | None = None) -> OwnedHardware:
    """The user's hardware file, validated; defaults when there is none."""
    path = path or hardware_file()
    if loop := checks.symlink_loop(path, "hardware file"):  # a loop of links was said not to exist
        raise loop
    if not path.exists():
        if checks.env_value("ORCH_HARDWARE") and path == hardware_file():  # named, so a typo is not a quiet default
            raise UserError(f"ORCH_HARDWARE names '{path}', which does not exist: fix the path, or unset "
                            "ORCH_HARDWARE to use the defaults.")
        return OwnedHardware()
    raw = checks.load_yaml(path, "hardware file")
    if raw is None:  # empty, or comments only
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with keys {', '.join(sorted(_TOP_KEYS))}.")
    if unknown := sorted(map(str, set(raw) - _TOP_KEYS)):
        raise UserError(f"{path}: unknown key {_with_hints(unknown, _TOP_KEYS)}: use {', '.join(sorted(_TOP_KEYS))} "
                        "(a card's keys go under `cards:`).")
    policy = raw.get("cost_policy", "amortized")
    policy = policy.strip().lower() if isinstance(policy, str) else policy  # in any case, as --local-cost reads it
    if policy not in COST_POLICIES:
        raise UserError(f"{path}: cost_policy must be one of {', '.join(COST_POLICIES)}, got {short_repr(policy)}.")
    cards = raw.get("cards")
    if cards is None:  # absent, or `cards:` with every entry commented out
        cards = []
    if not isinstance(cards, list):
        raise UserError(f"{path}: cards must be a list of cards (`- gpu: RTX 4090`), got {short_repr(cards)}.")
    parsed = tuple(_parse_card(card, path) for card in cards)
    _check_declared_once(parsed, path)
    return OwnedHardware(
        cards=parsed,
        electricity_usd_per_kwh=_usd(raw.get("electricity_usd_per_kwh", DEFAULT_ELECTRICITY_USD_PER_KWH),
                                     "electricity_usd_per_kwh", path, MAX_USD_PER_KWH),
        pue=float(checks.number(raw.get("pue", 1.0), f"{path}: pue", 1.0, MAX_PUE)),
        cost_policy=policy,
        source=str(path),
    )
