"""Soak figures for the fault suite (issue 8): latency, memory, drops and exit time with the collector
healthy, refusing connections, or a black hole; and RSS under a cardinality attack.

Runs tests/faults/fault_app.py under `opentelemetry-instrument` with otelpipe, drives `/burst`
requests for a fixed time per scenario and prints one table. Bounded in time: about 2.5 minutes by
default, about 30 s with `--quick`. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from otelpipe.sink import OTLPSink, SinkStore

APP = Path(__file__).parents[1] / "tests" / "faults" / "fault_app.py"
SPANS_PER_REQUEST = 20


class _BlackHole:
    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            if len(self.held) < 256:
                self.held.append(conn)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(endpoint: str, protocol: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_SERVICE_NAME="soak",
        OTEL_PYTHON_DISTRO="otelpipe",  # beside opentelemetry-distro, install order would choose
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTELPIPE_SHUTDOWN_TIMEOUT="5s",
        PYTHONUNBUFFERED="1",
    )
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


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _scenario(
    name: str, endpoint: str, protocol: str, seconds: float, sink: OTLPSink | None
) -> dict[str, Any]:
    proc, base = _start(endpoint, protocol)
    try:
        for _ in range(20):
            _get(f"{base}/burst?n={SPANS_PER_REQUEST}")
        rss0 = _get(f"{base}/stats")["rss_kib"]
        latencies: list[float] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and len(latencies) < 200_000:
            started = time.perf_counter()
            _get(f"{base}/burst?n={SPANS_PER_REQUEST}")
            latencies.append(time.perf_counter() - started)
        stats = _get(f"{base}/stats")
    finally:
        stop_started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
        exit_s = time.monotonic() - stop_started
    produced = stats["calls"].get("SPAN_KIND_CLIENT", 0)
    received = sink.store.totals()["traces"] if sink is not None else 0
    q = statistics.quantiles(latencies, n=100)
    return {
        "scenario": name,
        "requests": len(latencies),
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "rss_growth_mib": (stats["rss_kib"] - rss0) / 1024,
        "spans_produced": produced + stats["calls"].get("SPAN_KIND_SERVER", 0),
        "spans_received": received,
        "exit_s": exit_s,
    }


def _cardinality(requests: int) -> dict[str, Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind

    from otelpipe.processors.red import REDSpanProcessor, REDStore

    store = REDStore(cardinality_limit=2000, dimensions=("url.path", "user_agent.original"))
    provider = TracerProvider()
    provider.add_span_processor(REDSpanProcessor(store))
    tracer = provider.get_tracer("soak")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    for i in range(requests):
        span = tracer.start_span("GET", kind=SpanKind.SERVER)
        span.set_attribute("url.path", f"/probe/{i}")
        span.set_attribute("user_agent.original", f"scanner/{i}")
        span.end()
    elapsed = time.perf_counter() - started
    snapshot = store.snapshot()
    return {
        "spans": requests,
        "series": len(snapshot.series),
        "overflow_spans": snapshot.overflow_spans,
        "maxrss_growth_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024,
        "us_per_span": elapsed / requests * 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 30 s instead of about 2.5 minutes")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 20.0
    rows = []
    sink = OTLPSink(SinkStore(keep=100), grpc_port=0, http_port=0).start()
    hole = _BlackHole()
    try:
        rows.append(_scenario("healthy grpc", sink.grpc_endpoint, "grpc", seconds, sink))
        refused = f"http://127.0.0.1:{_free_port()}"
        rows.append(_scenario("refused grpc", refused, "grpc", seconds, None))
        rows.append(_scenario("black hole grpc", f"http://127.0.0.1:{hole.port}", "grpc", seconds, None))
        rows.append(
            _scenario("black hole http", f"http://127.0.0.1:{hole.port}", "http/protobuf", seconds, None)
        )
    finally:
        sink.stop()
    header = (
        "scenario",
        "requests",
        "p50_ms",
        "p99_ms",
        "rss_growth_mib",
        "spans_produced",
        "spans_received",
        "exit_s",
    )
    print(" | ".join(f"{h:>15}" for h in header))
    for row in rows:
        print(
            " | ".join(f"{row[h]:>15.2f}" if isinstance(row[h], float) else f"{row[h]:>15}" for h in header)
        )
    card = _cardinality(20_000 if args.quick else 200_000)
    print(
        f"cardinality attack: {card['spans']} unique path/user-agent spans -> {card['series']} series "
        f"(limit 2000 + overflow), {card['overflow_spans']} overflow spans, maxrss growth "
        f"{card['maxrss_growth_mib']:.1f} MiB, {card['us_per_span']:.1f} us/span"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
