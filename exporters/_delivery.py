"""Delivery machinery shared by all notifiers: a bounded queue and one worker thread per notifier.

The engine's `submit` only enqueues, so a slow or dead endpoint never stalls the evaluator. One
FIFO worker per notifier keeps the order of events per incident; retries use exponential backoff
with jitter; drops and failures are counted (attributes, plus an optional OTel counter) and logged
rate-limited, with secrets masked.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from otelpipe.incidents.model import Incident, IncidentEvent

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

_log = logging.getLogger("otelpipe.exporters")

_STOP: Final = object()
_STOP_RESERVE_S = 0.5  # of a shutdown's time, kept for aborting in-flight requests and joining
_MIN_JOIN_S = 0.2
_LOG_INTERVAL_S = 30.0
MASK = "***"


class Cancellation:
    """Fired once when a notifier shuts down: runs the callbacks registered by requests in flight
    (the HTTP layer shuts their sockets down), so no blocked connect or read outlives shutdown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` on `cancel()` (at once if already cancelled); returns its unregister function."""
        with self._lock:
            if not self._cancelled:
                key = self._next
                self._next += 1
                self._callbacks[key] = callback
                return lambda: self._forget(key)
        callback()
        return lambda: None

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            try:
                callback()
            except Exception:  # aborting is best effort
                pass

    def _forget(self, key: int) -> None:
        with self._lock:
            self._callbacks.pop(key, None)


class DeliveryError(Exception):
    """A failed delivery attempt; `retryable` is False for errors a retry cannot fix (e.g. HTTP 400)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def mask_url(url: str) -> str:
    """The URL with credentials, path and query hidden: webhook paths and queries often hold tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    tail = f"/{MASK}" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{tail}"


@dataclass(frozen=True)
class DeliveryOptions:
    """How hard a notifier tries: queue bound, deadline of one attempt, retries and their backoff.

    `timeout_s` bounds a whole attempt (connect, send and reading the answer), not each socket
    operation: an endpoint that answers one byte per second still fails after `timeout_s`.

    Attempt n (1-based) that fails is retried after `min(backoff_max_s, backoff_base_s * 2**(n-1))`
    scaled by a random factor in [0.5, 1) (jitter spreads retries of many processes).
    """

    queue_size: int = 1000
    timeout_s: float = 5.0
    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.queue_size < 1 or self.max_attempts < 1 or self.timeout_s <= 0 or self.backoff_base_s < 0:
            raise ValueError("queue_size and max_attempts must be >= 1, timeout_s > 0, backoff_base_s >= 0")


class QueuedNotifier(ABC):
    """Base of every notifier: implement `_deliver(event)`; optionally `_on_idle()` and `_secrets()`.

    Counters (monotonic, read any time): `delivered`, `failed` (gave up after retries or a
    permanent error), `dropped` (queue full or shut down), `retries`.
    """

    name: str = "notifier"

    def __init__(
        self,
        options: DeliveryOptions | None = None,
        *,
        meter: Meter | None = None,
        idle_interval_s: float = 1.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.options = options = options or DeliveryOptions()
        self.timeout_s = options.timeout_s
        self._max_attempts = options.max_attempts
        self._backoff_base_s = options.backoff_base_s
        self._backoff_max_s = options.backoff_max_s
        self._idle_interval_s = idle_interval_s
        self._jitter = jitter
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.retries = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=options.queue_size)
        self._pending = 0
        self._pending_changed = threading.Condition()
        self._stopping = threading.Event()
        self._cancellation = Cancellation()  # fired by shutdown; pass it to post_json
        self._last_log: dict[str, float] = {}
        self._counter = (
            meter.create_counter(
                "otelpipe.incident.notifications",
                unit="{event}",
                description="Incident events per notifier and outcome (delivered, failed, dropped, retried).",
            )
            if meter is not None
            else None
        )
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # -- public API (Notifier protocol) -------------------------------------------------------

    def submit(self, event: IncidentEvent) -> None:
        """Enqueue `event`; if the queue is full or the notifier is shut down, count a drop."""
        if self._stopping.is_set():
            self._count("dropped")
            return
        self._ensure_started()
        with self._pending_changed:
            self._pending += 1
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._done()
            self._count("dropped")
            self._warn("dropped", "%s: queue full, dropped a %s event", self.name, event.kind)

    def sync(self, open_incidents: Sequence[Incident]) -> None:
        """Latest open incidents; only level-triggered targets (Alertmanager) use it."""
        return None

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every event submitted so far was delivered or given up on."""
        deadline = time.monotonic() + timeout_s
        with self._pending_changed:
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._pending_changed.wait(remaining)
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued within `timeout_s`, then stop the worker; later submits are dropped.

        The worker is gone when this returns (unless it is stuck in non-network code): requests
        still in flight are aborted, and what is left in the queue is counted as dropped.
        """
        if self._stopping.is_set():
            return
        deadline = time.monotonic() + max(0.0, timeout_s)
        self.force_flush(max(0.0, timeout_s - min(_STOP_RESERVE_S, timeout_s / 4)))
        self._stopping.set()
        self._cancellation.cancel()
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass  # the worker sees _stopping before it takes the next item
        thread = self._thread
        if thread is not None:
            thread.join(max(_MIN_JOIN_S, deadline - time.monotonic()))
            if thread.is_alive():
                self._warn("shutdown", "%s: worker still busy after shutdown(%.1fs)", self.name, timeout_s)

    def _ensure_started(self) -> None:
        """Start the worker on first use, so subclasses finish their own __init__ first."""
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=f"otelpipe-{self.name}", daemon=True)
                thread.start()
                self._thread = thread

    # -- for subclasses ------------------------------------------------------------------------

    @abstractmethod
    def _deliver(self, event: IncidentEvent) -> None:
        """Send one event; raise `DeliveryError` (or `OSError`) to have it retried."""

    def _on_idle(self) -> None:
        """Called from the worker about every `idle_interval_s` when the queue is empty."""
        return None

    def _secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in logs (routing keys, URLs with tokens)."""
        return ()

    def _redact(self, text: str) -> str:
        for secret in self._secrets():
            if secret:
                text = text.replace(secret, MASK)
        return text

    def _warn(self, topic: str, message: str, *args: object) -> None:
        """Log at most once per 30 s per topic, with secrets masked."""
        now = time.monotonic()
        if now - self._last_log.get(topic, -_LOG_INTERVAL_S) < _LOG_INTERVAL_S:
            return
        self._last_log[topic] = now
        _log.warning(self._redact(message % args))

    # -- worker --------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._idle_interval_s)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                self._call_idle()
                continue
            if item is _STOP or self._stopping.is_set():
                if isinstance(item, IncidentEvent):
                    self._count("dropped")
                    self._done()
                self._drain_as_dropped()
                return
            if isinstance(item, IncidentEvent):
                self._deliver_with_retries(item)
            self._done()

    def _call_idle(self) -> None:
        try:
            self._on_idle()
        except Exception as exc:  # the worker thread must survive anything
            self._warn("idle", "%s: periodic work failed: %s: %s", self.name, type(exc).__name__, exc)

    def _deliver_with_retries(self, event: IncidentEvent) -> None:
        for attempt in range(1, self._max_attempts + 1):
            try:
                self._deliver(event)
            except (DeliveryError, OSError) as exc:
                retryable = getattr(exc, "retryable", True)
                if not retryable or attempt == self._max_attempts or self._stopping.is_set():
                    self._count("failed")
                    self._warn(
                        "failed",
                        "%s: gave up on %s event of incident %s after %d attempt(s): %s",
                        self.name,
                        event.kind,
                        event.incident.id,
                        attempt,
                        exc,
                    )
                    return
                self._count("retried")
                self._warn("retry", "%s: delivery failed, retrying: %s", self.name, exc)
                if self._stopping.wait(self._backoff(attempt)):
                    self._count("failed")
                    return
            except Exception as exc:  # a bug in a notifier must not kill the worker
                self._count("failed")
                self._warn(
                    "bug",
                    "%s: cannot deliver %s event: %s: %s",
                    self.name,
                    event.kind,
                    type(exc).__name__,
                    exc,
                )
                return
            else:
                self._count("delivered")
                return

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._backoff_max_s, self._backoff_base_s * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * self._jitter())

    def _drain_as_dropped(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, IncidentEvent):
                self._count("dropped")
                self._done()

    def _done(self) -> None:
        with self._pending_changed:
            self._pending -= 1
            self._pending_changed.notify_all()

    def _count(self, outcome: str) -> None:
        if outcome == "delivered":
            self.delivered += 1
        elif outcome == "failed":
            self.failed += 1
        elif outcome == "dropped":
            self.dropped += 1
        else:
            self.retries += 1
        if self._counter is not None:
            try:
                self._counter.add(1, {"otelpipe.notifier": self.name, "outcome": outcome})
            except Exception:  # metrics are best effort
                pass
