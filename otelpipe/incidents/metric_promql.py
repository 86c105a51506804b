"""Prometheus alerting rules for metric rules, with the names opentelemetry-exporter-prometheus gives.

Pure: `metric_rule_group(rules) -> dict | None` (one rule group for `otelpipe slo rules`).
Names follow the exporter (an app's `/metrics`): the instrument name sanitised (`.` -> `_`), the
rule's `unit` mapped and appended (`ms` -> `_milliseconds`, `1` and `{order}` -> nothing), `_total`
on counters, `_bucket`/`_count` on histograms; attribute keys sanitised (`http.route` ->
`http_route`). Each expression is grouped `by (job, instance)`: in Prometheus one alert per
scraped process, as in-process each process judges its own figures.

What translates and how:

* `value` -> `<aggregate> by (job, instance) (name{match}) <op> threshold` (a gauge or up-down
  counter; the exporter names a counter's value `name_total`, which a value rule does not assume).
* `rate` -> `sum by (job, instance) (rate(name_total{match}[window]))` (a monotonic counter).
* `quantile` -> `histogram_quantile(q, sum by (job, instance, le) (rate(name_bucket[window])))`,
  with `min_count` as `and sum(increase(name_count[window])) >= min_count`.
* `for:`, severity and labels carry over.

What does not translate exactly: a `rate` rule over an up-down counter (Prometheus would need
`deriv` on the gauge; the generator cannot tell the kind from the spec, so it assumes a counter),
and `absent`: in-process, a counter that stopped growing is absent; in Prometheus the rule is
`absent_over_time` of the series (no samples at all, e.g. the target is down), which says less.
A rule's `service:` has no label to match (system and business metrics carry no `service.name`;
the exporter puts resource attributes in `target_info`), so it becomes the alert's `service` label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.prometheus._mapping import map_unit, sanitize_attribute, sanitize_full_name

from otelpipe.incidents.metric_rules import MetricRule
from otelpipe.incidents.rules import ANY
from otelpipe.slo.durations import format_duration

GROUP_NAME = "otelpipe-metric-rules"
_BY = "job, instance"


def metric_rule_group(rules: Sequence[MetricRule], *, min_rate_window: float = 60.0) -> dict[str, Any] | None:
    """One Prometheus rule group with an alert per metric rule (None without rules)."""
    if not rules:
        return None
    return {"name": GROUP_NAME, "rules": [_alert(rule, min_rate_window) for rule in rules]}


def prometheus_name(rule: MetricRule) -> str:
    """The series name the Prometheus exporter gives the rule's instrument (before `_total`/`_bucket`)."""
    name = sanitize_full_name(rule.metric)
    unit = map_unit(rule.unit) if rule.unit else ""
    if unit:
        unit = sanitize_full_name(unit)
        if not name.endswith(unit):
            name = f"{name}_{unit}"
    return name


def alert_name(rule: MetricRule) -> str:
    """`HighCpuMetricRule`: CamelCase of the rule name (and its service, when it has one)."""
    words = re.split(r"[^A-Za-z0-9]+", f"{rule.service} {rule.name}")
    return "".join(w[:1].upper() + w[1:] for w in words if w) + "MetricRule"


def _alert(rule: MetricRule, min_rate_window: float) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "alert": alert_name(rule),
        "expr": expression(rule, min_rate_window=min_rate_window),
    }
    if rule.for_s:
        alert["for"] = format_duration(rule.for_s)
    labels = {**rule.labels, "severity": rule.severity, "otelpipe_rule": rule.name, "metric": rule.metric}
    if rule.service:
        labels["service"] = rule.service
    alert["labels"] = labels
    alert["annotations"] = {
        "summary": f"{rule.name}: {rule.describe()}",
    }
    return alert


def figure(rule: MetricRule, *, min_rate_window: float = 60.0) -> str:
    """The PromQL figure the rule compares (for dashboards): value, rate or quantile; for `absent`, samples seen."""
    name = prometheus_name(rule)
    window = format_duration(max(rule.window_s, min_rate_window))
    match = _matchers(rule)
    if rule.condition == "absent":
        return f'count by ({_BY}) (count_over_time({{__name__=~"{name}|{name}_total"{match[1:-1] and "," + match[1:-1]}}}[{window}]))'
    if rule.condition == "value":
        aggregate = rule.aggregate or "avg"  # a value rule in Prometheus reads a gauge
        return f"{aggregate} by ({_BY}) ({name}{match})"
    if rule.condition == "rate":
        return f"sum by ({_BY}) (rate({name}_total{match}[{window}]))"
    return f"histogram_quantile({rule.quantile:g}, sum by ({_BY}, le) (rate({name}_bucket{match}[{window}])))"


def expression(rule: MetricRule, *, min_rate_window: float = 60.0) -> str:
    """The PromQL expression that is non-empty while the rule's condition holds."""
    name = prometheus_name(rule)
    window = format_duration(max(rule.window_s, min_rate_window))
    match = _matchers(rule)
    if rule.condition == "absent":
        return (
            f"absent_over_time({name}{match}[{window}]) and absent_over_time({name}_total{match}[{window}])"
        )
    op, threshold = (">", rule.above) if rule.above is not None else ("<", rule.below)
    text = f"{figure(rule, min_rate_window=min_rate_window)} {op} {threshold:.12g}"
    if rule.condition == "quantile" and rule.min_count:
        text += (
            f"\nand on ({_BY}) sum by ({_BY}) (increase({name}_count{match}[{window}])) >= {rule.min_count}"
        )
    return text


def _matchers(rule: MetricRule) -> str:
    parts = [
        f'{sanitize_attribute(key)}="{_escape(value)}"' for key, value in rule.match.items() if value != ANY
    ]
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
