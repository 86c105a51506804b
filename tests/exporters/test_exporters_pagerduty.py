"""PagerDutyNotifier: exact Events v2 payloads, one page per flapping incident, no re-page on restart."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from otelpipe.alerts import AlertState
from otelpipe.exporters._delivery import DeliveryOptions
from otelpipe.exporters.pagerduty import PagerDutyNotifier, pagerduty_body
from otelpipe.incidents.engine import IncidentEngine
from otelpipe.incidents.store import IncidentStore
from otelpipe.processors.red_snapshot import ExemplarRef

if TYPE_CHECKING:
    from conftest import EventFactory, Recorder

ROUTING_KEY = "R0UT1NGKEY0123456789012345678901"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
FAST = DeliveryOptions(timeout_s=2.0, backoff_base_s=0.01)


def test_trigger_and_resolve_payloads(recorder: Recorder, make_event: EventFactory) -> None:
    notifier = PagerDutyNotifier(ROUTING_KEY, url=recorder.url + "/v2/enqueue", options=FAST)
    notifier.submit(make_event("opened"))
    notifier.submit(make_event("renotified"))  # PagerDuty's escalation policy re-alerts, not us
    notifier.submit(make_event("resolved"))
    assert notifier.force_flush(10)
    notifier.shutdown()
    assert [path for path, _ in recorder.requests] == ["/v2/enqueue", "/v2/enqueue"]
    trigger, resolve = recorder.bodies()
    assert trigger == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "otelpipe/checkout/availability",
        "payload": {
            "summary": "availability burning 14.9x budget (page: 5m/1h)",
            "source": "checkout",
            "severity": "critical",
            "timestamp": "2024-05-01T12:00:00.000Z",
            "component": "availability",
            "group": "checkout",
            "class": "slo",
            "custom_details": {
                "event": "opened",
                "incident_id": "inc-abc-1714564800",
                "key": "checkout/availability",
                "tier": "page-5m-1h",
                "objective": 0.999,
                "burn_rates": {"5m": 15.2, "1h": 14.9},
                "budget_remaining": 0.82,
                "total": 12000,
                "errors": 180,
                "trace_ids": [TRACE_ID],
                "labels": {"team": "shop"},
            },
        },
        "links": [{"href": f"http://jaeger:16686/trace/{TRACE_ID}", "text": f"Example trace {TRACE_ID}"}],
        "client": "otelpipe",
    }
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "otelpipe/checkout/availability",
    }
    assert "R0UT1NGKEY" not in repr(notifier)


def test_severity_mapping(make_event: EventFactory) -> None:
    body = pagerduty_body(make_event("opened", severity="warning"), "k", {"warning": "info"})
    assert body is not None and body["payload"]["severity"] == "info"
    unknown = pagerduty_body(make_event("opened", severity="page"), "k")
    assert unknown is not None and unknown["payload"]["severity"] == "error"


class Clock:
    def __init__(self) -> None:
        self.now = 1_714_564_800.0

    def __call__(self) -> float:
        return self.now


def _state(firing: bool) -> AlertState:
    return AlertState(
        key="checkout/availability",
        service="checkout",
        name="availability",
        firing=firing,
        severity="critical",
        summary="availability burning 14.4x",
        at=0.0,
        burn_rates={"5m": 14.4},
        exemplars=(ExemplarRef(TRACE_ID, "b7ad6b7169203331", 0.2, 1, True, True),),
    )


def test_flapping_condition_pages_once(recorder: Recorder) -> None:
    clock = Clock()
    notifier = PagerDutyNotifier(ROUTING_KEY, url=recorder.url, options=FAST)
    engine = IncidentEngine([notifier], clock=clock, hold_down_s=300)
    for firing in [True, False, True, False, True, True, False, True, False]:
        engine.observe([_state(firing)])
        clock.now += 30
    assert notifier.force_flush(10)
    notifier.shutdown()
    assert [b["event_action"] for b in recorder.bodies()] == ["trigger"]


def test_restart_with_open_incident_does_not_page_again_and_still_resolves(
    recorder: Recorder, tmp_path: Path
) -> None:
    clock = Clock()
    first = PagerDutyNotifier(ROUTING_KEY, url=recorder.url, options=FAST)
    IncidentEngine([first], clock=clock, store=IncidentStore(tmp_path)).observe([_state(True)])
    first.shutdown(10)  # the process stops

    second = PagerDutyNotifier(ROUTING_KEY, url=recorder.url, options=FAST)
    engine = IncidentEngine([second], clock=clock, store=IncidentStore(tmp_path), hold_down_s=60)
    for firing in [True, True, False, False, False]:
        clock.now += 30
        engine.observe([_state(firing)])
    assert second.force_flush(10)
    second.shutdown()
    actions = [(b["event_action"], b["dedup_key"]) for b in recorder.bodies()]
    assert actions == [
        ("trigger", "otelpipe/checkout/availability"),
        ("resolve", "otelpipe/checkout/availability"),
    ]
