"""Spec parsing and validation: native form, OpenSLO v1, error messages."""

from pathlib import Path

import pytest

from otelpipe.slo.model import default_tiers
from otelpipe.slo.spec import SLOSpecError, check_thresholds, load_spec, parse_spec

DEMO = Path(__file__).parents[2] / "otelpipe" / "demo" / "slo.yaml"


def test_demo_spec_holds_the_three_seed_slas() -> None:
    spec = load_spec(DEMO)
    by_name = {slo.name: slo for slo in spec.slos}
    api = by_name["api-availability"]
    assert (api.service, api.objective, api.period, api.sli.kind) == (
        "shop",
        0.999,
        30 * 86400,
        "availability",
    )
    assert api.sli.selector.span_kind == "SPAN_KIND_SERVER"
    latency = by_name["api-latency"]
    assert (latency.objective, latency.sli.kind, latency.sli.threshold_seconds) == (0.95, "latency", 0.4)
    orders = by_name["order-processing"]
    assert (orders.objective, orders.period) == (0.9995, 86400)
    assert orders.sli.selector.span_name == "order.create"
    assert orders.sli.selector.span_kind is None  # any kind for a named operation
    assert orders.tiers == default_tiers(86400)
    assert api.labels == {"team": "shop"}


def _native(slo: str) -> str:
    return "version: otelpipe/v1\nservice: shop\nslos:\n" + slo


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        (
            _native(
                "  - {name: a, objective: 99.9, sli: {kind: availability}}\n  - {name: b, objective: 120, "
                "sli: {kind: availability}}\n"
            ),
            "slos[1].objective",
            "strictly between 0 and 100",
        ),
        (_native("  - {name: a, objective: 99, sli: {kind: speed}}\n"), "slos[0].sli.kind", "availability"),
        (
            _native("  - {name: a, objective: 99, period: 30 days, sli: {kind: availability}}\n"),
            "slos[0].period",
            "duration",
        ),
        (
            _native(
                "  - {name: a, objective: 99, sli: {kind: availability}, selector: {span_kind: weird}}\n"
            ),
            "slos[0].selector.span_kind",
            "server",
        ),
        (
            _native("  - {name: a, objective: 99, sli: {kind: availability}, colour: red}\n"),
            "slos[0].colour",
            "supported keys",
        ),
        (
            _native(
                "  - {name: a, objective: 99, sli: {kind: availability}, alerting: {tiers: "
                "[{severity: page, short: 2h, long: 1h, factor: 2}]}}\n"
            ),
            "slos[0].alerting.tiers[0]",
            "short window no longer",
        ),
        ("version: v2\nslos: []\n", "version", "otelpipe/v1"),
        (
            _native(
                "  - {name: a, objective: 99, sli: {kind: availability}}\n"
                "  - {name: a, objective: 98, sli: {kind: availability}}\n"
            ),
            "slos[1].name",
            "unique",
        ),
    ],
)
def test_errors_name_file_path_value_and_expected_form(text: str, path: str, fragment: str) -> None:
    with pytest.raises(SLOSpecError) as caught:
        parse_spec(text, source="slo.yaml")
    message = str(caught.value)
    assert caught.value.path == path
    assert message.startswith(f"slo.yaml: {path}: got ")
    assert fragment in message
    assert isinstance(caught.value, ValueError)


