"""One JSON object per log line, with correlation fields, app extras and OTel exception fields.

``ecs=True`` switches to Elastic Common Schema names for Elastic users. Formatting never raises:
values JSON cannot encode are rendered with ``str``/``repr``.
"""

from __future__ import annotations

import json
import logging
import math
import time
import traceback
from collections.abc import Mapping
from typing import Any

from otelpipe.processors.log_correlation import CORRELATION_FIELDS, SPAN_ID_NONE, TRACE_ID_NONE

ECS_VERSION = "8.11.0"

_STANDARD_RECORD_ATTRS: frozenset[str] = frozenset(
    vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))
) | {"message", "asctime", "taskName"}
# RedactingFilter's masked str(exception) (redaction.EXCEPTION_MESSAGE_ATTR; not imported, to keep
# this module free of the redaction policy).
_EXCEPTION_MESSAGE_ATTR = "otelpipe_exception_message"
_SKIP = _STANDARD_RECORD_ATTRS | CORRELATION_FIELDS | {_EXCEPTION_MESSAGE_ATTR}
_MAX_DEPTH = 16


def _render(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not lose the line
        try:
            return repr(value)
        except Exception:
            return f"<unrepresentable {type(value).__name__}>"


def _sanitise(value: Any, depth: int = 0) -> Any:
    """Slow path: make any value encodable (non-str keys, NaN, cycles, odd objects)."""
    if isinstance(value, str) or value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _render(value)
    if depth >= _MAX_DEPTH:
        return _render(value)
    if isinstance(value, Mapping):
        return {
            _render(k) if not isinstance(k, str) else k: _sanitise(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_sanitise(v, depth + 1) for v in value]
    return _render(value)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_render)


def _exception_type(exc_type: type[BaseException]) -> str:
    module = exc_type.__module__
    return exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (no newlines inside), ready for a log pipeline.

    Fields: ``timestamp`` (RFC 3339 UTC, ms), ``level``, ``logger``, ``message``, the correlation
    fields set by :func:`install_log_correlation`, ``static_fields``, the record's extras, and
    ``exception.type``/``exception.message``/``exception.stacktrace``. Core fields win over
    extras of the same name.
    """

    def __init__(self, ecs: bool = False, static_fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._ecs = ecs
        self._static = dict(static_fields or {})
        self._second = -1
        self._second_text = ""

    def _timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        millis = int((created - second) * 1000)
        return f"{self._second_text}.{millis:03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self._encode(self._ecs_fields(record) if self._ecs else self._fields(record))
        except Exception as exc:  # formatting must never raise into logging
            return _ENCODER.encode(
                {
                    "level": _render(record.levelname),
                    "logger": _render(record.name),
                    "message": _render(record.msg),
                    "formatter.error": _render(exc),
                }
            )

    @staticmethod
    def _encode(fields: dict[str, Any]) -> str:
        try:
            return _ENCODER.encode(fields)
        except (TypeError, ValueError, RecursionError):
            return _ENCODER.encode(_sanitise(fields))

    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        try:
            return record.getMessage()
        except Exception:  # bad %-args: keep the template rather than lose the line
            return f"{_render(record.msg)} {_render(record.args)}"

    def _exception(self, record: logging.LogRecord) -> tuple[str, str, str] | None:
        exc_info = record.exc_info
        if not exc_info or exc_info[0] is None:
            return None
        exc_type, exc_value, exc_tb = exc_info
        # A RedactingFilter may already have stored a masked traceback in exc_text.
        stack = record.exc_text or "".join(traceback.format_exception(exc_type, exc_value, exc_tb))
        message = record.__dict__.get(_EXCEPTION_MESSAGE_ATTR)
        return _exception_type(exc_type), message if isinstance(message, str) else _render(exc_value), stack

    def _extras(self, record: logging.LogRecord, out: dict[str, Any]) -> None:
        for key, value in record.__dict__.items():
            if key not in _SKIP and key not in out:
                out[key] = value

    def _fields(self, record: logging.LogRecord) -> dict[str, Any]:
        attrs = record.__dict__
        out: dict[str, Any] = {
            "timestamp": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": self._message(record),
            "trace_id": attrs.get("trace_id", TRACE_ID_NONE),
            "span_id": attrs.get("span_id", SPAN_ID_NONE),
            "trace_sampled": attrs.get("trace_sampled", False),
        }
        if "service.name" in attrs:
            out["service.name"] = attrs["service.name"]
            out["service.version"] = attrs.get("service.version", "")
            out["deployment.environment"] = attrs.get("deployment.environment", "")
        request_id = attrs.get("request_id")
        if request_id:
            out["request_id"] = request_id
        exception = self._exception(record)
        if exception is not None:
            out["exception.type"], out["exception.message"], out["exception.stacktrace"] = exception
        if record.stack_info:
            out["stack_info"] = record.stack_info
        for key, value in self._static.items():
            out.setdefault(key, value)
        self._extras(record, out)
        return out

    def _ecs_fields(self, record: logging.LogRecord) -> dict[str, Any]:
        attrs = record.__dict__
        out: dict[str, Any] = {
            "@timestamp": self._timestamp(record.created),
            "log.level": record.levelname.lower(),
            "log.logger": record.name,
            "message": self._message(record),
            "ecs.version": ECS_VERSION,
        }
        trace_id = attrs.get("trace_id")
        if trace_id and trace_id != TRACE_ID_NONE:
            out["trace.id"] = trace_id
            out["span.id"] = attrs.get("span_id", SPAN_ID_NONE)
        if "service.name" in attrs:
            out["service.name"] = attrs["service.name"]
            if attrs.get("service.version"):
                out["service.version"] = attrs["service.version"]
            if attrs.get("deployment.environment"):
                out["service.environment"] = attrs["deployment.environment"]
        request_id = attrs.get("request_id")
        if request_id:
            out["http.request.id"] = request_id
        exception = self._exception(record)
        if exception is not None:
            out["error.type"], out["error.message"], out["error.stack_trace"] = exception
        for key, value in self._static.items():
            out.setdefault(key, value)
        self._extras(record, out)
        return out
