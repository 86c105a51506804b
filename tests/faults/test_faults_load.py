"""Scenarios 4-5: many threads through the RED processor, and a cardinality attack.

Counts stay exact under 8 concurrent threads; unique URL paths and user agents (with an operator
mistake that makes them RED dimensions) keep the store at the limit plus one overflow series, and
the OTLP payload of the exported RED metrics stops growing once the limit is reached.
"""

from __future__ import annotations

import threading
import time

from flask import Flask
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelpipe.processors.red import REDSpanProcessor, REDStore
from otelpipe.processors.red_metrics import REDMetricProducer, attach_red_producer

THREADS = 8
SPANS_PER_THREAD = 4_000  # scaled down from the 100,000 (see bench/soak.py for figures)
ROUTES = ("/a", "/b", "/c", "/d")


def test_eight_threads_count_exactly():
    store = REDStore()
    provider = TracerProvider(resource=Resource.create({"service.name": "load"}))
    provider.add_span_processor(REDSpanProcessor(store))
    tracer = provider.get_tracer("load")
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(worker: int) -> None:
        try:
            start.wait(10)
            for i in range(SPANS_PER_THREAD):
                span = tracer.start_span("GET", kind=SpanKind.SERVER)
                span.set_attribute("http.route", ROUTES[i % len(ROUTES)])
                span.set_attribute("http.response.status_code", 500 if i % 10 == 0 else 200)
                if worker % 2:
                    span.set_status(Status(StatusCode.OK))
                span.end()
        except BaseException as exc:  # surfaced below: a thread must not die silently
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert not any(thread.is_alive() for thread in threads)

    snapshot = store.snapshot()
    total = THREADS * SPANS_PER_THREAD
    assert sum(s.calls for s in snapshot.series) == total
    assert snapshot.skipped_spans == 0 and snapshot.overflow_spans == 0
    per_route: dict[object, int] = {}
    for series in snapshot.series:
        per_route[series.attributes["http.route"]] = (
            per_route.get(series.attributes["http.route"], 0) + series.calls
        )
        assert sum(series.bucket_counts) == series.calls
    assert per_route == {route: total // len(ROUTES) for route in ROUTES}
    # every tenth span is a 5xx: an error where the status was left unset (even workers), while
    # an explicit OK status (odd workers) wins, as in the Collector's spanmetrics
    assert sum(s.errors for s in snapshot.series) == total // 10 // 2


def _payload_bytes(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    assert data is not None
    return len(encode_metrics(data).SerializeToString())


def test_cardinality_attack_stays_at_the_limit():
    limit = 50
    store = REDStore(
        cardinality_limit=limit,
        dimensions=("url.path", "http.target", "user_agent.original", "http.user_agent"),
    )
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "attacked"}))
    tracer_provider.add_span_processor(REDSpanProcessor(store))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], resource=tracer_provider.resource)
    assert attach_red_producer(meter_provider, REDMetricProducer(store)) == 1

    app = Flask(__name__)

    @app.get("/<path:anything>")
    def catch_all(anything: str) -> str:
        return "not found", 404

    FlaskInstrumentor().instrument_app(app, tracer_provider=tracer_provider)
    try:
        client = app.test_client()
        sizes = []
        sent = 0
        deadline = time.monotonic() + 60
        for batch in (limit * 2, limit * 10):
            while sent < batch and time.monotonic() < deadline:
                client.get(f"/probe/{sent}", headers={"User-Agent": f"scanner/{sent}"})
                sent += 1
            sizes.append(_payload_bytes(reader))
        assert sent == limit * 10
    finally:
        FlaskInstrumentor().uninstrument_app(app)

    snapshot = store.snapshot()
    assert len(snapshot.series) <= limit + 1
    overflow = [s for s in snapshot.series if s.attributes.get("otel.metric.overflow") is True]
    assert len(overflow) == 1
    assert sum(s.calls for s in snapshot.series) == sent, "overflowed spans are still counted"
    assert snapshot.overflow_spans == sent - (limit)
    # Once at the limit, 8x more unique requests must not grow the exported payload (exemplars and
    # counters change values, not the number of points).
    assert sizes[1] <= sizes[0] * 1.1, sizes
