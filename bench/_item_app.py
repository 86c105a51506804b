"""The app every per-request benchmark measures: Flask + SQLAlchemy, one SELECT and one log line.

bench/request_cost.py (timings), bench/request_calls.py (calls and instructions per request) and
bench/log_path_calls.py (calls per log record) must measure the same request, or their figures
cannot be read side by side; so the app is written once, here. Imported only inside the app
subprocess, after `opentelemetry-instrument` has patched Flask, SQLAlchemy and logging.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from typing import Any

ITEMS = 100


def fill_items(db_path: str) -> None:
    """Create the `items` table with ITEMS rows (idempotent)."""
    with sqlite3.connect(db_path) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)")
        connection.executemany(
            "INSERT OR IGNORE INTO items VALUES (?, ?)", [(i, f"item-{i}") for i in range(ITEMS)]
        )


def shape_from_environment() -> dict[str, int]:
    """`item_app`'s `queries` and `log_lines`, as the bench drivers pass them (see `--shape`)."""
    return {
        "queries": int(os.environ.get("BENCH_QUERIES", "1")),
        "log_lines": int(os.environ.get("BENCH_LOG_LINES", "1")),
    }


def item_app(
    db_path: str,
    log_line: Callable[[logging.Logger, int], None] | None = None,
    queries: int = 1,
    log_lines: int = 1,
) -> Any:
    """A Flask app serving GET /item/<id>; `log_line(log, id)` replaces the plain `log.info` call.

    `queries` SELECTs and `log_lines` log lines per request (bench/request_cost.py --shape): how
    otelpipe's cost grows with the spans and log records of a request.
    """
    from flask import Flask
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{db_path}")
    app = Flask(__name__)
    log = logging.getLogger("bench.app")
    logging.basicConfig(level=logging.INFO, stream=open(os.devnull, "w"))  # noqa: SIM115

    @app.get("/item/<int:item_id>")
    def item(item_id: int) -> dict[str, object]:
        with engine.connect() as connection:
            for _ in range(queries):
                name = connection.execute(text("SELECT name FROM items WHERE id = :id"), {"id": item_id}).scalar()
        for _ in range(log_lines):
            if log_line is None:
                log.info("item %s served", item_id)
            else:
                log_line(log, item_id)
        return {"id": item_id, "name": name}

    return app
