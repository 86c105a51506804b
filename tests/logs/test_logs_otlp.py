from __future__ import annotations

import logging

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from otelpipe.processors.otlp_logs import CorrelatingLogRecordProcessor
from otelpipe.processors.redaction import Redactor
from otelpipe.processors.request_id import reset_request_id, set_request_id


def test_processor_adds_request_id_drops_duplicates_and_redacts(correlation, tracer_provider):
    provider = LoggerProvider()
    exporter = InMemoryLogRecordExporter()
    provider.add_log_record_processor(CorrelatingLogRecordProcessor(Redactor(), {"team": "payments"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    logger = logging.getLogger("tests.logs.otlp")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    token = set_request_id("rid-9")
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("s") as span:
            logger.info("auth with Bearer abcdefghijklmnop", extra={"api_key": "k", "order": 5})
    finally:
        reset_request_id(token)
        logger.handlers = []
    (exported,) = exporter.get_finished_logs()
    record = exported.log_record
    ctx = span.get_span_context()
    assert record.trace_id == ctx.trace_id and record.span_id == ctx.span_id
    assert record.body == "auth with Bearer [REDACTED]"
    attrs = dict(record.attributes)
    assert attrs["api_key"] == "[REDACTED]" and attrs["order"] == 5
    assert attrs["request.id"] == "rid-9" and attrs["team"] == "payments"
    for duplicate in ("trace_id", "otelSpanID", "service.name", "request_id"):
        assert duplicate not in attrs


def test_mapping_body_and_no_redactor():
    provider = LoggerProvider()
    exporter = InMemoryLogRecordExporter()
    provider.add_log_record_processor(CorrelatingLogRecordProcessor(Redactor()))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("x").emit(body={"password": "p", "msg": "ok"}, attributes={"k": "v"})
    assert exporter.get_finished_logs()[0].log_record.body == {"password": "[REDACTED]", "msg": "ok"}
    plain = CorrelatingLogRecordProcessor(None)
    assert plain.force_flush() is True
