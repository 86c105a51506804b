from __future__ import annotations

import json

import pytest

from otelpipe.processors.request_id import reset_request_id, set_request_id
from otelpipe.processors.structlog_correlation import add_otel_context

structlog = pytest.importorskip("structlog")


def test_structlog_processor_adds_fields(correlation, tracer_provider):
    output: list[str] = []

    class Sink:
        def msg(self, message: str) -> None:
            output.append(message)

        info = msg

    log = structlog.wrap_logger(
        Sink(),
        processors=[add_otel_context, structlog.processors.JSONRenderer()],
        cache_logger_on_first_use=False,
    )
    token = set_request_id("r1")
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("s") as span:
            log.info("in span", trace_sampled="kept-app-value")
    finally:
        reset_request_id(token)
    log.info("outside")
    first, second = (json.loads(line) for line in output)
    assert first["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert first["span_id"] == format(span.get_span_context().span_id, "016x")
    assert first["trace_sampled"] == "kept-app-value"
    assert first["service.name"] == "shop" and first["request_id"] == "r1"
    assert second["trace_id"] == "0" * 32 and "request_id" not in second
