"""REDStore + REDSpanProcessor against the real SDK TracerProvider."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from otelpipe.fleet.merger import REDStreamMerger
from otelpipe.processors.red import REDSpanProcessor, REDStore, validate_boundaries
from otelpipe.processors.red_snapshot import REDSnapshot, SeriesStats, series_identity
from otelpipe.processors.sampling import RecordUnsampledSampler

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def make(
    *,
    store: REDStore | None = None,
    kinds: tuple[SpanKind, ...] | None = None,
    service: str = "shop",
    sampler: Any = None,
) -> tuple[REDStore, Tracer]:
    if store is None:
        store = (
            REDStore(clock=FakeClock()) if kinds is None else REDStore(clock=FakeClock(), span_kinds=kinds)
        )
    provider = TracerProvider(resource=Resource.create({"service.name": service}), sampler=sampler)
    provider.add_span_processor(REDSpanProcessor(store))
    return store, provider.get_tracer("test")


def emit(
    tracer: Tracer,
    name: str = "GET /items",
    *,
    kind: SpanKind = SpanKind.SERVER,
    attributes: Mapping[str, Any] | None = None,
    duration_ns: int = 3 * MS,
    status: StatusCode | None = None,
) -> None:
    span = tracer.start_span(name, kind=kind, attributes=attributes, start_time=T0)
    if status is not None:
        span.set_status(Status(status))
    span.end(end_time=T0 + duration_ns)


def only(snapshot: REDSnapshot, **match: Any) -> SeriesStats:
    found = [
        s
        for s in snapshot.series
        if all(s.attributes.get(k.replace("_", ".")) == v for k, v in match.items())
    ]
    assert len(found) == 1, [s.attributes for s in snapshot.series]
    return found[0]


def test_core_and_http_dimensions_from_legacy_and_new_names_merge() -> None:
    store, tracer = make()
    emit(tracer, attributes={"http.method": "GET", "http.route": "/items", "http.status_code": 200})
    emit(
        tracer,
        attributes={"http.request.method": "GET", "http.route": "/items", "http.response.status_code": 200},
    )
    (series,) = store.snapshot().series
    assert dict(series.attributes) == {
        "service.name": "shop",
        "span.name": "GET /items",
        "span.kind": "SPAN_KIND_SERVER",
        "status.code": "STATUS_CODE_UNSET",
        "http.request.method": "GET",
        "http.route": "/items",
        "http.response.status_code": 200,
    }
    assert series.calls == 2


def test_absent_dimensions_are_omitted_and_db_rpc_present() -> None:
    store, tracer = make()
    emit(
        tracer, "query", kind=SpanKind.CLIENT, attributes={"db.system": "sqlite", "db.statement": "SELECT 1"}
    )
    emit(tracer, "Get", kind=SpanKind.CLIENT, attributes={"rpc.service": "Cart", "rpc.method": "Get"})
    snap = store.snapshot()
    assert only(snap, span_name="query").attributes.get("db.system") == "sqlite"
    assert "db.statement" not in only(snap, span_name="query").attributes
    assert "http.route" not in only(snap, span_name="query").attributes
    rpc = only(snap, span_name="Get").attributes
    assert (rpc["rpc.service"], rpc["rpc.method"]) == ("Cart", "Get")


def test_extra_and_excluded_dimensions_and_resource_fallback() -> None:
    store = REDStore(dimensions=("tenant", "deployment.environment"), exclude_dimensions=("span.name",))
    provider = TracerProvider(
        resource=Resource.create({"service.name": "shop", "deployment.environment": "prod"})
    )
    provider.add_span_processor(REDSpanProcessor(store))
    tracer = provider.get_tracer("t")
    emit(tracer, "a", attributes={"tenant": "acme"})
    emit(tracer, "b", attributes={"tenant": "acme"})
    (series,) = store.snapshot().series
    assert "span.name" not in series.attributes
    assert series.attributes["tenant"] == "acme"
    assert series.attributes["deployment.environment"] == "prod"
    assert series.calls == 2


def test_span_kinds_all_counted_by_default_as_the_connector() -> None:
    store, tracer = make()
    emit(tracer, kind=SpanKind.INTERNAL)
    emit(tracer, kind=SpanKind.CONSUMER)
    kinds = sorted(s.attributes["span.kind"] for s in store.snapshot().series)
    assert kinds == ["SPAN_KIND_CONSUMER", "SPAN_KIND_INTERNAL"]
    store2, tracer2 = make(kinds=(SpanKind.INTERNAL,))
    emit(tracer2, kind=SpanKind.INTERNAL)
    emit(tracer2, kind=SpanKind.SERVER)
    assert [s.attributes["span.kind"] for s in store2.snapshot().series] == ["SPAN_KIND_INTERNAL"]


@pytest.mark.parametrize(
    ("kind", "status", "attributes", "effective"),
    [
        (SpanKind.SERVER, None, {"http.response.status_code": 503}, "STATUS_CODE_ERROR"),
        (SpanKind.SERVER, None, {"http.status_code": 500}, "STATUS_CODE_ERROR"),
        (SpanKind.SERVER, None, {"http.status_code": "502"}, "STATUS_CODE_ERROR"),
        (SpanKind.SERVER, None, {"http.response.status_code": 499}, "STATUS_CODE_UNSET"),
        (SpanKind.SERVER, None, {"http.response.status_code": "oops"}, "STATUS_CODE_UNSET"),
        (SpanKind.SERVER, StatusCode.OK, {"http.response.status_code": 500}, "STATUS_CODE_OK"),
        (SpanKind.CLIENT, None, {"http.response.status_code": 500}, "STATUS_CODE_UNSET"),
        (SpanKind.CLIENT, StatusCode.ERROR, {}, "STATUS_CODE_ERROR"),
        (SpanKind.CONSUMER, StatusCode.ERROR, {}, "STATUS_CODE_ERROR"),
    ],
)
def test_error_rule(
    kind: SpanKind, status: StatusCode | None, attributes: dict[str, Any], effective: str
) -> None:
    store, tracer = make()
    emit(tracer, kind=kind, attributes=attributes, status=status)
    (series,) = store.snapshot().series
    assert series.attributes["status.code"] == effective
    assert series.errors == (1 if effective == "STATUS_CODE_ERROR" else 0)


def test_bucket_placement_is_upper_inclusive() -> None:
    store = REDStore(boundaries=(0.01, 0.1), clock=FakeClock())
    _, tracer = make(store=store)
    for duration_ns in (0, 10 * MS, 10 * MS + 1, 100 * MS, 100 * MS + 1, 5_000 * MS):
        emit(tracer, duration_ns=duration_ns)
    (series,) = store.snapshot().series
    assert series.bucket_counts == (2, 2, 2)
    assert series.min == 0.0
    assert series.max == 5.0
    assert series.sum == pytest.approx((20 * MS + 1 + 200 * MS + 1 + 5000 * MS) / 1e9)
    assert series.count_at_most(store.boundaries, 0.1) == 4


@pytest.mark.parametrize(
    "bad", [(), (0.1, 0.1), (0.2, 0.1), (0.0, 1.0), (-1.0,), (float("nan"),), (float("inf"),)]
)
def test_bad_boundaries_are_rejected(bad: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="bound"):
        validate_boundaries(bad)


def test_overflow_at_cardinality_limit() -> None:
    store = REDStore(cardinality_limit=5, clock=FakeClock())
    _, tracer = make(store=store)
    for i in range(12):
        emit(tracer, attributes={"http.route": f"/r{i}"})
    emit(tracer, attributes={"http.route": "/r0"})  # an admitted series keeps counting
    snap = store.snapshot()
    assert len(snap.series) == 6
    overflow = [s for s in snap.series if s.attributes.get("otel.metric.overflow") is True]
    assert len(overflow) == 1
    assert dict(overflow[0].attributes) == {"otel.metric.overflow": True}
    assert overflow[0].calls == 7
    assert snap.overflow_spans == 7
    assert only(snap, http_route="/r0").calls == 2
    assert sum(s.calls for s in snap.series) == 13


def test_exemplars_keep_recent_sampled_and_error_spans() -> None:
    store = REDStore(boundaries=(0.01, 1.0), clock=FakeClock())
    _, tracer = make(store=store)
    ok = tracer.start_span("op", kind=SpanKind.SERVER, start_time=T0)
    ok.end(end_time=T0 + 2 * MS)
    err = tracer.start_span("op", kind=SpanKind.SERVER, start_time=T0)
    err.set_status(Status(StatusCode.ERROR))
    err.end(end_time=T0 + 500 * MS)
    snap = store.snapshot()
    ok_series = only(snap, status_code="STATUS_CODE_UNSET")
    (ok_ref,) = ok_series.exemplars
    assert ok_ref.span_id == f"{ok.get_span_context().span_id:016x}"
    assert ok_ref.trace_id == f"{ok.get_span_context().trace_id:032x}"
    assert (ok_ref.value, ok_ref.sampled, ok_ref.error) == (0.002, True, False)
    err_refs = only(snap, status_code="STATUS_CODE_ERROR").exemplars
    assert {(r.error, r.value) for r in err_refs} == {(True, 0.5)}
    assert all(r.span_id == f"{err.get_span_context().span_id:016x}" for r in err_refs)


def test_unsampled_spans_give_no_sampled_exemplar_but_error_one_still_counts() -> None:
    store, tracer = make(sampler=RecordUnsampledSampler(ALWAYS_OFF))
    emit(tracer)
    emit(tracer, status=StatusCode.ERROR)
    snap = store.snapshot()
    assert only(snap, status_code="STATUS_CODE_UNSET").exemplars == ()
    (ref,) = only(snap, status_code="STATUS_CODE_ERROR").exemplars
    assert (ref.sampled, ref.error) == (False, True)


def test_exemplars_can_be_disabled() -> None:
    store = REDStore(exemplars=False)
    _, tracer = make(store=store)
    emit(tracer, status=StatusCode.ERROR)
    assert store.snapshot().series[0].exemplars == ()


def test_four_threads_count_exactly() -> None:
    store, tracer = make()
    per_thread = 2_000

    def work(n: int) -> None:
        for i in range(per_thread):
            emit(tracer, attributes={"http.route": f"/t{i % 7}"}, duration_ns=(i % 50) * MS)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a recording thread is stuck"
    snap = store.snapshot()
    assert sum(s.calls for s in snap.series) == 4 * per_thread
    assert sum(sum(s.bucket_counts) for s in snap.series) == 4 * per_thread
    assert len(snap.series) == 7


def test_tables_of_finished_threads_are_folded_so_memory_stays_bounded() -> None:
    """A thread per request must not leave a table per thread behind."""
    store, tracer = make()
    batches, per_batch = 3, 80  # more threads alive at once than the shard bound (64)

    for batch in range(batches):
        barrier = threading.Barrier(per_batch)

        def work(n: int, batch: int = batch, barrier: threading.Barrier = barrier) -> None:
            barrier.wait(30)  # all alive together: distinct thread ids
            emit(
                tracer,
                attributes={"http.route": f"/b{n % 5}"},
                duration_ns=(n + 1) * MS,
                status=StatusCode.ERROR if n % 10 == 0 else None,
            )

        threads = [threading.Thread(target=work, args=(n,)) for n in range(per_batch)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads), "a recording thread is stuck"
    snap = store.snapshot()
    assert sum(s.calls for s in snap.series) == batches * per_batch
    assert (
        sum(s.calls for s in snap.series if s.attributes["status.code"] == "STATUS_CODE_ERROR") == batches * 8
    )
    assert store.thread_tables <= 64 + per_batch + 1
    slowest = max(s.max for s in snap.series)
    assert slowest == per_batch * MS / 1e9


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_starts_empty_and_parent_is_unaffected() -> None:
    store, tracer = make()
    for _ in range(5):
        emit(tracer)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what it sees, then count one span of its own
        try:
            before = sum(s.calls for s in store.snapshot().series)
            emit(tracer)
            after = sum(s.calls for s in store.snapshot().series)
            os.write(write_fd, f"{before} {after}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    _, exit_status = os.waitpid(pid, 0)
    with os.fdopen(read_fd) as pipe:
        child = pipe.read()
    assert exit_status == 0
    assert child == "0 1"
    emit(tracer)
    assert sum(s.calls for s in store.snapshot().series) == 6


def test_bad_input_is_counted_never_raised() -> None:
    store, tracer = make()
    backwards = tracer.start_span("backwards", kind=SpanKind.SERVER, start_time=T0)
    backwards.end(end_time=T0 - 1)
    processor = REDSpanProcessor(store)
    resource = Resource.create({"service.name": "shop"})
    processor.on_end(ReadableSpan(name="unfinished", kind=SpanKind.SERVER, start_time=T0, end_time=None))
    processor.on_end(ReadableSpan(name="nostart", kind=SpanKind.SERVER, start_time=None, end_time=T0))
    processor.on_end(object())  # type: ignore[arg-type]
    odd = ReadableSpan(
        name="odd",
        kind=SpanKind.SERVER,
        start_time=T0,
        end_time=T0 + MS,
        attributes={"http.route": ["a", "b"], "http.response.status_code": None},  # type: ignore[dict-item]
        resource=resource,
    )
    processor.on_end(odd)
    processor.on_end(ReadableSpan(name="noresource", kind=SpanKind.SERVER, start_time=T0, end_time=T0 + MS))
    snap = store.snapshot()
    assert snap.skipped_spans == 4
    assert only(snap, span_name="odd").attributes["http.route"] == "['a', 'b']"
    assert only(snap, span_name="noresource").calls == 1


attribute_values = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.binary(max_size=5),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    attributes=st.dictionaries(
        st.sampled_from(
            [
                "http.route",
                "http.method",
                "http.status_code",
                "http.response.status_code",
                "db.system",
                "peer.service",
            ]
        ),
        attribute_values,
    ),
    kind=st.sampled_from(list(SpanKind)),
)
def test_arbitrary_attribute_values_never_raise(attributes: dict[str, Any], kind: SpanKind) -> None:
    store = REDStore(span_kinds=list(SpanKind))
    processor = REDSpanProcessor(store)
    span = ReadableSpan(name="x", kind=kind, start_time=T0, end_time=T0 + MS, attributes=attributes)
    processor.on_end(span)
    snap = store.snapshot()
    assert sum(s.calls for s in snap.series) + snap.skipped_spans == 1


def test_service_graph_edges() -> None:
    store, tracer = make()
    emit(
        tracer,
        "GET",
        kind=SpanKind.CLIENT,
        attributes={"peer.service": "payments", "server.address": "10.0.0.1"},
    )
    emit(
        tracer,
        "GET",
        kind=SpanKind.CLIENT,
        attributes={"server.address": "inventory"},
        status=StatusCode.ERROR,
    )
    emit(tracer, "GET", kind=SpanKind.CLIENT, attributes={"net.peer.name": "inventory"})
    emit(tracer, "SELECT", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"})
    emit(tracer, "send", kind=SpanKind.PRODUCER, attributes={"peer.service": "orders-queue"})
    emit(tracer, "GET", kind=SpanKind.CLIENT)  # no peer at all: no edge
    emit(tracer, "GET /", kind=SpanKind.SERVER, attributes={"peer.service": "x"})  # server spans: no edge
    edges = {
        (e.attributes["server"], e.attributes.get("connection_type"), e.attributes["failed"]): e.calls
        for e in store.snapshot().edges
    }
    assert edges == {
        ("payments", None, False): 1,
        ("inventory", None, True): 1,
        ("inventory", None, False): 1,
        ("postgresql", "database", False): 1,
        ("orders-queue", "messaging_system", False): 1,
    }
    assert all(e.attributes["client"] == "shop" for e in store.snapshot().edges)


def edge_calls(snapshot: REDSnapshot) -> dict[tuple[Any, ...], int]:
    return {
        (e.attributes.get("server"), e.attributes.get("connection_type"), e.attributes.get("failed"),
         e.attributes.get("otel.metric.overflow")): e.calls
        for e in snapshot.edges
    }


def test_edges_stay_exact_when_edge_carrying_keys_pass_the_cardinality_limit() -> None:
    """A client span's key carries its edge attributes until the limit; past it the edge is counted on
    its own, so the same span series and edges come out either way."""
    store, tracer = make(store=REDStore(cardinality_limit=2, clock=FakeClock()))
    for host in ("h1", "h2", "h3", "h4"):  # four edge-carrying keys, one span series, one edge
        emit(tracer, "GET", kind=SpanKind.CLIENT, attributes={"peer.service": "x", "server.address": host})
    emit(tracer, "GET", kind=SpanKind.CLIENT, attributes={"peer.service": "x", "server.address": "h4"})
    snap = store.snapshot()
    assert [(s.attributes["span.name"], s.calls) for s in snap.series] == [("GET", 5)]
    assert edge_calls(snap) == {("x", None, False, None): 5}
    assert len(store._admitted_carriers) == 2  # bounded: the others took the separate edge path
    # Past the edge limit too: the third server folds into the edge overflow series, as before.
    for server in ("y", "z"):
        emit(tracer, "GET", kind=SpanKind.CLIENT, attributes={"peer.service": server})
    assert edge_calls(store.snapshot()) == {
        ("x", None, False, None): 5,
        ("y", None, False, None): 1,
        (None, None, None, True): 1,
    }


edge_attribute_values = st.one_of(st.none(), st.sampled_from(["", "a", "b"]), st.integers(0, 2))


@settings(max_examples=200, deadline=None)
@given(
    spans=st.lists(
        st.tuples(
            st.sampled_from([SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.SERVER, SpanKind.INTERNAL]),
            st.sampled_from(["GET", "send", "SELECT"]),
            st.booleans(),
            st.dictionaries(
                st.sampled_from(
                    ["peer.service", "server.address", "net.peer.name", "db.system", "db.system.name",
                     "messaging.system", "http.route"]
                ),
                edge_attribute_values,
            ),
        ),
        max_size=12,
    ),
    limit=st.sampled_from([1, 2, 3, 2000]),
)
def test_edges_equal_the_servicegraph_rule_per_span_at_any_cardinality_limit(
    spans: list[tuple[SpanKind, str, bool, dict[str, Any]]], limit: int
) -> None:
    """Edges derived from the span series at snapshot time count exactly what the rule gives span
    by span: server = peer.service, server.address, net.peer.name or the database system."""
    store, tracer = make(store=REDStore(cardinality_limit=limit, clock=FakeClock()))
    expected: dict[tuple[Any, ...], int] = {}
    for kind, name, failed, attributes in spans:
        emit(tracer, name, kind=kind, attributes=attributes, status=StatusCode.ERROR if failed else None)
        if kind not in (SpanKind.CLIENT, SpanKind.PRODUCER):
            continue
        get = attributes.get
        database = get("db.system") or get("db.system.name")
        server = get("peer.service") or get("server.address") or get("net.peer.name") or database
        if server is None:
            continue
        if database is not None:
            connection_type = "database"
        elif kind is SpanKind.PRODUCER or get("messaging.system") is not None:
            connection_type = "messaging_system"
        else:
            connection_type = None
        edge = (server, connection_type, failed, None)
        expected[edge] = expected.get(edge, 0) + 1
    snap = store.snapshot()
    got = edge_calls(snap)
    assert sum(s.calls for s in snap.series) == len(spans)
    if limit >= 2000:
        assert got == expected
    else:  # the first `limit` edges, the rest in the overflow series: the totals agree
        overflow = got.pop((None, None, None, True), 0)
        assert len(got) <= limit
        assert all(expected.get(edge) == calls for edge, calls in got.items())  # admitted edges: exact
        assert sum(got.values()) + overflow == sum(expected.values())
        assert overflow == 0 or len(got) == limit


def test_snapshot_is_a_copy() -> None:
    store, tracer = make()
    emit(tracer)
    first = store.snapshot()
    emit(tracer)
    assert first.series[0].calls == 1
    assert store.snapshot().series[0].calls == 2
    assert first.time_unix_nano == T0


def test_processor_is_only_the_stores_record_bound_for_the_sdk() -> None:
    """The processor holds no RED state and adds no Python call per span: its on_end is `record`."""
    store = REDStore(span_kinds=(SpanKind.SERVER,), service_graph=False)
    processor = REDSpanProcessor(store)
    assert processor.on_end == store.record
    assert set(vars(processor)) == {"store", "on_end"}
    assert processor.attribute_names == store.attribute_names
    assert "peer.service" not in store.attribute_names  # service graph off: edge attributes unread
    assert "peer.service" in REDStore().attribute_names
    span = ReadableSpan(name="x", kind=SpanKind.CLIENT, start_time=T0, end_time=T0 + MS)
    store.record(span)  # a kind the store does not count
    assert store.snapshot().series == ()


def test_every_consumer_keys_a_series_by_its_identity() -> None:
    """One key for a series: attribute pairs sorted by name, whatever the mapping's order."""
    clock = FakeClock()
    store, tracer = make(store=REDStore(clock=clock))
    emit(tracer, attributes={"http.route": "/a", "http.request.method": "GET"})
    (stats,) = store.snapshot().series
    shuffled = dict(reversed(list(stats.attributes.items())))
    assert list(shuffled) != list(stats.attributes)
    assert series_identity(shuffled) == stats.identity
    assert [name for name, _ in stats.identity] == sorted(stats.attributes)
    merger = REDStreamMerger(store.boundaries)
    merger.add_snapshot(store.snapshot(), (("instance", "a"),))  # first seen: a baseline
    emit(tracer, attributes={"http.route": "/a", "http.request.method": "GET"})
    clock.now += 10**9
    merger.add_snapshot(store.snapshot(), (("instance", "a"),))
    (merged,) = merger.snapshot().series
    assert merged.identity == stats.identity
