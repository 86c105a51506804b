"""What `otelpipe sink` received: decoded OTLP requests, per-signal counts, optional OTLP-JSON lines.

The sink is a developer tool and the receiving peer in tests, so it keeps the decoded
messages and simple counts that a test or a terminal summary can read. What it keeps is bounded
both in requests and in bytes, and the OTLP-JSON output file (about 8x the protobuf size) rotates.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Literal, Protocol

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelpipe.diagnostics import warn_limited

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


class LineSink(Protocol):
    """Where OTLP-JSON lines go: an open text file or a `RotatingJsonl`."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class RotatingJsonl:
    """Appends lines to `path`; when the next line would pass `max_bytes`, the file becomes `path.1`.

    Disk use stays under about `2 * max_bytes` (one full previous file and the current one).
    A single line longer than `max_bytes` is still written, alone in its file.
    """

    def __init__(self, path: str, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        self.path = path
        self.max_bytes = max_bytes
        self.rotations = 0
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._size = self._file.tell()

    def write(self, text: str, /) -> int:
        size = len(text.encode())
        if self._size and self._size + size > self.max_bytes:
            self._file.close()
            os.replace(self.path, self.path + ".1")
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            self._size = 0
            self.rotations += 1
        self._size += size
        return self._file.write(text)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class SinkStore:
    """Thread-safe record of everything received: the last `keep` requests, at most `max_bytes` of them.

    `max_bytes` counts protobuf (wire) bytes; the decoded messages take a few times that in memory.
    Counts (`totals`, `per_service`, `requests`) cover every request, kept or not.
    """

    def __init__(
        self, *, keep: int = 10_000, max_bytes: int = 64 * 1024 * 1024, jsonl: IO[str] | LineSink | None = None
    ) -> None:
        if keep < 1 or max_bytes < 1:
            raise ValueError("keep and max_bytes must be >= 1")
        self._lock = threading.Lock()
        self._received: deque[tuple[Received, int]] = deque()
        self._keep = keep
        self._max_bytes = max_bytes
        self._kept_bytes = 0
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
        size = received.request.ByteSize()
        line = None
        if self._jsonl is not None:
            body = MessageToDict(received.request)
            line = json.dumps({"signal": received.signal, "transport": received.transport, "request": body})
        with self._lock:
            if size <= self._max_bytes:
                self._received.append((received, size))
                self._kept_bytes += size
                while len(self._received) > self._keep or self._kept_bytes > self._max_bytes:
                    self._kept_bytes -= self._received.popleft()[1]
            self._counts[received.signal].update(counts)
            self._requests[f"{received.signal}/{received.transport}"] += 1
            if line is not None and self._jsonl is not None:
                try:
                    self._jsonl.write(line + "\n")
                    self._jsonl.flush()
                except OSError as exc:  # a full disk must not stop the receiving
                    warn_limited("sink.output", "sink: cannot write the output file: %s", exc, area="sink")
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
            return [r for r, _ in self._received if signal is None or r.signal == signal]

    def kept_bytes(self) -> int:
        """Protobuf bytes of the requests currently kept (never above `max_bytes`)."""
        with self._lock:
            return self._kept_bytes

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
