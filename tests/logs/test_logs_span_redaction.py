from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelpipe.processors.redaction import Redactor
from otelpipe.processors.span_redaction import RedactingSpanProcessor


def test_exporter_sees_redacted_attributes_events_and_status():
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(RedactingSpanProcessor(Redactor()))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    try:
        with tracer.start_as_current_span("login", attributes={"user": "bob"}) as span:
            span.set_attribute("http.request.header.authorization", ("Bearer abcdefghijklmnopq",))
            span.set_attribute("db.statement", "UPDATE users SET password='s3cretpass' WHERE id=1")
            span.set_attribute("note", "paid with 4111-1111-1111-1111")
            span.set_attribute("password", "p")
            span.set_attribute("retries", 2)
            raise ValueError("token=abcdef123456 rejected")
    except ValueError:
        pass
    (exported,) = exporter.get_finished_spans()
    attrs = exported.attributes
    assert attrs["user"] == "bob" and attrs["retries"] == 2
    assert attrs["http.request.header.authorization"] == ("[REDACTED]",)
    assert attrs["db.statement"] == "UPDATE users SET password='[REDACTED]' WHERE id=1"
    assert attrs["note"] == "paid with [REDACTED]"
    assert attrs["password"] == "[REDACTED]"
    event = exported.events[0]
    assert "abcdef123456" not in event.attributes["exception.message"]
    assert "abcdef123456" not in event.attributes["exception.stacktrace"]
    assert "abcdef123456" not in (exported.status.description or "")


def test_registration_order_does_not_matter():
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    processor = RedactingSpanProcessor(Redactor())
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_attribute("password", "p")
    # SDK 1.45 runs every processor's _on_ending before any on_end.
    assert exporter.get_finished_spans()[0].attributes["password"] == "[REDACTED]"
    assert processor.failures == 0
