"""SDK logs-pipeline processor: request id and static attributes in, secrets out, before export.

Add it to the ``LoggerProvider`` before the batch export processor: processors share the same
``ReadWriteLogRecord`` in registration order, so what this one changes is what gets exported.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

from otelpipe.processors.log_correlation import CORRELATION_FIELDS
from otelpipe.processors.redaction import Redactor
from otelpipe.processors.request_id import _REQUEST_ID, SPAN_ATTRIBUTE

_current_request_id = _REQUEST_ID.get
# Marked on every record this processor sees, per thread: otelpipe's bridge view (log_output)
# learns from it that the provider behind a bridge runs this processor, which adds ``request.id``
# from the context, so the bridge need not carry it as an attribute.
SEEN = threading.local()

_logger = logging.getLogger("otelpipe.logs")

# Removed from attributes: stdlib-record copies of what OTLP carries natively (trace/span ids,
# flags, resource), and ``request_id`` (exported as `SPAN_ATTRIBUTE`).
_DROPPED = CORRELATION_FIELDS
# Nesting levels kept in a structured log body (protobuf's decoder stops at 100 nested messages,
# and each level costs about three).
_MAX_BODY_DEPTH = 16
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _valid_utf8(text: str) -> str:
    """`text`, with lone surrogates (undecodable bytes from surrogateescape) spelled as escapes.

    The OTLP encoder cannot serialise them, and one such body fails the export of its whole batch.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _encodable(value: Any, depth: int) -> Any:
    """A structured body the OTLP encoder can serialise: valid UTF-8, at most `_MAX_BODY_DEPTH` deep.

    Deeper parts become their text; protobuf refuses deeper nesting, failing the whole batch.
    """
    if isinstance(value, str):
        return value if value.isascii() else _valid_utf8(value)
    if isinstance(value, (Mapping, list, tuple)):
        if depth >= _MAX_BODY_DEPTH:
            return _valid_utf8(str(value))
        if isinstance(value, Mapping):
            return {_valid_utf8(str(k)): _encodable(v, depth + 1) for k, v in value.items()}
        return [_encodable(item, depth + 1) for item in value]
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        return str(value)  # OTLP ints are 64-bit
    return value


class CorrelatingLogRecordProcessor(LogRecordProcessor):
    """Adds ``request.id`` and ``static_attributes``, drops duplicated ids, masks secrets.

    ``static_attributes`` are added only where the record lacks the key; service identity
    normally belongs on the Resource and need not be repeated here.
    """

    def __init__(
        self,
        redactor: Redactor | None = None,
        static_attributes: Mapping[str, Any] | None = None,
        drop_duplicate_correlation: bool = True,
    ) -> None:
        self._redactor = redactor
        self._static = dict(static_attributes or {})
        self._drop = drop_duplicate_correlation
        self.failures = 0
        self._resource: Any = None

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        # Runs for every exported log line, in one frame: exact-type checks and attribute reads
        # before any call.
        SEEN.record = True
        try:
            record = log_record.log_record
            body = record.body
            if type(body) is str or isinstance(body, str):
                if not body.isascii():
                    record.body = _valid_utf8(body)
            elif isinstance(body, (Mapping, list, tuple, int)):
                record.body = _encodable(body, 0)
            attributes = record.attributes
            # The SDK's BoundedAttributes keeps a plain dict in `_dict`: reading and deleting through it
            # costs C-level dict operations instead of the Mapping ABC's Python-level ones (a dozen
            # correlation keys per record). Deleting never needs the bounds or value cleaning.
            inner = attributes._dict if type(attributes) is BoundedAttributes else None
            view: MutableMapping[str, Any]
            target: MutableMapping[str, Any]  # where writes go: through the SDK's bounds and cleaning
            if type(inner) is dict:
                view = inner
                target = attributes  # type: ignore[assignment]
            elif isinstance(attributes, MutableMapping):
                view = target = attributes
            else:  # ReadWriteLogRecord wraps them in a mutable BoundedAttributes; anything else is left alone
                return
            request_id = view["request_id"] if "request_id" in view else None  # noqa: SIM401 (no call when absent)
            added_id: str | None = None
            if self._drop and view:
                for key in _DROPPED.intersection(view):
                    del view[key]
            if SPAN_ATTRIBUTE not in view:  # otelpipe's bridge view (log_output) may already name it so
                request_id = request_id or _current_request_id()
                if request_id:
                    bounded: Any = attributes
                    if (
                        view is inner
                        and type(request_id) is str
                        and (bounded.maxlen is None or len(view) < bounded.maxlen)
                        and (bounded.max_value_len is None or len(request_id) <= bounded.max_value_len)
                    ):
                        # Exactly what BoundedAttributes would store (a str within its bounds is kept as
                        # is), without its lock and value cleaning.
                        view[SPAN_ATTRIBUTE] = request_id
                        added_id = request_id
                    else:
                        target[SPAN_ATTRIBUTE] = request_id
            if self._static:
                for key, value in self._static.items():
                    if key not in view:
                        target[key] = value
            redactor = self._redactor
            if redactor is None:
                return
            if view and not (
                # The record's one attribute is the request id the log filter already found clean.
                added_id is not None
                and added_id is redactor.clean_id
                and len(view) == 1
                and redactor._key_cache.get(SPAN_ATTRIBUTE) is False
            ):
                changes = redactor.changed_items(view)
                for key, value in changes.items():
                    target[key] = value
            body = record.body
            if type(body) is str or isinstance(body, str):
                record.body = redactor.redact_text(body)
            elif isinstance(body, Mapping):
                record.body = dict(redactor.redact_mapping(body))
            elif isinstance(body, (list, tuple, bytes)):
                record.body = redactor.redact_value("body", body)
            try:
                event_name = record.event_name
            except AttributeError:  # an SDK whose LogRecord has no event name
                event_name = None
            if event_name is not None and isinstance(event_name, str) and event_name:
                record.event_name = redactor.redact_text(event_name)
            if type(log_record) is ReadWriteLogRecord:
                resource = log_record.resource
            else:
                resource = getattr(log_record, "resource", None)
            if resource is not None and resource is not self._resource:  # shared: masked once, in place
                self._resource = resource
                self._redact_resource(redactor, resource)
        except Exception:  # a log line must still go out; count and report once
            self.failures += 1
            if self.failures == 1:
                _logger.warning("log record processing failed; later failures are counted only")

    @staticmethod
    def _redact_resource(redactor: Redactor, resource: Any) -> None:
        changes = redactor.changed_items(resource.attributes)
        inner = getattr(resource.attributes, "_dict", None)
        if changes and isinstance(inner, dict):
            inner.update(changes)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
