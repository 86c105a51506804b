"""Auto-instrumentation modes: exact RED under 1 % sampling, Prometheus /metrics, coexistence with
opentelemetry-distro, lenient and strict handling of bad configuration."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

E2E_APP = Path(__file__).with_name("flask_app.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _exported_server_spans(sink) -> int:
    count = 0
    for received in sink.store.received("traces"):
        for rs in received.request.resource_spans:
            for ss in rs.scope_spans:
                count += sum(1 for span in ss.spans if span.name.startswith("GET /hello"))
    return count


def test_red_is_exact_under_one_percent_sampling_and_on_prometheus(
    latest_red_calls, sink, otlp_env, instrumented_app, wait_until
):
    prom_port = _free_port()
    env = otlp_env(
        sink,
        OTEL_TRACES_SAMPLER="traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.01",
        OTEL_METRICS_EXPORTER="otlp,prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(prom_port),
    )
    app = instrumented_app(env)
    requests = 400
    assert all(app.get(f"/hello/u{i}") == 200 for i in range(requests))
    assert wait_until(lambda: sum(latest_red_calls(sink).values()) == requests, timeout=20), sum(
        latest_red_calls(sink).values()
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    scraped = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("traces_span_metrics_calls_total{") and 'span_kind="SPAN_KIND_SERVER"' in line
    )
    assert scraped == requests
    assert "traces_span_metrics_duration_milliseconds_bucket{" in text  # the connector's default unit
    app.stop()
    exported = _exported_server_spans(sink)
    assert 0 <= exported <= 20, f"about 1 % of {requests} spans should be exported, got {exported}"
    assert sum(latest_red_calls(sink).values()) == requests


def test_record_unsampled_off_counts_only_the_sampled_spans(
    latest_red_calls, sink, otlp_env, instrumented_app, wait_until
):
    env = otlp_env(
        sink,
        OTEL_TRACES_SAMPLER="traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.05",
        OTELPIPE_RED_RECORD_UNSAMPLED_ENABLED="false",
    )
    app = instrumented_app(env)
    assert all(app.get(f"/hello/s{i}") == 200 for i in range(200))
    app.stop()  # flushes spans, then the final metrics
    exported = _exported_server_spans(sink)
    assert exported < 60, f"about 5 % of 200 requests should be exported, got {exported}"
    assert sum(latest_red_calls(sink).values()) == exported  # the stock behaviour: RED sees what is sampled


@pytest.mark.parametrize(
    ("configurator", "expect_red"),
    [("otelpipe", True), ("configurator", False)],
    ids=["otelpipe-configurator", "stock-distro-configurator"],
)
def test_coexists_with_opentelemetry_distro(
    latest_red_calls, configurator, expect_red, sink, otlp_env, instrumented_app, wait_until
):
    # opentelemetry-distro is installed in the test environment: pick its distro and choose the configurator.
    env = otlp_env(sink, OTEL_PYTHON_DISTRO="distro", OTEL_PYTHON_CONFIGURATOR=configurator)
    app = instrumented_app(env)
    assert [app.get(f"/hello/x{i}") for i in range(3)] == [200, 200, 200]
    assert wait_until(lambda: _exported_server_spans(sink) == 3)
    if expect_red:
        assert wait_until(lambda: sum(latest_red_calls(sink).values()) == 3)
    else:
        app.stop()
        assert sum(latest_red_calls(sink).values()) == 0  # the stock configurator has no RED processor


def test_bad_configuration_is_logged_and_the_app_still_starts(
    latest_red_calls, sink, otlp_env, instrumented_app, wait_until
):
    env = otlp_env(sink, OTELPIPE_RED_BUCKETS="10,1", OTELPIPE_SLO_INTERVAL="often")
    app = instrumented_app(env)
    assert app.get("/hello/still-up") == 200
    assert wait_until(lambda: sum(latest_red_calls(sink).values()) == 1)
    output = app.stop()
    assert "OTELPIPE_RED_BUCKETS='10,1' is invalid" in output
    assert output.count("OTELPIPE_SLO_INTERVAL='often' is invalid") == 1


def test_strict_mode_makes_bad_configuration_fatal(sink, otlp_env, tmp_path):
    env = otlp_env(sink, OTELPIPE_STRICT="true", OTELPIPE_RED_CARDINALITY_LIMIT="many")
    instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    result = subprocess.run(
        [instrument, sys.executable, str(E2E_APP)],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "READY" not in result.stdout
    assert "OTELPIPE_RED_CARDINALITY_LIMIT='many' is invalid: expected an integer >= 1" in result.stderr


def test_request_id_json_logs_and_access_log_under_auto_instrumentation(sink, otlp_env, instrumented_app):
    env = otlp_env(sink, OTELPIPE_LOG_FORMAT="json", OTELPIPE_ACCESS_LOG_ENABLED="true")
    app = instrumented_app(env)
    request = urllib.request.Request(app.base_url + "/hello/json", headers={"X-Request-ID": "req-42"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["X-Request-ID"] == "req-42"
    with urllib.request.urlopen(app.base_url + "/hello/generated", timeout=10) as response:
        generated = response.headers["X-Request-ID"]
    assert generated and generated != "req-42"
    output = app.stop()
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    greeting = next(r for r in records if r["message"] == "greeting json")
    assert greeting["request_id"] == "req-42"
    assert len(greeting["trace_id"]) == 32 and greeting["trace_id"] != "0" * 32
    assert greeting["level"] == "WARNING" and greeting["logger"] == "e2e.app"
    completed = [r for r in records if r["message"].startswith("request completed")]
    assert {r["request_id"] for r in completed} == {"req-42", generated}
    first = next(r for r in completed if r["request_id"] == "req-42")
    assert first["http.response.status_code"] == 200 and first["http.route"] == "/hello/<name>"
    assert first["trace_id"] == greeting["trace_id"]


def test_red_counts_requests_whose_caller_did_not_sample(
    latest_red_calls, sink, otlp_env, instrumented_app, wait_until
):
    # No OTEL_TRACES_SAMPLER: the SDK default is parent-based, so an unsampled caller means DROP.
    app = instrumented_app(otlp_env(sink))
    for i in range(5):
        traceparent = f"00-{i + 1:032x}-{i + 1:016x}-00"
        request = urllib.request.Request(app.base_url + f"/hello/p{i}", headers={"traceparent": traceparent})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    assert wait_until(lambda: sum(latest_red_calls(sink).values()) == 5)
    app.stop()
    assert _exported_server_spans(sink) == 0
