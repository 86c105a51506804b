"""Mask secrets in span names, attributes, events, links, status text and the resource before export.

Register :class:`RedactingSpanProcessor` before the export processors: span processors run in
registration order, and ``_on_ending`` runs before every processor's ``on_end``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Status

from otelpipe.processors.redaction import Redactor

_logger = logging.getLogger("otelpipe.logs")


def _write_in_place(attributes: Any, changes: Mapping[str, Any]) -> None:
    """Apply ``changes`` to SDK ``BoundedAttributes`` that the SDK already froze.

    SDK 1.45 calls ``_on_ending`` after ``end()`` set the end time and froze the attributes, so
    ``set_attribute`` is refused there; the frozen mapping is still the object the exported
    ReadableSpan will read, so it is updated under its own lock.
    """
    inner = getattr(attributes, "_dict", None)
    lock = getattr(attributes, "_lock", None)
    if isinstance(inner, dict) and lock is not None:
        with lock:
            inner.update(changes)
    elif isinstance(attributes, dict):
        attributes.update(changes)
    else:
        raise TypeError(f"cannot rewrite attributes of type {type(attributes).__name__}")


def _rewrite(owner: Any, changes: Mapping[str, Any]) -> None:
    """Apply ``changes`` to an event's or link's attributes, whatever mapping type holds them."""
    try:
        _write_in_place(owner.attributes, changes)
    except TypeError:
        owner._attributes = {**owner.attributes, **changes}


class RedactingSpanProcessor(SpanProcessor):
    """Rewrites secret-looking span data while the span is ending, before export.

    Only spans that can leave the process are scanned: a span whose context is not sampled
    (RECORD_ONLY, kept only to feed RED metrics) is never exported, so it costs nothing here; the
    RED store masks its own labels once per series (`Redactor.label_redactor`).
    Cost per sampled span: one key-cache lookup per attribute and a linear scan of string values.
    """

    # None of its hooks has anything to do for an unsampled span (otelpipe.processors.unsampled).
    unsampled_span_hooks: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self.failures = 0
        self.spans_scanned = 0
        self._resource: Any = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def _on_ending(self, span: Span) -> None:
        try:
            context = span._context  # a SpanContext tuple: [3] is the trace flags, bit 0 "sampled"
            if context is None or not context[3] & 1:
                return
            self.spans_scanned += 1
            self._redact(span)
        except Exception:  # never break span end; count and report once
            self.failures += 1
            if self.failures == 1:
                _logger.warning("span redaction failed; later failures are counted only", exc_info=True)

    def _redact(self, span: Span) -> None:
        # The SDK span's own fields, not its properties: each property is a Python call, and
        # `events`/`links` copy their lists into tuples. The span is ending: nothing writes to it now.
        redactor = self._redactor
        name = redactor.redact_text(span._name)
        if name is not span._name:
            span._name = name
        attributes = span._attributes
        if attributes is not None:
            # The plain dict inside the SDK's BoundedAttributes: iterating the Mapping ABC costs
            # a lock and two calls per item.
            inner = getattr(attributes, "_dict", None)
            items = inner if type(inner) is dict else attributes
            if items:
                changes = redactor.changed_items(items)
                if changes:
                    _write_in_place(attributes, changes)
        events = span._events
        for event in getattr(events, "_dq", events):  # the SDK's BoundedList keeps a deque
            event_name = redactor.redact_text(event.name)
            if event_name is not event.name:
                event._name = event_name  # type: ignore[attr-defined]
            event_attributes = event.attributes
            if event_attributes:
                changes = redactor.changed_items(event_attributes)
                if changes:
                    _rewrite(event, changes)
        links = span._links
        for link in getattr(links, "_dq", links):
            if link.attributes:
                changes = redactor.changed_items(link.attributes)
                if changes:
                    _rewrite(link, changes)
        status = span._status
        if status.description:
            description = redactor.redact_text(status.description)
            if description != status.description:
                span._status = Status(status.status_code, description)
        resource = span._resource
        if resource is not self._resource:  # shared by every span: masked once, in place
            self._resource = resource
            changes = redactor.changed_items(resource.attributes)
            if changes:
                _write_in_place(resource.attributes, changes)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
