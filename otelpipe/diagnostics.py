"""otelpipe's own diagnostics: the `otelpipe` logger, rate-limited so a failing hot path cannot flood the app's logs."""

from __future__ import annotations

import logging
import re
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


# Parts of a variable name that mean its value is a credential. KEY(?!S) spares OTELPIPE_REDACT_KEYS
# (a list of field names); substrings catch misspellings such as ..._PAGERDUTY_ROUTNG_KEY.
_SECRET_NAME = re.compile(
    r"KEY(?!S)|TOKEN|SECRET|PASSW|PASSWD|PWD|AUTH|CREDENTIAL|HEADER|COOKIE|SESSION|SIGNATURE|PRIVATE|DSN",
    re.IGNORECASE,
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s,;]+")
MASK = "***"


def looks_secret(name: str) -> bool:
    """Whether a variable's name says its value is a credential (routing key, token, password, headers…)."""
    return _SECRET_NAME.search(name) is not None


def shown_value(name: str, value: str, *, secret: bool = False) -> str:
    """`value` of variable `name` as `otelpipe check` and start-up messages may print it.

    Secret variables, declared or by name (also unknown and misspelled ones), become `***`; in
    anything else every URL with credentials, a query or a fragment (a trace-URL token, a webhook
    signature) is shown as scheme://host:port/*** (the notifiers' `mask_url`).
    """
    if not value:
        return value
    if secret or looks_secret(name):
        return MASK
    return _URL.sub(_mask_match, value)


def _mask_match(match: re.Match[str]) -> str:
    from urllib.parse import urlsplit

    from otelpipe.exporters._delivery import mask_url

    url = match.group(0)
    try:
        parts = urlsplit(url)
        risky = "@" in parts.netloc or parts.query or parts.fragment
    except ValueError:
        return MASK
    return mask_url(url) if risky else url
