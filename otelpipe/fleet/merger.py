"""Merge RED streams of many processes into one cumulative `REDSnapshot`, per service and dimension set.

The SLO evaluator and the threshold rules read successive cumulative snapshots and difference
them. Fed from a single process that works as is; fed from a fleet it must not: every worker,
pod or Collector sends its own cumulative streams, which restart from zero when a process
restarts. `REDStreamMerger` keeps, per stream (sending instance x metric x series x start time),
the last value it saw and adds only the increase to one accumulator per merged series. So the
snapshot it hands the evaluators is monotone whatever the senders do:

- a stream first seen is a baseline (its past is not replayed as a burst) unless it started
  after the merger was listening, or its instance was already known: then all of it is new;
- a new start time is a new stream; a value below the last one with the same start time is a
  counter reset (the new value is the increase, never a negative one);
- delta points are added as they come; points older than the stream's last one (retries) are
  skipped.

Durations are re-bucketed into the merger's boundaries (seconds): each source bucket is added to
the first output bucket whose upper bound is >= its own. That is exact when every output
boundary is also a source boundary, and errs towards "slower" otherwise, so a latency SLO can
only be pessimistic, never blind.

Memory is bounded: streams unseen for `stale_after_s` expire, at most `stream_limit` streams are
tracked (points of further streams are dropped and counted), and at most `series_limit` merged
series exist; further ones fold into one `otel.metric.overflow=true` series per service.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otelpipe.diagnostics import logger, warn_limited
from otelpipe.fleet.points import Identity, REDPoint, UnsupportedPoints, decode_request
from otelpipe.processors.red import DEFAULT_BOUNDARIES, validate_boundaries
from otelpipe.processors.red_snapshot import (
    OVERFLOW,
    SERVICE_NAME,
    STATUS_CODE,
    STATUS_ERROR,
    ExemplarRef,
    REDSnapshot,
    SeriesStats,
)

__all__ = ["MergerStats", "REDStreamMerger"]

_log = logger("fleet")

_MAX_EXEMPLARS = 5
_TOLERANCE = 1e-9  # relative; ms -> s conversion may be off by an ulp


@dataclass
class MergerStats:
    """Counters of what the merger did, for its own gauges and for tests."""

    points: int = 0
    baselined: int = 0  # first-seen streams whose past was not counted
    resets: int = 0  # counter resets detected (value below the last, same start time)
    stale_points: int = 0  # points not newer than the stream's last one (retries, reordering)
    dropped_points: int = 0  # points of streams beyond stream_limit
    unsupported: int = 0  # RED metrics of a shape the merger cannot use
    overflow_points: int = 0  # points folded into a service's overflow series
    expired_streams: int = 0


@dataclass(slots=True)
class _Stream:
    """What one sender last reported for one series of one metric."""

    series: Identity
    count: int
    sum: float
    buckets: tuple[int, ...]
    bounds: tuple[float, ...]
    time_unix_nano: int
    seen_ns: int


@dataclass(slots=True)
class _Series:
    """Accumulated increases of one merged series (all instances of a service together)."""

    attributes: dict[str, str | int | float | bool]
    error: bool
    start_time_unix_nano: int
    buckets: list[int]
    calls: int = 0  # from the calls counter
    histogram_count: int = 0  # from the duration histogram (sum of `buckets`)
    sum: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    exemplars: deque[ExemplarRef] = field(default_factory=lambda: deque(maxlen=_MAX_EXEMPLARS))
    updated_ns: int = 0
    streams: int = 0


class REDStreamMerger:
    """Cumulative RED per merged series from OTLP points of any number of senders; thread-safe."""

    def __init__(
        self,
        boundaries: Sequence[float] = DEFAULT_BOUNDARIES,
        *,
        series_limit: int = 2000,
        stream_limit: int = 20_000,
        stale_after_s: float = 300.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """`boundaries` (seconds) are those of the snapshots produced; `clock` returns Unix ns."""
        if series_limit < 1 or stream_limit < 1:
            raise ValueError("series_limit and stream_limit must be >= 1")
        if stale_after_s <= 0:
            raise ValueError("stale_after_s must be positive")
        self.boundaries = validate_boundaries(boundaries)
        self.series_limit = series_limit
        self.stream_limit = stream_limit
        self.stale_after_ns = int(stale_after_s * 1e9)
        self._clock = clock
        self._lock = threading.RLock()
        self.started_unix_nano = clock()
        self._streams: dict[tuple[object, ...], _Stream] = {}
        self._series: dict[Identity, _Series] = {}
        self._instances: dict[Identity, int] = {}  # instance -> last seen (ns)
        self._mappings: dict[tuple[float, ...], tuple[int, ...]] = {}
        self._last_expiry = self.started_unix_nano
        self.stats = MergerStats()

    # ------------------------------------------------------------------ input

    def add_request(self, request: ExportMetricsServiceRequest) -> int:
        """Merge every RED point of one OTLP export request; returns how many were RED points."""
        return self.add(decode_request(request))

    def add(self, points: Iterable[REDPoint | UnsupportedPoints]) -> int:
        """Merge decoded points (one export request's worth: instances first seen here are new)."""
        merged = 0
        with self._lock:
            now = self._clock()
            known_before = set(self._instances)
            for point in points:
                if isinstance(point, UnsupportedPoints):
                    self.stats.unsupported += 1
                    warn_limited("fleet-unsupported", "RED metric skipped: %s", str(point), area="fleet")
                    continue
                merged += 1
                self.stats.points += 1
                self._add(point, now, point.instance in known_before)
            if now - self._last_expiry >= self.stale_after_ns // 10:
                self._expire(now)
        return merged

    def receive(self, received: Any) -> None:
        """`OTLPReceiver` callback: merge a metrics request, ignore other signals, never raise.

        A request the merger cannot use is the sender's problem; raising would only make the
        exporter retry the same bytes.
        """
        if getattr(received, "signal", None) != "metrics":
            return
        try:
            self.add_request(received.request)
        except Exception:
            warn_limited("fleet-merge", "could not merge a RED metrics request", area="fleet")
            _log.debug("could not merge a RED metrics request", exc_info=True)

    def add_snapshot(self, snapshot: REDSnapshot, instance: Identity) -> int:
        """Merge an in-process store's snapshot as the cumulative streams of `instance`."""
        return self.add(
            REDPoint(
                instance=instance,
                series=series.identity,
                histogram=True,
                cumulative=True,
                start_time_unix_nano=series.start_time_unix_nano,
                time_unix_nano=snapshot.time_unix_nano,
                count=series.calls,
                bucket_counts=series.bucket_counts,
                boundaries=snapshot.boundaries,
                sum=series.sum,
                min=series.min,
                max=series.max,
                exemplars=series.exemplars,
            )
            for series in snapshot.series
        )

    def _add(self, point: REDPoint, now: int, instance_known: bool) -> None:
        key: tuple[object, ...]
        key = (point.instance, point.histogram, point.series, point.start_time_unix_nano)
        if not point.cumulative:
            key = (point.instance, point.histogram, point.series, None)
        stream = self._streams.get(key)
        fresh = stream is None
        if stream is None and len(self._streams) >= self.stream_limit:
            self.stats.dropped_points += 1
            warn_limited(
                "fleet-stream-limit",
                "RED merger tracks %d streams (its limit); points of new streams are dropped",
                self.stream_limit,
                area="fleet",
            )
            return
        self._instances[point.instance] = now  # only senders with a tracked stream: bounded too
        if stream is None:
            series_key = self._series_key(point, now)
            stream = _Stream(series_key, 0, 0.0, (), (), 0, now)
            self._streams[key] = stream
            self._series[series_key].streams += 1
            if point.cumulative and not self._counts_from_zero(point, now, instance_known):
                self.stats.baselined += 1
                self._remember(stream, point, now)
                return
        elif point.time_unix_nano and point.time_unix_nano <= stream.time_unix_nano:
            self.stats.stale_points += 1
            return
        series = self._series.get(stream.series)
        if series is None:  # expired while its stream lived on: start it again
            stream.series = self._series_key(point, now)
            series = self._series[stream.series]
            series.streams += 1
        if point.cumulative and not fresh:
            count, total, buckets = self._increase(stream, point)
        else:
            count, total, buckets = point.count, point.sum, point.bucket_counts
        self._remember(stream, point, now)
        if point.histogram:
            self._add_buckets(series, point.boundaries, buckets)
            series.histogram_count += sum(buckets) if buckets else count
            series.sum += total
            if point.min is not None and count:
                series.min = min(series.min, point.min)
            if point.max is not None and count:
                series.max = max(series.max, point.max)
            if count:
                series.exemplars.extend(point.exemplars)
        else:
            series.calls += count
        series.updated_ns = now

    def _counts_from_zero(self, point: REDPoint, now: int, instance_known: bool) -> bool:
        """A first-seen cumulative stream: is all of it new, or is it a baseline?"""
        if instance_known:
            return True  # a series new to a sender we already follow (first error after a while)
        start = point.start_time_unix_nano
        # Started while we listened, and recently enough that it cannot be a stream we expired.
        return start >= self.started_unix_nano and start >= now - self.stale_after_ns

    def _increase(self, stream: _Stream, point: REDPoint) -> tuple[int, float, tuple[int, ...]]:
        reset = (
            point.count < stream.count
            or stream.bounds != point.boundaries  # new boundaries under one stream: a restart
            or len(stream.buckets) != len(point.bucket_counts)
            or any(now < before for now, before in zip(point.bucket_counts, stream.buckets, strict=False))
        )
        if reset:
            self.stats.resets += 1
            return point.count, point.sum, point.bucket_counts
        buckets = tuple(now - before for now, before in zip(point.bucket_counts, stream.buckets, strict=True))
        return point.count - stream.count, max(0.0, point.sum - stream.sum), buckets

    @staticmethod
    def _remember(stream: _Stream, point: REDPoint, now: int) -> None:
        stream.count = point.count
        stream.sum = point.sum
        stream.buckets = point.bucket_counts
        stream.bounds = point.boundaries
        stream.time_unix_nano = point.time_unix_nano
        stream.seen_ns = now

    def _series_key(self, point: REDPoint, now: int) -> Identity:
        key = point.series
        if key in self._series:
            return key
        if len(self._series) >= self.series_limit:
            self.stats.overflow_points += 1
            key = ((OVERFLOW, True), (SERVICE_NAME, point.service))
            warn_limited(
                "fleet-series-limit",
                "RED merger holds %d series (its limit); new ones fold into otel.metric.overflow",
                self.series_limit,
                area="fleet",
            )
            if key in self._series:
                return key
        attributes = dict(key)
        self._series[key] = _Series(
            attributes=attributes,
            error=attributes.get(STATUS_CODE) == STATUS_ERROR,
            start_time_unix_nano=now,
            buckets=[0] * (len(self.boundaries) + 1),
            updated_ns=now,
        )
        return key

    def _add_buckets(self, series: _Series, bounds: tuple[float, ...], buckets: tuple[int, ...]) -> None:
        mapping = self._mapping(bounds)
        for index, count in enumerate(buckets):
            if count:
                series.buckets[mapping[index]] += count

    def _mapping(self, bounds: tuple[float, ...]) -> tuple[int, ...]:
        """Output bucket of each source bucket: the first whose upper bound is >= the source's."""
        mapping = self._mappings.get(bounds)
        if mapping is None:
            out = self.boundaries
            mapping = (*(bisect_left(out, bound * (1 - _TOLERANCE)) for bound in bounds), len(out))
            if len(self._mappings) > 64:
                self._mappings.clear()
            self._mappings[bounds] = mapping
        return mapping

    def _expire(self, now: int) -> None:
        self._last_expiry = now
        cutoff = now - self.stale_after_ns
        for key, stream in list(self._streams.items()):
            if stream.seen_ns < cutoff:
                del self._streams[key]
                self.stats.expired_streams += 1
                series = self._series.get(stream.series)
                if series is not None:
                    series.streams -= 1
        for key, series in list(self._series.items()):
            if series.streams <= 0 and series.updated_ns < cutoff:
                del self._series[key]  # comes back with a new start time: the evaluator restarts it
        for instance, seen in list(self._instances.items()):
            if seen < cutoff:
                del self._instances[instance]

    # ----------------------------------------------------------------- output

    def snapshot(self) -> REDSnapshot:
        """All merged series as cumulative figures since each series appeared at the merger."""
        with self._lock:
            now = self._clock()
            if now - self._last_expiry >= self.stale_after_ns // 10:
                self._expire(now)
            series = tuple(self._stats(s) for s in self._series.values() if s.calls or s.histogram_count)
            overflow = self.stats.overflow_points
        return REDSnapshot(boundaries=self.boundaries, series=series, time_unix_nano=now, overflow_spans=overflow)

    def snapshot_and_positions(self) -> tuple[REDSnapshot, list[list[Any]]]:
        """The snapshot and, taken at the same instant, where every cumulative stream stands.

        Saved next to the SLO windows, the positions let a restarted merger continue each stream
        where the saved windows stopped, instead of treating its next point as a baseline.
        """
        with self._lock:
            snapshot = self.snapshot()  # the lock is re-entrant
            positions: list[list[Any]] = []
            for key, stream in self._streams.items():
                instance, histogram, series, start = key
                if start is None:
                    continue  # a delta stream has no position to keep
                positions.append(
                    [
                        [list(pair) for pair in instance],  # type: ignore[attr-defined]
                        histogram,
                        [list(pair) for pair in series],  # type: ignore[attr-defined]
                        start,
                        stream.count,
                        stream.sum,
                        list(stream.buckets),
                        list(stream.bounds),
                        stream.time_unix_nano,
                    ]
                )
        return snapshot, positions

    def restore(self, positions: Iterable[Sequence[Any]]) -> int:
        """Continue the streams of `snapshot_and_positions()` from a previous run; returns how many."""
        restored = 0
        with self._lock:
            now = self._clock()
            for record in positions:
                try:
                    instance_raw, histogram, series_raw, start, count, total, buckets, bounds, at = record
                    instance: Identity = tuple((str(k), v) for k, v in instance_raw)
                    series: Identity = tuple((str(k), v) for k, v in series_raw)
                    key = (instance, bool(histogram), series, int(start))
                    point = REDPoint(instance, series, bool(histogram), True, int(start), int(at), int(count))
                    stream = _Stream(
                        self._series_key(point, now),
                        int(count),
                        float(total),
                        tuple(int(b) for b in buckets),
                        tuple(float(b) for b in bounds),
                        int(at),
                        now,
                    )
                except (TypeError, ValueError):
                    continue  # one unreadable record costs that stream a baseline, nothing more
                if key in self._streams or len(self._streams) >= self.stream_limit:
                    continue
                self._streams[key] = stream
                self._series[stream.series].streams += 1
                self._instances[instance] = now
                restored += 1
        return restored

    @staticmethod
    def _stats(series: _Series) -> SeriesStats:
        # Both counts only grow, so their max does too: the evaluators never see a decrease.
        calls = max(series.calls, series.histogram_count)
        return SeriesStats(
            attributes=dict(series.attributes),
            calls=calls,
            errors=calls if series.error else 0,
            bucket_counts=tuple(series.buckets),
            sum=series.sum,
            min=series.min if series.histogram_count else 0.0,
            max=series.max if series.histogram_count else 0.0,
            start_time_unix_nano=series.start_time_unix_nano,
            exemplars=tuple(series.exemplars),
        )

    def instances(self) -> int:
        """Senders seen within `stale_after_s`."""
        with self._lock:
            return len(self._instances)

    def services(self) -> list[str]:
        """Services with at least one merged series."""
        with self._lock:
            return sorted({str(s.attributes.get(SERVICE_NAME, "")) for s in self._series.values()})

