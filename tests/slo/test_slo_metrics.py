"""SLO gauges through a real MeterProvider."""

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otelpipe.processors.red_snapshot import REDSnapshot, SeriesStats
from otelpipe.slo.evaluator import SLOEvaluator
from otelpipe.slo.metrics import register_slo_metrics
from otelpipe.slo.model import SLI, SLO, Selector, SLOSpec, default_tiers


def test_gauges_report_latest_status() -> None:
    slo = SLO(
        "api", "shop", 0.999, 2592000.0, SLI("availability", Selector("shop")), default_tiers(2592000.0)
    )
    ev = SLOEvaluator(SLOSpec((slo,)), boundaries=(0.5,), clock=lambda: 0.0)
    attrs = {"service.name": "shop", "span.kind": "SPAN_KIND_SERVER", "status.code": "STATUS_CODE_ERROR"}
    ev.tick(REDSnapshot((0.5,), (SeriesStats(attrs, 2, 2, (2, 0), 0.0, 0.0, 0.0, 1),), 0))
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    register_slo_metrics(provider.get_meter("otelpipe.slo"), ev.status)
    data = reader.get_metrics_data()
    points = {
        m.name: [(dict(p.attributes), p.value) for p in m.data.data_points]
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert points["otelpipe.slo.objective"] == [({"slo": "api", "service": "shop"}, 0.999)]
    burn = dict((p["window"], v) for p, v in points["otelpipe.slo.burn_rate"])
    assert burn["5m"] == 1000.0 and set(burn) >= {"5m", "1h", "30d"}
    assert ({"slo": "api", "service": "shop", "window": "30d"}, 0.0) in points["otelpipe.slo.sli"]
    assert points["otelpipe.slo.error_budget.remaining"][0][1] == -999.0
    provider.shutdown()


def test_failing_status_source_yields_no_points() -> None:
    def broken() -> list:  # type: ignore[type-arg]
        raise RuntimeError("boom")

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    register_slo_metrics(provider.get_meter("otelpipe.slo"), broken)
    data = reader.get_metrics_data()
    assert not data or all(not sm.metrics for rm in data.resource_metrics for sm in rm.scope_metrics)
    provider.shutdown()
