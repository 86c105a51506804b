"""The JSON form of an incident: the webhook body, PagerDuty custom details and `incidents list --json`."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from otelpipe.incidents.codec import incident_to_dict
from otelpipe.incidents.model import Incident


def rfc3339(timestamp: float) -> str:
    """UTC RFC 3339 with milliseconds, e.g. 2024-05-01T12:00:00.000Z (what Alertmanager and PagerDuty accept)."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# The documented fields, in the documented order (see `otelpipe.exporters.webhook`); the internal
# bookkeeping (updated_at, last_notified_at, notified_burn, clear_since, notifications) stays out.
_FIELDS = (
    "id",
    "dedup_key",
    "key",
    "service",
    "name",
    "kind",
    "severity",
    "status",
    "summary",
    "opened_at",
    "recovered_at",
    "resolved_at",
    "tier",
    "objective",
    "burn_rates",
    "budget_remaining",
    "total",
    "errors",
    "labels",
    "traces",
)
_TIMES = frozenset({"opened_at", "recovered_at", "resolved_at"})


def incident_document(incident: Incident) -> dict[str, Any]:
    """Every figure of the incident, JSON-ready, times in RFC 3339 (schema: `otelpipe.exporters.webhook`)."""
    data = incident_to_dict(incident)
    return {name: _time(data[name]) if name in _TIMES else data[name] for name in _FIELDS}


def _time(timestamp: float | None) -> str | None:
    return None if timestamp is None else rfc3339(timestamp)
