"""A pull MetricReader that hands metric rules the app's current metric points as a plain snapshot.

Why a reader: every instrument the app (or an instrumentation such as system-metrics) records
through the OpenTelemetry metrics API already aggregates inside the SDK; a reader registered on the
same MeterProvider sees all of it, from every scope, with no cost on the measurement path. This one
never exports and runs no thread: `snapshot()` collects on the caller's thread (the evaluation
tick), and the SDK's other readers keep their own schedule. What one collection costs is the
SDK's: observable callbacks run once per reader collection (psutil calls for system metrics),
then one point per series is copied here.

Temporality is cumulative for every instrument (the SDK default), so rates come from differences
between ticks and a restarted counter shows as a new start time. Exponential histograms are left
out (explicit-bucket histograms only); memory is bounded by the SDK's per-instrument cardinality
limit (2000 series, then one `otel.metric.overflow` series).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    MetricReader,
    MetricsData,
    Sum,
)

from otelpipe.processors.red_snapshot import AttributeValue

__all__ = ["MetricPoint", "MetricSnapshot", "MetricSnapshotReader", "PointKind"]

PointKind = Literal["counter", "updowncounter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One series of one metric at collection time (cumulative)."""

    metric: str
    kind: PointKind  # counter = monotonic sum, updowncounter = non-monotonic sum
    attributes: Mapping[str, AttributeValue]
    start_time_unix_nano: int
    time_unix_nano: int
    value: float  # sum or gauge value; for histograms the sum of observations
    count: int = 0  # histograms: observations since start
    boundaries: tuple[float, ...] = ()
    bucket_counts: tuple[int, ...] = ()  # per bucket, one more than boundaries (+Inf)
    scope: str = ""
    identity: tuple[tuple[str, AttributeValue], ...] = ()  # sorted attributes: the series key, built once


@dataclass(frozen=True, slots=True)
class MetricSnapshot:
    """Every point of one collection, by metric name, plus the resource's service name."""

    time_unix_nano: int
    service: str
    points: Mapping[str, tuple[MetricPoint, ...]] = field(default_factory=dict)

    def __iter__(self) -> Iterator[MetricPoint]:
        for points in self.points.values():
            yield from points

    @classmethod
    def from_metrics_data(cls, data: MetricsData | None, now_unix_nano: int | None = None) -> MetricSnapshot:
        """Flatten SDK metrics data; points of unsupported types (exponential histograms) are skipped."""
        at = time.time_ns() if now_unix_nano is None else now_unix_nano
        service = ""
        by_name: dict[str, list[MetricPoint]] = {}
        for resource_metrics in data.resource_metrics if data is not None else ():
            service = service or str(resource_metrics.resource.attributes.get("service.name", ""))
            for scope_metrics in resource_metrics.scope_metrics:
                scope = scope_metrics.scope.name
                for metric in scope_metrics.metrics:
                    points = by_name.setdefault(metric.name, [])
                    points.extend(_points(metric.name, metric.data, scope))
        return cls(at, service, {name: tuple(points) for name, points in by_name.items() if points})


def _points(name: str, data: Any, scope: str) -> Iterator[MetricPoint]:
    if isinstance(data, Sum):
        kind: PointKind = "counter" if data.is_monotonic else "updowncounter"
        for point in data.data_points:
            attributes = _attributes(point.attributes)
            yield MetricPoint(
                name,
                kind,
                attributes,
                point.start_time_unix_nano,
                point.time_unix_nano,
                float(point.value),
                scope=scope,
                identity=tuple(sorted(attributes.items())),
            )
    elif isinstance(data, Gauge):
        for point in data.data_points:
            attributes = _attributes(point.attributes)
            yield MetricPoint(
                name,
                "gauge",
                attributes,
                point.start_time_unix_nano or point.time_unix_nano,
                point.time_unix_nano,
                float(point.value),
                scope=scope,
                identity=tuple(sorted(attributes.items())),
            )
    elif isinstance(data, Histogram):
        for bucketed in data.data_points:
            attributes = _attributes(bucketed.attributes)
            yield MetricPoint(
                name,
                "histogram",
                attributes,
                bucketed.start_time_unix_nano,
                bucketed.time_unix_nano,
                float(bucketed.sum),
                count=int(bucketed.count),
                boundaries=tuple(float(b) for b in bucketed.explicit_bounds),
                bucket_counts=tuple(int(c) for c in bucketed.bucket_counts),
                scope=scope,
                identity=tuple(sorted(attributes.items())),
            )


def _attributes(attributes: Mapping[str, Any] | None) -> dict[str, AttributeValue]:
    """Scalar attributes as they are; sequences (rare on metrics) as their text, so they can be matched."""
    return {
        key: value if isinstance(value, str | int | float | bool) else str(value)
        for key, value in (attributes or {}).items()
    }


class MetricSnapshotReader(MetricReader):
    """Register on the app's MeterProvider (`add_metric_reader`); call `snapshot()` on the rule tick."""

    def __init__(self) -> None:
        super().__init__()  # cumulative, default aggregation for every instrument kind
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):  # a lock held by the parent's tick at fork() stays held
            reader = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _renew_lock(reader()))
        self._latest: MetricsData | None = None
        self.collections = 0
        self.last_collection_s = 0.0

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._latest = metrics_data

    def snapshot(self, timeout_millis: float = 10_000) -> MetricSnapshot:
        """Collect now (observable callbacks run on this thread) and flatten the result.

        Before the reader is registered, or after shutdown, the snapshot is empty.
        """
        started = time.perf_counter()
        with self._lock:  # two callers must not interleave a collection and its result
            self._latest = None
            if self._collect is not None:
                self.collect(timeout_millis)
            data = self._latest
            self.collections += 1
        snapshot = MetricSnapshot.from_metrics_data(data)
        self.last_collection_s = time.perf_counter() - started
        return snapshot

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Nothing to flush: the reader exports nothing."""


def _renew_lock(reader: MetricSnapshotReader | None) -> None:
    if reader is not None:
        reader._lock = threading.Lock()
