"""`otelpipe sink --tail`: what a real app sends, printed as span names, metric names, log bodies, incidents."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otelpipe.sink.store import Received
from otelpipe.sink.tail import SinkTail

APP = Path(__file__).parents[1] / "e2e" / "configured_app.py"


def _incident_request(body: str, count: int = 1) -> ExportLogsServiceRequest:
    records = [
        LogRecord(body=AnyValue(string_value=body), event_name="otelpipe.incident", severity_text="ERROR")
        for _ in range(count)
    ]
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="shop"))])
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    )


@pytest.mark.integration
def test_tail_shows_span_names_new_metric_names_and_log_bodies(sink, otlp_env, tmp_path, wait_until) -> None:
    lines: list[str] = []
    sink.store.subscribe(SinkTail(lines.append))
    env = otlp_env(sink, OTEL_SERVICE_NAME="tailed")
    result = subprocess.run(
        [sys.executable, str(APP), "3"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    bodies = lambda: [b.rsplit(": ", 1)[1] for b in lines if b.startswith("log      tailed WARN")]  # noqa: E731
    assert wait_until(lambda: len(bodies()) >= 3)  # the exporter may batch them into several requests
    assert bodies() == ["handled item 0", "handled item 1", "handled item 2"]
    # span names with their counts; a busy exporter may split the three spans over requests
    counts = [
        int(line.rsplit(" x", 1)[1])
        for line in lines
        if line.startswith("spans    tailed: GET /items/{id} x")
    ]
    assert sum(counts) == 3
    assert wait_until(lambda: any("traces.span.metrics.calls" in line for line in lines))
    metric_lines = [line for line in lines if line.startswith("metrics  tailed: new ")]
    assert sum(line.count("traces.span.metrics.calls") for line in metric_lines) == 1  # only when new


def test_tail_marks_incidents_and_bounds_each_request() -> None:
    lines: list[str] = []
    tail = SinkTail(lines.append, max_logs_per_request=2)
    tail(Received("logs", "grpc", _incident_request("opened: " + "x" * 500, count=3)))
    assert lines[0].startswith("INCIDENT shop: opened: xxx") and lines[0].endswith("…")
    assert len(lines[0]) < 300
    assert lines[2] == "log      … 1 more record(s) in this request"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
def test_sink_command_tail_flag_prints_incidents(tmp_path: Path) -> None:
    port = _free_port()
    exe = str(Path(sys.executable).with_name("otelpipe"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    with subprocess.Popen(
        [exe, "sink", "--tail", "--grpc-port", "-1", "--http-port", str(port), "--duration", "30"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        try:
            assert "listening" in proc.stdout.readline()
            body = _incident_request("resolved: recovered after 48s").SerializeToString()
            deadline = time.monotonic() + 20
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/logs",
                data=body,
                headers={"Content-Type": "application/x-protobuf"},
            )
            while True:
                try:
                    urllib.request.urlopen(request, timeout=5).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            line = proc.stdout.readline()
            while line.startswith("received: "):  # the periodic count may come first
                line = proc.stdout.readline()
            assert line.strip() == "INCIDENT shop: resolved: recovered after 48s"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
