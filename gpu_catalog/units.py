"""Units, the two money formulas and the one way dollars are written, defined once: every module that turns bytes
into GiB, seconds into dollars or a price into $ per million tokens calls these, so the trainer's budget stop, the runs
store, the planner and the report can never disagree by a rounding or a factor of 3600."""

import math
import re

BYTES_PER_GIB = 1024**3
SECONDS_PER_HOUR = 3600.0
MAX_BUDGET_USD = 1e7  # the most any budget or price may be, flag or job key: a larger one is a typo
MAX_DEADLINE_H = 24 * 365 * 10  # the most any deadline may be, flag or trace column: ten years
MAX_PRIORITY = 10**6  # a job's priority either way, flag, trace column or queued job: past it, a typo
# how dollars may be written, on a flag or in a file: every refusal says so
USD_FORMS = "20, 20.5, $20, $1,800 or 20usd"
THOUSANDS = re.compile(r"[1-9][0-9]{0,2}(,[0-9]{3})+(\.[0-9]+)?")  # digit groups as US dollars are printed


def usd_for(seconds: float, usd_per_hour: float) -> float:
    """What `seconds` on a target billed at `usd_per_hour` cost."""
    return seconds * usd_per_hour / SECONDS_PER_HOUR


def seconds_for(usd: float, usd_per_hour: float) -> float:
    """How long `usd` lasts on a target billed at `usd_per_hour` (usd_for's inverse; the rate is above 0)."""
    return usd / usd_per_hour * SECONDS_PER_HOUR


def usd_per_million_tokens(usd_per_hour: float, tokens_per_s: float) -> float:
    """$ per million training tokens: the scale on which every target compares, whatever its speed."""
    return usd_per_hour / (tokens_per_s * SECONDS_PER_HOUR) * 1e6


def usd_text(value: float) -> str:
    """Dollars for people: cents where they matter, three decimals under a dollar, and two significant digits below
    a cent (a tiny job's cost is not $0.00), in e-notation only below a billionth of a dollar (no line of zeros)."""
    if value >= 0.995:
        return f"${value:,.2f}"
    if value >= 0.01 or value <= 0:
        return f"${value:.3f}"
    if value < 1e-9:
        return f"${value:.1e}"
    return f"${value:.{1 - math.floor(math.log10(value))}f}"


def above_texts(value: float, limit: float) -> tuple[str, str]:
    """`value` and the `limit` it passes, written with the fewest decimals (one to three) that show it above: a
    refusal that reads `8.0 h > 8 h` or `needs 10.0 GiB, 10.0 GiB free` contradicts itself. Past three decimals the
    value is rounded up and the limit down, so the gap still shows."""
    for decimals in (1, 2, 3):
        shown, limit_shown = f"{value:,.{decimals}f}", f"{limit:,.{decimals}f}"
        if float(shown.replace(",", "")) > float(limit_shown.replace(",", "")):
            return shown, limit_shown
    return f"{math.ceil(value * 1000) / 1000:,.3f}", f"{math.floor(limit * 1000) / 1000:,.3f}"


def duration_text(seconds: float, round_up: bool = False) -> str:
    """A length of time in the unit that reads: seconds under a minute, minutes under an hour, then hours. A 30 s
    deadline was echoed as "the 0.00833333 h deadline". `round_up`: for a least value to give (`at least 1 min`)."""
    whole = math.ceil if round_up else round
    if 0 < seconds < 1:  # a positive time said as "0 s" reads as none
        return f"{seconds:.2g} s"
    if whole(seconds) < 60:
        return f"{whole(seconds)} s"
    if whole(seconds / 60) < 60:
        return f"{whole(seconds / 60)} min"
    hours = math.ceil(seconds / 36) / 100 if round_up else seconds / 3600
    return f"{hours:,.2f}".rstrip("0").rstrip(".") + " h"


def given_duration_text(seconds: float) -> str:
    """A duration the user gave, in the unit that reads and unrounded (4 significant digits): duration_text's whole
    minutes echoed `--deadline 90s` as "2 min", and 59.8 s as "1 min is under a minute"."""
    for unit, per in (("h", 3600), ("min", 60)):
        if seconds >= per:
            return f"{seconds / per:.4g} {unit}"
    return f"{seconds:.4g} s"


SMALLEST_PERCENT_SHOWN = 0.01  # a positive share below it is shown as it: `above 0.01%` of a break-even still holds


def percent_text(share: float) -> str:
    """A share (of a year's hours, of a card's time) as a percentage: whole from 10%, two significant digits below (a
    break-even at 0.4% was said as `above 0%`, which reads as "always")."""
    percent = share * 100
    if percent >= 9.5 or percent <= 0:
        return f"{percent:.0f}%"
    return f"{max(percent, SMALLEST_PERCENT_SHOWN):.2g}%"


class TooNearZero(ValueError):
    """A number whose digits are not all 0 that a float cannot hold but as 0 (`1e-400`): read as 0, it passed every
    check where 0 is allowed (`lora_dropout`, `--priority`, a cap) and meant another value than was written. Said as
    written, by whoever reads the number (its flag, key or line)."""

    def __init__(self, text: str):
        super().__init__(f"{text} is too near 0 to compute with (it reads as 0): write a larger value, or 0 where 0 "
                         "is meant")


def number_as_written(text: str, value: float) -> float:
    """`value`, read from `text`, unless it is 0 where the text's digits before any exponent are not (TooNearZero)."""
    if value == 0 and re.search(r"[1-9]", re.split(r"[eE]", text)[0]):
        raise TooNearZero(text.strip())
    return value


def plain_number(text: str) -> float:
    """float(), for digits, sign, point and exponent as people type them: float() also reads other scripts' digits
    (`٢٠`, `２０`) and `1_000`, no amount a person means to type. ValueError for anything else, TooNearZero for a
    number that reads as 0 only by underflow. `-0` is read as 0: an echo of -0.0 reads as a negative amount."""
    if not text.isascii() or "_" in text:
        raise ValueError(text)
    return number_as_written(text, float(text) + 0.0)


def usd_from_text(text: str) -> float:
    """US dollars as people write them (USD_FORMS): a number, with a leading `$` or a trailing `usd` (any case, a
    space before it) allowed. The one reader of money text, for flags and files alike: `budget_usd: $20` in a job
    and `purchase_price_usd: 1800usd` in a hardware file were "must be a number" while `--budget $20` was read.
    Commas only in whole groups of three (`1,800`, `12,500.50`, as orch's tables print dollars): `1,5` or `18,00` is
    a decimal comma in some locales, refused rather than guessed. ValueError for anything else (`20eur`); the caller
    checks the range (NaN, inf, below 0) and says how to write it."""
    amount = text.strip().removeprefix("$").strip()
    if amount.lower().endswith("usd"):
        amount = amount[:-3].strip()
    if THOUSANDS.fullmatch(amount):  # `$1,800`, as orch's own tables print dollars
        amount = amount.replace(",", "")
    return plain_number(amount)
