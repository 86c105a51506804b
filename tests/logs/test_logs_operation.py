from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from otelpipe.operation import operation


class PaymentDeclined(Exception):
    pass


def test_context_manager_success_and_decorator_failure(tracer_provider, captured):
    logger, handler = captured
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = tracer_provider.get_tracer("t")

    with operation("reserve", logger=logger, tracer=tracer, order_id=7) as span:
        span.set_attribute("items", 2)

    @operation("charge", logger=logger, tracer=tracer, amount=10)
    def charge() -> None:
        raise PaymentDeclined("card declined")

    error = PaymentDeclined("x")
    with pytest.raises(PaymentDeclined) as info:
        charge()
    assert info.type is PaymentDeclined and info.value is not error

    messages = [r.getMessage().split(" ")[0:2] for r in handler.records]
    assert messages == [
        ["reserve", "started"],
        ["reserve", "succeeded"],
        ["charge", "started"],
        ["charge", "failed"],
    ]
    ok, failed = handler.records[1], handler.records[3]
    assert ok.duration_ms >= 0 and ok.order_id == 7 and ok.operation == "reserve"
    assert getattr(failed, "error.type") == "PaymentDeclined" and failed.levelname == "ERROR"
    reserve, charge_span = exporter.get_finished_spans()
    assert reserve.attributes["order_id"] == 7 and reserve.status.status_code is StatusCode.UNSET
    assert charge_span.status.status_code is StatusCode.ERROR
    assert charge_span.attributes["error.type"] == "PaymentDeclined"
    assert charge_span.events[0].name == "exception"


def test_decorator_returns_value(tracer_provider, captured):
    logger, _ = captured

    @operation("add", logger=logger, tracer=tracer_provider.get_tracer("t"))
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add.__name__ == "add"
