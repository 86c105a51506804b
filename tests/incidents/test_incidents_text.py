"""Incident text by state, through the real SLO evaluator and engine on a fake clock, and as each notifier renders it.

An opening states the firing condition; an update says what changed; a resolution says it
recovered, how long it lasted and the figures now, never the firing summary; the severity shown
always matches the tier named in the figures.
"""

from __future__ import annotations

import io

import pytest

from otelpipe.alerts import AlertState
from otelpipe.exporters.alertmanager import alert_annotations
from otelpipe.exporters.console import ConsoleNotifier, format_event
from otelpipe.exporters.pagerduty import pagerduty_body
from otelpipe.exporters.webhook import slack_body, webhook_body
from otelpipe.incidents.engine import IncidentEngine
from otelpipe.incidents.model import IncidentEvent
from otelpipe.processors.red_snapshot import REDSnapshot, SeriesStats
from otelpipe.slo.evaluator import SLOEvaluator
from otelpipe.slo.model import SLI, SLO, Selector, SLOSpec, default_tiers

BOUNDS = (0.1, 0.5)
DAY = 86400.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _snap(good: int, bad: int) -> REDSnapshot:
    def series(calls: int, error: bool) -> SeriesStats:
        return SeriesStats(
            attributes={
                "service.name": "shop",
                "span.name": "POST /orders",
                "span.kind": "SPAN_KIND_SERVER",
                "status.code": "STATUS_CODE_ERROR" if error else "STATUS_CODE_UNSET",
            },
            calls=calls,
            errors=calls if error else 0,
            bucket_counts=(calls, 0, 0),
            sum=0.0,
            min=0.0,
            max=0.0,
            start_time_unix_nano=1,
        )

    return REDSnapshot(boundaries=BOUNDS, series=(series(good, False), series(bad, True)), time_unix_nano=0)


def _lifecycle() -> list[IncidentEvent]:
    """A full outage for 10 minutes, then clean traffic until the hold-down resolves it."""
    clock = Clock(1_714_564_800.0)
    slo = SLO(
        name="order-processing",
        service="shop",
        objective=0.999,
        period=30 * DAY,
        sli=SLI("availability", Selector(service="shop")),
        tiers=default_tiers(30 * DAY),
    )
    evaluator = SLOEvaluator(SLOSpec(slos=(slo,)), boundaries=BOUNDS, clock=clock)
    engine = IncidentEngine(clock=clock, hold_down_s=300)
    events: list[IncidentEvent] = []
    good = bad = 0
    for minute in range(60):
        if minute < 10:
            bad += 100
        else:
            good += 100_000  # enough good traffic to bring every short window under its factor
        events += engine.observe(evaluator.tick(_snap(good, bad)))
        clock.now += 60
    return events


def test_resolution_says_recovered_how_long_and_the_figures_now_not_the_firing_text() -> None:
    events = _lifecycle()
    kinds = [e.kind for e in events]
    assert kinds[0] == "opened" and kinds[-1] == "resolved", kinds
    opened, resolved = events[0], events[-1]
    assert opened.incident.summary.startswith("order-processing burning 1000.0x budget over 5m/1h")
    assert "(page fires at 14.4x)" in opened.incident.summary  # severity critical <-> the page tier
    assert opened.incident.severity == "critical" and opened.incident.tier == "page-5m-1h"

    assert "30d error budget exhausted (spent x1000)" in opened.incident.summary  # never "-99900.0%"

    # the page tier stops first while a ticket tier still burns: the update says so, in its own terms
    assert kinds == ["opened", "updated", "resolved"]
    update = events[1].incident
    assert update.summary.startswith("de-escalated critical -> warning: order-processing burning 5.0x")
    assert update.severity == "warning" and "(ticket fires at 3x)" in update.summary

    text = resolved.incident.summary
    assert text.startswith(
        "recovered after 19m, clear for 5m; now: order-processing below its alert thresholds"
    )
    assert "33.4% of the 30d error budget left" in text
    assert "burning 1000.0x" not in text and "burning 5.0x" not in text
    # the figures carried with the resolution are the ones now, not the firing ones
    assert resolved.incident.max_burn < 1.0 < opened.incident.max_burn
    assert resolved.incident.time_to_recover_s == 19 * 60


