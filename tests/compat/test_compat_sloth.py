"""Generated alerts against Sloth's own output (sloth/getting-started.gen.yml, copied unchanged).

Sloth's getting-started spec has an `alerting` block (name, labels, annotations, page_alert,
ticket_alert). The same block, as written there, in otelpipe's native spec must give alerts with
Sloth's names, labels, annotations, window pairs and `max(...) without (sloth_window)` form.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from otelpipe.slo.identity import identity_labels
from otelpipe.slo.prometheus_rules import generate_rules
from otelpipe.slo.spec import SLOSpecError, parse_spec

HERE = Path(__file__).parent / "sloth"


def _alerts(text: str) -> list[dict[str, Any]]:
    groups = yaml.safe_load(text)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _native_with_sloth_alerting(**alerting_changes: Any) -> str:
    sloth = yaml.safe_load((HERE / "getting-started.yml").read_text(encoding="utf-8"))
    slo = sloth["slos"][0]
    alerting = {**slo["alerting"], **alerting_changes}
    native = {
        "version": "otelpipe/v1",
        "service": sloth["service"],
        "labels": sloth["labels"],
        "slos": [
            {
                "name": slo["name"],
                "objective": slo["objective"],
                "sli": {"kind": "availability"},
                "alerting": alerting,
            }
        ],
    }
    return yaml.safe_dump(native)


def _window_pairs(expr: str) -> list[tuple[str, str]]:
    windows = re.findall(
        r"max\(slo:sli_error:ratio_rate(\w+)\{[^}]*\} > [^)]*\)\) without \(sloth_window\)", expr
    )
    return list(zip(windows[::2], windows[1::2], strict=True))


def test_alerts_match_sloths_generated_alerts() -> None:
    ours = _alerts(generate_rules(parse_spec(_native_with_sloth_alerting())))
    theirs = _alerts((HERE / "getting-started.gen.yml").read_text(encoding="utf-8"))
    assert len(ours) == len(theirs) == 2
    for mine, sloth in zip(ours, theirs, strict=True):
        assert mine["alert"] == sloth["alert"] == "MyServiceHighErrorRate"
        assert mine["labels"] == sloth["labels"]
        assert mine["annotations"]["summary"] == sloth["annotations"]["summary"]
        assert mine["annotations"]["title"].split() == sloth["annotations"]["title"].split()
        assert _window_pairs(mine["expr"]) == _window_pairs(sloth["expr"])
        assert "sloth_window" not in mine["labels"]


def test_disabled_ticket_alert_is_left_out_on_both_paths() -> None:
    spec = parse_spec(_native_with_sloth_alerting(ticket_alert={"disable": True}))
    (page,) = _alerts(generate_rules(spec))
    assert page["labels"]["sloth_severity"] == "page"
    assert {tier.severity for tier in spec.slos[0].tiers} == {"page"}  # the evaluator has no ticket tier


def test_in_process_identity_equals_the_generated_alerts_labels() -> None:
    spec = parse_spec(_native_with_sloth_alerting())
    slo = spec.slos[0]
    for alert in _alerts(generate_rules(spec)):
        severity = alert["labels"]["sloth_severity"]
        in_process = identity_labels(slo, severity)
        # the generated alert's labels plus what the recording series carry (SLO labels, sloth_*)
        expected = {
            **slo.labels,
            **alert["labels"],
            "sloth_id": "myservice-requests-availability",
            "sloth_service": "myservice",
            "sloth_slo": "requests-availability",
        }
        assert in_process == expected


def test_tier_for_becomes_the_rules_for() -> None:
    spec = parse_spec(
        "version: otelpipe/v1\nservice: s\nslos:\n  - name: a\n    objective: 99\n    sli: {kind: availability}\n"
        "    alerting:\n      tiers:\n        - {severity: page, short: 5m, long: 1h, factor: 14.4, for: 2m}\n"
    )
    (page,) = _alerts(generate_rules(spec))
    assert page["for"] == "2m"


def test_bad_alert_name_is_refused() -> None:
    with pytest.raises(SLOSpecError, match=r"alerting\.name"):
        parse_spec(_native_with_sloth_alerting(name="not a name"))
