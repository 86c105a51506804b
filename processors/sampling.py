"""A sampler wrapper that records every span but exports only the ones its delegate samples.

Spans a sampler DROPs never reach span processors, so RED metrics computed from them would be
only as complete as the sampling rate. Turning DROP into RECORD_ONLY keeps the trace sampling
decision (sampled flag off, so BatchSpanProcessor and SimpleSpanProcessor skip the span and
downstream services see "not sampled") while `REDSpanProcessor` still counts 100 % of spans. The
price is that unsampled spans are fully built in-process (attributes, timing), not exported.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

__all__ = ["RecordUnsampledSampler"]


class RecordUnsampledSampler(Sampler):
    """Delegates every decision, except that DROP becomes RECORD_ONLY (attributes and tracestate kept)."""

    def __init__(self, delegate: Sampler) -> None:
        """`delegate` decides what is exported, e.g. `ParentBasedTraceIdRatio(0.01)`."""
        self.delegate = delegate

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
        """The delegate's result, with DROP upgraded to RECORD_ONLY."""
        result = self.delegate.should_sample(
            parent_context,
            trace_id,
            name,
            kind=kind,
            attributes=attributes,
            links=links,
            trace_state=trace_state,
        )
        if result.decision is not Decision.DROP:
            return result
        return SamplingResult(Decision.RECORD_ONLY, result.attributes, result.trace_state)

    def get_description(self) -> str:
        """Names the delegate, so a configuration dump shows both what is exported and what is recorded."""
        return f"RecordUnsampled{{{self.delegate.get_description()}; records dropped spans for RED metrics}}"
