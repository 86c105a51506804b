"""Batch export processors that count what never reaches the collector, at no cost per span.

The SDK counts dropped spans and logs only when `OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true`,
and that switch also turns on its per-span tracer metrics (`otel.sdk.span.started`,
`otel.sdk.span.live`, ...): about a dozen `Counter.add` calls per request, a tenth of a small
request's time. The drops themselves are visible without them. The SDK's `BatchProcessor` reports
to a `ProcessorMetricsT` object only when an item is dropped (`drop_items`, with
`error_type` `queue_full` or `already_shutdown`) and once per batch (`finish_items`), and calls the
exporter once per batch, so:

- `DropCountingBatchSpanProcessor` / `DropCountingBatchLogRecordProcessor` are the SDK's batch
  processors built with an `ExportDropCounts` sink in place of the SDK's metrics object (queue
  full, already shut down; nothing happens per span on the normal path), and
- `CountingExporter` wraps the exporter and counts items of batches it exported and of batches
  that failed (a FAILURE result or an exception), once per batch.

A queue-full drop is counted as the SDK decides it: an item offered while the queue holds
`max_queue_size` items (the oldest is discarded). If the export thread takes a batch at that very
instant nothing is lost but one drop is still counted, so the count can exceed the loss, never
fall short of it.

`register_export_metrics` shows the counts as `otelpipe.export.dropped{signal, error.type}` and
`otelpipe.export.exported{signal}` (observable counters, read when a reader collects).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk._shared_internal import BatchProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otelpipe.processors.fork_safety import hold_across_fork

__all__ = [
    "DROPPED_METRIC",
    "EXPORTED_METRIC",
    "CountingExporter",
    "DropCountingBatchLogRecordProcessor",
    "DropCountingBatchSpanProcessor",
    "ExportDropCounts",
    "register_export_metrics",
]

Signal = Literal["traces", "logs"]
DROPPED_METRIC = "otelpipe.export.dropped"
EXPORTED_METRIC = "otelpipe.export.exported"
EXPORT_FAILED = "export_failed"


class ExportDropCounts:
    """Items dropped (per signal and reason) and exported (per signal) since start; thread-safe.

    Written by app threads only when a queue is full, and by export threads once per batch.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dropped: dict[tuple[str, str], int] = {}
        self._exported: dict[str, int] = {}

    def drop(self, signal: str, reason: str, count: int) -> None:
        with self._lock:
            self._dropped[(signal, reason)] = self._dropped.get((signal, reason), 0) + count

    def export(self, signal: str, count: int) -> None:
        with self._lock:
            self._exported[signal] = self._exported.get(signal, 0) + count

    def dropped(self) -> dict[tuple[str, str], int]:
        """{(signal, reason): items}; reasons `queue_full`, `already_shutdown`, `export_failed`."""
        with self._lock:
            return dict(self._dropped)

    def exported(self) -> dict[str, int]:
        """{signal: items} in batches the exporter reported as exported."""
        with self._lock:
            return dict(self._exported)


class _DropMetrics:
    """The SDK's `ProcessorMetricsT`: called per dropped item and per batch, never per kept item."""

    def __init__(self, counts: ExportDropCounts, signal: Signal) -> None:
        self._counts = counts
        self._signal = signal

    def register_queue_size(self, get_queue_size: Callable[[], int]) -> None:
        """Queue length is not exported; drops are what tells an operator the queue is too small."""

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        self._counts.drop(self._signal, error_type, count)

    def finish_items(self, count: int, error: Exception | None = None) -> None:
        """Counted by `CountingExporter` instead, where the outcome of the batch is known.

        SDK 1.43-1.44 pass the batch's error too; 1.45 only the count.
        """


class CountingExporter:
    """Forwards to a span or log exporter and counts each batch's items as exported or failed.

    An exception from the exporter is counted and re-raised, so the batch processor logs it as it
    would without the wrapper. `before_export(batch)` runs first, in the export thread (span
    redaction, otelpipe.processors.span_redaction.ExportRedaction); if it raises, the batch is
    not exported and counts as failed.
    """

    def __init__(
        self,
        exporter: Any,
        counts: ExportDropCounts,
        signal: Signal,
        before_export: Callable[[Sequence[Any]], None] | None = None,
    ) -> None:
        self.exporter = exporter
        self.before_export = before_export
        self._counts = counts
        self._signal = signal
        self._ok = (SpanExportResult.SUCCESS, LogRecordExportResult.SUCCESS)
        # held while a batch is exported, and by a fork()ing thread (fork_safety): no export is then
        # inside gRPC at fork(), so grpcio resets its channels for the child instead of leaving
        # them waiting forever on the parent's call
        self._in_flight = threading.Lock()
        hold_across_fork(self, "_in_flight")
        try:
            self._shutdown_takes_timeout = "timeout_millis" in inspect.getfullargspec(exporter.shutdown).args
        except TypeError:  # a builtin or C callable: call it without arguments
            self._shutdown_takes_timeout = False

    def export(self, batch: Sequence[Any]) -> Any:
        try:
            if self.before_export is not None:
                self.before_export(batch)
            with self._in_flight:
                result = self.exporter.export(batch)
        except Exception:
            self._counts.drop(self._signal, EXPORT_FAILED, len(batch))
            raise
        if result in self._ok:
            self._counts.export(self._signal, len(batch))
        else:
            self._counts.drop(self._signal, EXPORT_FAILED, len(batch))
        return result

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Passes the batch processor's remaining shutdown time on when the exporter accepts it."""
        if self._shutdown_takes_timeout:
            self.exporter.shutdown(timeout_millis=timeout_millis)
        else:
            self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        flush = getattr(self.exporter, "force_flush", None)
        return bool(flush(timeout_millis)) if flush is not None else True


