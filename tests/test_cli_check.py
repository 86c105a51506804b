"""`otelpipe check` on a good and a bad environment, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _check(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(env_extra, COLUMNS="200")
    exe = str(Path(sys.executable).with_name("otelpipe"))
    return subprocess.run([exe, "check"], check=False, env=env, capture_output=True, text=True, timeout=60)


def test_check_good_environment():
    result = _check({"OTELPIPE_RED_CARDINALITY_LIMIT": "500", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cr3t"})
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
    line = next(row for row in result.stdout.splitlines() if "OTELPIPE_RED_CARDINALITY_LIMIT" in row)
    assert "500" in line and "env" in line
    assert "s3cr3t" not in result.stdout


def test_check_bad_environment_lists_every_error_and_fails():
    result = _check(
        {
            "OTELPIPE_RED_BUCKETS": "1,0.5",
            "OTELPIPE_SLO_INTERVAL": "soon",
            "OTELPIPE_PAGERDUTY_ROUTING_KEY": "",
        }
    )
    assert result.returncode == 1
    assert "OTELPIPE_RED_BUCKETS='1,0.5' is invalid" in result.stderr
    assert "OTELPIPE_SLO_INTERVAL='soon' is invalid: expected a duration" in result.stderr
    assert "2 configuration error(s)" in result.stderr


def test_check_reads_the_slo_file_and_lists_every_problem(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "version: otelpipe/v1\nservice: shop\nslos:\n"
        "  - {name: ok, objective: 99.9, sli: {kind: availability}}\n"
        "  - {name: slow, objective: 99, sli: {kind: latency, threshold: 300ms}}\n"
        "rules:\n  - {name: bad, servce: shop, error_rate: {above: 5%}}\n"
    )
    result = _check({"OTELPIPE_SLO_FILE": str(spec), "OTELPIPE_SLO_INTERVAL": "5m"})
    assert result.returncode == 1
    assert "slos[1].sli.threshold: got '0.3s'" in result.stderr
    assert "rules[0].servce: got 'servce'" in result.stderr
    assert "2 configuration error(s)" in result.stderr
    assert "1 SLO(s) and 0 rule(s) will run" in result.stdout
    line = next(row for row in result.stdout.splitlines() if "OTELPIPE_SLO_INTERVAL" in row)
    assert "5m" in line and "300" not in line  # durations with units
    spec.write_text(
        "version: otelpipe/v1\nservice: shop\nslos:\n  - {name: ok, objective: 99.9, sli: {kind: availability}}\n"
    )
    result = _check({"OTELPIPE_SLO_FILE": str(spec)})
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
