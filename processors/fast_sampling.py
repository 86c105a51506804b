"""The SDK's ParentBased sampler over its own static and ratio samplers, decided in one frame.

`ParentBased(TraceIdRatioBased(r)).should_sample` costs about a dozen Python calls per span
(`get_current_span` twice through `get_value`/`get_current`, the delegate called with keywords,
`_get_parent_trace_state`, a `SamplingResult` wrapping a new `MappingProxyType`): about half of what
a dropped span costs, on every span. `FastParentBased` is a `ParentBased` (same delegates, same
`get_description()`, `isinstance` unchanged) that makes the same decision inline: one C-level read
of the current context, the parent's `SpanContext` fields read as the tuple it is, the delegate
turned at construction into `trace_id & limit < bound` (the ratio sampler's own `TRACE_ID_LIMIT`
and `bound`; a static one as `0 < 1` or its constant decision).

Only the SDK's own classes are replaced (`fast_parent_based`): `ParentBased` and its SDK subclasses
that change nothing but `__init__`, whose five delegates are each an SDK `StaticSampler` (or its SDK
`_AlwaysOn`/`_AlwaysOff`) or exactly `TraceIdRatioBased`. Anything else, subclasses included, is
used as given. Parents the fast path does not know (a `SpanContext` subclass, trace flags that are
not `TraceFlags`) and any unexpected error go to the SDK's own `ParentBased.should_sample` for that
call, so the result, or the exception, is the SDK's.

DROP results are shared: one for a root (trace_state None) and the last one per parent trace_state
object (children of a dropped span all carry their parent's). Checked in the SDK 1.42.1 and 1.45.1
sources that nothing writes to a `SamplingResult` or its attributes: `Tracer.start_span` reads
`decision` and `trace_state`, and for recording spans only passes `attributes` on (1.42.1 as
`attributes.copy()`; 1.45.1 into `_Span`, whose `BoundedAttributes` copies the items), so a DROP
result's `attributes` is never even read; `AlwaysRecordSampler` and otelpipe's
`RecordUnsampledSampler` build a new result. Sampled results are built per call, as the SDK does
(their attributes are a view of the caller's).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from otelpipe.diagnostics import warn_limited
from otelpipe.processors.context_reads import SPAN_CONTEXT_UNPACKS, SPAN_KEY, current_context

__all__ = ["FastParentBased", "check_fast_sampler", "fast_parent_based"]

# A delegate as (limit, bound, decision when trace_id & limit < bound, decision otherwise).
_Rule = tuple[int, int, Decision, Decision]

_DROP = Decision.DROP
_SAMPLED = TraceFlags.SAMPLED
_DELEGATES = (
    "_root",
    "_remote_parent_sampled",
    "_remote_parent_not_sampled",
    "_local_parent_sampled",
    "_local_parent_not_sampled",
)


def _sdk_classes(base: type, names: tuple[str, ...]) -> frozenset[type]:
    """`base` and those SDK subclasses named that inherit its `should_sample` and `get_description`."""
    found = {getattr(sampling, name, None) for name in names}
    return frozenset(
        kind
        for kind in found
        if isinstance(kind, type)
        and issubclass(kind, base)
        and kind.should_sample is base.should_sample  # type: ignore[attr-defined]
        and kind.get_description is base.get_description  # type: ignore[attr-defined]
    )


_PARENT_BASED = _sdk_classes(
    ParentBased, ("ParentBased", "ParentBasedTraceIdRatio", "_ParentBasedAlwaysOn", "_ParentBasedAlwaysOff")
)
_STATIC = _sdk_classes(StaticSampler, ("StaticSampler", "_AlwaysOn", "_AlwaysOff"))


def _field_span_types() -> frozenset[type]:
    """Span types whose `get_span_context()` is `self._context`: the field is read without the call."""
    context = SpanContext(1, 2, is_remote=False)
    probes: list[Any] = [NonRecordingSpan(context)]
    sdk_span = getattr(sdk_trace, "_Span", None)  # what the SDK's tracer creates
    try:
        if isinstance(sdk_span, type):
            probes.append(sdk_span("probe", context))
        return frozenset(
            type(span)
            for span in probes
            if span.get_span_context() is context and getattr(span, "_context", None) is context
        )
    except Exception:  # get_span_context() is called instead
        return frozenset()


_current_context = current_context  # module names: the tests break them here
_SPAN_KEY = SPAN_KEY
_FIELD_SPANS = _field_span_types()
_AVAILABLE = SPAN_CONTEXT_UNPACKS


def _rule(delegate: Sampler) -> _Rule | None:
    """The delegate's decision as a comparison, or None if it is not one the fast path reproduces."""
    if "should_sample" in getattr(delegate, "__dict__", {}):  # a replaced method on the instance
        return None
    if type(delegate) is TraceIdRatioBased:
        limit, bound = delegate.TRACE_ID_LIMIT, delegate.bound
        if type(limit) is int and type(bound) is int:
            return (limit, bound, Decision.RECORD_AND_SAMPLE, _DROP)
        return None
    if type(delegate) in _STATIC:
        decision = getattr(delegate, "_decision", None)
        if isinstance(decision, Decision):
            return (0, 1, decision, decision)
    return None


