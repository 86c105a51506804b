"""The JSON form of an incident: the webhook body, PagerDuty custom details and `incidents list --json`."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from otelpipe.incidents.model import Incident


def rfc3339(timestamp: float) -> str:
    """UTC RFC 3339 with milliseconds, e.g. 2024-05-01T12:00:00.000Z (what Alertmanager and PagerDuty accept)."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _optional_time(timestamp: float | None) -> str | None:
    return None if timestamp is None else rfc3339(timestamp)


def incident_document(incident: Incident) -> dict[str, Any]:
    """Every figure of the incident, JSON-ready (see `otelpipe.exporters.webhook` for the schema)."""
    return {
        "id": incident.id,
        "dedup_key": incident.dedup_key,
        "key": incident.key,
        "service": incident.service,
        "name": incident.name,
        "kind": incident.kind,
        "severity": incident.severity,
        "status": incident.status,
        "summary": incident.summary,
        "opened_at": rfc3339(incident.opened_at),
        "recovered_at": _optional_time(incident.recovered_at),
        "resolved_at": _optional_time(incident.resolved_at),
        "tier": incident.tier,
        "objective": incident.objective,
        "burn_rates": dict(incident.burn_rates),
        "budget_remaining": incident.budget_remaining,
        "total": incident.total,
        "errors": incident.errors,
        "labels": dict(incident.labels),
        "traces": [
            {
                "trace_id": t.trace_id,
                "span_id": t.span_id,
                "duration_s": t.duration_s,
                "error": t.error,
                "url": t.url,
            }
            for t in incident.traces
        ],
    }
