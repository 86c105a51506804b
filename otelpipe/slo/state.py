"""SQLite (WAL) persistence of SLO window counts, so a restart or deploy keeps a 30-day budget.

One file, `slo-state.sqlite`, in the state directory. A file that is not SQLite or not ours is
renamed aside (`slo-state.sqlite.corrupt-<UTC timestamp>`) with a warning and a fresh one is
created: losing history is better than refusing to start the host application.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otelpipe.state_files import check_same_file, private_dir, private_file, refuse_symlink

_logger = logging.getLogger("otelpipe.slo")

STATE_FILE_NAME = "slo-state.sqlite"
_SCHEMA_NAME = "otelpipe-slo-state"
_SCHEMA_VERSION = "1"


@dataclass(frozen=True, slots=True)
class SavedSLO:
    """One SLO's persisted row: serialised rings and its last status (JSON-able mapping)."""

    key: str
    rings: bytes
    status: Mapping[str, Any]
    saved_at: float


def read_saved(state_dir: str | Path) -> dict[str, SavedSLO]:
    """Saved SLO rows of `<state_dir>/slo-state.sqlite`, opened read-only (for the CLI).

    Raises FileNotFoundError when there is no state file and sqlite3.DatabaseError when it is
    not readable; unlike `SLOStateStore` it never moves anything.
    """
    path = Path(state_dir) / STATE_FILE_NAME
    if not os.path.lexists(path):
        raise FileNotFoundError(str(path))
    refuse_symlink(path)
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        problem = SLOStateStore._check(conn)
        if problem is not None:
            raise sqlite3.DatabaseError(problem)
        rows = conn.execute("SELECT key, rings, status, saved_at FROM slo").fetchall()
    finally:
        conn.close()
    return _rows(rows)


def _rows(rows: Iterable[tuple[Any, ...]]) -> dict[str, SavedSLO]:
    """Valid rows by key; a malformed one (planted, or from a buggy writer) is skipped, one warning in all."""
    out: dict[str, SavedSLO] = {}
    skipped = 0
    for key, rings, status, saved_at in rows:
        row = _row(key, rings, status, saved_at)
        if row is None:
            skipped += 1
        else:
            out[key] = row
    if skipped:
        _logger.warning("skipped %d malformed SLO state row(s); those SLOs start with empty windows", skipped)
    return out


def _row(key: object, rings: object, status: object, saved_at: object) -> SavedSLO | None:
    if not isinstance(key, str) or not isinstance(rings, bytes):
        return None
    if isinstance(saved_at, bool) or not isinstance(saved_at, (int, float)) or not math.isfinite(saved_at):
        return None
    try:
        parsed = json.loads(status) if isinstance(status, (str, bytes)) else None
    except (ValueError, RecursionError):  # a planted row can nest deeper than the recursion limit
        parsed = None
    if not isinstance(parsed, dict):
        return None
    return SavedSLO(key=key, rings=rings, status=parsed, saved_at=float(saved_at))


class SLOStateStore:
    """Reads and writes SLO rows in `<state_dir>/slo-state.sqlite`; safe to share between threads."""

    def __init__(self, state_dir: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(state_dir)
        self.path = self.directory / STATE_FILE_NAME
        self._clock = clock
        self._lock = threading.Lock()
        private_dir(self.directory)
        self._conn = self._open_or_replace()

    def load(self) -> dict[str, SavedSLO]:
        """All saved SLO rows, by SLO key."""
        with self._lock:
            rows = self._conn.execute("SELECT key, rings, status, saved_at FROM slo").fetchall()
        return _rows(rows)

    def save(self, rows: Iterable[SavedSLO]) -> None:
        """Replace the given SLO rows in one transaction."""
        params = [(r.key, r.rings, json.dumps(r.status, sort_keys=True), r.saved_at) for r in rows]
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT INTO slo(key, rings, status, saved_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET rings=excluded.rings, status=excluded.status, "
                "saved_at=excluded.saved_at",
                params,
            )

    def close(self) -> None:
        """Close the database (further calls fail)."""
        with self._lock:
            self._conn.close()

    def _open_or_replace(self) -> sqlite3.Connection:
        refuse_symlink(self.path)
        if self.path.exists() and self.path.stat().st_size > 0:
            try:
                conn = self._connect()
                problem = self._check(conn)
            except sqlite3.DatabaseError as exc:
                problem = f"not a readable SQLite database ({exc})"
                conn = None
            if problem is None and conn is not None:
                return conn
            if conn is not None:
                conn.close()
            self._move_aside(problem or "unknown problem")
        conn = self._connect()
        with conn:
            conn.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [("schema", _SCHEMA_NAME), ("version", _SCHEMA_VERSION)],
            )
            conn.execute(
                "CREATE TABLE slo(key TEXT PRIMARY KEY, rings BLOB NOT NULL, status TEXT NOT NULL, "
                "saved_at REAL NOT NULL)"
            )
        return conn

    def _connect(self) -> sqlite3.Connection:
        identity = private_file(self.path)  # 0600, never through a symlink
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=5.0)
        try:
            check_same_file(self.path, identity)
        except OSError:
            conn.close()
            raise
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @staticmethod
    def _check(conn: sqlite3.Connection) -> str | None:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "slo"} <= tables:
            return f"foreign SQLite file (tables: {sorted(tables) or 'none'})"
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema") != _SCHEMA_NAME or meta.get("version") != _SCHEMA_VERSION:
            return f"foreign or newer schema {meta.get('schema')!r} version {meta.get('version')!r}"
        conn.execute("SELECT key, rings, status, saved_at FROM slo LIMIT 1").fetchall()
        return None

    def _move_aside(self, problem: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        suffix = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{suffix}")
            suffix += 1
        self.path.rename(target)
        for extra in ("-wal", "-shm"):
            sidecar = self.path.with_name(self.path.name + extra)
            if sidecar.exists():
                sidecar.rename(target.with_name(target.name + extra))
        _logger.warning(
            "SLO state file %s is unusable (%s); moved it to %s and starting with empty SLO windows",
            self.path,
            problem,
            target.name,
        )
