"""`check_slo_file`: every problem of an SLO file at once; the valid SLOs and rules kept, in both spec forms."""

from __future__ import annotations

from pathlib import Path

from otelpipe.slo.check import check_slo_file
from otelpipe.slo.spec import SLOSpecError, parse_spec

OPENSLO = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: good}
spec:
  service: shop
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  objectives: [{targetPercent: 99.5}]
  indicator:
    metadata: {name: good-sli}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: otelpipe, spec: {errors: false}}}
        total: {metricSource: {type: otelpipe, spec: {}}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: bad}
spec:
  service: shop
  budgetingMethod: Timeslices
  timeWindow: [{duration: 30d, isRolling: true}]
  objectives: [{targetPercent: 99.5}]
  indicator:
    metadata: {name: bad-sli}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: otelpipe, spec: {errors: false}}}
        total: {metricSource: {type: otelpipe, spec: {}}}
"""


def test_openslo_bad_slo_is_reported_and_the_good_one_kept(tmp_path: Path) -> None:
    path = tmp_path / "openslo.yaml"
    path.write_text(OPENSLO)
    checked = check_slo_file(path, boundaries=(0.1, 0.5))
    assert [s.key for s in checked.spec.slos] == ["shop/good"]
    assert len(checked.errors) == 1 and "documents[1]" in checked.errors[0]
    assert "budgetingMethod: Occurrences" in checked.errors[0]


def test_without_an_error_list_the_first_problem_still_raises() -> None:
    text = (
        "version: otelpipe/v1\nservice: s\nslos:\n  - {name: a, objective: 150, sli: {kind: availability}}\n"
    )
    try:
        parse_spec(text)
    except SLOSpecError as exc:
        assert "slos[0].objective: got 150" in str(exc)
    else:
        raise AssertionError("an invalid objective must raise")
    errors: list[SLOSpecError] = []
    assert parse_spec(text, errors=errors).slos == ()
    assert len(errors) == 1


def test_unreadable_file_is_one_problem_and_nothing_runs(tmp_path: Path) -> None:
    checked = check_slo_file(tmp_path / "missing.yaml", boundaries=(0.1,))
    assert not checked.usable and len(checked.errors) == 1 and "a readable file" in checked.errors[0]
    broken = tmp_path / "broken.yaml"
    broken.write_text("slos: [\n")
    checked = check_slo_file(broken, boundaries=(0.1,))
    assert not checked.usable and "valid YAML" in checked.errors[0]
