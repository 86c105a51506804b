"""Stamp every stdlib ``LogRecord`` with trace/span ids, service identity and the request id.

A record-factory wrapper rather than a Filter: it works for every logger and handler, and the
fields exist before any Filter or Formatter reads them. Hex ids are cached per span context and
the whole field set is applied with one ``dict.update``, because this runs on every log call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import context as context_api
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    SpanContext,
    TraceFlags,
    get_current_span,
)

from otelpipe.processors.context_reads import SPAN_CONTEXT_UNPACKS, SPAN_KEY, current_context
from otelpipe.processors.request_id import _REQUEST_ID, get_request_id

_logger = logging.getLogger("otelpipe.logs")

TRACE_ID_NONE = "0" * 32
SPAN_ID_NONE = "0" * 16
# Bounded: live spans that log are few; a full cache is simply cleared.
_SPAN_CACHE_LIMIT = 1024

# Every attribute the factory adds; formatters use this to tell them apart from app extras.
CORRELATION_FIELDS: frozenset[str] = frozenset(
    {
        "trace_id",
        "span_id",
        "trace_sampled",
        "service.name",
        "service_name",
        "service.version",
        "deployment.environment",
        "request_id",
        "otelTraceID",
        "otelSpanID",
        "otelTraceSampled",
        "otelServiceName",
    }
)

# What the factory stamps from sources otelpipe controls, all but ``request_id`` (client-supplied).
STAMPED_FIELDS: frozenset[str] = CORRELATION_FIELDS - {"request_id"}

_Fields = dict[str, Any]


def _static_fields(service_name: str, service_version: str, deployment_environment: str) -> _Fields:
    return {
        "service.name": service_name,
        "service_name": service_name,
        "service.version": service_version,
        "deployment.environment": deployment_environment,
        "otelServiceName": service_name,
    }


def _outside_fields(static: _Fields) -> _Fields:
    """The fields outside any span: the same values as opentelemetry-instrumentation-logging, so
    whichever factory runs last agrees (inside a span, `_Correlator.fields_for` builds them)."""
    return {
        **static,
        "trace_id": TRACE_ID_NONE,
        "span_id": SPAN_ID_NONE,
        "trace_sampled": False,
        "otelTraceID": "0",
        "otelSpanID": "0",
        "otelTraceSampled": False,
    }


_SAMPLED = int(TraceFlags.SAMPLED)


_SPAN_KEY = SPAN_KEY  # module names: the tests turn the fast reads off here
_UNPACK_SPAN_CONTEXT = SPAN_CONTEXT_UNPACKS


class _Correlator:
    """Maps the current OTel context to a ready-made field dict, caching per span."""

    def __init__(self, static: _Fields) -> None:
        self.enabled = True
        self.reconfigure(static)

    def reconfigure(self, static: _Fields) -> None:
        # Static fields, the outside-any-span set and the template a span's set is copied from,
        # swapped together, so a concurrent `fields_for` never pairs one installation's ids with
        # another's service fields.
        self._base = (static, _outside_fields(static), _outside_fields(static))
        self._by_span: dict[int, tuple[int, _Fields, _Fields]] = {}
        # (context, fields, static) swapped atomically; a hit costs one identity check. The static
        # dict the fields were built from rides along, so the redaction filter can tell with one
        # identity check that the service values it verified are the ones stamped.
        self.last: tuple[object, _Fields, _Fields] = (object(), self._base[1], static)

    def fields_for(self, ctx: Context) -> _Fields:
        # A new request's span misses every cache, so this runs about once per request: no Python
        # call beyond the span's own `get_span_context` where the layouts checked at import allow.
        span: Any = ctx.get(_SPAN_KEY) if _SPAN_KEY is not None else get_current_span(ctx)
        try:
            span_context = span.get_span_context()
        except AttributeError:  # no span (None), or not a span: what get_current_span calls invalid
            span_context = INVALID_SPAN_CONTEXT
        if _UNPACK_SPAN_CONTEXT and type(span_context) is SpanContext:
            trace_id, span_id, _, flags, _, valid = span_context
            sampled = bool(flags & _SAMPLED)
        else:
            trace_id, span_id, valid = span_context.trace_id, span_context.span_id, span_context.is_valid
            sampled = span_context.trace_flags.sampled
        static, outside, template = self._base
        if not valid:
            fields = outside
        else:
            cached = self._by_span.get(span_id)
            if cached is not None and cached[0] == trace_id:
                fields, static = cached[1], cached[2]
            else:
                # Half the instructions of f"{trace_id:032x}" (measured under callgrind), same text.
                trace_hex = trace_id.to_bytes(16, "big").hex()
                span_hex = span_id.to_bytes(8, "big").hex()
                # A copy of a ready-made dict with every key, then six writes in place: half the
                # instructions of building the 11-key dict from a literal.
                fields = template.copy()
                fields["trace_id"] = fields["otelTraceID"] = trace_hex
                fields["span_id"] = fields["otelSpanID"] = span_hex
                fields["trace_sampled"] = fields["otelTraceSampled"] = sampled
                if len(self._by_span) >= _SPAN_CACHE_LIMIT:
                    self._by_span.clear()
                self._by_span[span_id] = (trace_id, fields, static)
        self.last = (ctx, fields, static)
        return fields


class _Failures:
    """Counts factory failures and reports only the first, so a broken record cannot flood logs."""

    count = 0

    @classmethod
    def note(cls) -> None:
        cls.count += 1
        if cls.count == 1:
            _logger.warning("log correlation failed; records pass through uncorrelated", exc_info=True)


def _make_factory(previous: Callable[..., logging.LogRecord], correlator: _Correlator) -> Callable[..., Any]:
    get_current = current_context
    request_id = _REQUEST_ID.get

    def otelpipe_record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if correlator.enabled:
            try:
                ctx = get_current()
                last = correlator.last
                fields = last[1] if last[0] is ctx else correlator.fields_for(ctx)
                attrs = record.__dict__
                attrs.update(fields)
                attrs["request_id"] = request_id()
            except Exception:
                _Failures.note()
        return record

    return otelpipe_record_factory


class LogCorrelationHandle:
    """What :func:`install_log_correlation` returns; ``uninstall()`` undoes it."""

    def __init__(self, correlator: _Correlator, factory: Callable[..., Any], previous: Callable[..., Any]):
        self._correlator = correlator
        self._factory = factory
        self._previous = previous

    @property
    def installed(self) -> bool:
        """True until :meth:`uninstall` is called."""
        return self._correlator.enabled

    def uninstall(self) -> None:
        """Restore the previous factory, or turn ours into a pass-through if another wraps it."""
        global _ACTIVE
        with _LOCK:
            self._correlator.enabled = False
            if logging.getLogRecordFactory() is self._factory:
                logging.setLogRecordFactory(self._previous)
            if _ACTIVE is self:
                _ACTIVE = None


_LOCK = threading.Lock()
_ACTIVE: LogCorrelationHandle | None = None


def install_log_correlation(
    service_name: str, service_version: str = "", deployment_environment: str = ""
) -> LogCorrelationHandle:
    """Add correlation attributes to every stdlib LogRecord created from now on.

    Idempotent: a second call updates the service fields of the active installation instead of
    wrapping twice. Coexists with opentelemetry-instrumentation-logging's factory in either order
    (both write the same ``otel*`` values).
    """
    global _ACTIVE
    static = _static_fields(service_name, service_version, deployment_environment)
    with _LOCK:
        if _ACTIVE is not None:
            _ACTIVE._correlator.reconfigure(static)
            return _ACTIVE
        previous = logging.getLogRecordFactory()
        correlator = _Correlator(static)
        factory = _make_factory(previous, correlator)
        logging.setLogRecordFactory(factory)
        _ACTIVE = LogCorrelationHandle(correlator, factory, previous)
        return _ACTIVE


_UNINSTALLED = _Correlator(_static_fields("", "", ""))


def current_log_fields() -> dict[str, Any]:
    """Correlation fields for the current context (used by the structlog and OTLP processors).

    Service fields are those of the active installation, empty strings when none is installed.
    """
    active = _ACTIVE
    correlator = active._correlator if active is not None else _UNINSTALLED
    ctx = context_api.get_current()
    last = correlator.last
    fields = last[1] if last[0] is ctx else correlator.fields_for(ctx)
    result = dict(fields)
    result["request_id"] = get_request_id()
    return result
