"""MetricSnapshotReader on a real SDK MeterProvider: every instrument kind, any scope, beside other readers."""

from __future__ import annotations

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from otelpipe._sdk import add_metric_reader
from otelpipe.processors.metric_snapshot import MetricSnapshot, MetricSnapshotReader


def test_snapshot_holds_counters_updowncounters_gauges_and_histograms_from_any_scope() -> None:
    reader, other = MetricSnapshotReader(), InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[other], resource=Resource.create({"service.name": "shop"}))
    add_metric_reader(provider, reader)  # public from SDK 1.43; the shim covers 1.42
    shop, infra = provider.get_meter("shop"), provider.get_meter("infra")
    orders = shop.create_counter("shop.orders.created")
    orders.add(3, {"channel": "web"})
    orders.add(2, {"channel": "app"})
    queue = shop.create_up_down_counter("shop.queue.length")
    queue.add(5)
    queue.add(-2)
    shop.create_gauge("shop.temperature").set(21.5, {"room": "a"})
    amount = shop.create_histogram("shop.order.amount", explicit_bucket_boundaries_advisory=[10.0, 100.0])
    for value in (5.0, 50.0, 500.0, 60.0):
        amount.record(value)

    def load(options: CallbackOptions) -> list[Observation]:
        return [Observation(0.42, {"cpu": 1})]

    infra.create_observable_gauge("system.load", callbacks=[load])

    snapshot = reader.snapshot()
    assert snapshot.service == "shop"
    by_channel = {p.attributes["channel"]: p.value for p in snapshot.points["shop.orders.created"]}
    assert by_channel == {"web": 3.0, "app": 2.0}
    assert {p.kind for p in snapshot.points["shop.orders.created"]} == {"counter"}
    (queue_point,) = snapshot.points["shop.queue.length"]
    assert (queue_point.kind, queue_point.value) == ("updowncounter", 3.0)
    (gauge,) = snapshot.points["shop.temperature"]
    assert (gauge.kind, gauge.value, gauge.attributes) == ("gauge", 21.5, {"room": "a"})
    (histogram,) = snapshot.points["shop.order.amount"]
    assert histogram.kind == "histogram" and histogram.count == 4 and histogram.value == 615.0
    assert histogram.boundaries == (10.0, 100.0) and histogram.bucket_counts == (1, 2, 1)
    (load_point,) = snapshot.points["system.load"]
    assert load_point.scope == "infra" and load_point.value == 0.42
    assert reader.collections == 1 and reader.last_collection_s > 0

    # cumulative: the next snapshot carries totals, and the other reader still gets everything
    orders.add(1, {"channel": "web"})
    again = reader.snapshot()
    assert {p.attributes["channel"]: p.value for p in again.points["shop.orders.created"]}["web"] == 4.0
    exported = other.get_metrics_data()
    assert exported is not None
    names = {m.name for rm in exported.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {"shop.orders.created", "shop.order.amount", "system.load"} <= names
    provider.shutdown()


def test_unregistered_reader_gives_an_empty_snapshot() -> None:
    snapshot = MetricSnapshotReader().snapshot()
    assert snapshot.points == {} and snapshot.service == ""
    assert list(MetricSnapshot.from_metrics_data(None)) == []


def test_a_child_forked_during_a_collection_can_still_collect() -> None:
    import os

    reader = MetricSnapshotReader()
    provider = MeterProvider()
    add_metric_reader(provider, reader)  # public from SDK 1.43; the shim covers 1.42
    provider.get_meter("shop").create_counter("shop.orders.created").add(1)
    with reader._lock:  # as if the parent's evaluation thread were collecting at fork()
        pid = os.fork()
        if pid == 0:  # child: must not block on the inherited lock
            code = 0 if reader.snapshot().points.get("shop.orders.created") else 1
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    provider.shutdown()
