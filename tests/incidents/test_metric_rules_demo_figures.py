"""The demo's business and system figures, read from real OTLP exports in the sink (what the view shows)."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from otelpipe.demo.observed import FigureRow, MetricView


def test_business_and_system_figures_from_exported_metrics(sink) -> None:
    view = MetricView(sink.store)
    exporter = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{sink.grpc_port}", insecure=True)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "shop"}))
    meter = provider.get_meter("demo.shop")
    orders = meter.create_counter("shop.orders.created")
    orders.add(3, {"payment_method": "card"})
    orders.add(2, {"payment_method": "paypal"})
    meter.create_counter("shop.revenue", unit="USD").add(120.5)
    amount = meter.create_histogram("shop.order.amount", unit="USD")
    for value in (20.0, 40.0):
        amount.record(value)

    def cpu(options: CallbackOptions) -> list[Observation]:
        return [
            Observation(0.75, {"state": "idle", "cpu": 1}),
            Observation(0.25, {"state": "idle", "cpu": 2}),
        ]

    meter.create_observable_gauge("system.cpu.utilization", callbacks=[cpu])
    assert provider.force_flush(10_000)
    provider.shutdown()
    rows = {row.figure: row for row in view.figure_rows()}
    assert rows["orders created"] == FigureRow("shop", "orders created", 5.0)
    assert rows["revenue"] == FigureRow("shop", "revenue", 120.5, "USD")
    assert rows["mean order amount"].value == 30.0
    assert rows["CPU busy"].value == 0.5
    assert "signups" not in rows  # nothing recorded, nothing shown
