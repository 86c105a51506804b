"""A real HTTP server on 127.0.0.1 that records JSON posts, and incident-event builders."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from otelpipe.incidents.model import Incident, IncidentEvent, TraceLink

OPENED_AT = 1_714_564_800.0  # 2024-05-01T12:00:00Z
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"


class Recorder:
    """Collects (path, body) of each POST; `status` decides the reply; `hold` blocks handlers."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[tuple[str, Any]] = []
        self.status: Callable[[int], int] = lambda n: 202
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with recorder.arrived:
                    recorder.requests.append((self.path, body))
                    index = len(recorder.requests)
                    recorder.arrived.notify_all()
                recorder.hold.wait(10)
                self.send_response(recorder.status(index))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self) -> list[Any]:
        with self.arrived:
            return [body for _, body in self.requests]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_incident(**changes: Any) -> Incident:
    fields: dict[str, Any] = dict(
        id="inc-abc-1714564800",
        dedup_key="otelpipe/checkout/availability",
        key="checkout/availability",
        service="checkout",
        name="availability",
        kind="slo",
        severity="critical",
        status="open",
        summary="availability burning 14.9x budget (page: 5m/1h)",
        opened_at=OPENED_AT,
        updated_at=OPENED_AT,
        last_notified_at=OPENED_AT,
        tier="page-5m-1h",
        objective=0.999,
        burn_rates={"5m": 15.2, "1h": 14.9},
        budget_remaining=0.82,
        total=12000,
        errors=180,
        traces=(TraceLink(TRACE_ID, SPAN_ID, 0.31, True, f"http://jaeger:16686/trace/{TRACE_ID}"),),
        labels={"team": "shop"},
    )
    fields.update(changes)
    return Incident(**fields)


def _make_event(kind: str = "opened", at: float = OPENED_AT, **changes: Any) -> IncidentEvent:
    if kind == "resolved":
        changes = {"status": "resolved", "recovered_at": at - 300, "resolved_at": at, **changes}
    return IncidentEvent(kind, make_incident(**changes), at)  # type: ignore[arg-type]


EventFactory = Callable[..., IncidentEvent]


@pytest.fixture
def make_event() -> EventFactory:
    """`make_event(kind="opened", at=OPENED_AT, **incident_field_changes)`."""
    return _make_event


@pytest.fixture
def port_factory() -> Callable[[], int]:
    """A currently free TCP port on 127.0.0.1 (nothing listens on it)."""
    return free_port


@pytest.fixture
def recorder_factory() -> Iterator[Callable[[int], Recorder]]:
    """Start a `Recorder` on a given port (for endpoint-down-then-up tests)."""
    started: list[Recorder] = []

    def start(port: int) -> Recorder:
        server = Recorder(port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
