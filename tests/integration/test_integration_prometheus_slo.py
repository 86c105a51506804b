"""A real Prometheus scrapes an instrumented app and fires the page alert generated from the SLO spec.

The same injected burst is also caught in-process (incident posted to a webhook); both detection
latencies are attached to the test report (`record_property`) and printed by
`bench/detection_latency.py`, which runs the same harness.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]


def _harness() -> ModuleType:
    """tests/integration/slo_detection_harness.py, loaded by path (tests are not a package)."""
    name = "slo_detection_harness"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_page_alert_fires_in_prometheus_and_in_process_after_error_burst(
    tmp_path: Path, require_binary: Callable[[str], str], record_property: Callable[[str, object], None]
) -> None:
    prometheus = require_binary("prometheus")
    harness = _harness()

    detection = harness.run_detection(tmp_path, prometheus, timeout=40.0)

    for key in ("in_process_s", "prometheus_s", "prometheus_active_s"):
        record_property(key, getattr(detection, key))
    context = f"{detection}\n{detection.logs}"
    bad_rules = [r for r in detection.rules if r["health"] != "ok" or r.get("lastError")]
    assert detection.rules and not bad_rules, context
    assert not detection.alert_before_burst, "page alert active on good traffic only\n" + context
    assert detection.requests.get(500, 0) > 0 and detection.requests.get(200, 0) > 0, detection.requests

    # The Prometheus rule path: the page alert generated from the spec is firing after the burst.
    assert detection.prometheus_s is not None, "Prometheus never fired the page alert\n" + context
    assert detection.prometheus_active_at >= detection.burst_at - 1.0, context

    # The in-process path: the same SLO opened a critical incident, delivered to the webhook.
    assert detection.in_process_s is not None, "no in-process page incident\n" + context
    event = detection.webhook_event
    assert event["schema"] == "otelpipe.incident/v1"
    incident = event["incident"]
    assert (incident["service"], incident["name"], incident["kind"]) == ("flaky", "work-availability", "slo")
    assert incident["tier"].startswith("page"), incident
    # Either page tier may open it: 5m/1h at 14.4x, or 30m/6h at 6x when a tick lands between the two.
    burn = incident["burn_rates"]
    assert (burn["5m"] > 14.4 and burn["1h"] > 14.4) or (burn["30m"] > 6 and burn["6h"] > 6), incident
