"""`otelpipe gateway`: one incident per service from every sender's RED, spanmetrics included."""

from __future__ import annotations

import time
import urllib.request

import pytest

from otelpipe.slo.state import read_saved

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GO_SPEC = """
version: otelpipe/v1
service: payments-go
slos:
  - name: availability
    objective: 99
    period: 1h
    sli: {kind: availability}
    alerting:
      min_events: 20
      tiers:
        - {severity: page, short: 2s, long: 6s, factor: 10}
  - name: latency
    objective: 90
    period: 1h
    sli: {kind: latency, threshold: 100ms}
rules:
  - name: errors
    service: payments-go
    window: 3s
    error_rate: {above: 20%, min_requests: 20}
"""


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def _saved_total(state) -> int | None:
    saved = read_saved(state).get("fleet/availability")
    return None if saved is None else saved.status["total"]


def _gateway_env(fleet_env, slo_file, webhook, **extra: str) -> dict[str, str]:
    settings = {"OTELPIPE_SLO_FILE": str(slo_file), "OTELPIPE_WEBHOOK_URL": webhook.url}
    return fleet_env(**{**settings, **extra})


def test_spanmetrics_connector_output_gets_an_slo_without_otelpipe_in_the_service(
    tmp_path, gateway, fleet_env, webhook, make_request, free_port
):
    spec = tmp_path / "go.yaml"
    spec.write_text(GO_SPEC)
    prometheus_port = str(free_port())
    # 3 s of hold-down: the 2-6 s windows of this spec move with wall time, and on a loaded machine a
    # late tick can dip a condition for an instant; flap suppression is what keeps that one incident
    server = gateway(
        _gateway_env(
            fleet_env,
            spec,
            webhook,
            OTEL_METRICS_EXPORTER="prometheus",
            OTEL_EXPORTER_PROMETHEUS_PORT=prometheus_port,
            OTELPIPE_INCIDENT_HOLD_DOWN="3s",
        )
    )
    started = time.time() - 3600  # two Collectors whose connector has run for an hour
    totals = {"agent-a": [50_000, 10], "agent-b": [70_000, 20]}

    def tick(ok: int, errors: int) -> None:
        for agent, counts in totals.items():
            counts[0] += ok
            counts[1] += errors
            server.post(
                make_request(
                    "payments-go",
                    instance=agent,
                    shape="spanmetrics",
                    start_s=started,
                    time_s=time.time(),
                    ok=counts[0],
                    errors=counts[1],
                )
            )

    for _ in range(8):  # steady traffic: no incident
        tick(10, 0)
        time.sleep(0.25)
    assert webhook.events() == []
    deadline = time.monotonic() + 20
    while len(webhook.events("opened")) < 2 and time.monotonic() < deadline:
        tick(10, 10)  # 50 % errors on both agents
        time.sleep(0.25)
    opened = {o["incident"]["key"]: o["incident"] for o in webhook.events("opened")}
    assert set(opened) == {"payments-go/availability", "payments-go/errors"}, webhook.bodies
    assert opened["payments-go/errors"]["kind"] == "rule"
    while len(webhook.events("resolved")) < 2 and time.monotonic() < deadline + 20:
        tick(10, 0)
        time.sleep(0.25)
    assert len(webhook.events("resolved")) == 2, webhook.bodies
    assert len(webhook.events("opened")) == 2, webhook.bodies  # one per SLO or rule, both agents together

    with urllib.request.urlopen(f"http://127.0.0.1:{prometheus_port}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    # the ms histogram became seconds: every call sat in the 10 ms bucket, so latency is 100 % good
    latency = [
        line
        for line in exposition.splitlines()
        if line.startswith("otelpipe_slo_sli") and 'slo="latency"' in line and 'window="1h"' in line
    ]
    assert latency and float(latency[0].rsplit(" ", 1)[1]) == 1.0, exposition
    senders = [line for line in exposition.splitlines() if line.startswith("otelpipe_gateway_senders")]
    assert senders and float(senders[0].rsplit(" ", 1)[1]) == 2.0, exposition  # the two agents


def test_gateway_without_an_slo_file_says_which_variable_and_exits(fleet_env):
    import subprocess
    import sys
    from pathlib import Path

    otelpipe = str(Path(sys.executable).with_name("otelpipe"))
    done = subprocess.run(
        [otelpipe, "gateway", "--grpc-port", "0", "--http-port", "0"],
        env=fleet_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "OTELPIPE_SLO_FILE" in done.stderr and "SLO spec" in done.stderr, done.stderr


def test_two_pods_of_one_service_sending_to_one_gateway_make_one_incident(
    tmp_path, gateway, app_process, fleet_env, slo_file, webhook, send
):
    state = tmp_path / "gateway-state"
    server = gateway(
        _gateway_env(fleet_env, slo_file, webhook, OTELPIPE_STATE_DIR=str(state), OTELPIPE_STATE_SAVE_INTERVAL="200ms")
    )
    pod_env = fleet_env(
        OTEL_SERVICE_NAME="fleet",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=server.grpc_endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="300",
        OTELPIPE_SLO_EVALUATION="gateway",  # the pods do not evaluate, even with an SLO file and a webhook
        OTELPIPE_SLO_FILE=str(slo_file),
        OTELPIPE_WEBHOOK_URL=webhook.url,
    )
    pods = [app_process(pod_env), app_process(pod_env)]
    for pod in pods:
        send(pod.base + "/ok", 40)
    for pod in pods:
        send(pod.base + "/fail", 40)
    assert _wait(lambda: webhook.events("resolved"), timeout=30), (webhook.bodies, "".join(server.lines))
    time.sleep(1.0)
    events = webhook.events()
    assert len(webhook.events("opened")) == 1 and len(webhook.events("resolved")) == 1, events
    assert {e["incident"]["id"] for e in events} == {events[0]["incident"]["id"]}  # "updated" as burn grew
    for pod in pods:
        pod.stop()
    # The gateway ticks over the pods' last exports (its windows are saved every 200 ms).
    assert _wait(lambda: _saved_total(state) == 160, timeout=30), read_saved(state)
    assert server.stop() == 0, "".join(server.lines)
    saved = read_saved(state)["fleet/availability"]
    assert saved.status["total"] == 160, saved.status
    assert saved.status["good"] == 80, saved.status


def test_a_gateway_restart_loses_no_budget_and_reads_no_burst(
    tmp_path, gateway, fleet_env, slo_file, webhook, make_request
):
    state = tmp_path / "gateway-state"
    env = _gateway_env(fleet_env, slo_file, webhook, OTELPIPE_STATE_DIR=str(state), OTELPIPE_STATE_SAVE_INTERVAL="200ms")
    started = time.time() - 600  # the app has run for ten minutes before the gateway
    ok = 1_000_000

    def feed(server, rounds: int) -> int:
        nonlocal ok
        counted = 0
        for index in range(rounds):
            ok += 25
            counted += 25 if index else 0  # the first point after a (re)start is the baseline
            server.post(make_request("fleet", instance="pod-1", start_s=started, time_s=time.time(), ok=ok))
            time.sleep(0.1)
        return counted

    first = gateway(env)
    before = feed(first, 10)
    assert _wait(lambda: _saved_total(state) == before, timeout=30), read_saved(state)  # ticked over the last point
    assert first.stop() == 0, "".join(first.lines)
    assert read_saved(state)["fleet/availability"].status["total"] == before

    assert (state / "gateway-streams.json").is_file()
    second = gateway(env)  # same state dir: windows and stream positions come back
    after = feed(second, 10) + 25  # the first point continues the saved position: no gap
    assert _wait(lambda: _saved_total(state) == before + after, timeout=30), read_saved(state)
    assert second.stop() == 0, "".join(second.lines)
    assert read_saved(state)["fleet/availability"].status["total"] == before + after
    assert webhook.events() == [], webhook.bodies
