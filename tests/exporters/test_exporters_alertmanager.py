"""AlertmanagerNotifier against Debian's real Alertmanager, plus payload checks on a local server."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from otelpipe.alerts import AlertState, Severity
from otelpipe.exporters._delivery import DeliveryOptions
from otelpipe.exporters.alertmanager import AlertmanagerNotifier
from otelpipe.incidents.engine import IncidentEngine
from otelpipe.incidents.store import IncidentStore
from otelpipe.processors.red_snapshot import ExemplarRef

if TYPE_CHECKING:
    from conftest import EventFactory, Recorder

BINARY = "/usr/bin/prometheus-alertmanager"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
FAST = DeliveryOptions(timeout_s=2.0, backoff_base_s=0.01)
CONFIG = """
route:
  receiver: "null"
receivers:
  - name: "null"
"""


@pytest.fixture
def alertmanager(tmp_path: Path, alertmanager_server: Any) -> Iterator[str]:
    with alertmanager_server(CONFIG, tmp_path) as url:
        yield url


def active_alerts(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url + "/api/v2/alerts", timeout=5) as response:
        alerts: list[dict[str, Any]] = json.load(response)
    return [a for a in alerts if a["status"]["state"] == "active"]


def _state(firing: bool, severity: Severity = "critical") -> AlertState:
    return AlertState(
        key="checkout/availability",
        service="checkout",
        name="availability",
        firing=firing,
        severity=severity,
        summary="availability burning 14.4x budget (page: 5m/1h)",
        at=time.time(),
        tier="page-5m-1h",
        objective=0.999,
        burn_rates={"5m": 14.4, "1h": 14.5},
        budget_remaining=0.5,
        total=1000,
        errors=30,
        exemplars=(ExemplarRef(TRACE_ID, "b7ad6b7169203331", 0.2, 1, True, True),),
        labels={"team": "shop"},
    )


@pytest.mark.integration
def test_incident_fires_stays_and_resolves_in_alertmanager(alertmanager: str) -> None:
    # endsAt 4 s ahead, re-sent every 0.3 s: a re-send may be 3.7 s late on a loaded machine.
    notifier = AlertmanagerNotifier(alertmanager, resend_interval_s=0.3, ends_after_s=4.0, options=FAST)
    engine = IncidentEngine(
        [notifier], hold_down_s=0.2, trace_url_template="http://jaeger:16686/trace/{trace_id}"
    )
    try:
        engine.observe([_state(True)])
        assert notifier.force_flush(10)
        (alert,) = active_alerts(alertmanager)
        assert alert["labels"] == {
            "alertname": "availability",
            "service": "checkout",
            "severity": "critical",
            "otelpipe_key": "checkout/availability",
            "otelpipe_kind": "slo",
            "team": "shop",
        }
        incident = engine.open_incidents()[0]
        assert alert["annotations"] == {
            "summary": "availability burning 14.4x budget (page: 5m/1h)",
            "incident_id": incident.id,
            "dedup_key": "otelpipe/checkout/availability",
            "errors": "30",
            "total": "1000",
            "burn_rates": "5m=14.40 1h=14.50",
            "objective": "0.999",
            "budget_remaining": "0.5000",
            "tier": "page-5m-1h",
            "trace_ids": TRACE_ID,
            "trace_url": f"http://jaeger:16686/trace/{TRACE_ID}",
        }
        assert alert["generatorURL"] == f"http://jaeger:16686/trace/{TRACE_ID}"

        # Still firing well past the first endsAt: the notifier re-sent it in time.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            engine.observe([_state(True)])
            threading.Event().wait(0.2)
        assert [a["labels"]["alertname"] for a in active_alerts(alertmanager)] == ["availability"]

        engine.observe([_state(False)])
        threading.Event().wait(0.3)
        (resolved,) = engine.observe([_state(False)])
        assert resolved.kind == "resolved"
        assert notifier.force_flush(10)
        assert active_alerts(alertmanager) == []
        assert notifier.failed == 0 and notifier.dropped == 0
    finally:
        notifier.shutdown()


def test_severity_change_ends_the_old_severity_alert(recorder: Recorder, make_event: EventFactory) -> None:
    clock_now = 1_714_565_000.0
    notifier = AlertmanagerNotifier(recorder.url, clock=lambda: clock_now, options=FAST)
    event = make_event("updated", severity="critical")
    notifier.submit(type(event)("updated", event.incident, event.at, previous_severity="warning"))
    assert notifier.force_flush(10)
    notifier.shutdown()
    ((path, alerts),) = recorder.requests
    assert path == "/api/v2/alerts"
    assert [(a["labels"]["severity"], a["endsAt"]) for a in alerts] == [
        ("critical", "2024-05-01T12:08:20.000Z"),  # now + 300 s
        ("warning", "2024-05-01T12:03:20.000Z"),  # now: resolved
    ]
    assert all(a["startsAt"] == "2024-05-01T12:00:00.000Z" for a in alerts)


def test_restored_open_incident_is_reposted_without_an_event(recorder: Recorder, tmp_path: Path) -> None:
    IncidentEngine(store=IncidentStore(tmp_path)).observe([_state(True)])  # before the restart
    notifier = AlertmanagerNotifier(recorder.url, resend_interval_s=60, options=FAST)
    engine = IncidentEngine([notifier], store=IncidentStore(tmp_path))
    assert engine.observe([_state(True)]) == []
    assert recorder.wait_for(1)
    notifier.shutdown()
    ((_, alerts),) = recorder.requests
    assert [a["labels"]["otelpipe_key"] for a in alerts] == ["checkout/availability"]
