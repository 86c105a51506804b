"""Keep a forked worker's metrics alive when the parent forks in the middle of a collection.

Why: the SDK's MeterProvider runs every collection, observable callbacks included, under one lock
(`_measurement_consumer._lock`). `opentelemetry-instrument gunicorn -w N` configures the SDK in the
master and forks the workers from it; when the master's reader thread is collecting at that moment
(the system-metrics callbacks take a few milliseconds every export interval), the worker inherits
the lock held by a thread that does not exist in it. Its reader then waits forever: that worker
never exports a metric again, and nothing says so. Measured with three gunicorn workers and a
0.5 s export interval: one worker in two runs was silent from birth.

The same holds for a reader's export: `PeriodicExportingMetricReader` exports under its own
`_export_lock`, which the SDK does not renew in a child either. And gRPC itself: when a thread of
the parent is inside a gRPC call at fork(), grpcio skips its fork handlers ("Other threads are
currently calling into gRPC, skipping fork() handlers") and the child's channel waits forever on a
lock of the call that was in flight. Measured: with 3 workers on a loaded machine, one run in eight
had a worker whose OTLP/gRPC metric export hung from birth.

So, like CPython's own `logging` module does for its locks, the forking thread takes every such
lock just before `fork()`: the collection lock, each periodic reader's export lock and the in-flight
lock of each of otelpipe's span/log export wrappers (`CountingExporter`), waiting at most
`FORK_WAIT_S` in all for a collection or export in progress to finish; it releases them in the
parent right after, and the child gets fresh ones. No export is then inside gRPC at fork(), so
grpcio's own fork handlers run and the child's channels work; the child starts from storages no
collection was halfway through. An export stuck longer than the wait (an unreachable collector) is
not waited for: the child still gets unheld locks. Uses the private
`MeterProvider._measurement_consumer._lock`/`_reader_storages` and
`PeriodicExportingMetricReader._export_lock`, listed in `otelpipe._sdk`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider

__all__ = ["FORK_WAIT_S", "guard_collection_across_fork", "hold_across_fork"]

_log = logging.getLogger("otelpipe")

FORK_WAIT_S = 2.0  # longer than this a collection or export is stuck; fork anyway, fresh locks in the child

# (owner, lock attribute) pairs taken before fork() and renewed in the child; weak, so a dropped
# owner costs nothing. Appended to without a lock (atomic under the GIL): a registry lock would
# itself need the same care at fork().
_held_by_owner: list[tuple[weakref.ref[Any], str]] = []
_consumers: list[weakref.ref[Any]] = []  # their readers' export locks are looked up at each fork
_taken: list[Any] = []  # locks the forking thread holds between before() and after_in_parent()
_handlers_registered = False


def hold_across_fork(owner: object, attribute: str) -> None:
    """Take `owner.<attribute>` (a lock) before every fork() and give the child a fresh one."""
    _register_handlers()
    _held_by_owner.append((weakref.ref(owner), attribute))


def guard_collection_across_fork(meter_provider: MeterProvider) -> bool:
    """Hold `meter_provider`'s collection lock and its periodic readers' export locks across fork().

    Idempotent per provider; readers added later are covered (looked up at each fork). True when
    the guard is in place.
    """
    consumer = getattr(meter_provider, "_measurement_consumer", None)
    if not hasattr(os, "register_at_fork") or not _is_lock(getattr(consumer, "_lock", None)):
        return False
    if not meter_provider.__dict__.get("_otelpipe_fork_guard"):
        meter_provider.__dict__["_otelpipe_fork_guard"] = True
        _register_handlers()
        _consumers.append(weakref.ref(consumer))
    return True


def _register_handlers() -> None:
    global _handlers_registered
    if _handlers_registered or not hasattr(os, "register_at_fork"):
        return
    _handlers_registered = True
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
    )


def _guarded_locks() -> list[tuple[Any, str]]:
    """(owner, attribute) of every lock to hold, collection locks first (the order threads take them)."""
    found: list[tuple[Any, str]] = []
    readers: list[Any] = []
    for ref in list(_consumers):
        consumer = ref()
        if consumer is not None:
            found.append((consumer, "_lock"))
            readers.extend(getattr(consumer, "_reader_storages", {}))
    found.extend(
        (reader, "_export_lock") for reader in readers if _is_lock(reader.__dict__.get("_export_lock"))
    )
    for ref, attribute in list(_held_by_owner):
        owner = ref()
        if owner is not None:
            found.append((owner, attribute))
    return found


def _before_fork() -> None:
    deadline = time.monotonic() + FORK_WAIT_S
    try:
        for owner, attribute in _guarded_locks():
            lock: Any = getattr(owner, attribute, None)
            if _is_lock(lock) and lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                _taken.append(lock)
    except Exception:  # never fail the app's fork(); the child still gets fresh locks
        _log.debug("could not take every export lock before fork()", exc_info=True)


def _after_fork_in_parent() -> None:
    while _taken:
        _taken.pop().release()


def _after_fork_in_child() -> None:
    _taken.clear()
    try:  # only the forking thread runs in the child: fresh locks cannot be contended
        for owner, attribute in _guarded_locks():
            setattr(owner, attribute, threading.Lock())
    except Exception:
        _log.warning("could not renew the export locks in this forked process", exc_info=True)


def _is_lock(candidate: object) -> bool:
    return callable(getattr(candidate, "acquire", None)) and callable(getattr(candidate, "release", None))
