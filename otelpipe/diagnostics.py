"""otelpipe's own diagnostics: the `otelpipe` logger, rate-limited so a failing hot path cannot flood the app's logs."""

from __future__ import annotations

import logging
import threading
import time

_lock = threading.Lock()
_last: dict[str, float] = {}
_suppressed: dict[str, int] = {}
_MAX_KEYS = 256


def logger(area: str | None = None) -> logging.Logger:
    """`otelpipe` or `otelpipe.<area>`; never the root logger."""
    return logging.getLogger("otelpipe" if not area else f"otelpipe.{area}")


def warn_limited(
    key: str, message: str, *args: object, interval_s: float = 60.0, area: str | None = None
) -> None:
    """Log `message` at most once per `interval_s` per `key`, saying how many were suppressed."""
    now = time.monotonic()
    with _lock:
        last = _last.get(key)
        if last is not None and now - last < interval_s:
            _suppressed[key] = _suppressed.get(key, 0) + 1
            return
        if len(_last) >= _MAX_KEYS and key not in _last:
            _last.clear()
        _last[key] = now
        skipped = _suppressed.pop(key, 0)
    suffix = f" ({skipped} similar messages suppressed)" if skipped else ""
    try:
        logger(area).warning(message + suffix, *args)
    except Exception:  # diagnostics must never become the failure
        pass
