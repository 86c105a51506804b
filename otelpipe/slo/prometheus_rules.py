"""Prometheus recording and alerting rules for an SLO spec, named as Sloth names them.

Pure: `generate_rules(spec) -> str`. The names (`slo:sli_error:ratio_rate5m`, ...,
`slo:period_error_budget_remaining:ratio`, `sloth_slo_info`) and labels (`sloth_id`,
`sloth_service`, `sloth_slo`, `sloth_window`, alert label `sloth_severity: page|ticket`) follow
Sloth's generated output, so Sloth's Grafana dashboards work on them. Unlike Sloth, the period
ratio is a plain rate over the whole period (traffic-weighted, the same figure the in-process
evaluator computes), and a tier honours the SLO's minimum-traffic guard.

RED metric names, as Prometheus sees them (the same from otelpipe's `/metrics` and from the
Collector's spanmetrics connector behind its `prometheus` / `prometheusremotewrite` exporters):
`traces_span_metrics_calls_total`, and the duration histogram in the unit chosen
(`OTELPIPE_RED_UNIT`, or the connector's `histogram.unit`): `ms`, both defaults, gives
`traces_span_metrics_duration_milliseconds_bucket`, `s` gives `..._seconds_bucket`
(`PrometheusNames.for_unit`). Labels are sanitised (`service.name` -> `service_name`); scope labels
(`otel_scope_name`, ...) are summed away. `le` is spelled by Python (`400.0`) on otelpipe's
`/metrics` and by Go (`400`) behind the Collector: `le` matchers accept both.

A latency SLO's threshold must be one of the histogram's bucket boundaries (the SLI counts the
`le` bucket at the threshold), so `generate_rules` refuses thresholds that are not among the
`boundaries` it is given (default: the connector's default buckets, which otelpipe shares).

Alerts take Sloth's form: one alert per severity, `max(...) without (sloth_window)` per window
pair, so the alert keeps its labels when the firing pair changes; `alerting.name`, `labels`,
`annotations` and `page_alert` / `ticket_alert` set its name, labels and annotations. A severity's
`for:` is the longest `for` of its tiers (OpenSLO `alertAfter`), as Prometheus has one per rule.

Windows are the SLO's (scaled with its period), each at least `min_rate_window` (default 1m):
`rate()` over a window shorter than a few scrape intervals has no data, so a 10 s window of a
1-day SLO is evaluated over 1 m in Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from otelpipe.config import DEFAULT_BUCKETS
from otelpipe.processors.red_snapshot import HTTP_METHOD, HTTP_ROUTE, SERVICE_NAME, SPAN_KIND, SPAN_NAME
from otelpipe.slo.durations import format_duration
from otelpipe.slo.identity import alert_name, identity_labels, sloth_id
from otelpipe.slo.model import SLO, SLOSpec
from otelpipe.slo.spec import check_thresholds

__all__ = [
    "PrometheusNames",
    "alert_name",
    "generate_rules",
    "prometheus_window",
    "sloth_id",
    "write_rules",
]

_DEFAULT_LABELS: Mapping[str, str] = {
    SERVICE_NAME: "service_name",
    SPAN_NAME: "span_name",
    SPAN_KIND: "span_kind",
    HTTP_ROUTE: "http_route",
    HTTP_METHOD: "http_request_method",
}


@dataclass(frozen=True, slots=True)
class PrometheusNames:
    """How the RED metrics are spelled in the Prometheus that evaluates the rules."""

    calls: str = "traces_span_metrics_calls_total"
    duration_bucket: str = "traces_span_metrics_duration_milliseconds_bucket"
    duration_count: str = "traces_span_metrics_duration_milliseconds_count"
    le_per_second: float = 1000.0  # 1 when the histogram is in seconds
    status_label: str = "status_code"
    error_value: str = "STATUS_CODE_ERROR"
    labels: Mapping[str, str] = field(default_factory=lambda: dict(_DEFAULT_LABELS))

    @classmethod
    def for_unit(cls, unit: str) -> PrometheusNames:
        """Names for a duration histogram in `ms` (otelpipe's and the connector's default) or `s`."""
        if unit == "ms":
            return cls()
        if unit == "s":
            return cls(
                duration_bucket="traces_span_metrics_duration_seconds_bucket",
                duration_count="traces_span_metrics_duration_seconds_count",
                le_per_second=1.0,
            )
        raise ValueError(f"unit must be ms or s, got {unit!r}")

    @classmethod
    def collector_milliseconds(cls) -> PrometheusNames:
        """Names from a Collector spanmetrics connector left at its default `ms` histogram unit."""
        return cls.for_unit("ms")


def generate_rules(
    spec: SLOSpec,
    *,
    names: PrometheusNames | None = None,
    min_rate_window: float = 60.0,
    source_name: str | None = None,
    boundaries: Sequence[float] = DEFAULT_BUCKETS,
    metric_rules: Sequence[Any] = (),
) -> str:
    """Prometheus rule file (YAML text) for every SLO of `spec`, plus alerts for its `metric_rules`.

    `metric_rules` are `otelpipe.incidents.metric_rules.MetricRule`s from the same file (see
    `otelpipe.incidents.metric_promql` for how each kind translates).

    `boundaries` (seconds) are the duration histogram's buckets: a latency threshold that is not
    one of them raises `SLOSpecError` naming the nearest ones, as an SLI read between buckets
    would count every request as bad.
    """
    check_thresholds(spec, boundaries)
    names = names or PrometheusNames()
    groups: list[dict[str, Any]] = []
    for slo in spec.slos:
        groups.extend(_slo_groups(slo, names, min_rate_window))
    if metric_rules:
        from otelpipe.incidents.metric_promql import metric_rule_group

        group = metric_rule_group(metric_rules, min_rate_window=min_rate_window)
        if group is not None:
            groups.append(group)
    header = (
        "# Code generated by `otelpipe slo rules` from "
        f"{source_name or Path(spec.source).name}. DO NOT EDIT.\n"
        "# Sloth-compatible SLO recording and alerting rules over the RED span metrics.\n"
    )
    return header + yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, width=100)


def write_rules(
    spec: SLOSpec,
    directory: str | Path,
    *,
    names: PrometheusNames | None = None,
    boundaries: Sequence[float] = DEFAULT_BUCKETS,
) -> Path:
    """Write `slo-rules.yml` for `spec` into `directory` (e.g. for a Prometheus started by a test)."""
    target = Path(directory) / "slo-rules.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(generate_rules(spec, names=names, boundaries=boundaries), encoding="utf-8")
    return target


def prometheus_window(window: float, min_rate_window: float = 60.0) -> str:
    """The range Prometheus evaluates a window over (never below `min_rate_window`)."""
    return format_duration(max(window, min_rate_window))


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so expressions stay readable."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def _num(value: float) -> str:
    return f"{value:.12g}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _matchers(slo: SLO, names: PrometheusNames, extra: str = "") -> str:
    parts = [f'{names.labels[dim]}="{_escape(value)}"' for dim, value in slo.sli.selector.dimensions()]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


def _le_matcher(threshold: float, names: PrometheusNames) -> str:
    value = threshold * names.le_per_second
    go = repr(float(value)).removesuffix(".0") if float(value).is_integer() else repr(float(value))
    python = repr(float(value))
    if go == python:
        return f'le="{go}"'
    pattern = f"{re.escape(go)}|{re.escape(python)}".replace("\\", "\\\\")  # PromQL strings unescape once
    return f'le=~"{pattern}"'


def _error_ratio_expr(slo: SLO, names: PrometheusNames, window: str) -> str:
    total_sel = _matchers(slo, names)
    if slo.sli.kind == "availability":
        error_sel = _matchers(slo, names, f'{names.status_label}="{names.error_value}"')
        return (
            f"(sum(rate({names.calls}{error_sel}[{window}])) or vector(0))\n"
            "/\n"
            f"(sum(rate({names.calls}{total_sel}[{window}])))\n"
        )
    assert slo.sli.threshold_seconds is not None
    good_sel = _matchers(slo, names, _le_matcher(slo.sli.threshold_seconds, names))
    return (
        f"(\n  sum(rate({names.duration_count}{total_sel}[{window}]))\n"
        f"  -\n  (sum(rate({names.duration_bucket}{good_sel}[{window}])) or vector(0))\n)\n"
        "/\n"
        f"(sum(rate({names.duration_count}{total_sel}[{window}])))\n"
    )


def _total_expr(slo: SLO, names: PrometheusNames, window: str) -> str:
    metric = names.calls if slo.sli.kind == "availability" else names.duration_count
    return f"sum(increase({metric}{_matchers(slo, names)}[{window}]))"


def _slo_groups(slo: SLO, names: PrometheusNames, min_rate_window: float) -> list[dict[str, Any]]:
    ident = sloth_id(slo)
    base_labels = {
        **dict(sorted(slo.labels.items())),
        "sloth_id": ident,
        "sloth_service": slo.service,
        "sloth_slo": slo.name,
    }
    selector = f'{{sloth_id="{ident}", sloth_service="{slo.service}", sloth_slo="{slo.name}"}}'
    windows: list[str] = []
    for window in slo.windows():
        label = prometheus_window(window, min_rate_window)
        if label not in windows:
            windows.append(label)
    period = prometheus_window(slo.period, min_rate_window)

    sli_rules: list[dict[str, Any]] = [
        {
            "record": f"slo:sli_error:ratio_rate{window}",
            "expr": _error_ratio_expr(slo, names, window),
            "labels": {**base_labels, "sloth_window": window},
        }
        for window in windows
    ]
    shortest = windows[0]
    meta_rules: list[dict[str, Any]] = [
        {"record": "slo:objective:ratio", "expr": f"vector({_num(slo.objective)})", "labels": base_labels},
        {
            "record": "slo:error_budget:ratio",
            "expr": f"vector({_num(slo.error_budget)})",
            "labels": base_labels,
        },
        {
            "record": "slo:time_period:days",
            "expr": f"vector({_num(slo.period / 86400)})",
            "labels": base_labels,
        },
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": (
                f"slo:sli_error:ratio_rate{shortest}{selector}\n"
                "/ on(sloth_id, sloth_slo, sloth_service) group_left\n"
                f"slo:error_budget:ratio{selector}\n"
            ),
            "labels": base_labels,
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": (
                f"slo:sli_error:ratio_rate{period}{selector}\n"
                "/ on(sloth_id, sloth_slo, sloth_service) group_left\n"
                f"slo:error_budget:ratio{selector}\n"
            ),
            "labels": base_labels,
        },
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - slo:period_burn_rate:ratio{selector}",
            "labels": base_labels,
        },
        {
            "record": "sloth_slo_info",
            "expr": "vector(1)",
            "labels": {
                **base_labels,
                "sloth_mode": "otelpipe",
                "sloth_objective": _num(slo.objective * 100),
                "sloth_spec": "otelpipe/v1",
            },
        },
    ]
    alert_rules: list[dict[str, Any]] = []
    for severity in ("page", "ticket"):
        tiers = [t for t in slo.tiers if t.severity == severity]
        if not tiers:
            continue
        options = slo.alerting.page if severity == "page" else slo.alerting.ticket
        clauses = []
        for tier in tiers:
            short = prometheus_window(tier.short_window, min_rate_window)
            long = prometheus_window(tier.long_window, min_rate_window)
            limit = f"({_num(tier.factor)} * {_num(slo.error_budget)})"
            # Sloth's form: the window label is dropped, so the alert keeps one identity whichever
            # window pair fires (5m/1h or 30m/6h) and Alertmanager never sees it resolve mid-incident.
            clause = (
                "(\n"
                f"    max(slo:sli_error:ratio_rate{short}{selector} > {limit}) without (sloth_window)\n"
                "    and\n"
                f"    max(slo:sli_error:ratio_rate{long}{selector} > {limit}) without (sloth_window)\n"
            )
            if slo.min_events > 0:
                clause += f"    and on ()\n    ({_total_expr(slo, names, long)} >= {slo.min_events})\n"
            clauses.append(clause + ")")
        labels = identity_labels(slo, severity)
        for key in ("sloth_id", "sloth_service", "sloth_slo"):  # on the series already
            labels.pop(key)
        for key in slo.labels:
            if labels.get(key) == slo.labels[key]:
                labels.pop(key)
        rule: dict[str, Any] = {
            "alert": alert_name(slo),
            "expr": "\nor\n".join(clauses) + "\n",
        }
        hold = max(tier.for_seconds for tier in tiers)
        if hold > 0:
            rule["for"] = format_duration(hold)
        rule["labels"] = {
            "severity": "critical" if severity == "page" else "warning",
            **dict(sorted(labels.items())),
        }
        rule["annotations"] = {
            "summary": f"{slo.service} {slo.name}: error budget burning too fast ({severity})",
            "title": (
                f"({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} "
                "SLO error budget burn rate is too fast."
            ),
            **slo.alerting.annotations,
            **options.annotations,
        }
        alert_rules.append(rule)
    return [
        {"name": f"sloth-slo-sli-recordings-{ident}", "rules": sli_rules},
        {"name": f"sloth-slo-meta-recordings-{ident}", "rules": meta_rules},
        {"name": f"sloth-slo-alerts-{ident}", "rules": alert_rules},
    ]
