"""POST a JSON body with a timeout and classify the outcome for the retry loop (stdlib only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping

from otelpipe.exporters._delivery import DeliveryError

_USER_AGENT = "otelpipe-notifier/0.1"


def post_json(url: str, body: object, *, timeout_s: float, headers: Mapping[str, str] | None = None) -> int:
    """POST `body` as JSON; return the status. Raise `DeliveryError` (retryable for 5xx, 408, 429
    and network errors). Messages never contain the URL, which may hold a token."""
    data = json.dumps(body, separators=(",", ":")).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", _USER_AGENT)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
        retryable = status >= 500 or status in (408, 429)
        raise DeliveryError(f"HTTP {status}", retryable=retryable) from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"connection failed: {type(exc.reason).__name__}: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise DeliveryError(f"connection failed: {type(exc).__name__}: {exc}") from None
