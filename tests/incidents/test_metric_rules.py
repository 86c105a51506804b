"""Metric rules: parsing with precise errors; value, rate, quantile and absence over a fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from otelpipe.incidents.metric_rules import (
    MetricRule,
    MetricRuleEvaluator,
    load_metric_rules,
    parse_metric_rules,
)
from otelpipe.incidents.rules import RuleSpecError, parse_rules
from otelpipe.processors.metric_snapshot import MetricPoint, MetricSnapshot

T0 = 1_700_000_000.0
SEED = Path(__file__).resolve().parents[2] / "otelpipe" / "demo" / "slo.yaml"


def point(
    metric: str, value: float, kind: Any = "counter", start: float = T0 - 1, **attributes: Any
) -> MetricPoint:
    return MetricPoint(metric, kind, attributes, int(start * 1e9), 0, value)


def histogram(metric: str, buckets: tuple[int, ...], start: float = T0 - 1) -> MetricPoint:
    return MetricPoint(
        metric,
        "histogram",
        {},
        int(start * 1e9),
        0,
        0.0,
        count=sum(buckets),
        boundaries=(0.1, 0.5, 1.0, 2.0),
        bucket_counts=buckets,
    )


def snap(*points: MetricPoint, service: str = "shop") -> MetricSnapshot:
    by_name: dict[str, list[MetricPoint]] = {}
    for p in points:
        by_name.setdefault(p.metric, []).append(p)
    return MetricSnapshot(0, service, {k: tuple(v) for k, v in by_name.items()})


def rules(*entries: dict[str, Any]) -> tuple[MetricRule, ...]:
    return parse_metric_rules({"rules": list(entries)})


def test_parses_metric_rules_beside_threshold_rules(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(
        """
rules:
  - {name: errors, service: shop, error_rate: {above: 5%}}
  - name: high-cpu
    service: shop
    metric: system.cpu.utilization
    match: {state: idle}
    aggregate: avg
    value: {below: 20%}
    for: 2m
    severity: critical
    labels: {team: infra}
  - {name: slow, metric: http.server.duration, window: 10m, quantile: {quantile: 0.99, above: 2000, min_count: 20}}
  - {name: quiet, metric: shop.signups, absent: true}
