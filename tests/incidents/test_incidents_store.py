"""IncidentStore: SQLite WAL round trip of incidents."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from otelpipe.incidents.model import Incident, TraceLink
from otelpipe.incidents.store import FILENAME, IncidentStore


def incident(key: str, opened_at: float, **changes: object) -> Incident:
    base = Incident(
        id=f"inc-{key}-{int(opened_at)}",
        dedup_key=f"otelpipe/{key}",
        key=key,
        service=key.split("/", maxsplit=1)[0],
        name=key.split("/")[1],
        kind="slo",
        severity="critical",
        status="open",
        summary="burning",
        opened_at=opened_at,
        updated_at=opened_at,
        last_notified_at=opened_at,
        burn_rates={"5m": 14.4},
        traces=(TraceLink("a" * 32, "b" * 16, 0.3, True, "http://t/a"),),
        labels={"team": "shop"},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_round_trip_and_open_incidents(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "state")
    first = incident("checkout/availability", 100.0)
    store.save(first)
    store.save(incident("cart/latency", 200.0))
    store.save(replace(first, status="resolved", recovered_at=150.0, resolved_at=450.0))
    store.close()

    reopened = IncidentStore(tmp_path / "state")
    assert [i.key for i in reopened.load_open()] == ["cart/latency"]
    history = reopened.history()
    assert [i.key for i in history] == ["cart/latency", "checkout/availability"]
    assert history[1] == replace(first, status="resolved", recovered_at=150.0, resolved_at=450.0)
    assert [i.key for i in reopened.history(1)] == ["cart/latency"]
    assert [i.key for i in reopened.history(since=150.0)] == ["cart/latency"]
    with sqlite3.connect(tmp_path / "state" / FILENAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


# A row exactly as the release before the codec (otelpipe.incidents.codec) wrote it: it must still load.
PREVIOUS_RELEASE_ROW = (
    '{"budget_remaining": 0.82, "burn_rates": {"1h": 14.9, "5m": 15.2}, "clear_since": null, '
    '"dedup_key": "otelpipe/checkout/availability", "errors": 180, "id": "inc-abc-1714564800", '
    '"key": "checkout/availability", "kind": "slo", "labels": {"team": "shop"}, '
    '"last_notified_at": 1714564800.0, "name": "availability", "notifications": 1, "notified_burn": 0.0, '
    '"objective": 0.999, "opened_at": 1714564800.0, "recovered_at": null, "resolved_at": null, '
    '"service": "checkout", "severity": "critical", "status": "open", '
    '"summary": "availability burning 14.9x budget (page: 5m/1h)", "tier": "page-5m-1h", "total": 12000, '
    '"traces": [{"duration_s": 0.31, "error": true, "span_id": "b7ad6b7169203331", '
    '"trace_id": "0af7651916cd43dd8448eb211c80319c", '
    '"url": "http://jaeger:16686/trace/0af7651916cd43dd8448eb211c80319c"}], '
    '"updated_at": 1714564800.0, "v": 1}'
)


def test_rows_written_by_the_previous_release_load_and_newer_ones_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    IncidentStore(tmp_path).close()
    newer = PREVIOUS_RELEASE_ROW.replace('"v": 1}', '"v": 2}').replace("inc-abc", "inc-new")
    with sqlite3.connect(tmp_path / FILENAME) as db:
        db.executemany(
            "INSERT INTO incidents (id, key, status, opened_at, resolved_at, body) VALUES (?, ?, 'open', ?, NULL, ?)",
            [
                ("inc-abc-1714564800", "checkout/availability", 1714564800.0, PREVIOUS_RELEASE_ROW),
                ("inc-new-1714564900", "cart/latency", 1714564900.0, newer),
            ],
        )
    db.close()
    caplog.set_level(logging.WARNING, logger="otelpipe")
    store = IncidentStore(tmp_path)
    try:
        (loaded,) = store.load_open()
    finally:
        store.close()
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    assert loaded == incident(
        "checkout/availability",
        1714564800.0,
        id="inc-abc-1714564800",
        summary="availability burning 14.9x budget (page: 5m/1h)",
        tier="page-5m-1h",
        objective=0.999,
        burn_rates={"5m": 15.2, "1h": 14.9},
        budget_remaining=0.82,
        total=12000,
        errors=180,
        traces=(
            TraceLink(trace_id, "b7ad6b7169203331", 0.31, True, f"http://jaeger:16686/trace/{trace_id}"),
        ),
    )
    (warning,) = [r.getMessage() for r in caplog.records if "malformed incident row" in r.getMessage()]
    assert "skipped 1 " in warning and "record version 2" in warning
