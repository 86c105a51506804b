from __future__ import annotations

import json
import logging
import re

from otelpipe.processors.json_formatter import JsonFormatter


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _lines(handler):
    return [json.loads(line) for line in handler.lines]


def test_default_shape_in_span(correlation, captured, tracer_provider):
    logger, handler = captured
    handler.setFormatter(JsonFormatter(static_fields={"team": "payments"}))
    with tracer_provider.get_tracer("t").start_as_current_span("s") as span:
        logger.warning("paid %s", 12, extra={"order_id": 7, "level": "ignored-extra"})
    logger.info("outside")
    for line in handler.lines:
        assert "\n" not in line
    first, second = _lines(handler)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["timestamp"])
    assert first["level"] == "WARNING"
    assert first["logger"] == "tests.logs.capture"
    assert first["message"] == "paid 12"
    assert first["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert first["span_id"] == format(span.get_span_context().span_id, "016x")
    assert first["trace_sampled"] is True
    assert first["service.name"] == "shop" and first["service.version"] == "1.2.3"
    assert first["deployment.environment"] == "test"
    assert first["order_id"] == 7
    assert first["team"] == "payments"
    assert "otelTraceID" not in first and "request_id" not in first
    assert second["trace_id"] == "0" * 32


def test_exception_fields(captured):
    logger, handler = captured
    handler.setFormatter(JsonFormatter())
    try:
        raise KeyError("missing")
    except KeyError:
        logger.exception("failed")
    line = _lines(handler)[0]
    assert line["exception.type"] == "KeyError"
    assert line["exception.message"] == "'missing'"
    assert "Traceback" in line["exception.stacktrace"] and "KeyError" in line["exception.stacktrace"]


def test_ecs_mode(correlation, captured, tracer_provider):
    logger, handler = captured
    handler.setFormatter(JsonFormatter(ecs=True))
    with tracer_provider.get_tracer("t").start_as_current_span("s") as span:
        try:
            raise ValueError("bad")
        except ValueError:
            logger.error("oops", exc_info=True)
    line = _lines(handler)[0]
    assert set(line) >= {
        "@timestamp",
        "log.level",
        "log.logger",
        "message",
        "ecs.version",
        "trace.id",
        "span.id",
    }
    assert line["log.level"] == "error"
    assert line["trace.id"] == format(span.get_span_context().trace_id, "032x")
    assert line["service.name"] == "shop" and line["service.environment"] == "test"
    assert line["error.type"] == "ValueError" and line["error.message"] == "bad"
    assert "timestamp" not in line and "level" not in line


def test_unserialisable_values_never_raise(captured):
    logger, handler = captured
    handler.setFormatter(JsonFormatter())
    cyclic: list[object] = []
    cyclic.append(cyclic)
    logger.info(
        "weird %s",
        object(),
        extra={
            "obj": object(),
            "nan": float("nan"),
            "tupkey": {(1, 2): "x"},
            "cyc": cyclic,
            "bad": Unprintable(),
        },
    )
    bad_args = logging.LogRecord("x", logging.INFO, __file__, 1, "bad args %s %s", (1,), None)
    handler.lines.append(JsonFormatter().format(bad_args))
    first, second = _lines(handler)
    assert first["nan"] == "nan"
    assert first["tupkey"] == {"(1, 2)": "x"}
    assert first["bad"] == "<unrepresentable Unprintable>"
    assert first["obj"].startswith("<object object")
    assert second["message"].startswith("bad args")


def test_formatter_on_plain_record_without_correlation():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == "0" * 32 and "service.name" not in line
