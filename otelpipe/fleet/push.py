"""A forked worker's RED, pushed to its parent as compact OTLP every push interval.

Why not the SDK's `PeriodicExportingMetricReader` + OTLP exporter: building SDK metric objects
and running the SDK's generic encoder cost ~100 µs per data point here, which at one push per
second is a few percent of a core per worker for an ordinary app. This encoder writes the
`ExportMetricsServiceRequest` straight from a `REDSnapshot`, sends only the duration histogram
(its count is the calls count), only the series that changed since the last push (all of them
every `keepalive` pushes, so the parent never expires a quiet worker), and exemplars only for
error series. `bench/fleet_merge.py` measures both ways.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Mapping

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otelpipe.diagnostics import warn_limited
from otelpipe.processors.red_snapshot import REDSnapshot, SeriesIdentity, SeriesStats

__all__ = ["REDPusher", "encode_snapshot"]

DURATION_METRIC = "traces.span.metrics.duration"
_CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
_MAX_EXEMPLARS = 2


def _any(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _key_values(attributes: Mapping[str, object]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_any(value)) for key, value in attributes.items()]


def encode_snapshot(
    snapshot: REDSnapshot,
    resource: Mapping[str, object],
    series: list[SeriesStats],
) -> ExportMetricsServiceRequest:
    """One cumulative duration histogram point per series in `series` (seconds, otelpipe's names)."""
    bounds = list(snapshot.boundaries)
    histogram = metrics_pb2.Histogram(aggregation_temporality=_CUMULATIVE)
    points = histogram.data_points
    for stats in series:
        point = points.add(
            attributes=_key_values(stats.attributes),
            start_time_unix_nano=stats.start_time_unix_nano,
            time_unix_nano=snapshot.time_unix_nano,
            count=stats.calls,
            sum=stats.sum,
            bucket_counts=stats.bucket_counts,
            explicit_bounds=bounds,
        )
        if stats.calls:
            point.min, point.max = stats.min, stats.max
        if stats.errors:
            for exemplar in stats.exemplars[-_MAX_EXEMPLARS:]:
                point.exemplars.add(
                    time_unix_nano=exemplar.time_unix_nano,
                    as_double=exemplar.value,
                    trace_id=bytes.fromhex(exemplar.trace_id),
                    span_id=bytes.fromhex(exemplar.span_id),
                )
    metric = metrics_pb2.Metric(name=DURATION_METRIC, unit="s", histogram=histogram)
    return ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=Resource(attributes=_key_values(resource)),
                scope_metrics=[
                    metrics_pb2.ScopeMetrics(scope=InstrumentationScope(name="otelpipe.prefork"), metrics=[metric])
                ],
            )
        ]
    )


class REDPusher:
    """Pushes `snapshot()` to `host:port` every `interval_s` on a daemon thread; `close()` pushes once more."""

    def __init__(
        self,
        snapshot: Callable[[], REDSnapshot],
        resource: Mapping[str, object],
        *,
        host: str,
        port: int,
        interval_s: float,
        keepalive: int = 10,
        timeout_s: float = 2.0,
    ) -> None:
        self._snapshot = snapshot
        self._resource = dict(resource)
        self._host, self._port = host, port
        self._interval = interval_s
        self._keepalive = max(1, keepalive)
        self._timeout = timeout_s
        self._sent: dict[SeriesIdentity, int] = {}  # series -> calls last pushed
        self._pushes = 0
        self.failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="otelpipe-red-push", daemon=True)

    def start(self) -> REDPusher:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.push()

    def push(self) -> bool:
        """One push of the changed series (all of them on keepalive rounds); False if it failed."""
        with self._lock:
            try:
                snapshot = self._snapshot()
                everything = self._pushes % self._keepalive == 0
                changed: list[SeriesStats] = []
                current: dict[SeriesIdentity, int] = {}
                for stats in snapshot.series:
                    key = stats.identity
                    current[key] = stats.calls
                    if everything or self._sent.get(key) != stats.calls:
                        changed.append(stats)
                self._pushes += 1
                if not changed:
                    return True
                body = encode_snapshot(snapshot, self._resource, changed).SerializeToString()
                self._post(body)
                self._sent = current
                return True
            except Exception:
                self.failures += 1
                self._pushes = 0  # push everything next time: the parent may have missed this one
                warn_limited("fleet-push", "a worker could not push its RED to its parent", area="fleet")
                return False

    def _post(self, body: bytes) -> None:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.request(
                "POST", "/v1/metrics", body=body, headers={"Content-Type": "application/x-protobuf"}
            )
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise OSError(f"parent answered HTTP {response.status}")
        finally:
            connection.close()

    def close(self) -> None:
        """Stop the thread, then push the last counts (bounded by the timeout)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._timeout + 1)
        self.push()
