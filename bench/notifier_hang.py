"""Request latency and evaluation ticks with a healthy incident webhook against one that never answers.

tests/faults/test_faults_notifier_load.py proves that a hung delivery blocks neither requests nor the
evaluation loop (both keep moving while it hangs); how much it slows them is this figure, not a
timed test. Runs tests/faults/fault_app.py under `opentelemetry-instrument` with otelpipe and a
threshold rule that fires during the load, alternating healthy and hung rounds in one run so machine
load affects both alike, and prints the medians of each round's p50, p99, requests/s and ticks/s.
Only 127.0.0.1 is used; about 20 s per round.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from otelpipe.sink import OTLPSink, SinkStore

APP = Path(__file__).parents[1] / "tests" / "faults" / "fault_app.py"
CLIENTS = 4
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


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


class _BlackHole:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            if len(self.held) < 256:
                self.held.append(conn)


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    proc = subprocess.Popen(
        [instrument, sys.executable, str(APP)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("READY "):
            return proc, f"http://127.0.0.1:{line.split()[1]}"
        if not line:
            break
    proc.kill()
    raise RuntimeError("fault app did not start")


def _ticks(base: str) -> int:
    with urllib.request.urlopen(base + "/stats", timeout=30) as response:
        return int(json.loads(response.read())["evaluation"]["ticks"])


def _round(webhook_url: str, sink: OTLPSink, spec: Path, seconds: float) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_SERVICE_NAME="loaded",
        OTEL_PYTHON_DISTRO="otelpipe",  # beside opentelemetry-distro, install order would choose
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=sink.grpc_endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTELPIPE_SLO_FILE=str(spec),
        OTELPIPE_SLO_INTERVAL="200ms",
        OTELPIPE_WEBHOOK_URL=webhook_url,
        OTELPIPE_NOTIFY_TIMEOUT="60s",
        OTELPIPE_SHUTDOWN_TIMEOUT="2s",
        PYTHONUNBUFFERED="1",
    )
    proc, base = _start(env)
    latencies: list[float] = []
    lock = threading.Lock()
    try:
        ticks0 = _ticks(base)
        deadline = time.monotonic() + seconds

        def client(index: int) -> None:
            n = 0
            while time.monotonic() < deadline:
                path = "/fail" if (n + index) % 10 == 0 else "/burst?n=1"
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(base + path, timeout=30) as response:
                        response.read()
                except urllib.error.HTTPError:
                    pass
                with lock:
                    latencies.append(time.perf_counter() - started)
                n += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 60)
        ticks = _ticks(base) - ticks0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    q = statistics.quantiles(latencies, n=100)
    return {
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "rps": len(latencies) / seconds,
        "ticks_s": ticks / seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each kind, alternated (default 2)")
    parser.add_argument("--seconds", type=float, default=15.0, help="load per round (default 15)")
    args = parser.parse_args()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    hole = _BlackHole()
    sink = OTLPSink(SinkStore(keep=100), grpc_port=0, http_port=0).start()
    urls = {
        "healthy": f"http://127.0.0.1:{hook.server_address[1]}/",
        "hung": f"http://127.0.0.1:{hole.port}/hook",
    }
    rows: dict[str, list[dict[str, float]]] = {"healthy": [], "hung": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            spec = Path(tmp) / "slo.yaml"
            spec.write_text(SPEC, encoding="utf-8")
            for index in range(args.rounds):
                order = ("healthy", "hung") if index % 2 == 0 else ("hung", "healthy")
                for kind in order:
                    rows[kind].append(_round(urls[kind], sink, spec, args.seconds))
    finally:
        sink.stop()
        hook.shutdown()
        hook.server_close()
    if hole.accepted == 0:
        print("warning: no delivery reached the black hole (the incident did not fire)")
    median: dict[str, dict[str, Any]] = {
        kind: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for kind, runs in rows.items()
    }
    print(f"{'webhook':>8} | {'p50 ms':>8} | {'p99 ms':>8} | {'req/s':>8} | {'ticks/s':>8}")
    for kind, row in median.items():
        print(
            f"{kind:>8} | {row['p50_ms']:>8.2f} | {row['p99_ms']:>8.2f} | {row['rps']:>8.1f} | {row['ticks_s']:>8.2f}"
        )
    ratio = {key: median["hung"][key] / median["healthy"][key] for key in median["healthy"]}
    print(
        f"hung/healthy: p50 x{ratio['p50_ms']:.2f}, p99 x{ratio['p99_ms']:.2f}, req/s x{ratio['rps']:.2f}, "
        f"ticks/s x{ratio['ticks_s']:.2f} ({args.rounds} alternated rounds of {args.seconds:.0f} s, medians; "
        f"{hole.accepted} deliveries held by the black hole)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
