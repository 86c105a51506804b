"""``operation``: a span plus start/success/failure log lines with duration, as one construct.

Usable as ``with operation("charge", order_id=7):`` or as ``@operation("charge")``. The app's
exception is re-raised untouched after the span is marked as an error.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

DEFAULT_LOGGER_NAME = "app.operation"

_P = ParamSpec("_P")
_R = TypeVar("_R")


class operation:
    """Open a span named ``name`` and log its start, success or failure.

    ``attrs`` become span attributes and log extras. Logs go to ``logger`` (default
    ``app.operation``, an app logger, not otelpipe's diagnostics). Failures log at ERROR with
    ``error.type`` and ``duration_ms``; the span gets status ERROR and the exception event.
    """

    def __init__(
        self,
        name: str,
        *,
        logger: logging.Logger | None = None,
        tracer: trace.Tracer | None = None,
        **attrs: Any,
    ) -> None:
        self._name = name
        self._logger = logger or logging.getLogger(DEFAULT_LOGGER_NAME)
        self._tracer = tracer
        self._attrs = attrs
        self._stack: list[Any] = []

    @contextmanager
    def _run(self) -> Iterator[trace.Span]:
        tracer = self._tracer or trace.get_tracer("otelpipe.operation")
        extra = {"operation": self._name, **self._attrs}
        with tracer.start_as_current_span(
            self._name, attributes=self._attrs, record_exception=False, set_status_on_exception=False
        ) as span:
            self._logger.info("%s started", self._name, extra=extra)
            start = time.perf_counter()
            try:
                yield span
            except BaseException as exc:
                duration_ms = round((time.perf_counter() - start) * 1000, 3)
                error_type = type(exc).__qualname__
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, error_type))
                span.set_attribute("error.type", error_type)
                self._logger.error(
                    "%s failed after %.1f ms: %s",
                    self._name,
                    duration_ms,
                    error_type,
                    extra={**extra, "duration_ms": duration_ms, "error.type": error_type},
                )
                raise
            duration_ms = round((time.perf_counter() - start) * 1000, 3)
            self._logger.info(
                "%s succeeded in %.1f ms",
                self._name,
                duration_ms,
                extra={**extra, "duration_ms": duration_ms},
            )

    def __enter__(self) -> trace.Span:
        manager = self._run()
        self._stack.append(manager)
        return manager.__enter__()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        suppressed: bool | None = self._stack.pop().__exit__(exc_type, exc, tb)
        return suppressed

    def __call__(self, func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with self._run():
                return func(*args, **kwargs)

        return wrapper
