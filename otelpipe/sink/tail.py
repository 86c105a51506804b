"""`otelpipe sink --tail`: print what arrives, readably: span names, new metric names, log bodies, incidents.

The sink's counts say *that* an app sends; a newcomer wants to see *what*: which operations became
spans, which metrics exist, what the logs say, and the incidents otelpipe emits as OTLP events.
One line per export request for spans, one per new metric name, one per log record (bounded per
request). A listener on the sink's store; it never raises into the receiving server.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from otelpipe.diagnostics import warn_limited
from otelpipe.sink.store import Received

INCIDENT_EVENT = "otelpipe.incident"  # the event name otelpipe's OTLP incident notifier emits
_MAX_NAMES = 8
_MAX_TEXT = 240


def _service(attributes: Iterable[KeyValue]) -> str:
    for kv in attributes:
        if kv.key == "service.name":
            return kv.value.string_value or "unknown_service"
    return "unknown_service"


def _text(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "string_value":
        return value.string_value
    if kind in ("kvlist_value", "array_value"):
        return str(getattr(value, kind)).replace("\n", " ")
    return str(getattr(value, kind))


def _cut(text: str, limit: int = _MAX_TEXT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SinkTail:
    """Store listener that turns each received request into readable lines passed to `write`."""

    def __init__(self, write: Callable[[str], None], *, max_logs_per_request: int = 20) -> None:
        self._write = write
        self._max_logs = max_logs_per_request
        self._metric_names: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def __call__(self, received: Received) -> None:
        try:
            lines = list(self.lines(received))
        except Exception:  # a surprising message must not break the receiving server
            warn_limited("sink-tail", "otelpipe sink --tail could not render a request", area="sink")
            return
        if lines:
            with self._lock:
                for line in lines:
                    self._write(line)

    def lines(self, received: Received) -> Iterable[str]:
        """The lines for one request (see the module docstring)."""
        request = received.request
        if isinstance(request, ExportTraceServiceRequest):
            yield from self._spans(request)
        elif isinstance(request, ExportMetricsServiceRequest):
            yield from self._metrics(request)
        elif isinstance(request, ExportLogsServiceRequest):
            yield from self._logs(request)

    @staticmethod
    def _spans(request: ExportTraceServiceRequest) -> Iterable[str]:
        for rs in request.resource_spans:
            names = Counter(span.name for ss in rs.scope_spans for span in ss.spans)
            if not names:
                continue
            shown = ", ".join(f"{name} x{count}" for name, count in names.most_common(_MAX_NAMES))
            if len(names) > _MAX_NAMES:
                shown += f", … {len(names) - _MAX_NAMES} more"
            yield f"spans    {_service(rs.resource.attributes)}: {_cut(shown)}"

    def _metrics(self, request: ExportMetricsServiceRequest) -> Iterable[str]:
        for rm in request.resource_metrics:
            service = _service(rm.resource.attributes)
            fresh = []
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    key = (service, metric.name)
                    if key not in self._metric_names:
                        self._metric_names.add(key)
                        fresh.append(metric.name)
            if fresh:
                yield f"metrics  {service}: new {', '.join(fresh)}"

    def _logs(self, request: ExportLogsServiceRequest) -> Iterable[str]:
        shown = skipped = 0
        for rl in request.resource_logs:
            service = _service(rl.resource.attributes)
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    if shown >= self._max_logs:
                        skipped += 1
                        continue
                    shown += 1
                    body = _cut(_text(record.body))
                    if record.event_name == INCIDENT_EVENT:
                        yield f"INCIDENT {service}: {body}"
                    else:
                        level = record.severity_text or "-"
                        yield f"log      {service} {level}: {body}"
        if skipped:
            yield f"log      … {skipped} more record(s) in this request"
