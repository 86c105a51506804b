"""A light recording span for the spans the sampler drops: RED's inputs, without the SDK span's work.

Exact RED under sampling needs every span to be *recording*: the instrumentations set the route,
the status code and `db.system`, and the ERROR status of a failed query, only when
`span.is_recording()`. The SDK's own RECORD_ONLY span pays for everything a span that will be
exported needs: a lock per attribute, `_clean_attribute_value` on every value, bounded lists
for events and links, a `ReadableSpan` copy at the end. For the ~99 % of spans that are never
exported that work is thrown away.

`LightUnsampledTracerProvider` is the SDK `TracerProvider`; its tracers start spans through the
SDK as usual, and when the sampler drops one (a non-recording span), they return an
`UnsampledSpan` with the same span context instead: `is_recording()` is true, so
instrumentations go on setting attributes, but it keeps only the attribute names in `keep` (the
RED dimensions and service-graph attributes, values stored as given when they are plain), the
name, kind, status and timestamps, and drops events, links and exception stack traces. Span
processors see it as a `ReadableSpan` with the sampled flag off (on_start, on_ending and on_end,
like any RECORD_ONLY span), except the hooks that cannot do anything with an unsampled span, which
are not called at all: the SDK's batch and simple export processors' (they skip unsampled spans),
`SpanProcessor`'s empty defaults, and those a processor leaves out of its `unsampled_span_hooks`
(e.g. span redaction, which only masks what is exported).

What stays exact: calls, errors and duration buckets per RED dimension, and service-graph
edges. What an unsampled span no longer carries: attributes outside `keep`, events, links and
status descriptions; nothing of it is exported, so no backend sees the difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from time import time_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ReadableSpan,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    Tracer,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import TraceState
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util import types

from otelpipe.processors.context_reads import SPAN_CONTEXT_UNPACKS, SPAN_KEY, current_context
from otelpipe.processors.fast_sampling import FastParentBased

if TYPE_CHECKING:
    from otelpipe.processors.server_metrics_tap import ServerMetricsTap
    from otelpipe.processors.sqlalchemy_tap import SqlAlchemyTap

__all__ = ["LightUnsampledTracerProvider", "PlainAttributes", "QuietSpan", "UnsampledSpan"]

_UNSET = Status(StatusCode.UNSET)
# An UnsampledSpan keeps no status description, so one shared Status per code does.
_STATUSES = {StatusCode.OK: Status(StatusCode.OK), StatusCode.ERROR: Status(StatusCode.ERROR)}
_OK = _STATUSES[StatusCode.OK]
_PLAIN = (str, int, float, bool)
# Module constants: an enum member read off its class is a slow lookup in 3.11 (EnumType.__getattr__).
_SERVER_KIND, _CLIENT_KIND = SpanKind.SERVER, SpanKind.CLIENT


# Hooks of the SDK's export processors that do nothing for a span whose sampled flag is off: their
# on_start and _on_ending are empty and their on_end returns at once for an unsampled span.
_EXPORT_PROCESSORS = (BatchSpanProcessor, SimpleSpanProcessor)
_HOOKS = ("on_start", "_on_ending", "on_end")


def _needs_unsampled(processor: SpanProcessor, hook: str) -> bool:
    """Whether `processor.<hook>` can do anything for an unsampled span.

    No when it is `SpanProcessor`'s empty default or an SDK export processor's own hook (they skip
    unsampled spans), or when the processor's class says so in `unsampled_span_hooks` (the hooks
    it needs unsampled spans for). Any other processor sees every hook, as the SDK would call it.
    """
    cls = type(processor)
    declared = getattr(cls, "unsampled_span_hooks", None)
    if declared is not None:
        return hook in declared
    method = getattr(cls, hook, None)
    if method is None or method is getattr(SpanProcessor, hook, None):
        return False
    return not any(isinstance(processor, base) and method is getattr(base, hook) for base in _EXPORT_PROCESSORS)


class _UnsampledHooks:
    """The span processor hooks an `UnsampledSpan` calls, derived from the provider's processors.

    The SDK's `SynchronousMultiSpanProcessor` calls every hook of every processor, twelve calls per
    span with the default processors, of which only RED's `on_end` does anything for an unsampled
    span. The list is rebuilt when a processor is added (the SDK replaces its tuple on each add);
    any other active processor is called as a whole.
    """

    def __init__(self, active: SpanProcessor) -> None:
        self.active: Any = active
        # The SDK's multi processor keeps its processors in `_span_processors`: read without getattr().
        self.plain = type(active) is SynchronousMultiSpanProcessor and hasattr(active, "_span_processors")
        self.source: object = None  # the processors tuple the lists were built from
        self.on_start: tuple[Callable[..., None], ...] = ()
        self.on_ending: tuple[Callable[[Any], None], ...] = ()
        self.on_end: tuple[Callable[[Any], None], ...] = ()

    def refresh(self) -> None:
        """Rebuild the hook lists from the active processor's current processors (source set last)."""
        active = self.active
        processors: Any = getattr(active, "_span_processors", active)
        if type(active) is SynchronousMultiSpanProcessor:
            self.on_start, self.on_ending, self.on_end = (
                tuple(getattr(p, hook) for p in processors if _needs_unsampled(p, hook)) for hook in _HOOKS
            )
        else:  # another multi processor: called as a whole, as the SDK would
            self.on_start, self.on_ending, self.on_end = (active.on_start,), (active._on_ending,), (active.on_end,)
        self.source = processors


