"""Prometheus rule generation: golden file, promtool, and the exporter's real metric names."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from otelpipe.incidents.metric_rules import load_metric_rules
from otelpipe.slo.prometheus_rules import PrometheusNames, alert_name, generate_rules, write_rules
from otelpipe.slo.spec import SLOSpecError, load_spec, parse_spec

ROOT = Path(__file__).parents[2]
DEMO = ROOT / "otelpipe" / "demo" / "slo.yaml"
CHECKED_IN = ROOT / "collector-config" / "prometheus"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required in CI (Debian package prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    return path


def test_checked_in_rules_equal_generator_output() -> None:
    expected = generate_rules(load_spec(DEMO), metric_rules=load_metric_rules(DEMO))
    assert (CHECKED_IN / "slo-rules.yml").read_text() == expected, (
        "regenerate: otelpipe slo rules otelpipe/demo/slo.yaml -o collector-config/prometheus/slo-rules.yml"
    )


def test_rules_have_sloth_names_and_labels() -> None:
    doc = yaml.safe_load(generate_rules(load_spec(DEMO)))
    records = {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}
    for name in (
        "slo:sli_error:ratio_rate5m",
        "slo:sli_error:ratio_rate30d",
        "slo:objective:ratio",
        "slo:error_budget:ratio",
        "slo:time_period:days",
        "slo:current_burn_rate:ratio",
        "slo:period_burn_rate:ratio",
        "slo:period_error_budget_remaining:ratio",
        "sloth_slo_info",
    ):
        assert name in records
    # the 1-day SLO's 10 s window is evaluated over at least 1 m in Prometheus
    assert "slo:sli_error:ratio_rate10s" not in records and "slo:sli_error:ratio_rate1m" in records
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    assert {a["labels"]["sloth_severity"] for a in alerts} == {"page", "ticket"}
    assert {a["alert"] for a in alerts} == {
        "ShopApiAvailabilitySLO",
        "ShopApiLatencySLO",
        "ShopOrderProcessingSLO",
    }


def test_collector_millisecond_names_and_le_spellings() -> None:
    spec = parse_spec(
        "version: otelpipe/v1\nservice: s\nslos:\n  - {name: l, objective: 99, sli: {kind: latency, threshold: 1s}}\n"
    )
    text = generate_rules(spec, names=PrometheusNames.collector_milliseconds())
    assert (
        'traces_span_metrics_duration_milliseconds_bucket{service_name="s",span_kind="SPAN_KIND_SERVER",le=~"1000|1000\\\\.0"}'
        in text
    )
    assert 'le=~"400|400\\\\.0"' in generate_rules(load_spec(DEMO))
    seconds = generate_rules(load_spec(DEMO), names=PrometheusNames.for_unit("s"))
    assert "traces_span_metrics_duration_seconds_bucket{" in seconds and 'le="0.4"' in seconds


def test_latency_threshold_must_be_a_bucket_of_the_chosen_histogram() -> None:
    spec = parse_spec(
        "version: otelpipe/v1\nservice: s\nslos:\n  - {name: l, objective: 99, sli: {kind: latency, threshold: 500ms}}\n"
    )
    with pytest.raises(SLOSpecError, match=r"0.5s.*nearest: 0.4s or 0.8s"):
        generate_rules(spec)  # the connector's default buckets: 400 ms, 800 ms
    assert 'le=~"500|500\\\\.0"' in generate_rules(spec, boundaries=(0.1, 0.5, 1.0))
    assert alert_name(spec.slos[0]) == "SL" + "SLO"


def test_promtool_checks_generated_rules(tmp_path: Path) -> None:
    promtool = _promtool()
    path = write_rules(load_spec(DEMO), tmp_path)
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_page_on_burst_and_stay_silent_at_low_errors() -> None:
    promtool = _promtool()
    result = subprocess.run(
        [promtool, "test", "rules", "slo-rules.test.yml"],
        check=False,
        cwd=CHECKED_IN,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_names_match_what_opentelemetry_exporter_prometheus_exposes() -> None:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    provider = MeterProvider(
        metric_readers=[reader],
        views=[
            View(
                instrument_name="*duration",
                aggregation=ExplicitBucketHistogramAggregation((250.0, 500.0, 1000.0)),
            )
        ],
    )
    try:
        meter = provider.get_meter("otelpipe")
        attrs = {
            "service.name": "shop",
            "span.kind": "SPAN_KIND_SERVER",
            "status.code": "STATUS_CODE_ERROR",
            "http.request.method": "GET",
        }
        meter.create_counter("traces.span.metrics.calls", unit="{call}").add(3, attrs)
        meter.create_histogram("traces.span.metrics.duration", unit="ms").record(300, attrs)
        exposed = generate_latest(registry).decode()
    finally:
        provider.shutdown()
    names = PrometheusNames()
    assert f'{names.calls}{{http_request_method="GET",' in exposed
    assert 'service_name="shop"' in exposed and 'status_code="STATUS_CODE_ERROR"' in exposed
    assert 'span_kind="SPAN_KIND_SERVER"' in exposed
    assert names.duration_bucket + "{" in exposed and 'le="500.0"' in exposed
    assert names.duration_count + "{" in exposed
