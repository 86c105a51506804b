"""POST a JSON body within one deadline and classify the outcome for the retry loop (stdlib only).

What a broken or hostile endpoint must not do to the notifier's worker, and how it is prevented:
- turn the POST into a body-less GET and have it counted as delivered: redirects are never
  followed; a 3xx is a failed delivery naming the (masked) Location;
- make it hold a huge response in memory: at most `MAX_RESPONSE_BYTES` of a body are read;
- hold it past its timeout by sending one byte at a time: the timeout is one deadline across
  name lookup, connect, send and read; each step gets only the time left until it (a lookup runs
  on a short-lived daemon thread, at most `MAX_PENDING_LOOKUPS` at once, since getaddrinfo takes
  no timeout);
- hold it past shutdown: the sockets of an attempt are shut down when its `Cancellation` fires.
urllib's opener is kept (proxies from the environment, TLS defaults); only the connection class
and the redirect policy are replaced.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

from otelpipe.exporters._delivery import Cancellation, DeliveryError, mask_url

_USER_AGENT = "otelpipe-notifier/0.1"
MAX_RESPONSE_BYTES = 64 * 1024
# Lookups abandoned at their deadline keep running until the system resolver gives up; this many
# at most, so a resolver that never answers cannot pile up threads.
MAX_PENDING_LOOKUPS = 4
# The resolver `_Attempt.connect` calls (a seam: tests slow it down).
_getaddrinfo = socket.getaddrinfo


class _Lookups:
    """Counts name lookups still running, across attempts and notifiers (reset in a forked child)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending = 0

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.pending = 0


_lookups = _Lookups()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_lookups.reset)


