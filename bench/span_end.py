"""Cost of REDSpanProcessor on the span path, as ratios against a bare SDK span in the same run.

Rerun: `.venv/bin/python bench/span_end.py [--spans N] [--rounds R] [--big-spans M]`

Prints µs per span (median of R interleaved rounds) for: a bare SDK span (TracerProvider, no
processor), + a no-op SpanProcessor, + REDSpanProcessor, + a naive processor calling the SDK
metrics API (Counter.add + Histogram.record) per span; then 4 threads (exact counts, overhead vs
single thread) and M spans over 100,000 distinct routes with the default cardinality limit
(series count and RSS growth). Targets: RED overhead <= 10 % of a bare span, >= 15x cheaper than
the naive processor, 4-thread overhead <= 2x single-thread, series <= limit + 1, RSS growth < 30 MB.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind, Tracer

from otelpipe.processors.red import REDSpanProcessor, REDStore

# What opentelemetry-instrumentation-flask 0.66b1 sets on a server span by default (legacy names).
FLASK_ATTRIBUTES: dict[str, Any] = {
    "http.method": "GET",
    "http.server_name": "localhost",
    "http.scheme": "http",
    "net.host.name": "localhost",
    "http.host": "localhost",
    "net.host.port": 80,
    "http.target": "/items/3",
    "net.peer.ip": "127.0.0.1",
    "http.user_agent": "bench",
    "http.flavor": "1.1",
    "http.route": "/items/<int:i>",
    "http.status_code": 200,
}
# A leaner span with stable semantic-convention names: a harsher ratio (cheaper bare span).
MINIMAL_ATTRIBUTES: dict[str, Any] = {
    "http.request.method": "GET",
    "http.route": "/items/{id}",
    "http.response.status_code": 200,
    "url.scheme": "http",
    "server.address": "shop.local",
}
ATTRIBUTES = FLASK_ATTRIBUTES
RESOURCE = Resource.create({"service.name": "bench"})


class NoopProcessor(SpanProcessor):
    """The floor any span processor pays: the SDK calling on_start/on_end."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        return None


class NaiveMetricsApiProcessor(SpanProcessor):
    """What one would write first: SDK metrics API calls per span (Counter.add + Histogram.record)."""

    def __init__(self) -> None:
        self.provider = MeterProvider(metric_readers=[InMemoryMetricReader()], resource=RESOURCE)
        meter = self.provider.get_meter("naive")
        self.calls = meter.create_counter("traces.span.metrics.calls")
        self.duration = meter.create_histogram("traces.span.metrics.duration", unit="s")

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        dimensions = {
            "service.name": "bench",
            "span.name": span.name,
            "span.kind": span.kind.name,
            "http.method": str(attributes.get("http.method", attributes.get("http.request.method", ""))),
            "status.code": span.status.status_code.name,
            "http.route": str(attributes.get("http.route", "")),
        }
        self.calls.add(1, dimensions)
        self.duration.record(((span.end_time or 0) - (span.start_time or 0)) / 1e9, dimensions)


def tracer_with(processor: SpanProcessor | None) -> Tracer:
    provider = TracerProvider(resource=RESOURCE)
    if processor is not None:
        provider.add_span_processor(processor)
    return provider.get_tracer("bench")


def run_spans(tracer: Tracer, count: int) -> None:
    attributes = ATTRIBUTES
    start_span = tracer.start_span
    kind = SpanKind.SERVER
    for _ in range(count):
        start_span("GET /items/{id}", kind=kind, attributes=attributes).end()


def time_per_span_us(work: Callable[[], None], count: int) -> float:
    gc.collect()
    started = time.perf_counter_ns()
    work()
    return (time.perf_counter_ns() - started) / count / 1000


