"""Metric rules through `otelpipe.configure()`: reader on the app's MeterProvider, real system metrics, incidents."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("metric_rules_app.py")
RULES = """
version: otelpipe/v1
service: shop
slos:
  - {name: api, objective: 99, sli: {kind: availability}}
rules:
  - name: orders-stopped
    service: shop
    metric: shop.orders.created
    window: 1s
    rate: {below: 0.5}
    severity: critical
  # the seed's "CPU above 80 %", on real instrumentation output with forced thresholds so it fires
  - name: cpu-busy
    metric: system.cpu.utilization
    match: {state: idle}
    aggregate: avg
    value: {below: 101%}
  - name: process-cpu
    metric: process.cpu.utilization
    value: {above: 0}
  - {name: memory, metric: system.memory.utilization, match: {state: used}, value: {above: 0}}
  - {name: payments-only, service: payments, metric: shop.orders.created, absent: true}
"""


def run_app(tmp_path: Path, **env: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    spec = tmp_path / "slo.yaml"
    spec.write_text(RULES)
    environ = {
        "PATH": "/usr/bin:/bin",
        "OTEL_SERVICE_NAME": "shop",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTELPIPE_SLO_FILE": str(spec),
        "OTELPIPE_SLO_INTERVAL": "1h",  # the app ticks by hand
        "OTELPIPE_INCIDENT_HOLD_DOWN": "1h",
        **env,
    }
    result = subprocess.run(
        [sys.executable, str(APP)],
        check=False,
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.stdout.rstrip().endswith("DONE")
    return [line for line in lines if "key" in line], lines[-1]["states"]


def test_business_and_cpu_rules_fire_from_the_apps_own_metrics(tmp_path: Path) -> None:
    events, states = run_app(tmp_path)
    opened = {event["key"]: event for event in events if event["kind"] == "opened"}
    assert set(opened) == {"shop/orders-stopped", "shop/cpu-busy", "shop/process-cpu", "shop/memory"}
    assert opened["shop/orders-stopped"]["summary"].startswith("orders-stopped: shop.orders.created rate 0/s")
    # real psutil figures, as fractions: idle and used in [0, 1], the process used CPU
    idle = float(states["cpu-busy"].split(" = ")[1].split(" ")[0])
    used = float(states["memory"].split(" = ")[1].split(" ")[0])
    process = float(states["process-cpu"].split(" = ")[1].split(" ")[0])
    assert 0 <= idle <= 1 and 0 < used <= 1 and 0 < process <= 1
    assert "payments-only" not in states  # another service's rule is not this process's to judge


def test_system_metrics_can_be_switched_off(tmp_path: Path) -> None:
    events, states = run_app(tmp_path, OTELPIPE_SYSTEM_METRICS_ENABLED="false")
    assert {event["key"] for event in events} == {"shop/orders-stopped"}
    assert states["cpu-busy"] == "cpu-busy: system.cpu.utilization no data"


@pytest.fixture
def alertmanager(tmp_path: Path, alertmanager_server: Any) -> Iterator[str]:
    """Debian's Alertmanager on a free port, stopped by pid afterwards."""
    with alertmanager_server('route: {receiver: "null"}\nreceivers: [{name: "null"}]\n', tmp_path) as url:
        yield url


def test_a_metric_rule_incident_reaches_a_real_alertmanager(tmp_path: Path, alertmanager: str) -> None:
    events, _ = run_app(tmp_path, OTELPIPE_ALERTMANAGER_URL=alertmanager, OTELPIPE_SYSTEM_METRICS_ENABLED="false")
    assert [e["key"] for e in events if e["kind"] == "opened"] == ["shop/orders-stopped"]
    with urllib.request.urlopen(alertmanager + "/api/v2/alerts?active=true", timeout=5) as response:
        alerts = json.load(response)
    (alert,) = [a for a in alerts if a["labels"]["alertname"] == "orders-stopped"]
    assert alert["status"]["state"] == "active"
    assert alert["labels"]["service"] == "shop" and alert["labels"]["severity"] == "critical"
    assert alert["labels"]["otelpipe_key"] == "shop/orders-stopped"
    assert alert["labels"]["metric"] == "shop.orders.created"
    assert alert["annotations"]["summary"].startswith("orders-stopped: shop.orders.created rate 0/s")