def test_severity_always_matches_the_tier_named_in_the_text() -> None:
    for event in _lifecycle():
        if event.kind != "resolved":
            tier = "page" if event.incident.severity == "critical" else "ticket"
            assert f"({tier} fires at" in event.incident.summary, event
            assert event.incident.tier.startswith(tier)


def _state(firing: bool, severity: str, burn: float, summary: str) -> AlertState:
    return AlertState(
        key="shop/checkout-errors",
        service="shop",
        name="checkout-errors",
        firing=firing,
        severity=severity,  # type: ignore[arg-type]
        summary=summary,
        at=0.0,
        burn_rates={"5m": burn},
    )


def test_update_says_what_changed_and_renotify_how_long() -> None:
    clock = Clock(1_714_564_800.0)
    engine = IncidentEngine(clock=clock, hold_down_s=60, renotify_interval_s=3600)
    assert (
        engine.observe([_state(True, "warning", 20.0, "x burning 20.0x (ticket fires at 3x)")])[0].kind
        == "opened"
    )
    clock.now += 60
    (update,) = engine.observe([_state(True, "critical", 15.0, "x burning 15.0x (page fires at 14.4x)")])
    assert update.kind == "updated" and update.previous_severity == "warning"
    assert update.incident.summary == "escalated warning -> critical: x burning 15.0x (page fires at 14.4x)"
    clock.now += 60
    (update,) = engine.observe([_state(True, "critical", 40.0, "x burning 40.0x (page fires at 14.4x)")])
    assert update.incident.summary.startswith("worst window burn 15.0x -> 40.0x: ")
    clock.now += 3600
    (again,) = engine.observe([_state(True, "critical", 40.0, "x burning 40.0x (page fires at 14.4x)")])
    assert again.kind == "renotified"
    assert again.incident.summary == "still firing after 1h2m: x burning 40.0x (page fires at 14.4x)"
    engine.observe([_state(False, "warning", 0.0, "error rate 0.2% (threshold 5.0%)")])
    clock.now += 61
    (done,) = engine.observe([_state(False, "warning", 0.0, "error rate 0.1% (threshold 5.0%)")])
    assert done.incident.summary == (
        "recovered after 1h2m, clear for 1m1s; now: error rate 0.1% (threshold 5.0%)"
    )


@pytest.fixture(scope="module")
def resolved_event() -> IncidentEvent:
    return _lifecycle()[-1]


def test_console_line_for_a_resolution(resolved_event: IncidentEvent) -> None:
    stream = io.StringIO()
    notifier = ConsoleNotifier(stream)
    notifier.submit(resolved_event)
    assert notifier.force_flush(5)
    notifier.shutdown()
    line = stream.getvalue().strip()
    assert line == format_event(resolved_event)
    assert " RESOLVED [warning] shop/order-processing: recovered after 19m, clear for 5m; now: " in line
    assert "burning 1000.0x" not in line and "(recovered after" not in line


def test_webhook_slack_and_alertmanager_text_for_a_resolution(resolved_event: IncidentEvent) -> None:
    for text in (
        webhook_body(resolved_event)["incident"]["summary"],
        slack_body(resolved_event)["text"],
        alert_annotations(resolved_event.incident)["summary"],
    ):
        assert "recovered after 19m" in text
        assert "burning 5.0x" not in text


def test_slack_text_says_an_overspent_budget_in_words() -> None:
    opened = _lifecycle()[0]
    assert opened.incident.budget_remaining is not None and opened.incident.budget_remaining < 0
    text = slack_body(opened)["text"]
    assert "error budget: exhausted x1000" in text and "-99" not in text


def test_pagerduty_trigger_text_names_the_tier_of_its_severity() -> None:
    opened = _lifecycle()[0]
    body = pagerduty_body(opened, "key")
    assert body is not None
    assert body["payload"]["severity"] == "critical"
    assert "(page fires at 14.4x)" in body["payload"]["summary"]
