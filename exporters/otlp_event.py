"""OTLP event notifier: every incident transition becomes an OTel log record named `otelpipe.incident`.

The record goes through the application's logs pipeline (e.g. BatchLogRecordProcessor + OTLP), so
any OTLP backend sees incidents next to the traces they point at: the record carries the trace
context of an example trace of the incident.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from opentelemetry._logs import Logger, LoggerProvider, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from otelpipe.exporters._delivery import DeliveryOptions, QueuedNotifier
from otelpipe.incidents.codec import incident_to_dict
from otelpipe.incidents.model import Incident, IncidentEvent

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.util.types import AttributeValue

EVENT_NAME = "otelpipe.incident"
_PREFIX = "otelpipe.incident."

_SEVERITY = {
    "critical": (SeverityNumber.FATAL, "FATAL"),
    "error": (SeverityNumber.ERROR, "ERROR"),
    "warning": (SeverityNumber.WARN, "WARN"),
    "info": (SeverityNumber.INFO, "INFO"),
}


# Fields of `incident_to_dict` every event carries as `otelpipe.incident.<name>`.
_ALWAYS = (
    "id",
    "dedup_key",
    "key",
    "service",
    "name",
    "kind",
    "severity",
    "status",
    "opened_at",
    "total",
    "errors",
)


def event_attributes(event: IncidentEvent) -> dict[str, AttributeValue]:
    """Flat attributes with every figure, under `otelpipe.incident.*` (the names of `incident_to_dict`)."""
    incident = event.incident
    data = incident_to_dict(incident)
    attributes: dict[str, AttributeValue] = {_PREFIX + "event": event.kind}
    attributes.update((_PREFIX + name, data[name]) for name in _ALWAYS)
    optional: dict[str, AttributeValue | None] = {  # left out when unset: OTLP has no null
        "tier": data["tier"] or None,
        "objective": data["objective"],
        "budget_remaining": data["budget_remaining"],
        "previous_severity": event.previous_severity,
        "resolved_at": data["resolved_at"],
        "time_to_recover_s": incident.time_to_recover_s,
    }
    for name, value in optional.items():
        if value is not None:
            attributes[_PREFIX + name] = value
    for window, burn in data["burn_rates"].items():
        attributes[f"{_PREFIX}burn_rate.{window}"] = burn
    for name, label in data["labels"].items():
        attributes[f"{_PREFIX}label.{name}"] = label
    if data["traces"]:
        attributes[_PREFIX + "trace_ids"] = [t["trace_id"] for t in data["traces"]]
        urls = [t["url"] for t in data["traces"] if t["url"]]
        if urls:
            attributes[_PREFIX + "trace_urls"] = urls
    return attributes


def example_trace_context(incident: Incident) -> Context:
    """A context whose span is the incident's first example trace (empty context if there is none)."""
    for trace in incident.traces:
        try:
            trace_id, span_id = int(trace.trace_id, 16), int(trace.span_id, 16)
        except ValueError:
            continue
        if trace_id and span_id:
            span_context = SpanContext(
                trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
            )
            return set_span_in_context(NonRecordingSpan(span_context), Context())
    return Context()


class OTLPEventNotifier(QueuedNotifier):
    """Emits incident transitions through an OTel `Logger` (or one from a `LoggerProvider`)."""

    name = "otlp-event"

    def __init__(
        self,
        logger: Logger | LoggerProvider,
        *,
        options: DeliveryOptions | None = None,
        meter: Meter | None = None,
    ) -> None:
        if isinstance(logger, LoggerProvider):
            logger = logger.get_logger("otelpipe.incidents")
        self._logger = logger
        super().__init__(options, meter=meter)

    def _deliver(self, event: IncidentEvent) -> None:
        incident = event.incident
        number, text = (
            (SeverityNumber.INFO, "INFO")
            if event.kind == "resolved"
            else _SEVERITY.get(incident.severity, _SEVERITY["error"])
        )
        self._logger.emit(
            timestamp=int(event.at * 1e9),
            observed_timestamp=time.time_ns(),
            context=example_trace_context(incident),
            severity_number=number,
            severity_text=text,
            body=f"{event.kind}: {incident.summary}",
            attributes=event_attributes(event),
            event_name=EVENT_NAME,
        )
