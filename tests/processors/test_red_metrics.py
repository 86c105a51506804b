"""RED store exported through real SDK MetricReaders (in-memory and Prometheus)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    Metric,
    MetricsData,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from prometheus_client import CollectorRegistry, generate_latest

from otelpipe.processors.red import REDSpanProcessor, REDStore
from otelpipe.processors.red_metrics import (
    CALLS_METRIC,
    DURATION_METRIC,
    EDGE_CALLS_METRIC,
    EDGE_CLIENT_METRIC,
    EDGE_FAILED_METRIC,
    EDGE_SERVER_METRIC,
    OVERFLOW_METRIC,
    SCOPE_NAME,
    REDMetricProducer,
    attach_red_producer,
)

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
RESOURCE = Resource.create({"service.name": "shop"})
DELTA = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}


@pytest.fixture
def traced() -> tuple[REDStore, Tracer]:
    store = REDStore(boundaries=(0.01, 0.1, 1.0), cardinality_limit=3)
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(REDSpanProcessor(store))
    return store, provider.get_tracer("test")


@pytest.fixture
def meter_providers() -> Iterator[list[MeterProvider]]:
    made: list[MeterProvider] = []
    yield made
    for provider in made:
        provider.shutdown()


def provide(made: list[MeterProvider], store: REDStore, *readers: Any, unit: str = "ms") -> MeterProvider:
    provider = MeterProvider(metric_readers=list(readers), resource=RESOURCE)
    made.append(provider)
    assert attach_red_producer(provider, REDMetricProducer(store, unit=unit)) == len(readers)
    return provider


def emit(tracer: Tracer, route: str = "/a", duration_ns: int = 5 * MS, error: bool = False) -> None:
    span = tracer.start_span(
        "GET " + route, kind=SpanKind.SERVER, attributes={"http.route": route}, start_time=T0
    )
    if error:
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=T0 + duration_ns)


def red_metrics(data: MetricsData | None) -> dict[str, Metric]:
    assert data is not None
    scopes = [sm for rm in data.resource_metrics for sm in rm.scope_metrics if sm.scope.name == SCOPE_NAME]
    assert len(scopes) == 1
    return {metric.name: metric for metric in scopes[0].metrics}


def by_route(metric: Metric) -> dict[Any, Any]:
    return {point.attributes.get("http.route"): point for point in metric.data.data_points}


def test_cumulative_export_names_units_and_points(
    traced: tuple[REDStore, Tracer], meter_providers: list[MeterProvider]
) -> None:
    store, tracer = traced
    reader = InMemoryMetricReader()
    provide(meter_providers, store, reader)
    emit(tracer, duration_ns=5 * MS)
    emit(tracer, duration_ns=50 * MS)
    metrics = red_metrics(reader.get_metrics_data())
    calls, duration = metrics[CALLS_METRIC], metrics[DURATION_METRIC]
    assert calls.data.is_monotonic  # type: ignore[union-attr]
    assert calls.data.aggregation_temporality == AggregationTemporality.CUMULATIVE
    assert (calls.unit, duration.unit) == ("", "ms")  # the spanmetrics connector's default unit
    assert by_route(calls)["/a"].value == 2
    point = by_route(duration)["/a"]
    assert (point.count, list(point.bucket_counts), list(point.explicit_bounds)) == (
        2,
        [1, 1, 0, 0],
        [10.0, 100.0, 1000.0],
    )
    assert point.sum == pytest.approx(55.0)
    assert (point.min, point.max) == pytest.approx((5.0, 50.0))
    assert point.start_time_unix_nano == store.start_time_unix_nano
    emit(tracer)
    assert by_route(red_metrics(reader.get_metrics_data())[CALLS_METRIC])["/a"].value == 3


def test_seconds_unit_exports_seconds(
    traced: tuple[REDStore, Tracer], meter_providers: list[MeterProvider]
) -> None:
    store, tracer = traced
    reader = InMemoryMetricReader()
    provide(meter_providers, store, reader, unit="s")
    emit(tracer, duration_ns=5 * MS)
    emit(tracer, duration_ns=50 * MS)
    duration = red_metrics(reader.get_metrics_data())[DURATION_METRIC]
    point = by_route(duration)["/a"]
    assert duration.unit == "s"
    assert (list(point.explicit_bounds), point.sum) == ([0.01, 0.1, 1.0], pytest.approx(0.055))
    assert (point.min, point.max) == (0.005, 0.05)


def test_unknown_unit_is_refused(traced: tuple[REDStore, Tracer]) -> None:
    with pytest.raises(ValueError, match="unit must be one of"):
        REDMetricProducer(traced[0], unit="us")


def test_connector_default_boundaries_export_as_its_millisecond_buckets(
    meter_providers: list[MeterProvider],
) -> None:
    store = REDStore()
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(REDSpanProcessor(store))
    reader = InMemoryMetricReader()
    provide(meter_providers, store, reader)
    span = tracer_provider.get_tracer("t").start_span("work", start_time=T0)  # INTERNAL counts too
    span.end(end_time=T0 + 3 * MS)
    point = red_metrics(reader.get_metrics_data())[DURATION_METRIC].data.data_points[0]
    assert list(point.explicit_bounds) == [
        2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0, 10000.0, 15000.0
    ]  # fmt: skip
    assert point.attributes["span.kind"] == "SPAN_KIND_INTERNAL"
    assert list(point.bucket_counts)[:3] == [0, 1, 0]


def test_red_scope_joins_the_sdk_metrics_of_the_same_reader(
    traced: tuple[REDStore, Tracer], meter_providers: list[MeterProvider]
) -> None:
    store, tracer = traced
    reader = InMemoryMetricReader()
    provider = provide(meter_providers, store, reader)
    provider.get_meter("app").create_counter("app.orders").add(4)
    emit(tracer)
    data = reader.get_metrics_data()
    assert data is not None
    (resource_metrics,) = data.resource_metrics
    assert {sm.scope.name for sm in resource_metrics.scope_metrics} == {"app", SCOPE_NAME}
    assert resource_metrics.resource.attributes["service.name"] == "shop"


def test_attach_twice_is_a_noop(
    traced: tuple[REDStore, Tracer], meter_providers: list[MeterProvider]
) -> None:
    store, tracer = traced
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=RESOURCE)
    meter_providers.append(provider)
    producer = REDMetricProducer(store)
    assert attach_red_producer(provider, producer) == 1
    assert attach_red_producer(provider, producer) == 0
    emit(tracer)
    assert by_route(red_metrics(reader.get_metrics_data())[CALLS_METRIC])["/a"].value == 1


def test_delta_reader_gets_differences_and_cumulative_reader_totals(
    traced: tuple[REDStore, Tracer], meter_providers: list[MeterProvider]
) -> None:
    store, tracer = traced
    delta_reader = InMemoryMetricReader(preferred_temporality=DELTA)
    cumulative_reader = InMemoryMetricReader()
    provide(meter_providers, store, delta_reader, cumulative_reader)
    emit(tracer, "/a")
    emit(tracer, "/a")
    first = red_metrics(delta_reader.get_metrics_data())
    assert first[CALLS_METRIC].data.aggregation_temporality == AggregationTemporality.DELTA
    assert by_route(first[CALLS_METRIC])["/a"].value == 2
    first_time = by_route(first[CALLS_METRIC])["/a"].time_unix_nano
    emit(tracer, "/a", duration_ns=500 * MS)
    emit(tracer, "/b")
    second = red_metrics(delta_reader.get_metrics_data())
    calls = by_route(second[CALLS_METRIC])
    assert (calls["/a"].value, calls["/b"].value) == (1, 1)
    assert calls["/a"].start_time_unix_nano == first_time
    histogram = by_route(second[DURATION_METRIC])["/a"]
    assert (histogram.count, list(histogram.bucket_counts)) == (1, [0, 0, 1, 0])
    assert histogram.sum == pytest.approx(500.0)
    third = red_metrics(delta_reader.get_metrics_data())
    assert CALLS_METRIC not in third  # nothing new: no points
    assert by_route(red_metrics(cumulative_reader.get_metrics_data())[CALLS_METRIC])["/a"].value == 3


def test_overflow_series_and_counter(
    traced: tuple[REDStore, Tracer], meter_providers: list[MeterProvider]
) -> None:
    store, tracer = traced  # cardinality_limit=3
    reader = InMemoryMetricReader()
    provide(meter_providers, store, reader)
    for route in ("/1", "/2", "/3", "/4", "/5", "/4"):
        emit(tracer, route)
    metrics = red_metrics(reader.get_metrics_data())
    points = metrics[CALLS_METRIC].data.data_points
    assert len(points) == 4
    overflow = [p for p in points if p.attributes == {"otel.metric.overflow": True}]
    assert [p.value for p in overflow] == [3]
    assert [p.value for p in metrics[OVERFLOW_METRIC].data.data_points] == [3]


def test_histogram_exemplars_carry_span_ids(
    traced: tuple[REDStore, Tracer], meter_providers: list[MeterProvider]
) -> None:
    store, tracer = traced
    reader = InMemoryMetricReader()
    provide(meter_providers, store, reader)
    span = tracer.start_span("GET /a", kind=SpanKind.SERVER, attributes={"http.route": "/a"}, start_time=T0)
    span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=T0 + 20 * MS)
    point = by_route(red_metrics(reader.get_metrics_data())[DURATION_METRIC])["/a"]
    assert point.exemplars
    context = span.get_span_context()
    assert {(e.trace_id, e.span_id, e.value) for e in point.exemplars} == {
        (context.trace_id, context.span_id, 20.0)
    }
    assert any(e.filtered_attributes == {"otelpipe.exemplar.error": True} for e in point.exemplars)


def test_service_graph_metrics(traced: tuple[REDStore, Tracer], meter_providers: list[MeterProvider]) -> None:
    store, tracer = traced
    reader = InMemoryMetricReader()
    provide(meter_providers, store, reader)
    span = tracer.start_span(
        "SELECT", kind=SpanKind.CLIENT, attributes={"db.system": "sqlite"}, start_time=T0
    )
    span.end(end_time=T0 + MS)
    failed = tracer.start_span(
        "GET", kind=SpanKind.CLIENT, attributes={"peer.service": "stock"}, start_time=T0
    )
    failed.set_status(Status(StatusCode.ERROR))
    failed.end(end_time=T0 + 20 * MS)
    metrics = red_metrics(reader.get_metrics_data())
    edges = {p.attributes["server"]: p for p in metrics[EDGE_CALLS_METRIC].data.data_points}
    assert dict(edges["sqlite"].attributes or {}) == {
        "client": "shop",
        "server": "sqlite",
        "connection_type": "database",
        "failed": False,
    }
    assert (edges["sqlite"].value, edges["stock"].value) == (1, 1)
    (failed_point,) = metrics[EDGE_FAILED_METRIC].data.data_points
    assert (failed_point.attributes["server"], failed_point.value) == ("stock", 1)
    for name in (EDGE_SERVER_METRIC, EDGE_CLIENT_METRIC):  # seconds, as the servicegraph connector
        histogram = {p.attributes["server"]: p for p in metrics[name].data.data_points}
        assert metrics[name].unit == "s"
        assert histogram["stock"].sum == pytest.approx(0.02)


def test_reader_without_sdk_instruments_still_gets_red(traced: tuple[REDStore, Tracer]) -> None:
    store, tracer = traced
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=RESOURCE)
    try:
        attach_red_producer(provider, REDMetricProducer(store))
        emit(tracer)
        data = reader.get_metrics_data()
        assert data is not None
        assert data.resource_metrics[0].resource.attributes["service.name"] == "shop"
        assert CALLS_METRIC in red_metrics(data)
    finally:
        provider.shutdown()


def test_prometheus_names_and_labels(
    traced: tuple[REDStore, Tracer], meter_providers: list[MeterProvider]
) -> None:
    store, tracer = traced
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    provide(meter_providers, store, reader)
    emit(tracer, "/a")
    emit(tracer, "/a", error=True)
    text = generate_latest(registry).decode()
    calls = [line for line in text.splitlines() if line.startswith("traces_span_metrics_calls_total{")]
    assert len(calls) == 2
    for label in (
        'service_name="shop"',
        'span_name="GET /a"',
        'span_kind="SPAN_KIND_SERVER"',
        'http_route="/a"',
    ):
        assert all(label in line for line in calls), (label, calls)
    assert any('status_code="STATUS_CODE_ERROR"' in line and line.endswith(" 1.0") for line in calls)
    assert any('status_code="STATUS_CODE_UNSET"' in line for line in calls)
    assert "# TYPE traces_span_metrics_duration_milliseconds histogram" in text
    assert any(
        line.startswith("traces_span_metrics_duration_milliseconds_bucket{") and 'le="10.0"' in line
        for line in text.splitlines()
    )
    assert "otelpipe_red_overflow_spans_total" in text


def test_prometheus_seconds_and_service_graph_names(
    traced: tuple[REDStore, Tracer], meter_providers: list[MeterProvider]
) -> None:
    store, tracer = traced
    registry = CollectorRegistry()
    provide(meter_providers, store, PrometheusMetricReader(registry=registry), unit="s")
    emit(tracer, "/a")
    span = tracer.start_span("GET", kind=SpanKind.CLIENT, attributes={"peer.service": "stock"}, start_time=T0)
    span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=T0 + 20 * MS)
    lines = generate_latest(registry).decode().splitlines()
    assert any(line.startswith("traces_span_metrics_duration_seconds_bucket{") for line in lines)
    for name in (
        "traces_service_graph_request_total",
        "traces_service_graph_request_failed_total",
        "traces_service_graph_request_server_seconds_bucket",
        "traces_service_graph_request_client_seconds_sum",
    ):
        matching = [line for line in lines if line.startswith(name + "{")]
        assert matching, name
        assert all('client="shop"' in line and 'server="stock"' in line for line in matching), matching


def test_broken_store_does_not_break_sdk_collection(meter_providers: list[MeterProvider]) -> None:
    class BrokenStore(REDStore):
        def snapshot(self) -> Any:
            raise RuntimeError("boom")

    reader = InMemoryMetricReader()
    provider = provide(meter_providers, BrokenStore(), reader)
    provider.get_meter("app").create_counter("app.orders").add(1)
    data = reader.get_metrics_data()
    assert data is not None
    names = [m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert names == ["app.orders"]