"""
    )
    cpu, slow, quiet = load_metric_rules(path)
    assert cpu == MetricRule(
        name="high-cpu",
        metric="system.cpu.utilization",
        condition="value",
        service="shop",
        below=0.2,
        aggregate="avg",
        for_s=120.0,
        severity="critical",
        match={"state": "idle"},
        labels={"team": "infra"},
        origin="rules[1]",
    )
    assert cpu.key("other") == "shop/high-cpu" and slow.key("shop") == "shop/slow"
    assert (slow.quantile, slow.above, slow.min_count, slow.window_s) == (0.99, 2000.0, 20, 600.0)
    assert quiet.condition == "absent" and quiet.window_s == 300.0
    (threshold,) = parse_rules(yaml.safe_load(path.read_text()))  # the RED parser skips metric rules
    assert threshold.name == "errors"


@pytest.mark.parametrize(
    ("entry", "path", "expected"),
    [
        ({"name": "x", "metric": ""}, "rules[0].metric", "a non-empty string"),
        ({"name": "x", "metric": "m"}, "rules[0]", "exactly one of value, rate, quantile or absent"),
        (
            {"name": "x", "metric": "m", "value": {"above": 1}, "rate": {"above": 1}},
            "rules[0]",
            "exactly one",
        ),
        ({"name": "x", "metric": "m", "value": {"above": "lots"}}, "rules[0].value.above", "a finite number"),
        (
            {"name": "x", "metric": "m", "value": {"above": 1, "below": 0}},
            "rules[0].value",
            "exactly one of above",
        ),
        (
            {"name": "x", "metric": "m", "rate": {"above": 1, "quantile": 0.5}},
            "rules[0].rate.quantile",
            "keys",
        ),
        (
            {"name": "x", "metric": "m", "quantile": {"above": 1, "quantile": 95}},
            "rules[0].quantile.quantile",
            "between 0 and 1",
        ),
        (
            {"name": "x", "metric": "m", "quantile": {"above": 1, "min_count": -1}},
            "rules[0].quantile.min_count",
            "whole number",
        ),
        ({"name": "x", "metric": "m", "absent": "yes"}, "rules[0].absent", "true"),
        ({"name": "x", "metric": "m", "absent": True, "for": "soon"}, "rules[0].for", "duration"),
        ({"name": "x", "metric": "m", "absent": True, "aggregate": "p99"}, "rules[0].aggregate", "sum, avg"),
        ({"name": "x", "metric": "m", "absent": True, "severity": "page"}, "rules[0].severity", "critical"),
        ({"name": "x", "metric": "m", "absent": True, "latency": {}}, "rules[0].latency", "keys"),
    ],
)
def test_spec_errors_name_path_value_and_expected_form(
    entry: dict[str, Any], path: str, expected: str
) -> None:
    with pytest.raises(RuleSpecError) as caught:
        rules(entry)
    assert caught.value.path == path
    assert expected in caught.value.expected
    assert str(caught.value).startswith(f"{path}: got ")


def test_names_are_unique_per_service_across_rule_kinds() -> None:
    metric = {"name": "x", "service": "shop", "metric": "m", "absent": True}
    with pytest.raises(RuleSpecError, match=r"rules\[1\]\.name.*rules\[0\]"):
        rules({"name": "x", "service": "shop", "error_rate": {"above": 0.1}}, metric)
    with pytest.raises(RuleSpecError, match=r"rules\[1\]\.name"):
        rules(metric, {"name": "x", "metric": "m", "absent": True})  # no service: applies to shop too
    assert len(rules(metric, {**metric, "service": "payments"})) == 2


def test_gauge_value_rule_waits_for_its_for_duration() -> None:
    (rule,) = rules(
        {"name": "cpu", "metric": "cpu", "match": {"state": "idle"}, "value": {"below": 0.2}, "for": "1m"}
    )
    evaluator = MetricRuleEvaluator([rule])

    def cpu(idle1: float, idle2: float) -> MetricSnapshot:
        return snap(
            point("cpu", idle1, "gauge", state="idle", cpu=1),
            point("cpu", idle2, "gauge", state="idle", cpu=2),
            point("cpu", 0.9, "gauge", state="user", cpu=1),
        )

    (calm,) = evaluator.evaluate(cpu(0.5, 0.3), T0)
    assert not calm.firing and calm.summary == "cpu: cpu = 0.4 (below 0.2)" and calm.total == 2
    (pending,) = evaluator.evaluate(cpu(0.1, 0.1), T0 + 10)  # avg 0.1: holds, not yet for 1m
    assert not pending.firing
    (still,) = evaluator.evaluate(cpu(0.1, 0.2), T0 + 40)
    assert not still.firing
    (fired,) = evaluator.evaluate(cpu(0.05, 0.15), T0 + 70)
    assert fired.firing and fired.key == "shop/cpu" and fired.kind == "rule"
    assert fired.summary == "cpu: cpu = 0.1 (below 0.2), for 1m" and fired.labels == {"metric": "cpu"}
    (cleared,) = evaluator.evaluate(cpu(0.5, 0.5), T0 + 80)
    assert not cleared.firing
    (again,) = evaluator.evaluate(cpu(0.1, 0.1), T0 + 90)  # `for` starts over
    assert not again.firing


def test_the_held_duration_is_worded_in_whole_seconds_like_other_incident_texts() -> None:
    (rule,) = rules({"name": "cpu", "metric": "cpu", "value": {"below": 0.2}, "for": "30s"})
    evaluator = MetricRuleEvaluator([rule])
    (pending,) = evaluator.evaluate(snap(point("cpu", 0.1, "gauge")), T0 + 0.1)
    assert not pending.firing
    (fired,) = evaluator.evaluate(snap(point("cpu", 0.1, "gauge")), T0 + 60.09999)  # held ~59.99999s
    assert fired.firing and fired.summary == "cpu: cpu = 0.1 (below 0.2), for 1m"
    (still,) = evaluator.evaluate(snap(point("cpu", 0.1, "gauge")), T0 + 61.35)  # held 61.25s
    assert still.summary.endswith(", for 1m1s")


def test_counter_rate_needs_a_full_window_then_fires_when_it_stops() -> None:
    (rule,) = rules({"name": "orders", "metric": "orders", "window": "1m", "rate": {"below": 0.5}})
    evaluator = MetricRuleEvaluator([rule])
    (first,) = evaluator.evaluate(snap(point("orders", 100, channel="web")), T0)
    assert not first.firing  # the 100 were recorded before we watched: baseline
    (young,) = evaluator.evaluate(snap(point("orders", 100, channel="web")), T0 + 30)
    assert not young.firing and "less than 1m of history" in young.summary
    (busy,) = evaluator.evaluate(
        snap(point("orders", 160, channel="web"), point("orders", 30, channel="app", start=T0 + 40)), T0 + 60
    )
    assert not busy.firing and busy.summary == "orders: orders rate 1.5/s (below 0.5) over 1m"
    (slowing,) = evaluator.evaluate(
        snap(point("orders", 170, channel="web"), point("orders", 30, channel="app", start=T0 + 40)), T0 + 90
    )
    assert not slowing.firing  # 100 - wait: (70 + 30 - 0) over T0+30..T0+90 = 1.67/s
    (stopped,) = evaluator.evaluate(
        snap(point("orders", 170, channel="web"), point("orders", 30, channel="app", start=T0 + 40)), T0 + 150
    )
    assert stopped.firing and "rate 0/s" in stopped.summary


def test_counter_restart_counts_its_new_value_as_increase() -> None:
    (rule,) = rules({"name": "errors", "metric": "errors", "window": "1m", "rate": {"above": 1}})
    evaluator = MetricRuleEvaluator([rule])
    evaluator.evaluate(snap(point("errors", 5000)), T0)
    evaluator.evaluate(snap(point("errors", 5000)), T0 + 60)
    (state,) = evaluator.evaluate(snap(point("errors", 90, start=T0 + 70)), T0 + 120)  # restarted
    assert state.firing and "rate 1.5/s" in state.summary


def test_updowncounter_rate_catches_a_growing_queue() -> None:
    (rule,) = rules({"name": "queue", "metric": "queue", "window": "1m", "rate": {"above": 0}})
    evaluator = MetricRuleEvaluator([rule])
    evaluator.evaluate(snap(point("queue", 10, "updowncounter")), T0)
    (shrinking,) = evaluator.evaluate(snap(point("queue", 4, "updowncounter")), T0 + 60)
    assert not shrinking.firing and "rate -0.1/s" in shrinking.summary
    (growing,) = evaluator.evaluate(snap(point("queue", 40, "updowncounter")), T0 + 120)
    assert growing.firing and "rate 0.6/s" in growing.summary


def test_histogram_quantile_over_the_window_with_min_count() -> None:
    (rule,) = rules(
        {
            "name": "slow",
            "metric": "latency",
            "window": "5m",
            "quantile": {"quantile": 0.95, "above": 1, "min_count": 50},
        }
    )
    evaluator = MetricRuleEvaluator([rule])
    (base,) = evaluator.evaluate(snap(histogram("latency", (1000, 0, 0, 0, 0))), T0)
    assert not base.firing and "0 observations" in base.summary
    (few,) = evaluator.evaluate(snap(histogram("latency", (1000, 0, 0, 0, 10))), T0 + 60)
    assert not few.firing and few.summary == "slow: latency p95 n/a: 10 observations in 5m"
    (slow,) = evaluator.evaluate(snap(histogram("latency", (1030, 0, 0, 20, 10))), T0 + 120)
    assert slow.firing and slow.total == 60
    assert slow.summary.startswith("slow: latency p95 ") and slow.summary.endswith("over 5m, 60 observations")
    # five minutes of fast requests later, the slow ones have left the window
    evaluator.evaluate(snap(histogram("latency", (1100, 0, 0, 20, 10))), T0 + 300)
    (fast,) = evaluator.evaluate(snap(histogram("latency", (1200, 0, 0, 20, 10))), T0 + 430)
    assert not fast.firing and fast.total == 170


def test_absent_fires_after_a_window_without_data() -> None:
    counter, gauge = rules(
        {"name": "signups", "metric": "signups", "window": "2m", "absent": True},
        {"name": "heartbeat", "metric": "beat", "window": "2m", "absent": True, "severity": "critical"},
    )
    evaluator = MetricRuleEvaluator([counter, gauge])
    states = evaluator.evaluate(snap(point("signups", 3), point("beat", 1, "gauge")), T0)
    assert [s.firing for s in states] == [False, False]
    states = evaluator.evaluate(snap(point("signups", 4)), T0 + 60)  # a signup; the gauge went quiet
    assert [s.firing for s in states] == [False, False]
    states = evaluator.evaluate(snap(point("signups", 4)), T0 + 150)
    assert [s.firing for s in states] == [False, True]  # the gauge's last point was at T0
    states = evaluator.evaluate(snap(point("signups", 4)), T0 + 181)
    assert [s.firing for s in states] == [True, True]
    assert states[0].summary == "signups: signups no data for 2m1s (threshold 2m)"
    states = evaluator.evaluate(snap(point("signups", 5), point("beat", 1, "gauge")), T0 + 190)
    assert [s.firing for s in states] == [False, False]


def test_rules_of_another_service_are_not_reported_and_wrong_kinds_do_not_fire() -> None:
    evaluator = MetricRuleEvaluator(
        rules(
            {"name": "p", "service": "payments", "metric": "m", "absent": True},
            {"name": "r", "metric": "g", "rate": {"above": -1}},
            {"name": "q", "metric": "g", "quantile": {"above": -1}},
            {"name": "v", "metric": "h", "value": {"above": -1}},
        )
    )
    states = evaluator.evaluate(snap(point("g", 1, "gauge"), histogram("h", (1, 0, 0, 0, 0))), T0)
    assert [s.name for s in states] == ["r", "q", "v"]
    assert not any(s.firing for s in states)
    assert [s.summary.split(": ", 1)[1] for s in states] == [
        "g is a gauge: rate needs a counter",
        "g is a gauge: quantile needs a histogram",
        "h is a histogram: use quantile",
    ]


def test_the_demo_spec_ships_the_seed_conditions() -> None:
    document = yaml.safe_load(SEED.read_text())
    red = {r.name: r.kind for r in parse_rules(document)}
    metric = {r.name: r for r in parse_metric_rules(document)}
    assert set(red.values()) == {"error_rate", "latency"}
    assert metric["high-cpu"].metric == "system.cpu.utilization"
    assert any(r.metric.startswith("shop.") for r in metric.values())


def test_the_file_check_keeps_good_metric_rules_and_names_each_bad_one(tmp_path: Path) -> None:
    from otelpipe.slo.check import check_slo_file

    path = tmp_path / "slo.yaml"
    path.write_text(
        "version: otelpipe/v1\nservice: shop\nslos:\n  - {name: a, objective: 99, sli: {kind: availability}}\n"
        "rules:\n"
        "  - {name: ok, metric: m, absent: true}\n"
        "  - {name: bad, metric: m, rate: {below: lots}}\n"
    )
    checked = check_slo_file(path, (0.1, 0.5))
    assert [r.name for r in checked.metric_rules] == ["ok"]
    (problem,) = checked.errors
    assert "rules[1].rate.below: got 'lots', expected a finite number" in problem


def test_rules_over_system_metrics_warn_when_the_instrumentation_is_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import importlib.util

    from otelpipe import pipeline

    cpu, orders = rules(
        {"name": "cpu", "metric": "system.cpu.utilization", "value": {"above": 0.8}},
        {"name": "orders", "metric": "shop.orders.created", "absent": True},
    )
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "opentelemetry.instrumentation.system_metrics" else real(name, *a),
    )
    with caplog.at_level("WARNING", logger="otelpipe"):
        pipeline._warn_without_system_metrics([orders])
        assert not caplog.records
        pipeline._warn_without_system_metrics([cpu, orders])
    (record,) = caplog.records
    assert (
        "system.cpu.utilization" in record.getMessage() and "otelpipe[system-metrics]" in record.getMessage()
    )


def test_absent_needs_the_metric_seen_once_so_other_processes_metrics_do_not_fire() -> None:
    (rule,) = rules({"name": "signups", "metric": "signups", "window": "1m", "absent": True})
    evaluator = MetricRuleEvaluator([rule])
    for at in (T0, T0 + 61, T0 + 200):  # this process never records it (e.g. a prefork master)
        (state,) = evaluator.evaluate(snap(), at)
        assert not state.firing and state.summary == "signups: signups not seen yet"
    evaluator.evaluate(snap(point("signups", 1, start=T0 + 250)), T0 + 260)
    (stopped,) = evaluator.evaluate(snap(point("signups", 1, start=T0 + 250)), T0 + 321)
    assert stopped.firing


def test_otelpipe_check_counts_metric_rules_and_names_a_bad_one(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "version: otelpipe/v1\nservice: shop\nslos:\n  - {name: ok, objective: 99.9, sli: {kind: availability}}\n"
        "rules:\n"
        "  - {name: cpu, metric: system.cpu.utilization, value: {above: 80%}}\n"
        "  - {name: bad, metric: shop.orders.created, rate: {under: 1}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(OTELPIPE_SLO_FILE=str(spec), COLUMNS="200")
    exe = str(Path(sys.executable).with_name("otelpipe"))
    result = subprocess.run([exe, "check"], check=False, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "rules[1].rate.under: got 1, expected one of the keys ['above', 'below']" in result.stderr
    assert "1 SLO(s) and 1 rule(s) will run" in result.stdout