class _Attempt:
    """One request's deadline and sockets; `Cancellation` shuts the sockets down from another thread."""

    def __init__(self, timeout_s: float, cancellation: Cancellation | None) -> None:
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._wakeups: set[threading.Event] = set()
        self._cancelled = False
        self._forget = cancellation.on_cancel(self.cancel) if cancellation is not None else None

    def remaining(self) -> float:
        """Seconds left; raises TimeoutError once the deadline passed or the attempt was cancelled."""
        if self._cancelled:
            raise ConnectionAbortedError("notifier is shutting down")
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete response within the {self.timeout_s:g}s deadline")
        return left

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self._cancelled:
                raise ConnectionAbortedError("notifier is shutting down")
            self._sockets.add(sock)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            sockets = list(self._sockets)
            wakeups = list(self._wakeups)
        for wakeup in wakeups:
            wakeup.set()
        for sock in sockets:
            try:
                # The base-class call works on the descriptor, so it also wakes a blocked TLS read
                # (and, on Linux, a connect still in SYN_SENT).
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        if self._forget is not None:
            self._forget()
        with self._lock:
            self._sockets.clear()
            self._wakeups.clear()

    def resolve(self, host: str, port: int) -> list[Any]:
        """`getaddrinfo` within the time left: it takes no timeout, so it runs on a daemon thread
        that is abandoned (and finishes on its own) at the deadline or on cancellation. An address
        literal needs no lookup and no thread."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return list(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST))
        with _lookups.lock:
            if _lookups.pending >= MAX_PENDING_LOOKUPS:
                raise TimeoutError(f"{_lookups.pending} name lookups still unanswered")
            _lookups.pending += 1
        outcome: list[Any] = []
        done = threading.Event()

        def lookup() -> None:
            try:
                outcome.append(_getaddrinfo(host, port, 0, socket.SOCK_STREAM))
            except BaseException as exc:  # handed to the waiting attempt, if it still waits
                outcome.append(exc)
            finally:
                with _lookups.lock:
                    _lookups.pending -= 1
                done.set()

        with self._lock:
            self._wakeups.add(done)
        try:
            try:
                threading.Thread(target=lookup, name="otelpipe-notifier-lookup", daemon=True).start()
            except RuntimeError as exc:  # no thread to be had: never started, so not pending
                with _lookups.lock:
                    _lookups.pending -= 1
                raise OSError(f"name lookup not started: {exc}") from None
            while not done.wait(self.remaining()):
                pass
            self.remaining()  # woken by cancellation: raise, do not connect
        finally:
            with self._lock:
                self._wakeups.discard(done)
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return list(result)

    def connect(
        self, address: tuple[str, int], timeout: object = None, source_address: Any = None, *_: object
    ) -> socket.socket:
        """`socket.create_connection`, but each socket is watched before it connects, and the name
        lookup and connect both run within the deadline."""
        host, port = address
        error: OSError | None = None
        for family, kind, proto, _name, sockaddr in self.resolve(host, port):
            sock = socket.socket(family, kind, proto)
            try:
                self.watch(sock)
                sock.settimeout(self.remaining())
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                sock.settimeout(self.remaining())  # what is left for a TLS handshake or the send
                return sock
            except OSError as exc:
                error = exc
                sock.close()
                if isinstance(exc, TimeoutError | ConnectionAbortedError):
                    break
        raise error or OSError(f"no address for {host}")


class _DeadlineReader(io.RawIOBase):
    """A socket's read side where every recv is bounded by the attempt's remaining time.

    It wraps the socket's own `SocketIO`, so the socket stays open until the response is closed
    even though urllib closes the connection's socket right after reading the headers.
    """

    def __init__(self, sock: socket.socket, attempt: _Attempt) -> None:
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._attempt = attempt

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._attempt.remaining())
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocketView:
    """All that HTTPResponse uses of a socket (`makefile`), reading through `_DeadlineReader`."""

    def __init__(self, sock: socket.socket, attempt: _Attempt) -> None:
        self._sock = sock
        self._attempt = attempt

    def makefile(self, mode: str, *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._attempt))


def _arm(connection: http.client.HTTPConnection, attempt: _Attempt) -> None:
    """Route a connection's connect and response reads through `attempt`'s deadline."""
    connection._create_connection = attempt.connect  # type: ignore[attr-defined]

    def response(sock: socket.socket, *args: Any, **kwargs: Any) -> http.client.HTTPResponse:
        attempt.watch(sock)  # after TLS wrapping this is a new socket object
        return http.client.HTTPResponse(_DeadlineSocketView(sock, attempt), *args, **kwargs)  # type: ignore[arg-type]

    connection.response_class = response  # type: ignore[assignment]


def _send_within(connection: http.client.HTTPConnection, attempt: _Attempt) -> None:
    if connection.sock is not None:
        attempt.watch(connection.sock)
        connection.sock.settimeout(attempt.remaining())  # sendall's timeout covers the whole send


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, attempt: _Attempt, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._attempt = attempt
        _arm(self, attempt)

    def send(self, data: Any) -> None:
        _send_within(self, self._attempt)
        super().send(data)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, attempt: _Attempt, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._attempt = attempt
        _arm(self, attempt)

    def connect(self) -> None:
        """HTTPSConnection.connect, with the TLS socket watched before its handshake (so shutdown can
        abort it) and the handshake bounded by the time left (CPython bounds a whole handshake by
        the socket timeout)."""
        http.client.HTTPConnection.connect(self)
        server_hostname = getattr(self, "_tunnel_host", None) or self.host
        sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock, server_hostname=server_hostname, do_handshake_on_connect=False
        )
        self.sock = sock
        self._attempt.watch(sock)
        sock.settimeout(self._attempt.remaining())
        sock.do_handshake()

    def send(self, data: Any) -> None:
        _send_within(self, self._attempt)
        super().send(data)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, attempt: _Attempt) -> None:
        super().__init__()
        self._attempt = attempt

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(*args: Any, **kwargs: Any) -> _HTTPConnection:
            return _HTTPConnection(*args, attempt=self._attempt, **kwargs)

        return self.do_open(connection, req)  # type: ignore[arg-type]


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, attempt: _Attempt) -> None:
        super().__init__()
        self._attempt = attempt

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(*args: Any, **kwargs: Any) -> _HTTPSConnection:
            return _HTTPSConnection(*args, attempt=self._attempt, **kwargs)

        return self.do_open(connection, req)  # type: ignore[arg-type]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow: urllib would turn a 302/303 to a POST into a GET without the body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status and headers


def post_json(
    url: str,
    body: object,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    cancellation: Cancellation | None = None,
) -> int:
    """POST `body` as JSON; return the 2xx status. Raise `DeliveryError` otherwise: retryable for
    5xx, 408, 429, network errors and the deadline; permanent for other 4xx and every 3xx.

    `timeout_s` bounds the whole attempt (connect, send, response). Messages never contain the URL,
    which may hold a token; a redirect's Location is masked the same way.
    """
    data = json.dumps(body, separators=(",", ":")).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", _USER_AGENT)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    attempt = _Attempt(timeout_s, cancellation)
    opener = urllib.request.build_opener(_NoRedirects(), _HTTPHandler(attempt), _HTTPSHandler(attempt))
    try:
        with opener.open(request, timeout=timeout_s) as response:
            response.read(MAX_RESPONSE_BYTES)  # never the whole of an unbounded body
            return int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
        location = exc.headers.get("Location") if exc.headers is not None else None
        exc.close()
        if 300 <= status < 400:
            target = mask_url(urljoin(url, location)) if location else "no Location"
            raise DeliveryError(
                f"HTTP {status} redirect to {target} not followed (a POST is never redirected; "
                "configure the final URL)",
                retryable=False,
            ) from None
        retryable = status >= 500 or status in (408, 429)
        raise DeliveryError(f"HTTP {status}", retryable=retryable) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DeliveryError(_describe(exc, attempt)) from None
    finally:
        attempt.close()


def _describe(exc: BaseException, attempt: _Attempt) -> str:
    if attempt.cancelled:
        return "aborted: notifier is shutting down"
    if attempt.expired:
        return f"no complete response within the {attempt.timeout_s:g}s deadline"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return f"connection failed: {type(reason).__name__}: {reason}"
