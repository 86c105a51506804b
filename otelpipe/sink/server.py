"""A local OTLP receiver on gRPC and HTTP/protobuf, built on opentelemetry-proto's service definitions.

It answers every export with success and hands the decoded request to a `SinkStore`. It binds
127.0.0.1 by default: it is the demo's embedded default and the peer in tests, not a collector.
"""

from __future__ import annotations

import gzip
import logging
import threading
import zlib
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from otelpipe.sink.store import Received, Signal, SinkStore

_log = logging.getLogger("otelpipe.sink")

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
_MAX_BODY = 64 * 1024 * 1024


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, store: SinkStore) -> None:
        self._store = store

    def Export(self, request: Any, context: Any) -> Any:
        self._store.add(Received("traces", "grpc", request))
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self, store: SinkStore) -> None:
        self._store = store

    def Export(self, request: Any, context: Any) -> Any:
        self._store.add(Received("metrics", "grpc", request))
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _LogsService(logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
    def __init__(self, store: SinkStore) -> None:
        self._store = store

    def Export(self, request: Any, context: Any) -> Any:
        self._store.add(Received("logs", "grpc", request))
        return logs_service_pb2.ExportLogsServiceResponse()


def _handler_for(store: SinkStore) -> type[BaseHTTPRequestHandler]:
    class _OTLPHTTPHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            route = _HTTP_PATHS.get(self.path.split("?", 1)[0])
            if route is None:
                self._reply(404, b"", "text/plain")
                return
            signal, request_type, response_type = route
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self._reply(413, b"", "text/plain")
                return
            body = self.rfile.read(length)
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            try:
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                request = request_type()
                request.ParseFromString(body)
            except Exception:  # a malformed request is the client's problem, never the sink's
                self._reply(400, b"malformed OTLP protobuf", "text/plain")
                return
            store.add(Received(signal, "http", request))
            self._reply(200, response_type().SerializeToString(), "application/x-protobuf")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("http: " + format, *args)

    return _OTLPHTTPHandler


class OTLPSink:
    """gRPC (default 4317) and HTTP/protobuf (default 4318) OTLP receivers writing into one store.

    Port 0 picks a free port; the bound ports are in `grpc_port` and `http_port` after `start()`.
    Pass `None` as a port to disable that transport.
    """

    def __init__(
        self,
        store: SinkStore | None = None,
        *,
        host: str = "127.0.0.1",
        grpc_port: int | None = 4317,
        http_port: int | None = 4318,
    ) -> None:
        self.store = store or SinkStore()
        self.host = host
        self.grpc_port = grpc_port
        self.http_port = http_port
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    def start(self) -> OTLPSink:
        """Bind and serve in background threads; raises OSError if a port is taken."""
        if self.grpc_port is not None:
            server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otelpipe-sink")
            )
            trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self.store), server)  # type: ignore[no-untyped-call]
            metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(self.store), server)  # type: ignore[no-untyped-call]
            logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsService(self.store), server)  # type: ignore[no-untyped-call]
            bound = server.add_insecure_port(f"{self.host}:{self.grpc_port}")
            if bound == 0:
                raise OSError(f"cannot bind OTLP/gRPC on {self.host}:{self.grpc_port}")
            self.grpc_port = bound
            server.start()
            self._grpc = server
        if self.http_port is not None:
            self._http = ThreadingHTTPServer((self.host, self.http_port), _handler_for(self.store))
            self._http.daemon_threads = True
            self.http_port = self._http.server_address[1]
            self._http_thread = threading.Thread(
                target=self._http.serve_forever, name="otelpipe-sink-http", daemon=True
            )
            self._http_thread.start()
        return self

    @property
    def grpc_endpoint(self) -> str:
        """Value for OTEL_EXPORTER_OTLP_ENDPOINT with protocol grpc."""
        return f"http://{self.host}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """Value for OTEL_EXPORTER_OTLP_ENDPOINT with protocol http/protobuf."""
        return f"http://{self.host}:{self.http_port}"

    def stop(self) -> None:
        """Stop both servers; safe to call twice."""
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait(2)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> OTLPSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
