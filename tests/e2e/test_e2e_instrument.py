"""End to end: a Flask app under `opentelemetry-instrument` with otelpipe installed, exporting to `otelpipe sink`."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

pytestmark = pytest.mark.integration


def _span_names(sink) -> list[str]:
    names = []
    for received in sink.store.received("traces"):
        assert isinstance(received.request, ExportTraceServiceRequest)
        for rs in received.request.resource_spans:
            for ss in rs.scope_spans:
                names.extend(span.name for span in ss.spans)
    return names


def _metric_names(sink) -> set[str]:
    names = set()
    for received in sink.store.received("metrics"):
        assert isinstance(received.request, ExportMetricsServiceRequest)
        for rm in received.request.resource_metrics:
            for sm in rm.scope_metrics:
                names.update(m.name for m in sm.metrics)
    return names


def _latest_export_counts(sink) -> dict[tuple[str, tuple], int]:
    """Latest value of each otelpipe.export.* point, keyed by (metric name, sorted attributes)."""
    latest = {}
    for received in sink.store.received("metrics"):
        for rm in received.request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name.startswith("otelpipe.export."):
                        for point in metric.sum.data_points:
                            attrs = tuple(sorted((kv.key, kv.value.string_value) for kv in point.attributes))
                            latest[(metric.name, attrs)] = point.as_int
    return latest


def _log_records(sink) -> list:
    records = []
    for received in sink.store.received("logs"):
        assert isinstance(received.request, ExportLogsServiceRequest)
        for rl in received.request.resource_logs:
            for sl in rl.scope_logs:
                records.extend(sl.log_records)
    return records


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_instrumented_flask_app_sends_spans_metrics_and_logs(
    protocol, sink, otlp_env, instrumented_app, wait_until
):
    app = instrumented_app(otlp_env(sink, protocol))
    statuses = [app.get(f"/hello/user{i}") for i in range(5)] + [app.get("/fail")]
    assert statuses == [200] * 5 + [500]
    assert wait_until(lambda: _span_names(sink).count("GET /hello/<name>") == 5)
    output = app.stop()

    transport = "grpc" if protocol == "grpc" else "http"
    requests = sink.store.requests()
    assert requests.get(f"traces/{transport}", 0) >= 1, (requests, output)
    assert requests.get(f"metrics/{transport}", 0) >= 1, (requests, output)
    assert requests.get(f"logs/{transport}", 0) >= 1, (requests, output)
    assert "GET /fail" in _span_names(sink)

    names = _metric_names(sink)
    assert "traces.span.metrics.calls" in names, output
    # Drops are counted by otelpipe's export processors, without the SDK's per-span internal metrics
    assert "otelpipe.export.dropped" in names
    assert "otelpipe.export.exported" in names
    assert not any(name.startswith("otel.sdk.") for name in names), names
    counts = _latest_export_counts(sink)
    # the final metric export runs after the span flush: every span the sink got is counted once
    assert counts[("otelpipe.export.exported", (("signal", "traces"),))] == len(_span_names(sink))
    assert counts[("otelpipe.export.dropped", (("error.type", "queue_full"), ("signal", "traces")))] == 0
    records = _log_records(sink)
    greetings = [r for r in records if r.body.string_value.startswith("greeting user")]
    assert len(greetings) == 5, "each stdlib log line arrives exactly once"
    assert all(len(r.trace_id) == 16 and any(r.trace_id) for r in greetings)
    assert sink.store.per_service()["traces"].get("e2e-app", 0) >= 6


def test_spans_dropped_by_a_full_queue_and_failed_batches_are_counted(
    sink, otlp_env, instrumented_app, wait_until
):
    """Traces go to a collector that accepts and never answers; the drops reach the metrics backend."""
    import socket
    import threading

    black_hole = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(black_hole.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    env = otlp_env(
        sink,
        "http/protobuf",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{black_hole.getsockname()[1]}/v1/traces",
        OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="2",
        OTEL_BSP_MAX_QUEUE_SIZE="2",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="1",
        OTELPIPE_SHUTDOWN_TIMEOUT="3s",
    )
    try:
        app = instrumented_app(env)
        assert all(app.get(f"/hello/d{i}") == 200 for i in range(20))
        queue_full = ("otelpipe.export.dropped", (("error.type", "queue_full"), ("signal", "traces")))
        failed = ("otelpipe.export.dropped", (("error.type", "export_failed"), ("signal", "traces")))
        # one span is stuck in the exporter, two wait in the queue: the other 17 are dropped and counted
        assert wait_until(lambda: _latest_export_counts(sink).get(queue_full, 0) >= 15, timeout=20), (
            _latest_export_counts(sink)
        )
        assert wait_until(lambda: _latest_export_counts(sink).get(failed, 0) >= 1, timeout=30)
        app.stop()
    finally:
        black_hole.close()
        for conn in held:
            conn.close()
