"""Fork safety with a real prefork server: gunicorn --preload, 2 workers, a Flask app."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

APP = textwrap.dedent(
    """
    import os, time
    from flask import Flask, jsonify, request
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind
    from otelpipe.processors.red import REDSpanProcessor, REDStore

    store = REDStore()
    provider = TracerProvider(resource=Resource.create({"service.name": "forked"}))
    provider.add_span_processor(REDSpanProcessor(store))
    for _ in range(5):  # counted in the master before the fork: no worker may report these
        provider.get_tracer("preload").start_span("preload", kind=SpanKind.SERVER).end()

    app = Flask(__name__)

    @app.route("/work")
    def work():
        return "ok"

    @app.route("/red")
    def red():
        time.sleep(float(request.args.get("sleep", "0")))
        counts = {}
        for series in store.snapshot().series:
            name = series.attributes.get("http.route") or series.attributes["span.name"]
            counts[name] = counts.get(name, 0) + series.calls
        return jsonify(pid=os.getpid(), counts=counts)

    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    """
)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read()) if "/red" in url else response.read()


@pytest.mark.integration
def test_each_gunicorn_worker_reports_only_its_own_spans(tmp_path: Path) -> None:
    pytest.importorskip("gunicorn")
    (tmp_path / "red_app.py").write_text(APP)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "-b", "127.0.0.1:0", "red_app:app"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = None
        deadline = time.monotonic() + 30
        lines = []
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
        assert port is not None, "".join(lines)
        base = f"http://127.0.0.1:{port}"
        booted = 0
        while booted < 2 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            booted += "Booting worker" in line
        for _ in range(40):
            _get(base + "/work")
        seen: dict[int, dict[str, int]] = {}
        with ThreadPoolExecutor(max_workers=2) as pool:
            for _ in range(10):  # two slow requests at once must land on two different sync workers
                for reply in pool.map(_get, [base + "/red?sleep=0.3"] * 2):
                    seen[reply["pid"]] = reply["counts"]
                if len(seen) == 2:
                    break
        assert len(seen) == 2, seen
        assert sum(counts.get("/work", 0) for counts in seen.values()) == 40
        assert all("preload" not in counts for counts in seen.values()), seen
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
