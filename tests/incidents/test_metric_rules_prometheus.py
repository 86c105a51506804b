"""Generated metric-rule alerts in Debian's real Prometheus, scraping the metrics an app records."""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, start_http_server

from otelpipe.incidents.metric_promql import alert_name, metric_rule_group
from otelpipe.incidents.metric_rules import parse_metric_rules

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

HARNESS = Path(__file__).parents[1] / "integration" / "slo_detection_harness.py"
RULES = parse_metric_rules(
    {
        "rules": [
            {"name": "queue-long", "metric": "shop.queue.length", "value": {"above": 10}},
            {"name": "orders-flowing", "metric": "shop.orders.created", "window": "5s", "rate": {"above": 1}},
            {
                "name": "big-orders",
                "metric": "shop.order.amount",
                "unit": "USD",
                "window": "5s",
                "quantile": {"quantile": 0.5, "above": 100, "min_count": 3},
            },
            {"name": "queue-short", "metric": "shop.queue.length", "value": {"below": 10}},  # must not fire
        ]
    }
)


def _harness() -> ModuleType:
    name = "slo_detection_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HARNESS)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def app_metrics() -> Iterator[str]:
    """An app recording business metrics through the metrics API, exposed on /metrics (a free port)."""
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    meter = provider.get_meter("shop")
    meter.create_up_down_counter("shop.queue.length").add(50)
    orders = meter.create_counter("shop.orders.created", unit="{order}")
    amount = meter.create_histogram(
        "shop.order.amount", unit="USD", explicit_bucket_boundaries_advisory=[10.0, 100.0, 1000.0]
    )
    stop = threading.Event()

    def record() -> None:
        while not stop.wait(0.1):  # 10 orders/s of 500 USD
            orders.add(1)
            amount.record(500.0)

    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
        recorder.join(5)
        provider.shutdown()


def test_generated_metric_rule_alerts_fire_in_prometheus(
    tmp_path: Path, require_binary: Callable[[str], str], app_metrics: str
) -> None:
    binary = require_binary("prometheus")
    rules = tmp_path / "metric-rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [metric_rule_group(RULES, min_rate_window=5)]}))
    prometheus = _harness().PrometheusServer(
        binary,
        tmp_path / "prometheus",
        target=app_metrics,
        rules=rules,
        scrape_interval=1.0,
        eval_interval=1.0,
    )
    expected = {alert_name(rule) for rule in RULES[:3]}
    try:
        deadline = time.monotonic() + 60
        firing: set[str] = set()
        while time.monotonic() < deadline and firing != expected:
            firing = {a["labels"]["alertname"] for a in prometheus.alerts() if a["state"] == "firing"}
            time.sleep(0.5)
        assert all(rule["health"] == "ok" for rule in prometheus.rules()), prometheus.rules()
        assert firing == expected, (firing, prometheus.log())
        assert alert_name(RULES[3]) not in {a["labels"]["alertname"] for a in prometheus.alerts()}
    finally:
        prometheus.stop()
