"""SQLite persistence of incident history, so a restart neither forgets an open incident nor re-pages.

One row per incident (upserted on every transition), WAL mode so `otelpipe incidents list` can read
while the application writes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from otelpipe.incidents.model import Incident, TraceLink
from otelpipe.state_files import check_same_file, private_dir, private_file

FILENAME = "incidents.sqlite"
_log = logging.getLogger("otelpipe.incidents")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at REAL NOT NULL,
    resolved_at REAL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_status ON incidents (status);
CREATE INDEX IF NOT EXISTS incidents_opened ON incidents (opened_at);
"""

_FORMAT_VERSION = 1


class IncidentStore:
    """Incident history in `<state_dir>/incidents.sqlite`; safe to share between threads."""

    def __init__(self, state_dir: str | Path, *, timeout_s: float = 5.0) -> None:
        directory = private_dir(state_dir)  # 0700: incident history names services, routes, traces
        self.path = directory / FILENAME
        self._lock = threading.Lock()
        try:
            self._db = self._open(timeout_s)
        except sqlite3.DatabaseError as exc:  # not a database (corrupt, truncated, foreign file)
            if isinstance(exc, sqlite3.OperationalError) or not self.path.is_file():
                raise  # locked or unwritable: the file may be fine, never move it aside
            # Keep the damaged history for inspection and start a fresh one: better than no incidents.
            aside = self.path.with_name(f"{FILENAME}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
            self.path.replace(aside)
            _log.error("incident history %s was unreadable (%s); moved it to %s", self.path, exc, aside)
            self._db = self._open(timeout_s)

    def _open(self, timeout_s: float) -> sqlite3.Connection:
        # Two processes creating the file at once can get "database is locked" straight away (the
        # switch to WAL and the schema need an exclusive lock, and SQLite refuses a lock upgrade that
        # could deadlock without waiting), so setup is retried until the timeout.
        deadline = time.monotonic() + timeout_s
        while True:
            identity = private_file(self.path)  # 0600, never through a symlink (UnsafeStateFile)
            db = sqlite3.connect(self.path, timeout=timeout_s, check_same_thread=False)
            try:
                check_same_file(self.path, identity)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
                db.commit()
                return db
            except sqlite3.OperationalError as exc:
                db.close()
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
            except (sqlite3.DatabaseError, OSError):
                db.close()
                raise

    def save(self, incident: Incident) -> None:
        """Insert or replace one incident (by id)."""
        row = (
            incident.id,
            incident.key,
            incident.status,
            incident.opened_at,
            incident.resolved_at,
            json.dumps(_to_json(incident), sort_keys=True),
        )
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO incidents (id, key, status, opened_at, resolved_at, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
            self._db.commit()

    def load_open(self) -> list[Incident]:
        """Open incidents, oldest first; at most one per key (the newest wins if older rows linger)."""
        rows = self._query("SELECT body FROM incidents WHERE status = 'open' ORDER BY opened_at", ())
        by_key = {incident.key: incident for incident in rows}
        return sorted(by_key.values(), key=lambda i: i.opened_at)

    def history(self, limit: int | None = None, *, since: float | None = None) -> list[Incident]:
        """All incidents opened at or after `since`, newest first."""
        sql = "SELECT body FROM incidents WHERE opened_at >= ? ORDER BY opened_at DESC"
        params: tuple[Any, ...] = (since if since is not None else float("-inf"),)
        if limit is not None:
            sql += " LIMIT ?"
            params = (*params, limit)
        return self._query(sql, params)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[Incident]:
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        incidents: list[Incident] = []
        for (body,) in rows:
            incident = _parse_row(body)
            if incident is not None:
                incidents.append(incident)
        skipped = len(rows) - len(incidents)
        if skipped:
            _log.warning("skipped %d malformed incident row(s) in %s", skipped, self.path)
        return incidents


def _to_json(incident: Incident) -> dict[str, Any]:
    return {
        "v": _FORMAT_VERSION,
        "id": incident.id,
        "dedup_key": incident.dedup_key,
        "key": incident.key,
        "service": incident.service,
        "name": incident.name,
        "kind": incident.kind,
        "severity": incident.severity,
        "status": incident.status,
        "summary": incident.summary,
        "opened_at": incident.opened_at,
        "updated_at": incident.updated_at,
        "last_notified_at": incident.last_notified_at,
        "tier": incident.tier,
        "objective": incident.objective,
        "burn_rates": dict(incident.burn_rates),
        "budget_remaining": incident.budget_remaining,
        "total": incident.total,
        "errors": incident.errors,
        "traces": [
            {
                "trace_id": t.trace_id,
                "span_id": t.span_id,
                "duration_s": t.duration_s,
                "error": t.error,
                "url": t.url,
            }
            for t in incident.traces
        ],
        "labels": dict(incident.labels),
        "notified_burn": incident.notified_burn,
        "clear_since": incident.clear_since,
        "recovered_at": incident.recovered_at,
        "resolved_at": incident.resolved_at,
        "notifications": incident.notifications,
    }


_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
# Field -> accepted JSON types; a row failing any of them (planted, truncated, a buggy writer) is
# skipped instead of raising KeyError/TypeError in the engine at start-up.
_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "dedup_key": (str,),
    "key": (str,),
    "service": (str,),
    "name": (str,),
    "kind": (str,),
    "severity": (str,),
    "status": (str,),
    "summary": (str,),
    "opened_at": _NUMBER,
    "updated_at": _NUMBER,
    "last_notified_at": _NUMBER,
}
_OPTIONAL_FIELDS: dict[str, tuple[type, ...]] = {
    "tier": (str,),
    "objective": _OPTIONAL_NUMBER,
    "burn_rates": (dict,),
    "budget_remaining": _OPTIONAL_NUMBER,
    "total": (int,),
    "errors": (int,),
    "traces": (list,),
    "labels": (dict,),
    "notified_burn": _NUMBER,
    "clear_since": _OPTIONAL_NUMBER,
    "recovered_at": _OPTIONAL_NUMBER,
    "resolved_at": _OPTIONAL_NUMBER,
    "notifications": (int,),
}
_TRACE_FIELDS: dict[str, tuple[type, ...]] = {
    "trace_id": (str,),
    "span_id": (str,),
    "duration_s": _NUMBER,
    "error": (bool,),
    "url": (str, type(None)),
}


def _parse_row(body: object) -> Incident | None:
    """The incident stored in `body`, or None when it is not one this version wrote."""
    try:
        data = json.loads(body) if isinstance(body, (str, bytes)) else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    if any(not _typed(data.get(name, _ABSENT), types) for name, types in _FIELDS.items()):
        return None
    if any(name in data and not _typed(data[name], types) for name, types in _OPTIONAL_FIELDS.items()):
        return None
    for trace in data.get("traces", ()):
        if not isinstance(trace, dict) or set(trace) - set(_TRACE_FIELDS):
            return None
        if any(
            not _typed(trace.get(name, _ABSENT), types)
            for name, types in _TRACE_FIELDS.items()
            if name != "url"
        ):
            return None
        if not _typed(trace.get("url"), _TRACE_FIELDS["url"]):
            return None
    if not all(isinstance(k, str) and _typed(v, _NUMBER) for k, v in data.get("burn_rates", {}).items()):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.get("labels", {}).items()):
        return None
    return _from_json(data)


_ABSENT = object()


def _typed(value: object, types: tuple[type, ...]) -> bool:
    """`isinstance`, except that a bool is not a number here (JSON true is not a timestamp)."""
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _from_json(data: dict[str, Any]) -> Incident:
    return Incident(
        id=data["id"],
        dedup_key=data["dedup_key"],
        key=data["key"],
        service=data["service"],
        name=data["name"],
        kind=data["kind"],
        severity=data["severity"],
        status=data["status"],
        summary=data["summary"],
        opened_at=data["opened_at"],
        updated_at=data["updated_at"],
        last_notified_at=data["last_notified_at"],
        tier=data.get("tier", ""),
        objective=data.get("objective"),
        burn_rates=data.get("burn_rates", {}),
        budget_remaining=data.get("budget_remaining"),
        total=data.get("total", 0),
        errors=data.get("errors", 0),
        traces=tuple(TraceLink(**t) for t in data.get("traces", ())),
        labels=data.get("labels", {}),
        notified_burn=data.get("notified_burn", 0.0),
        clear_since=data.get("clear_since"),
        recovered_at=data.get("recovered_at"),
        resolved_at=data.get("resolved_at"),
        notifications=data.get("notifications", 1),
    )
