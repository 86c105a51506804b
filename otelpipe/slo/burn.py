"""Pure burn-rate arithmetic: from raw good/total counts to burn rates, tier verdicts and budget.

Burn rate = observed error ratio / allowed error ratio (1 - objective): 1.0 spends the budget
exactly over the period. Ratios come from summed counts over the window, so busy minutes weigh
more than quiet ones (unlike an average of per-minute ratios).
"""

from __future__ import annotations

from dataclasses import dataclass

from otelpipe.slo.model import AlertTier


def error_ratio(good: int, total: int) -> float:
    """Bad events / all events; 0.0 when there were none (no traffic burns no budget)."""
    if total <= 0:
        return 0.0
    return max(0, total - good) / total


def burn_rate(good: int, total: int, objective: float) -> float:
    """How many times faster than sustainable the window spends the error budget."""
    return error_ratio(good, total) / round(1.0 - objective, 12)  # 1 - 0.999 is not 0.001 in binary


def budget_remaining(good: int, total: int, objective: float) -> float:
    """Fraction of the period's error budget left (1 - period burn rate); negative once overspent."""
    return 1.0 - burn_rate(good, total, objective)


@dataclass(frozen=True, slots=True)
class TierVerdict:
    """Outcome of one tier at one tick."""

    tier: AlertTier
    firing: bool
    short_burn: float
    long_burn: float
    long_total: int
    long_bad: int
    enough_traffic: bool


def evaluate_tier(
    tier: AlertTier,
    short: tuple[int, int],
    long: tuple[int, int],
    objective: float,
    min_events: int,
) -> TierVerdict:
    """Fire when both windows burn at least `tier.factor` and the long window saw >= `min_events`.

    `short` and `long` are (good, total) over the tier's windows. The short window makes the alert
    stop soon after the burn stops; the long one keeps a brief spike from paging.
    """
    short_burn = burn_rate(short[0], short[1], objective)
    long_burn = burn_rate(long[0], long[1], objective)
    enough = long[1] >= max(1, min_events)
    # A hair of tolerance: 1 - 0.999 is not exactly 0.001 in binary, and a burn of exactly the
    # factor is meant to fire.
    threshold = tier.factor * (1.0 - 1e-9)
    firing = enough and short_burn >= threshold and long_burn >= threshold
    return TierVerdict(
        tier=tier,
        firing=firing,
        short_burn=short_burn,
        long_burn=long_burn,
        long_total=long[1],
        long_bad=max(0, long[1] - long[0]),
        enough_traffic=enough,
    )
