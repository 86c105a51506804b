"""OTLPEventNotifier emits `otelpipe.incident` log records through the real OTel logs SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from otelpipe.exporters.otlp_event import EVENT_NAME, OTLPEventNotifier

if TYPE_CHECKING:
    from conftest import EventFactory

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"


def test_every_transition_is_a_log_record_with_trace_context(make_event: EventFactory) -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    notifier = OTLPEventNotifier(provider)
    notifier.submit(make_event("opened"))
    notifier.submit(make_event("resolved", at=1_714_565_700.0))
    assert notifier.force_flush(5)
    notifier.shutdown()
    opened, resolved = (r.log_record for r in exporter.get_finished_logs())
    assert opened.event_name == EVENT_NAME
    assert format(opened.trace_id, "032x") == TRACE_ID
    assert format(opened.span_id, "016x") == SPAN_ID
    assert opened.severity_number == SeverityNumber.FATAL
    assert opened.timestamp == 1_714_564_800 * 10**9
    assert opened.body == "opened: availability burning 14.9x budget (page: 5m/1h)"
    attributes = dict(opened.attributes or {})
    assert attributes["otelpipe.incident.event"] == "opened"
    assert attributes["otelpipe.incident.id"] == "inc-abc-1714564800"
    assert attributes["otelpipe.incident.dedup_key"] == "otelpipe/checkout/availability"
    assert attributes["otelpipe.incident.burn_rate.5m"] == 15.2
    assert attributes["otelpipe.incident.budget_remaining"] == 0.82
    assert attributes["otelpipe.incident.errors"] == 180
    assert attributes["otelpipe.incident.label.team"] == "shop"
    assert tuple(attributes["otelpipe.incident.trace_ids"]) == (TRACE_ID,)
    assert "otelpipe.incident.resolved_at" not in attributes
    assert resolved.severity_number == SeverityNumber.INFO
    assert dict(resolved.attributes or {})["otelpipe.incident.time_to_recover_s"] == 600.0


def test_incident_without_traces_has_no_trace_context(make_event: EventFactory) -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    notifier = OTLPEventNotifier(provider.get_logger("custom"))
    notifier.submit(make_event("opened", traces=()))
    assert notifier.force_flush(5)
    notifier.shutdown()
    (record,) = (r.log_record for r in exporter.get_finished_logs())
    assert record.trace_id == 0 and record.event_name == EVENT_NAME
