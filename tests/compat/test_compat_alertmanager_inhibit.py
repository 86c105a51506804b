"""The shipped Alertmanager config links Prometheus' generated SLO alerts and otelpipe's own incidents.

Debian's Alertmanager runs with collector-config/alertmanager/alertmanager.yml as shipped (only the
receivers' URLs point at a local port). otelpipe's in-process path is real (SLO evaluator ->
incident engine -> AlertmanagerNotifier); the Prometheus side is posted with exactly the labels
the generated rule gives its alert (rule labels plus the recording series' labels), as Prometheus
itself posts them. A page from either path inhibits the other path's ticket for the same SLO
(`equal: [sloth_id]`), and only for that SLO.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from otelpipe.exporters._delivery import DeliveryOptions
from otelpipe.exporters.alertmanager import AlertmanagerNotifier
from otelpipe.incidents.engine import IncidentEngine
from otelpipe.processors.red_snapshot import REDSnapshot, SeriesStats
from otelpipe.slo.evaluator import SLOEvaluator
from otelpipe.slo.prometheus_rules import generate_rules
from otelpipe.slo.spec import load_spec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).parents[2]
SHIPPED = ROOT / "collector-config" / "alertmanager" / "alertmanager.yml"
DEMO = ROOT / "otelpipe" / "demo" / "slo.yaml"
BOUNDS = (0.1, 0.4, 1.0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def alertmanager(tmp_path: Path, alertmanager_server: Any) -> Iterator[str]:
    """The shipped config, its webhook receivers pointed at a port nobody listens on."""
    config = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    dead = f"http://127.0.0.1:{_free_port()}/"
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = dead
    with alertmanager_server(yaml.safe_dump(config), tmp_path) as url:
        yield url


def _alerts(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url + "/api/v2/alerts", timeout=5) as response:
        alerts: list[dict[str, Any]] = json.load(response)
    return alerts


def _post_prometheus_alert(url: str, labels: dict[str, str]) -> None:
    now = datetime.now(UTC)
    body = [
        {
            "labels": labels,
            "annotations": {"summary": "from Prometheus"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=5)).isoformat(),
        }
    ]
    request = urllib.request.Request(
        url + "/api/v2/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _prometheus_labels(slo_name: str, severity: str) -> dict[str, str]:
    """The labels Prometheus gives the generated alert: rule labels plus its series' labels."""
    groups = yaml.safe_load(generate_rules(load_spec(DEMO)))["groups"]
    ident = f"shop-{slo_name}"
    (meta,) = [g for g in groups if g["name"] == f"sloth-slo-meta-recordings-{ident}"]
    series_labels = dict(meta["rules"][0]["labels"])  # slo labels + sloth_id/service/slo
    (alert,) = [
        r
        for g in groups
        if g["name"] == f"sloth-slo-alerts-{ident}"
        for r in g["rules"]
        if r["labels"]["sloth_severity"] == severity
    ]
    return {**series_labels, **alert["labels"], "alertname": alert["alert"]}


def _in_process(url: str, error_ratio: float) -> AlertmanagerNotifier:
    """Evaluate the demo spec on one snapshot and post what fires through the real notifier."""
    notifier = AlertmanagerNotifier(url, options=DeliveryOptions(timeout_s=2.0, backoff_base_s=0.01))
    engine = IncidentEngine([notifier], hold_down_s=60)
    evaluator = SLOEvaluator(load_spec(DEMO), boundaries=BOUNDS, clock=lambda: 1_000_000.0)
    attributes = {"service.name": "shop", "span.kind": "SPAN_KIND_SERVER", "status.code": "STATUS_CODE_ERROR"}
    ok = {**attributes, "status.code": "STATUS_CODE_UNSET"}
    errors = int(10_000 * error_ratio)
    snapshot = REDSnapshot(
        BOUNDS,
        (
            SeriesStats(attributes, errors, errors, (errors, 0, 0, 0), 0, 0, 0, 1),
            SeriesStats(ok, 10_000 - errors, 0, (10_000 - errors, 0, 0, 0), 0, 0, 0, 1),
        ),
        0,
    )
    engine.observe(evaluator.tick(snapshot))
    assert notifier.force_flush(10)
    return notifier


def _by_source(alerts: list[dict[str, Any]], slo: str) -> dict[str, dict[str, Any]]:
    """`in-process|prometheus` -> alert, for one SLO."""
    return {
        ("in-process" if "otelpipe_key" in a["labels"] else "prometheus"): a
        for a in alerts
        if a["labels"].get("sloth_slo") == slo
    }


def _wait_state(url: str, predicate: Any, timeout: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        alerts = _alerts(url)
        if predicate(alerts) or time.monotonic() > deadline:
            return alerts
        time.sleep(0.2)


def test_in_process_page_inhibits_the_prometheus_ticket_of_the_same_slo(alertmanager: str) -> None:
    notifier = _in_process(alertmanager, error_ratio=0.5)  # burn 500x: page
    try:
        ticket = _prometheus_labels("api-availability", "ticket")
        _post_prometheus_alert(alertmanager, ticket)
        other_slo_ticket = _prometheus_labels("order-processing", "ticket")
        _post_prometheus_alert(alertmanager, other_slo_ticket)

        def settled(alerts: list[dict[str, Any]]) -> bool:
            found = _by_source(alerts, "api-availability")
            return "prometheus" in found and found["prometheus"]["status"]["state"] == "suppressed"

        alerts = _wait_state(alertmanager, settled)
        found = _by_source(alerts, "api-availability")
        page = found["in-process"]
        assert page["labels"]["alertname"] == ticket["alertname"] == "ShopApiAvailabilitySLO"
        assert page["labels"]["sloth_severity"] == "page" and page["status"]["state"] == "active"
        assert page["labels"]["sloth_id"] == ticket["sloth_id"] == "shop-api-availability"
        assert found["prometheus"]["status"]["state"] == "suppressed"
        assert found["prometheus"]["status"]["inhibitedBy"] == [page["fingerprint"]]
        (other,) = _by_source(alerts, "order-processing").values()
        assert other["status"]["state"] == "active"  # another SLO's ticket is not inhibited
    finally:
        notifier.shutdown()


def test_prometheus_page_inhibits_the_in_process_ticket(alertmanager: str) -> None:
    page = _prometheus_labels("api-availability", "page")
    _post_prometheus_alert(alertmanager, page)
    notifier = _in_process(alertmanager, error_ratio=0.0035)  # burn 3.5x: ticket only
    try:

        def settled(alerts: list[dict[str, Any]]) -> bool:
            found = _by_source(alerts, "api-availability")
            return "in-process" in found and found["in-process"]["status"]["state"] == "suppressed"

        found = _by_source(_wait_state(alertmanager, settled), "api-availability")
        ticket = found["in-process"]
        assert ticket["labels"]["sloth_severity"] == "ticket" and ticket["labels"]["severity"] == "warning"
        assert ticket["labels"]["alertname"] == page["alertname"]
        assert ticket["status"]["state"] == "suppressed"
        assert ticket["status"]["inhibitedBy"] == [found["prometheus"]["fingerprint"]]
        # A page of one SLO never silences another SLO's ticket (no rule may match on absent labels).
        _post_prometheus_alert(alertmanager, _prometheus_labels("order-processing", "ticket"))
        # Alertmanager computes an alert's inhibition when it is read, so once it is listed its state is final.
        listed = _wait_state(alertmanager, lambda alerts: _by_source(alerts, "order-processing"), timeout=30)
        (other,) = _by_source(listed, "order-processing").values()
        assert other["status"]["state"] == "active", other
    finally:
        notifier.shutdown()
