"""Threshold rules: spec parsing with precise errors, and evaluation over successive RED snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelpipe.incidents.rules import (
    RuleEvaluator,
    RuleSpecError,
    ThresholdRule,
    estimate_quantile,
    load_rules,
    parse_rules,
)
from otelpipe.processors.red_snapshot import ExemplarRef, REDSnapshot, SeriesStats

BOUNDARIES = (0.1, 0.5, 1.0, 2.0, 5.0)
T0 = 1_700_000_000.0
SPEC = """
slos: []
rules:
  - name: checkout-errors
    service: checkout
    error_rate: {above: 5%, min_requests: 100}
  - name: checkout-latency
    service: checkout
    severity: critical
    window: 10m
    match: {span.name: POST /pay}
    labels: {team: shop}
    latency: {quantile: 0.95, above: 2s}
"""


def test_parses_the_seed_rules(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(SPEC)
    errors, latency = load_rules(path)
    assert errors == ThresholdRule(
        name="checkout-errors", service="checkout", kind="error_rate", above=0.05, min_requests=100
    )
    assert errors.key == "checkout/checkout-errors" and errors.window_s == 300
    assert latency.kind == "latency" and latency.above == 2.0 and latency.window_s == 600
    assert latency.match == {"span.kind": "SPAN_KIND_SERVER", "span.name": "POST /pay"}
    assert latency.severity == "critical" and latency.labels == {"team": "shop"}
    assert parse_rules({"slos": []}) == () and parse_rules(None) == ()


@pytest.mark.parametrize(
    ("rules", "path", "expected"),
    [
        ({"service": "a", "error_rate": {"above": 0.1}}, "rules[0].name", "a non-empty string"),
        ({"name": "x", "service": "a", "error_rate": {"above": "5"}}, "rules[0].error_rate.above", "ratio"),
        ({"name": "x", "service": "a", "error_rate": {"above": 1.5}}, "rules[0].error_rate.above", "ratio"),
        ({"name": "x", "service": "a", "latency": {"above": "2 sec"}}, "rules[0].latency.above", "duration"),
        (
            {"name": "x", "service": "a", "latency": {"above": 2, "quantile": 95}},
            "rules[0].latency.quantile",
            "between 0 and 1",
        ),
        ({"name": "x", "service": "a"}, "rules[0]", "exactly one of"),
        (
            {"name": "x", "service": "a", "severity": "page", "error_rate": {"above": 0.1}},
            "rules[0].severity",
            "critical",
        ),
        (
            {"name": "x", "service": "a", "windw": "5m", "error_rate": {"above": 0.1}},
            "rules[0].windw",
            "keys",
        ),
        (
            {"name": "x", "service": "a", "error_rate": {"above": 0.1, "min_requests": -1}},
            "rules[0].error_rate.min_requests",
            "whole number",
        ),
    ],
)
def test_spec_errors_name_path_value_and_expected_form(
    rules: dict[str, object], path: str, expected: str
) -> None:
    with pytest.raises(RuleSpecError) as caught:
        parse_rules({"rules": [rules]})
    assert caught.value.path == path
    assert expected in caught.value.expected
    assert str(caught.value).startswith(f"{path}: got ")


def test_duplicate_rule_names_are_rejected() -> None:
    rule = {"name": "x", "service": "a", "error_rate": {"above": 0.1}}
    with pytest.raises(RuleSpecError, match=r"rules\[1\]\.name"):
        parse_rules({"rules": [rule, rule]})


def test_quantile_estimate_interpolates_like_prometheus() -> None:
    assert estimate_quantile(0.5, (1.0, 2.0), (0, 10, 0)) == pytest.approx(1.5)
    assert estimate_quantile(0.95, (1.0, 2.0), (90, 5, 5)) == pytest.approx(2.0)
    assert estimate_quantile(0.99, (1.0, 2.0), (90, 5, 5)) == 2.0  # +Inf bucket: highest boundary
    assert estimate_quantile(0.95, (1.0,), (0, 0)) is None


def series(
    calls: int,
    errors: int,
    buckets: tuple[int, ...],
    *,
    name: str = "POST /pay",
    kind: str = "SPAN_KIND_SERVER",
    start: float = T0,
    exemplars: tuple[ExemplarRef, ...] = (),
) -> SeriesStats:
    return SeriesStats(
        attributes={"service.name": "checkout", "span.name": name, "span.kind": kind},
        calls=calls,
        errors=errors,
        bucket_counts=buckets,
        sum=0.0,
        min=0.0,
        max=0.0,
        start_time_unix_nano=int(start * 1e9),
        exemplars=exemplars,
    )


def snapshot(at: float, *items: SeriesStats) -> REDSnapshot:
    return REDSnapshot(BOUNDARIES, tuple(items), int(at * 1e9))


def rule(**changes: object) -> ThresholdRule:
    fields: dict[str, object] = dict(
        name="errors", service="checkout", kind="error_rate", above=0.05, min_requests=100, window_s=300.0
    )
    fields.update(changes)
    return ThresholdRule(**fields)  # type: ignore[arg-type]


def test_error_rate_rule_counts_only_the_window_and_needs_min_requests() -> None:
    evaluator = RuleEvaluator([rule()])
    bad = ExemplarRef("a" * 32, "b" * 16, 0.2, int((T0 + 590) * 1e9), True, True)
    # 50 requests, 10 errors: above 5 % but under min_requests
    (first,) = evaluator.evaluate(snapshot(T0 + 60, series(50, 10, (50, 0, 0, 0, 0, 0))))
    assert not first.firing and first.total == 50
    # by T0 + 600 the window (300 s) sees 200 more requests with 20 errors: 10 %
    evaluator.evaluate(snapshot(T0 + 300, series(100, 10, (100, 0, 0, 0, 0, 0))))
    (state,) = evaluator.evaluate(
        snapshot(
            T0 + 600,
            series(300, 30, (300, 0, 0, 0, 0, 0), exemplars=(bad,)),
            series(1000, 1000, (1000, 0, 0, 0, 0, 0), kind="SPAN_KIND_CLIENT"),
        )
    )
    assert state.firing and (state.total, state.errors) == (200, 20)
    assert state.key == "checkout/errors" and state.kind == "rule" and state.severity == "warning"
    assert state.summary == "errors: error rate 10.0% (threshold 5.0%) over 5m, 20 of 200 requests"
    assert state.exemplars == (bad,)
    # no new errors in the next window: clear
    (later,) = evaluator.evaluate(snapshot(T0 + 900, series(500, 30, (500, 0, 0, 0, 0, 0))))
    assert not later.firing and later.errors == 0 and later.exemplars == ()


def test_latency_rule_fires_on_p95_above_threshold() -> None:
    evaluator = RuleEvaluator([rule(name="slow", kind="latency", above=2.0, min_requests=10)])
    # started within the window: counts since start are the window
    (fast,) = evaluator.evaluate(snapshot(T0 + 60, series(100, 0, (90, 6, 0, 0, 4, 0))))
    assert not fast.firing
    (slow,) = evaluator.evaluate(snapshot(T0 + 120, series(200, 0, (90, 6, 0, 0, 104, 0))))
    assert slow.firing
    assert slow.summary.startswith("slow: p95 latency 4.") and slow.summary.endswith("over 5m, 200 requests")


def test_counter_reset_counts_from_zero() -> None:
    evaluator = RuleEvaluator([rule(min_requests=10)])
    evaluator.evaluate(snapshot(T0 + 400, series(5000, 0, (5000, 0, 0, 0, 0, 0), start=T0)))
    (state,) = evaluator.evaluate(
        snapshot(T0 + 460, series(20, 20, (20, 0, 0, 0, 0, 0), start=T0 + 450))  # process restarted
    )
    assert state.firing and state.total == 20
