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

from otelpipe.incidents.codec import IncidentDataError, incident_from_record, incident_record
from otelpipe.incidents.model import Incident
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
            json.dumps(incident_record(incident), sort_keys=True),
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
        reasons: list[str] = []
        for (body,) in rows:
            parsed = _parse_row(body)
            if isinstance(parsed, Incident):
                incidents.append(parsed)
            else:
                reasons.append(parsed)
        if reasons:
            _log.warning(
                "skipped %d malformed incident row(s) in %s (first: %s)", len(reasons), self.path, reasons[0]
            )
        return incidents


def _parse_row(body: object) -> Incident | str:
    """The incident stored in `body`, or why it is not one this release can read."""
    try:
        data = json.loads(body) if isinstance(body, (str, bytes)) else None
    except (ValueError, RecursionError):
        return "not JSON"
    try:
        return incident_from_record(data)
    except IncidentDataError as exc:
        return str(exc)
