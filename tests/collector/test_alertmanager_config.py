"""The shipped Alertmanager config is valid and routes pages and tickets where its comments say."""

from __future__ import annotations

import subprocess
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "collector-config" / "alertmanager" / "alertmanager.yml"


def _route(amtool: str, *labels: str) -> str:
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={CONFIG}", *labels],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.strip()


def test_config_is_valid(require_binary):
    amtool = require_binary("amtool")
    result = subprocess.run(
        [amtool, "check-config", str(CONFIG)], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pages_and_tickets_are_routed_apart(require_binary):
    amtool = require_binary("amtool")
    assert _route(amtool, "sloth_severity=page", "sloth_slo=api-availability") == "on-call-pager"
    assert _route(amtool, "sloth_severity=ticket", "sloth_slo=api-availability") == "team-queue"
    assert (
        _route(amtool, "severity=critical", "alertname=api-availability", "otelpipe_kind=slo")
        == "on-call-pager"
    )
    assert _route(amtool, "severity=warning", "alertname=api-latency") == "team-queue"
