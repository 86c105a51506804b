"""Notifiers against misbehaving webhook endpoints on real loopback sockets: every cost is bounded.

One tiny server per case (redirecting, answering 1 GiB, dripping one byte at a time, never
accepting) and assertions on what the notifier counts, how long an attempt takes against its
deadline, how much memory it grows, and that its worker is gone when `shutdown(2)` returns.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from otelpipe.config import Settings
from otelpipe.exporters import _http
from otelpipe.exporters._delivery import DeliveryError, DeliveryOptions, QueuedNotifier
from otelpipe.exporters._http import MAX_PENDING_LOOKUPS, MAX_RESPONSE_BYTES
from otelpipe.exporters.alertmanager import AlertmanagerNotifier
from otelpipe.exporters.webhook import WebhookNotifier
from otelpipe.incidents.model import Incident, IncidentEvent
from otelpipe.pipeline import _notifiers

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
GiB = 1024 * MiB


def _event(n: int = 0) -> IncidentEvent:
    incident = Incident(
        id=f"inc-{n}",
        dedup_key=f"otelpipe/checkout/availability-{n}",
        key=f"checkout/availability-{n}",
        service="checkout",
        name="availability",
        kind="slo",
        severity="critical",
        status="open",
        summary="availability burning",
        opened_at=1_714_564_800.0,
        updated_at=1_714_564_800.0,
        last_notified_at=1_714_564_800.0,
    )
    return IncidentEvent("opened", incident, 1_714_564_800.0)


class RawServer:
    """A listening socket on 127.0.0.1 that runs `handle(conn, request_bytes)` per connection."""

    def __init__(self, handle: Callable[[socket.socket, bytes], None]) -> None:
        self.handle = handle
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._one, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head)
                self.handle(conn, head)
            except OSError:
                return

    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._accept.join(5)
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket, bytes], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(handle: Callable[[socket.socket, bytes], None]) -> RawServer:
        server = RawServer(handle)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def notifiers() -> Iterator[list[QueuedNotifier]]:
    made: list[QueuedNotifier] = []
    yield made
    for notifier in made:
        notifier.shutdown(1)


def webhook(url: str, made: list[QueuedNotifier], **options: float) -> WebhookNotifier:
    notifier = WebhookNotifier(url, options=DeliveryOptions(**{"max_attempts": 1, **options}))  # type: ignore[arg-type]
    made.append(notifier)
    return notifier


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_delivery_naming_the_masked_location(
    serve, notifiers, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    def redirect(conn: socket.socket, head: bytes) -> None:
        if head.startswith(b"POST"):
            location = f"http://admin:hunter2@127.0.0.1:{server.port}/landing?token=s3cr3t"
            conn.sendall(
                f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
            )
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    server = serve(redirect)
    caplog.set_level(logging.WARNING, logger="otelpipe")
    notifier = webhook(server.url + "/hook/T0K3N", notifiers, max_attempts=3)
    notifier.submit(_event())
    assert notifier.force_flush(10)
    assert (notifier.delivered, notifier.failed, notifier.retries) == (0, 1, 0)
    assert [head.split(b" ")[0] for head in server.requests] == [b"POST"]  # no GET to the Location
    [message] = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert f"HTTP {status} redirect to http://127.0.0.1:{server.port}/***" in message
    for secret in ("hunter2", "admin", "s3cr3t", "landing", "T0K3N"):
        assert secret not in message


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_one_gib_response_is_not_read_into_memory(serve, notifiers) -> None:
    chunk = bytes(MiB)
    sent = []

    def huge(conn: socket.socket, head: bytes) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {GiB}\r\n\r\n".encode())
        total = 0
        try:
            while total < GiB:
                conn.sendall(chunk)
                total += len(chunk)
        except OSError:
            pass  # the notifier hung up, as it should
        sent.append(total)

    server = serve(huge)
    notifier = webhook(server.url, notifiers, timeout_s=20)
    baseline = peak = _rss()
    notifier.submit(_event())
    deadline = time.monotonic() + 30
    while notifier.delivered + notifier.failed == 0 and time.monotonic() < deadline:
        peak = max(peak, _rss())
        time.sleep(0.005)
    assert notifier.delivered == 1
    assert peak - baseline < 32 * MiB, f"RSS grew {(peak - baseline) / MiB:.0f} MiB"
    server_deadline = time.monotonic() + 10
    while not sent and time.monotonic() < server_deadline:
        time.sleep(0.01)
    assert sent and sent[0] < 64 * MiB, "the notifier stopped reading after a bounded prefix"
    print(
        f"\n1 GiB answer: RSS +{(peak - baseline) / MiB:.1f} MiB, server got to send {sent[0] / MiB:.0f} MiB"
    )
    assert MAX_RESPONSE_BYTES <= 64 * 1024


#: Upper bound on how long a bounded wait may take on a loaded machine. Every bug these tests target
#: costs far more: a per-read timeout reset by each dripped byte (100 s for the shortest drip), or an
#: attempt or shutdown waiting out a 60 s deadline.
SLACK_S = 10.0


@pytest.mark.parametrize("where", ["status line", "headers", "body"])
def test_a_slow_drip_endpoint_fails_the_attempt_at_its_deadline(serve, notifiers, where: str) -> None:
    prefix = {
        "status line": b"",
        "headers": b"HTTP/1.1 200 OK\r\n",
        "body": b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
    }[where]
    drip = b"X-Drip: " + b"a" * 1000 if where != "body" else b"a" * 100000

    def slow(conn: socket.socket, head: bytes) -> None:
        conn.sendall(prefix)
        for byte in drip:
            if server.stopping():
                return
            conn.sendall(bytes([byte]))
            time.sleep(0.1)

    server = serve(slow)
    timeout_s = 1.0
    notifier = webhook(server.url, notifiers, timeout_s=timeout_s)
    started = time.monotonic()
    notifier.submit(_event())
    assert notifier.force_flush(10)
    elapsed = time.monotonic() - started
    assert (notifier.delivered, notifier.failed) == (0, 1)
    assert elapsed < SLACK_S, f"one attempt took {elapsed:.1f}s against a {timeout_s}s deadline"
    print(f"\nslow drip in the {where}: attempt failed after {elapsed:.2f}s (deadline {timeout_s}s)")


def test_later_events_are_not_dropped_behind_a_slow_drip(serve, notifiers) -> None:
    def slow(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not server.stopping():
            try:
                conn.sendall(b"X")
            except OSError:
                return
            time.sleep(0.1)

    server = serve(slow)
    notifier = webhook(server.url, notifiers, timeout_s=0.3, queue_size=100)
    started = time.monotonic()
    for n in range(10):
        notifier.submit(_event(n))
    assert notifier.force_flush(20)
    assert (notifier.failed, notifier.dropped, notifier.delivered) == (10, 0, 0)
    assert time.monotonic() - started < 10 * 0.3 + SLACK_S


def test_a_full_queue_counts_drops(serve, notifiers) -> None:
    release = threading.Event()

    def held(conn: socket.socket, head: bytes) -> None:
        release.wait(10)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    server = serve(held)
    notifier = webhook(server.url, notifiers, timeout_s=20, queue_size=2)
    notifier.submit(_event(0))
    deadline = time.monotonic() + 10
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    for n in range(1, 10):
        notifier.submit(_event(n))
    assert notifier.dropped == 7  # 1 in flight, 2 queued
    release.set()
    assert notifier.force_flush(10)
    assert notifier.delivered == 3


def test_shutdown_ends_the_worker_during_a_slow_drip(serve, notifiers) -> None:
    def slow(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not server.stopping():
            try:
                conn.sendall(b"X")
            except OSError:
                return
            time.sleep(0.2)

    server = serve(slow)
    notifier = webhook(server.url, notifiers, timeout_s=60, max_attempts=8)
    for n in range(3):
        notifier.submit(_event(n))
    deadline = time.monotonic() + 10
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    notifier.shutdown(2)
    elapsed = time.monotonic() - started
    assert notifier._thread is not None and not notifier._thread.is_alive()
    assert elapsed < SLACK_S, f"shutdown(2) took {elapsed:.1f}s"
    print(f"\nshutdown(2) during a slow drip: {elapsed:.2f}s, worker gone")
    assert notifier.failed + notifier.dropped == 3
    assert notifier.delivered == 0


def test_shutdown_ends_the_worker_during_a_connect_that_never_completes(notifiers) -> None:
    # A listener whose accept queue is full drops further SYNs: connect() hangs as on a black hole.
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.2)
        notifier = webhook(f"http://127.0.0.1:{port}", notifiers, timeout_s=60)
        notifier.submit(_event())
        time.sleep(0.5)  # the worker is inside connect()
        assert notifier.delivered + notifier.failed == 0
        started = time.monotonic()
        notifier.shutdown(1)
        assert time.monotonic() - started < SLACK_S
        assert notifier._thread is not None and not notifier._thread.is_alive()
        assert notifier.failed == 1
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_notify_timeout_from_the_environment_is_the_attempt_deadline(serve) -> None:
    """OTELPIPE_NOTIFY_TIMEOUT → pipeline → every HTTP notifier's per-attempt deadline."""

    def slow(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not server.stopping():
            try:
                conn.sendall(b"X")
            except OSError:
                return
            time.sleep(0.1)

    server = serve(slow)
    settings = Settings.from_env(
        {
            "OTELPIPE_WEBHOOK_URL": server.url + "/hook",
            "OTELPIPE_ALERTMANAGER_URL": server.url,
            "OTELPIPE_NOTIFY_TIMEOUT": "700ms",
        }
    )
    built = [
        n for n in _notifiers(settings, None, None) if isinstance(n, WebhookNotifier | AlertmanagerNotifier)
    ]
    assert len(built) == 2
    try:
        for notifier in built:
            assert notifier.timeout_s == pytest.approx(0.7)
            started = time.monotonic()
            with pytest.raises(DeliveryError, match="deadline"):
                notifier._deliver(_event())  # one attempt, on this thread
            assert time.monotonic() - started < SLACK_S
    finally:
        for notifier in built:
            notifier.shutdown(1)


@pytest.mark.parametrize("stop", ["deadline", "shutdown"])
def test_a_tls_handshake_that_never_finishes_is_bounded(serve, notifiers, stop: str) -> None:
    def silent(conn: socket.socket, head: bytes) -> None:
        pass  # never reached: the ClientHello has no blank line, the server just reads

    server = serve(silent)
    timeout_s = 1.0 if stop == "deadline" else 60.0
    notifier = webhook(server.url.replace("http://", "https://"), notifiers, timeout_s=timeout_s)
    started = time.monotonic()
    notifier.submit(_event())
    if stop == "deadline":
        assert notifier.force_flush(10)
        elapsed = time.monotonic() - started
        assert elapsed < SLACK_S, f"handshake held the worker {elapsed:.1f}s"
    else:
        time.sleep(0.5)  # the worker waits for the ServerHello
        assert notifier.delivered + notifier.failed == 0
        shutdown_started = time.monotonic()
        notifier.shutdown(1)
        elapsed = time.monotonic() - shutdown_started
        assert notifier._thread is not None and not notifier._thread.is_alive()
        assert elapsed < SLACK_S, f"shutdown(1) took {elapsed:.1f}s"
    assert (notifier.delivered, notifier.failed) == (0, 1)
    print(f"\nTLS handshake never answered, stopped by {stop}: {elapsed:.2f}s")


def _answer_ok(conn: socket.socket, head: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def held_lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[str]]]:
    """The notifiers' resolver made to hang until released, then to answer for real."""
    release = threading.Event()
    asked: list[str] = []

    def held_getaddrinfo(host: str, *args: object) -> object:
        asked.append(host)
        release.wait(30)
        return socket.getaddrinfo(host, *args)  # type: ignore[arg-type]

    assert _wait_for(lambda: _http._lookups.pending == 0), "lookups of an earlier test still running"
    monkeypatch.setattr(_http, "_getaddrinfo", held_getaddrinfo)
    try:
        yield release, asked
    finally:
        release.set()
        assert _wait_for(lambda: _http._lookups.pending == 0), "released lookups did not finish"


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_name_lookup_within_the_deadline_delivers(serve, notifiers) -> None:
    server = serve(_answer_ok)
    notifier = webhook(f"http://localhost:{server.port}/hook", notifiers, timeout_s=10)
    notifier.submit(_event())
    assert notifier.force_flush(20)
    assert (notifier.delivered, notifier.failed) == (1, 0)
    assert len(server.requests) == 1


