"""Burn-rate arithmetic and tier verdicts."""

import pytest

from otelpipe.slo.burn import budget_remaining, burn_rate, error_ratio, evaluate_tier
from otelpipe.slo.model import SLOTH_TIERS_30D, AlertTier, default_tiers


def test_burn_rate_is_error_ratio_over_budget() -> None:
    assert error_ratio(990, 1000) == pytest.approx(0.01)
    assert burn_rate(990, 1000, 0.999) == pytest.approx(10.0)
    assert burn_rate(0, 0, 0.999) == 0.0
    assert budget_remaining(999_500, 1_000_000, 0.999) == pytest.approx(0.5)
    assert budget_remaining(990, 1000, 0.999) == pytest.approx(-9.0)


def test_tier_fires_exactly_at_factor_and_not_below() -> None:
    tier = AlertTier("page", 300, 3600, 14.4)
    # 144 bad of 10_000 at 99.9 % is exactly 14.4x
    at = evaluate_tier(tier, (9856, 10_000), (9856, 10_000), 0.999, 0)
    below = evaluate_tier(tier, (9857, 10_000), (9856, 10_000), 0.999, 0)
    assert at.firing and at.long_bad == 144 and at.long_total == 10_000
    assert not below.firing  # short window at 14.3x


def test_min_events_guard() -> None:
    tier = AlertTier("page", 300, 3600, 14.4)
    assert not evaluate_tier(tier, (0, 5), (0, 5), 0.999, 10).firing
    assert evaluate_tier(tier, (0, 10), (0, 10), 0.999, 10).firing


def test_default_tiers_scale_windows_and_keep_factors() -> None:
    assert default_tiers(30 * 86400) == SLOTH_TIERS_30D
    day = default_tiers(86400)
    assert [(t.short_window, t.long_window, t.factor) for t in day] == [
        (10, 120, 14.4),
        (60, 720, 6),
        (240, 2880, 3),
        (720, 8640, 1),
    ]
    assert [t.name for t in day] == ["page-10s-2m", "page-1m-12m", "ticket-4m-48m", "ticket-12m-2h24m"]
