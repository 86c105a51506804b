"""Keep a forked worker's metrics alive when the parent forks in the middle of a collection.

Why: the SDK's MeterProvider runs every collection, observable callbacks included, under one lock
(`_measurement_consumer._lock`). `opentelemetry-instrument gunicorn -w N` configures the SDK in the
master and forks the workers from it; when the master's reader thread is collecting at that moment
(the system-metrics callbacks take a few milliseconds every export interval), the worker inherits
the lock held by a thread that does not exist in it. Its reader then waits forever: that worker
never exports a metric again, and nothing says so. Measured with three gunicorn workers and a
0.5 s export interval: one worker in two runs was silent from birth.

The same holds for a reader's export: `PeriodicExportingMetricReader` exports under its own
`_export_lock`, which the SDK does not renew in a child either.

So, like CPython's own `logging` module does for its locks, the forking thread takes the collection
lock just before `fork()` (waiting at most `FORK_WAIT_S` for a collection in progress to finish) and
releases it in the parent right after; the child gets fresh locks for collection and for every
periodic reader's export. The child therefore starts from storages no collection was halfway
through. An export in progress is not waited for (it may hang on an unreachable collector for its
whole timeout): the child's reader simply starts with an unheld export lock. Uses the private
`MeterProvider._measurement_consumer._lock`/`_reader_storages` and
`PeriodicExportingMetricReader._export_lock`, listed in `otelpipe._sdk`.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider

_log = logging.getLogger("otelpipe")

FORK_WAIT_S = 2.0  # a collection longer than this is stuck; fork anyway and renew the lock in the child


def guard_collection_across_fork(meter_provider: MeterProvider) -> bool:
    """Register fork handlers for `meter_provider`'s collection lock; True when they are in place.

    Idempotent per provider. The handlers hold only a weak reference, so a provider that is
    shut down and dropped costs nothing at later forks.
    """
    consumer = getattr(meter_provider, "_measurement_consumer", None)
    if not hasattr(os, "register_at_fork") or not _is_lock(getattr(consumer, "_lock", None)):
        return False
    if meter_provider.__dict__.get("_otelpipe_fork_guard"):
        return True
    meter_provider.__dict__["_otelpipe_fork_guard"] = True
    consumer_ref = weakref.ref(consumer)
    held: list[Any] = []  # the lock the forking thread took, released after fork() in the parent

    def before() -> None:
        lock: Any = getattr(consumer_ref(), "_lock", None)
        if _is_lock(lock) and lock.acquire(timeout=FORK_WAIT_S):
            held.append(lock)

    def after_in_parent() -> None:
        while held:
            held.pop().release()

    def after_in_child() -> None:
        held.clear()
        target = consumer_ref()
        if target is None:
            return
        try:  # only the forking thread runs in the child: fresh locks cannot be contended
            target._lock = threading.Lock()
            for reader in list(getattr(target, "_reader_storages", {})):
                if _is_lock(reader.__dict__.get("_export_lock")):
                    reader._export_lock = threading.Lock()
        except Exception:
            _log.warning("could not renew the metrics locks in this forked process", exc_info=True)

    os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=after_in_child)
    return True


def _is_lock(candidate: object) -> bool:
    return callable(getattr(candidate, "acquire", None)) and callable(getattr(candidate, "release", None))
