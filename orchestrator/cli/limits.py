"""The numeric flags' ranges and the provider list, checked (finite, in range) before any work. No CLI framework here:
`orch plan`'s lean parser uses them as the typer commands do."""

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager

from gpu_catalog import checks
from gpu_catalog.cloud_features import known_cloud
from gpu_catalog.errors import UserError
from gpu_catalog.names import suggest
from gpu_catalog.units import (
    MAX_BUDGET_USD,
    MAX_DEADLINE_H,
    THOUSANDS,
    USD_FORMS,
    TooNearZero,
    plain_number,
    usd_from_text,
)


def parse_providers(text: str | None, flag: str = "--providers") -> set[str] | None:
    """The names in a comma list; None for a flag left out. A list with no name in it ('' or ',') is a mistake, not
    "any provider", and so is an empty entry ('aws,,gcp'): a name lost between commas, as `simulate --local` says."""
    if text is None:
        return None
    if checks.holds_control(text):  # `lambda\r` was read as lambda unsaid
        raise UserError(f"{flag} {checks.short_repr(text)} holds a control character: give names separated by "
                        "commas (e.g. local,lambda).")
    names = [p.strip().lower() for p in text.split(",")]
    if not any(names):
        raise UserError(f"{flag}: give at least one provider name (e.g. local,lambda), got {text!r}.")
    if "" in names:
        raise UserError(f"{flag}: an empty name between commas in {text!r}: give names separated by single commas "
                        "(e.g. local,lambda).")
    if twice := checks.repeated(names):
        raise UserError(f"{flag} names {twice[0]!r} more than once: give each provider once.")
    return set(names)


# Ranges of the numeric flags, checked (finite, in range) before any work: NaN and inf pass every `<` test, so a
# range alone would let `--budget nan` through to SQLite.
def check_budget(budget: float | None, flag: str = "--budget", zero_allowed: bool = False) -> float | None:
    """A budget buys something only above $0 (`--budget 0` planned every target, then refused them all); a monthly
    cap of 0 is a choice: no spend."""
    return checks.optional_number(budget, flag, 0, MAX_BUDGET_USD, above=not zero_allowed)


def check_deadline(deadline: float | None) -> float | None:
    return checks.optional_number(deadline, "--deadline", 0, MAX_DEADLINE_H, above=True)


def check_providers(text: str | None, known: set[str]) -> set[str] | None:
    """The providers named in a comma list, each one orch has offers for; a typo gets the near names."""
    wanted = parse_providers(text, "--providers")
    for name in sorted(wanted or ()):
        if name in known:
            continue
        if known_cloud(name):  # a cloud SkyPilot knows, with no catalog here: not a typo
            raise UserError(f"--providers {name}: no offers from it in the catalogs here (`orch catalog refresh` "
                            f"brings SkyPilot's); providers with offers: {', '.join(sorted(known))}.")
        near = suggest(name, sorted(known))  # a short list: each one named, as a choice flag's error names them
        hint = f" Did you mean: {', '.join(near)}?" if near else ""
        raise UserError(f"--providers: unknown provider {checks.short_repr(name)}.{hint} Providers with offers: "
                        f"{', '.join(sorted(known))}.")
    return wanted


# Money and durations as people write them, read by one function each for every command that takes them (`orch plan`'s
# parser, the typer commands through orchestrator/cli/options.py): `20usd` and `2h` were a parser's "invalid float
# value" on plan and pydantic's "unable to parse string as a number" elsewhere. Money text is read as files read it
# (gpu_catalog.units.usd_from_text), and said the same way (USD_FORMS).
DURATION_FORMS = "hours as a number (1.5) or with a unit (90m, 45min, 2h, 1d, 3600s)"
# `--budget $20` reaches orch as "0": the shell reads `$2` as a variable, and `$5` as nothing at all
SHELL_DOLLAR_HINT = "(an unquoted $ is expanded by the shell: quote it as '$20', or write 20usd)"
MONEY_FLAGS = ("--budget", "--max-usd-per-hour", "--monthly-cap")


def missing_value_hint(flag: str) -> str:
    """Why a money flag's value may be missing: `--budget $5` reaches orch as `--budget` alone."""
    return f" {SHELL_DOLLAR_HINT}" if flag in MONEY_FLAGS else ""


HOURS_PER_UNIT = {**dict.fromkeys(("", "h", "hr", "hrs", "hour", "hours"), 1.0),
                  **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1 / 3600),  # `30s` is a duration too
                  **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 1 / 60),
                  **dict.fromkeys(("d", "day", "days"), 24.0)}
SECONDS_FORMS = "seconds as a number (30) or with a unit (90s, 5m, 1h)"
SECONDS_PER_UNIT = {**dict.fromkeys(("", "s", "sec", "secs", "second", "seconds"), 1.0),
                    **{unit: hours * 3600 for unit, hours in HOURS_PER_UNIT.items() if unit}}
_NUMBER_AND_UNIT = re.compile(r"(?P<number>.*?)\s*(?P<unit>[A-Za-z]*)")


