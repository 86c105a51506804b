"""Cost of the fleet path per push: a worker's RED encoding, and the merger's work on it.

A prefork worker pushes its RED to the master every OTELPIPE_PREFORK_PUSH_INTERVAL (1 s) on a
background thread; the master (or a gateway) merges each push. Both costs are per push, never per
request. Worker side, in the same run: the SDK's way (collect through a MeterProvider with the RED
producer, then the SDK's OTLP encoder: the baseline) against otelpipe.fleet.push's direct encoder
(every series, i.e. a keepalive round; ordinary rounds send only the changed ones). Merger side: a
direct push merged, against parsing the same bytes alone (what any OTLP receiver pays).

    .venv/bin/python bench/fleet_merge.py

Prints figures; no pass/fail.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from otelpipe.fleet import REDStreamMerger
from otelpipe.fleet.push import encode_snapshot
from otelpipe.processors.red import REDSpanProcessor, REDStore
from otelpipe.processors.red_metrics import REDMetricProducer, attach_red_producer

ROUNDS = 7


def _median_us(work: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(repeat):
            work()
        samples.append((time.perf_counter() - started) / repeat * 1e6)
    return statistics.median(samples)


def _worker(routes: int) -> tuple[REDStore, InMemoryMetricReader]:
    store = REDStore()
    tracer = TracerProvider(resource=Resource({"service.name": "bench"}))
    tracer.add_span_processor(REDSpanProcessor(store))
    spans = tracer.get_tracer("bench")
    for route in range(routes):
        for _ in range(3):
            with spans.start_as_current_span(f"GET /r{route}", kind=SpanKind.SERVER):
                pass
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=Resource({"service.name": "bench"}))
    attach_red_producer(provider, REDMetricProducer(store))
    return store, reader


def main() -> int:
    print("series  SDK collect+encode µs  direct encode µs  (ratio)  |  merge one direct push µs  vs parse")
    resource = {"service.name": "bench", "process.pid": 1}
    for routes in (10, 100, 1000):
        store, reader = _worker(routes)
        sdk = _median_us(
            lambda reader=reader: encode_metrics(reader.get_metrics_data()).SerializeToString(), 10
        )

        def direct(store: REDStore = store) -> bytes:
            snapshot = store.snapshot()
            return encode_snapshot(snapshot, resource, list(snapshot.series)).SerializeToString()

        encoded = _median_us(direct, 10)
        body = direct()
        merger = REDStreamMerger(stale_after_s=3600)
        first = ExportMetricsServiceRequest()
        first.ParseFromString(body)
        merger.add_request(first)  # streams known: later pushes are the steady state

        def merge(merger: REDStreamMerger = merger, body: bytes = body) -> None:
            parsed = ExportMetricsServiceRequest()
            parsed.ParseFromString(body)
            merger.add_request(parsed)

        def parse(body: bytes = body) -> None:
            ExportMetricsServiceRequest().ParseFromString(body)

        merged = _median_us(merge, 10)
        parsed = _median_us(parse, 10)
        print(
            f"{routes:6d}  {sdk:20.0f}  {encoded:16.0f}  ({sdk / encoded:4.1f}x)  |"
            f"  {merged:24.0f}  {merged / parsed:5.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
