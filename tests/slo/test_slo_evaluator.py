"""SLOEvaluator with a fake clock and hand-built RED snapshots."""

import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from otelpipe.processors.red_snapshot import ExemplarRef, REDSnapshot, SeriesStats
from otelpipe.slo.evaluator import SLOEvaluator
from otelpipe.slo.model import SLI, SLO, AlertTier, Selector, SLOSpec, default_tiers
from otelpipe.slo.spec import SLOSpecError, load_spec
from otelpipe.slo.state import STATE_FILE_NAME, SLOStateStore

BOUNDS = (0.1, 0.25, 0.5, 1.0)
DEMO = Path(__file__).parents[2] / "otelpipe" / "demo" / "slo.yaml"
DAY = 86400.0


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def series(
    calls: int,
    *,
    error: bool = False,
    fast: int | None = None,
    name: str = "GET /api/products",
    kind: str = "SPAN_KIND_SERVER",
    service: str = "shop",
    start: int = 1,
    exemplars: tuple[ExemplarRef, ...] = (),
) -> SeriesStats:
    fast = calls if fast is None else fast
    return SeriesStats(
        attributes={
            "service.name": service,
            "span.name": name,
            "span.kind": kind,
            "status.code": "STATUS_CODE_ERROR" if error else "STATUS_CODE_UNSET",
        },
        calls=calls,
        errors=calls if error else 0,
        bucket_counts=(fast, 0, 0, calls - fast, 0),
        sum=0.0,
        min=0.0,
        max=0.0,
        start_time_unix_nano=start,
        exemplars=exemplars,
    )


def snap(*items: SeriesStats) -> REDSnapshot:
    return REDSnapshot(boundaries=BOUNDS, series=items, time_unix_nano=0)


def availability(
    objective: float = 0.999, period: float = 30 * DAY, min_events: int = 0, **selector: str
) -> SLO:
    return SLO(
        name="api-availability",
        service="shop",
        objective=objective,
        period=period,
        sli=SLI("availability", Selector(service="shop", **selector)),
        tiers=default_tiers(period),
        min_events=min_events,
    )


