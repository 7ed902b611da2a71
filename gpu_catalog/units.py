"""Units and the two money formulas, defined once: every module that turns bytes into GiB, seconds into dollars or a
price into $ per million tokens calls these, so the trainer's budget stop, the runs store, the planner and the report
can never disagree by a rounding or a factor of 3600."""

BYTES_PER_GIB = 1024**3
SECONDS_PER_HOUR = 3600.0
MAX_BUDGET_USD = 1e7  # the most any budget or price may be, flag or job key: a larger one is a typo


def usd_for(seconds: float, usd_per_hour: float) -> float:
    """What `seconds` on a target billed at `usd_per_hour` cost."""
    return seconds * usd_per_hour / SECONDS_PER_HOUR


def usd_per_million_tokens(usd_per_hour: float, tokens_per_s: float) -> float:
    """$ per million training tokens: the scale on which every target compares, whatever its speed."""
    return usd_per_hour / (tokens_per_s * SECONDS_PER_HOUR) * 1e6
