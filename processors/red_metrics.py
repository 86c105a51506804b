"""Export a `REDStore` through every MetricReader of an SDK MeterProvider, named like spanmetrics.

Why this design: the Python SDK (1.45) has no MetricProducer hook, and recording through the
metrics API per span would cost more than the span itself (about +15 µs per span, measured in
bench/span_end.py). Observable instruments
cannot carry explicit-bucket histograms with exemplars. So `attach_red_producer` wraps each
reader's collect callback: whatever the reader collects from the SDK gets one more ScopeMetrics
(scope `otelpipe.red`) built from a `REDSnapshot` on demand. OTLP, Prometheus and in-memory readers
all see the same figures, collection cost is paid per export (not per span), and each reader gets
the temporality it prefers: cumulative by default, delta (differences against that reader's
previous collection) when the reader asks for delta on counters or histograms.

Private SDK attributes this depends on, pinned to opentelemetry-sdk 1.45.x: `MetricReader._collect`
and `_set_collect_callback` (the callback the MeterProvider installs), `_instrument_class_temporality`
keyed by `_Counter` / `_Histogram`, and `MeterProvider._measurement_consumer._reader_storages`
(the readers actually registered, including `add_metric_reader`) and `_sdk_config.resource`.

Metric names, as the Collector's connectors emit them (Prometheus names in brackets):
`traces.span.metrics.calls` (monotonic Sum, no unit; `traces_span_metrics_calls_total`) and
`traces.span.metrics.duration` (Histogram, unit `ms` by default as the spanmetrics connector;
`traces_span_metrics_duration_milliseconds`, or `..._seconds` with unit `s`); for client→server
edges the servicegraph connector's `traces_service_graph_request_total`,
`traces_service_graph_request_failed_total` and the histograms
`traces_service_graph_request_server_seconds` / `traces_service_graph_request_client_seconds`
(unit s, labels `client`, `server`, `connection_type`, `failed`). In-process only the client span
of an edge is seen, so both edge histograms hold the duration the client observed. Plus
`otelpipe.red.overflow_spans` / `otelpipe.red.skipped_spans` counters. In delta mode a
histogram's min/max are the extremes since the store started (it keeps no per-interval extremes).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import Exemplar, MeterProvider
from opentelemetry.sdk.metrics._internal.instrument import _Counter, _Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelpipe.processors.red import REDStore
from otelpipe.processors.red_snapshot import ExemplarRef, REDSnapshot, SeriesIdentity, SeriesStats

__all__ = [
    "CALLS_METRIC",
    "DURATION_METRIC",
    "DURATION_UNITS",
    "EDGE_CALLS_METRIC",
    "EDGE_CLIENT_METRIC",
    "EDGE_FAILED_METRIC",
    "EDGE_SERVER_METRIC",
    "OVERFLOW_METRIC",
    "SCOPE_NAME",
    "SKIPPED_METRIC",
    "REDMetricProducer",
    "attach_red_producer",
]

_logger = logging.getLogger("otelpipe.red")

SCOPE_NAME = "otelpipe.red"
CALLS_METRIC = "traces.span.metrics.calls"
DURATION_METRIC = "traces.span.metrics.duration"
EDGE_CALLS_METRIC = "traces_service_graph_request_total"
EDGE_FAILED_METRIC = "traces_service_graph_request_failed_total"
EDGE_SERVER_METRIC = "traces_service_graph_request_server_seconds"
EDGE_CLIENT_METRIC = "traces_service_graph_request_client_seconds"
#: Histogram unit -> factor from the store's seconds.
DURATION_UNITS: dict[str, float] = {"ms": 1000.0, "s": 1.0}
OVERFLOW_METRIC = "otelpipe.red.overflow_spans"
SKIPPED_METRIC = "otelpipe.red.skipped_spans"

_CUMULATIVE = AggregationTemporality.CUMULATIVE
_DELTA = AggregationTemporality.DELTA
_LOG_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class _Previous:
    """What one reader last saw of one series, to turn cumulative figures into deltas."""

    start_time_unix_nano: int
    time_unix_nano: int
    calls: int
    sum: float
    bucket_counts: tuple[int, ...]


class _DeltaState:
    """Per-reader memory of the previous collection (only readers that prefer delta have one)."""

    def __init__(self) -> None:
        self.previous: dict[tuple[str, SeriesIdentity], _Previous] = {}
        # store start, collection time, overflow spans, skipped spans
        self.health: tuple[int, int, int, int] = (0, 0, 0, 0)


class REDMetricProducer:
    """Builds the `otelpipe.red` ScopeMetrics from a REDStore snapshot, per reader and temporality."""

    def __init__(self, store: REDStore, *, scope_name: str = SCOPE_NAME, unit: str = "ms") -> None:
        """`store` is read with `snapshot()` at each collection, never on the span path; `unit` is
        the span duration histogram's (`ms`, the connector's default, or `s`)."""
        if unit not in DURATION_UNITS:
            raise ValueError(f"unit must be one of {sorted(DURATION_UNITS)}, got {unit!r}")
        self.store = store
        self.unit = unit
        self._scale = DURATION_UNITS[unit]
        self._scope = InstrumentationScope(scope_name)
        self._lock = threading.Lock()
        self._delta_states: weakref.WeakKeyDictionary[object, _DeltaState] = weakref.WeakKeyDictionary()
        if hasattr(os, "register_at_fork"):
            # A reader collecting on another thread holds the lock for a whole build; a fork() landing
            # then leaves the child's copy held forever (64 of 200 children hung in produce()).
            weak_self = weakref.ref(self)

            def _after_fork_in_child() -> None:
                producer = weak_self()
                if producer is not None:
                    producer._lock = threading.Lock()

            os.register_at_fork(after_in_child=_after_fork_in_child)

    def produce(
        self,
        consumer: object | None = None,
        *,
        counter_temporality: AggregationTemporality = _CUMULATIVE,
        histogram_temporality: AggregationTemporality = _CUMULATIVE,
    ) -> ScopeMetrics:
        """Snapshot the store and express it as SDK metric data.

        `consumer` identifies the reader when any temporality is DELTA: deltas are taken against
        what that same consumer received last time (so two delta readers never steal each other's
        increments).
        """
        snapshot = self.store.snapshot()
        state: _DeltaState | None = None
        if _DELTA in (counter_temporality, histogram_temporality):
            key = consumer if consumer is not None else self
            with self._lock:
                state = self._delta_states.get(key)
                if state is None:
                    state = self._delta_states[key] = _DeltaState()
        with self._lock:
            return self._build(snapshot, counter_temporality, histogram_temporality, state)

    def _build(
        self,
        snapshot: REDSnapshot,
        counter_temporality: AggregationTemporality,
        histogram_temporality: AggregationTemporality,
        state: _DeltaState | None,
    ) -> ScopeMetrics:
        points = _Points(snapshot, state, self.store.start_time_unix_nano)
        counter_delta, histogram_delta = counter_temporality == _DELTA, histogram_temporality == _DELTA
        calls: list[NumberDataPoint] = []
        durations: list[HistogramDataPoint] = []
        for stats in snapshot.series:
            identity = ("span", stats.identity)
            _append(calls, points.calls(identity, stats, counter_delta))
            _append(durations, points.duration(identity, stats, histogram_delta, self._scale))
            points.remember(identity, stats)
        edge_calls: list[NumberDataPoint] = []
        edge_failed: list[NumberDataPoint] = []
        edge_durations: list[HistogramDataPoint] = []
        for stats in snapshot.edges:
            identity = ("edge", stats.identity)
            point = points.calls(identity, stats, counter_delta)
            _append(edge_calls, point)
            if stats.errors:
                _append(edge_failed, point)
            _append(edge_durations, points.duration(identity, stats, histogram_delta, 1.0))
            points.remember(identity, stats)
        metrics: list[Metric] = []
        span_what = "spans, from otelpipe's RED span processor"
        edge_what = "client to server requests, from otelpipe's RED span processor"
        for name, description, data_points in (
            (CALLS_METRIC, f"Number of {span_what}", calls),
            (EDGE_CALLS_METRIC, f"Number of {edge_what}", edge_calls),
            (EDGE_FAILED_METRIC, f"Number of failed {edge_what}", edge_failed),
        ):
            if data_points:
                metrics.append(
                    Metric(
                        name=name,
                        description=description,
                        unit="",
                        data=Sum(
                            data_points=data_points,
                            aggregation_temporality=counter_temporality,
                            is_monotonic=True,
                        ),
                    )
                )
        for name, description, unit, histogram_points in (
            (DURATION_METRIC, f"Duration of {span_what}", self.unit, durations),
            (EDGE_SERVER_METRIC, f"Duration (seen by the client) of {edge_what}", "s", edge_durations),
            (EDGE_CLIENT_METRIC, f"Duration seen by the client of {edge_what}", "s", edge_durations),
        ):
            if histogram_points:
                metrics.append(
                    Metric(
                        name=name,
                        description=description,
                        unit=unit,
                        data=Histogram(
                            data_points=histogram_points, aggregation_temporality=histogram_temporality
                        ),
                    )
                )
        metrics.extend(points.health_counters(counter_temporality == _DELTA))
        points.commit()
        return ScopeMetrics(scope=self._scope, metrics=metrics, schema_url="")


class _Points:
    """Data points of one collection; delta ones are differences against the reader's last view."""

    def __init__(self, snapshot: REDSnapshot, state: _DeltaState | None, store_start: int) -> None:
        self._snapshot = snapshot
        self._store_start = store_start
        self._state = state
        self._seen: dict[tuple[str, SeriesIdentity], _Previous] = {}

    def _previous(self, identity: tuple[str, SeriesIdentity], stats: SeriesStats) -> _Previous | None:
        if self._state is None:
            return None
        previous = self._state.previous.get(identity)
        if previous is None or previous.start_time_unix_nano != stats.start_time_unix_nano:
            return None  # new series, or the store restarted (fork): count from its start
        return previous

    def calls(
        self, identity: tuple[str, SeriesIdentity], stats: SeriesStats, delta: bool
    ) -> NumberDataPoint | None:
        now = self._snapshot.time_unix_nano
        previous = self._previous(identity, stats) if delta else None
        if previous is None:
            return NumberDataPoint(
                attributes=dict(stats.attributes),
                start_time_unix_nano=stats.start_time_unix_nano,
                time_unix_nano=now,
                value=stats.calls,
            )
        if stats.calls == previous.calls:
            return None
        return NumberDataPoint(
            attributes=dict(stats.attributes),
            start_time_unix_nano=previous.time_unix_nano,
            time_unix_nano=now,
            value=stats.calls - previous.calls,
        )

    def duration(
        self, identity: tuple[str, SeriesIdentity], stats: SeriesStats, delta: bool, scale: float
    ) -> HistogramDataPoint | None:
        """The histogram point in the exported unit: seconds times `scale`."""
        now = self._snapshot.time_unix_nano
        previous = self._previous(identity, stats) if delta else None
        start, count, total, buckets = stats.start_time_unix_nano, stats.calls, stats.sum, stats.bucket_counts
        exemplars = stats.exemplars
        if previous is not None:
            if count == previous.calls:
                return None
            start = previous.time_unix_nano
            count -= previous.calls
            total -= previous.sum
            buckets = tuple(a - b for a, b in zip(buckets, previous.bucket_counts, strict=True))
            exemplars = tuple(ref for ref in exemplars if ref.time_unix_nano > previous.time_unix_nano)
        return HistogramDataPoint(
            attributes=dict(stats.attributes),
            start_time_unix_nano=start,
            time_unix_nano=now,
            count=count,
            sum=total * scale,
            bucket_counts=list(buckets),
            explicit_bounds=[_scaled(bound, scale) for bound in self._snapshot.boundaries],
            min=stats.min * scale,
            max=stats.max * scale,
            exemplars=[_exemplar(ref, scale) for ref in exemplars],
        )

    def remember(self, identity: tuple[str, SeriesIdentity], stats: SeriesStats) -> None:
        if self._state is not None:
            self._seen[identity] = _Previous(
                stats.start_time_unix_nano,
                self._snapshot.time_unix_nano,
                stats.calls,
                stats.sum,
                stats.bucket_counts,
            )

    def health_counters(self, delta: bool) -> list[Metric]:
        snapshot = self._snapshot
        start = self._store_start
        overflow, skipped = snapshot.overflow_spans, snapshot.skipped_spans
        if delta and self._state is not None and self._state.health[0] == self._store_start:
            _, start, last_overflow, last_skipped = self._state.health
            overflow -= last_overflow
            skipped -= last_skipped
        metrics = []
        for name, value, description in (
            (OVERFLOW_METRIC, overflow, "Spans folded into the otel.metric.overflow series"),
            (SKIPPED_METRIC, skipped, "Spans the RED processor could not measure (bad timestamps, ...)"),
        ):
            point = NumberDataPoint(
                attributes={}, start_time_unix_nano=start, time_unix_nano=snapshot.time_unix_nano, value=value
            )
            metrics.append(
                Metric(
                    name=name,
                    description=description,
                    unit="",
                    data=Sum(
                        data_points=[point],
                        aggregation_temporality=_DELTA if delta else _CUMULATIVE,
                        is_monotonic=True,
                    ),
                )
            )
        if self._state is not None:
            self._state.health = (
                self._store_start,
                snapshot.time_unix_nano,
                snapshot.overflow_spans,
                snapshot.skipped_spans,
            )
        return metrics

    def commit(self) -> None:
        if self._state is not None:
            self._state.previous = self._seen


