"""Grafana dashboard generation."""

import json
from pathlib import Path

from otelpipe.incidents.metric_rules import load_metric_rules
from otelpipe.slo.dashboard import generate_dashboard
from otelpipe.slo.spec import load_spec

ROOT = Path(__file__).parents[2]
DEMO = ROOT / "otelpipe" / "demo" / "slo.yaml"


def test_checked_in_dashboard_equals_generator_output() -> None:
    assert (ROOT / "collector-config" / "grafana" / "slo-dashboard.json").read_text() == generate_dashboard(
        load_spec(DEMO), metric_rules=load_metric_rules(DEMO)
    ), (
        "regenerate: otelpipe slo dashboard otelpipe/demo/slo.yaml -o collector-config/grafana/slo-dashboard.json"
    )


def test_dashboard_has_sli_burn_and_budget_per_slo() -> None:
    doc = json.loads(generate_dashboard(load_spec(DEMO)))
    titles = [p["title"] for p in doc["panels"]]
    assert len(titles) == 9 + 4  # three per SLO, then the system row (a row and three panels)
    assert [t.split(": ")[-1] for t in titles[:3]] == ["SLI", "burn rate", "budget remaining"]
    assert len({p["id"] for p in doc["panels"]}) == len(titles)
    exprs = "\n".join(t["expr"] for p in doc["panels"] for t in p.get("targets", ()))
    assert "slo:period_error_budget_remaining:ratio" in exprs and "slo:sli_error:ratio_rate1h" in exprs
