"""The README's hand-written SDK setup runs as printed and delivers RED metrics and correlated logs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

USE = """
tracer = trace.get_tracer("readme")
log = logging.getLogger("readme")
log.setLevel(logging.INFO)
for i in range(50):
    with tracer.start_as_current_span("GET /checkout", kind=trace.SpanKind.SERVER):
        log.info("checked out %d", i)
tracer_provider.shutdown()
meter_provider.shutdown()
"""


def _example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- example:manual-setup -->", 1)[1]
    return block.split("```python", 1)[1].split("```", 1)[0]


def test_readme_manual_setup_runs(sink, otlp_env, tmp_path):
    script = tmp_path / "manual_setup.py"
    script.write_text(_example() + USE)
    env = otlp_env(sink, OTEL_SERVICE_NAME="readme")
    result = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == 50
    assert all(len(line["trace_id"]) == 32 and line["trace_id"] != "0" * 32 for line in lines)
    calls = [
        point.as_int
        for received in sink.store.received("metrics")
        for rm in received.request.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "traces.span.metrics.calls"
        for point in metric.sum.data_points
    ]
    assert calls == [50], "every span counted although about 1 % were sampled"
    assert sink.store.totals()["traces"] <= 10
