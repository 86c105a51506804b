"""RED for dropped HTTP server spans from the measurements the instrumentation records anyway.

Why: an unsampled span must be *recording* for RED to learn its route and status code, and a
recording server span makes Flask's and the WSGI middleware's instrumentation do their full
attribute work (a `set_attribute` per request attribute, request and response header capture,
status attributes): about 3 % of a whole small request, paid for the 99 % of requests that are
never exported. Those instrumentations already tell otelpipe everything RED needs without it:
the request attributes (method, route, scheme, host) are passed to `start_span` even for a span
the sampler drops, and the status code arrives in the duration measurement they record on every
request (`http.server.duration` / `http.server.request.duration`), whose context holds the span.

So, for the scopes in `TAPPED_SCOPES` whose instruments were created through `TappingMeterProvider`,
a span the sampler drops becomes a `QuietServerSpan`: not recording (the instrumentation skips its
attribute work, exactly as under the stock distro), keeping the RED attributes given at start,
its name, kind, status and exact start/end times. It reaches RED's span processors once it has
both ended and been measured (either order: Flask ends the span before it records the duration,
the WSGI middleware after). A request whose app raised records no duration under Flask: the
`http.server.active_requests` decrement that always closes the request then hands the ended span
over as an error, as the recording span's exception status would have. Sampled server spans and
every other instrumentation keep the recording paths (`UnsampledSpan`, SDK spans).

What stays exact: calls, errors (5xx and unhandled exceptions) and duration buckets per RED
dimension, as with a recording span (tests/processors/test_server_metrics_tap.py compares the
series of both paths on the same requests).
"""

from __future__ import annotations

import threading
from time import time_ns
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util import types
from packaging.version import InvalidVersion, Version

from otelpipe.processors.context_reads import SPAN_KEY
from otelpipe.processors.unsampled import QuietSpan, UnsampledSpan

# The context key the span lives under: one dict lookup instead of get_current_span's two calls
# (None, if an API ever keeps it elsewhere: the public call).
_SPAN_KEY = SPAN_KEY

__all__ = ["TAPPED_SCOPES", "QuietServerSpan", "ServerMetricsTap", "TappingMeterProvider"]

# Instrumentations known to pass the request attributes to start_span, record the server duration
# with the span in the measurement's context on every traced request, and decrement
# `http.server.active_requests` in a `finally` (tests/processors/test_server_metrics_tap.py runs both).
TAPPED_SCOPES = frozenset({"opentelemetry.instrumentation.flask", "opentelemetry.instrumentation.wsgi"})
# The first version of a scope that closes every request that way: Flask's 0.63 records neither the
# duration nor the decrement when the app raises, so such a request's quiet span would never be
# counted; its dropped spans stay recording (`UnsampledSpan`). The version is the meter's, which
# instrumentations set to their own.
_MIN_VERSIONS = {"opentelemetry.instrumentation.flask": Version("0.64b0")}
_DURATIONS = frozenset({"http.server.duration", "http.server.request.duration"})
_ACTIVE_REQUESTS = "http.server.active_requests"
# What a duration measurement adds to the attributes a span had at start.
_STATUS_KEYS = ("http.status_code", "http.response.status_code")
_ERROR = Status(StatusCode.ERROR)


class ServerMetricsTap:
    """Which scopes are tapped, and the hand-over of measurements to their quiet spans."""

    def __init__(self) -> None:
        self._durations: set[str] = set()
        self._active: set[str] = set()
        self.ready: frozenset[str] = frozenset()  # scopes with both instruments: quiet spans allowed
        self._thread = threading.local()  # the quiet span of the request this thread serves
        self.span_class = QuietServerSpan

    def instrument_created(self, scope: str, name: str) -> None:
        if name in _DURATIONS:
            self._durations.add(scope)
        elif name == _ACTIVE_REQUESTS:
            self._active.add(scope)
        self.ready = frozenset(self._durations & self._active)

    def start(self, span: QuietServerSpan, attributes: types.Attributes) -> QuietServerSpan:
        """Register a quiet span as this thread's request, keeping the RED attributes given at start."""
        if attributes:
            UnsampledSpan.set_attributes(span, attributes)
        self._thread.span = span
        return span

    def request_closed(self) -> None:
        """`http.server.active_requests` went down: a quiet span ended but never measured was an error."""
        span = getattr(self._thread, "span", None)
        if span is not None:
            self._thread.span = None
            if not span._measured:  # the usual request was measured first: nothing to do
                span.closed_unmeasured()


