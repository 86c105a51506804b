"""RecordUnsampledSampler: RED sees every span, exporters only the sampled ones."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState

from otelpipe.processors.red import REDSpanProcessor, REDStore
from otelpipe.processors.sampling import RecordUnsampledSampler


class SeededIds(IdGenerator):
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


def test_ratio_sampling_keeps_red_exact_and_exports_about_one_percent() -> None:
    store = REDStore()
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "shop"}),
        sampler=RecordUnsampledSampler(ParentBasedTraceIdRatio(0.01)),
        id_generator=SeededIds(3),
    )
    provider.add_span_processor(REDSpanProcessor(store))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    for _ in range(2000):
        with (
            tracer.start_as_current_span("GET /", kind=SpanKind.SERVER),
            tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT),
        ):
            pass
    calls = {s.attributes["span.kind"]: s.calls for s in store.snapshot().series}
    assert calls == {"SPAN_KIND_SERVER": 2000, "SPAN_KIND_CLIENT": 2000}
    exported = exporter.get_finished_spans()
    servers = [s for s in exported if s.kind is SpanKind.SERVER]
    assert 4 <= len(servers) <= 50  # ~20 expected (1 % of 2000)
    assert len(exported) == 2 * len(servers)  # children follow their parent's decision


def test_batch_processor_skips_record_only_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=RecordUnsampledSampler(ParentBasedTraceIdRatio(0.0)))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    store = REDStore()
    provider.add_span_processor(REDSpanProcessor(store))
    tracer = provider.get_tracer("t")
    for _ in range(50):
        with tracer.start_as_current_span("job", kind=SpanKind.CONSUMER) as span:
            assert span.is_recording()
            assert not span.get_span_context().trace_flags.sampled
    provider.force_flush()
    assert exporter.get_finished_spans() == ()
    assert store.snapshot().series[0].calls == 50
    provider.shutdown()


class Dropping(Sampler):
    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        return SamplingResult(Decision.DROP, {"sampler.note": "x"}, TraceState([("vendor", "v1")]))

    def get_description(self) -> str:
        return "Dropping"


def test_drop_becomes_record_only_keeping_attributes_and_tracestate() -> None:
    result = RecordUnsampledSampler(Dropping()).should_sample(None, 1, "n")
    assert result.decision is Decision.RECORD_ONLY
    assert dict(result.attributes or {}) == {"sampler.note": "x"}
    assert result.trace_state is not None
    assert result.trace_state.get("vendor") == "v1"


def test_sampled_decisions_pass_through_and_description_names_delegate() -> None:
    sampler = RecordUnsampledSampler(ALWAYS_ON)
    assert sampler.should_sample(None, 1, "n").decision is Decision.RECORD_AND_SAMPLE
    description = sampler.get_description()
    assert "AlwaysOnSampler" in description
    assert "RecordUnsampled" in description