def evaluator(*slos: SLO, clock: Clock, **kwargs: object) -> SLOEvaluator:
    return SLOEvaluator(SLOSpec(slos=slos), boundaries=BOUNDS, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_hand_computed_burn_rates_and_tiers() -> None:
    clock = Clock(0.0)
    ev = evaluator(availability(), clock=clock)
    # 1 % errors against a 0.1 % budget: burn 10 everywhere -> page 30m/6h (x6) fires, 5m/1h (x14.4) not
    (alert,) = ev.tick(snap(series(9900), series(100, error=True)))
    assert alert.burn_rates["5m"] == pytest.approx(10.0)
    assert alert.burn_rates["30d"] == pytest.approx(10.0)
    assert alert.firing and alert.severity == "critical" and alert.tier == "page-30m-6h"
    assert (alert.total, alert.errors) == (10_000, 100)
    assert alert.budget_remaining == pytest.approx(-9.0)
    assert alert.key == "shop/api-availability" and alert.kind == "slo" and alert.objective == 0.999

    # 10 minutes later, 10 000 good calls more: the 5m window is clean, the rest sees 100 of 20 000
    clock.now = 600.0
    (alert,) = ev.tick(snap(series(19_900), series(100, error=True)))
    assert alert.burn_rates["5m"] == 0.0
    assert alert.burn_rates["1h"] == pytest.approx(5.0)
    assert alert.burn_rates["1d"] == pytest.approx(5.0)
    assert alert.firing and alert.severity == "warning" and alert.tier == "ticket-2h-1d"
    (status,) = ev.status()
    assert status.sli == pytest.approx(0.995)
    assert status.firing_tiers == ("ticket-2h-1d", "ticket-6h-3d")
    assert status.sli_by_window["5m"] == 1.0

    # 7 hours on without traffic: 6h windows empty -> only the 1d/3d tickets could still hold
    clock.now = 600.0 + 7 * 3600
    (alert,) = ev.tick(snap(series(19_900), series(100, error=True)))
    assert alert.burn_rates["6h"] == 0.0
    assert not alert.firing  # the short windows (2h, 6h) are empty
    assert alert.burn_rates["1d"] == pytest.approx(5.0)


def test_page_fires_on_full_outage_and_stops_when_it_ends() -> None:
    clock = Clock(1_000_000.0)
    ev = evaluator(availability(), clock=clock)
    (alert,) = ev.tick(snap(series(50, error=True)))
    assert alert.firing and alert.tier == "page-5m-1h" and alert.burn_rates["5m"] == pytest.approx(1000.0)
    assert "burning 1000.0x budget over 5m/1h (page fires at 14.4x)" in alert.summary
    assert "30d error budget exhausted (spent x1000)" in alert.summary
    clock.now += 3700
    (alert,) = ev.tick(snap(series(50, error=True), series(10_000)))
    assert alert.burn_rates["1h"] == 0.0
    assert alert.tier != "page-5m-1h" or not alert.firing


def test_minimum_traffic_guard() -> None:
    clock = Clock(0.0)
    ev = evaluator(availability(min_events=100), clock=clock)
    (alert,) = ev.tick(snap(series(99, error=True)))
    assert not alert.firing and alert.burn_rates["5m"] == pytest.approx(1000.0)
    clock.now = 10.0
    (alert,) = ev.tick(snap(series(100, error=True)))
    assert alert.firing


def test_budget_exhaustion_over_a_day() -> None:
    clock = Clock(0.0)
    ev = evaluator(availability(objective=0.99, period=DAY), clock=clock)
    ev.tick(snap(series(990), series(5, error=True)))
    clock.now = 6 * 3600.0
    (alert,) = ev.tick(snap(series(1980), series(10, error=True)))
    assert alert.budget_remaining == pytest.approx(1 - (10 / 1990) / 0.01)
    clock.now = 12 * 3600.0
    (alert,) = ev.tick(snap(series(1980), series(30, error=True)))
    assert alert.budget_remaining == pytest.approx(1 - (30 / 2010) / 0.01)
    assert alert.budget_remaining < 0
    clock.now = 36 * 3600.0  # the whole period has rolled past: budget back to full
    (alert,) = ev.tick(snap(series(1980), series(30, error=True)))
    assert alert.budget_remaining == 1.0


def test_counter_reset_counts_current_as_new() -> None:
    clock = Clock(0.0)
    ev = evaluator(availability(), clock=clock)
    ev.tick(snap(series(100)))
    clock.now = 10.0
    ev.tick(snap(series(10, start=2)))  # restarted store: new start time, lower count
    clock.now = 20.0
    ev.tick(snap(series(5, start=2), series(1, error=True, start=2)))  # lower without new start
    (status,) = ev.status()
    assert status.total == 100 + 10 + 5 + 1
    assert status.good == 115


def test_selector_ignores_other_services_and_kinds() -> None:
    clock = Clock(0.0)
    ev = evaluator(availability(), clock=clock)
    ev.tick(
        snap(
            series(10), series(5, error=True, kind="SPAN_KIND_CLIENT"), series(7, error=True, service="other")
        )
    )
    (status,) = ev.status()
    assert (status.good, status.total) == (10, 10)


def test_demo_slas_take_their_own_series() -> None:
    clock = Clock(0.0)
    bounds = (0.1, 0.25, 0.4, 1.0)  # the demo's latency SLO is at 400 ms, a connector bucket
    ev = SLOEvaluator(load_spec(DEMO), boundaries=bounds, clock=clock)
    items = (
        series(900, fast=880),
        series(100, error=True, fast=100),
        series(2000, name="order.create", kind="SPAN_KIND_INTERNAL"),
        series(2, error=True, name="order.create", kind="SPAN_KIND_INTERNAL"),
    )
    alerts = ev.tick(REDSnapshot(boundaries=bounds, series=items, time_unix_nano=0))
    by_name = {a.name: a for a in alerts}
    assert by_name["api-availability"].burn_rates["30d"] == pytest.approx(0.1 / 0.001)
    assert by_name["api-latency"].burn_rates["30d"] == pytest.approx(0.02 / 0.05)  # 20 slow of 1000
    assert by_name["order-processing"].burn_rates["1d"] == pytest.approx((2 / 2002) / 0.0005)
    assert by_name["api-availability"].firing and not by_name["api-latency"].firing
    # ~2x burn: only the slowest ticket tier (x1) fires
    assert by_name["order-processing"].firing and by_name["order-processing"].severity == "warning"
    assert by_name["order-processing"].tier == "ticket-12m-2h24m"


def test_exemplars_of_failing_and_slow_requests() -> None:
    clock = Clock(0.0)

    def ex(n: int, value: float, error: bool) -> ExemplarRef:
        return ExemplarRef(f"{n:032x}", f"{n:016x}", value, n, True, error)

    latency = SLO(
        "api-latency", "shop", 0.95, 30 * DAY, SLI("latency", Selector("shop"), 0.5), default_tiers(30 * DAY)
    )
    ev = evaluator(availability(), latency, clock=clock)
    alerts = ev.tick(
        snap(
            series(100, fast=0, exemplars=(ex(1, 0.05, False), ex(2, 0.9, False))),
            series(100, error=True, exemplars=(ex(3, 0.01, True),)),
        )
    )
    by_name = {a.name: a for a in alerts}
    assert [e.trace_id[-1] for e in by_name["api-availability"].exemplars] == ["3"]
    assert [e.trace_id[-1] for e in by_name["api-latency"].exemplars] == ["2"]


def test_latency_threshold_not_a_boundary_is_refused() -> None:
    slo = SLO(
        "l", "shop", 0.95, DAY, SLI("latency", Selector("shop"), 0.3), default_tiers(DAY), origin="slos[0]"
    )
    with pytest.raises(SLOSpecError, match=r"slos\[0\].sli.threshold.*0.25s or 0.5s"):
        SLOEvaluator(SLOSpec((slo,)), boundaries=BOUNDS)


def test_time_scale_shrinks_windows_but_keeps_labels() -> None:
    clock = Clock(0.0)
    ev = evaluator(availability(), clock=clock, time_scale=60.0)  # 5m -> 5 s, 1h -> 60 s, 30d -> 12 h
    (alert,) = ev.tick(snap(series(10, error=True)))
    assert alert.firing and alert.tier == "page-5m-1h"
    clock.now = 61.0
    (alert,) = ev.tick(snap(series(10, error=True), series(100)))
    assert alert.burn_rates["5m"] == 0.0 and alert.burn_rates["1h"] == 0.0
    assert alert.burn_rates["30d"] == pytest.approx((10 / 110) / 0.001)


def test_restart_with_state_keeps_the_budget(tmp_path: Path) -> None:
    clock = Clock(1_000_000.0)
    spec = SLOSpec((availability(),))
    store = SLOStateStore(tmp_path, clock=clock)
    ev = SLOEvaluator(spec, boundaries=BOUNDS, clock=clock, state=store, persist_interval=0.0)
    ev.tick(snap(series(9990), series(10, error=True)))
    store.close()

    clock.now += 1800.0
    store = SLOStateStore(tmp_path, clock=clock)
    again = SLOEvaluator(spec, boundaries=BOUNDS, clock=clock, state=store)
    (status,) = again.status()
    assert (status.good, status.total) == (9990, 10_000)
    assert status.burn_rates["1h"] == pytest.approx(1.0) and status.burn_rates["5m"] == 0.0
    # the new process's store starts from zero again: first sight counts in full
    (alert,) = again.tick(snap(series(90), series(10, error=True)))
    assert alert.burn_rates["30d"] == pytest.approx((20 / 10_100) / 0.001)
    again.flush()
    store.close()
    (row,) = sqlite3.connect(tmp_path / STATE_FILE_NAME).execute("SELECT status FROM slo").fetchall()
    assert '"total": 10100' in row[0]


@pytest.mark.parametrize("content", [b"this is not sqlite at all" * 100, None])
def test_corrupt_or_foreign_state_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes | None
) -> None:
    path = tmp_path / STATE_FILE_NAME
    if content is None:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE orders(id INTEGER)")
        conn.commit()
        conn.close()
    else:
        path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="otelpipe.slo"):
        store = SLOStateStore(tmp_path, clock=lambda: 0.0)
    moved = sorted(p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name)
    assert moved and moved[0].startswith(f"{STATE_FILE_NAME}.corrupt-19700101T000000Z")
    assert "moved it to" in caplog.text and "starting with empty SLO windows" in caplog.text
    clock = Clock(0.0)
    ev = SLOEvaluator(SLOSpec((availability(),)), boundaries=BOUNDS, clock=clock, state=store)
    ev.tick(snap(series(5)))
    ev.flush()
    assert store.load()["shop/api-availability"].status["total"] == 5


