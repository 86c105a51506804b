"""Immutable view of the RED store at one instant: the contract between the span path and its readers.

The span processor writes into a mutable store; everything downstream (metric export, SLO windows,
incident evidence, the fleet merger and pusher) reads a `REDSnapshot` instead, so no reader ever
holds the store's lock for long and data only flows one way.

One representation of a series: its value is a `SeriesStats`, its key a `SeriesIdentity` (the
attributes as name/value pairs sorted by name, from `series_identity` or `SeriesStats.identity`).
The store's own per-thread layout is private to `otelpipe.processors.red` and never leaves it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from opentelemetry.trace import SpanKind

AttributeValue = str | int | float | bool

#: The key of a series wherever one is kept between collections (exporter delta state, SLO windows,
#: fleet merger and pusher): its attributes as (name, value) pairs sorted by name, so two mappings
#: with the same content are the same series whatever their order.
SeriesIdentity = tuple[tuple[str, AttributeValue], ...]


def series_identity(attributes: Mapping[str, AttributeValue]) -> SeriesIdentity:
    """The `SeriesIdentity` of a series with these attributes."""
    return tuple(sorted(attributes.items(), key=_name))


def _name(item: tuple[str, AttributeValue]) -> str:
    return item[0]


# Dimension names, as the Collector's spanmetrics connector spells them.
SERVICE_NAME = "service.name"
SPAN_NAME = "span.name"
SPAN_KIND = "span.kind"
STATUS_CODE = "status.code"
HTTP_ROUTE = "http.route"
HTTP_METHOD = "http.request.method"
HTTP_STATUS = "http.response.status_code"
OVERFLOW = "otel.metric.overflow"

STATUS_ERROR = "STATUS_CODE_ERROR"

#: Span kinds, spelled once: a setting's name (`server`) -> the SDK's `SpanKind` -> the RED label
#: (`SPAN_KIND_SERVER`, as the spanmetrics connector writes it). Settings, specs, the span path and
#: the exporters all read these two tables.
SPAN_KINDS_BY_NAME: Mapping[str, SpanKind] = {
    kind.name.lower(): kind
    for kind in (SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL)
}
SPAN_KIND_LABELS: Mapping[SpanKind, str] = {kind: f"SPAN_KIND_{kind.name}" for kind in SpanKind}


@dataclass(frozen=True, slots=True)
class ExemplarRef:
    """One recent span that landed in a histogram bucket: the link from a figure to a trace."""

    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex
    value: float  # duration in seconds
    time_unix_nano: int
    sampled: bool
    error: bool


@dataclass(frozen=True, slots=True)
class SeriesStats:
    """Cumulative RED figures of one series (one combination of dimension values).

    `bucket_counts` are per bucket (not cumulative), one more than there are boundaries, as in OTLP.
    `status.code` in `attributes` is the effective outcome: `STATUS_CODE_ERROR` whenever the span
    counted as an error (`errors == calls` for such a series, 0 otherwise).
    """

    attributes: Mapping[str, AttributeValue]
    calls: int
    errors: int
    bucket_counts: tuple[int, ...]
    sum: float
    min: float
    max: float
    start_time_unix_nano: int
    exemplars: tuple[ExemplarRef, ...] = ()

    @property
    def identity(self) -> SeriesIdentity:
        """This series' key (`series_identity` of its attributes)."""
        return series_identity(self.attributes)

    def count_at_most(self, boundaries: tuple[float, ...], threshold: float) -> int:
        """Calls with duration <= `threshold`, which must be one of `boundaries`."""
        index = boundaries.index(threshold)
        return sum(self.bucket_counts[: index + 1])


@dataclass(frozen=True, slots=True)
class REDSnapshot:
    """All series of one RED store, copied under its lock at `time_unix_nano`."""

    boundaries: tuple[float, ...]
    series: tuple[SeriesStats, ...]
    time_unix_nano: int
    overflow_spans: int = 0  # spans folded into the overflow series since start
    skipped_spans: int = 0  # spans that could not be measured (bad timestamps, …)
    edges: tuple[SeriesStats, ...] = field(default=())  # service-graph edges (client/server attrs)

    def __iter__(self) -> Iterator[SeriesStats]:
        return iter(self.series)
