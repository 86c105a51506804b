"""Fixtures for the fault suite: a black-hole TCP endpoint, free ports, OTLP payload readers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FAULT_APP = Path(__file__).with_name("fault_app.py")


class BlackHole:
    """Accepts TCP connections on 127.0.0.1 and never answers (keeps at most 256 sockets open)."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = int(self._server.getsockname()[1])
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blackhole", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            self.accepted += 1
            if len(self._held) < 256:
                self._held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self._server.close()


@pytest.fixture
def blackhole() -> Iterator[BlackHole]:
    hole = BlackHole()
    try:
        yield hole
    finally:
        hole.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A port nothing listens on (connections are refused) until a test binds it."""
    return _free_port


def _span_count(sink: Any, name: str | None = None) -> int:
    count = 0
    for received in sink.store.received("traces"):
        for rs in received.request.resource_spans:
            for ss in rs.scope_spans:
                count += sum(1 for span in ss.spans if name is None or span.name == name)
    return count


@pytest.fixture
def span_count() -> Callable[..., int]:
    """`span_count(sink, name=None)`: spans the sink received (optionally of one name)."""
    return _span_count
