"""WebhookNotifier posts the documented body to a real local HTTP server."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from otelpipe.exporters.webhook import WebhookNotifier, webhook_body

if TYPE_CHECKING:
    from conftest import EventFactory, Recorder

OPENED_AT = 1_714_564_800.0
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"


def test_json_body_matches_the_documented_schema(recorder: Recorder, make_event: EventFactory) -> None:
    notifier = WebhookNotifier(recorder.url + "/hooks/T0KEN")
    notifier.submit(make_event("opened"))
    notifier.submit(make_event("resolved", at=OPENED_AT + 900))
    assert notifier.force_flush(10)
    notifier.shutdown()
    assert [path for path, _ in recorder.requests] == ["/hooks/T0KEN", "/hooks/T0KEN"]
    opened, resolved = recorder.bodies()
    assert opened == {
        "schema": "otelpipe.incident/v1",
        "event": "opened",
        "at": "2024-05-01T12:00:00.000Z",
        "previous_severity": None,
        "incident": {
            "id": "inc-abc-1714564800",
            "dedup_key": "otelpipe/checkout/availability",
            "key": "checkout/availability",
            "service": "checkout",
            "name": "availability",
            "kind": "slo",
            "severity": "critical",
            "status": "open",
            "summary": "availability burning 14.9x budget (page: 5m/1h)",
            "opened_at": "2024-05-01T12:00:00.000Z",
            "recovered_at": None,
            "resolved_at": None,
            "tier": "page-5m-1h",
            "objective": 0.999,
            "burn_rates": {"5m": 15.2, "1h": 14.9},
            "budget_remaining": 0.82,
            "total": 12000,
            "errors": 180,
            "labels": {"team": "shop"},
            "traces": [
                {
                    "trace_id": TRACE_ID,
                    "span_id": SPAN_ID,
                    "duration_s": 0.31,
                    "error": True,
                    "url": f"http://jaeger:16686/trace/{TRACE_ID}",
                }
            ],
        },
    }
    assert resolved["event"] == "resolved"
    assert resolved["incident"]["status"] == "resolved"
    assert resolved["incident"]["recovered_at"] == "2024-05-01T12:10:00.000Z"
    assert resolved["incident"]["resolved_at"] == "2024-05-01T12:15:00.000Z"
    assert notifier.delivered == 2 and notifier.failed == 0


def test_slack_format_is_a_text_message(recorder: Recorder, make_event: EventFactory) -> None:
    notifier = WebhookNotifier(recorder.url, format="slack")
    notifier.submit(make_event("opened"))
    assert notifier.force_flush(10)
    notifier.shutdown()
    (body,) = recorder.bodies()
    assert set(body) == {"text"}
    assert body["text"].splitlines() == [
        ":rotating_light: *[CRITICAL] opened*: checkout / availability",
        "availability burning 14.9x budget (page: 5m/1h)",
        "180 errors of 12000 requests",
        "error budget: 82.0% left",
        f"<http://jaeger:16686/trace/{TRACE_ID}|trace {TRACE_ID}>",
        "incident inc-abc-1714564800",
    ]


def test_repr_masks_the_token_in_the_url() -> None:
    notifier = WebhookNotifier("https://hooks.example.com/services/T000/B000/SECRET?token=abc")
    assert "SECRET" not in repr(notifier) and "abc" not in repr(notifier)
    assert "hooks.example.com" in repr(notifier)


def test_json_body_keeps_the_documented_key_order(make_event: EventFactory) -> None:
    # Receivers may hash or diff bodies: the bytes stay what the previous release sent.
    body = json.dumps(webhook_body(make_event("opened")), separators=(",", ":"))
    assert body == (
        '{"schema":"otelpipe.incident/v1","event":"opened","at":"2024-05-01T12:00:00.000Z",'
        '"previous_severity":null,"incident":{"id":"inc-abc-1714564800",'
        '"dedup_key":"otelpipe/checkout/availability","key":"checkout/availability","service":"checkout",'
        '"name":"availability","kind":"slo","severity":"critical","status":"open",'
        '"summary":"availability burning 14.9x budget (page: 5m/1h)","opened_at":"2024-05-01T12:00:00.000Z",'
        '"recovered_at":null,"resolved_at":null,"tier":"page-5m-1h","objective":0.999,'
        '"burn_rates":{"5m":15.2,"1h":14.9},"budget_remaining":0.82,"total":12000,"errors":180,'
        '"labels":{"team":"shop"},"traces":[{"trace_id":"0af7651916cd43dd8448eb211c80319c",'
        '"span_id":"b7ad6b7169203331","duration_s":0.31,"error":true,'
        '"url":"http://jaeger:16686/trace/0af7651916cd43dd8448eb211c80319c"}]}}'
    )
