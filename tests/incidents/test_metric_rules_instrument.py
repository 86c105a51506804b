"""Under `opentelemetry-instrument`: system metrics by their instrumentation's entry point, rules over them."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SPEC = """
version: otelpipe/v1
service: e2e-app
slos:
  - {name: api, objective: 99, sli: {kind: availability}}
rules:
  # the seed's CPU rule with a forced threshold, on the instrumentation's real output
  - name: cpu-busy
    metric: system.cpu.utilization
    match: {state: idle}
    aggregate: avg
    value: {below: 101%}
  - {name: rss, metric: process.memory.usage, value: {above: 1000000}}
"""


def _incident_bodies(sink) -> list[str]:
    return [
        record.body.string_value
        for received in sink.store.received("logs")
        for rl in received.request.resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
        if record.event_name == "otelpipe.incident"
    ]


def _metric_names(sink) -> set[str]:
    return {
        metric.name
        for received in sink.store.received("metrics")
        for rm in received.request.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }


def test_system_metric_rules_fire_under_opentelemetry_instrument(
    sink, otlp_env, instrumented_app, wait_until, tmp_path: Path
) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(SPEC)
    app = instrumented_app(otlp_env(sink, OTELPIPE_SLO_FILE=str(spec), OTELPIPE_SLO_INTERVAL="500ms"))
    try:
        assert wait_until(
            lambda: (
                {"cpu-busy", "rss"}
                <= {b.split(": ")[1] for b in _incident_bodies(sink) if b.startswith("opened: ")}
            ),
            timeout=30,
        ), _incident_bodies(sink)
        # the instrumentation's figures are exported too, under their semantic-convention names
        wanted = {"system.cpu.utilization", "process.memory.usage", "system.memory.utilization"}
        assert wait_until(lambda: wanted <= _metric_names(sink), timeout=15), sorted(_metric_names(sink))
        assert "system.network.connections" not in _metric_names(sink)  # otelpipe's default exclusion
    finally:
        app.stop(timeout=20)
