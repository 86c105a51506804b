"""Decode RED data points out of an OTLP `ExportMetricsServiceRequest`.

Accepts otelpipe's own export (`traces.span.metrics.calls` / `.duration`, unit s) and the
Collector spanmetrics connector's default output (same names, or the legacy `calls` /
`duration`; unit ms by default, s with `histogram.unit: s`; `service.name` on the resource or on
the data point; `span.kind` = `SPAN_KIND_*`, `status.code` = `STATUS_CODE_*` or the gated
`otel.status_code` = `OK|ERROR`). Everything else in the request is ignored. Durations are
converted to seconds here, so the merger only ever sees one unit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from otelpipe.processors.red_snapshot import (
    SERVICE_NAME,
    STATUS_CODE,
    STATUS_ERROR,
    AttributeValue,
    ExemplarRef,
    SeriesIdentity,
    series_identity,
)

__all__ = ["CALLS_NAMES", "DURATION_NAMES", "REDPoint", "decode_request"]

CALLS_NAMES = frozenset({"traces.span.metrics.calls", "calls"})
DURATION_NAMES = frozenset({"traces.span.metrics.duration", "duration"})

# Seconds per unit of a duration histogram; the spanmetrics connector's default is ms.
_UNIT_SECONDS = {"ms": 1e-3, "s": 1.0, "us": 1e-6, "ns": 1e-9}
_SPANMETRICS_SCOPE = "spanmetricsconnector"
# Point attributes that name a process, not a dimension: never part of a merged series.
_INSTANCE_ATTRIBUTES = frozenset({"service.instance.id", "process.pid"})
_OTEL_STATUS_CODE = "otel.status_code"
_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA

Identity = SeriesIdentity  # a series, or a sending instance (its resource attributes)


@dataclass(frozen=True, slots=True)
class REDPoint:
    """One calls or duration data point, with the stream (process x metric x series) it belongs to.

    `instance` identifies the sending process by all its resource attributes (service.instance.id,
    process.pid, host.name, ... whatever it has); `series` is the merged dimension set, the same for
    every instance of a service. Histogram fields are in seconds.
    """

    instance: Identity
    series: Identity
    histogram: bool
    cumulative: bool
    start_time_unix_nano: int
    time_unix_nano: int
    count: int
    bucket_counts: tuple[int, ...] = ()
    boundaries: tuple[float, ...] = ()
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    exemplars: tuple[ExemplarRef, ...] = ()

    @property
    def service(self) -> str:
        return str(dict(self.series).get(SERVICE_NAME, "unknown_service"))

    @property
    def error(self) -> bool:
        return dict(self.series).get(STATUS_CODE) == STATUS_ERROR


class UnsupportedPoints(ValueError):
    """A RED metric whose shape cannot be merged (unknown unit, exponential histogram, gauge...)."""


def _value(any_value: Any) -> AttributeValue:
    kind = any_value.WhichOneof("value")
    if kind == "string_value":
        return str(any_value.string_value)
    if kind == "bool_value":
        return bool(any_value.bool_value)
    if kind == "int_value":
        return int(any_value.int_value)
    if kind == "double_value":
        return float(any_value.double_value)
    return str(any_value)  # arrays, kvlists, bytes: rare as dimensions; keep them distinguishable


def _attributes(key_values: Sequence[Any]) -> dict[str, AttributeValue]:
    return {kv.key: _value(kv.value) for kv in key_values}


def _series(point_attributes: Mapping[str, AttributeValue], service: AttributeValue | None) -> Identity:
    attributes = {k: v for k, v in point_attributes.items() if k not in _INSTANCE_ATTRIBUTES}
    if SERVICE_NAME not in attributes:
        attributes[SERVICE_NAME] = service if service is not None else "unknown_service"
    legacy = attributes.pop(_OTEL_STATUS_CODE, None)
    if legacy is not None and STATUS_CODE not in attributes:
        attributes[STATUS_CODE] = f"STATUS_CODE_{str(legacy).upper()}"
    return series_identity(attributes)


def _unit_seconds(unit: str, scope: str, name: str) -> float:
    if not unit:
        # otelpipe always sets s; an unlabelled legacy `duration` came from spanmetrics (ms)
        return 1e-3 if scope == _SPANMETRICS_SCOPE or name == "duration" else 1.0
    factor = _UNIT_SECONDS.get(unit)
    if factor is None:
        raise UnsupportedPoints(f"{name}: unit {unit!r} is not one of {sorted(_UNIT_SECONDS)}")
    return factor


def _exemplars(point: Any, scale: float, error: bool) -> tuple[ExemplarRef, ...]:
    found = []
    for exemplar in point.exemplars:
        if len(exemplar.trace_id) != 16 or len(exemplar.span_id) != 8:
            continue
        raw = exemplar.as_double if exemplar.WhichOneof("value") == "as_double" else exemplar.as_int
        found.append(
            ExemplarRef(
                trace_id=exemplar.trace_id.hex(),
                span_id=exemplar.span_id.hex(),
                value=float(raw) * scale,
                time_unix_nano=int(exemplar.time_unix_nano),
                sampled=True,
                error=error,
            )
        )
    return tuple(found)


def decode_request(request: ExportMetricsServiceRequest) -> Iterator[REDPoint | UnsupportedPoints]:
    """Every RED point of `request`; shapes that cannot be merged come out as `UnsupportedPoints`."""
    for resource_metrics in request.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        instance = tuple(sorted(resource.items(), key=lambda item: item[0]))
        service = resource.get(SERVICE_NAME)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope.name
            for metric in scope_metrics.metrics:
                if metric.name in CALLS_NAMES:
                    yield from _calls(metric, instance, service)
                elif metric.name in DURATION_NAMES:
                    yield from _durations(metric, instance, service, scope)


def _temporality(value: int, name: str) -> bool | UnsupportedPoints:
    if value == _CUMULATIVE:
        return True
    if value == _DELTA:
        return False
    return UnsupportedPoints(f"{name}: aggregation temporality {value} is neither cumulative nor delta")


def _calls(
    metric: Any, instance: Identity, service: AttributeValue | None
) -> Iterator[REDPoint | UnsupportedPoints]:
    if metric.WhichOneof("data") != "sum":
        yield UnsupportedPoints(f"{metric.name}: expected a Sum, got {metric.WhichOneof('data')}")
        return
    cumulative = _temporality(metric.sum.aggregation_temporality, metric.name)
    if isinstance(cumulative, UnsupportedPoints):
        yield cumulative
        return
    for point in metric.sum.data_points:
        raw = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
        yield REDPoint(
            instance=instance,
            series=_series(_attributes(point.attributes), service),
            histogram=False,
            cumulative=cumulative,
            start_time_unix_nano=int(point.start_time_unix_nano),
            time_unix_nano=int(point.time_unix_nano),
            count=max(0, round(raw)),
        )


def _durations(
    metric: Any, instance: Identity, service: AttributeValue | None, scope: str
) -> Iterator[REDPoint | UnsupportedPoints]:
    if metric.WhichOneof("data") != "histogram":
        yield UnsupportedPoints(
            f"{metric.name}: expected an explicit-bucket Histogram, got {metric.WhichOneof('data')}"
        )
        return
    cumulative = _temporality(metric.histogram.aggregation_temporality, metric.name)
    if isinstance(cumulative, UnsupportedPoints):
        yield cumulative
        return
    try:
        scale = _unit_seconds(metric.unit, scope, metric.name)
    except UnsupportedPoints as problem:
        yield problem
        return
    for point in metric.histogram.data_points:
        series = _series(_attributes(point.attributes), service)
        buckets = tuple(int(c) for c in point.bucket_counts)
        bounds = tuple(float(b) * scale for b in point.explicit_bounds)
        if buckets and len(buckets) != len(bounds) + 1:
            yield UnsupportedPoints(f"{metric.name}: {len(buckets)} buckets for {len(bounds)} bounds")
            continue
        error = dict(series).get(STATUS_CODE) == STATUS_ERROR
        yield REDPoint(
            instance=instance,
            series=series,
            histogram=True,
            cumulative=cumulative,
            start_time_unix_nano=int(point.start_time_unix_nano),
            time_unix_nano=int(point.time_unix_nano),
            count=int(point.count),
            bucket_counts=buckets or (int(point.count),),
            boundaries=bounds if buckets else (),
            sum=float(point.sum) * scale,
            min=float(point.min) * scale if point.HasField("min") else None,
            max=float(point.max) * scale if point.HasField("max") else None,
            exemplars=_exemplars(point, scale, error),
        )
