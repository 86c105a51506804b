"""Fixtures for the fleet tests: OTLP RED requests shaped like otelpipe's or the spanmetrics connector's."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
SECOND_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
MS_BOUNDS = (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000)


def _kv(attributes: Mapping[str, Any]) -> list[KeyValue]:
    out = []
    for key, value in attributes.items():
        if isinstance(value, bool):
            out.append(KeyValue(key=key, value=AnyValue(bool_value=value)))
        elif isinstance(value, int):
            out.append(KeyValue(key=key, value=AnyValue(int_value=value)))
        else:
            out.append(KeyValue(key=key, value=AnyValue(string_value=str(value))))
    return out


def red_request(
    service: str = "checkout",
    *,
    instance: str = "pid-1",
    start_s: float = 1000.0,
    time_s: float = 1001.0,
    ok: int = 0,
    errors: int = 0,
    fast: float = 1.0,
    shape: str = "otelpipe",
    temporality: int = CUMULATIVE,
) -> ExportMetricsServiceRequest:
    """One export with a SERVER series of `ok` calls and one of `errors` error calls.

    `fast` is the fraction of each series' calls put in the 10 ms bucket, the rest in the 1 s one.
    `shape` "otelpipe" puts service.name on the resource and durations in s; "spanmetrics" puts it
    on each data point too (as the connector does), with durations in ms and scope spanmetricsconnector;
    "legacy" is spanmetrics with the old `calls` / `duration` names.
    """
    spanmetrics = shape in ("spanmetrics", "legacy")
    resource: dict[str, Any] = {"service.instance.id": instance, "process.pid": 7}
    if not spanmetrics:
        resource["service.name"] = service
    bounds: Sequence[float] = MS_BOUNDS if spanmetrics else SECOND_BOUNDS
    fast_at, slow_at = (bounds.index(10), bounds.index(1000)) if spanmetrics else (1, 9)
    calls_metric = metrics_pb2.Metric(
        name="calls" if shape == "legacy" else "traces.span.metrics.calls",
        sum=metrics_pb2.Sum(aggregation_temporality=temporality, is_monotonic=True),
    )
    duration_metric = metrics_pb2.Metric(
        name="duration" if shape == "legacy" else "traces.span.metrics.duration",
        unit="ms" if spanmetrics else "s",
        histogram=metrics_pb2.Histogram(aggregation_temporality=temporality),
    )
    for status, count in (("STATUS_CODE_UNSET", ok), ("STATUS_CODE_ERROR", errors)):
        if not count:
            continue
        attributes: dict[str, Any] = {
            "span.name": "GET /pay",
            "span.kind": "SPAN_KIND_SERVER",
            "status.code": status,
        }
        if spanmetrics:
            attributes["service.name"] = service
        times = {"start_time_unix_nano": int(start_s * 1e9), "time_unix_nano": int(time_s * 1e9)}
        calls_metric.sum.data_points.append(
            metrics_pb2.NumberDataPoint(attributes=_kv(attributes), as_int=count, **times)
        )
        buckets = [0] * (len(bounds) + 1)
        quick = round(count * fast)
        buckets[fast_at] = quick
        buckets[slow_at] = count - quick
        scale = 1000.0 if spanmetrics else 1.0
        duration_metric.histogram.data_points.append(
            metrics_pb2.HistogramDataPoint(
                attributes=_kv(attributes),
                count=count,
                sum=(quick * 0.01 + (count - quick) * 1.0) * scale,
                bucket_counts=buckets,
                explicit_bounds=list(bounds),
                **times,
            )
        )
    scope = "spanmetricsconnector" if spanmetrics else "otelpipe.red"
    return ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource={"attributes": _kv(resource)},
                scope_metrics=[
                    metrics_pb2.ScopeMetrics(scope={"name": scope}, metrics=[calls_metric, duration_metric])
                ],
            )
        ]
    )


@pytest.fixture
def make_request() -> Callable[..., ExportMetricsServiceRequest]:
    """`make_request(service, instance=..., ok=..., errors=...)`: see `red_request`."""
    return red_request


class FakeClock:
    """Unix nanoseconds that only move when a test says so."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.ns = int(start_s * 1e9)

    def __call__(self) -> int:
        return self.ns

    def seconds(self) -> float:
        return self.ns / 1e9

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# ----------------------------------------------------------------- processes

HERE = Path(__file__).parent
FLEET_APP = HERE / "fleet_app.py"


class Webhook:
    """Records the JSON bodies of incident notifications."""

    def __init__(self) -> None:
        bodies: list[dict[str, Any]] = []
        self.bodies = bodies

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [b for b in list(self.bodies) if kind is None or b.get("event") == kind]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.close()


