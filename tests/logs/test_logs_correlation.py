from __future__ import annotations

import asyncio
import logging
import threading

from opentelemetry.instrumentation.logging import LoggingInstrumentor

from otelpipe.processors.log_correlation import current_log_fields, install_log_correlation
from otelpipe.processors.request_id import reset_request_id, set_request_id


def _hex(ctx):
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def test_outside_span_uses_zero_ids(correlation, captured):
    logger, handler = captured
    logger.info("hello")
    record = handler.records[0]
    assert record.trace_id == "0" * 32
    assert record.span_id == "0" * 16
    assert record.trace_sampled is False
    assert record.otelTraceID == "0" and record.otelSpanID == "0"
    assert getattr(record, "service.name") == "shop"
    assert record.service_name == "shop" and record.otelServiceName == "shop"
    assert getattr(record, "service.version") == "1.2.3"
    assert getattr(record, "deployment.environment") == "test"
    assert record.request_id == ""


def test_inside_span_ids_and_format_string(correlation, captured, tracer_provider):
    logger, handler = captured
    handler.setFormatter(logging.Formatter("%(otelTraceID)s %(span_id)s %(request_id)s %(message)s"))
    tracer = tracer_provider.get_tracer("t")
    token = set_request_id("req-1")
    try:
        with tracer.start_as_current_span("outer") as outer:
            logger.info("a")
            with tracer.start_as_current_span("inner") as inner:
                logger.info("b")
            logger.info("c")
    finally:
        reset_request_id(token)
    logger.info("d")
    outer_ids, inner_ids = _hex(outer.get_span_context()), _hex(inner.get_span_context())
    got = [(r.trace_id, r.span_id) for r in handler.records]
    assert got == [outer_ids, inner_ids, outer_ids, ("0" * 32, "0" * 16)]
    assert handler.records[0].trace_sampled is True
    assert handler.lines[1] == f"{inner_ids[0]} {inner_ids[1]} req-1 b"
    assert handler.records[3].request_id == ""


def test_install_is_idempotent_and_uninstall_restores(captured):
    before = logging.getLogRecordFactory()
    first = install_log_correlation("a")
    factory = logging.getLogRecordFactory()
    second = install_log_correlation("b", "2", "prod")
    assert second is first
    assert logging.getLogRecordFactory() is factory
    logger, handler = captured
    logger.info("x")
    assert getattr(handler.records[0], "service.name") == "b"
    first.uninstall()
    assert logging.getLogRecordFactory() is before
    logger.info("y")
    assert not hasattr(handler.records[1], "trace_id")


def test_does_not_add_handlers():
    root = logging.getLogger()
    before = list(root.handlers)
    handle = install_log_correlation("svc")
    try:
        assert root.handlers == before
    finally:
        handle.uninstall()


def test_coexists_with_instrumentation_logging(captured, tracer_provider):
    logger, handler = captured
    tracer = tracer_provider.get_tracer("t")
    root_handlers = list(logging.getLogger().handlers)
    for order in ("ours_first", "theirs_first"):
        instrumentor = LoggingInstrumentor()
        if order == "ours_first":
            handle = install_log_correlation("shop")
            instrumentor.instrument(
                inject_trace_context=True,
                enable_log_auto_instrumentation=False,
                tracer_provider=tracer_provider,
            )
        else:
            instrumentor.instrument(
                inject_trace_context=True,
                enable_log_auto_instrumentation=False,
                tracer_provider=tracer_provider,
            )
            handle = install_log_correlation("shop")
        try:
            with tracer.start_as_current_span("s") as span:
                logger.info(order)
            record = handler.records[-1]
            trace_hex, span_hex = _hex(span.get_span_context())
            assert record.trace_id == record.otelTraceID == trace_hex
            assert record.span_id == record.otelSpanID == span_hex
            assert logging.getLogger().handlers == root_handlers
        finally:
            instrumentor.uninstrument()
            handle.uninstall()
    assert len(handler.records) == 2


def test_threads_see_their_own_span(correlation, captured, tracer_provider):
    logger, handler = captured
    tracer = tracer_provider.get_tracer("t")
    expected: dict[str, tuple[str, str]] = {}
    barrier = threading.Barrier(4)

    def work(name: str) -> None:
        with tracer.start_as_current_span(name) as span:
            expected[name] = _hex(span.get_span_context())
            for _ in range(50):
                barrier.wait(30) if _ == 0 else None
                logger.info(name)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a logging thread is stuck"
    assert len(handler.records) == 200
    for record in handler.records:
        assert (record.trace_id, record.span_id) == expected[record.msg]


def test_asyncio_tasks_see_their_own_span(correlation, captured, tracer_provider):
    logger, handler = captured
    tracer = tracer_provider.get_tracer("t")
    expected: dict[str, tuple[str, str]] = {}

    async def task(name: str) -> None:
        with tracer.start_as_current_span(name) as span:
            expected[name] = _hex(span.get_span_context())
            for _ in range(5):
                logger.info(name)
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(task(f"a{i}") for i in range(5)))

    asyncio.run(main())
    assert len(handler.records) == 25
    for record in handler.records:
        assert (record.trace_id, record.span_id) == expected[record.msg]


def test_failure_inside_factory_falls_back_to_plain_record(correlation, captured, tracer_provider):
    logger, handler = captured

    def broken(ctx):
        raise RuntimeError("boom")

    correlation._correlator.fields_for = broken  # type: ignore[method-assign]
    with tracer_provider.get_tracer("t").start_as_current_span("s"):
        logger.info("still logged")
    assert handler.records[-1].getMessage() == "still logged"


def test_current_log_fields(correlation, tracer_provider):
    with tracer_provider.get_tracer("t").start_as_current_span("s") as span:
        fields = current_log_fields()
    assert fields["trace_id"] == _hex(span.get_span_context())[0]
    assert fields["service.name"] == "shop"


def test_public_api_fallback_gives_the_same_fields(correlation, captured, tracer_provider, monkeypatch):
    """The import-time checks pick the fast reads; with both off, the public API gives the same fields."""
    from otelpipe.processors import log_correlation

    assert log_correlation._SPAN_KEY is not None and log_correlation._UNPACK_SPAN_CONTEXT
    logger, handler = captured
    tracer = tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("fast"):
        logger.info("fast")
    monkeypatch.setattr(log_correlation, "_SPAN_KEY", None)
    monkeypatch.setattr(log_correlation, "_UNPACK_SPAN_CONTEXT", False)
    with tracer.start_as_current_span("public") as span:
        logger.info("public")
    logger.info("outside")
    fast, public, outside = handler.records
    assert (public.trace_id, public.span_id) == _hex(span.get_span_context())
    assert fast.trace_sampled is public.trace_sampled is True
    assert len(fast.trace_id) == 32 and fast.span_id != public.span_id
    assert (outside.trace_id, outside.trace_sampled) == ("0" * 32, False)
