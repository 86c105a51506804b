"""Incidents and their transitions: what the engine remembers and what notifiers are told.

An `Incident` is immutable; every change produces a new value, so a notifier's queue can hold a
snapshot that later ticks never mutate under it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from otelpipe.alerts import Severity
from otelpipe.processors.red_snapshot import ExemplarRef

EventKind = Literal["opened", "updated", "renotified", "resolved"]
IncidentStatus = Literal["open", "resolved"]

# PagerDuty caps dedup_key at 255 characters; keep a margin for the prefix.
_MAX_DEDUP_KEY = 255
_DEDUP_PREFIX = "otelpipe/"


def dedup_key_for(key: str) -> str:
    """Stable deduplication key of one condition, the same across incidents and restarts."""
    candidate = _DEDUP_PREFIX + key
    if len(candidate) <= _MAX_DEDUP_KEY:
        return candidate
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return candidate[: _MAX_DEDUP_KEY - len(digest) - 1] + "#" + digest


def incident_id_for(key: str, opened_at: float) -> str:
    """Id of one occurrence: stable for the incident's life, distinct across occurrences."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"inc-{digest}-{int(opened_at)}"


@dataclass(frozen=True, slots=True)
class TraceLink:
    """An example request behind the incident, with a link into the tracing UI when configured."""

    trace_id: str
    span_id: str
    duration_s: float
    error: bool
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    """One occurrence of a condition, from first firing until it stayed clear for the hold-down."""

    id: str
    dedup_key: str
    key: str
    service: str
    name: str
    kind: Literal["slo", "rule"]
    severity: Severity
    status: IncidentStatus
    summary: str
    opened_at: float
    updated_at: float  # time of the latest evidence
    last_notified_at: float
    tier: str = ""
    objective: float | None = None
    burn_rates: Mapping[str, float] = field(default_factory=dict)
    budget_remaining: float | None = None
    total: int = 0
    errors: int = 0
    traces: tuple[TraceLink, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    notified_burn: float = 0.0  # worst burn rate at the last notification (drives "large change" updates)
    clear_since: float | None = None  # condition clear since then; None while firing
    recovered_at: float | None = None  # when the condition cleared for good (MTTR end)
    resolved_at: float | None = None  # when the hold-down elapsed and the incident closed
    notifications: int = 1  # opened + updates + renotifications sent

    @property
    def max_burn(self) -> float:
        """Worst burn rate of any window in the latest evidence (0 for rules)."""
        return max(self.burn_rates.values(), default=0.0)

    @property
    def time_to_recover_s(self) -> float | None:
        """Seconds from opening until the condition cleared for good; None while open."""
        if self.recovered_at is None:
            return None
        return max(0.0, self.recovered_at - self.opened_at)


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One transition worth telling people about, with the incident as it was at that moment."""

    kind: EventKind
    incident: Incident
    at: float
    previous_severity: Severity | None = None


def trace_links(
    exemplars: tuple[ExemplarRef, ...], template: str | None, limit: int
) -> tuple[TraceLink, ...]:
    """Example traces, failing and sampled ones first (those are the ones a UI can show)."""
    ranked = sorted(exemplars, key=lambda e: (not e.error, not e.sampled, -e.value))
    links: list[TraceLink] = []
    seen: set[str] = set()
    for ref in ranked:
        if ref.trace_id in seen:
            continue
        seen.add(ref.trace_id)
        url = template.replace("{trace_id}", ref.trace_id) if template else None
        links.append(TraceLink(ref.trace_id, ref.span_id, ref.value, ref.error, url))
        if len(links) >= limit:
            break
    return tuple(links)
