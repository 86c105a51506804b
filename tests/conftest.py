"""Fixtures shared by every test area: a real OTLP sink, Debian-binary gating, polling."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otelpipe.sink import OTLPSink, SinkStore

E2E_APP = Path(__file__).parent / "e2e" / "flask_app.py"


def binary_or_skip(name: str) -> str:
    """Path of a Debian binary the test needs; skip on a laptop without it, fail in CI (CI=true)."""
    path = shutil.which(name)
    if path:
        return path
    reason = f"{name} not installed (Debian package; .ci/run installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: required in CI")
    pytest.skip(reason)


@contextlib.contextmanager
def running_alertmanager(config_text: str, workdir: Path) -> Iterator[str]:
    """Debian's Alertmanager with `config_text` on a free loopback port; yields its URL, stops it by pid."""
    binary = binary_or_skip("prometheus-alertmanager")
    config = workdir / "alertmanager.yml"
    config.write_text(config_text, encoding="utf-8")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={workdir / 'alertmanager-data'}",
            f"--web.listen-address={url.removeprefix('http://')}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"alertmanager did not become ready within 20 s: {stderr[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def alertmanager_server() -> Callable[[str, Path], contextlib.AbstractContextManager[str]]:
    """`with alertmanager_server(config_yaml, tmp_path) as url:` a real Alertmanager for one test."""
    return running_alertmanager


@pytest.fixture
def require_binary() -> Callable[[str], str]:
    """`require_binary("promtool")` returns the path or skips/fails as `binary_or_skip` says."""
    return binary_or_skip


@pytest.fixture
def sink() -> Iterator[OTLPSink]:
    """A real OTLP receiver (gRPC and HTTP/protobuf) on free 127.0.0.1 ports."""
    server = OTLPSink(SinkStore(), grpc_port=0, http_port=0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """Poll `predicate` every 50 ms until true or `timeout` seconds pass; returns its last value."""

    def wait(predicate: Callable[[], object], timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return bool(predicate())
            time.sleep(0.05)

    return wait


class InstrumentedApp:
    """A subprocess running tests/e2e/flask_app.py (or another script) under `opentelemetry-instrument`."""

    def __init__(self, proc: subprocess.Popen[str], port: int, startup: str = "") -> None:
        self.proc = proc
        self.startup = startup
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def stop(self, timeout: float = 30.0) -> str:
        """SIGTERM, wait for exit (atexit flushes telemetry), return everything it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return self.startup + (out or "")


def _otlp_env(sink: OTLPSink, protocol: str = "grpc", **extra: str) -> dict[str, str]:
    """Environment for an app exporting all three signals to `sink`, with fast export intervals."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_SERVICE_NAME="e2e-app",
        # opentelemetry-distro is installed too: which distro loads first otherwise follows the order of
        # site-packages on disk (README: choose otelpipe's); its distro then picks its configurator.
        OTEL_PYTHON_DISTRO="otelpipe",
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT=sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_METRIC_EXPORT_INTERVAL="500",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.fixture
def otlp_env() -> Callable[..., dict[str, str]]:
    """`otlp_env(sink, protocol="grpc", **extra)`: env for an app exporting everything to `sink`."""
    return _otlp_env


@pytest.fixture
def instrumented_app(tmp_path: Path) -> Iterator[Callable[..., InstrumentedApp]]:
    """Factory: start a script under `opentelemetry-instrument` with `env`; stopped at teardown."""
    started: list[InstrumentedApp] = []

    def start(env: dict[str, str], script: Path = E2E_APP, args: tuple[str, ...] = ()) -> InstrumentedApp:
        instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
        proc = subprocess.Popen(
            [instrument, sys.executable, str(script), *args],
            env={"OTEL_PYTHON_DISTRO": "otelpipe", **env},  # else install order picks beside opentelemetry-distro
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("READY "):
                app = InstrumentedApp(proc, int(line.split()[1]), "".join(lines))
                started.append(app)
                return app
        proc.kill()
        raise AssertionError("app did not start:\n" + "".join(lines) + proc.stdout.read())

    yield start
    for app in started:
        app.stop(timeout=10)


def _latest_red_calls(sink: Any, kind: str = "SPAN_KIND_SERVER", by: str = "") -> dict[str, int]:
    """Latest cumulative traces.span.metrics.calls of `kind`, summed per value of resource attribute `by`."""
    latest: dict[tuple[str, tuple[Any, ...]], int] = {}
    for received in sink.store.received("metrics"):
        assert isinstance(received.request, ExportMetricsServiceRequest)
        for rm in received.request.resource_metrics:
            owner = ""
            for kv in rm.resource.attributes:
                if kv.key == by:
                    owner = kv.value.string_value or str(kv.value.int_value)
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != "traces.span.metrics.calls":
                        continue
                    for point in metric.sum.data_points:
                        attrs = tuple(sorted((kv.key, kv.value.string_value) for kv in point.attributes))
                        if ("span.kind", kind) in attrs:
                            latest[(owner, attrs)] = point.as_int
    per_owner: dict[str, int] = {}
    for (owner, _attrs), value in latest.items():
        per_owner[owner] = per_owner.get(owner, 0) + value
    return per_owner


@pytest.fixture
def latest_red_calls() -> Callable[..., dict[str, int]]:
    """`latest_red_calls(sink, kind="SPAN_KIND_SERVER", by="")`: per-resource-owner RED call totals."""
    return _latest_red_calls