class FastParentBased(ParentBased):
    """`ParentBased` over SDK static/ratio delegates, the same decisions in one frame (see the module)."""

    def __init__(
        self,
        root: Sampler,
        remote_parent_sampled: Sampler = sampling.ALWAYS_ON,
        remote_parent_not_sampled: Sampler = sampling.ALWAYS_OFF,
        local_parent_sampled: Sampler = sampling.ALWAYS_ON,
        local_parent_not_sampled: Sampler = sampling.ALWAYS_OFF,
    ) -> None:
        """As `ParentBased`; ValueError if a delegate is not an SDK static or exact ratio sampler."""
        super().__init__(
            root,
            remote_parent_sampled,
            remote_parent_not_sampled,
            local_parent_sampled,
            local_parent_not_sampled,
        )
        rules = []
        for delegate in (
            root,
            remote_parent_sampled,
            remote_parent_not_sampled,
            local_parent_sampled,
            local_parent_not_sampled,
        ):
            rule = _rule(delegate)
            if rule is None:
                raise ValueError(f"FastParentBased cannot reproduce {type(delegate).__name__}")
            rules.append(rule)
        self._root_rule = rules[0]
        # Indexed by (0 remote | 2 local) + (0 sampled | 1 not sampled).
        self._parent_rules = tuple(rules[1:])
        self._root_drop = SamplingResult(_DROP, None, None)
        self._last_drop = self._root_drop
        self.fallbacks = 0  # calls the SDK's ParentBased decided because the fast path failed

    def drops_local_unsampled_children(self) -> bool:
        """Whether every child of a local parent that was not sampled is dropped (the default
        `local_parent_not_sampled`, ALWAYS_OFF): otelpipe's light tracer then starts such children
        without calling the sampler (otelpipe.processors.unsampled)."""
        return self._parent_rules[3] == (0, 1, _DROP, _DROP)

    def should_sample(  # the Sampler interface's signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """The decision, attributes and trace_state the SDK's `ParentBased.should_sample` returns."""
        try:
            span: Any
            if _SPAN_KEY is None:
                span = trace_api.get_current_span(parent_context)
            else:
                span = (_current_context() if parent_context is None else parent_context).get(_SPAN_KEY)
            if span is None:
                parent = None
            elif type(span) in _FIELD_SPANS:
                parent = span._context
            elif isinstance(span, trace_api.Span):
                parent = span.get_span_context()
            else:  # get_current_span: not a Span, so INVALID_SPAN
                parent = None
            rule: _Rule | None
            if parent is None:
                rule, parent_state = self._root_rule, None
            elif type(parent) is not SpanContext:
                rule, parent_state = None, None  # left to the SDK, below
            else:
                _, _, remote, flags, parent_state, valid = parent  # one unpacking, not five properties
                if not valid:
                    rule, parent_state = self._root_rule, None
                elif type(flags) is TraceFlags:
                    rule = self._parent_rules[(0 if remote else 2) + (0 if flags & _SAMPLED else 1)]
                else:
                    rule = None  # TraceFlags.sampled is what the SDK reads: left to it
            if rule is not None:
                limit, bound, hit, miss = rule
                decision = hit if trace_id & limit < bound else miss
                if decision is not _DROP:
                    return SamplingResult(decision, attributes, parent_state)
                if parent_state is None:
                    return self._root_drop
                last = self._last_drop
                if last.trace_state is parent_state:
                    return last
                result = SamplingResult(_DROP, None, parent_state)
                self._last_drop = result
                return result
        except Exception as exc:  # never into the app: the SDK decides this one
            self.fallbacks += 1
            warn_limited(
                "fast-sampler",
                "otelpipe fast sampler failed (%s); the SDK's ParentBased decided instead",
                type(exc).__name__,
                area="sampling",
            )
        return super().should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)


