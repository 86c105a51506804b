"""RED for dropped SQLAlchemy query spans, described by SQLAlchemy's own events instead of by recording.

Why: a recording query span makes the SQLAlchemy instrumentation do its recording-only work on every
query (a copy of the connection attributes, the statement, `db.system`, the operation name parsed a
second time, a `set_attribute` each): about 1 % of a whole small request, paid for the 99 % of
queries that are never exported. RED needs only what the instrumentation passes to `start_span` (the
span name and kind), what the engine tells (`db.system` or `db.system.name`, the server address, the
same for every query of an engine) and whether the query failed, which SQLAlchemy's `handle_error`
event says.

So, for the scope `opentelemetry.instrumentation.sqlalchemy` at versions known to end a query span
only from its `after_cursor_execute` and `handle_error` listeners with the span in the execution
context's `_otel_span` (`_KNOWN_VERSIONS`), a query span the sampler drops becomes a
`QuietQuerySpan`: not recording (the instrumentation skips its attribute work, as under the stock
distro), counted by RED once it has both ended and been described, in either order. otelpipe's own
listeners, registered once on the `Engine` class (they apply to every engine, and run before each
engine's own listeners), describe it: `after_cursor_execute` with the engine's attributes,
`handle_error` with the same and the ERROR status. The attributes are computed by the
instrumentation's own functions, once per engine (per query for a PostgreSQL engine whose URL names no
host, where they come from the cursor), and kept only where RED reads them.

The `connect` span (started with `start_as_current_span`) stays a light recording span: its
recording-only work is small, and a connect that fails outside the DBAPI (a pool timeout) reaches no
event naming its engine. Nor is any span quiet when RED reads a per-query attribute (the statement or
the operation, as an extra dimension): only a recording span has those.

What stays exact: calls, errors and duration buckets per RED dimension, and service-graph edges, as
with a recording span (tests/processors/test_sqlalchemy_tap.py compares both on the same queries).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from time import time_ns
from typing import Any

from opentelemetry.trace.status import Status, StatusCode
from packaging.version import InvalidVersion, Version

from otelpipe.processors.unsampled import QuietSpan, _plain

__all__ = ["SCOPE", "QuietQuerySpan", "SqlAlchemyTap", "sqlalchemy_tap"]

SCOPE = "opentelemetry.instrumentation.sqlalchemy"
# Versions whose query spans start in `before_cursor_execute`, are kept in `context._otel_span` and
# end only in `after_cursor_execute` or `handle_error` (read in 0.63b1 and 0.66b1; the tests run both).
_KNOWN_VERSIONS = (Version("0.63b0"), Version("0.67.dev0"))  # 0.63b0 <= v < any 0.67
_ERROR = Status(StatusCode.ERROR)
_MAX_ENGINES = 64  # cached descriptions; past it the dead engines' entries are dropped

_log = logging.getLogger("otelpipe")


class QuietQuerySpan(QuietSpan):
    """A dropped query span: not recording, counted by RED once ended and described."""

    _described = False
    _tap: SqlAlchemyTap

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time if end_time is not None else time_ns()
        if self._described:  # as always: otelpipe's listener runs before the instrumentation's ends it
            for on_ending in self._on_ending:
                on_ending(self)
            for on_end in self._on_end:
                on_end(self)

    def describe(self, attributes: Mapping[str, Any], error: bool) -> None:
        """The engine's attributes (already plain and limited to `keep`), and whether the query failed."""
        if self._described:
            return
        self._described = True
        self._attributes.update(attributes)
        if error:
            self._status = _ERROR
        if self._end_time is not None:
            self._hand_over()


class SqlAlchemyTap:
    """Starts quiet query spans and describes them from the engine (one per tracer provider)."""

    def __init__(self, keep: frozenset[str], describe_engine: Callable[[Any, Any, Any], dict[str, Any]]) -> None:
        self._describe_engine = describe_engine
        self._lock = threading.Lock()
        self._engines: dict[int, tuple[weakref.ref[Any], dict[str, Any] | None]] = {}
        self.keep = keep
        self.span_class = QuietQuerySpan

    def start(self, span: QuietQuerySpan) -> QuietQuerySpan:
        span._tap = self
        return span

    def describe(self, span: QuietQuerySpan, engine: Any, conn: Any, cursor: Any, error: bool) -> None:
        """Hand the engine's attributes to a quiet span; without them if they cannot be read (still counted)."""
        try:
            cached = self._engines.get(id(engine))
            if cached is not None and cached[0]() is engine and cached[1] is not None:
                attributes = cached[1]
            else:
                attributes = self._attributes(engine, conn, cursor)
        except Exception:  # never hurt the host app
            attributes = {}
        span.describe(attributes, error)

    def _attributes(self, engine: Any, conn: Any, cursor: Any) -> dict[str, Any]:
        """RED's share of the attributes a recording span of this engine's query gets, cached per engine."""
        attributes = self._describe_engine(engine, conn, cursor)
        with self._lock:
            if len(self._engines) >= _MAX_ENGINES:
                self._engines = {key: entry for key, entry in self._engines.items() if entry[0]() is not None}
                if len(self._engines) >= _MAX_ENGINES:
                    self._engines.clear()
            self._engines[id(engine)] = (weakref.ref(engine), None if _per_query(engine) else attributes)
        return attributes