def _append(points: list[Any], point: object | None) -> None:
    if point is not None:
        points.append(point)


def _scaled(bound: float, scale: float) -> float:
    """A boundary in the exported unit, rounded so 0.4 s reads 400 ms (not 400.00000000000006)."""
    return bound if scale == 1.0 else float(f"{bound * scale:.12g}")


def _exemplar(ref: ExemplarRef, scale: float) -> Any:
    return Exemplar(
        filtered_attributes={"otelpipe.exemplar.error": True} if ref.error else {},
        value=ref.value * scale,
        time_unix_nano=ref.time_unix_nano,
        span_id=int(ref.span_id, 16),
        trace_id=int(ref.trace_id, 16),
    )


class _RateLimitedWarning:
    def __init__(self) -> None:
        self._last = -_LOG_INTERVAL_S

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last >= _LOG_INTERVAL_S:
            self._last = now
            _logger.warning(message, *args, exc_info=True)


def _registered_readers(meter_provider: MeterProvider) -> Sequence[MetricReader]:
    consumer = getattr(meter_provider, "_measurement_consumer", None)
    storages = getattr(consumer, "_reader_storages", None)
    if isinstance(storages, dict):
        return list(storages)
    return list(getattr(meter_provider, "_metric_readers", ()))


def attach_red_producer(meter_provider: MeterProvider, producer: REDMetricProducer) -> int:
    """Make every reader registered on `meter_provider` also collect `producer`'s RED metrics.

    Call it after all readers are registered (readers added later are not wrapped). Attaching the
    same producer twice to a reader is a no-op. Returns how many readers were wrapped.
    """
    _identify_forked_children(meter_provider)
    wrapped = 0
    for reader in _registered_readers(meter_provider):
        attached: set[int] = reader.__dict__.setdefault("_otelpipe_red_producers", set())
        original: Any = reader._collect  # typed loosely by the SDK; really returns MetricsData | None
        if original is None or id(producer) in attached:
            continue
        wrapper: Any = _collect_with_red(meter_provider, producer, original)
        reader._set_collect_callback(wrapper)
        attached.add(id(producer))
        wrapped += 1
    return wrapped


