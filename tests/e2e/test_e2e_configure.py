"""`otelpipe.configure()` from application code: the same pipeline without opentelemetry-instrument."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("configured_app.py")


def test_configure_in_code_exports_spans_red_metrics_and_each_log_once(sink, otlp_env, tmp_path):
    env = otlp_env(sink, OTEL_SERVICE_NAME="configured")
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"):
        env.pop(name)  # configure() defaults every signal to OTLP, like the distros
    result = subprocess.run(
        [sys.executable, str(APP), "7"],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "DONE" in result.stdout
    assert sink.store.per_service()["traces"] == {"configured": 7}
    logs = [
        record
        for received in sink.store.received("logs")
        for rl in received.request.resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
        if record.body.string_value.startswith("handled item")
    ]
    assert len(logs) == 7, "each stdlib record reaches OTLP exactly once"
    assert all(any(record.trace_id) for record in logs)
    calls = [
        point.as_int
        for received in sink.store.received("metrics")
        for rm in received.request.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "traces.span.metrics.calls"
        for point in metric.sum.data_points
    ]
    assert calls and max(calls) == 7