_install_lock = threading.Lock()
_installed = False


def _install_listeners() -> None:
    """otelpipe's two listeners on the `Engine` class, once per process (every provider's spans use them)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "after_cursor_execute", _after_cursor_execute)
        event.listen(Engine, "handle_error", _handle_error)
        _installed = True


def _after_cursor_execute(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: Any) -> None:
    """The query ran: its quiet span gets the engine's attributes, then the instrumentation ends it."""
    try:
        span = getattr(context, "_otel_span", None)
        if type(span) is QuietQuerySpan:
            engine = getattr(conn, "engine", None)
            span._tap.describe(span, engine, conn, cursor, error=False)
    except Exception:  # never hurt the host app
        return


def _handle_error(exception_context: Any) -> None:
    """The query failed: its quiet span gets the engine's attributes and the ERROR status."""
    try:
        span = getattr(exception_context.execution_context, "_otel_span", None)
        if type(span) is QuietQuerySpan:
            found = exception_context
            engine = getattr(found, "engine", None)
            span._tap.describe(span, engine, getattr(found, "connection", None), getattr(found, "cursor", None), error=True)
    except Exception:  # never hurt the host app
        return


def _per_query(engine: Any) -> bool:
    """Whether the instrumentation reads this engine's attributes from each query's cursor.

    It does when the URL names no host; only for PostgreSQL do they then depend on the cursor (the
    connection's host and database); SQLite's come from the URL's database either way.
    """
    return not engine.url.host and "postgres" in (engine.name or "")


def _engine_describer(keep: frozenset[str]) -> Callable[[Any, Any, Any], dict[str, Any]] | None:
    """A function giving RED's share of a query span's attributes, by the instrumentation's own helpers.

    None when RED reads a per-query attribute (the statement or operation, in any semantic
    convention mode), which only a recording span carries.
    """
    from importlib import import_module

    # Private, untyped helpers of the instrumentation: the very code its recording path runs.
    semconv: Any = import_module("opentelemetry.instrumentation._semconv")
    engine_module: Any = import_module("opentelemetry.instrumentation.sqlalchemy.engine")
    stability = semconv._OpenTelemetrySemanticConventionStability
    signal = semconv._OpenTelemetryStabilitySignalType
    stability._initialize()
    db_mode = stability._get_opentelemetry_stability_opt_in_mode(signal.DATABASE)
    http_mode = stability._get_opentelemetry_stability_opt_in_mode(signal.HTTP)
    per_query: dict[str, Any] = {}
    semconv._set_db_statement(per_query, "SELECT 1", db_mode)
    semconv._set_db_operation(per_query, "SELECT", db_mode)
    if keep & set(per_query):
        return None

    def describe(engine: Any, conn: Any, cursor: Any) -> dict[str, Any]:
        # As EngineTracer._before_cur_exec and _set_db_client_span_attributes, without the statement.
        vendor = engine_module._normalize_vendor(engine.name)
        attributes, found = engine_module._get_attributes_from_url(engine.url, db_mode, http_mode)
        if not found:
            attributes = engine_module._get_attributes_from_cursor_or_conn(
                vendor, conn, cursor, attributes, db_mode, http_mode
            )
        attributes = dict(attributes)
        semconv._set_db_system(attributes, vendor, db_mode)
        return {key: _plain(value) for key, value in attributes.items() if key in keep}

    return describe


def sqlalchemy_tap(keep: frozenset[str], version: str | None) -> SqlAlchemyTap | None:
    """A tap for this instrumentation version, the listeners installed; None when quiet spans are not safe."""
    try:
        known = version is not None and _KNOWN_VERSIONS[0] <= Version(version) < _KNOWN_VERSIONS[1]
    except InvalidVersion:
        known = False
    if not known:
        return None
    try:
        describe_engine = _engine_describer(keep)
        if describe_engine is None:
            return None
        _install_listeners()
    except Exception as error:  # an instrumentation or SQLAlchemy we do not know: recording spans
        _log.warning("otelpipe: SQLAlchemy query spans stay recording (%s)", type(error).__name__)
        return None
    return SqlAlchemyTap(keep, describe_engine)