def _identify_forked_children(meter_provider: MeterProvider) -> None:
    """Give each forked child (gunicorn/uWSGI worker) its own `service.instance.id` and `process.pid`.

    Workers forked from one master share its resource, so their cumulative RED series would carry
    identical identities and overwrite each other in any backend; one id per process keeps every
    worker's counts apart. Uses the SDK's private `MeterProvider._sdk_config.resource` (1.45.x).
    """
    if not hasattr(os, "register_at_fork") or meter_provider.__dict__.get("_otelpipe_fork_identity"):
        return
    meter_provider.__dict__["_otelpipe_fork_identity"] = True
    provider_ref = weakref.ref(meter_provider)

    def _after_fork_in_child() -> None:
        config = getattr(provider_ref(), "_sdk_config", None)
        if config is None:
            return
        try:  # no lock: one held by another thread at fork() would never be released in the child
            config.resource = config.resource.merge(
                Resource({"service.instance.id": str(uuid.uuid4()), "process.pid": os.getpid()})
            )
        except Exception:  # never break the child over an identity attribute
            _logger.warning("could not give this forked process its own service.instance.id", exc_info=True)

    os.register_at_fork(after_in_child=_after_fork_in_child)


def _collect_with_red(
    meter_provider: MeterProvider,
    producer: REDMetricProducer,
    original: Callable[..., MetricsData | None],
) -> Callable[..., MetricsData | None]:
    warn = _RateLimitedWarning()

    def collect(reader: MetricReader, timeout_millis: float = 10_000) -> MetricsData | None:
        data = original(reader, timeout_millis=timeout_millis)
        try:
            temporalities = reader._instrument_class_temporality
            scope = producer.produce(
                reader,
                counter_temporality=temporalities.get(_Counter, _CUMULATIVE),
                histogram_temporality=temporalities.get(_Histogram, _CUMULATIVE),
            )
            return _with_scope(data, scope, meter_provider)
        except Exception:  # the SDK's own metrics must still be exported
            warn("RED metrics left out of this collection")
            return data

    return collect


def _with_scope(data: MetricsData | None, scope: ScopeMetrics, meter_provider: MeterProvider) -> MetricsData:
    if data is None or not data.resource_metrics:
        resource = meter_provider._sdk_config.resource
        return MetricsData(
            resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[scope], schema_url="")]
        )
    first, *rest = data.resource_metrics
    merged = ResourceMetrics(
        resource=first.resource,
        scope_metrics=[*first.scope_metrics, scope],
        schema_url=first.schema_url,
    )
    return MetricsData(resource_metrics=[merged, *rest])
