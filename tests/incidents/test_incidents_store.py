"""IncidentStore: SQLite WAL round trip of incidents."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

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
