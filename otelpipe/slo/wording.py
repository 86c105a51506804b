"""How SLO figures are put into words, once, so the demo, `slo status` and incidents never disagree.

A budget below zero is not a percentage anyone reads ("-15367.6 %"): it is said as exhausted, with
how many budgets were spent. Durations are whole seconds or more in text meant for people.
"""

from __future__ import annotations

from otelpipe.slo.durations import format_duration


def spent_times(remaining: float) -> str:
    """How many budgets were spent, for an exhausted budget: `1.3` or `154`."""
    spent = 1.0 - remaining
    return f"{spent:.1f}" if spent < 10 else f"{spent:.0f}"


def budget_short(remaining: float | None) -> str:
    """Compact, for tables: `72.3% left`, `exhausted x154`, `no traffic`."""
    if remaining is None:
        return "no traffic"
    if remaining >= 0:
        return f"{remaining:.1%} left"
    return f"exhausted x{spent_times(remaining)}"


def budget_text(remaining: float | None, period: str) -> str:
    """A sentence part: `72.3% of the 30d error budget left` or `30d error budget exhausted (spent x154)`."""
    if remaining is None:
        return f"no traffic in the {period} period yet"
    if remaining >= 0:
        return f"{remaining:.1%} of the {period} error budget left"
    return f"{period} error budget exhausted (spent x{spent_times(remaining)})"


def human_duration(seconds: float) -> str:
    """`48s`, `5m12s`, `2h`: whole seconds (sub-second figures only below one second)."""
    if seconds < 1:
        return format_duration(seconds)
    return format_duration(round(seconds))
