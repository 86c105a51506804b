"""Light unsampled spans: RED stays exact under sampling while dropped spans keep only RED's attributes."""

from __future__ import annotations

import random
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace import _TracerConfig as TracerConfig
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBasedTraceIdRatio
from opentelemetry.trace import NonRecordingSpan, SpanKind, Status, StatusCode

from otelpipe.processors.export_drops import DropCountingBatchSpanProcessor, ExportDropCounts
from otelpipe.processors.red import REDSpanProcessor, REDStore
from otelpipe.processors.unsampled import LightUnsampledTracerProvider, UnsampledSpan


class SeededIds(IdGenerator):
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


class Recorder(SpanProcessor):
    def __init__(self) -> None:
        self.started: list[Any] = []
        self.ending: list[Any] = []
        self.ended: list[ReadableSpan] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started.append(span)

    def _on_ending(self, span: Span) -> None:
        self.ending.append(span)

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


def _provider(sampler: Any = None, **kwargs: Any) -> tuple[LightUnsampledTracerProvider, REDStore, Any]:
    store = REDStore()
    red = REDSpanProcessor(store)
    provider = LightUnsampledTracerProvider(
        sampler=sampler or ParentBasedTraceIdRatio(0.01),
        resource=Resource.create({"service.name": "shop"}),
        keep=red.attribute_names,
        **kwargs,
    )
    provider.add_span_processor(red)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, store, exporter


def _request(tracer: Any, index: int) -> None:
    with tracer.start_as_current_span(
        "GET /items/<id>", kind=SpanKind.SERVER, attributes={"http.method": "GET", "http.target": f"/items/{index}"}
    ) as server:
        server.set_attribute("http.route", "/items/<id>")
        server.set_attribute("user_agent.original", "curl/8")
        server.set_attribute("http.status_code", 503 if index % 10 == 0 else 200)
        with tracer.start_as_current_span("SELECT shop", kind=SpanKind.CLIENT) as query:
            query.set_attributes({"db.system": "sqlite", "db.statement": "SELECT * FROM items"})
            if index % 25 == 0:
                query.set_status(Status(StatusCode.ERROR, "disk I/O error"))


@pytest.mark.parametrize("fast", [False, True], ids=["sdk-sampler", "fast-sampler"])
def test_red_counts_every_span_exactly_while_about_one_percent_is_exported(fast: bool) -> None:
    from otelpipe.processors.fast_sampling import fast_parent_based

    sampler = fast_parent_based(ParentBasedTraceIdRatio(0.01)) if fast else None
    provider, store, exporter = _provider(sampler=sampler, id_generator=SeededIds(7))
    tracer = provider.get_tracer("test")
    # With the fast sampler a dropped request's query span is started without the SDK's start_span.
    assert (tracer._child_flags is not None) is fast  # type: ignore[attr-defined]
    for index in range(2000):
        _request(tracer, index)
    calls: dict[tuple[str, str], int] = {}
    errors: dict[str, int] = {}
    for series in store.snapshot().series:
        kind = str(series.attributes["span.kind"])
        key = (kind, str(series.attributes.get("http.route", series.attributes.get("db.system"))))
        calls[key] = calls.get(key, 0) + series.calls
        errors[kind] = errors.get(kind, 0) + series.errors
    assert calls == {("SPAN_KIND_SERVER", "/items/<id>"): 2000, ("SPAN_KIND_CLIENT", "sqlite"): 2000}
    assert errors == {"SPAN_KIND_SERVER": 200, "SPAN_KIND_CLIENT": 80}
    edges = {edge.attributes["failed"]: edge.calls for edge in store.snapshot().edges}
    assert edges == {False: 1920, True: 80}
    exported = exporter.get_finished_spans()
    assert 8 <= len(exported) <= 100  # ~40 expected: 1 % of 2000 requests, two spans each
    server = next(span for span in exported if span.kind is SpanKind.SERVER)
    assert server.attributes is not None and server.attributes["user_agent.original"] == "curl/8"


