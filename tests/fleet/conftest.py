"""Fixtures for the fleet tests: OTLP RED requests shaped like otelpipe's or the spanmetrics connector's."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
SECOND_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
MS_BOUNDS = (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000)


def _kv(attributes: Mapping[str, Any]) -> list[KeyValue]:
    out = []
    for key, value in attributes.items():
        if isinstance(value, bool):
            out.append(KeyValue(key=key, value=AnyValue(bool_value=value)))
        elif isinstance(value, int):
            out.append(KeyValue(key=key, value=AnyValue(int_value=value)))
        else:
            out.append(KeyValue(key=key, value=AnyValue(string_value=str(value))))
    return out


def red_request(
    service: str = "checkout",
    *,
    instance: str = "pid-1",
    start_s: float = 1000.0,
    time_s: float = 1001.0,
    ok: int = 0,
    errors: int = 0,
    fast: float = 1.0,
    shape: str = "otelpipe",
    temporality: int = CUMULATIVE,
) -> ExportMetricsServiceRequest:
    """One export with a SERVER series of `ok` calls and one of `errors` error calls.

    `fast` is the fraction of each series' calls put in the 10 ms bucket, the rest in the 1 s one.
    `shape` "otelpipe" puts service.name on the resource and durations in s; "spanmetrics" puts it
    on each data point too (as the connector does), with durations in ms and scope spanmetricsconnector;
    "legacy" is spanmetrics with the old `calls` / `duration` names.
    """
    spanmetrics = shape in ("spanmetrics", "legacy")
    resource: dict[str, Any] = {"service.instance.id": instance, "process.pid": 7}
    if not spanmetrics:
        resource["service.name"] = service
    bounds: Sequence[float] = MS_BOUNDS if spanmetrics else SECOND_BOUNDS
    fast_at, slow_at = (bounds.index(10), bounds.index(1000)) if spanmetrics else (1, 9)
    calls_metric = metrics_pb2.Metric(
        name="calls" if shape == "legacy" else "traces.span.metrics.calls",
        sum=metrics_pb2.Sum(aggregation_temporality=temporality, is_monotonic=True),
    )
    duration_metric = metrics_pb2.Metric(
        name="duration" if shape == "legacy" else "traces.span.metrics.duration",
        unit="ms" if spanmetrics else "s",
        histogram=metrics_pb2.Histogram(aggregation_temporality=temporality),
    )
    for status, count in (("STATUS_CODE_UNSET", ok), ("STATUS_CODE_ERROR", errors)):
        if not count:
            continue
        attributes: dict[str, Any] = {
            "span.name": "GET /pay",
            "span.kind": "SPAN_KIND_SERVER",
            "status.code": status,
        }
        if spanmetrics:
            attributes["service.name"] = service
        times = {"start_time_unix_nano": int(start_s * 1e9), "time_unix_nano": int(time_s * 1e9)}
        calls_metric.sum.data_points.append(
            metrics_pb2.NumberDataPoint(attributes=_kv(attributes), as_int=count, **times)
        )
        buckets = [0] * (len(bounds) + 1)
        quick = round(count * fast)
        buckets[fast_at] = quick
        buckets[slow_at] = count - quick
        scale = 1000.0 if spanmetrics else 1.0
        duration_metric.histogram.data_points.append(
            metrics_pb2.HistogramDataPoint(
                attributes=_kv(attributes),
                count=count,
                sum=(quick * 0.01 + (count - quick) * 1.0) * scale,
                bucket_counts=buckets,
                explicit_bounds=list(bounds),
                **times,
            )
        )
    scope = "spanmetricsconnector" if spanmetrics else "otelpipe.red"
    return ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource={"attributes": _kv(resource)},
                scope_metrics=[
                    metrics_pb2.ScopeMetrics(scope={"name": scope}, metrics=[calls_metric, duration_metric])
                ],
            )
        ]
    )


@pytest.fixture
def make_request() -> Callable[..., ExportMetricsServiceRequest]:
    """`make_request(service, instance=..., ok=..., errors=...)`: see `red_request`."""
    return red_request


class FakeClock:
    """Unix nanoseconds that only move when a test says so."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.ns = int(start_s * 1e9)

    def __call__(self) -> int:
        return self.ns

    def seconds(self) -> float:
        return self.ns / 1e9

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
