"""What `otelpipe sink` received: decoded OTLP requests, per-signal counts, optional OTLP-JSON lines.

The sink is a developer tool and the receiving peer in tests, so it keeps the decoded
messages (bounded) and simple counts that a test or a terminal summary can read.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Literal

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

Signal = Literal["traces", "metrics", "logs"]
OTLPRequest = ExportTraceServiceRequest | ExportMetricsServiceRequest | ExportLogsServiceRequest


@dataclass(frozen=True)
class Received:
    """One export request as it arrived."""

    signal: Signal
    transport: Literal["grpc", "http"]
    request: OTLPRequest


def _service_of(attributes: object) -> str:
    for kv in attributes:  # type: ignore[attr-defined]
        if kv.key == "service.name":
            return str(kv.value.string_value)
    return "unknown_service"


def count_items(signal: Signal, request: OTLPRequest) -> Counter[str]:
    """Spans, metric data points or log records per service.name in one request."""
    counts: Counter[str] = Counter()
    if isinstance(request, ExportTraceServiceRequest):
        for rs in request.resource_spans:
            counts[_service_of(rs.resource.attributes)] += sum(len(ss.spans) for ss in rs.scope_spans)
    elif isinstance(request, ExportMetricsServiceRequest):
        for rm in request.resource_metrics:
            service = _service_of(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    counts[service] += len(getattr(metric, kind).data_points) if kind else 0
    else:
        for rl in request.resource_logs:
            counts[_service_of(rl.resource.attributes)] += sum(len(sl.log_records) for sl in rl.scope_logs)
    return counts


class SinkStore:
    """Thread-safe record of everything received, bounded to the last `keep` requests."""

    def __init__(self, *, keep: int = 10_000, jsonl: IO[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._received: deque[Received] = deque(maxlen=keep)
        self._counts: dict[Signal, Counter[str]] = {
            "traces": Counter(),
            "metrics": Counter(),
            "logs": Counter(),
        }
        self._requests: Counter[str] = Counter()
        self._jsonl = jsonl
        self._listeners: list[Callable[[Received], None]] = []

    def add(self, received: Received) -> None:
        """Record one request; called from server threads."""
        counts = count_items(received.signal, received.request)
        line = None
        if self._jsonl is not None:
            body = MessageToDict(received.request)
            line = json.dumps({"signal": received.signal, "transport": received.transport, "request": body})
        with self._lock:
            self._received.append(received)
            self._counts[received.signal].update(counts)
            self._requests[f"{received.signal}/{received.transport}"] += 1
            if line is not None and self._jsonl is not None:
                self._jsonl.write(line + "\n")
                self._jsonl.flush()
            listeners = list(self._listeners)
        for listener in listeners:
            listener(received)

    def subscribe(self, listener: Callable[[Received], None]) -> None:
        """Call `listener` for every request received from now on (from a server thread)."""
        with self._lock:
            self._listeners.append(listener)

    def received(self, signal: Signal | None = None) -> list[Received]:
        """A copy of the requests kept, optionally of one signal."""
        with self._lock:
            return [r for r in self._received if signal is None or r.signal == signal]

    def totals(self) -> dict[Signal, int]:
        """Items received per signal (spans, metric points, log records)."""
        with self._lock:
            return {signal: sum(c.values()) for signal, c in self._counts.items()}

    def per_service(self) -> dict[Signal, dict[str, int]]:
        """Items received per signal and service."""
        with self._lock:
            return {signal: dict(c) for signal, c in self._counts.items()}

    def requests(self) -> dict[str, int]:
        """Requests received per `signal/transport`."""
        with self._lock:
            return dict(self._requests)
