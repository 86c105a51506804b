"""Scenario 3: an incident webhook that never answers, while the app is under load.

The incident fires during the load (a threshold rule over a failing route); its delivery hangs on a
black hole for the whole notifier deadline (60 s). While it hangs, requests must keep being served
and the evaluation loop must keep ticking, because delivery runs on the notifier's own thread: a
delivery on either path would stall it for the full minute, far beyond the test's 30 s wait. How
much a hung webhook slows requests compared with a healthy one is a figure, not a test:
bench/notifier_hang.py measures it.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
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
HANG_S = 60.0  # OTELPIPE_NOTIFY_TIMEOUT: how long one delivery attempt may hang in the black hole
WAIT_S = 30.0  # the test's deadline for progress while the delivery hangs, well inside HANG_S


class Load:
    """CLIENTS threads sending requests until stopped; 1 in 10 hits the failing route."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(CLIENTS)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(WAIT_S)
        assert not any(thread.is_alive() for thread in self._threads), "a client is stuck in a request"

    def served(self) -> int:
        with self._lock:
            return len(self.latencies)

    def _client(self, index: int) -> None:
        n = 0
        while not self._stop.is_set() and n < 50_000:
            path = "/fail" if (n + index) % 10 == 0 else "/burst?n=1"
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.base + path, timeout=WAIT_S) as response:
                    response.read()
            except urllib.error.HTTPError:
                pass  # /fail answers 500 on purpose
            except OSError as exc:  # a request that waited on the delivery times out here
                with self._lock:
                    self.errors.append(f"{path}: {exc!r}")
                return
            with self._lock:
                self.latencies.append(time.perf_counter() - started)
            n += 1


def _ticks(base: str) -> int:
    with urllib.request.urlopen(base + "/stats", timeout=WAIT_S) as response:
        return int(json.loads(response.read())["evaluation"]["ticks"])


def test_hung_incident_webhook_blocks_neither_requests_nor_the_evaluation_loop(
    tmp_path, sink, otlp_env, instrumented_app, blackhole, wait_until: Callable[..., bool]
):
    spec = tmp_path / "slo.yaml"
    spec.write_text(SPEC)
    env = otlp_env(
        sink,
        OTEL_SERVICE_NAME="loaded",
        OTELPIPE_SLO_FILE=str(spec),
        OTELPIPE_SLO_INTERVAL="200ms",
        OTELPIPE_WEBHOOK_URL=blackhole.endpoint + "/hook",
        OTELPIPE_NOTIFY_TIMEOUT=f"{HANG_S:.0f}s",
        OTELPIPE_SHUTDOWN_TIMEOUT="2s",
    )
    app = instrumented_app(env, script=FAULT_APP)
    with Load(app.base_url) as load:
        assert wait_until(lambda: blackhole.accepted >= 1, timeout=60), "the incident never fired"
        hung_at = time.monotonic()
        ticks, served = _ticks(app.base_url), load.served()
        # The delivery now hangs for HANG_S; both paths must move on well before it gives up.
        assert wait_until(lambda: _ticks(app.base_url) >= ticks + 5, timeout=WAIT_S), (
            "evaluation loop stalled"
        )
        assert wait_until(lambda: load.served() >= served + 50, timeout=WAIT_S), "requests stalled"
        assert time.monotonic() - hung_at < HANG_S, "the checks above ran past the delivery's deadline"
    assert not load.errors, load.errors[:5]
    app.stop(timeout=20)
    latencies = load.latencies
    print(
        f"\nhung webhook: {len(latencies)} requests; p50 {1000 * statistics.median(latencies):.1f} ms, "
        f"max {1000 * max(latencies):.1f} ms (compare with a healthy webhook: bench/notifier_hang.py)"
    )
