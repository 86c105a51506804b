"""The shipped gateway tier: RED routed by service to otelpipe gateways that keep their state dir."""

from __future__ import annotations

from pathlib import Path

import yaml

from otelpipe.config import OTEL_VARIABLES, VARIABLES_BY_NAME

ROOT = Path(__file__).resolve().parents[2]
LOADBALANCER = ROOT / "collector-config" / "loadbalancer.yaml"
GATEWAY = ROOT / "collector-config" / "kubernetes" / "otelpipe-gateway.yaml"


def _gateway_manifest() -> tuple[dict, dict]:
    items = yaml.safe_load(GATEWAY.read_text())["items"]
    service = next(i for i in items if i["kind"] == "Service")
    stateful = next(i for i in items if i["kind"] == "StatefulSet")
    return service, stateful


def test_load_balancer_routes_only_red_by_service_to_the_otelpipe_gateways():
    config = yaml.safe_load(LOADBALANCER.read_text())
    exporter = config["exporters"]["loadbalancing/slo"]
    assert exporter["routing_key"] == "service"
    slo = config["service"]["pipelines"]["metrics/slo"]
    assert slo["exporters"] == ["loadbalancing/slo"]
    assert "filter/red" in slo["processors"]
    (condition,) = config["processors"]["filter/red"]["metrics"]["metric"]
    for name in ("traces.span.metrics.calls", "traces.span.metrics.duration", "calls", "duration"):
        assert f'name == "{name}"' in condition  # kept: the filter drops everything *not* named so
    assert condition.startswith("not (")


def test_gateway_pods_are_what_the_load_balancer_resolves_and_keep_their_state_dir():
    config = yaml.safe_load(LOADBALANCER.read_text())
    service, stateful = _gateway_manifest()
    assert service["spec"]["clusterIP"] == "None"  # the dns resolver needs every pod IP
    assert config["exporters"]["loadbalancing/slo"]["resolver"]["dns"]["port"] in {
        p["port"] for p in service["spec"]["ports"]
    }
    pod = stateful["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:2] == ["otelpipe", "gateway"]
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = {c["metadata"]["name"] for c in stateful["spec"]["volumeClaimTemplates"]}
    assert env["OTELPIPE_STATE_DIR"] == mounts["state"] and "state" in claims
    assert env["OTELPIPE_SLO_FILE"].startswith(mounts["slo"])


def test_gateway_manifest_uses_only_declared_variables():
    _, stateful = _gateway_manifest()
    (container,) = stateful["spec"]["template"]["spec"]["containers"]
    standard = {name for name, _ in OTEL_VARIABLES} | {"OTEL_EXPORTER_PROMETHEUS_HOST"}
    for entry in container["env"]:
        assert entry["name"] in VARIABLES_BY_NAME or entry["name"] in standard, entry["name"]
