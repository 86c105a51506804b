"""structlog processors: the correlation fields the stdlib record factory adds, and secret masking.

structlog is optional: this module imports nothing from it, a processor is a plain callable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from otelpipe.processors.log_correlation import current_log_fields
from otelpipe.processors.redaction import Redactor

_logger = logging.getLogger("otelpipe.logs")

# The otel* aliases exist for stdlib format strings; structlog users get the plain names.
_STRUCTLOG_FIELDS = (
    "trace_id",
    "span_id",
    "trace_sampled",
    "service.name",
    "service.version",
    "deployment.environment",
)


def add_otel_context(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Add trace/span ids, sampling flag, service identity and ``request_id`` to ``event_dict``.

    Keys the app already set are left alone. Place it before the renderer in ``processors``.
    """
    try:
        fields = current_log_fields()
    except Exception:  # a log call must never fail because of correlation
        return event_dict
    for key in _STRUCTLOG_FIELDS:
        event_dict.setdefault(key, fields[key])
    if fields["request_id"]:
        event_dict.setdefault("request_id", fields["request_id"])
    return event_dict


class RedactSecrets:
    """structlog processor masking secrets in the event dict with a `Redactor` (keys kept).

    Place it just before the renderer (after ``format_exc_info``) so it sees what gets written,
    with or without the stdlib: ``PrintLogger`` + ``JSONRenderer`` never passes a logging Filter.
    Without a redactor it uses the one `otelpipe.configure()` built, else the default policy.
    Never raises: on trouble the event is passed on and the failure counted.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        self._redactor = redactor
        self.failures = 0

    def _policy(self) -> Redactor:
        if self._redactor is not None:
            return self._redactor
        from otelpipe.pipeline import current

        pipeline = current()
        configured = getattr(pipeline, "redactor", None)
        self._redactor = configured if isinstance(configured, Redactor) else Redactor()
        return self._redactor

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        try:
            redactor = self._policy()
            for key, value in list(event_dict.items()):
                if value is None or isinstance(value, (bool, int, float)):
                    continue
                if isinstance(value, (str, bytes, Mapping, list, tuple)) or redactor.is_secret_key(key):
                    new = redactor.redact_value(str(key), value)
                else:  # an object the renderer will str()/repr(): check what it will print
                    text = str(value)
                    masked = redactor.redact_text(text)
                    new = masked if masked != text else value
                if new is not value:
                    event_dict[key] = new
        except Exception:  # a log call must never fail because of redaction
            self.failures += 1
            if self.failures == 1:
                _logger.warning("structlog redaction failed; later failures are counted only")
        return event_dict


redact_secrets = RedactSecrets()
"""Ready-made `RedactSecrets` with otelpipe's policy: ``processors=[..., redact_secrets, JSONRenderer()]``."""
