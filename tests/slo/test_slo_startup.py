"""Start-up with a partly broken SLO file, through `otelpipe.configure()`: bad parts skipped, the rest run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SPEC = """\
version: otelpipe/v1
service: shop
slos:
  - {name: ok, objective: 99%, sli: {kind: availability}}
  - {name: slow, objective: 99, sli: {kind: latency, threshold: 300ms}}
rules:
  - {name: errors, service: shop, error_rate: {above: 5%}}
  - {name: bad, servce: shop, error_rate: {above: 5%}}
"""

APP = """\
import otelpipe
pipeline = otelpipe.configure()
print("SLOS", [s.key for s in pipeline.slo_evaluator.spec.slos])
print("RULES", [r.key for r in pipeline.evaluation.evaluation.rules.rules])
print("ERRORS", len([e for e in pipeline.config_errors if e.variable == "OTELPIPE_SLO_FILE"]))
pipeline.shutdown()
"""


def _run(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "slo.yaml"
    spec.write_text(SPEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTELPIPE_SLO_FILE=str(spec),
        **extra,
    )
    return subprocess.run(
        [sys.executable, "-c", APP],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_slo_and_rule_are_reported_and_skipped_the_rest_run(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SLOS ['shop/ok']" in result.stdout
    assert "RULES ['shop/errors']" in result.stdout
    assert "ERRORS 2" in result.stdout
    assert "slos[1].sli.threshold: got '0.3s'" in result.stderr
    assert "rules[1].servce" in result.stderr
    assert "the other SLOs and rules run" in result.stderr
    assert "SLO evaluation is off" not in result.stderr


def test_strict_mode_makes_any_problem_fatal_and_names_them_all(tmp_path: Path) -> None:
    result = _run(tmp_path, OTELPIPE_STRICT="true")
    assert result.returncode != 0
    assert "SLOS" not in result.stdout
    assert "OTELPIPE_SLO_FILE=" in result.stderr and "2 problem(s)" in result.stderr
    assert "slos[1].sli.threshold" in result.stderr and "rules[1].servce" in result.stderr
