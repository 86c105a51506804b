"""`otelpipe sink` receives real OTLP from the SDK's exporters over gRPC and HTTP/protobuf."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def _tracer_provider(exporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "sink-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def test_grpc_spans_arrive_decoded(sink):
    provider = _tracer_provider(GrpcSpanExporter(endpoint=f"127.0.0.1:{sink.grpc_port}", insecure=True))
    with provider.get_tracer("t").start_as_current_span("checkout"):
        pass
    provider.shutdown()
    assert sink.store.totals()["traces"] == 1
    assert sink.store.per_service()["traces"] == {"sink-test": 1}
    [received] = sink.store.received("traces")
    assert received.transport == "grpc"
    assert received.request.resource_spans[0].scope_spans[0].spans[0].name == "checkout"


def test_http_spans_metrics_and_logs_arrive(sink):
    base = sink.http_endpoint
    tracer_provider = _tracer_provider(HttpSpanExporter(endpoint=f"{base}/v1/traces"))
    with tracer_provider.get_tracer("t").start_as_current_span("pay"):
        pass
    tracer_provider.shutdown()

    reader = PeriodicExportingMetricReader(
        HttpMetricExporter(endpoint=f"{base}/v1/metrics"), export_interval_millis=60_000
    )
    meter_provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": "sink-test"})
    )
    meter_provider.get_meter("m").create_counter("orders").add(3, {"tier": "gold"})
    meter_provider.shutdown()

    logger_provider = LoggerProvider(resource=Resource.create({"service.name": "sink-test"}))
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(HttpLogExporter(endpoint=f"{base}/v1/logs"))
    )
    import logging

    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    log = logging.getLogger("sink-test")
    handler = LoggingHandler(logger_provider=logger_provider)
    log.addHandler(handler)
    try:
        log.warning("hello sink")
    finally:
        log.removeHandler(handler)
    logger_provider.shutdown()

    assert sink.store.requests() == {"traces/http": 1, "metrics/http": 1, "logs/http": 1}
    totals = sink.store.totals()
    assert totals == {"traces": 1, "metrics": 1, "logs": 1}
    [logs] = sink.store.received("logs")
    assert logs.request.resource_logs[0].scope_logs[0].log_records[0].body.string_value == "hello sink"


def test_malformed_http_body_is_rejected_not_crashing(sink):
    request = urllib.request.Request(
        f"{sink.http_endpoint}/v1/traces",
        data=b"\xff\x00not protobuf",
        headers={"Content-Type": "application/x-protobuf"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400
    assert sink.store.totals()["traces"] == 0
    # and it still serves afterwards
    test_grpc_spans_arrive_decoded(sink)


def test_sink_cli_writes_otlp_json_lines(tmp_path: Path):
    out = tmp_path / "received.jsonl"
    exe = str(Path(sys.executable).with_name("otelpipe"))
    proc = subprocess.Popen(
        [exe, "sink", "--grpc-port", "0", "--http-port", "0", "--output", str(out), "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "otelpipe sink listening" in first
    http = first.split("OTLP/HTTP ")[1].split(",")[0].strip()
    provider = _tracer_provider(HttpSpanExporter(endpoint=f"{http}/v1/traces"))
    with provider.get_tracer("t").start_as_current_span("from-cli"):
        pass
    provider.shutdown()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (out.exists() and out.read_text()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "total: 1 spans" in rest
    [line] = out.read_text().splitlines()
    record = json.loads(line)
    assert record["signal"] == "traces"
    assert record["request"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] == "from-cli"