class _TappedInstrument:
    """An SDK instrument that also tells the tap about its measurements (everything else delegated)."""

    def __init__(self, instrument: Any, tap: ServerMetricsTap, duration: bool) -> None:
        self._instrument = instrument
        self._tap = tap
        self._duration = duration

    def __getattr__(self, name: str) -> Any:
        return getattr(self._instrument, name)

    def record(self, amount: float, attributes: types.Attributes = None, context: Context | None = None) -> None:
        self._instrument.record(amount, attributes, context)
        if self._duration and context is not None:
            try:  # the quiet span this measurement closes, read from its context
                span = context.get(_SPAN_KEY) if _SPAN_KEY is not None else trace_api.get_current_span(context)
                if type(span) is QuietServerSpan:
                    span.measured(attributes)
            except Exception:  # never hurt the host app
                return

    def add(self, amount: float, attributes: types.Attributes = None, context: Context | None = None) -> None:
        self._instrument.add(amount, attributes, context)
        if amount < 0:
            try:
                self._tap.request_closed()
            except Exception:  # never hurt the host app
                return


class _TappingMeter:
    """An SDK meter whose server-duration and active-requests instruments are tapped."""

    def __init__(self, meter: Any, scope: str, tap: ServerMetricsTap) -> None:
        self._meter = meter
        self._scope = scope
        self._tap = tap

    def __getattr__(self, name: str) -> Any:
        return getattr(self._meter, name)

    def create_histogram(self, name: str, *args: Any, **kwargs: Any) -> Any:
        histogram = self._meter.create_histogram(name, *args, **kwargs)
        if name not in _DURATIONS:
            return histogram
        self._tap.instrument_created(self._scope, name)
        return _TappedInstrument(histogram, self._tap, duration=True)

    def create_up_down_counter(self, name: str, *args: Any, **kwargs: Any) -> Any:
        counter = self._meter.create_up_down_counter(name, *args, **kwargs)
        if name != _ACTIVE_REQUESTS:
            return counter
        self._tap.instrument_created(self._scope, name)
        return _TappedInstrument(counter, self._tap, duration=False)


class TappingMeterProvider(MeterProvider):
    """The SDK `MeterProvider`; meters of `TAPPED_SCOPES` report server measurements to `tap`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tap = ServerMetricsTap()

    def get_meter(self, name: str, version: str | None = None, *args: Any, **kwargs: Any) -> Any:
        meter = super().get_meter(name, version, *args, **kwargs)
        if name not in TAPPED_SCOPES or isinstance(meter, NoOpMeter) or not _closes_every_request(name, version):
            return meter
        return _TappingMeter(meter, name, self.tap)


def _closes_every_request(scope: str, version: str | None) -> bool:
    minimum = _MIN_VERSIONS.get(scope)
    if minimum is None:
        return True
    try:
        return version is not None and Version(version) >= minimum
    except InvalidVersion:
        return False


class QuietServerSpan(QuietSpan):
    """A dropped server span: not recording, counted by RED once ended and measured."""

    _measured = False
    _ended = False

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time if end_time is not None else time_ns()
        self._ended = True
        if self._measured:
            self._hand_over()

    def measured(self, attributes: types.Attributes) -> None:
        if self._measured:  # both semconv histograms (http/dup) report the same request
            return
        self._measured = True
        responded = False
        if attributes:
            keep, own = self._keep, self._attributes
            for key in _STATUS_KEYS:
                value = attributes.get(key)
                if value is not None:
                    responded = True
                    if key in keep:
                        own[key] = value
        if self._ended:
            if not responded and self._status.status_code is StatusCode.UNSET:
                # Ended before its measurement and no response started: the WSGI middleware ends the
                # span in its `except` and measures in `finally`; the recording span's ERROR came from
                # the exception leaving `use_span`, which a non-recording span does not get.
                self._status = _ERROR
            for on_ending in self._on_ending:  # _hand_over, inline: Flask's every request ends here
                on_ending(self)
            for on_end in self._on_end:
                on_end(self)

    def closed_unmeasured(self) -> None:
        if self._ended and not self._measured:
            self._measured = True
            if self._status.status_code is StatusCode.UNSET:
                self._status = _ERROR  # the app raised: no response, no duration recorded
            self._hand_over()