def test_load_spec_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: otelpipe/v1\nslos: [\n")
    with pytest.raises(SLOSpecError, match=r"bad\.yaml: line"):
        load_spec(bad)
    with pytest.raises(SLOSpecError, match="readable file"):
        load_spec(tmp_path / "missing.yaml")


def test_latency_threshold_must_be_a_boundary_naming_the_nearest() -> None:
    spec = load_spec(DEMO)
    check_thresholds(spec, (0.1, 0.25, 0.4, 1.0))
    with pytest.raises(SLOSpecError) as caught:
        check_thresholds(spec, (0.1, 0.25, 0.5, 0.8))
    assert caught.value.path == "slos[1].sli.threshold"
    assert "nearest: 0.25s or 0.5s" in str(caught.value)


def test_tiers_and_min_events_native() -> None:
    spec = parse_spec(
        _native(
            "  - name: a\n    objective: 99.5\n    period: 7d\n    sli: {kind: latency, threshold: 250ms}\n"
            "    selector: {http_route: /api/orders, http_method: POST, span_kind: any}\n"
            "    alerting:\n      min_events: 50\n      tiers:\n"
            "        - {severity: critical, short: 5m, long: 1h, factor: 10}\n"
        )
    )
    slo = spec.slos[0]
    assert slo.min_events == 50
    assert [(t.severity, t.short_window, t.long_window, t.factor) for t in slo.tiers] == [
        ("page", 300, 3600, 10)
    ]
    assert slo.sli.threshold_seconds == 0.25
    assert slo.sli.selector.dimensions() == (
        ("service.name", "shop"),
        ("http.route", "/api/orders"),
        ("http.request.method", "POST"),
    )


OPENSLO = """\
apiVersion: openslo/v1
kind: SLI
metadata: {name: checkout-errors}
spec:
  ratioMetric:
    counter: true
    bad:
      metricSource: {type: otelpipe, spec: {span_name: order.create, errors: true}}
    total:
      metricSource: {type: otelpipe, spec: {span_name: order.create}}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: fast-burn}
spec:
  severity: page
  condition: {kind: burnrate, op: gte, threshold: 14.4, lookbackWindow: 1h, alertAfter: 5m}
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: page-fast}
spec:
  conditions:
    - conditionRef: fast-burn
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: order-processing
  annotations: {otelpipe/min-events: "5"}
spec:
  service: shop
  indicatorRef: checkout-errors
  timeWindow: [{duration: 24h, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: orders, targetPercent: 99.95}]
  alertPolicies: [page-fast]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: api-latency}
spec:
  service: shop
  indicator:
    metadata: {name: api-latency}
    spec:
      thresholdMetric:
        metricSource: {type: otelpipe, spec: {span_kind: server}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{op: lte, value: 0.5, target: 0.95}]
"""


def test_openslo_parses_into_the_same_model() -> None:
    spec = parse_spec(OPENSLO, source="openslo.yaml")
    orders, latency = spec.slos
    assert (orders.key, orders.objective, orders.period, orders.min_events) == (
        "shop/order-processing",
        0.9995,
        86400,
        5,
    )
    assert orders.sli.kind == "availability" and orders.sli.selector.span_name == "order.create"
    # alertAfter is how long the condition must hold (for:), not the short window (1/12 of 1h)
    assert [(t.severity, t.short_window, t.long_window, t.factor, t.for_seconds) for t in orders.tiers] == [
        ("page", 300, 3600, 14.4, 300)
    ]
    assert (latency.sli.kind, latency.sli.threshold_seconds, latency.objective) == ("latency", 0.5, 0.95)
    assert latency.sli.selector.span_kind == "SPAN_KIND_SERVER"
    assert latency.tiers == default_tiers(30 * 86400)
    assert orders.origin == "documents[3]"


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        (
            "budgetingMethod: Occurrences\n  objectives: [{displayName",
            "budgetingMethod: Timeslices\n  objectives: [{displayName",
            "Time-slice budgeting .* is not implemented",
        ),
        (
            "[{duration: 24h, isRolling: true}]",
            "[{duration: 1M, calendar: {startTime: x, timeZone: UTC}}]",
            "a start time such as",
        ),
        ("kind: AlertPolicy", "kind: AlertNotificationTarget", "supported keys of an AlertNotificationTarget"),
        (
            "type: otelpipe, spec: {span_name: order.create, errors",
            "type: Datadog, spec: {span_name: order.create, errors",
            "a Datadog metric cannot be computed from spans",
        ),
        (
            "type: otelpipe, spec: {span_name: order.create, errors",
            "type: Prometheus, spec: {span_name: order.create, errors",
            "spec.query over RED metrics",
        ),
        ("{op: lte, value: 0.5", "{op: gte, value: 0.5", "objective op: lte or lt"),
        ("op: gte, threshold: 14.4", "op: lte, threshold: 14.4", "op gt or gte"),
        ("condition: {kind: burnrate", "condition: {kind: threshold", "kind: burnrate"),
    ],
)
def test_openslo_unknown_features_are_refused(old: str, new: str, fragment: str) -> None:
    assert old in OPENSLO
    with pytest.raises(SLOSpecError, match=fragment) as caught:
        parse_spec(OPENSLO.replace(old, new, 1), source="openslo.yaml")
    assert caught.value.path.startswith("documents[")
