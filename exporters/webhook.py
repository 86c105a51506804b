"""Generic webhook notifier: one HTTP POST per incident transition, JSON or Slack-compatible.

Body with ``format="json"`` (schema ``otelpipe.incident/v1``; times are UTC RFC 3339)::

    {
      "schema": "otelpipe.incident/v1",
      "event": "opened" | "updated" | "renotified" | "resolved",
      "at": "2024-05-01T12:00:00.000Z",          # when the transition happened
      "previous_severity": "warning" | null,     # set on "updated"
      "incident": {
        "id": "inc-3f2a9c0d1e-1714564800",       # one occurrence
        "dedup_key": "otelpipe/checkout/availability",  # stable per condition
        "key": "checkout/availability",
        "service": "checkout",
        "name": "availability",                  # SLO or rule name
        "kind": "slo" | "rule",
        "severity": "critical" | "error" | "warning" | "info",
        "status": "open" | "resolved",
        "summary": "availability burning 14.9x budget over 5m/1h (page fires at 14.4x); ...",
        "opened_at": "...", "recovered_at": "..." | null, "resolved_at": "..." | null,
        "tier": "page-5m-1h",
        "objective": 0.999 | null,
        "burn_rates": {"5m": 15.2, "1h": 14.9},
        "budget_remaining": 0.82 | null,         # fraction of the period's budget, may be < 0
        "total": 12000, "errors": 180,           # requests in the long window of the worst tier
        "labels": {"team": "shop"},
        "traces": [{"trace_id": "<32 hex>", "span_id": "<16 hex>", "duration_s": 0.31,
                    "error": true, "url": "http://jaeger/trace/<32 hex>" | null}]
      }
    }

With ``format="slack"`` the body is ``{"text": "..."}``, which Slack incoming webhooks (and
Mattermost, Teams connectors' Slack mode) render as one message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from otelpipe.exporters._delivery import DeliveryOptions, QueuedNotifier, mask_url
from otelpipe.exporters._http import post_json
from otelpipe.incidents.document import incident_document, rfc3339
from otelpipe.incidents.model import IncidentEvent
from otelpipe.slo.wording import budget_short

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

SCHEMA = "otelpipe.incident/v1"

_ICONS = {
    "opened": ":rotating_light:",
    "updated": ":warning:",
    "renotified": ":bell:",
    "resolved": ":white_check_mark:",
}


def webhook_body(event: IncidentEvent) -> dict[str, Any]:
    """The documented JSON body of one event."""
    return {
        "schema": SCHEMA,
        "event": event.kind,
        "at": rfc3339(event.at),
        "previous_severity": event.previous_severity,
        "incident": incident_document(event.incident),
    }


def slack_body(event: IncidentEvent) -> dict[str, Any]:
    """A Slack-compatible `{"text": ...}` message with the summary and trace links."""
    incident = event.incident
    lines = [
        f"{_ICONS[event.kind]} *[{incident.severity.upper()}] {event.kind}*: {incident.service} / "
        f"{incident.name}",
        incident.summary,
    ]
    if incident.total:
        lines.append(f"{incident.errors} errors of {incident.total} requests")
    if incident.budget_remaining is not None:
        lines.append(f"error budget: {budget_short(incident.budget_remaining)}")  # never "-15367.6%"
    for trace in incident.traces:
        lines.append(f"<{trace.url}|trace {trace.trace_id}>" if trace.url else f"trace {trace.trace_id}")
    lines.append(f"incident {incident.id}")
    return {"text": "\n".join(lines)}


class WebhookNotifier(QueuedNotifier):
    """POSTs every transition to `url` (the URL is treated as a secret: it often embeds a token)."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        format: Literal["json", "slack"] = "json",
        *,
        headers: dict[str, str] | None = None,
        options: DeliveryOptions | None = None,
        meter: Meter | None = None,
    ) -> None:
        if format not in ("json", "slack"):
            raise ValueError(f"format must be 'json' or 'slack', got {format!r}")
        self._url = url
        self._format = format
        self._headers = dict(headers or {})
        super().__init__(options, meter=meter)

    def __repr__(self) -> str:
        return f"WebhookNotifier({mask_url(self._url)!r}, format={self._format!r})"

    def _deliver(self, event: IncidentEvent) -> None:
        body = webhook_body(event) if self._format == "json" else slack_body(event)
        post_json(
            self._url, body, timeout_s=self.timeout_s, headers=self._headers, cancellation=self._cancellation
        )

    def _secrets(self) -> tuple[str, ...]:
        return (self._url, *self._headers.values())