@contextmanager
def reading_number(flag: str, refusal: str) -> Iterator[None]:
    """Reads a flag's number in its block: `refusal` (the flag's own "how to write it") for text that is no number,
    and the same words for every flag where the number is too near 0 to hold (TooNearZero, itself a ValueError)."""
    try:
        yield
    except TooNearZero as exc:
        raise UserError(f"{flag} {exc}.") from None
    except ValueError:
        raise UserError(refusal) from None


def usd_amount(text: str, flag: str, *, zero_allowed: bool = False) -> float:
    """US dollars from a flag: a number, with a leading `$` or a trailing `usd` (any case, a space before it) allowed,
    read as a file's are (usd_from_text). A budget buys something only above $0; a monthly cap (`zero_allowed`) of 0
    is a choice: no spend."""
    typed = text.strip()
    empty = "" if typed else f" {SHELL_DOLLAR_HINT}"
    # `0,05`: a decimal comma, which orch does not guess at (`1,800` is a thousands comma)
    comma = " (a decimal point, not a comma)" if re.fullmatch(r"\$?\d*,\d{1,2}", typed) else ""
    with reading_number(flag, f"{flag} {checks.short_repr(text)} is not an amount of US dollars: write {USD_FORMS}"
                              f"{comma}{empty}."):
        value = usd_from_text(typed)
    if not (math.isfinite(value) and (value >= 0 if zero_allowed else value > 0) and value <= MAX_BUDGET_USD):
        hint = f" {SHELL_DOLLAR_HINT}" if value == 0 and typed.isdigit() else ""  # `$20` leaves 0, `$100` 00
        raise UserError(f"{flag} must be {'at least' if zero_allowed else 'above'} 0 and at most "
                        f"{MAX_BUDGET_USD:.0f} (US dollars), got {typed}{hint}.")
    return value


def _in_units(text: str, per_unit: dict[str, float]) -> float:
    """A number, then a unit of `per_unit` ('' for none, a space between allowed), in the table's unit; ValueError
    for anything else."""
    found = _NUMBER_AND_UNIT.fullmatch(text)
    try:
        return plain_number(found["number"]) * per_unit[found["unit"].lower()]
    except (TypeError, KeyError):  # no number before the unit, or a unit not in the table
        raise ValueError(text) from None


def hours_amount(text: str, flag: str) -> float:
    """A duration in hours from a flag: a bare number is hours, as it always was; `90m`, `45min`, `2h` and `1d` (a
    space before the unit allowed) are the same in minutes, hours and days."""
    typed = text.strip()
    with reading_number(flag, f"{flag} {checks.short_repr(text)} is not a duration: write {DURATION_FORMS}."):
        hours = _in_units(typed, HOURS_PER_UNIT)
    if not (math.isfinite(hours) and 0 < hours <= MAX_DEADLINE_H):
        raise UserError(f"{flag} must be above 0 and at most {MAX_DEADLINE_H} hours (ten years), got {typed}.")
    return hours


def seconds_amount(text: str, flag: str) -> float:
    """A duration in seconds from a flag: a bare number is seconds, as it always was; `90s`, `5m` and `1h` (a space
    before the unit allowed) are the same in seconds, minutes and hours, as every hours flag takes units
    (hours_amount). The caller checks the range."""
    with reading_number(flag, f"{flag} {checks.short_repr(text)} is not a duration: write {SECONDS_FORMS}."):
        return _in_units(text.strip(), SECONDS_PER_UNIT)


MOST_DIGITS = 300  # a whole number typed longer is past every flag's range (and a float's, 1.8e308)


def whole_amount(text: str, flag: str) -> int:
    """A whole number from a flag, written with the digits 0-9 (a sign, a point or an exponent allowed: `2048.0`,
    `1e3`): int() and pydantic also read other scripts' digits (`١٢`) and `1_000`, so `--top ١٢` and `--seq-len 1_000`
    were taken while `--budget 1_000` was refused. Commas only between groups of three (`2,048`, as published tables
    and orch's own print counts), as money is read."""
    typed = text.strip()
    if THOUSANDS.fullmatch(typed.lstrip("+-")):
        typed = typed.replace(",", "")
    if (digits := typed.lstrip("+-")).isascii() and digits.isdigit() and len(digits) > MOST_DIGITS:
        # float() made it inf ("must be a whole number, got inf"), and int() refuses to read it
        raise UserError(f"{flag} is a number of {len(digits):,} digits, larger than any {flag} takes: give a smaller "
                        "one.")
    with reading_number(flag, f"{flag} {checks.short_repr(text)} is not a whole number: write it with the digits 0-9 "
                              "(no _ between them, and a comma only between groups of three: 2,048)."):
        value = plain_number(typed)
    if math.isinf(value) and "inf" not in typed.lower():  # `1e400`, read as inf: said as typed, not as "got inf"
        raise UserError(f"{flag} {checks.short_repr(typed)} is past any number orch computes with: give one nearer 0.")
    checks.number(value, flag, whole=True)  # NaN, inf and fractions, each said as such
    return int(typed) if typed.lstrip("+-").isdigit() else int(value)  # digits in full: exact past 2**53