@pytest.mark.parametrize("stop", ["deadline", "shutdown"])
def test_a_name_lookup_that_never_answers_is_bounded(serve, notifiers, held_lookups, stop: str) -> None:
    release, asked = held_lookups
    server = serve(_answer_ok)
    timeout_s = 0.5 if stop == "deadline" else 60.0
    notifier = webhook(f"http://localhost:{server.port}/hook", notifiers, timeout_s=timeout_s)
    notifier.submit(_event())
    if stop == "deadline":
        assert notifier.force_flush(10), "the worker is still waiting for the resolver"
    else:
        deadline = time.monotonic() + 10
        while not asked and time.monotonic() < deadline:
            time.sleep(0.01)
        assert asked == ["localhost"]
        notifier.shutdown(1)
        assert notifier._thread is not None and not notifier._thread.is_alive()
    assert not release.is_set()  # the attempt ended while the lookup was still unanswered
    assert (notifier.delivered, notifier.failed) == (0, 1)
    assert server.requests == []


def test_unanswered_name_lookups_are_bounded(serve, notifiers, held_lookups) -> None:
    _release, asked = held_lookups
    server = serve(_answer_ok)
    notifier = webhook(f"http://localhost:{server.port}/hook", notifiers, timeout_s=0.2)
    for n in range(MAX_PENDING_LOOKUPS + 3):
        notifier.submit(_event(n))
    assert notifier.force_flush(20)
    assert notifier.failed == MAX_PENDING_LOOKUPS + 3
    assert len(asked) == MAX_PENDING_LOOKUPS  # later attempts failed without starting a lookup
    assert _http._lookups.pending == MAX_PENDING_LOOKUPS  # threads still held by the resolver
