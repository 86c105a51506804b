"""The WSGI app bench/served_cost.py serves with gunicorn: bench/_item_app.py's, plus a failing route."""

from __future__ import annotations

import logging
import os

from _item_app import item_app
from flask import abort

app = item_app(os.environ["BENCH_DB"])
_log = logging.getLogger("bench.app")


@app.get("/fail")
def fail() -> None:
    _log.error("failing on purpose")
    abort(500)