def test_unsampled_spans_keep_only_red_attributes_and_the_sdk_status_rules() -> None:
    provider, _, _ = _provider(sampler=ALWAYS_OFF)
    tracer = provider.get_tracer("test")
    span = tracer.start_span("GET /", kind=SpanKind.SERVER, attributes={"http.method": "GET", "secret": "x"})
    assert isinstance(span, UnsampledSpan) and span.is_recording()
    assert not span.get_span_context().trace_flags.sampled and span.get_span_context().is_valid
    span.set_attribute("http.route", ["/a", 1])  # not a plain value: kept hashable
    span.set_attribute("http.request.header.authorization", "Bearer abc")
    span.add_event("ignored", {"a": 1})
    span.record_exception(ValueError("ignored"))
    span.set_status(Status(StatusCode.UNSET))
    assert span.status.status_code is StatusCode.UNSET
    span.set_status(StatusCode.OK)
    span.set_status(Status(StatusCode.ERROR, "too late: OK is final"))
    span.update_name("GET /a")
    span.end()
    span.end()  # a second end is ignored
    span.set_attribute("http.method", "POST")  # after end: ignored
    assert not span.is_recording()
    assert dict(span.attributes or {}) == {"http.method": "GET", "http.route": ("/a", 1)}
    assert span.status.status_code is StatusCode.OK and span.name == "GET /a"
    assert span.events == () and span.links == ()


def test_processors_see_unsampled_spans_like_record_only_spans_and_export_skips_them() -> None:
    provider, store, _ = _provider(sampler=ALWAYS_OFF)
    recorder = Recorder()
    counts = ExportDropCounts()
    exporter = InMemorySpanExporter()
    batch = DropCountingBatchSpanProcessor(exporter, counts)
    provider.add_span_processor(recorder)
    provider.add_span_processor(batch)
    tracer = provider.get_tracer("test")
    with pytest.raises(RuntimeError), tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as parent:
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            assert isinstance(child, UnsampledSpan)
            assert child.get_span_context().trace_id == parent.get_span_context().trace_id
        raise RuntimeError("handler failed")
    assert [span.name for span in recorder.started] == ["GET /", "child"]
    assert [span.name for span in recorder.ending] == ["child", "GET /"]
    assert [span.name for span in recorder.ended] == ["child", "GET /"]
    assert recorder.ended[1].status.status_code is StatusCode.ERROR  # the escaping exception
    assert {s.attributes["span.kind"]: s.errors for s in store.snapshot().series} == {
        "SPAN_KIND_SERVER": 1,
        "SPAN_KIND_CLIENT": 0,
    }
    batch.force_flush()
    assert exporter.get_finished_spans() == () and counts.dropped() == {}


class CountingHooks(SpanProcessor):
    """Counts every hook call; `unsampled_span_hooks` is set per test."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.calls.append("on_start")

    def _on_ending(self, span: Span) -> None:
        self.calls.append("_on_ending")

    def on_end(self, span: ReadableSpan) -> None:
        self.calls.append("on_end")


class EndOnly(CountingHooks):
    unsampled_span_hooks = frozenset({"on_end"})


class ExportSubclass(SimpleSpanProcessor):
    """An export processor subclass that does look at unsampled spans: its override must be called."""

    def __init__(self) -> None:
        super().__init__(InMemorySpanExporter())
        self.ended = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1
        super().on_end(span)


def test_unsampled_spans_skip_only_the_hooks_that_cannot_see_them_and_follow_processors_added_later() -> None:
    from otelpipe.processors.redaction import Redactor
    from otelpipe.processors.span_redaction import RedactingSpanProcessor

    provider, store, _ = _provider(sampler=ALWAYS_OFF)
    everything, end_only, export_subclass = CountingHooks(), EndOnly(), ExportSubclass()
    redacting = RedactingSpanProcessor(Redactor())
    provider.add_span_processor(everything)
    provider.add_span_processor(redacting)
    tracer = provider.get_tracer("test")
    tracer.start_span("first", kind=SpanKind.SERVER).end()
    hooks = provider._unsampled_hooks
    # RED's on_end and the counting processor's three hooks; Simple/Batch export and redaction skipped.
    assert list(hooks.on_end) == [store_processor(provider).on_end, everything.on_end]
    assert list(hooks.on_start) == [everything.on_start]  # RED declares it needs on_end only
    assert everything.calls == ["on_start", "_on_ending", "on_end"]
    provider.add_span_processor(end_only)  # after the tracer exists: picked up at the next span
    provider.add_span_processor(export_subclass)
    tracer.start_span("second", kind=SpanKind.SERVER).end()
    assert end_only.calls == ["on_end"] and export_subclass.ended == 1
    assert everything.calls == ["on_start", "_on_ending", "on_end"] * 2
    assert redacting.spans_scanned == 0
    assert sum(series.calls for series in store.snapshot().series) == 2


def store_processor(provider: LightUnsampledTracerProvider) -> Any:
    return next(p for p in provider._active_span_processor._span_processors if isinstance(p, REDSpanProcessor))


def test_sampled_spans_are_sdk_spans_and_a_disabled_tracer_stays_non_recording() -> None:
    provider, _store, exporter = _provider(sampler=ALWAYS_ON)
    tracer = provider.get_tracer("test")
    assert provider.get_tracer("test") is tracer  # one light tracer per instrumentation scope
    with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as span:
        assert isinstance(span, Span) and not isinstance(span, UnsampledSpan)
    assert len(exporter.get_finished_spans()) == 1

    disabled, disabled_store, _ = _provider(
        sampler=ALWAYS_OFF, _tracer_configurator=lambda _scope: TracerConfig(is_enabled=False)
    )
    span = disabled.get_tracer("test").start_span("GET /", kind=SpanKind.SERVER)
    assert isinstance(span, NonRecordingSpan)
    span.end()
    assert disabled_store.snapshot().series == ()


_CONFIGURE_SCRIPT = """
import json, sys
import otelpipe._sdk as sdk
if sys.argv[1] == "hooks-missing":
    missing = [sdk.HookResult(sdk.LIGHT_TRACING_HOOK, "test"), sdk.HookResult(sdk.EXPORT_DROPS_HOOK, "test")]
    sdk.report_missing_hooks = lambda results=None: missing
