"""The ecosystem's own queries, unchanged, against a real Prometheus scraping otelpipe's `/metrics`.

An app set up with `otelpipe.configure()` (tests/compat/compat_app.py) keeps producing spans;
Debian's `prometheus` scrapes it every second and evaluates the SLO rules `otelpipe slo rules`
generates for the same unit. Every query must return data:

* the OpenTelemetry demo's spanmetrics dashboard (otel-demo/spanmetrics-dashboard.json, every
  `expr` as shipped, with the dashboard's "All" values and Grafana's range variables filled in);
* Jaeger SPM's latency, call-rate and error-rate queries (jaeger/spm-queries.yml);
* Grafana's Tempo service map queries (grafana/service-map-queries.yml);
* the generated latency SLO's error ratio, over the chosen unit's `le` bucket.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from otelpipe.slo.prometheus_rules import PrometheusNames, generate_rules
from otelpipe.slo.spec import parse_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

HERE = Path(__file__).parent
APP = HERE / "compat_app.py"
SPEC = """\
version: otelpipe/v1
service: shop
slos:
  - name: products-latency
    objective: 99
    period: 30d
    sli: {kind: latency, threshold: 400ms}
    selector: {http_route: /api/products}
"""
# The dashboard's "All" value and Grafana's range variables, as Grafana would fill them.
GRAFANA_VARIABLES = {
    "${service}": ".*",
    "$service": ".*",
    "$span_name": ".*",
    "$__rate_interval": "1m",
    "$__range": "1m",
}


def _harness() -> ModuleType:
    """tests/integration/slo_detection_harness.py (its Prometheus runner), loaded by path."""
    name = "slo_detection_harness"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE.parent / "integration" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Stack:
    """compat_app.py plus a Prometheus scraping it, for one OTELPIPE_RED_UNIT."""

    def __init__(self, tmp: Path, prometheus_binary: str, unit: str) -> None:
        harness = _harness()
        self.unit = unit
        metrics_port = harness.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
        env.update(
            OTEL_SERVICE_NAME="shop",
            OTEL_TRACES_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_METRICS_EXPORTER="prometheus",
            OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
            OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
            OTELPIPE_RED_UNIT=unit,
            OTELPIPE_STRICT="true",
            PYTHONUNBUFFERED="1",
        )
        self.log_path = tmp / "app.log"
        with self.log_path.open("wb") as log:
            self.app = subprocess.Popen(
                [sys.executable, str(APP)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.prometheus: Any = None
        try:
            if not harness._wait_for(self._app_ready, timeout=60, interval=0.1):
                raise AssertionError("compat app did not start:\n" + self.log())
            rules = tmp / "slo-rules.yml"
            rules.write_text(generate_rules(parse_spec(SPEC), names=PrometheusNames.for_unit(unit)))
            self.prometheus = harness.PrometheusServer(
                prometheus_binary,
                tmp / "prometheus",
                target=f"127.0.0.1:{metrics_port}",
                rules=rules,
                scrape_interval=1.0,
                eval_interval=1.0,
            )
        except BaseException:
            self.stop()
            raise

    def _app_ready(self) -> bool:
        if self.app.poll() is not None:
            raise AssertionError("compat app exited:\n" + self.log())
        return "READY" in self.log()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def query_with_data(self, expr: str, timeout: float = 40.0) -> list[dict[str, Any]]:
        """The instant result of `expr` once it holds a finite sample (or the last result at the deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.prometheus.query(expr)
            if any(math.isfinite(float(sample["value"][1])) for sample in result):
                return list(result)
            if time.monotonic() > deadline:
                return list(result)
            time.sleep(0.5)

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
        if self.app.poll() is None:
            self.app.terminate()
        try:
            self.app.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.app.kill()
            self.app.wait()


@pytest.fixture(scope="module", params=["ms", "s"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = shutil.which("prometheus")
    if binary is None:
        reason = "prometheus not installed (Debian package; .ci/run installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: required in CI")
        pytest.skip(reason)
    running = Stack(tmp_path_factory.mktemp(f"compat-{request.param}"), binary, request.param)
    yield running
    running.stop()


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((HERE / "otel-demo" / "spanmetrics-dashboard.json").read_text(encoding="utf-8"))

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    exprs = [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", []) if t.get("expr")]
    assert len(exprs) >= 10
    return list(dict.fromkeys(exprs))


def _fill(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def _in_unit(expr: str, unit: str) -> str:
    """A milliseconds query as a user who set `histogram.unit: s` (or OTELPIPE_RED_UNIT=s) has it."""
    return expr if unit == "ms" else expr.replace("_milliseconds_", "_seconds_")


def test_otel_demo_spanmetrics_dashboard_queries_return_data(stack: Stack) -> None:
    empty = []
    for expr in _dashboard_exprs():
        query = _in_unit(_fill(expr), stack.unit)
        if not stack.query_with_data(query):
            empty.append(query)
    assert not empty, f"no data for {empty}\n{stack.log()}"


def test_jaeger_spm_queries_return_data(stack: Stack) -> None:
    reference = yaml.safe_load((HERE / "jaeger" / "spm-queries.yml").read_text(encoding="utf-8"))
    latency = _in_unit(reference["latency_metric"] + "_", stack.unit).removesuffix("_")
    calls = reference["calls_metric"]
    templates = reference["templates"]
    kinds = 'span_kind =~ "SPAN_KIND_SERVER"'
    queries = []
    for group_by in ("service_name", "service_name,span_name"):
        queries.append(templates["latencies"] % (0.95, latency, "shop", kinds, "10m", group_by + ",le"))
        queries.append(templates["call_rates"] % (calls, "shop", kinds, "10m", group_by))
        queries.append(
            templates["error_rates"]
            % (calls, "shop", kinds, "10m", group_by, calls, "shop", kinds, "10m", group_by)
        )
    empty = [query for query in queries if not stack.query_with_data(query)]
    assert not empty, f"no data for {empty}"
    by_service = (calls, "shop", kinds, "10m", "service_name")
    (rate,) = stack.query_with_data(templates["error_rates"] % (by_service + by_service))
    assert 0.05 < float(rate["value"][1]) < 0.2  # one SERVER span in ten fails


def test_grafana_service_map_queries_return_the_edges(stack: Stack) -> None:
    reference = yaml.safe_load((HERE / "grafana" / "service-map-queries.yml").read_text(encoding="utf-8"))
    sum_template, group_template = reference["templates"]
    for metric in reference["metrics"]:
        query = sum_template.replace("${metric}", metric).replace("$__range", "1m")
        edges = {(s["metric"]["client"], s["metric"]["server"]) for s in stack.query_with_data(query)}
        expected = {("shop", "stock")} if "failed" in metric else {("shop", "stock"), ("shop", "postgresql")}
        assert expected <= edges, (metric, edges)
        grouped = stack.query_with_data(group_template.replace("${metric}", metric))
        types = {(s["metric"]["server"], s["metric"].get("connection_type", "")) for s in grouped}
        assert ("postgresql", "database") in types or "failed" in metric, types


def test_generated_latency_slo_reads_the_units_bucket(stack: Stack) -> None:
    result = stack.query_with_data('slo:sli_error:ratio_rate5m{sloth_slo="products-latency"}')
    assert result, stack.prometheus.log()
    assert float(result[0]["value"][1]) == 0.0  # every request is far under 400 ms
    broken = [rule for rule in stack.prometheus.rules() if rule.get("health") == "err"]
    assert not broken, broken
