"""Scenarios 1-2: the OTLP collector refuses connections or accepts and never answers.

The app under `opentelemetry-instrument` with otelpipe must keep serving at its usual latency (no
export on the request thread), keep counting RED on the span path, stay bounded in memory, and
exit on SIGTERM within OTELPIPE_SHUTDOWN_TIMEOUT instead of the stock SDK's ~58 s; export must
resume by itself once the collector is back on the same port.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from otelpipe.sink import OTLPSink, SinkStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAULT_APP = Path(__file__).with_name("fault_app.py")
SHUTDOWN_TIMEOUT_S = 2.0
EXPORT_TIMEOUT_S = 10.0  # the OTLP exporters' default OTEL_EXPORTER_OTLP_TIMEOUT
EXIT_SLACK_S = 12.0  # teardown and the SIGTERM round trip on a loaded machine; the stock SDK needs ~58 s
REQUESTS = 30
SPANS_PER_REQUEST = 200  # 6,000 spans and log records: three times the SDK's 2,048 queue


def _env(endpoint: str, protocol: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_SERVICE_NAME="fault-app",
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_METRIC_EXPORT_INTERVAL="500",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
        OTELPIPE_SHUTDOWN_TIMEOUT=f"{SHUTDOWN_TIMEOUT_S}s",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _get_json(app: Any, path: str) -> Any:
    with urllib.request.urlopen(app.base_url + path, timeout=30) as response:
        return json.loads(response.read())


def _drive(app: Any, requests: int = REQUESTS) -> list[float]:
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        assert _get_json(app, f"/burst?n={SPANS_PER_REQUEST}") == {"spans": SPANS_PER_REQUEST}
        latencies.append(time.perf_counter() - started)
    return latencies


def _terminate_timed(app: Any) -> float:
    started = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    try:
        app.proc.wait(timeout=SHUTDOWN_TIMEOUT_S + 30)
    except Exception:
        app.proc.kill()
        raise
    return time.monotonic() - started


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("fault", ["refused", "blackhole"])
def test_app_serves_and_exits_in_time_when_the_collector_is_unreachable(
    fault, protocol, sink, blackhole, free_port, instrumented_app
):
    healthy_endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
    healthy = instrumented_app(_env(healthy_endpoint, protocol), script=FAULT_APP)
    _drive(healthy, 3)  # warm-up: imports, first exports
    _drive(healthy)
    assert _terminate_timed(healthy) < SHUTDOWN_TIMEOUT_S + EXIT_SLACK_S

    endpoint = blackhole.endpoint if fault == "blackhole" else f"http://127.0.0.1:{free_port()}"
    app = instrumented_app(_env(endpoint, protocol), script=FAULT_APP)
    _drive(app, 3)
    rss_before = _get_json(app, "/stats")["rss_kib"]
    latencies = _drive(app)
    stats = _get_json(app, "/stats")

    # The span path ran for every span while every export failed or hung.
    assert stats["calls"]["SPAN_KIND_CLIENT"] == (REQUESTS + 3) * SPANS_PER_REQUEST
    assert stats["calls"]["SPAN_KIND_SERVER"] == REQUESTS + 3 + 1  # + the first /stats
    # A request never waits on an export: one that did would take the OTLP export timeout (10 s).
    # How much slower requests get while exports fail is a figure for bench/soak.py, not a test.
    assert max(latencies) < EXPORT_TIMEOUT_S / 2, latencies
    # Queues are bounded: 6,000 more spans and log records must not grow RSS without bound.
    assert stats["rss_kib"] - rss_before < 40 * 1024, (rss_before, stats["rss_kib"])
    if fault == "blackhole":
        assert blackhole.accepted >= 1, "the exporters never even connected to the black hole"

    elapsed = _terminate_timed(app)
    assert elapsed < SHUTDOWN_TIMEOUT_S + EXIT_SLACK_S, f"SIGTERM took {elapsed:.1f}s"


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_export_resumes_when_the_collector_comes_back(
    protocol, free_port, instrumented_app, wait_until, latest_red_calls, span_count
):
    port = free_port()
    app = instrumented_app(_env(f"http://127.0.0.1:{port}", protocol), script=FAULT_APP)
    _drive(app, 5)
    time.sleep(1.0)  # a few export attempts fail while nothing listens
    grpc_port, http_port = (port, None) if protocol == "grpc" else (None, port)
    server = OTLPSink(SinkStore(), grpc_port=grpc_port, http_port=http_port).start()
    try:
        _drive(app, 5)
        # RED is cumulative: the first successful export carries everything counted while down.
        assert wait_until(lambda: latest_red_calls(server).get("", 0) >= 10, timeout=40), (
            latest_red_calls(server),
            server.store.requests(),
        )
        assert wait_until(lambda: span_count(server, "downstream") > 0, timeout=20)
        assert wait_until(lambda: server.store.totals()["logs"] > 0, timeout=20)
        elapsed = _terminate_timed(app)
        assert elapsed < SHUTDOWN_TIMEOUT_S + EXIT_SLACK_S
    finally:
        server.stop()
