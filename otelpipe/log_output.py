"""Give the app's own log output (its root stream handlers) otelpipe's JSON format and secret masking.

Under `opentelemetry-instrument` otelpipe runs before the app configures logging, so the
handlers to decorate may not exist yet. Like opentelemetry-instrumentation-logging, otelpipe
wraps `logging.basicConfig` and `logging.config.dictConfig`/`fileConfig` and decorates the root
handlers again after each call, so `basicConfig(level=logging.INFO)` keeps working as the app
expects. With `OTELPIPE_LOG_FORMAT=json|ecs` and no stream handler at all, one stderr handler is
added, and set aside whenever the app configures logging itself.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import Callable
from typing import Any

from otelpipe.diagnostics import logger
from otelpipe.processors.request_id import SPAN_ATTRIBUTE as REQUEST_ID_ATTRIBUTE

_log = logger("logs")
_MARK = "_otelpipe_decorated"
_LIGHT_MARK = "_otelpipe_light_emit"


def _is_otel_bridge(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("opentelemetry.")


def _light_emit(handler: logging.Handler, copies: frozenset[str]) -> None:
    """Hand the OTel bridge a shallow copy of each record without the correlation copies.

    The bridge turns every non-standard record attribute into an OTLP attribute, cleaning each
    value (about 0.8 us apiece), and otelpipe's log processor then deletes the dozen correlation
    copies again: OTLP carries trace/span ids, flags and the resource natively. Leaving them out
    of the bridge's view skips both. The app's record itself is never changed (other handlers and
    formatters still see every field). ``request_id`` goes under its exported name ``request.id``
    until otelpipe's log processor is seen to run behind this bridge; from then on it is left out
    whenever it is the current context's (it is, unless a QueueListener thread hands the record
    over) and the processor adds it from the context with one plain dict write: as a bridge
    attribute it would cost the SDK's cleaning of the whole attribute map, on a record that
    carries no other attribute. A bridge with a formatter of its own gets the full record.
    """
    from otelpipe.processors.otlp_logs import SEEN
    from otelpipe.processors.request_id import _REQUEST_ID

    original = handler.emit
    new_record = object.__new__
    copy_keys = tuple(copies)
    current_request_id = _REQUEST_ID.get
    processor_seen = False

    def emit(record: logging.LogRecord) -> None:
        nonlocal processor_seen
        light = record
        if handler.formatter is None and "trace_id" in record.__dict__:
            try:
                fields = record.__dict__.copy()
                try:  # the usual case: every copy is there (a superset test first would cost as much again)
                    for key in copy_keys:
                        del fields[key]
                except KeyError:  # some are missing: delete the others
                    for key in copies.intersection(fields):
                        del fields[key]
                request_id = fields.pop("request_id", None)
                if (
                    request_id
                    and REQUEST_ID_ATTRIBUTE not in fields
                    and not (processor_seen and request_id is current_request_id())
                ):
                    fields[REQUEST_ID_ATTRIBUTE] = request_id
                light = new_record(type(record))
                light.__dict__ = fields
            except Exception:  # an odd record class: the bridge gets the record as it is
                light = record
        if processor_seen:
            original(light)
            return
        SEEN.record = False
        original(light)
        processor_seen = getattr(SEEN, "record", False)

    handler.emit = emit  # type: ignore[method-assign]
    setattr(handler, _LIGHT_MARK, original)


def _restore_emit(handler: logging.Handler) -> None:
    original = handler.__dict__.pop(_LIGHT_MARK, None)
    if original is not None:
        handler.__dict__.pop("emit", None)


def configure_log_output(fmt: str, redactor: Any | None) -> Callable[[], None]:
    """Decorate root stream handlers now and after every logging (re)configuration; returns an undo."""
    from otelpipe.processors.json_formatter import JsonFormatter
    from otelpipe.processors.log_correlation import CORRELATION_FIELDS
    from otelpipe.processors.redaction import RedactingFilter

    root = logging.getLogger()
    redacting = RedactingFilter(redactor) if redactor is not None else None
    own: logging.Handler | None = None
    copies = CORRELATION_FIELDS - {"request_id"}
    bridges: list[logging.Handler] = []

    def lighten(handler: logging.Handler) -> None:
        if _LIGHT_MARK not in handler.__dict__ and type(handler).__name__ == "LoggingHandler":
            _light_emit(handler, copies)
            bridges.append(handler)

    def decorate() -> None:
        for handler in root.handlers:
            if _is_otel_bridge(handler):
                lighten(handler)
                continue
            if getattr(handler, _MARK, False):
                continue
            if fmt in ("json", "ecs"):
                handler.setFormatter(JsonFormatter(ecs=fmt == "ecs"))
            if redacting is not None:
                handler.addFilter(redacting)
            setattr(handler, _MARK, True)

    if fmt in ("json", "ecs") and not any(
        isinstance(h, logging.StreamHandler) and not _is_otel_bridge(h) for h in root.handlers
    ):
        own = logging.StreamHandler(sys.stderr)
        root.addHandler(own)
    decorate()
    # opentelemetry-instrumentation-logging adds its bridge after otelpipe is configured, and takes
    # it off the root around each basicConfig/dictConfig (so `decorate` never sees it): catch it
    # where it is (re)added.
    add_handler = root.addHandler

    def add_then_lighten(handler: logging.Handler) -> None:
        add_handler(handler)
        if _is_otel_bridge(handler):
            try:
                lighten(handler)
            except Exception:
                _log.warning("could not decorate the OTel log bridge", exc_info=True)

    root.addHandler = add_then_lighten  # type: ignore[method-assign,assignment]

    originals: dict[str, Callable[..., Any]] = {
        "basicConfig": logging.basicConfig,
        "dictConfig": logging.config.dictConfig,
        "fileConfig": logging.config.fileConfig,
    }

    def wrap(config_fn: Callable[..., Any]) -> Callable[..., Any]:
        def configure_then_decorate(*args: Any, **kwargs: Any) -> Any:
            nonlocal own
            if own is not None and own in root.handlers:
                root.removeHandler(own)  # the app is taking charge of its handlers
                own = None
            try:
                return config_fn(*args, **kwargs)
            finally:
                try:
                    decorate()
                except Exception:
                    _log.warning("could not decorate log handlers", exc_info=True)

        configure_then_decorate.__wrapped__ = config_fn  # type: ignore[attr-defined]
        return configure_then_decorate

    logging.basicConfig = wrap(originals["basicConfig"])
    logging.config.dictConfig = wrap(originals["dictConfig"])
    logging.config.fileConfig = wrap(originals["fileConfig"])

    def undo() -> None:
        if root.__dict__.get("addHandler") is add_then_lighten:
            del root.addHandler
        for bridge in bridges:
            _restore_emit(bridge)
        logging.basicConfig = originals["basicConfig"]  # type: ignore[assignment]
        logging.config.dictConfig = originals["dictConfig"]
        logging.config.fileConfig = originals["fileConfig"]
        if own is not None and own in root.handlers:
            root.removeHandler(own)

    return undo
