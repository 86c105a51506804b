"""Metric rules as Prometheus alerts: expressions, names the real exporter gives, promtool."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, generate_latest

from otelpipe.incidents.metric_promql import expression, metric_rule_group
from otelpipe.incidents.metric_rules import load_metric_rules, parse_metric_rules
from otelpipe.slo.prometheus_rules import generate_rules
from otelpipe.slo.spec import load_spec

DEMO = Path(__file__).resolve().parents[2] / "otelpipe" / "demo" / "slo.yaml"
RULES = parse_metric_rules(
    {
        "rules": [
            {
                "name": "high-cpu",
                "metric": "system.cpu.utilization",
                "match": {"state": "idle"},
                "value": {"below": "20%"},
                "for": "5m",
                "severity": "critical",
            },
            {
                "name": "orders",
                "service": "shop",
                "metric": "shop.orders.created",
                "window": "10m",
                "rate": {"below": 0.01},
            },
            {
                "name": "slow",
                "metric": "http.server.duration",
                "unit": "ms",
                "match": {"http.route": "/checkout", "http.method": "*"},
                "quantile": {"quantile": 0.95, "above": 2000, "min_count": 20},
            },
            {"name": "quiet", "metric": "shop.signups", "window": "30m", "absent": True},
        ]
    }
)


def test_each_condition_kind_becomes_promql() -> None:
    cpu, orders, slow, quiet = (expression(rule) for rule in RULES)
    assert cpu == 'avg by (job, instance) (system_cpu_utilization{state="idle"}) < 0.2'
    assert orders == "sum by (job, instance) (rate(shop_orders_created_total[10m])) < 0.01"
    assert slow == (
        "histogram_quantile(0.95, sum by (job, instance, le) "
        '(rate(http_server_duration_milliseconds_bucket{http_route="/checkout"}[5m]))) > 2000\n'
        "and on (job, instance) sum by (job, instance) "
        '(increase(http_server_duration_milliseconds_count{http_route="/checkout"}[5m])) >= 20'
    )
    assert quiet == "absent_over_time(shop_signups[30m]) and absent_over_time(shop_signups_total[30m])"
    group = metric_rule_group(RULES)
    assert group is not None
    alerts = {alert["alert"]: alert for alert in group["rules"]}
    assert set(alerts) == {"HighCpuMetricRule", "ShopOrdersMetricRule", "SlowMetricRule", "QuietMetricRule"}
    assert alerts["HighCpuMetricRule"]["for"] == "5m"
    assert alerts["HighCpuMetricRule"]["labels"] == {
        "severity": "critical",
        "otelpipe_rule": "high-cpu",
        "metric": "system.cpu.utilization",
    }
    assert alerts["ShopOrdersMetricRule"]["labels"]["service"] == "shop"
    assert metric_rule_group(()) is None


def test_series_names_are_the_ones_the_prometheus_exporter_writes() -> None:
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    meter = provider.get_meter("shop")
    meter.create_counter("shop.orders.created", unit="{order}").add(3)
    meter.create_counter("shop.signups", unit="{user}").add(1)
    meter.create_histogram("http.server.duration", unit="ms").record(12, {"http.route": "/checkout"})

    def idle(options: CallbackOptions) -> list[Observation]:
        return [Observation(0.5, {"state": "idle", "cpu": 1})]

    meter.create_observable_gauge("system.cpu.utilization", callbacks=[idle], unit="1")
    exposition = generate_latest(registry).decode()
    provider.shutdown()
    series = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)", exposition, re.MULTILINE))
    functions = {"rate", "increase", "absent_over_time"}
    for rule in RULES:
        names = set(re.findall(r"([a-z_]+)(?:\{|\[)", expression(rule))) - functions
        if rule.condition == "absent":  # gauge or counter spelling: one of them exists
            assert names & series, (rule.name, names)
        else:
            assert names <= series, (rule.name, names - series)
    assert re.search(r'system_cpu_utilization\{[^}]*state="idle"', exposition)
    assert 'http_server_duration_milliseconds_bucket{http_route="/checkout"' in exposition


def test_cli_rules_include_the_demo_metric_rules_and_promtool_accepts_them(tmp_path: Path) -> None:
    text = generate_rules(load_spec(DEMO), metric_rules=load_metric_rules(DEMO))
    groups = {group["name"]: group for group in yaml.safe_load(text)["groups"]}
    alerts = {rule["alert"] for rule in groups["otelpipe-metric-rules"]["rules"]}
    assert alerts == {"ShopHighCpuMetricRule", "ShopOrdersStoppedMetricRule", "ShopRequestsPilingUpMetricRule"}
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required in CI (Debian package prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    path = tmp_path / "rules.yml"
    every_kind = {**(metric_rule_group(RULES) or {}), "name": "every-kind"}
    path.write_text(yaml.safe_dump({"groups": [*yaml.safe_load(text)["groups"], every_kind]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_rows_for_system_metrics_and_each_metric_rule(tmp_path: Path) -> None:
    import json

    from otelpipe.slo.dashboard import generate_dashboard

    doc = json.loads(generate_dashboard(load_spec(DEMO), metric_rules=RULES))
    rows = [p["title"] for p in doc["panels"] if p["type"] == "row"]
    assert rows == ["System and process", "Metric rules (business and system)"]
    by_title = {p["title"]: p for p in doc["panels"]}
    assert by_title["CPU busy"]["targets"][0]["expr"].startswith(
        "avg by (job, instance) (1 - system_cpu_utilization"
    )
    orders = by_title["orders: shop.orders.created rate below 0.01/s over 10m"]
    assert orders["targets"][0]["expr"] == "sum by (job, instance) (rate(shop_orders_created_total[10m]))"
    assert orders["fieldConfig"]["defaults"]["thresholds"]["steps"][1] == {"color": "red", "value": 0.01}
    assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required in CI (Debian package prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    # every panel query is valid PromQL: promtool checks them as recording rules
    exprs = [t["expr"] for p in doc["panels"] if p["type"] != "row" for t in p["targets"]]
    group = {"name": "panels", "rules": [{"record": f"panel:{i}", "expr": e} for i, e in enumerate(exprs)]}
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
