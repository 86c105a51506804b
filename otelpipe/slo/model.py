"""The immutable SLO model that every spec form parses into and every consumer reads.

Both the native YAML form and OpenSLO v1 become these frozen dataclasses, so the evaluator,
the rule generator and the dashboard generator never see a spec's spelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from otelpipe.processors.red_snapshot import (
    HTTP_METHOD,
    HTTP_ROUTE,
    SERVICE_NAME,
    SPAN_KIND,
    SPAN_KIND_LABELS,
    SPAN_KINDS_BY_NAME,
    SPAN_NAME,
    AttributeValue,
)
from otelpipe.slo.durations import format_duration

SLIKind = Literal["availability", "latency"]
TierSeverity = Literal["page", "ticket"]

THIRTY_DAYS = 30 * 86400.0

SPAN_KINDS = tuple(SPAN_KIND_LABELS[kind] for kind in SPAN_KINDS_BY_NAME.values())


@dataclass(frozen=True, slots=True)
class Selector:
    """Which RED series count towards an SLI: exact values of RED dimensions, None = any.

    Values are spelled as the RED store (and the spanmetrics connector) spell them, e.g.
    `span_kind="SPAN_KIND_SERVER"`.
    """

    service: str
    span_name: str | None = None
    http_route: str | None = None
    http_method: str | None = None
    span_kind: str | None = "SPAN_KIND_SERVER"

    def dimensions(self) -> tuple[tuple[str, str], ...]:
        """(RED dimension name, required value) pairs, in a fixed order."""
        pairs = (
            (SERVICE_NAME, self.service),
            (SPAN_NAME, self.span_name),
            (SPAN_KIND, self.span_kind),
            (HTTP_ROUTE, self.http_route),
            (HTTP_METHOD, self.http_method),
        )
        return tuple((name, value) for name, value in pairs if value is not None)

    def matches(self, attributes: Mapping[str, AttributeValue]) -> bool:
        """True when every constrained dimension of `attributes` has the required value."""
        return all(attributes.get(name) == value for name, value in self.dimensions())


@dataclass(frozen=True, slots=True)
class SLI:
    """Good events / all events of the selected series.

    availability: good = calls that did not end in error.
    latency: good = calls with duration <= `threshold_seconds` (a RED bucket boundary).
    """

    kind: SLIKind
    selector: Selector
    threshold_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class AlertTier:
    """Multi-window burn-rate condition: fire when both windows burn at least `factor` x budget."""

    severity: TierSeverity
    short_window: float  # seconds
    long_window: float  # seconds
    factor: float
    for_seconds: float = 0.0  # the condition must hold this long before the tier fires (`for:`)

    @property
    def name(self) -> str:
        """Stable label such as `page-5m-1h`."""
        return f"{self.severity}-{format_duration(self.short_window)}-{format_duration(self.long_window)}"


# Sloth's defaults for a 30-day period (Google SRE Workbook, table 5-8, plus a 2h/1d ticket).
SLOTH_TIERS_30D: tuple[AlertTier, ...] = (
    AlertTier("page", 300.0, 3600.0, 14.4),
    AlertTier("page", 1800.0, 21600.0, 6.0),
    AlertTier("ticket", 7200.0, 86400.0, 3.0),
    AlertTier("ticket", 21600.0, 259200.0, 1.0),
)


def default_tiers(period_seconds: float) -> tuple[AlertTier, ...]:
    """Sloth's 30-day tiers scaled to `period_seconds`.

    Window lengths scale with period/30d and the factors stay, so each tier still fires after
    the same fraction of the period's budget is spent (14.4x over 1h of 30d = 2 %; over 2m of
    a 1-day period it is also 2 %).
    """
    scale = period_seconds / THIRTY_DAYS
    return tuple(
        AlertTier(t.severity, t.short_window * scale, t.long_window * scale, t.factor)
        for t in SLOTH_TIERS_30D
    )


@dataclass(frozen=True, slots=True)
class AlertOptions:
    """Sloth's `page_alert` / `ticket_alert`: labels and annotations of that severity's alert.

    `disable` removes the severity's tiers altogether (on both paths: no rule, no incident).
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    disable: bool = False


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Sloth's `alerting` block: the alert name and what every alert of the SLO carries."""

    name: str = ""  # empty: `<Service><Name>SLO`
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    page: AlertOptions = field(default_factory=AlertOptions)
    ticket: AlertOptions = field(default_factory=AlertOptions)


@dataclass(frozen=True, slots=True)
class SLO:
    """One service level objective, validated and ready to evaluate or generate rules for."""

    name: str
    service: str
    objective: float  # ratio, e.g. 0.999
    period: float  # seconds of the rolling window the budget covers
    sli: SLI
    tiers: tuple[AlertTier, ...]
    min_events: int = 0  # no tier fires with fewer events than this in its long window
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""  # where in its spec file it was declared, e.g. `slos[1]`, for messages
    alerting: AlertSettings = field(default_factory=AlertSettings)

    @property
    def key(self) -> str:
        """Stable identity `service/name`, used for state rows and alert keys."""
        return f"{self.service}/{self.name}"

    @property
    def error_budget(self) -> float:
        """Fraction of events allowed to be bad over the period."""
        return round(1.0 - self.objective, 12)

    def windows(self) -> tuple[float, ...]:
        """Every window length (seconds) the evaluator must keep sums for, period included, sorted."""
        lengths = {self.period}
        for tier in self.tiers:
            lengths.add(tier.short_window)
            lengths.add(tier.long_window)
        return tuple(sorted(lengths))


@dataclass(frozen=True, slots=True)
class SLOSpec:
    """All SLOs of one spec file."""

    slos: tuple[SLO, ...]
    source: str = "<memory>"  # file the spec came from, for messages
