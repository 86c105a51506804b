"""Incident lifecycle over a fake clock: open, flap suppression, updates, renotify, resolve, restart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from otelpipe.alerts import AlertState, Severity
from otelpipe.incidents.engine import IncidentEngine
from otelpipe.incidents.model import Incident, IncidentEvent
from otelpipe.incidents.store import IncidentStore
from otelpipe.processors.red_snapshot import ExemplarRef

TRACE = "0af7651916cd43dd8448eb211c80319c"


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingNotifier:
    def __init__(self) -> None:
        self.events: list[IncidentEvent] = []
        self.synced: list[tuple[Incident, ...]] = []

    def submit(self, event: IncidentEvent) -> None:
        self.events.append(event)

    def sync(self, open_incidents: Sequence[Incident]) -> None:
        self.synced.append(tuple(open_incidents))

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        pass

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def state(
    firing: bool,
    *,
    severity: Severity = "critical",
    burn: float = 14.4,
    key: str = "checkout/availability",
    exemplars: tuple[ExemplarRef, ...] = (),
) -> AlertState:
    return AlertState(
        key=key,
        service=key.split("/", maxsplit=1)[0],
        name=key.split("/")[1],
        firing=firing,
        severity=severity,
        summary=f"availability burning {burn}x",
        at=0.0,
        tier="page-5m-1h",
        objective=0.999,
        burn_rates={"5m": burn, "1h": burn * 0.9},
        budget_remaining=0.8,
        total=1000,
        errors=20,
        exemplars=exemplars,
        labels={"team": "shop"},
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


def test_opens_once_with_evidence_and_stable_keys(clock: FakeClock, notifier: RecordingNotifier) -> None:
    exemplar = ExemplarRef(TRACE, "b7ad6b7169203331", 0.42, 1, True, True)
    engine = IncidentEngine([notifier], clock=clock, trace_url_template="http://jaeger/trace/{trace_id}")
    events = engine.observe([state(True, exemplars=(exemplar,))])
    assert [e.kind for e in events] == ["opened"]
    incident = events[0].incident
    assert incident.dedup_key == "otelpipe/checkout/availability"
    assert incident.severity == "critical" and incident.objective == 0.999
    assert incident.burn_rates == {"5m": 14.4, "1h": pytest.approx(12.96)}
    assert incident.traces[0].url == f"http://jaeger/trace/{TRACE}"
    for _ in range(5):
        clock.now += 60
        assert engine.observe([state(True)]) == []
    assert notifier.kinds == ["opened"]
    assert [i.id for i in engine.open_incidents()] == [incident.id]
    # evidence keeps the last known example traces when a tick has none
    assert engine.open_incidents()[0].traces == incident.traces


def test_flapping_condition_is_one_incident_and_one_page(
    clock: FakeClock, notifier: RecordingNotifier
) -> None:
    engine = IncidentEngine([notifier], clock=clock, hold_down_s=300)
    for firing in [True, False, True, False, False, True, False, True]:
        engine.observe([state(firing)])
        clock.now += 60  # re-fires always within the hold-down
    assert notifier.kinds == ["opened"]
    assert len(engine.history()) == 1


def test_resolves_only_after_hold_down(clock: FakeClock, notifier: RecordingNotifier) -> None:
    engine = IncidentEngine([notifier], clock=clock, hold_down_s=300)
    engine.observe([state(True)])
    opened_at = clock.now
    clock.now += 100
    engine.observe([state(False)])  # clear since opened_at + 100
    clock.now += 299
    assert engine.observe([state(False)]) == []
    clock.now += 1
    events = engine.observe([state(False)])
    assert [e.kind for e in events] == ["resolved"]
    resolved = events[0].incident
    assert resolved.status == "resolved"
    assert resolved.time_to_recover_s == 100
    assert resolved.resolved_at == opened_at + 400
    assert engine.open_incidents() == []
    # a new firing after resolution is a new incident with a new id, same dedup key
    clock.now += 10
    (reopened,) = engine.observe([state(True)])
    assert reopened.kind == "opened"
    assert reopened.incident.id != resolved.id and reopened.incident.dedup_key == resolved.dedup_key


def test_severity_change_and_burn_growth_update(clock: FakeClock, notifier: RecordingNotifier) -> None:
    engine = IncidentEngine([notifier], clock=clock)
    engine.observe([state(True, severity="warning", burn=6.0)])
    clock.now += 60
    (event,) = engine.observe([state(True, severity="critical", burn=7.0)])
    assert event.kind == "updated" and event.previous_severity == "warning"
    clock.now += 60
    assert engine.observe([state(True, severity="critical", burn=13.0)]) == []  # < 2x of 7
    clock.now += 60
    (grown,) = engine.observe([state(True, severity="critical", burn=14.0)])
    assert grown.kind == "updated" and grown.incident.notifications == 3


def test_long_incident_is_renotified(clock: FakeClock, notifier: RecordingNotifier) -> None:
    engine = IncidentEngine([notifier], clock=clock, renotify_interval_s=3600)
    engine.observe([state(True)])
    for _ in range(12):
        clock.now += 600
        engine.observe([state(True)])
    assert notifier.kinds == ["opened", "renotified", "renotified"]


def test_absent_key_changes_nothing_and_other_keys_are_independent(
    clock: FakeClock, notifier: RecordingNotifier
) -> None:
    engine = IncidentEngine([notifier], clock=clock, hold_down_s=0)
    engine.observe([state(True), state(True, key="cart/latency")])
    clock.now += 60
    engine.observe([state(True, key="cart/latency")])  # checkout missing: stays open
    assert {i.key for i in engine.open_incidents()} == {"checkout/availability", "cart/latency"}
    clock.now += 60
    engine.observe([state(False, key="cart/latency")])
    clock.now += 1
    events = engine.observe([state(False, key="cart/latency")])
    assert [(e.kind, e.incident.key) for e in events] == [("resolved", "cart/latency")]
    assert notifier.synced[-1][0].key == "checkout/availability"


def test_restart_neither_forgets_nor_repages(tmp_path: Path, clock: FakeClock) -> None:
    first = RecordingNotifier()
    engine = IncidentEngine([first], clock=clock, store=IncidentStore(tmp_path), hold_down_s=120)
    engine.observe([state(True)])
    clock.now += 60
    engine.observe([state(False)])  # clearing when the process dies
    opened = first.events[0].incident

    second = RecordingNotifier()
    restarted = IncidentEngine([second], clock=clock, store=IncidentStore(tmp_path), hold_down_s=120)
    assert [i.id for i in restarted.open_incidents()] == [opened.id]
    clock.now += 30
    assert restarted.observe([state(False)]) == []
    assert second.synced[-1][0].id == opened.id  # level-triggered targets learn about it
    clock.now += 90  # hold-down counted from before the restart
    (resolved,) = restarted.observe([state(False)])
    assert resolved.kind == "resolved" and resolved.incident.id == opened.id
    assert second.kinds == ["resolved"]
    assert [i.status for i in IncidentEngine(clock=clock, store=IncidentStore(tmp_path)).history()] == [
        "resolved"
    ]


def test_restart_while_firing_does_not_page_again(tmp_path: Path, clock: FakeClock) -> None:
    IncidentEngine([RecordingNotifier()], clock=clock, store=IncidentStore(tmp_path)).observe([state(True)])
    again = RecordingNotifier()
    restarted = IncidentEngine([again], clock=clock, store=IncidentStore(tmp_path))
    for _ in range(3):
        clock.now += 60
        restarted.observe([state(True)])
    assert again.kinds == []


def test_a_raising_notifier_does_not_stop_the_others(clock: FakeClock, notifier: RecordingNotifier) -> None:
    class Broken(RecordingNotifier):
        def submit(self, event: IncidentEvent) -> None:
            raise RuntimeError("boom")

    engine = IncidentEngine([Broken(), notifier], clock=clock)
    assert [e.kind for e in engine.observe([state(True)])] == ["opened"]
    assert notifier.kinds == ["opened"]


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        IncidentEngine(hold_down_s=-1)
