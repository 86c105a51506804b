"""REDPusher: a worker's RED to its parent's loopback receiver, changed series only, keepalive rounds."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from otelpipe.fleet import REDStreamMerger
from otelpipe.fleet.push import REDPusher
from otelpipe.processors.red import REDSpanProcessor, REDStore
from otelpipe.sink import OTLPReceiver


def test_pushes_reach_the_merger_with_only_changed_series_between_keepalives():
    merger = REDStreamMerger()
    store = REDStore()  # a worker forked after its parent started merging
    provider = TracerProvider(resource=Resource({"service.name": "pushed"}))
    provider.add_span_processor(REDSpanProcessor(store))
    tracer = provider.get_tracer("test")
    received: list[int] = []

    def on_request(request) -> None:
        received.append(sum(len(m.histogram.data_points) for rm in request.request.resource_metrics
                            for sm in rm.scope_metrics for m in sm.metrics))  # fmt: skip
        merger.receive(request)

    receiver = OTLPReceiver(on_request, grpc_port=None, http_port=0).start()
    try:
        pusher = REDPusher(
            store.snapshot,
            {"service.name": "pushed", "process.pid": 42},
            host="127.0.0.1",
            port=receiver.http_port,
            interval_s=3600,  # pushed by hand below
            keepalive=3,
        )
        for name in ("GET /a", "GET /b"):
            with tracer.start_as_current_span(name, kind=SpanKind.SERVER):
                pass
        assert pusher.push()  # round 0: keepalive, everything
        with tracer.start_as_current_span("GET /a", kind=SpanKind.SERVER):
            pass
        assert pusher.push()  # round 1: only /a changed
        assert pusher.push()  # round 2: nothing changed, nothing sent
        assert pusher.push()  # round 3: keepalive again
        assert received == [2, 1, 2]
        calls = {s.attributes["span.name"]: s.calls for s in merger.snapshot().series}
        assert calls == {"GET /a": 2, "GET /b": 1}  # the worker started after the merger: all counted
    finally:
        receiver.stop()


def test_a_failed_push_is_counted_and_the_next_sends_everything():
    store = REDStore()
    pusher = REDPusher(store.snapshot, {}, host="127.0.0.1", port=1, interval_s=3600, timeout_s=0.5)
    provider = TracerProvider()
    provider.add_span_processor(REDSpanProcessor(store))
    with provider.get_tracer("t").start_as_current_span("x", kind=SpanKind.SERVER):
        pass
    assert pusher.push() is False  # nothing listens on port 1
    assert pusher.failures == 1
