"""An OTLP receiver on gRPC and HTTP/protobuf that hands every decoded request to one callback.

`OTLPReceiver(on_request)` is the reusable part of `otelpipe sink` (and of anything else that
accepts OTLP). It answers success once the callback returns; if the callback raises, the client is
told to retry (HTTP 503, gRPC UNAVAILABLE). Every resource a client can make it spend is bounded by
`ReceiverLimits`: bytes per request after decompression, concurrent HTTP connections (one thread
each; more are answered 503 and closed), idle and slow connections (request headers and body each
within a deadline, not only an idle timeout that every byte resets), concurrent gRPC calls. Refused
requests cost one log line (rate-limited), never a traceback.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from otelpipe.diagnostics import logger, warn_limited
from otelpipe.sink.body import BodyError, content_length, decode_body
from otelpipe.sink.store import Received, Signal

_log = logger("sink")

OnRequest = Callable[[Received], None]

_HTTP_PATHS: dict[str, tuple[Signal, Any, Any]] = {
    "/v1/traces": (
        "traces",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "/v1/metrics": (
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/logs": (
        "logs",
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
}
_READ_CHUNK = 64 * 1024
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
)


@dataclass(frozen=True)
class ReceiverLimits:
    """What one client may cost the receiver.

    `max_request_bytes` caps a request body both as sent and after gzip/deflate decompression (the
    OTLP exporters' batches are far below it; gRPC's own default limit is 4 MiB).
    `max_connections` HTTP connections are served at once, one thread each; further connections
    get 503 and are closed. A connection idle for `idle_timeout_s` is closed, a request's line and
    headers must arrive within `header_timeout_s` of its first byte, and its body within
    `request_timeout_s`. `max_concurrent_rpcs` bounds gRPC calls in progress
    (more get RESOURCE_EXHAUSTED, which OTLP exporters retry).
    """

    max_request_bytes: int = 16 * 1024 * 1024
    max_connections: int = 64
    idle_timeout_s: float = 15.0
    request_timeout_s: float = 30.0
    grpc_workers: int = 4
    max_concurrent_rpcs: int = 64
    header_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if min(self.max_request_bytes, self.max_connections, self.grpc_workers, self.max_concurrent_rpcs) < 1:
            raise ValueError("ReceiverLimits: byte, connection, worker and RPC limits must be >= 1")
        if min(self.idle_timeout_s, self.request_timeout_s, self.header_timeout_s) <= 0:
            raise ValueError("ReceiverLimits: timeouts must be > 0")


class _Service:
    """One gRPC OTLP service: decoded request → callback → empty success response."""

    def __init__(self, signal: Signal, response_type: Any, on_request: OnRequest) -> None:
        self._signal = signal
        self._response_type = response_type
        self._on_request = on_request

    def Export(self, request: Any, context: Any) -> Any:
        try:
            self._on_request(Received(self._signal, "grpc", request))
        except Exception as exc:
            warn_limited(
                "sink.callback",
                "sink: handling a gRPC %s request failed: %s: %s",
                self._signal,
                type(exc).__name__,
                exc,
                interval_s=10.0,
                area="sink",
            )
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver could not take the request")
        return self._response_type()


class _TraceService(_Service, trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    pass


class _MetricsService(_Service, metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    pass


class _LogsService(_Service, logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
    pass


def _refuse(kind: str, peer: object, reason: str) -> None:
    warn_limited(
        f"sink.refused.{kind}",
        "sink: refused a request from %s: %s",
        peer,
        reason,
        interval_s=10.0,
        area="sink",
    )


class _HeaderDeadline(io.RawIOBase):
    """A connection's read side: while a request line and headers are read, each recv gets only the
    time left until the header deadline, which starts at the request's first byte (the idle
    timeout alone restarts with every byte, so a client dripping one byte at a time would hold
    its connection and thread forever)."""

    def __init__(self, sock: socket.socket, idle_timeout_s: float, header_timeout_s: float) -> None:
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._idle_timeout_s = idle_timeout_s
        self._header_timeout_s = header_timeout_s
        self._reading_headers = False
        self._deadline: float | None = None
        self.expired = False

    def start_request(self) -> None:
        self._reading_headers, self._deadline = True, None

    def headers_read(self) -> None:
        self._reading_headers, self._deadline = False, None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        if not self._reading_headers:
            return self._raw.readinto(buffer)
        if self._deadline is None:  # waiting for a request: only the idle timeout applies
            count = self._raw.readinto(buffer)
            if count:
                self._deadline = time.monotonic() + self._header_timeout_s
            return count
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self.expired = True
            raise TimeoutError(f"request headers not received within {self._header_timeout_s:g}s")
        self._sock.settimeout(min(remaining, self._idle_timeout_s))
        try:
            return self._raw.readinto(buffer)
        except TimeoutError:
            self.expired = time.monotonic() >= self._deadline
            raise
        finally:
            self._sock.settimeout(self._idle_timeout_s)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _handler_for(on_request: OnRequest, limits: ReceiverLimits) -> type[BaseHTTPRequestHandler]:
    class _OTLPHTTPHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = limits.idle_timeout_s  # applied to the socket by StreamRequestHandler.setup

        def setup(self) -> None:
            super().setup()
            self.rfile.close()  # replaced below; the socket itself stays open
            self._head_reader = _HeaderDeadline(
                self.connection, limits.idle_timeout_s, limits.header_timeout_s
            )
            self.rfile = io.BufferedReader(self._head_reader)

        def handle_one_request(self) -> None:
            self._head_reader.start_request()
            super().handle_one_request()  # a TimeoutError there closes the connection, unanswered
            if self._head_reader.expired:
                _refuse(
                    "header-timeout",
                    self.client_address[0],
                    f"request headers not received within {limits.header_timeout_s:g}s",
                )

        def parse_request(self) -> bool:
            try:
                return super().parse_request()
            finally:
                self._head_reader.headers_read()

        def do_POST(self) -> None:
            route = _HTTP_PATHS.get(self.path.split("?", 1)[0])
            if route is None:
                self._fail(404, "not an OTLP path", log=False)
                return
            signal, request_type, response_type = route
            try:
                length = content_length(
                    self.headers.get_all("Content-Length") or [],
                    transfer_encoding=self.headers.get("Transfer-Encoding"),
                    cap=limits.max_request_bytes,
                )
                raw = self._read_body(length)
                if raw is None:
                    return
                body = decode_body(
                    raw, self.headers.get("Content-Encoding") or "", cap=limits.max_request_bytes
                )
            except BodyError as exc:
                self._fail(exc.status, exc.reason)
                return
            request = request_type()
            try:
                request.ParseFromString(body)
            except Exception:  # protobuf's DecodeError; a malformed request is the client's problem
                self._fail(400, "malformed OTLP protobuf", keep_alive=True)
                return
            try:
                on_request(Received(signal, "http", request))
            except Exception as exc:
                warn_limited(
                    "sink.callback",
                    "sink: handling an HTTP %s request failed: %s: %s",
                    signal,
                    type(exc).__name__,
                    exc,
                    interval_s=10.0,
                    area="sink",
                )
                self._reply(503, b"receiver could not take the request", "text/plain")
                return
            self._reply(200, response_type().SerializeToString(), "application/x-protobuf")

        def _read_body(self, length: int) -> bytes | None:
            """The body, or None (connection closed) when it does not arrive within the request timeout."""
            deadline = time.monotonic() + limits.request_timeout_s
            chunks: list[bytes] = []
            left = length
            try:
                while left > 0:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    self.connection.settimeout(min(remaining, limits.idle_timeout_s))
                    chunk = self.rfile.read1(min(left, _READ_CHUNK))
                    if not chunk:
                        self.close_connection = True
                        return None
                    chunks.append(chunk)
                    left -= len(chunk)
            except TimeoutError:
                _refuse(
                    "timeout",
                    self.client_address[0],
                    f"body not received within {limits.request_timeout_s:g}s",
                )
                self._fail(408, "request body timed out", log=False)
                return None
            finally:
                self.connection.settimeout(limits.idle_timeout_s)
            return b"".join(chunks)

        def _fail(self, status: int, reason: str, *, log: bool = True, keep_alive: bool = False) -> None:
            """Answer an error; unless the body was read, close the connection rather than skip it."""
            if log:
                _refuse(str(status), self.client_address[0], f"{status} {reason}")
            if not keep_alive:
                self.close_connection = True
            self._reply(status, reason.encode(), "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                self.close_connection = True  # the client went away; nothing to tell it

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("http: " + format, *args)

    return _OTLPHTTPHandler


class _BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most `max_connections` handler threads and one-line errors."""

    daemon_threads = True
    request_queue_size = 128  # the kernel's accept backlog: the only queue, and a bounded one

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], limits: ReceiverLimits
    ):
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self.refused = 0
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            _refuse("busy", client_address[0], "too many connections (503)")
            try:
                request.setblocking(False)
                request.send(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        warn_limited(
            "sink.error",
            "sink: connection from %s failed: %s: %s",
            client_address[0],
            type(exc).__name__,
            exc,
            interval_s=10.0,
            area="sink",
        )


class OTLPReceiver:
    """gRPC (default 4317) and HTTP/protobuf (default 4318) OTLP receivers calling `on_request`.

    `on_request(Received)` runs on a server thread for every decoded export request; raise to make
    the client retry. Port 0 picks a free port (the bound ports are in `grpc_port` and `http_port`
    after `start()`); `None` disables that transport.
    """

    def __init__(
        self,
        on_request: OnRequest,
        *,
        host: str = "127.0.0.1",
        grpc_port: int | None = 4317,
        http_port: int | None = 4318,
        limits: ReceiverLimits | None = None,
    ) -> None:
        self.on_request = on_request
        self.host = host
        self.grpc_port = grpc_port
        self.http_port = http_port
        self.limits = limits or ReceiverLimits()
        self._grpc: grpc.Server | None = None
        self._http: _BoundedHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    def start(self) -> OTLPReceiver:
        """Bind and serve in background threads; raises OSError if a port is taken."""
        try:
            if self.grpc_port is not None:
                self._start_grpc()
            if self.http_port is not None:
                self._start_http()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_grpc(self) -> None:
        limits = self.limits
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=limits.grpc_workers, thread_name_prefix="otelpipe-sink"),
            maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", limits.max_request_bytes),
                ("grpc.max_connection_idle_ms", int(limits.idle_timeout_s * 1000)),
            ],
        )
        on_request = self.on_request
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService("traces", trace_service_pb2.ExportTraceServiceResponse, on_request), server
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _MetricsService("metrics", metrics_service_pb2.ExportMetricsServiceResponse, on_request), server
        )
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _LogsService("logs", logs_service_pb2.ExportLogsServiceResponse, on_request), server
        )
        bound = server.add_insecure_port(f"{self.host}:{self.grpc_port}")
        if bound == 0:
            raise OSError(f"cannot bind OTLP/gRPC on {self.host}:{self.grpc_port}")
        self.grpc_port = bound
        server.start()
        self._grpc = server

    def _start_http(self) -> None:
        assert self.http_port is not None
        server = _BoundedHTTPServer(
            (self.host, self.http_port), _handler_for(self.on_request, self.limits), self.limits
        )
        self._http = server
        self.http_port = server.server_address[1]
        self._http_thread = threading.Thread(
            target=server.serve_forever, name="otelpipe-sink-http", daemon=True
        )
        self._http_thread.start()

    @property
    def grpc_endpoint(self) -> str:
        """Value for OTEL_EXPORTER_OTLP_ENDPOINT with protocol grpc."""
        return f"http://{self.host}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """Value for OTEL_EXPORTER_OTLP_ENDPOINT with protocol http/protobuf."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def refused_connections(self) -> int:
        """HTTP connections answered 503 because `max_connections` were busy."""
        return self._http.refused if self._http is not None else 0

    def stop(self) -> None:
        """Stop both servers; safe to call twice."""
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait(2)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
