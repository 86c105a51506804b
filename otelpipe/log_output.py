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

_log = logger("logs")
_MARK = "_otelpipe_decorated"


def _is_otel_bridge(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("opentelemetry.")


def configure_log_output(fmt: str, redactor: Any | None) -> Callable[[], None]:
    """Decorate root stream handlers now and after every logging (re)configuration; returns an undo."""
    from otelpipe.processors.json_formatter import JsonFormatter
    from otelpipe.processors.redaction import RedactingFilter

    root = logging.getLogger()
    redacting = RedactingFilter(redactor) if redactor is not None else None
    own: logging.Handler | None = None

    def decorate() -> None:
        for handler in root.handlers:
            if _is_otel_bridge(handler) or getattr(handler, _MARK, False):
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
        logging.basicConfig = originals["basicConfig"]  # type: ignore[assignment]
        logging.config.dictConfig = originals["dictConfig"]
        logging.config.fileConfig = originals["fileConfig"]
        if own is not None and own in root.handlers:
            root.removeHandler(own)

    return undo
