"""Alertmanager API v2 notifier: open incidents are alerts, re-sent while firing, resolved by `endsAt`.

Alertmanager identifies an alert by its label set and expires it at `endsAt`, so this notifier keeps
re-posting every open incident (from the engine's `sync`) before that moment, and posts it once
more with `endsAt` = now when it resolves. After a restart the restored open incidents are posted
again with the same labels: Alertmanager treats that as the same alert, so nobody is re-paged.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from otelpipe.exporters._delivery import DeliveryError, DeliveryOptions, QueuedNotifier, mask_url
from otelpipe.exporters._http import post_json
from otelpipe.incidents.document import rfc3339
from otelpipe.incidents.model import Incident, IncidentEvent

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")
_RESERVED = ("alertname", "service", "severity", "otelpipe_key", "otelpipe_kind")


def alert_labels(incident: Incident, severity: str | None = None) -> dict[str, str]:
    """Labels that identify the incident's alert (spec labels may add to, not override, them).

    An SLO incident carries the generated Prometheus alert's identity in its labels (`alertname`,
    `sloth_id`, ...); its `sloth_severity` follows the severity being posted (page when critical).
    """
    labels: dict[str, str] = {}
    for name, value in incident.labels.items():
        clean = _LABEL_NAME.sub("_", name)
        if clean and not clean[0].isdigit() and clean not in _RESERVED:
            labels[clean] = str(value)
    severity = severity or incident.severity
    labels.update(
        alertname=str(incident.labels.get("alertname") or incident.name),
        service=incident.service,
        severity=severity,
        otelpipe_key=incident.key,
        otelpipe_kind=incident.kind,
    )
    if "sloth_id" in labels:
        labels["sloth_severity"] = "page" if severity in ("critical", "error") else "ticket"
    return labels


def alert_annotations(incident: Incident) -> dict[str, str]:
    """The evidence, as strings (Alertmanager annotations are string-valued)."""
    annotations = {
        "summary": incident.summary,
        "incident_id": incident.id,
        "dedup_key": incident.dedup_key,
        "errors": str(incident.errors),
        "total": str(incident.total),
    }
    if incident.burn_rates:
        annotations["burn_rates"] = " ".join(f"{w}={b:.2f}" for w, b in incident.burn_rates.items())
    if incident.objective is not None:
        annotations["objective"] = f"{incident.objective:g}"
    if incident.budget_remaining is not None:
        annotations["budget_remaining"] = f"{incident.budget_remaining:.4f}"
    if incident.tier:
        annotations["tier"] = incident.tier
    if incident.traces:
        annotations["trace_ids"] = ",".join(t.trace_id for t in incident.traces)
        urls = [t.url for t in incident.traces if t.url]
        if urls:
            annotations["trace_url"] = urls[0]
    return annotations


def alert_body(
    incident: Incident, *, ends_at: float, now: float, severity: str | None = None
) -> dict[str, Any]:
    """One element of the POST /api/v2/alerts array."""
    starts_at = min(incident.opened_at, now)
    alert: dict[str, Any] = {
        "labels": alert_labels(incident, severity),
        "annotations": alert_annotations(incident),
        "startsAt": rfc3339(starts_at),
        "endsAt": rfc3339(max(ends_at, starts_at)),
    }
    url = next((t.url for t in incident.traces if t.url), None)
    if url and url.startswith(("http://", "https://")):
        alert["generatorURL"] = url
    return alert


class AlertmanagerNotifier(QueuedNotifier):
    """Posts incidents to `url` + `/api/v2/alerts`.

    Firing alerts get `endsAt` = now + `ends_after_s` and are re-posted every `resend_interval_s`
    (must be well below `ends_after_s`), so a crashed process's alerts resolve on their own.
    """

    name = "alertmanager"

    def __init__(
        self,
        url: str,
        *,
        resend_interval_s: float = 60.0,
        ends_after_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        options: DeliveryOptions | None = None,
        meter: Meter | None = None,
    ) -> None:
        if resend_interval_s <= 0 or ends_after_s <= resend_interval_s:
            raise ValueError("need 0 < resend_interval_s < ends_after_s")
        self._endpoint = url.rstrip("/") + "/api/v2/alerts"
        self._resend_s = resend_interval_s
        self._ends_after_s = ends_after_s
        self._clock = clock
        self._open_lock = threading.Lock()
        self._open: tuple[Incident, ...] | None = None  # None until the engine's first sync
        self._posted: set[str] = set()  # keys posted as firing by this process
        self._last_resend = time.monotonic()
        super().__init__(options, meter=meter, idle_interval_s=min(1.0, resend_interval_s / 2))

    def __repr__(self) -> str:
        return f"AlertmanagerNotifier({mask_url(self._endpoint)!r})"

    def sync(self, open_incidents: Sequence[Incident]) -> None:
        """Remember the open incidents to re-post; starts the worker so re-sends run after a restart."""
        with self._open_lock:
            self._open = tuple(open_incidents)
        if open_incidents:
            self._ensure_started()

    def _deliver(self, event: IncidentEvent) -> None:
        incident = event.incident
        now = self._clock()
        alerts: list[dict[str, Any]] = []
        if event.kind == "resolved":
            alerts.append(alert_body(incident, ends_at=now, now=now))
        else:
            alerts.append(alert_body(incident, ends_at=now + self._ends_after_s, now=now))
            if event.previous_severity and event.previous_severity != incident.severity:
                # Severity is a label, so the old-severity alert is a different alert: end it.
                alerts.append(alert_body(incident, ends_at=now, now=now, severity=event.previous_severity))
        self._post(alerts)
        if event.kind == "resolved":
            self._posted.discard(incident.key)
        else:
            self._posted.add(incident.key)

    def _on_idle(self) -> None:
        with self._open_lock:
            current = self._open
        if not current:
            return
        unposted = any(incident.key not in self._posted for incident in current)
        if not unposted and time.monotonic() - self._last_resend < self._resend_s:
            return
        self._last_resend = time.monotonic()
        now = self._clock()
        try:
            self._post([alert_body(i, ends_at=now + self._ends_after_s, now=now) for i in current])
        except (DeliveryError, OSError) as exc:
            self._warn("resend", "alertmanager: re-sending %d firing alert(s) failed: %s", len(current), exc)
            return
        self._posted.update(incident.key for incident in current)

    def _post(self, alerts: list[dict[str, Any]]) -> None:
        post_json(self._endpoint, alerts, timeout_s=self.timeout_s, cancellation=self._cancellation)

    def _secrets(self) -> tuple[str, ...]:
        return (self._endpoint,)
