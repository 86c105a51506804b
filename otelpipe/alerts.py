"""The one message type from detectors (SLO burn-rate tiers, threshold rules) to the incident engine.

Detectors are level-triggered: every evaluation tick they report the current state of each
condition, firing or not. The incident engine owns all edge logic (open, update, hold-down,
resolve), so flap suppression lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from otelpipe.processors.red_snapshot import ExemplarRef

Severity = Literal["critical", "error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class AlertState:
    """Current state of one alerting condition, e.g. one SLO (all its tiers) or one threshold rule."""

    key: str  # stable identity, e.g. "checkout/api-availability"; the incident dedup key derives from it
    service: str
    name: str  # SLO or rule name
    firing: bool
    severity: Severity  # of the worst firing tier; meaningful only while firing
    summary: str  # one human line, e.g. "api-availability burning 14.9x budget over 5m/1h (page fires at 14.4x); ..."
    at: float  # evaluation time, seconds since the epoch (fake clock in tests)
    kind: Literal["slo", "rule"] = "slo"
    tier: str = ""  # e.g. "page-5m-1h" for SLO tiers
    objective: float | None = None  # e.g. 0.999
    burn_rates: Mapping[str, float] = field(default_factory=dict)  # window label ("5m", "1h") -> burn
    budget_remaining: float | None = None  # fraction of the period's error budget left, may be < 0
    total: int = 0  # requests in the long window of the worst tier
    errors: int = 0  # bad requests in the same window
    exemplars: tuple[ExemplarRef, ...] = ()  # example failing or slow requests
    labels: Mapping[str, str] = field(default_factory=dict)  # extra labels from the spec
