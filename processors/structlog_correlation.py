"""structlog processor adding the same correlation fields the stdlib record factory adds.

structlog is optional: this module imports nothing from it, a processor is a plain callable.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from otelpipe.processors.log_correlation import current_log_fields

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
