"""The numeric flags' ranges and the provider list, checked (finite, in range) before any work. No CLI framework here:
`orch plan`'s lean parser uses them as the typer commands do."""

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.names import unknown_name_message
from gpu_catalog.units import MAX_BUDGET_USD, MAX_DEADLINE_H


def parse_providers(text: str | None, flag: str = "--providers") -> set[str] | None:
    """The names in a comma list; None for a flag left out. A list with no name in it ('' or ',') is a mistake, not
    "any provider", and so is an empty entry ('aws,,gcp'): a name lost between commas, as `simulate --local` says."""
    if text is None:
        return None
    names = [p.strip().lower() for p in text.split(",")]
    if not any(names):
        raise UserError(f"{flag}: give at least one provider name (e.g. local,lambda), got {text!r}.")
    if "" in names:
        raise UserError(f"{flag}: an empty name between commas in {text!r}: give names separated by single commas "
                        "(e.g. local,lambda).")
    return set(names)


# Ranges of the numeric flags, checked (finite, in range) before any work: NaN and inf pass every `<` test, so a
# range alone would let `--budget nan` through to SQLite.
MAX_PRIORITY = 10**6


def check_budget(budget: float | None, flag: str = "--budget", zero_allowed: bool = False) -> float | None:
    """A budget buys something only above $0 (`--budget 0` planned every target, then refused them all); a monthly
    cap of 0 is a choice: no spend."""
    return checks.optional_number(budget, flag, 0, MAX_BUDGET_USD, above=not zero_allowed)


def check_deadline(deadline: float | None) -> float | None:
    return checks.optional_number(deadline, "--deadline", 0, MAX_DEADLINE_H, above=True)


def check_providers(text: str | None, known: set[str]) -> set[str] | None:
    """The providers named in a comma list, each one orch has offers for; a typo gets the near names."""
    wanted = parse_providers(text, "--provider")
    for name in sorted(wanted or ()):
        if name not in known:
            raise UserError(unknown_name_message("provider", name, sorted(known), "orch catalog offers"))
    return wanted
