"""Prefork: `opentelemetry-instrument gunicorn -w 4` gives one incident per service and host.

The gunicorn master (which ran configure()) evaluates; the workers push their RED to it. One
error burst served by several workers opens and resolves exactly one incident, and the SLO's
counts equal every request sent to every worker.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from otelpipe.slo.state import read_saved

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_one_burst_under_four_workers_is_one_incident_counting_all_requests(
    tmp_path, gunicorn, fleet_env, slo_file, webhook, send
):
    state = tmp_path / "state"
    env = fleet_env(
        OTEL_SERVICE_NAME="fleet",
        OTELPIPE_SLO_FILE=str(slo_file),
        OTELPIPE_WEBHOOK_URL=webhook.url,
        OTELPIPE_PREFORK_PUSH_INTERVAL="300ms",
        OTELPIPE_STATE_DIR=str(state),
    )
    server = gunicorn(env, workers=4)
    ok_pids = send(server.base + "/ok", 80)
    failed_pids = send(server.base + "/fail", 80)
    assert len(set(failed_pids)) >= 2, f"the burst did not spread over workers: {set(failed_pids)}"

    assert _wait(lambda: webhook.events("resolved"), timeout=30), (webhook.bodies, "".join(server.lines))
    time.sleep(1.5)  # room for a duplicate from a second evaluator, were there one
    opened, resolved = webhook.events("opened"), webhook.events("resolved")
    assert len(opened) == 1, opened
    assert len(resolved) == 1, resolved
    assert opened[0]["incident"]["key"] == resolved[0]["incident"]["key"] == "fleet/availability"
    assert opened[0]["incident"]["id"] == resolved[0]["incident"]["id"]
    traces = opened[0]["incident"]["traces"]  # exemplars travel with the workers' pushes
    assert traces and all(t["error"] and len(t["trace_id"]) == 32 for t in traces), opened[0]

    server.stop()
    assert server.proc.returncode == 0, "".join(server.lines)
    saved = read_saved(state).get("fleet/availability")
    assert saved is not None, (sorted(p.name for p in state.rglob("*")), "".join(line for line in server.lines if "INFO" not in line)[-5000:])
    assert saved.status["total"] == len(ok_pids) + len(failed_pids) == 160
    assert saved.status["good"] == 80


def test_a_killed_and_respawned_worker_is_no_false_burst(gunicorn, fleet_env, slo_file, webhook, send):
    env = fleet_env(
        OTEL_SERVICE_NAME="fleet",
        OTELPIPE_SLO_FILE=str(slo_file),
        OTELPIPE_WEBHOOK_URL=webhook.url,
        OTELPIPE_PREFORK_PUSH_INTERVAL="300ms",
    )
    server = gunicorn(env, workers=3)
    first = set(send(server.base + "/ok", 90))
    time.sleep(1.0)  # every worker has pushed its cumulative counts at least once
    victim = min(first)
    os.kill(victim, signal.SIGKILL)  # a crash: gunicorn respawns it, its counts restart at zero
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    while not (seen - first) and time.monotonic() < deadline:
        seen |= set(send(server.base + "/ok", 30))
    assert seen - first, f"no respawned worker served a request: {seen} vs {first}"
    time.sleep(3.0)  # several ticks over the respawned worker's new stream
    assert webhook.events() == [], webhook.bodies


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("host", {"evaluating": True, "total": 30}),  # both children's spans, counted once, in the parent
        ("process", {"evaluating": True, "total": 0}),  # each child evaluated its own
        ("gateway", {"evaluating": False, "total": None}),  # nobody here evaluates
    ],
)
def test_slo_evaluation_setting_decides_who_evaluates_forked_children(tmp_path, fleet_env, slo_file, mode, expected):
    import json
    import subprocess
    import sys
    from pathlib import Path

    env = fleet_env(
        OTEL_SERVICE_NAME="fleet",
        OTELPIPE_SLO_FILE=str(slo_file),
        OTELPIPE_SLO_EVALUATION=mode,
        OTELPIPE_PREFORK_PUSH_INTERVAL="200ms",
    )
    script = Path(__file__).with_name("fork_app.py")
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected, done.stderr