def test_changed_windows_start_fresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(0.0)
    store = SLOStateStore(tmp_path)
    ev = SLOEvaluator(SLOSpec((availability(),)), boundaries=BOUNDS, clock=clock, state=store)
    ev.tick(snap(series(5)))
    ev.flush()
    with caplog.at_level(logging.WARNING, logger="otelpipe.slo"):
        other = SLOEvaluator(
            SLOSpec((availability(),)), boundaries=BOUNDS, clock=clock, state=store, time_scale=2
        )
    assert "starting it fresh" in caplog.text
    assert other.status()[0].total == 0


def test_custom_tier_and_worst_tier_choice() -> None:
    clock = Clock(0.0)
    slo = SLO(
        "a",
        "shop",
        0.99,
        DAY,
        SLI("availability", Selector("shop")),
        (AlertTier("ticket", 60, 600, 2.0), AlertTier("page", 60, 600, 50.0)),
    )
    ev = evaluator(slo, clock=clock)
    (alert,) = ev.tick(snap(series(70), series(30, error=True)))  # burn 30: ticket only
    assert alert.firing and alert.severity == "warning" and alert.tier == "ticket-1m-10m"
    clock.now = 10.0
    (alert,) = ev.tick(snap(series(70), series(1000, error=True)))
    assert alert.severity == "critical" and alert.tier == "page-1m-10m"


def test_tier_for_holds_the_alert_until_the_condition_lasted_that_long() -> None:
    clock = Clock(0.0)
    slo = replace(availability(), tiers=(AlertTier("page", 300.0, 3600.0, 14.4, for_seconds=120.0),))
    ev = evaluator(slo, clock=clock)
    (alert,) = ev.tick(snap(series(900), series(100, error=True)))  # burn 100x from the start
    assert not alert.firing  # condition true, but not yet for 2 minutes
    clock.now = 60.0
    (alert,) = ev.tick(snap(series(1800), series(200, error=True)))
    assert not alert.firing and ev.status()[0].firing is False
    clock.now = 120.0
    (alert,) = ev.tick(snap(series(2700), series(300, error=True)))
    assert alert.firing and alert.severity == "critical"
    assert alert.labels["alertname"] == "ShopApiAvailabilitySLO"
    assert alert.labels["sloth_id"] == "shop-api-availability" and alert.labels["sloth_severity"] == "page"