def fast_parent_based(sampler: Sampler | None) -> Sampler | None:
    """`sampler` as a `FastParentBased` when it is an SDK ParentBased it reproduces; otherwise as given.

    None is the SDK's default, resolved as `TracerProvider` does (`OTEL_TRACES_SAMPLER`, else
    parentbased_always_on), so the default gets the fast path too.
    """
    try:
        return _fast_or_given(sampler)
    except Exception:  # never into configure(): the sampler as given, the SDK resolves None itself
        warn_limited(
            "fast-sampler-build",
            "otelpipe fast sampler not used; the sampler is used as given",
            area="sampling",
        )
        return sampler


def _fast_or_given(sampler: Sampler | None) -> Sampler | None:
    if sampler is None:
        default = getattr(sampling, "_get_from_env_or_default", None)
        if default is None:
            return None
        sampler = default()
    if (
        not _AVAILABLE
        or type(sampler) not in _PARENT_BASED
        or "should_sample" in getattr(sampler, "__dict__", {})
    ):
        return sampler
    delegates: list[Sampler] = []
    for name in _DELEGATES:
        delegate = getattr(sampler, name, None)
        if not isinstance(delegate, Sampler) or _rule(delegate) is None:
            return sampler
        delegates.append(delegate)
    return FastParentBased(*delegates)


def check_fast_sampler() -> None:
    """Raise LookupError naming what of the SDK the fast path relies on is gone (otelpipe._sdk's probe)."""
    missing = []
    if not _AVAILABLE:
        missing.append(
            "SpanContext as the tuple (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid)"
        )
    if _SPAN_KEY is None:
        missing.append("opentelemetry.trace.propagation._SPAN_KEY")
    if not isinstance(getattr(_current_context, "__self__", None), ContextVar):
        missing.append("opentelemetry.context._RUNTIME_CONTEXT._current_context")
    if not {NonRecordingSpan, getattr(sdk_trace, "_Span", None)} <= _FIELD_SPANS:
        missing.append("NonRecordingSpan._context / sdk.trace._Span._context")
    if getattr(sampling, "_get_from_env_or_default", None) is None:
        missing.append("sampling._get_from_env_or_default")
    stock = sampling.ParentBasedTraceIdRatio(0.5)
    fast = fast_parent_based(stock)
    if not isinstance(fast, FastParentBased):
        missing.append("ParentBased._root/..., StaticSampler._decision, TraceIdRatioBased.bound")
    else:
        parent = trace_api.set_span_in_context(NonRecordingSpan(SpanContext(3, 4, is_remote=True)))
        for context, trace_id in ((None, 1), (None, (1 << 64) - 1), (parent, 1)):
            got = fast.should_sample(context, trace_id, "probe")
            want = stock.should_sample(context, trace_id, "probe")
            if (got.decision, got.trace_state) != (want.decision, want.trace_state) or fast.fallbacks:
                missing.append("ParentBased.should_sample as reproduced (decisions differ)")
                break
    if missing:
        raise LookupError("; ".join(missing))
