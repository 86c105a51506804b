"""Every example file of the OpenSLO repository (openslo/, copied unchanged) fed to the spec loader.

The repository's examples query vendor backends ("Any", Datadog, AppDynamics, Prometheus over
non-RED metrics) or budget by time slices: otelpipe must refuse each with a message that names what
is missing, and accept every supporting document (DataSource, AlertPolicy, AlertCondition,
AlertNotificationTarget, Service, SLI) as written. An SLO that uses them with a query over RED
metrics is accepted, with alertAfter as `for:`, several objectives and a calendar window.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from otelpipe.slo.spec import SLOSpecError, load_spec, parse_spec

HERE = Path(__file__).parent
OPENSLO = HERE / "openslo"
SUPPORTING_ONLY = "at least one OpenSLO document of kind SLO (the other documents are valid)"
TIMESLICES = "Time-slice budgeting (the share of good time slices) is not implemented"

EXPECTED = {
    "budgeting-method--occurences-slo.yaml": (
        "spec.indicator.spec.thresholdMetric.metricSource.spec.query",
        "a query over one RED metric selector",
    ),
    "budgeting-method--ratio-timeslices.yaml": ("spec.budgetingMethod", TIMESLICES),
    "budgeting-method--timeslices-slo.yaml": ("spec.budgetingMethod", TIMESLICES),
    "treat-low-traffic-as-equally-important--timeslices-slo.yaml": ("spec.budgetingMethod", TIMESLICES),
    "pkg-v1--slos.yaml": ("spec.budgetingMethod", TIMESLICES),
    "pkg-v1--slis.yaml": ("", SUPPORTING_ONLY),
    "pkg-v1--data_sources.yaml": ("", SUPPORTING_ONLY),
    "pkg-v1--alert_policies.yaml": ("", SUPPORTING_ONLY),
    "pkg-v1--alert_conditions.yaml": ("", SUPPORTING_ONLY),
    "pkg-v1--alert_notification_targets.yaml": ("", SUPPORTING_ONLY),
    "pkg-v1--services.yaml": ("", SUPPORTING_ONLY),
}


def test_every_example_file_is_covered() -> None:
    assert sorted(p.name for p in OPENSLO.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_file_is_refused_naming_what_is_missing(name: str) -> None:
    path_fragment, message = EXPECTED[name]
    with pytest.raises(SLOSpecError) as caught:
        load_spec(OPENSLO / name)
    assert message in str(caught.value)
    assert path_fragment in caught.value.path


def test_supporting_documents_are_all_read() -> None:
    with pytest.raises(SLOSpecError) as caught:
        load_spec(OPENSLO / "pkg-v1--alert_policies.yaml")
    declared = str(caught.value.value)
    for document in ("AlertPolicy low-priority", "AlertPolicy high-priority", "AlertPolicy medium-priority"):
        assert document in declared


def _with_examples(slo: str) -> str:
    files = ("data_sources", "alert_policies", "alert_conditions", "alert_notification_targets", "services")
    texts = [(OPENSLO / f"pkg-v1--{name}.yaml").read_text(encoding="utf-8") for name in files]
    return "\n---\n".join([*texts, slo])


RED_SLO = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout
  labels: {env: [prod], team: [team-a, team-b]}
spec:
  service: shop
  indicator:
    metadata: {name: checkout-latency}
    spec:
      thresholdMetric:
        metricSource:
          metricSourceRef: prometheus
          spec:
            query: histogram_quantile(0.99, sum(rate(traces_span_metrics_duration_milliseconds_bucket{service_name="shop", span_name="POST /checkout"}[5m])) by (le))
  timeWindow:
    - duration: 1M
      isRolling: false
      calendar: {startTime: 2022-01-01 12:00:00, timeZone: America/New_York}
  budgetingMethod: Occurrences
  objectives:
    - {displayName: Fast, op: lte, value: 400, target: 0.95}
    - {displayName: Tolerable, op: lt, value: 1000, targetPercent: 99.5}
  alertPolicies: [high-priority]
"""


def test_red_query_slo_with_the_examples_supporting_documents_is_accepted() -> None:
    spec = parse_spec(_with_examples(RED_SLO), source="composed.yaml")
    fast, tolerable = spec.slos
    assert (fast.name, tolerable.name) == ("checkout-fast", "checkout-tolerable")
    assert (fast.sli.threshold_seconds, tolerable.sli.threshold_seconds) == (0.4, 1.0)  # ms -> s
    assert (fast.objective, tolerable.objective) == (0.95, 0.995)
    assert fast.sli.selector.span_name == "POST /checkout" and fast.sli.selector.service == "shop"
    assert fast.period == 30 * 86400  # 1M calendar month, budgeted as the last 30 days
    assert fast.labels == {"env": "prod", "team": "team-a,team-b"}
    # high-priority: burnrate > 2 over 1h, alertAfter 5m (a `for:`), severity page, PagerDuty target
    (tier,) = fast.tiers
    assert (tier.severity, tier.factor, tier.long_window, tier.short_window, tier.for_seconds) == (
        "page",
        2.0,
        3600,
        300,
        300,
    )
    assert fast.alerting.annotations == {"openslo_notification_targets": "on-call-pd-notification"}


def test_example_condition_that_fires_below_the_threshold_is_refused() -> None:
    text = _with_examples(RED_SLO.replace("[high-priority]", "[low-priority]"))
    with pytest.raises(SLOSpecError, match="op gt or gte: a burn-rate alert fires when the burn rate exceeds"):
        parse_spec(text)


def test_threshold_above_value_is_refused_with_the_reason() -> None:
    with pytest.raises(SLOSpecError, match="gt/gte would make slow requests the good ones"):
        parse_spec(_with_examples(RED_SLO.replace("op: lte", "op: gte")))


def test_ratio_query_over_red_calls_maps_errors() -> None:
    ratio = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: availability}
spec:
  service: shop
  indicator:
    metadata: {name: errors}
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec: {query: 'sum(rate(traces_span_metrics_calls_total{service_name="shop",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"}[5m]))'}
        total:
          metricSource:
            type: Prometheus
            spec: {query: 'sum(rate(traces_span_metrics_calls_total{service_name="shop",span_kind="SPAN_KIND_SERVER"}[5m]))'}
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{op: gte, target: 0.999}]
"""
    (slo,) = parse_spec(ratio).slos
    assert (slo.sli.kind, slo.sli.selector.span_kind, slo.objective, slo.period) == (
        "availability",
        "SPAN_KIND_SERVER",
        0.999,
        28 * 86400,
    )


def test_sloth_spec_forms_get_a_message_that_says_what_they_are() -> None:
    with pytest.raises(SLOSpecError, match="v1alpha, as in Sloth's OpenSLO example"):
        load_spec(HERE / "sloth" / "openslo-getting-started.yml")
    with pytest.raises(SLOSpecError, match="prometheus/v1 is Sloth's spec, whose SLIs are PromQL"):
        load_spec(HERE / "sloth" / "getting-started.yml")
