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


LIVE_APP = """\
import sys, time
import otelpipe
from opentelemetry import trace
from opentelemetry.trace import SpanKind
pipeline = otelpipe.configure()
tracer = trace.get_tracer("live")
deadline = time.monotonic() + 60
while pipeline.evaluation.ticks < 6 and time.monotonic() < deadline:
    with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER):
        pass
    time.sleep(0.02)
print("TICKED", pipeline.evaluation.ticks, flush=True)
sys.stdin.readline()  # stay up, unsaved shutdown not yet run, until the test has looked
pipeline.shutdown()
print("DONE", flush=True)
"""


def _live(tmp_path: Path, save_interval: str) -> tuple[dict[str, object], dict[str, object]]:
    """Saved rows while the app runs (after 6 ticks of 100 ms), then after its shutdown."""
    from otelpipe.slo.state import read_saved

    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "version: otelpipe/v1\nservice: live\nslos:\n  - {name: a, objective: 99, sli: {kind: availability}}\n"
    )
    state = tmp_path / f"state-{save_interval}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_SERVICE_NAME="live",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTELPIPE_SLO_FILE=str(spec),
        OTELPIPE_SLO_INTERVAL="100ms",
        OTELPIPE_STATE_DIR=str(state),
        OTELPIPE_STATE_SAVE_INTERVAL=save_interval,
    )
    with subprocess.Popen(
        [sys.executable, "-c", LIVE_APP],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline().startswith("TICKED 6")
            running = {k: v.status for k, v in read_saved(state).items()}
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "DONE"
        finally:
            proc.stdin.close()
            if proc.wait(timeout=60) is None:
                proc.kill()
    stopped = {k: v.status for k, v in read_saved(state).items()}
    return running, stopped


def test_state_save_interval_lets_the_cli_read_live_figures(tmp_path: Path) -> None:
    running, stopped = _live(tmp_path, "200ms")
    assert "live/a" in running  # saved while the app runs: 600 ms of ticks > 200 ms
    assert "live/a" in stopped
    # with an hour between saves nothing is written while running; shutdown still saves
    running, stopped = _live(tmp_path, "1h")
    assert running == {}
    assert "live/a" in stopped