def threaded(tracer: Tracer, total: int, threads: int) -> Callable[[], None]:
    def work() -> None:
        workers = [
            threading.Thread(target=run_spans, args=(tracer, total // threads)) for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    return work


def rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # peak RSS only, where /proc is missing

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def series_count(store: REDStore) -> int:
    return len(store.snapshot().series)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--spans", type=int, default=20_000, help="spans per round and configuration")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; the median is reported")
    parser.add_argument("--big-spans", type=int, default=1_000_000, help="spans for the cardinality run")
    parser.add_argument("--routes", type=int, default=100_000, help="distinct routes in the cardinality run")
    parser.add_argument(
        "--attributes",
        choices=("flask", "minimal"),
        default="flask",
        help="span attributes: Flask instrumentation's default set, or 5 stable-semconv ones",
    )
    args = parser.parse_args(argv)
    n = args.spans
    global ATTRIBUTES
    ATTRIBUTES = FLASK_ATTRIBUTES if args.attributes == "flask" else MINIMAL_ATTRIBUTES

    red_store = REDStore()
    tracers = {
        "bare SDK span": tracer_with(None),
        "+ no-op processor": tracer_with(NoopProcessor()),
        "+ REDSpanProcessor": tracer_with(REDSpanProcessor(red_store)),
        "+ naive metrics-API processor": tracer_with(NaiveMetricsApiProcessor()),
    }
    thread_store = REDStore()
    threaded_tracers = {
        "bare, 4 threads": tracer_with(None),
        "RED, 4 threads": tracer_with(REDSpanProcessor(thread_store)),
    }
    for tracer in [*tracers.values(), *threaded_tracers.values()]:
        run_spans(tracer, 2000)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in [*tracers, *threaded_tracers]}
    for _ in range(args.rounds):
        for name, tracer in tracers.items():
            samples[name].append(time_per_span_us(lambda tracer=tracer: run_spans(tracer, n), n))
        for name, tracer in threaded_tracers.items():
            samples[name].append(time_per_span_us(threaded(tracer, n, 4), n))
    median = {name: statistics.median(values) for name, values in samples.items()}

    bare, noop = median["bare SDK span"], median["+ no-op processor"]
    red, naive = median["+ REDSpanProcessor"], median["+ naive metrics-API processor"]
    print(
        f"python {sys.version.split()[0]}, {args.attributes} attributes, "
        f"{n} spans x {args.rounds} rounds (median), µs per span"
    )
    for name in tracers:
        print(f"  {name:32s} {median[name]:7.2f}  ({median[name] / bare:5.2f}x bare)")
    red_overhead, naive_overhead = red - bare, naive - bare
    print(
        f"RED overhead vs bare:        {red_overhead:+.2f} µs = {100 * red_overhead / bare:+.1f} %  (target <= 10 %)"
    )
    print(f"RED minus no-op processor:   {red - noop:+.2f} µs  (aim <= 0.5 µs)")
    ratio = naive_overhead / red_overhead if red_overhead > 0 else float("inf")
    print(f"naive overhead / RED overhead: {ratio:.1f}x  (target >= 15x)")

    bare4, red4 = median["bare, 4 threads"], median["RED, 4 threads"]
    expected = args.rounds * (n // 4) * 4 + 2000
    counted = sum(s.calls for s in thread_store.snapshot().series)
    overhead4 = red4 - bare4
    print(f"4 threads: bare {bare4:.2f} µs, RED {red4:.2f} µs per span; overhead {overhead4:+.2f} µs")
    verdict = "exact" if counted == expected else "MISMATCH"
    print(f"  counts {counted} of {expected} ({verdict})")
    if red_overhead > 0:
        print(f"  overhead ratio 4 threads / 1 thread: {overhead4 / red_overhead:.2f}x  (target <= 2x)")

    big_store = REDStore(cardinality_limit=2000)
    big_tracer = tracer_with(REDSpanProcessor(big_store))
    gc.collect()
    rss_before = rss_mb()
    started = time.perf_counter()
    kind = SpanKind.SERVER
    routes = [f"/route/{i}" for i in range(args.routes)]
    for i in range(args.big_spans):
        route = routes[i % args.routes]
        big_tracer.start_span(route, kind=kind, attributes={"http.route": route}).end()
    elapsed = time.perf_counter() - started
    del routes
    gc.collect()
    rss_after = rss_mb()
    snapshot = big_store.snapshot()
    print(
        f"{args.big_spans} spans over {args.routes} routes, limit 2000: {len(snapshot.series)} series "
        f"(<= 2001), {snapshot.overflow_spans} spans in overflow, RSS {rss_before:.1f} -> {rss_after:.1f} MB "
        f"({rss_after - rss_before:+.1f} MB, target < 30), {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