def fetch(url: str) -> int:
    """GET `url`; the pid that served it (from the JSON body, also on 500)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(json.loads(response.read())["pid"])
    except urllib.error.HTTPError as error:
        return int(json.loads(error.read())["pid"])


def spread(url: str, count: int, threads: int = 8) -> list[int]:
    """Send `count` concurrent GETs so that every sync worker gets some; the pids that served."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fetch, [url] * count))


@pytest.fixture
def send() -> Callable[..., list[int]]:
    return spread


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Gunicorn:
    """`opentelemetry-instrument gunicorn -w N` serving fleet_app, started and stopped by pid."""

    def __init__(self, env: dict[str, str], workers: int) -> None:
        pytest.importorskip("gunicorn")
        instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.proc = subprocess.Popen(
            [instrument, gunicorn, "-w", str(workers), "-b", "127.0.0.1:0", "--chdir", str(HERE),
             "--graceful-timeout", "5", "fleet_app:app"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        self.lines: list[str] = []
        port, booted = None, 0
        deadline = time.monotonic() + 40
        while (port is None or booted < workers) and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else port
            booted += "Booting worker" in line
        assert port is not None and booted >= workers, "".join(self.lines)
        self.base = f"http://127.0.0.1:{port}"
        # keep draining stderr so gunicorn never blocks on a full pipe
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture
def gunicorn() -> Iterator[Callable[..., Gunicorn]]:
    started: list[Gunicorn] = []

    def start(env: dict[str, str], workers: int = 4) -> Gunicorn:
        server = Gunicorn(env, workers)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def app_env(**extra: str) -> dict[str, str]:
    """Environment for an instrumented app: no OTLP export unless `extra` asks for it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_PYTHON_DISTRO="otelpipe",  # beside opentelemetry-distro, install order would choose
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTELPIPE_SLO_INTERVAL="200ms",
        OTELPIPE_INCIDENT_HOLD_DOWN="1s",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.fixture
def fleet_env() -> Callable[..., dict[str, str]]:
    return app_env


FLEET_SPEC = """
version: otelpipe/v1
service: fleet
slos:
  - name: availability
    objective: 99
    period: 1h
    sli: {kind: availability}
    alerting:
      min_events: 20
      tiers:
        - {severity: page, short: 2s, long: 6s, factor: 10}
"""


@pytest.fixture
def slo_file(tmp_path: Path) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(FLEET_SPEC)
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    return _free_port


class GatewayProcess:
    """`otelpipe gateway` on free ports, as a subprocess (it builds the global SDK providers)."""

    def __init__(self, env: dict[str, str]) -> None:
        otelpipe = str(Path(sys.executable).with_name("otelpipe"))
        self.proc = subprocess.Popen(
            [otelpipe, "gateway", "--grpc-port", "0", "--http-port", "0", "--interval", "0.5"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.lines: list[str] = []
        deadline = time.monotonic() + 40
        match = None
        while match is None and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            match = re.search(r"OTLP/gRPC (http://\S+), OTLP/HTTP (http://\S+)", line)
        assert match is not None, "".join(self.lines)
        self.grpc_endpoint, self.http_endpoint = match.group(1), match.group(2)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def post(self, request: ExportMetricsServiceRequest) -> None:
        """One OTLP/HTTP metrics export, as an SDK or a Collector would send it."""
        http = urllib.request.Request(
            self.http_endpoint + "/v1/metrics",
            data=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        with urllib.request.urlopen(http, timeout=10) as response:
            assert response.status == 200

    def stop(self) -> int:
        _stop(self.proc)
        return int(self.proc.returncode)


@pytest.fixture
def gateway() -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def start(env: dict[str, str]) -> GatewayProcess:
        process = GatewayProcess(env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


class AppProcess:
    """fleet_app.py as one single-process "pod" under opentelemetry-instrument."""

    def __init__(self, env: dict[str, str]) -> None:
        instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
        self.proc = subprocess.Popen(
            [instrument, sys.executable, str(FLEET_APP)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.lines: list[str] = []
        deadline = time.monotonic() + 40
        port = None
        while port is None and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if line.startswith("READY "):
                port = int(line.split()[1])
        assert port is not None, "".join(self.lines)
        self.base = f"http://127.0.0.1:{port}"
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture
def app_process() -> Iterator[Callable[..., AppProcess]]:
    started: list[AppProcess] = []

    def start(env: dict[str, str]) -> AppProcess:
        process = AppProcess(env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
