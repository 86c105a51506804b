"""FastParentBased: decision for decision, attribute for attribute, the SDK's ParentBased, only faster."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace import _Span as SDKSpan
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation import _SPAN_KEY
from opentelemetry.trace.span import TraceState

from otelpipe.processors import fast_sampling
from otelpipe.processors.fast_sampling import FastParentBased, fast_parent_based
from otelpipe.processors.sampling import RecordUnsampledSampler

LIMIT = (1 << 64) - 1
RATIOS = (0.0, 1e-12, 1e-6, 0.01, 0.5, 0.999999, 1.0)


class ForeignSpan(trace_api.Span):
    """A span from some other tracing library: only the public API, no `_context` field."""

    def __init__(self, span_context: SpanContext) -> None:
        self._ctx = span_context

    def get_span_context(self) -> SpanContext:
        return self._ctx

    def end(self, end_time: int | None = None) -> None: ...
    def set_attributes(self, attributes: Any) -> None: ...
    def set_attribute(self, key: str, value: Any) -> None: ...
    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None: ...
    def update_name(self, name: str) -> None: ...
    def is_recording(self) -> bool:
        return False

    def set_status(self, status: Any, description: str | None = None) -> None: ...
    def record_exception(self, *args: Any, **kwargs: Any) -> None: ...


class OddSpanContext(SpanContext):
    """A SpanContext subclass: the fast path leaves it to the SDK."""


# --- strategies -------------------------------------------------------------------------------

delegates = st.one_of(
    st.sampled_from([ALWAYS_ON, ALWAYS_OFF, StaticSampler(Decision.RECORD_ONLY)]),
    st.sampled_from(RATIOS).map(TraceIdRatioBased),
    st.floats(0.0, 1.0).map(TraceIdRatioBased),
)
trace_states = st.sampled_from([None, TraceState([("vendor", "v1")]), TraceState([("a", "1"), ("b", "2")])])
attribute_sets = st.sampled_from([None, {}, {"http.route": "/x"}, {"a": 1, "b": True}])


@st.composite
def span_contexts(draw: st.DrawFn) -> SpanContext:
    trace_id = draw(st.sampled_from([0, 1, 0xABC, (1 << 128) - 1]) | st.integers(0, (1 << 128) - 1))
    span_id = draw(st.sampled_from([0, 1, (1 << 64) - 1]) | st.integers(0, (1 << 64) - 1))
    flags = TraceFlags(draw(st.sampled_from([0, 1, 2, 3])))
    cls = draw(st.sampled_from([SpanContext, SpanContext, SpanContext, OddSpanContext]))
    return cls(
        trace_id, span_id, is_remote=draw(st.booleans()), trace_flags=flags, trace_state=draw(trace_states)
    )


@st.composite
def parents(draw: st.DrawFn) -> tuple[str, Context | None]:
    """(how the parent is given, its context): None is "no context at all"."""
    shape = draw(
        st.sampled_from(
            ["none", "empty", "invalid", "non-recording", "sdk-span", "foreign", "not-a-span", "int-flags"]
        )
    )
    if shape == "none":
        return shape, None
    if shape == "empty":
        return shape, Context()
    if shape == "invalid":
        return shape, trace_api.set_span_in_context(INVALID_SPAN, Context())
    if shape == "not-a-span":
        return shape, Context({_SPAN_KEY: draw(st.sampled_from(["text", 42, object()]))})
    if shape == "int-flags":  # the SDK reads trace_flags.sampled: an int has none
        span_context = SpanContext(draw(st.integers(0, 5)), 7, is_remote=draw(st.booleans()), trace_flags=1)  # type: ignore[arg-type]
        return shape, trace_api.set_span_in_context(NonRecordingSpan(span_context), Context())
    span_context = draw(span_contexts())
    span: trace_api.Span
    if shape == "non-recording":
        span = NonRecordingSpan(span_context)
    elif shape == "sdk-span":
        span = SDKSpan("parent", span_context)
    else:
        span = ForeignSpan(span_context)
    return shape, trace_api.set_span_in_context(span, Context())


@contextmanager
def current(ctx: Context | None) -> Iterator[None]:
    token = context_api.attach(ctx) if ctx is not None else None
    try:
        yield
    finally:
        if token is not None:
            context_api.detach(token)


def outcome(sampler: Sampler, parent_context: Context | None, trace_id: int, attributes: Any) -> Any:
    """What should_sample returns, comparable; or the exception type it raises."""
    try:
        result = sampler.should_sample(parent_context, trace_id, "span", SpanKind.SERVER, attributes, None)
    except Exception as exc:
        return ("raised", type(exc))
    assert type(result) is SamplingResult
    return result


def assert_same(fast: Any, stock: Any) -> None:
    if isinstance(stock, tuple):
        assert fast == stock
        return
    assert isinstance(fast, SamplingResult)
    assert fast.decision is stock.decision
    assert dict(fast.attributes or {}) == dict(stock.attributes or {})
    assert fast.trace_state is stock.trace_state  # the parent's object itself, or None for both


# --- equivalence ------------------------------------------------------------------------------


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), five=st.lists(delegates, min_size=5, max_size=5))
def test_every_delegate_combination_decides_like_the_sdk(data: st.DataObject, five: list[Sampler]) -> None:
    stock = ParentBased(*five)
    fast = fast_parent_based(stock)
    assert isinstance(fast, FastParentBased)
    assert fast.get_description() == stock.get_description()
    bounds = [d.bound for d in five if isinstance(d, TraceIdRatioBased)] or [0]
    # several calls on one fast sampler: shared DROP results must never leak a previous parent's state
    for _ in range(data.draw(st.integers(1, 4))):
        bound = data.draw(st.sampled_from(bounds))
        near_bound = st.builds(
            lambda high, delta: (high << 64) | min(max(bound + delta, 0), LIMIT),
            st.integers(0, LIMIT),
            st.integers(-2, 2),
        )
        trace_id = data.draw(
            near_bound | st.integers(0, (1 << 128) - 1) | st.sampled_from([0, LIMIT, 1 << 64])
        )
        shape, ctx = data.draw(parents())
        attributes = data.draw(attribute_sets)
        if data.draw(st.booleans(), label="explicit context"):
            expected = outcome(stock, ctx, trace_id, attributes)
            got = outcome(fast, ctx, trace_id, attributes)
        else:  # the parent is whatever is current (nothing attached for "none")
            with current(ctx):
                expected = outcome(stock, None, trace_id, attributes)
                got = outcome(fast, None, trace_id, attributes)
        assert_same(got, expected)
        if shape == "int-flags" or not isinstance(expected, tuple):
            assert fast.fallbacks == 0  # left to the SDK by design, not by failure


@given(
    ratio=st.sampled_from(RATIOS) | st.floats(0.0, 1.0),
    low=st.integers(-3, 3),
    high=st.integers(0, LIMIT),
)
@settings(max_examples=500, deadline=None)
def test_root_decisions_at_the_ratio_bound(ratio: float, low: int, high: int) -> None:
    stock = ParentBasedTraceIdRatio(ratio)
    fast = fast_parent_based(stock)
    bound = stock._root.bound  # type: ignore[attr-defined]
    trace_id = (high << 64) | min(max(bound + low, 0), LIMIT)
    assert_same(outcome(fast, None, trace_id, None), outcome(stock, None, trace_id, None))
    sampled = outcome(fast, None, trace_id, {"k": "v"})
    assert sampled.decision is (Decision.RECORD_AND_SAMPLE if trace_id & LIMIT < bound else Decision.DROP)


class SeededIds(IdGenerator):
    def __init__(self) -> None:
        self._next = 0

    def generate_span_id(self) -> int:
        self._next += 1
        return self._next

    def generate_trace_id(self) -> int:
        self._next += 1
        return (self._next * 0x9E3779B97F4A7C15_F39CC0605CEDC834) % (1 << 128) or 1


def _trace(sampler: Sampler) -> list[tuple[int, bool, bool, str]]:
    """Nested spans under local roots and remote parents (with tracestate), through the SDK tracer."""
    provider = TracerProvider(sampler=sampler, id_generator=SeededIds(), shutdown_on_exit=False)
    tracer = provider.get_tracer("t")
    seen: list[tuple[int, bool, bool, str]] = []

    def note(span: trace_api.Span) -> None:
        ctx = span.get_span_context()
        seen.append((ctx.trace_id, ctx.trace_flags.sampled, span.is_recording(), ctx.trace_state.to_header()))

    for i in range(300):
        remote = None
        if i % 3 == 0:
            remote_ctx = SpanContext(
                i * 7919 + 1,
                5,
                is_remote=True,
                trace_flags=TraceFlags(i % 2),
                trace_state=TraceState([("r", str(i))]),
            )
            remote = trace_api.set_span_in_context(NonRecordingSpan(remote_ctx))
        with tracer.start_as_current_span("server", context=remote, kind=SpanKind.SERVER) as server:
            note(server)
            with tracer.start_as_current_span(
                "db", kind=SpanKind.CLIENT, attributes={"db.system": "sqlite"}
            ) as db:
                note(db)
            note(tracer.start_span("explicit", context=trace_api.set_span_in_context(server)))
    return seen


def test_spans_through_the_sdk_tracer_come_out_the_same() -> None:
    stock = ParentBased(TraceIdRatioBased(0.3), remote_parent_not_sampled=TraceIdRatioBased(0.5))
    fast = fast_parent_based(stock)
    assert isinstance(fast, FastParentBased)
    spans = _trace(fast)
    assert spans == _trace(stock)
    assert {(s[1], s[2]) for s in spans} == {(True, True), (False, False)}  # both kinds were exercised
    assert fast.fallbacks == 0


def test_drop_results_are_shared_per_parent_trace_state() -> None:
    fast = fast_parent_based(DEFAULT_OFF)
    assert isinstance(fast, FastParentBased)
    root = fast.should_sample(None, 5, "a")
    assert root is fast.should_sample(None, 6, "b")
    assert root.decision is Decision.DROP and root.trace_state is None and dict(root.attributes) == {}
    state = TraceState([("v", "1")])
    parent = trace_api.set_span_in_context(NonRecordingSpan(SpanContext(1, 2, False, TraceFlags(0), state)))
    child = fast.should_sample(parent, 1, "c", attributes={"x": 1})
    assert child is fast.should_sample(parent, 1, "d")
    assert child.trace_state is state and dict(child.attributes) == {}
    other = TraceState([("v", "2")])
    parent2 = trace_api.set_span_in_context(NonRecordingSpan(SpanContext(1, 3, False, TraceFlags(0), other)))
    assert fast.should_sample(parent2, 1, "e").trace_state is other


def test_sampled_results_are_built_per_call_around_the_callers_attributes() -> None:
    fast = fast_parent_based(DEFAULT_ON)
    assert isinstance(fast, FastParentBased)
    attributes = {"a": 1}
    first = fast.should_sample(None, 1, "a", attributes=attributes)
    assert first is not fast.should_sample(None, 1, "a", attributes=attributes)
    attributes["b"] = 2  # the SDK's result is a view of the caller's mapping too
    assert (
        dict(first.attributes)
        == {"a": 1, "b": 2}
        == dict(DEFAULT_ON.should_sample(None, 1, "a", attributes=attributes).attributes)
    )


def test_an_error_in_the_fast_path_falls_back_to_the_sdk_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stock = ParentBasedTraceIdRatio(0.5)
    fast = fast_parent_based(stock)
    assert isinstance(fast, FastParentBased)

    def broken() -> Context:
        raise RuntimeError("context storage changed")

    monkeypatch.setattr(fast_sampling, "_current_context", broken)
    parent = trace_api.set_span_in_context(NonRecordingSpan(SpanContext(9, 2, True, TraceFlags(1))))
    with caplog.at_level(logging.WARNING, logger="otelpipe"), current(parent):
        for trace_id in (1, LIMIT, 1 << 70):
            assert_same(outcome(fast, None, trace_id, {"k": 1}), outcome(stock, None, trace_id, {"k": 1}))
    assert fast.fallbacks == 3
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("otelpipe")]
    assert len(messages) == 1  # rate-limited
    assert "RuntimeError" in messages[0] and "ParentBased" in messages[0]


# --- which samplers are replaced --------------------------------------------------------------


class MyParentBased(ParentBased):
    pass


class MyRatio(TraceIdRatioBased):
    pass


def _instance_patched() -> ParentBased:
    sampler = ParentBased(ALWAYS_ON)
    sampler.should_sample = ALWAYS_OFF.should_sample  # type: ignore[method-assign]
    return sampler


@pytest.mark.parametrize(
    "sampler",
    [
        ParentBased(ALWAYS_ON),
        ParentBased(ALWAYS_OFF, ALWAYS_OFF, ALWAYS_ON, TraceIdRatioBased(0.2), StaticSampler(Decision.DROP)),
        ParentBasedTraceIdRatio(0.01),
        DEFAULT_ON,
        DEFAULT_OFF,
    ],
    ids=lambda s: s.get_description()[:60],
)
def test_sdk_parent_based_samplers_are_replaced_keeping_description(sampler: Sampler) -> None:
    fast = fast_parent_based(sampler)
    assert isinstance(fast, FastParentBased) and isinstance(fast, ParentBased)
    assert fast.get_description() == sampler.get_description()


@pytest.mark.parametrize(
    "sampler",
    [
        ALWAYS_ON,
        ALWAYS_OFF,
        TraceIdRatioBased(0.5),
        MyParentBased(ALWAYS_ON),
        ParentBased(MyRatio(0.5)),
        ParentBased(ALWAYS_ON, local_parent_not_sampled=RecordUnsampledSampler(ALWAYS_OFF)),
        RecordUnsampledSampler(ParentBased(ALWAYS_ON)),
        _instance_patched(),
    ],
    ids=lambda s: type(s).__name__,
)
def test_other_samplers_are_used_as_given(sampler: Sampler) -> None:
    assert fast_parent_based(sampler) is sampler


def test_no_sampler_is_the_sdk_default_resolved_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    default = fast_parent_based(None)
    assert isinstance(default, FastParentBased)
    assert default.get_description() == DEFAULT_ON.get_description()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert fast_parent_based(None) is ALWAYS_OFF


# --- through otelpipe.configure() ------------------------------------------------------------

_CONFIGURE = textwrap.dedent(
    """
    import json, otelpipe
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
    pipeline = otelpipe.configure(sampler=ALWAYS_OFF) if {in_code!r} else otelpipe.configure()
    sampler = pipeline.tracer_provider.sampler
    print("RESULT " + json.dumps([type(sampler).__name__, sampler.get_description()]))
    otelpipe.shutdown() if hasattr(otelpipe, "shutdown") else None
    """
)


def _provider_sampler(env: dict[str, str], tmp_path: Path, in_code: bool = False) -> tuple[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    base.update(
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="fast-sampler",
        OTELPIPE_SHUTDOWN_TIMEOUT="2s",
    )
    base.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", _CONFIGURE.format(in_code=in_code)],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    name, description = json.loads(line[len("RESULT ") :])
    return name, description


def _custom_sampler_entry_point(tmp_path: Path) -> str:
    """A sampler installed the way a package ships one: an `opentelemetry_traces_sampler` entry point."""
    (tmp_path / "my_sampler.py").write_text(
        textwrap.dedent(
            """
            from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

            class MySampler(ParentBased):
                pass

            def factory(arg):
                return MySampler(TraceIdRatioBased(0.1))
            """
        ),
        encoding="utf-8",
    )
    dist = tmp_path / "my_sampler-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: my-sampler\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[opentelemetry_traces_sampler]\nmine = my_sampler:factory\n", encoding="utf-8"
    )
    return str(tmp_path)


def test_configure_uses_the_fast_sampler_exactly_for_sdk_parent_based(tmp_path: Path) -> None:
    cases: Sequence[tuple[dict[str, str], bool, str, str]] = [
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
            False,
            "FastParentBased",
            ParentBasedTraceIdRatio(0.25).get_description(),
        ),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
            False,
            "FastParentBased",
            DEFAULT_ON.get_description(),
        ),
        ({}, False, "FastParentBased", DEFAULT_ON.get_description()),  # the SDK default
        (  # switched off: the SDK's own
            {
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.25",
                "OTELPIPE_FAST_SAMPLER_ENABLED": "false",
            },
            False,
            "ParentBasedTraceIdRatio",
            ParentBasedTraceIdRatio(0.25).get_description(),
        ),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, False, "_AlwaysOn", ALWAYS_ON.get_description()),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
            False,
            "TraceIdRatioBased",
            "TraceIdRatioBased{0.5}",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
            True,
            "StaticSampler",
            "AlwaysOffSampler",
        ),  # in code
        (
            {"OTEL_TRACES_SAMPLER": "mine", "PYTHONPATH": _custom_sampler_entry_point(tmp_path)},
            False,
            "MySampler",
            ParentBased(TraceIdRatioBased(0.1)).get_description(),
        ),
    ]
    for env, in_code, name, description in cases:
        assert _provider_sampler(env, tmp_path, in_code) == (name, description), env


def test_a_failure_while_building_keeps_the_sampler_as_given(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sampler: Sampler | None) -> Sampler | None:
        raise AttributeError("ParentBased changed")

    monkeypatch.setattr(fast_sampling, "_fast_or_given", broken)
    sampler = ParentBasedTraceIdRatio(0.1)
    with caplog.at_level(logging.WARNING, logger="otelpipe"):
        assert fast_parent_based(sampler) is sampler
    assert any("fast sampler not used" in r.getMessage() for r in caplog.records)
