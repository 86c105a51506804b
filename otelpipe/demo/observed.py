"""What the demo shows, read from what really arrived: OTLP metrics in the sink and incident webhooks.

Nothing here computes a figure of its own: RED rows are the services' exported
`traces.span.metrics.*` points, SLO rows their `otelpipe.slo.*` gauges, figure rows their
business (`shop.*`, `payments.*`) and system (`system.*`, `process.*`) metrics, and incidents the
webhook bodies the shop's incident engine posted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otelpipe.sink.store import Received, SinkStore


def _value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _points(request: ExportMetricsServiceRequest) -> Iterator[tuple[str, str, dict[str, Any], Any, str]]:
    """(service, metric name, attributes, data point, unit) for every point in one export request."""
    for rm in request.resource_metrics:
        service = next(
            (str(_value(kv.value)) for kv in rm.resource.attributes if kv.key == "service.name"),
            "unknown_service",
        )
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if not kind:
                    continue
                for point in getattr(metric, kind).data_points:
                    attributes = {kv.key: _value(kv.value) for kv in point.attributes}
                    yield service, metric.name, attributes, point, metric.unit


@dataclass
class REDRow:
    """Latest cumulative RED figures of one (service, operation)."""

    service: str
    operation: str
    kind: str
    calls: int = 0
    errors: int = 0
    duration_sum: float = 0.0
    duration_count: int = 0
    duration_unit: str = "s"  # as exported: `ms` (the spanmetrics connector's default) or `s`

    @property
    def error_ratio(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def mean_ms(self) -> float:
        scale = 1.0 if self.duration_unit == "ms" else 1000.0
        return scale * self.duration_sum / self.duration_count if self.duration_count else 0.0


@dataclass
class SLORow:
    """Latest otelpipe.slo.* gauges of one SLO."""

    service: str
    slo: str
    objective: float | None = None
    budget_remaining: float | None = None
    burn_rates: dict[str, float] = field(default_factory=dict)


@dataclass
class FigureRow:
    """One business or system figure of one service, from its latest exported points."""

    service: str
    figure: str  # e.g. "orders created", "CPU busy"
    value: float
    unit: str = ""


# metric name -> (figure, unit, how): sum of cumulative points, mean of gauges, 1 - mean (idle -> busy),
# or a histogram's mean observation.
_FIGURES: dict[str, tuple[str, str, str]] = {
    "shop.orders.created": ("orders created", "", "sum"),
    "shop.revenue": ("revenue", "USD", "sum"),
    "shop.order.amount": ("mean order amount", "USD", "mean"),
    "shop.signups": ("signups", "", "sum"),
    "payments.charges": ("payment charges", "", "sum"),
    "system.cpu.utilization": ("CPU busy", "%", "busy"),
    "system.memory.utilization": ("memory used", "%", "used"),
    "process.cpu.utilization": ("process CPU", "%", "sum"),
}


class MetricView:
    """Keeps the latest point per series from the sink's metric exports (cumulative temporality)."""

    def __init__(self, store: SinkStore) -> None:
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, str, tuple[tuple[str, Any], ...]], Any] = {}
        self._units: dict[str, str] = {}
        store.subscribe(self._on_received)
        for received in store.received("metrics"):
            self._on_received(received)

    def _on_received(self, received: Received) -> None:
        if received.signal != "metrics" or not isinstance(received.request, ExportMetricsServiceRequest):
            return
        with self._lock:
            for service, name, attrs, point, unit in _points(received.request):
                self._latest[(service, name, tuple(sorted(attrs.items())))] = point
                if unit:
                    self._units[name] = unit

    def red_rows(self) -> list[REDRow]:
        """One row per (service, span name): calls, errors, mean duration."""
        rows: dict[tuple[str, str], REDRow] = {}
        with self._lock:
            items = list(self._latest.items())
            unit = self._units.get("traces.span.metrics.duration", "s")
        for (service, name, attr_items), point in items:
            attrs = dict(attr_items)
            if name not in ("traces.span.metrics.calls", "traces.span.metrics.duration"):
                continue
            if attrs.get("otel.metric.overflow"):
                continue
            operation = str(attrs.get("span.name", "?"))
            row = rows.setdefault(
                (service, operation),
                REDRow(
                    service, operation, str(attrs.get("span.kind", "")).removeprefix("SPAN_KIND_").lower()
                ),
            )
            if name == "traces.span.metrics.calls":
                row.calls += int(point.as_int or point.as_double)
                if attrs.get("status.code") == "STATUS_CODE_ERROR":
                    row.errors += int(point.as_int or point.as_double)
            else:
                row.duration_sum += float(point.sum)
                row.duration_count += int(point.count)
                row.duration_unit = unit
        return sorted(rows.values(), key=lambda r: (r.service, -r.calls))

    def slo_rows(self) -> list[SLORow]:
        """One row per SLO with its objective, budget left and burn rate per window."""
        rows: dict[tuple[str, str], SLORow] = {}
        with self._lock:
            items = list(self._latest.items())
        for (resource_service, name, attr_items), point in items:
            if not name.startswith("otelpipe.slo."):
                continue
            attrs = dict(attr_items)
            key = (str(attrs.get("service", resource_service)), str(attrs.get("slo", "?")))
            row = rows.setdefault(key, SLORow(*key))
            value = float(point.as_double or point.as_int)
            if name == "otelpipe.slo.objective":
                row.objective = value
            elif name == "otelpipe.slo.error_budget.remaining":
                row.budget_remaining = value
            elif name == "otelpipe.slo.burn_rate":
                row.burn_rates[str(attrs.get("window", "?"))] = value
        return sorted(rows.values(), key=lambda r: (r.service, r.slo))

    def figure_rows(self) -> list[FigureRow]:
        """Business figures (orders, revenue, signups, charges) and system ones (CPU, memory) per service."""
        collected: dict[tuple[str, str], list[tuple[dict[str, Any], Any]]] = {}
        with self._lock:
            items = list(self._latest.items())
        for (service, name, attr_items), point in items:
            if name in _FIGURES:
                collected.setdefault((service, name), []).append((dict(attr_items), point))
        rows: list[FigureRow] = []
        for (service, name), points in sorted(collected.items()):
            figure, unit, how = _FIGURES[name]
            value = _figure(how, points)
            if value is not None:
                rows.append(FigureRow(service, figure, value, unit))
        return rows


class WebhookInbox:
    """A local webhook receiver: the shop's incident engine posts its open/update/resolve events here."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        inbox = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {"unparsed": True}
                with inbox._lock:
                    inbox.events.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, 0), _Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}/incidents"
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-webhook", daemon=True)
        self._thread.start()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _number(point: Any) -> float:
    return float(point.as_double or point.as_int)


def _figure(how: str, points: list[tuple[dict[str, Any], Any]]) -> float | None:
    if how == "mean":
        count = sum(int(p.count) for _, p in points)
        return sum(float(p.sum) for _, p in points) / count if count else None
    if how in ("busy", "used"):
        wanted = "idle" if how == "busy" else "used"
        values = [_number(p) for attrs, p in points if attrs.get("state") == wanted]
        if not values:
            return None
        mean = sum(values) / len(values)
        return 1 - mean if how == "busy" else mean
    return sum(_number(p) for _, p in points)
