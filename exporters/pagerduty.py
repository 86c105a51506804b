"""PagerDuty Events API v2 notifier: `trigger` on open and update, `resolve` on resolution.

Every event of one condition carries the incident's `dedup_key`, so PagerDuty folds updates into
the alert it already has instead of paging again. Renotifications are not sent: re-alerting a
still-open PagerDuty incident is the job of its escalation policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from otelpipe.exporters._delivery import DeliveryOptions, QueuedNotifier
from otelpipe.exporters._http import post_json
from otelpipe.incidents.codec import incident_to_dict
from otelpipe.incidents.document import rfc3339
from otelpipe.incidents.model import IncidentEvent

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
_MAX_SUMMARY = 1024
# Fields of `incident_to_dict` in `custom_details`, under their own names.
_DETAILS = ("key", "tier", "objective", "burn_rates", "budget_remaining", "total", "errors")


def pagerduty_body(
    event: IncidentEvent, routing_key: str, severity_map: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """The Events v2 body for `event`, or None when the event is not sent (renotifications)."""
    incident = event.incident
    if event.kind == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": incident.dedup_key}
    if event.kind == "renotified":
        return None
    severity = (severity_map or {}).get(incident.severity, incident.severity)
    if severity not in PAGERDUTY_SEVERITIES:
        severity = "error"
    data = incident_to_dict(incident)
    details: dict[str, Any] = {
        "event": event.kind,
        "incident_id": data["id"],
        **{name: data[name] for name in _DETAILS},
        "trace_ids": [t["trace_id"] for t in data["traces"]],
        "labels": data["labels"],
    }
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": incident.dedup_key,
        "payload": {
            "summary": incident.summary[:_MAX_SUMMARY] or incident.key,
            "source": incident.service,
            "severity": severity,
            "timestamp": rfc3339(incident.opened_at),
            "component": incident.name,
            "group": incident.service,
            "class": incident.kind,
            "custom_details": details,
        },
        "links": [{"href": t.url, "text": f"Example trace {t.trace_id}"} for t in incident.traces if t.url],
        "client": "otelpipe",
    }


class PagerDutyNotifier(QueuedNotifier):
    """Sends incidents to a PagerDuty service integration; `routing_key` is never logged."""

    name = "pagerduty"

    def __init__(
        self,
        routing_key: str,
        url: str = DEFAULT_URL,
        *,
        severity_map: Mapping[str, str] | None = None,
        options: DeliveryOptions | None = None,
        meter: Meter | None = None,
    ) -> None:
        if not routing_key:
            raise ValueError("routing_key must not be empty")
        self._routing_key = routing_key
        self._url = url
        self._severity_map = dict(severity_map or {})
        super().__init__(options, meter=meter)

    def __repr__(self) -> str:
        return "PagerDutyNotifier(routing_key='***')"

    def _deliver(self, event: IncidentEvent) -> None:
        body = pagerduty_body(event, self._routing_key, self._severity_map)
        if body is not None:
            post_json(self._url, body, timeout_s=self.timeout_s, cancellation=self._cancellation)

    def _secrets(self) -> tuple[str, ...]:
        return (self._routing_key,)
