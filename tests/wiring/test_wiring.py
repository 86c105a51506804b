"""Every setting reaches the component it configures: env -> `otelpipe.configure()` -> observed behaviour.

Each case runs tests/wiring/probe.py in a fresh interpreter with one configuration and asserts on
what the built pipeline does (RED series, masked output, notifiers), so swapping two settings,
dropping one while building `Settings`, or ignoring one in the pipeline fails a test here.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).with_name("probe.py")
DEMO_SLO = Path(__file__).resolve().parents[2] / "otelpipe" / "demo" / "slo.yaml"


def probe(env: dict[str, str], *scenarios: str) -> tuple[dict[str, Any], str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    base.update(
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="wiring",
        OTELPIPE_SHUTDOWN_TIMEOUT="2s",
    )
    base.update(env)
    proc = subprocess.run(
        [sys.executable, str(PROBE), *scenarios],
        check=False,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("PROBE "))
    return json.loads(line[len("PROBE ") :]), proc.stdout + proc.stderr


def _server_series(red: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in red["series"] if s["attributes"]["span.kind"] == "SPAN_KIND_SERVER")


def test_red_dimensions_and_exclusions_reach_the_store() -> None:
    out, _ = probe(
        {"OTELPIPE_RED_DIMENSIONS": "user.tier", "OTELPIPE_RED_EXCLUDE_DIMENSIONS": "http.request.method"},
        "red",
    )
    servers = [s for s in out["red"]["series"] if s["attributes"]["span.kind"] == "SPAN_KIND_SERVER"]
    assert sorted(s["attributes"]["user.tier"] for s in servers) == ["bronze", "gold", "silver"]
    assert all("http.request.method" not in s["attributes"] for s in servers)


def test_red_span_kinds_select_what_is_counted() -> None:
    out, _ = probe({"OTELPIPE_RED_SPAN_KINDS": "internal"}, "red")
    kinds = {s["attributes"]["span.kind"] for s in out["red"]["series"]}
    assert kinds == {"SPAN_KIND_INTERNAL"}


def test_red_cardinality_limit_folds_into_overflow() -> None:
    out, _ = probe({"OTELPIPE_RED_DIMENSIONS": "user.tier", "OTELPIPE_RED_CARDINALITY_LIMIT": "2"}, "red")
    assert out["red"]["overflow_spans"] >= 1
    assert any(s["attributes"].get("otel.metric.overflow") == "True" for s in out["red"]["series"])


def test_red_exemplars_and_service_graph_switch_off() -> None:
    on, _ = probe({}, "red")
    assert any(s["exemplars"] for s in on["red"]["series"])
    assert on["red"]["edges"] >= 1
    off, _ = probe(
        {"OTELPIPE_RED_EXEMPLARS_ENABLED": "false", "OTELPIPE_SERVICE_GRAPH_ENABLED": "false"}, "red"
    )
    assert not any(s["exemplars"] for s in off["red"]["series"])
    assert off["red"]["edges"] == 0


def test_red_buckets_reach_the_store() -> None:
    default, _ = probe({}, "red")
    custom, _ = probe({"OTELPIPE_RED_BUCKETS": "0.1,1"}, "red")
    assert len(custom["red"]["boundaries"]) == 2
    assert custom["red"]["boundaries"] != default["red"]["boundaries"]


def test_redaction_keys_and_patterns_reach_spans_and_logs() -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "console",  # spans are masked on their way out
        "OTELPIPE_LOG_FORMAT": "json",
        "OTELPIPE_REDACT_KEYS": "customfield",
        "OTELPIPE_REDACT_PATTERNS": r"ORDER-\d+",
    }
    out, output = probe(env, "redaction")
    attrs = out["redaction"]["span_attributes"]
    assert attrs["customfield"] != "visible-value"
    assert "ORDER-12345" not in attrs["note"]
    assert "visible-value" not in output
    assert "ORDER-777" not in output


def test_redaction_off_leaves_values_alone() -> None:
    env = {
        "OTELPIPE_REDACT_ENABLED": "false",
        "OTELPIPE_REDACT_KEYS": "customfield",
        "OTELPIPE_LOG_FORMAT": "json",
    }
    out, output = probe(env, "redaction")
    assert out["redaction"]["span_attributes"]["customfield"] == "visible-value"
    assert "visible-value" in output


def test_incident_settings_reach_engine_and_notifiers() -> None:
    env = {
        "OTELPIPE_SLO_FILE": str(DEMO_SLO),
        "OTELPIPE_WEBHOOK_URL": "http://127.0.0.1:9/hook",
        "OTELPIPE_WEBHOOK_FORMAT": "slack",
        "OTELPIPE_NOTIFY_QUEUE_SIZE": "7",
        "OTELPIPE_NOTIFY_TIMEOUT": "3s",
        "OTELPIPE_INCIDENT_HOLD_DOWN": "42s",
        "OTELPIPE_TRACE_URL_TEMPLATE": "http://traces.example/{trace_id}",
        "OTELPIPE_ALERTMANAGER_URL": "http://127.0.0.1:9",  # every notifier, so each one's options are checked
        "OTELPIPE_PAGERDUTY_ROUTING_KEY": "wiring-key",
        "OTELPIPE_CONSOLE_NOTIFIER": "true",
    }
    out, _ = probe(env, "incidents")
    incidents = out["incidents"]
    assert incidents["evaluation"] is True
    assert incidents["trace_url_template"] == "http://traces.example/{trace_id}"
    assert incidents["hold_down_s"] == 42.0
    webhook = next(n for n in incidents["notifiers"] if n["type"] == "WebhookNotifier")
    assert webhook["format"] == "slack"
    assert webhook["url"] == "http://127.0.0.1:9/hook"
    assert len(incidents["notifiers"]) == 5
    # every notifier that sends over the network counts its outcomes on the app's meter
    assert all(n["counted"] for n in incidents["notifiers"] if n["type"] != "ConsoleNotifier")
    assert all(n["queue_size"] == 7 and n["timeout_s"] == 3.0 for n in incidents["notifiers"])


@pytest.mark.parametrize("variable", ["OTELPIPE_ENABLED", "OTELPIPE_RED_ENABLED"])
def test_switches_turn_red_off(variable: str) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    base.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    base[variable] = "false"
    code = "import otelpipe; p = otelpipe.configure(); print('STORE', p.red_store is None); p.shutdown()"
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, env=base, capture_output=True, text=True, timeout=120
    )
    assert "STORE True" in proc.stdout, proc.stderr[-2000:]


def test_every_notifier_and_evaluation_setting_reaches_its_component(tmp_path: Path) -> None:
    env = {
        "OTELPIPE_SLO_FILE": str(DEMO_SLO),
        "OTELPIPE_ALERTMANAGER_URL": "http://127.0.0.1:9",
        "OTELPIPE_PAGERDUTY_ROUTING_KEY": "wiring-key",
        "OTELPIPE_PAGERDUTY_URL": "http://127.0.0.1:9/pd",
        "OTELPIPE_CONSOLE_NOTIFIER_ENABLED": "true",
        "OTELPIPE_INCIDENT_RENOTIFY": "2h",
        "OTELPIPE_SLO_INTERVAL": "3s",
        "OTELPIPE_SLO_TIME_SCALE": "60",
        "OTELPIPE_STATE_SAVE_INTERVAL": "7s",
        "OTELPIPE_STATE_DIR": str(tmp_path),
        "OTELPIPE_SLO_EVALUATION": "process",
    }
    out, _ = probe(env, "incidents")
    incidents = out["incidents"]
    urls = {n["type"]: n["url"] for n in incidents["notifiers"]}
    assert urls["AlertmanagerNotifier"] == "http://127.0.0.1:9/api/v2/alerts"
    assert urls["PagerDutyNotifier"] == "http://127.0.0.1:9/pd"
    assert "ConsoleNotifier" in urls
    assert incidents["renotify_s"] == 7200.0
    assert incidents["interval_s"] == 3.0
    assert incidents["time_scale"] == 60.0
    assert incidents["save_interval_s"] == 7.0
    assert incidents["persistent_windows"] and incidents["persistent_incidents"]
    assert not incidents["prefork"] and incidents["rebuilds_after_fork"]  # process: each worker alone


def test_evaluation_defaults_build_no_extra_notifier_and_evaluate_per_host() -> None:
    out, _ = probe({"OTELPIPE_SLO_FILE": str(DEMO_SLO)}, "incidents")
    incidents = out["incidents"]
    assert [n["type"] for n in incidents["notifiers"]] == ["OTLPEventNotifier"]
    assert not incidents["persistent_windows"] and not incidents["persistent_incidents"]
    assert incidents["prefork"] and not incidents["rebuilds_after_fork"]  # host: workers push to the parent


def test_gateway_evaluation_starts_no_evaluator() -> None:
    out, _ = probe({"OTELPIPE_SLO_FILE": str(DEMO_SLO), "OTELPIPE_SLO_EVALUATION": "gateway"}, "incidents")
    assert out["incidents"] == {"evaluation": False}


def test_record_unsampled_keeps_red_exact_under_a_dropping_sampler() -> None:
    kept, _ = probe({"OTEL_TRACES_SAMPLER": "always_off"}, "red")
    assert sum(s["calls"] for s in kept["red"]["series"]) >= 4
    dropped, _ = probe(
        {"OTEL_TRACES_SAMPLER": "always_off", "OTELPIPE_RED_RECORD_UNSAMPLED_ENABLED": "false"}, "red"
    )
    assert dropped["red"]["series"] == []


def test_log_correlation_access_log_and_system_metrics_switches() -> None:
    on, _ = probe({}, "logs")
    assert len(on["logs"]["trace_id"]) == 32
    assert on["logs"]["request_hook"] == "flask_request_hook"
    assert on["logs"]["system_metrics"] is True
    off, _ = probe(
        {
            "OTELPIPE_LOG_CORRELATION_ENABLED": "false",
            "OTELPIPE_ACCESS_LOG_ENABLED": "true",
            "OTELPIPE_SYSTEM_METRICS_ENABLED": "false",
        },
        "logs",
    )
    assert off["logs"]["trace_id"] == ""
    assert off["logs"]["request_hook"] == "request_hook"  # wraps the access log's hook
    assert off["logs"]["system_metrics"] is False


@pytest.mark.parametrize(
    ("variable", "value", "notifier"),
    [
        ("OTELPIPE_ALERTMANAGER_URL", "http://127.0.0.1:9", "AlertmanagerNotifier"),
        ("OTELPIPE_PAGERDUTY_ROUTING_KEY", "wiring-key", "PagerDutyNotifier"),
        ("OTELPIPE_WEBHOOK_URL", "http://127.0.0.1:9/hook", "WebhookNotifier"),
        ("OTELPIPE_CONSOLE_NOTIFIER_ENABLED", "true", "ConsoleNotifier"),
    ],
)
def test_each_notifier_variable_adds_its_own_notifier(variable: str, value: str, notifier: str) -> None:
    out, _ = probe({"OTELPIPE_SLO_FILE": str(DEMO_SLO), variable: value}, "incidents")
    assert sorted(n["type"] for n in out["incidents"]["notifiers"]) == sorted([notifier, "OTLPEventNotifier"])


def test_exemplars_and_service_graph_switch_off_independently() -> None:
    no_exemplars, _ = probe({"OTELPIPE_RED_EXEMPLARS_ENABLED": "false"}, "red")
    assert not any(s["exemplars"] for s in no_exemplars["red"]["series"])
    assert no_exemplars["red"]["edges"] >= 1
    no_graph, _ = probe({"OTELPIPE_SERVICE_GRAPH_ENABLED": "false"}, "red")
    assert any(s["exemplars"] for s in no_graph["red"]["series"])
    assert no_graph["red"]["edges"] == 0


@pytest.mark.parametrize("unit", ["s", "ms"])
def test_red_unit_reaches_the_exported_duration_histogram(unit: str) -> None:
    env = {
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        "OTELPIPE_RED_UNIT": unit,
    }
    _, output = probe(env, "red")  # the console exporter prints the metrics once, at shutdown
    duration = re.search(
        r'"name": "traces\.span\.metrics\.duration",\s*"description": "[^"]*",\s*"unit": "(\w+)"', output
    )
    assert duration is not None, output[-2000:]
    assert duration[1] == unit


def test_strict_decides_whether_a_bad_slo_stops_start_up(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    bad = "  - name: broken\n    objective: 150\n    period: 30d\n    sli: {kind: availability}\n"
    spec.write_text(DEMO_SLO.read_text().replace("slos:\n", "slos:\n" + bad, 1))
    lenient, _ = probe({"OTELPIPE_SLO_FILE": str(spec)}, "incidents")
    assert lenient["incidents"]["evaluation"] is True  # the bad SLO is skipped, the others run
    # system metrics off: strict must be what stops start-up, not another switch that happens to be on
    strict = {
        "OTELPIPE_SLO_FILE": str(spec),
        "OTELPIPE_STRICT": "true",
        "OTELPIPE_SYSTEM_METRICS_ENABLED": "false",
    }
    with pytest.raises(AssertionError, match="OTELPIPE_SLO_FILE"):
        probe(strict, "incidents")


def test_push_interval_and_stale_after_reach_the_host_evaluator() -> None:
    env = {"OTELPIPE_SLO_FILE": str(DEMO_SLO), "OTELPIPE_PREFORK_PUSH_INTERVAL": "2s"}
    out, _ = probe({**env, "OTELPIPE_STREAM_STALE_AFTER": "45s"}, "prefork")
    assert out["prefork"]["stale_after_s"] == 40.0  # 20 push intervals, under the stale-after bound
    out, _ = probe(
        {**env, "OTELPIPE_STREAM_STALE_AFTER": "35s", "OTELPIPE_PREFORK_PUSH_INTERVAL": "10s"}, "prefork"
    )
    assert out["prefork"]["stale_after_s"] == 35.0


def test_cardinality_limit_bounds_the_host_evaluators_merge() -> None:
    out, _ = probe({"OTELPIPE_SLO_FILE": str(DEMO_SLO), "OTELPIPE_RED_CARDINALITY_LIMIT": "77"}, "prefork")
    assert out["prefork"]["series_limit"] == 77


def test_stdlib_logs_are_bridged_only_when_otelpipe_is_enabled() -> None:
    on, _ = probe({"OTEL_LOGS_EXPORTER": "console"}, "logs")
    assert on["logs"]["logs_bridged"] is True
    off, _ = probe({"OTEL_LOGS_EXPORTER": "console", "OTELPIPE_ENABLED": "false"}, "logs")
    assert off["logs"]["logs_bridged"] is False


def test_the_instrument_route_leaves_log_bridge_and_system_metrics_to_its_instrumentors() -> None:
    out, _ = probe(
        {"OTEL_LOGS_EXPORTER": "console", "WIRING_PROBE_ROUTE": "opentelemetry-instrument"}, "logs"
    )
    assert out["logs"]["logs_bridged"] is False  # opentelemetry-instrument's logging instrumentor bridges
    assert out["logs"]["system_metrics"] is False  # and its system-metrics entry point records them


def test_unusable_state_dir_stops_start_up_only_in_strict_mode(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    env = {"OTELPIPE_SLO_FILE": str(DEMO_SLO), "OTELPIPE_STATE_DIR": str(not_a_dir)}
    lenient, _ = probe(env, "incidents")
    assert lenient["incidents"]["evaluation"] is True
    assert not lenient["incidents"]["persistent_windows"]  # kept in memory instead
    with pytest.raises(AssertionError, match="OTELPIPE_STATE_DIR"):
        probe({**env, "OTELPIPE_STRICT": "true", "OTELPIPE_SYSTEM_METRICS_ENABLED": "false"}, "incidents")


def test_redaction_reaches_otlp_log_records() -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "console",  # spans are masked on their way out
        "OTEL_LOGS_EXPORTER": "console",
        "OTELPIPE_REDACT_KEYS": "customfield",
        "OTELPIPE_REDACT_PATTERNS": r"ORDER-\d+",
    }
    _, output = probe(env, "redaction")  # the console exporter prints each OTLP log record
    assert '"body": "customfield=' in output  # the record was exported
    assert "visible-value" not in output
    assert "ORDER-777" not in output


def test_threshold_and_metric_rules_of_the_slo_file_are_evaluated() -> None:
    out, _ = probe({"OTELPIPE_SLO_FILE": str(DEMO_SLO)}, "incidents")  # the demo has both kinds
    assert out["incidents"]["threshold_rules"] is True
    assert out["incidents"]["metric_rules"] is True
    assert out["incidents"]["metric_reader"] is True  # collected on the rule tick


def test_shutdown_runs_once_though_the_app_and_atexit_both_call_it() -> None:
    # the probe shuts the pipeline down, then configure()'s atexit hook calls shutdown() again: a
    # second run would shut the SDK's providers down twice (the SDK warns on stderr, with no handler)
    _, output = probe({}, "red")
    assert "can only be called once" not in output


def test_settings_parsed_from_an_apps_own_mapping_reach_the_pipeline() -> None:
    # Settings.from_env(mapping) -> configure(settings): the process environment says nothing
    env = {
        "WIRING_PROBE_ROUTE": "settings-in-code",
        "WIRING_PROBE_SETTINGS": json.dumps({"OTELPIPE_RED_SPAN_KINDS": "internal"}),
    }
    out, _ = probe(env, "red")
    assert {s["attributes"]["span.kind"] for s in out["red"]["series"]} == {"SPAN_KIND_INTERNAL"}


def test_a_forked_worker_evaluates_in_memory_with_per_process_evaluation(tmp_path: Path) -> None:
    # SQLite handles do not survive fork(): the parent keeps its state files, each worker evaluates
    # in memory (OTELPIPE_SLO_EVALUATION=process)
    env = {
        "OTELPIPE_SLO_FILE": str(DEMO_SLO),
        "OTELPIPE_SLO_EVALUATION": "process",
        "OTELPIPE_STATE_DIR": str(tmp_path),
    }
    out, _ = probe(env, "incidents", "forked")
    assert out["incidents"]["persistent_windows"] and out["incidents"]["persistent_incidents"]
    child = out["forked"]
    assert child["evaluator"] and child["ticking"]
    assert not child["persistent_windows"] and not child["persistent_incidents"]


def test_a_forked_worker_evaluates_alone_in_memory_when_the_host_cannot_receive(tmp_path: Path) -> None:
    # OTELPIPE_SLO_EVALUATION=host, but the loopback receiver fails at the first fork: no parent to
    # push to, so the worker watches itself, in memory
    env = {
        "OTELPIPE_SLO_FILE": str(DEMO_SLO),
        "OTELPIPE_STATE_DIR": str(tmp_path),
        "WIRING_PROBE_NO_RECEIVER": "1",
    }
    out, _ = probe(env, "incidents", "forked")
    assert out["incidents"]["prefork"] and out["incidents"]["persistent_windows"]
    child = out["forked"]
    assert child["evaluator"] and child["ticking"]
    assert not child["persistent_windows"] and not child["persistent_incidents"]


def test_a_shutdown_cut_short_leaves_nothing_that_holds_the_exit() -> None:
    # a collector that accepts and never answers: the SDK's flush outlives OTELPIPE_SHUTDOWN_TIMEOUT,
    # and what is still running then must not keep the process from exiting
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)  # never accepted: the kernel completes the handshake, nobody answers
    try:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{hole.getsockname()[1]}",
            "OTELPIPE_SHUTDOWN_TIMEOUT": "500ms",
        }
        out, output = probe(env, "red")
    finally:
        hole.close()
    assert "did not finish within" in output  # the SDK's shutdown was still running when it returned
    assert out["exit_held_by"] == []


def test_export_processors_count_what_they_export() -> None:
    # the SDK's hook for otelpipe's export processors is present here: spans and log records go
    # through them (counted per batch), not through the stock batch processors
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_LOGS_EXPORTER": "console"}
    out, _ = probe(env, "exports")
    assert out["exports"]["exported"].get("traces", 0) >= 3, out["exports"]
    assert out["exports"]["exported"].get("logs", 0) >= 3, out["exports"]


def test_metric_rules_over_system_metrics_say_why_they_see_nothing_without_the_extra() -> None:
    # the demo's rules watch system.cpu.utilization; without otelpipe[system-metrics] nothing records it
    env = {"OTELPIPE_SLO_FILE": str(DEMO_SLO), "WIRING_PROBE_NO_SYSTEM_METRICS": "1"}
    out, output = probe(env, "incidents")
    assert out["incidents"]["metric_rules"] is True
    assert "metric rules watch system.cpu.utilization" in output


def test_a_sampler_passed_in_code_decides_sampling_and_red_still_counts() -> None:
    out, _ = probe({"WIRING_PROBE_ROUTE": "sampler-in-code"}, "sampled")  # configure(sampler=ALWAYS_OFF)
    assert out["sampled"] == {"sampled": False, "red_calls": 1}


def test_shutdown_saves_the_slo_windows_and_closes_the_state_files(tmp_path: Path) -> None:
    from otelpipe.slo.state import read_saved

    env = {
        "OTELPIPE_SLO_FILE": str(DEMO_SLO),
        "OTELPIPE_STATE_DIR": str(tmp_path),
        "OTELPIPE_SLO_INTERVAL": "1h",  # no tick during the probe: only the shutdown saves
        "OTELPIPE_STATE_SAVE_INTERVAL": "1h",
    }
    probe(env, "red")
    # SQLite folds its write-ahead log into the database when the last connection closes
    # (checked first: a read-only reader below leaves one behind)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith("-wal")) == []
    assert read_saved(tmp_path), "the SLO windows were not saved at shutdown"


def test_metric_rules_read_the_apps_metrics_on_the_tick(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    rule = "  - name: queue-deep\n    metric: wiring.queue.depth\n    value: {above: 3}\n"
    spec.write_text(DEMO_SLO.read_text().replace("rules:\n", "rules:\n" + rule, 1))
    out, _ = probe({"OTELPIPE_SLO_FILE": str(spec), "OTEL_SERVICE_NAME": "shop"}, "metric_tick")
    assert out["metric_tick"]["events"] == ["opened queue-deep"], out["metric_tick"]


def test_state_dir_whose_incident_database_cannot_open_keeps_both_in_memory(tmp_path: Path) -> None:
    # the SLO state file opens, the incident database cannot (a directory in its place): neither is
    # used half-way, both are kept in memory and start-up goes on
    (tmp_path / "incidents.sqlite").mkdir()
    out, output = probe(
        {"OTELPIPE_SLO_FILE": str(DEMO_SLO), "OTELPIPE_STATE_DIR": str(tmp_path)}, "incidents"
    )
    assert out["incidents"]["evaluation"] is True
    assert not out["incidents"]["persistent_windows"] and not out["incidents"]["persistent_incidents"]
    assert "OTELPIPE_STATE_DIR" in output


def test_fast_sampler_switch_keeps_the_sdk_sampler() -> None:
    """The default ParentBased sampler is decided by otelpipe's equivalent unless switched off."""
    on, _ = probe({}, "sampler")
    off, _ = probe({"OTELPIPE_FAST_SAMPLER_ENABLED": "false"}, "sampler")
    assert on["sampler"] == {"class": "FastParentBased", "sampled": True, "light_children": True}
    assert off["sampler"]["class"] != "FastParentBased"
    assert off["sampler"]["light_children"] is False  # the SDK starts every span
    assert off["sampler"]["sampled"] is True  # the same decision either way
