"""Export drop counting: queue-full and failed batches are counted exactly, with nothing per kept span."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelpipe.processors.export_drops import (
    DROPPED_METRIC,
    EXPORTED_METRIC,
    DropCountingBatchLogRecordProcessor,
    DropCountingBatchSpanProcessor,
    ExportDropCounts,
    register_export_metrics,
)


class GatedExporter(InMemorySpanExporter):
    """Blocks every export until released, so the processor's queue fills up."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        assert self.gate.wait(30), "test never released the exporter"
        return super().export(spans)


class FailingExporter(SpanExporter):
    def __init__(self, *, raise_error: bool = False) -> None:
        self.raise_error = raise_error
        self.batches = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches += 1
        if self.raise_error:
            raise ConnectionError("collector gone")
        return SpanExportResult.FAILURE


def _spans(processor: DropCountingBatchSpanProcessor, count: int, provider: TracerProvider | None = None) -> None:
    if provider is None:
        provider = TracerProvider()
        provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for i in range(count):
        tracer.start_span(f"span {i}").end()


def test_full_queue_drops_are_counted_and_every_span_is_either_exported_or_dropped() -> None:
    counts = ExportDropCounts()
    exporter = GatedExporter()
    processor = DropCountingBatchSpanProcessor(
        exporter, counts, max_queue_size=4, max_export_batch_size=2, schedule_delay_millis=60_000
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    _spans(processor, 2, provider)  # a full batch wakes the worker, which blocks in export
    assert exporter.entered.wait(30)
    _spans(processor, 38, provider)  # 4 fit in the queue, 34 are dropped
    exporter.gate.set()
    assert processor.force_flush()
    assert len(exporter.get_finished_spans()) == 6
    assert counts.dropped() == {("traces", "queue_full"): 34}
    assert counts.exported() == {"traces": 6}
    processor.shutdown()


def test_failed_batches_are_counted_once_per_batch_for_every_item() -> None:
    for raise_error in (False, True):
        counts = ExportDropCounts()
        exporter = FailingExporter(raise_error=raise_error)
        processor = DropCountingBatchSpanProcessor(exporter, counts, max_export_batch_size=5)
        _spans(processor, 12)
        processor.force_flush()
        assert counts.dropped() == {("traces", "export_failed"): 12}
        assert exporter.batches == 3  # 5 + 5 + 2
        assert counts.exported() == {}
        processor.shutdown()


def _sdk_minor() -> tuple[int, int]:
    from importlib.metadata import version

    major, minor = version("opentelemetry-sdk").split(".")[:2]
    return int(major), int(minor)


@pytest.mark.skipif(
    _sdk_minor() < (1, 45), reason="the SDK reports items offered after shutdown from 1.45 (drop_items 'already_shutdown')"
)
def test_spans_after_shutdown_are_counted_and_unsampled_spans_are_not_offered() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    counts = ExportDropCounts()
    exporter = InMemorySpanExporter()
    processor = DropCountingBatchSpanProcessor(exporter, counts)
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("never sampled").end()
    processor.shutdown()
    _spans(processor, 3)
    assert counts.dropped() == {("traces", "already_shutdown"): 3}
    assert exporter.get_finished_spans() == ()


def test_log_records_exported_and_failed_are_counted() -> None:
    class Failing(InMemoryLogRecordExporter):
        def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
            return LogRecordExportResult.FAILURE

    for exporter, expected_dropped, expected_exported in (
        (InMemoryLogRecordExporter(), {}, {"logs": 4}),
        (Failing(), {("logs", "export_failed"): 4}, {}),
    ):
        counts = ExportDropCounts()
        provider = LoggerProvider()
        processor = DropCountingBatchLogRecordProcessor(exporter, counts)
        provider.add_log_record_processor(processor)
        logger = provider.get_logger("t")
        for i in range(4):
            logger.emit(LogRecord(body=f"line {i}"))
        provider.force_flush()
        assert counts.dropped() == expected_dropped
        assert counts.exported() == expected_exported
        provider.shutdown()


def test_counts_are_reported_as_otelpipe_metrics() -> None:
    counts = ExportDropCounts()
    counts.drop("traces", "queue_full", 3)
    counts.drop("logs", "export_failed", 2)
    counts.export("traces", 10)
    reader = InMemoryMetricReader()
    register_export_metrics(MeterProvider(metric_readers=[reader]).get_meter("otelpipe.export"), counts)
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        (metric.name, tuple(sorted(point.attributes.items()))): point.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        for point in metric.data.data_points
    }
    assert points[(DROPPED_METRIC, (("error.type", "queue_full"), ("signal", "traces")))] == 3
    assert points[(DROPPED_METRIC, (("error.type", "export_failed"), ("signal", "logs")))] == 2
    assert points[(DROPPED_METRIC, (("error.type", "queue_full"), ("signal", "logs")))] == 0
    assert points[(EXPORTED_METRIC, (("signal", "traces"),))] == 10
    assert points[(EXPORTED_METRIC, (("signal", "logs"),))] == 0