def _settings(
    sdk_class: Any, queue: int | None, delay: float | None, batch: int | None, timeout: float | None
) -> tuple[int, float, int, float]:
    """Arguments resolved and checked exactly as the SDK class does (its `OTEL_BSP_*`/`OTEL_BLRP_*` defaults)."""
    queue = queue or sdk_class._default_max_queue_size()
    delay = delay or sdk_class._default_schedule_delay_millis()
    batch = batch or sdk_class._default_max_export_batch_size()
    timeout = timeout or sdk_class._default_export_timeout_millis()
    sdk_class._validate_arguments(queue, delay, batch)
    return int(queue), float(delay), int(batch), float(timeout)  # type: ignore[arg-type]


class DropCountingBatchSpanProcessor(BatchSpanProcessor):
    """`BatchSpanProcessor` with the same defaults (`OTEL_BSP_*`), counting drops in `counts`.

    `before_export` runs on each batch in the export thread before the exporter sees it.
    """

    def __init__(  # BatchSpanProcessor's own parameters, plus counts and before_export
        self,
        span_exporter: SpanExporter,
        counts: ExportDropCounts,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        before_export: Callable[[Sequence[Any]], None] | None = None,
    ) -> None:
        self.before_export = before_export
        # Not super().__init__: that would start a worker thread around the SDK's metrics object.
        queue, delay, batch, timeout = _settings(
            BatchSpanProcessor, max_queue_size, schedule_delay_millis, max_export_batch_size, export_timeout_millis
        )
        self._batch_processor = BatchProcessor(
            CountingExporter(span_exporter, counts, "traces", before_export),
            delay,
            batch,
            timeout,
            queue,
            "Span",
            _DropMetrics(counts, "traces"),
        )


class DropCountingBatchLogRecordProcessor(BatchLogRecordProcessor):
    """`BatchLogRecordProcessor` with the same defaults (`OTEL_BLRP_*`), counting drops in `counts`."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        counts: ExportDropCounts,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        max_queue_size: int | None = None,
    ) -> None:
        queue, delay, batch, timeout = _settings(
            BatchLogRecordProcessor, max_queue_size, schedule_delay_millis, max_export_batch_size, export_timeout_millis
        )
        self._batch_processor: BatchProcessor[ReadableLogRecord] = BatchProcessor(
            CountingExporter(exporter, counts, "logs"),
            delay,
            batch,
            timeout,
            queue,
            "Log",
            _DropMetrics(counts, "logs"),
        )


def span_processor_factory(
    counts: ExportDropCounts, before_export: Callable[[], Callable[[Sequence[Any]], None]] | None = None
) -> Callable[[SpanExporter], BatchSpanProcessor]:
    """What `_initialize_components(export_span_processor=...)` calls once per span exporter.

    `before_export()` makes each processor's own batch hook (one per export thread).
    """

    def build(span_exporter: SpanExporter, *args: Any, **kwargs: Any) -> BatchSpanProcessor:
        hook = before_export() if before_export is not None else None
        return DropCountingBatchSpanProcessor(span_exporter, counts, before_export=hook)

    return build


def log_processor_factory(counts: ExportDropCounts) -> Callable[[LogRecordExporter], BatchLogRecordProcessor]:
    """What `_initialize_components(export_log_record_processor=...)` calls once per log exporter."""

    def build(exporter: LogRecordExporter, *args: Any, **kwargs: Any) -> BatchLogRecordProcessor:
        return DropCountingBatchLogRecordProcessor(exporter, counts)

    return build


def register_export_metrics(meter: Meter, counts: ExportDropCounts) -> None:
    """`otelpipe.export.dropped` and `otelpipe.export.exported`, read from `counts` at collection time.

    Both signals are always reported (0 until something happens), so an alert can rely on the series.
    """

    def dropped(_options: CallbackOptions) -> Iterable[Observation]:
        current = counts.dropped()
        for signal in ("traces", "logs"):
            current.setdefault((signal, "queue_full"), 0)
        return [Observation(n, {"signal": s, "error.type": r}) for (s, r), n in sorted(current.items())]

    def exported(_options: CallbackOptions) -> Iterable[Observation]:
        current = counts.exported()
        return [Observation(current.get(signal, 0), {"signal": signal}) for signal in ("traces", "logs")]

    meter.create_observable_counter(
        DROPPED_METRIC,
        callbacks=[dropped],
        unit="{item}",
        description="Spans and log records that never reached the exporter's destination: queue full, "
        "processor already shut down, or export failed (counted once per batch).",
    )
    meter.create_observable_counter(
        EXPORTED_METRIC,
        callbacks=[exported],
        unit="{item}",
        description="Spans and log records in batches the exporter reported as exported.",
    )
