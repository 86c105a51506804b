"""Scenario 9: spans and log records with huge, binary, non-UTF-8 or deeply nested values, and clock skew.

No exception reaches the caller, RED counts what it can and counts what it skips, and what the
real OTLP exporters send to the sink still decodes: the well-formed telemetry sent alongside the
bad values arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from otelpipe.processors.otlp_logs import CorrelatingLogRecordProcessor
from otelpipe.processors.red import REDSpanProcessor, REDStore
from otelpipe.processors.redaction import Redactor
from otelpipe.processors.span_redaction import RedactingSpanProcessor

pytestmark = pytest.mark.integration


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = {f"level{i}": value, "list": [value, i]} if i < 12 else {f"level{i}": value}
    return value


BAD_VALUES: dict[str, Any] = {
    # Sized so one batch stays under the 4 MiB gRPC receive limit of the sink and the Collector:
    # a bigger value costs its whole batch unless OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT is set.
    "huge": "x" * 300_000,
    "binary": b"\x00\xff\xfe\x80 not text",
    "lone_surrogate": "caf\udce9",  # what os.fsdecode / surrogateescape make of Latin-1 bytes
    "control": "\x00\x1b[31m\u202e",
    "huge_list": ["y" * 1000] * 300,
    "mixed_list": [1, "two", 3.0, None, b"\xff"],
    "nested": _nested(200),
    "nan": float("nan"),
    "big_int": 2**80,
    "object": object(),
}


@pytest.fixture
def providers(sink: Any) -> Iterator[tuple[TracerProvider, LoggerProvider, REDStore]]:
    resource = Resource.create({"service.name": "bad-telemetry"})
    store = REDStore()
    redactor = Redactor()
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(RedactingSpanProcessor(redactor))
    tracer_provider.add_span_processor(REDSpanProcessor(store))
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=sink.grpc_endpoint, insecure=True, timeout=5))
    )
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(CorrelatingLogRecordProcessor(redactor))
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=sink.grpc_endpoint, insecure=True, timeout=5))
    )
    try:
        yield tracer_provider, logger_provider, store
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()


def _span_names(sink: Any) -> list[str]:
    return [
        span.name
        for received in sink.store.received("traces")
        for rs in received.request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def _log_bodies(sink: Any) -> list[str]:
    return [
        record.body.string_value
        for received in sink.store.received("logs")
        for rl in received.request.resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
    ]


def test_bad_span_values_and_clock_skew_never_escape(providers, sink, wait_until):
    tracer_provider, _logs, store = providers
    tracer = tracer_provider.get_tracer("bad")
    for name, value in BAD_VALUES.items():
        with tracer.start_as_current_span(f"bad-{name}", kind=SpanKind.SERVER) as span:
            span.set_attribute(name, value)
            span.set_attributes({f"{name}.again": value})
            span.add_event("event", {name: value})
            span.set_attribute("\udcff key", "non-UTF-8 key")
    skewed = tracer.start_span("skewed", kind=SpanKind.SERVER, start_time=2_000_000_000_000_000_000)
    skewed.end(end_time=1_000_000_000_000_000_000)  # ends before it starts
    tracer.start_span("good", kind=SpanKind.SERVER).end()

    assert tracer_provider.force_flush(10_000)
    assert wait_until(lambda: "good" in _span_names(sink), timeout=10), _span_names(sink)
    names = _span_names(sink)
    assert {f"bad-{name}" for name in BAD_VALUES} <= set(names), "a bad value must not cost its batch"
    snapshot = store.snapshot()
    assert snapshot.skipped_spans == 1  # the skewed span, counted rather than measured negative
    assert sum(s.calls for s in snapshot.series) == len(BAD_VALUES) + 1


def test_bad_log_records_never_escape(providers, sink, wait_until):
    _traces, logger_provider, _store = providers
    log = logging.getLogger("faults.bad_telemetry")
    log.propagate = False
    handler = LoggingHandler(logger_provider=logger_provider)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        for name, value in BAD_VALUES.items():
            log.warning("bad-%s %s", name, value)
            log.warning("extra-%s", name, extra={name: value, "nested_extra": {"deep": value}})
            log.warning(value)  # a non-string message
        log.warning("caf\udce9 in the message")
        log.warning("good log")
    finally:
        log.removeHandler(handler)
    assert logger_provider.force_flush(10_000)
    assert wait_until(lambda: "good log" in _log_bodies(sink), timeout=10), _log_bodies(sink)[-5:]
    bodies = _log_bodies(sink)
    assert sum(1 for body in bodies if body.startswith("bad-")) == len(BAD_VALUES)