class PlainAttributes(dict[str, Any]):
    """An `UnsampledSpan`'s attributes: values are plain and hashable, so RED reads them as they are."""


def _plain(value: object) -> object:
    """A hashable value RED can key on: plain values as they are, sequences as tuples, else a string."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, list | tuple):
        return tuple(item if type(item) in _PLAIN else str(item) for item in value)
    return str(value)


# Every light span class (UnsampledSpan and its subclasses): a span of one of them in the context is a
# parent the SDK dropped, local and valid (a light span is only made for such a span).
_LIGHT_TYPES: set[type] = set()
_current_context = current_context  # module names: the tests break them here
_PARENT_KEY = SPAN_KEY or ""  # only read when `_child_flags` found SPAN_KEY


class UnsampledSpan(trace_api.Span, ReadableSpan):
    """A recording, never-exported span holding only the attributes named in `keep`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _LIGHT_TYPES.add(cls)

    _instrumentation_info = None
    _parent = None
    _events: Sequence[Any] = ()
    _links: Sequence[Any] = ()
    _end_time: int | None = None
    _status = _UNSET

    def __init__(  # the fields of a span
        self,
        name: str,
        context: SpanContext,
        kind: SpanKind,
        resource: Resource,
        scope: InstrumentationScope | None,
        keep: frozenset[str],
        hooks: _UnsampledHooks,
        start_time: int | None,
        set_status_on_exception: bool,
    ) -> None:
        # ReadableSpan's fields, set directly: its __init__ would build a Resource when none is given.
        # The fields every new span shares (no parent, events, links, end time, status) are class
        # attributes below, until a span sets its own.
        self._name = name
        self._context: SpanContext = context  # always set (ReadableSpan's may be None)
        self._kind = kind
        self._resource = resource
        self._instrumentation_scope = scope
        self._start_time = start_time if start_time is not None else time_ns()
        self._attributes: dict[str, Any] = PlainAttributes()
        self._keep = keep
        self._on_ending = hooks.on_ending
        self._on_end = hooks.on_end
        self._set_status_on_exception = set_status_on_exception

    def get_span_context(self) -> SpanContext:
        return self._context

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if key in self._keep and self._end_time is None:
            self._attributes[key] = value if type(value) in _PLAIN else _plain(value)

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end_time is None:
            own = self._attributes
            for key in self._keep.intersection(attributes):  # in C: most given attributes are not kept
                value = attributes[key]
                own[key] = value if type(value) in _PLAIN else _plain(value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        """Not kept: RED does not read events, and this span is never exported."""

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        """Not kept, as events."""

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """The SDK's rules (OK is final, UNSET is ignored), keeping the code only."""
        if self._end_time is not None or self._status is _OK:
            return
        code = status.status_code if isinstance(status, Status) else status
        shared = _STATUSES.get(code)  # type: ignore[call-overload]
        if shared is not None:  # UNSET (or anything else) is ignored
            self._status = shared

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Not kept: formatting a stack trace for a span nobody exports is the costliest no-op."""

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time if end_time is not None else time_ns()
        for on_ending in self._on_ending:
            on_ending(self)
        for on_end in self._on_end:
            on_end(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None and self._set_status_on_exception and self.is_recording():
            self.set_status(StatusCode.ERROR)
        super().__exit__(exc_type, exc_val, exc_tb)


_LIGHT_TYPES.add(UnsampledSpan)


class QuietSpan(UnsampledSpan):
    """A dropped span that does not record: its instrumentation skips the attribute work it does only
    for a recording span, and a tap that knows what RED needs (a measurement, an engine) completes it
    and hands it over (`otelpipe.processors.server_metrics_tap`, `otelpipe.processors.sqlalchemy_tap`)."""

    def is_recording(self) -> bool:
        return False

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        """Not recording: the instrumentation does not call it (a hook might; ignored like the SDK's)."""

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        """Not recording, as `set_attribute`."""

    def _hand_over(self) -> None:
        """To the span processors' hooks, as `end()` does for a light span."""
        for on_ending in self._on_ending:
            on_ending(self)
        for on_end in self._on_end:
            on_end(self)


def _child_flags(tracer: Tracer, plain_config: bool) -> dict[int, TraceFlags] | None:
    """The trace flags the SDK gives a child of a dropped local span, by the parent's flags; None when
    this tracer's children must be started by the SDK.

    Such a child is dropped whatever else it is (its sampler is a `FastParentBased` whose delegate for
    local parents not sampled drops, and the tracer records no span metrics), so the SDK's
    `start_span` for it only builds a `SpanContext`: the parent's trace id and trace state, a new span
    id from the tracer's id generator, and flags derived from the parent's. The flags are probed here
    once through the SDK's own `start_span` (SDK versions differ: 1.45 carries the random-trace-id
    flag over, older ones do not); any other outcome of the probe leaves every child to the SDK.
    """
    try:
        if (
            not plain_config
            or not SPAN_CONTEXT_UNPACKS
            or SPAN_KEY is None
            or type(tracer) is not Tracer
            or not isinstance(tracer.sampler, FastParentBased)
            or type(tracer.sampler).should_sample is not FastParentBased.should_sample
            or not tracer.sampler.drops_local_unsampled_children()
            or type(getattr(tracer, "_tracer_metrics", None)).__name__ not in ("NoneType", "NoOpTracerMetrics")
            or not tracer._tracer_config.is_enabled
        ):
            return None
        flags: dict[int, TraceFlags] = {}
        state = TraceState([("otelpipe", "probe")])
        for value in (TraceFlags.DEFAULT, 0x02):
            parent = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0x00F067AA0BA902B7, False, TraceFlags(value), state)
            child = tracer.start_span("otelpipe.probe", trace_api.set_span_in_context(NonRecordingSpan(parent)))
            got = child.get_span_context()
            if (
                type(child) is not NonRecordingSpan
                or type(got) is not SpanContext
                or got.trace_id != parent.trace_id
                or got.span_id in (0, parent.span_id)
                or got.is_remote
                or got.trace_state is not state
                or type(got.trace_flags) is not TraceFlags
                or got.trace_flags & TraceFlags.SAMPLED
            ):
                return None
            flags[value] = got.trace_flags
        return flags
    except Exception:  # an SDK this does not know: the SDK starts every child
        return None


class _LightTracer(trace_api.Tracer):
    """Starts spans through an SDK tracer; a span its sampler drops becomes an `UnsampledSpan`."""

    def __init__(
        self, tracer: Tracer, keep: frozenset[str], hooks: _UnsampledHooks, owner: LightUnsampledTracerProvider
    ) -> None:
        self._tracer = tracer
        self._keep = keep
        self._hooks = hooks
        self._owner = owner  # its server_tap is set once metrics are initialised
        scope = tracer._instrumentation_scope
        self._scope_name = scope.name if scope is not None else ""
        # The SDK's own _is_enabled reads this field: read it without the call.
        self._plain_config = type(tracer)._is_enabled is Tracer._is_enabled and hasattr(tracer, "_tracer_config")
        # SQLAlchemy's dropped query spans become quiet (otelpipe.processors.sqlalchemy_tap).
        self._query_tap = owner.query_tap(scope) if scope is not None else None
        # A child of a dropped span is dropped too: its span context is built here, as the SDK would.
        self._child_flags = _child_flags(tracer, self._plain_config)

    def start_span(  # the Tracer interface
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        _quiet_query: bool = True,
    ) -> trace_api.Span:
        tracer = self._tracer
        span_context: SpanContext | None = None
        child_flags = self._child_flags
        if child_flags is not None:
            # The parent a dropped light span: the child is dropped (see `_child_flags`), and its span
            # context is the one the SDK's start_span would build, without its dozen calls.
            parent: Any = (_current_context() if context is None else context).get(_PARENT_KEY)
            if type(parent) in _LIGHT_TYPES and tracer._tracer_config.is_enabled:
                parent_context = parent._context
                flags = child_flags.get(parent_context[3])
                if flags is not None:
                    span_context = SpanContext(
                        parent_context[0], tracer.id_generator.generate_span_id(), False, flags, parent_context[4]
                    )
                    if not span_context[5]:  # an id generator that gave span id 0: what the SDK returns
                        return NonRecordingSpan(span_context)
        if span_context is None:
            span = tracer.start_span(
                name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
            )
            # Read as fields: four calls fewer per dropped span than is_recording()/get_span_context()/
            # is_valid and the tracer's _is_enabled() (a disabled tracer's span carries its parent's context).
            if type(span) is not NonRecordingSpan or not (
                tracer._tracer_config.is_enabled if self._plain_config else tracer._is_enabled()
            ):
                return span
            span_context = span._context
            if not span_context[5]:  # SpanContext.is_valid
                return span
        hooks = self._hooks
        active = hooks.active
        if (active._span_processors if hooks.plain else getattr(active, "_span_processors", active)) is not hooks.source:
            hooks.refresh()  # a processor was added
        fields = (
            name,
            span_context,
            kind,
            tracer.resource,
            tracer._instrumentation_scope,
            self._keep,
            hooks,
            start_time,
            set_status_on_exception,
        )
        tap = self._owner.server_tap
        light: UnsampledSpan
        if kind is _SERVER_KIND and tap is not None and self._scope_name in tap.ready:
            light = tap.start(tap.span_class(*fields), attributes)  # quiet: counted once measured
        elif self._query_tap is not None and _quiet_query and kind is _CLIENT_KIND:
            light = self._query_tap.start(self._query_tap.span_class(*fields))  # counted once described
        else:
            light = UnsampledSpan(*fields)
            if attributes:
                light.set_attributes(attributes)
        for on_start in hooks.on_start:
            on_start(light, parent_context=context)
        return light

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace_api.Span]:
        """As the SDK tracer's: start a span and make it current.

        Never a quiet query span: SQLAlchemy's `connect` span starts here, and no event describes it
        when a connect fails outside the DBAPI.
        """
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception, False
        )
        with trace_api.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class LightUnsampledTracerProvider(TracerProvider):
    """The SDK `TracerProvider`, whose tracers turn dropped spans into `UnsampledSpan`s keeping `keep`."""

    def __init__(self, *args: Any, keep: frozenset[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep = keep
        self._light: dict[int, _LightTracer] = {}
        self._unsampled_hooks = _UnsampledHooks(self._active_span_processor)
        # Set by sdk_components when the MeterProvider taps HTTP server measurements
        # (otelpipe.processors.server_metrics_tap): dropped server spans of its scopes become quiet.
        self.server_tap: ServerMetricsTap | None = None
        self._query_taps: dict[str | None, SqlAlchemyTap | None] = {}

    def query_tap(self, scope: InstrumentationScope) -> SqlAlchemyTap | None:
        """The SQLAlchemy tap for this scope's tracer: None unless it is SQLAlchemy's, at a version it knows."""
        from otelpipe.processors.sqlalchemy_tap import SCOPE, sqlalchemy_tap

        if scope.name != SCOPE:
            return None
        if scope.version not in self._query_taps:  # called under _tracers_lock
            self._query_taps[scope.version] = sqlalchemy_tap(self.keep, scope.version)
        return self._query_taps[scope.version]

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> trace_api.Tracer:
        tracer = super().get_tracer(instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        if not isinstance(tracer, Tracer):  # disabled SDK: a NoOpTracer
            return tracer
        with self._tracers_lock:
            light = self._light.get(id(tracer))
            if light is None or light._tracer is not tracer:
                light = self._light[id(tracer)] = _LightTracer(tracer, self.keep, self._unsampled_hooks, self)
        return light
