"""Scenario 3: an incident webhook that never answers, while the app is under load.

The incident fires during the load (a threshold rule over a failing route); its delivery hangs on a
black hole. Requests must not slow down against the same run with a healthy webhook, and the
evaluation loop must keep ticking quickly, because delivery runs on the notifier's own thread.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAULT_APP = Path(__file__).with_name("fault_app.py")
SPEC = """version: otelpipe/v1
service: loaded
slos:
  - name: availability
    objective: 99.9
    sli: {kind: availability}
rules:
  - name: failures
    service: loaded
    window: 1m
    error_rate: {above: 1%, min_requests: 5}
"""
CLIENTS = 4
DURATION_S = 4.0


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def _get(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            status = response.status
            response.read()
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, time.perf_counter() - started


def _load(base: str) -> tuple[list[float], int]:
    """CLIENTS threads for DURATION_S: 1 in 10 requests hits the failing route."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + DURATION_S

    def client(index: int) -> None:
        n = 0
        while time.monotonic() < deadline and n < 5000:
            path = "/fail" if (n + index) % 10 == 0 else "/burst?n=1"
            _, elapsed = _get(base + path)
            with lock:
                latencies.append(elapsed)
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DURATION_S + 30)
    return latencies, len(latencies)


def _stats(base: str) -> dict:
    with urllib.request.urlopen(base + "/stats", timeout=10) as response:
        return json.loads(response.read())


def _run(tmp_path, sink, otlp_env, instrumented_app, webhook_url: str) -> tuple[list[float], dict, dict]:
    spec = tmp_path / "slo.yaml"
    spec.write_text(SPEC)
    env = otlp_env(
        sink,
        OTEL_SERVICE_NAME="loaded",
        OTELPIPE_SLO_FILE=str(spec),
        OTELPIPE_SLO_INTERVAL="200ms",
        OTELPIPE_WEBHOOK_URL=webhook_url,
        OTELPIPE_NOTIFY_TIMEOUT="3s",
        OTELPIPE_SHUTDOWN_TIMEOUT="2s",
    )
    app = instrumented_app(env, script=FAULT_APP)
    before = _stats(app.base_url)
    latencies, _ = _load(app.base_url)
    after = _stats(app.base_url)
    app.stop(timeout=20)
    return latencies, before, after


def test_hung_incident_webhook_does_not_slow_requests_or_the_evaluation_loop(
    tmp_path, sink, otlp_env, instrumented_app, blackhole
):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        healthy, _, _ = _run(
            tmp_path, sink, otlp_env, instrumented_app, f"http://127.0.0.1:{server.server_address[1]}/"
        )
    finally:
        server.shutdown()
        server.server_close()
    hung, before, after = _run(tmp_path, sink, otlp_env, instrumented_app, blackhole.endpoint + "/hook")

    assert blackhole.accepted >= 1, "the incident fired and its delivery reached the black hole"
    ticks = after["evaluation"]["ticks"] - before["evaluation"]["ticks"]
    assert ticks >= DURATION_S / 0.2 / 2, f"evaluation loop stalled: {ticks} ticks in {DURATION_S}s"
    assert after["evaluation"]["last_tick_s"] < 0.5
    p50_healthy, p50_hung = statistics.median(healthy), statistics.median(hung)
    p99_healthy = statistics.quantiles(healthy, n=100)[98]
    p99_hung = statistics.quantiles(hung, n=100)[98]
    assert p50_hung <= p50_healthy * 2 + 0.02, (p50_healthy, p50_hung)
    assert p99_hung <= p99_healthy * 3 + 0.1, (p99_healthy, p99_hung)
    assert len(hung) >= 0.5 * len(healthy), (len(healthy), len(hung))
    print(
        f"\nrequests/s healthy {len(healthy) / DURATION_S:.0f}, hung webhook {len(hung) / DURATION_S:.0f}; "
        f"p50 {1000 * p50_healthy:.1f} vs {1000 * p50_hung:.1f} ms; p99 {1000 * p99_healthy:.1f} vs {1000 * p99_hung:.1f} ms"
    )
