"""Grafana dashboard JSON for an SLO spec: SLI, burn rate per window and budget left, per SLO.

Pure: `generate_dashboard(spec) -> str`. Panels query the Sloth-named recording rules that
`rules.generate_rules` writes, so the dashboard needs those rules loaded in Prometheus.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from otelpipe.slo.identity import sloth_id
from otelpipe.slo.model import SLO, SLOSpec
from otelpipe.slo.prometheus_rules import prometheus_window

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def generate_dashboard(
    spec: SLOSpec,
    *,
    title: str = "otelpipe SLOs",
    uid: str = "otelpipe-slos",
    min_rate_window: float = 60.0,
    metric_rules: Sequence[Any] = (),
) -> str:
    """Dashboard JSON text (stable key order, so it can be checked in and compared).

    After the SLO panels: a row of system and process metrics (opentelemetry-instrumentation-system-metrics
    names) and, with `metric_rules`, a row with each rule's figure and threshold (business metrics).
    """
    panels: list[dict[str, Any]] = []
    y = 0
    for slo in spec.slos:
        panels.extend(_slo_panels(slo, y, len(panels) + 1, min_rate_window))
        y += 9
    panels.extend(_system_row(y, len(panels) + 1))
    y += 10
    if metric_rules:
        panels.extend(_metric_rule_row(metric_rules, y, len(panels) + 1, min_rate_window))
    dashboard = {
        "title": title,
        "uid": uid,
        "tags": ["otelpipe", "slo", "sloth"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "panels": panels,
    }
    return json.dumps(dashboard, indent=2) + "\n"


def _selector(slo: SLO) -> str:
    return f'{{sloth_id="{sloth_id(slo)}", sloth_service="{slo.service}", sloth_slo="{slo.name}"}}'


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": _DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}


def _slo_panels(slo: SLO, y: int, first_id: int, min_rate_window: float) -> list[dict[str, Any]]:
    selector = _selector(slo)
    windows: list[str] = []
    for window in slo.windows():
        label = prometheus_window(window, min_rate_window)
        if label not in windows:
            windows.append(label)
    period = prometheus_window(slo.period, min_rate_window)
    title = f"{slo.service} / {slo.name} ({slo.objective * 100:g}% over {period})"
    sli = {
        "id": first_id,
        "type": "timeseries",
        "title": f"{title}: SLI",
        "description": slo.description or f"{slo.sli.kind} SLI",
        "datasource": _DATASOURCE,
        "gridPos": {"h": 8, "w": 9, "x": 0, "y": y},
        "fieldConfig": {"defaults": {"unit": "percentunit", "min": 0, "max": 1}, "overrides": []},
        "targets": [
            _target(f"1 - slo:sli_error:ratio_rate{windows[0]}{selector}", f"SLI {windows[0]}", "A"),
            _target(f"1 - slo:sli_error:ratio_rate{period}{selector}", f"SLI {period}", "B"),
            _target(f"slo:objective:ratio{selector}", "objective", "C"),
        ],
    }
    burn = {
        "id": first_id + 1,
        "type": "timeseries",
        "title": f"{title}: burn rate",
        "description": "Error ratio / error budget per window; 1 spends the budget exactly over the period.",
        "datasource": _DATASOURCE,
        "gridPos": {"h": 8, "w": 9, "x": 9, "y": y},
        "fieldConfig": {"defaults": {"unit": "none", "min": 0}, "overrides": []},
        "targets": [
            _target(
                f"slo:sli_error:ratio_rate{window}{selector}\n"
                f"/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{selector}",
                f"burn {window}",
                chr(ord("A") + index),
            )
            for index, window in enumerate(windows)
        ],
    }
    budget = {
        "id": first_id + 2,
        "type": "stat",
        "title": f"{title}: budget remaining",
        "datasource": _DATASOURCE,
        "gridPos": {"h": 8, "w": 6, "x": 18, "y": y},
        "fieldConfig": {
            "defaults": {
                "unit": "percentunit",
                "thresholds": {
                    "mode": "absolute",
                    "steps": [
                        {"color": "red", "value": None},
                        {"color": "orange", "value": 0},
                        {"color": "green", "value": 0.25},
                    ],
                },
            },
            "overrides": [],
        },
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        "targets": [_target(f"slo:period_error_budget_remaining:ratio{selector}", "budget remaining", "A")],
    }
    return [sli, burn, budget]


# System and process figures under the names opentelemetry-exporter-prometheus gives the
# system-metrics instrumentation (unit "1" adds no suffix), one line per scraped process.
_SYSTEM_PANELS = (
    ("CPU busy", 'avg by (job, instance) (1 - system_cpu_utilization{state="idle"})', "percentunit"),
    ("Memory used", 'avg by (job, instance) (system_memory_utilization{state="used"})', "percentunit"),
    ("Process CPU", "sum by (job, instance) (process_cpu_utilization)", "percentunit"),
)


def _row(title: str, y: int, panel_id: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
        "panels": [],
    }


def _system_row(y: int, first_id: int) -> list[dict[str, Any]]:
    panels = [_row("System and process", y, first_id)]
    for index, (title, expr, unit) in enumerate(_SYSTEM_PANELS):
        panels.append(
            {
                "id": first_id + 1 + index,
                "type": "timeseries",
                "title": title,
                "datasource": _DATASOURCE,
                "gridPos": {"h": 8, "w": 8, "x": 8 * index, "y": y + 1},
                "fieldConfig": {"defaults": {"unit": unit, "min": 0}, "overrides": []},
                "targets": [_target(expr, "{{job}} {{instance}}", "A")],
            }
        )
    return panels


def _metric_rule_row(
    rules: Sequence[Any], y: int, first_id: int, min_rate_window: float
) -> list[dict[str, Any]]:
    """One panel per metric rule: the figure it compares, with its threshold as a red line."""
    from otelpipe.incidents.metric_promql import figure

    panels = [_row("Metric rules (business and system)", y, first_id)]
    for index, rule in enumerate(rules):
        threshold = rule.above if rule.above is not None else rule.below
        defaults: dict[str, Any] = {"unit": "none"}
        if threshold is not None:
            defaults["thresholds"] = {
                "mode": "absolute",
                "steps": [{"color": "transparent", "value": None}, {"color": "red", "value": threshold}],
            }
            defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
        panels.append(
            {
                "id": first_id + 1 + index,
                "type": "timeseries",
                "title": f"{rule.name}: {rule.describe()}",
                "datasource": _DATASOURCE,
                "gridPos": {"h": 8, "w": 8, "x": 8 * (index % 3), "y": y + 1 + 8 * (index // 3)},
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "targets": [
                    _target(figure(rule, min_rate_window=min_rate_window), "{{job}} {{instance}}", "A")
                ],
            }
        )
    return panels
