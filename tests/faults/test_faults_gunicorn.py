"""Scenario 6: gunicorn workers forked from an instrumented master, one killed and respawned mid-run.

Every worker exports its own cumulative RED series (told apart by the `process.pid` otelpipe adds
to each forked child's metric resource), the latest values add up to exactly the requests sent,
and the respawned worker reports too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HERE = Path(__file__).parent
WORKERS = 3


def _work(base: str) -> int:
    with urllib.request.urlopen(base + "/work?sleep=0.02", timeout=10) as response:
        return int(json.loads(response.read())["pid"])


def _spread(base: str, requests: int) -> set[int]:
    """Send `requests` concurrently so that every sync worker gets some; return the pids that served."""
    with ThreadPoolExecutor(max_workers=WORKERS * 2) as pool:
        return set(pool.map(_work, [base] * requests))


def test_every_gunicorn_worker_reports_and_totals_match(sink, otlp_env, wait_until, latest_red_calls):
    pytest.importorskip("gunicorn")
    env = otlp_env(sink, "grpc", OTEL_SERVICE_NAME="forked")
    instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    proc = subprocess.Popen(
        [instrument, gunicorn, "-w", str(WORKERS), "-b", "127.0.0.1:0", "--chdir", str(HERE),
         "--graceful-timeout", "5", "gunicorn_app:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        port, lines, booted = None, [], 0
        deadline = time.monotonic() + 40
        while (port is None or booted < WORKERS) and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else port
            booted += "Booting worker" in line
        assert port is not None and booted >= WORKERS, "".join(lines)
        base = f"http://127.0.0.1:{port}"

        first = 120
        pids = _spread(base, first)
        assert len(pids) >= 2, f"requests did not spread over workers: {pids}"
        by_pid = lambda: latest_red_calls(sink, by="process.pid")  # noqa: E731
        assert wait_until(lambda: sum(by_pid().values()) == first, timeout=20), by_pid()
        assert set(by_pid()) == {str(pid) for pid in pids}, "each worker reports under its own pid"

        victim = min(pids)
        os.kill(victim, signal.SIGKILL)  # a crash: gunicorn respawns it
        second, seen = 0, set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen |= _spread(base, 30)
            second += 30
            if seen - pids:
                break
        respawned = seen - pids
        assert respawned, f"no respawned worker served a request: {seen} vs {pids}"
        assert victim not in seen
        assert wait_until(lambda: sum(by_pid().values()) == first + second, timeout=20), by_pid()
        assert all(by_pid().get(str(pid), 0) > 0 for pid in respawned), by_pid()
        assert by_pid().get("", 0) == 0, "no worker exported without its own identity"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.returncode is not None