import otelpipe
from opentelemetry import trace
from opentelemetry.trace import SpanKind
pipeline = otelpipe.configure()
tracer = trace.get_tracer("t")
for _ in range(50):
    with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as span:
        kind = type(span).__name__
calls = sum(s.calls for s in pipeline.red_store.snapshot().series)
processors = [type(p).__name__ for p in pipeline.tracer_provider._active_span_processor._span_processors]
print(json.dumps({"provider": type(pipeline.tracer_provider).__name__, "span": kind, "calls": calls,
                  "sampler": pipeline.tracer_provider.sampler.get_description(), "processors": processors}))
pipeline.shutdown()
"""


@pytest.mark.parametrize("mode", ["hooks-present", "hooks-missing"])
def test_configure_uses_the_light_provider_and_falls_back_to_full_spans_without_its_sdk_hooks(mode: str) -> None:
    """Through otelpipe.configure(): OTELPIPE_RED_RECORD_UNSAMPLED_ENABLED (default true) picks the light provider."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_TRACES_SAMPLER="always_off",
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    result = subprocess.run(
        [sys.executable, "-c", _CONFIGURE_SCRIPT, mode],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["calls"] == 50  # exact either way
    if mode == "hooks-present":
        assert report["provider"] == "LightUnsampledTracerProvider" and report["span"] == "UnsampledSpan"
        assert "DropCountingBatchSpanProcessor" in report["processors"]
    else:
        assert report["provider"] == "TracerProvider" and report["span"] == "_Span"
        assert report["sampler"].startswith("RecordUnsampled")
        assert "BatchSpanProcessor" in report["processors"]
        assert "DropCountingBatchSpanProcessor" not in report["processors"]


def _fast_provider(sampler: Any, seed: int) -> tuple[LightUnsampledTracerProvider, REDStore, Any]:
    from otelpipe.processors.fast_sampling import fast_parent_based

    return _provider(sampler=fast_parent_based(sampler), id_generator=SeededIds(seed))


def _contexts(tracer: Any, remote_flags: int, state: list[tuple[str, str]], depth: int, explicit: bool) -> list[Any]:
    """Span contexts of a chain under a remote parent that was not sampled: a dropped root, then children."""
    from opentelemetry import trace as trace_api
    from opentelemetry.trace import SpanContext, TraceFlags
    from opentelemetry.trace.span import TraceState

    remote = SpanContext(0x1F2E3D4C5B6A79881726354453627180, 0x1122334455667788, True, TraceFlags(remote_flags), TraceState(state))
    context = trace_api.set_span_in_context(NonRecordingSpan(remote))
    found = []
    for level in range(depth):
        kind = SpanKind.CLIENT if level % 2 else SpanKind.INTERNAL
        span = tracer.start_span(f"s{level}", context if explicit or level == 0 else None, kind=kind)
        found.append((type(span).__name__, span.get_span_context()))
        context = trace_api.set_span_in_context(span, context if explicit else None)
        if not explicit:
            from opentelemetry import context as context_api

            context_api.attach(context)
    return found


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    remote_flags=st.sampled_from([0, 2]),
    state=st.lists(st.tuples(st.sampled_from(["a", "b", "vendor"]), st.sampled_from(["1", "x"])), max_size=2, unique_by=lambda kv: kv[0]),
    depth=st.integers(1, 4),
    explicit=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_a_dropped_spans_children_get_the_span_context_the_sdk_would_build(
    remote_flags: int, state: list[tuple[str, str]], depth: int, explicit: bool, seed: int
) -> None:
    """Children of a dropped local span skip the SDK's start_span: same ids, flags and trace state as
    when the SDK builds them (same seeded ids), and the same light spans."""
    from opentelemetry import context as context_api
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio as Ratio

    results = []
    for fast in (True, False):
        provider, _, _ = _fast_provider(Ratio(0.5), seed)
        tracer: Any = provider.get_tracer("test")
        assert tracer._child_flags is not None
        if not fast:
            tracer._child_flags = None  # every child through the SDK's start_span
        token = context_api.attach(context_api.Context())
        try:
            results.append(_contexts(tracer, remote_flags, state, depth, explicit))
        finally:
            context_api.detach(token)
    assert results[0] == results[1]
    assert all(name == "UnsampledSpan" and not ctx.trace_flags.sampled for name, ctx in results[0])


def test_children_go_through_the_sdk_when_its_decision_for_them_is_not_a_plain_drop() -> None:
    """A sampler that may keep a child of a dropped parent, a tracer turned off, or a sampler otelpipe
    does not reproduce: every child is started by the SDK (and so sampled where the sampler says)."""
    from opentelemetry.sdk.trace.sampling import ParentBased

    keeps_children, _, exporter = _fast_provider(ParentBased(ALWAYS_OFF, local_parent_not_sampled=ALWAYS_ON), 1)
    tracer: Any = keeps_children.get_tracer("test")
    assert tracer._child_flags is None
    with tracer.start_as_current_span("root") as root:
        assert isinstance(root, UnsampledSpan)
        with tracer.start_as_current_span("child") as child:
            assert isinstance(child, Span) and child.get_span_context().trace_flags.sampled
    assert [span.name for span in exporter.get_finished_spans()] == ["child"]
    stock, _, _ = _provider(sampler=ParentBasedTraceIdRatio(0.01))  # not a FastParentBased
    assert stock.get_tracer("test")._child_flags is None  # type: ignore[attr-defined]
    dimmed, _, _ = _fast_provider(ParentBased(ALWAYS_OFF), 2)
    tracer = dimmed.get_tracer("test")
    assert tracer._child_flags is not None  # type: ignore[attr-defined]
    with tracer.start_as_current_span("root") as root:
        tracer._tracer._tracer_config = TracerConfig(is_enabled=False)  # type: ignore[attr-defined]  # turned off now
        child = tracer.start_span("child")
        assert type(child) is NonRecordingSpan and child.get_span_context() == root.get_span_context()


class ZeroSpanIds(SeededIds):
    def generate_span_id(self) -> int:
        return 0


def test_a_child_with_an_invalid_span_id_is_the_sdks_non_recording_span() -> None:
    from opentelemetry.sdk.trace.sampling import ParentBased

    provider, store, _ = _fast_provider(ParentBased(ALWAYS_OFF), 3)
    tracer: Any = provider.get_tracer("test")
    with tracer.start_as_current_span("root") as root:
        provider.id_generator = tracer._tracer.id_generator = ZeroSpanIds(3)
        child = tracer.start_span("child")
    assert type(child) is NonRecordingSpan and not child.get_span_context().is_valid
    assert child.get_span_context().trace_id == root.get_span_context().trace_id
    child.end()
    assert sum(series.calls for series in store.snapshot().series) == 1  # the root only, as with the SDK
