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


def test_log_output_hands_the_bridge_no_correlation_copies_and_leaves_the_record_whole(
    correlation, tracer_provider
):
    """configure_log_output: the OTel bridge sees no correlation copies; later handlers see all."""
    from otelpipe.log_output import configure_log_output
    from tests.logs.conftest import ListHandler

    provider = LoggerProvider()
    exporter = InMemoryLogRecordExporter()
    # Without the dropping processor, whatever the bridge copies would be exported as is.
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    bridge = LoggingHandler(logger_provider=provider)
    after = ListHandler()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = [after]
    root.setLevel(logging.INFO)
    undo = configure_log_output("unchanged", Redactor())
    root.addHandler(bridge)  # as opentelemetry-instrumentation-logging does, after otelpipe starts
    token = set_request_id("rid-7")
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("s"):
            logging.getLogger("tests.logs.bridge").info("paid token=s3cr3t", extra={"order": 5})
    finally:
        reset_request_id(token)
        undo()
        root.handlers, level = saved
        root.setLevel(level)
    assert "emit" not in bridge.__dict__ and "addHandler" not in root.__dict__  # undo restored both
    (exported,) = exporter.get_finished_logs()
    attrs = dict(exported.log_record.attributes)
    # request_id reaches the bridge under its exported name, so the processor has nothing to rename.
    assert attrs["order"] == 5 and attrs["request.id"] == "rid-7" and "request_id" not in attrs
    for copy in ("trace_id", "span_id", "otelTraceID", "service.name", "otelServiceName", "trace_sampled"):
        assert copy not in attrs
    assert exported.log_record.trace_id != 0
    (record,) = after.records
    assert record.trace_id == format(exported.log_record.trace_id, "032x")
    assert record.service_name == "shop" and record.request_id == "rid-7"


def test_log_output_drops_whichever_correlation_copies_a_record_has():
    """A record carrying only some copies (here set as extras, no correlation installed): the bridge
    still gets none of them and every other attribute."""
    from otelpipe.log_output import configure_log_output

    provider = LoggerProvider()
    exporter = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    bridge = LoggingHandler(logger_provider=provider)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []
    root.setLevel(logging.INFO)
    undo = configure_log_output("unchanged", Redactor())
    root.addHandler(bridge)
    try:
        logging.getLogger("tests.logs.partial").info("x", extra={"trace_id": "abc", "otelSpanID": "1", "order": 5})
    finally:
        undo()
        root.handlers, level = saved
        root.setLevel(level)
    (exported,) = exporter.get_finished_logs()
    assert dict(exported.log_record.attributes) == {"order": 5}


def test_request_id_respects_the_attribute_limits(correlation):
    """request.id written straight into the SDK's dict only where BoundedAttributes would keep it as is."""
    import inspect

    import pytest

    limits_type = getattr(__import__("opentelemetry.sdk._logs", fromlist=["x"]), "LogRecordLimits", None)
    if limits_type is None or "log_record_limits" not in inspect.signature(LoggerProvider).parameters:
        pytest.skip("this SDK's LoggerProvider takes no log_record_limits")
    exported = {}
    for name, limits in (
        ("roomy", limits_type()),
        ("full", limits_type(max_attributes=1)),
        ("short", limits_type(max_attribute_length=3)),
    ):
        provider = LoggerProvider(log_record_limits=limits)
        exporter = InMemoryLogRecordExporter()
        provider.add_log_record_processor(CorrelatingLogRecordProcessor(Redactor()))
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        token = set_request_id("rid-12345")
        try:
            provider.get_logger("x").emit(body="b", attributes={"order": 5})
        finally:
            reset_request_id(token)
        (log,) = exporter.get_finished_logs()
        exported[name] = dict(log.log_record.attributes)
    assert exported["roomy"] == {"order": 5, "request.id": "rid-12345"}
    assert exported["full"] == {"request.id": "rid-12345"}  # the oldest dropped, as the SDK does
    assert exported["short"] == {"order": 5, "request.id": "rid"}



def test_bridge_leaves_request_id_to_the_processor_once_seen_and_keeps_a_handed_over_one(
    correlation, tracer_provider
):
    """Every exported record carries its own request.id: from the bridge until otelpipe's processor is
    seen behind it, then from the context; a record emitted in another context keeps its own."""
    import threading

    from otelpipe.log_output import configure_log_output

    provider = LoggerProvider()
    exporter = InMemoryLogRecordExporter()
    provider.add_log_record_processor(CorrelatingLogRecordProcessor(Redactor()))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    bridge = LoggingHandler(logger_provider=provider)
    handed: list[tuple[str, str | None]] = []  # (message, request.id) as the bridge saw them
    translate = bridge._translate

    def spy(record):
        handed.append((record.getMessage(), record.__dict__.get("request.id")))
        return translate(record)

    bridge._translate = spy
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []
    root.setLevel(logging.INFO)
    undo = configure_log_output("unchanged", Redactor())
    root.addHandler(bridge)
    log = logging.getLogger("tests.logs.handshake")
    token = set_request_id("rid-a")
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("s"):
            log.info("first")
            log.info("second")
            handed_over = log.makeRecord(log.name, logging.INFO, "f", 1, "queued", None, None)
        reset_request_id(token)
        token = set_request_id("rid-b")
        log.info("third")
        thread = threading.Thread(target=bridge.handle, args=(handed_over,))  # as a QueueListener does
        thread.start()
        thread.join(10)
    finally:
        reset_request_id(token)
        undo()
        root.handlers, level = saved
        root.setLevel(level)
    got = {log.log_record.body: dict(log.log_record.attributes) for log in exporter.get_finished_logs()}
    assert got == {
        "first": {"request.id": "rid-a"},
        "second": {"request.id": "rid-a"},
        "third": {"request.id": "rid-b"},
        "queued": {"request.id": "rid-a"},
    }
    # Only the first record (before the processor was seen) and the handed-over one needed the attribute.
    assert handed == [("first", "rid-a"), ("second", None), ("third", None), ("queued", "rid-a")]


def test_request_id_found_clean_by_the_filter_is_still_masked_under_a_secret_key_and_beside_secrets():
    """The processor skips its scan only for a lone request id the filter found clean under a
    non-secret key; another attribute, or a policy that makes the key secret, scans as before."""
    from otelpipe.processors.redaction import DEFAULT_SECRET_KEYS

    rid = "0123456789abcdef0123456789abcdef"
    exported = []
    for keys, attributes in ((DEFAULT_SECRET_KEYS | {"id"}, {}), (DEFAULT_SECRET_KEYS, {"token": "t-1"})):
        redactor = Redactor(keys)
        provider = LoggerProvider()
        exporter = InMemoryLogRecordExporter()
        provider.add_log_record_processor(CorrelatingLogRecordProcessor(redactor))
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        token = set_request_id(rid)
        try:
            for _ in range(2):  # the second time the key's verdict is cached
                redactor.clean_id = rid  # as if the log filter had just checked this request's id
                provider.get_logger("x").emit(body="b", attributes=dict(attributes))
        finally:
            reset_request_id(token)
        exported.append([dict(log.log_record.attributes) for log in exporter.get_finished_logs()])
    assert exported[0] == [{"request.id": "[REDACTED]"}] * 2
    assert exported[1] == [{"token": "[REDACTED]", "request.id": rid}] * 2
