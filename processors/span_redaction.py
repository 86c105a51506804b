"""Mask secrets in span names, attributes, events, links, status text and the resource before export.

Two places, one rewrite (:class:`SpanMasker`):

- :class:`ExportRedaction` masks each batch in the batch export thread, just before the exporters
  otelpipe builds from ``OTEL_TRACES_EXPORTER`` send it (``otelpipe.processors.export_drops``):
  nothing on the request thread, and only spans that are exported.
- :class:`RedactingSpanProcessor` masks each sampled span on the request thread while it ends
  (``_on_ending`` runs before every processor's ``on_end``, whatever the registration order), for
  exporters otelpipe does not build: a user's own SDK setup, a processor added to otelpipe's
  provider later. :func:`guard_unowned_exports` registers it when such a processor appears.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
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


class SpanMasker:
    """Rewrites one span's secret-looking data in place; the resource once per distinct resource.

    Works on the SDK's ``Span`` while it ends and on the ``ReadableSpan`` an export processor
    holds (the same fields; the attributes, events and links are the ended span's own objects).
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._resource: Any = None

    def mask(self, span: Any) -> None:  # an SDK Span while it ends, or the ReadableSpan on_end got
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
        self._mask = SpanMasker(redactor).mask
        self.failures = 0
        self.spans_scanned = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def _on_ending(self, span: Span) -> None:
        try:
            context = span._context  # a SpanContext tuple: [3] is the trace flags, bit 0 "sampled"
            if context is None or not context[3] & 1:
                return
            self.spans_scanned += 1
            self._mask(span)
        except Exception:  # never break span end; count and report once
            self.failures += 1
            if self.failures == 1:
                _logger.warning("span redaction failed; later failures are counted only", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class ExportRedaction:
    """Masks a batch of sampled spans in the export thread, just before the exporter sends it.

    `CountingExporter(before_export=...)` calls it once per batch. A span it cannot mask is
    counted (`failures`, reported once); an exception escaping it fails the batch, which is then
    not exported.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._mask = SpanMasker(redactor).mask
        self.failures = 0
        self.spans_scanned = 0

    def __call__(self, batch: Sequence[ReadableSpan]) -> None:
        mask = self._mask
        for span in batch:
            try:
                mask(span)
            except Exception:
                self.failures += 1
                if self.failures == 1:
                    _logger.warning("span redaction failed; later failures are counted only", exc_info=True)
        self.spans_scanned += len(batch)


class _ExportGuard:
    """Registers a `RedactingSpanProcessor` once a processor that does not mask its exports appears."""

    def __init__(self, provider: TracerProvider, redactor: Redactor, masks: Callable[[SpanProcessor], bool]) -> None:
        self._add = provider.add_span_processor
        self._redactor = redactor
        self._masks = masks
        self.processor: RedactingSpanProcessor | None = None

    def install(self) -> None:
        if self.processor is None:
            self.processor = RedactingSpanProcessor(self._redactor)
            self._add(self.processor)

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        if not self._masks(span_processor):
            self.install()  # first: a span ending meanwhile is masked before the new exporter sees it
        self._add(span_processor)


def guard_unowned_exports(
    provider: TracerProvider, redactor: Redactor, masks: Callable[[SpanProcessor], bool]
) -> RedactingSpanProcessor | None:
    """Keep "no secret is exported" for processors otelpipe did not build, now and added later.

    `masks(processor)` says whether a processor exports nothing or masks what it exports itself
    (otelpipe's RED processor, its redacting export processors). If `provider` holds any other
    processor, or gets one later through `add_span_processor`, a `RedactingSpanProcessor` is
    registered on it (once) and masks every sampled span on the request thread, as before.
    Returns that processor when it was registered now.
    """
    guard = _ExportGuard(provider, redactor, masks)
    processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", None)
    if processors is None or not all(masks(p) for p in processors):
        guard.install()  # an unknown provider shape counts as not masking
    setattr(provider, "add_span_processor", guard.add_span_processor)  # noqa: B010 - instance override
    return guard.processor
