"""Old boolean names (before the one `_ENABLED` scheme): still read, reported by `otelpipe check` and at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otelpipe.cli import main


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTELPIPE_"):
            monkeypatch.delenv(name)


def test_check_warns_about_an_old_name_and_accepts_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTELPIPE_SERVICE_GRAPH", "false")
    assert main(["check"]) == 0  # a warning, not an error
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "OTELPIPE_SERVICE_GRAPH" in line]
    assert warnings == [
        "otelpipe: warning: OTELPIPE_SERVICE_GRAPH is deprecated, use OTELPIPE_SERVICE_GRAPH_ENABLED (read for now)"
    ]
    assert "configuration OK" in captured.out and "unknown" not in captured.err.lower()
    row = next(
        line for line in captured.out.splitlines() if line.startswith("OTELPIPE_SERVICE_GRAPH_ENABLED ")
    )
    assert row.split()[1:] == ["false", "env", "(OTELPIPE_SERVICE_GRAPH)"]
    monkeypatch.setenv("OTELPIPE_SERVICE_GRAPH_ENABLED", "true")
    assert main(["check", "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["warnings"] == [
        "OTELPIPE_SERVICE_GRAPH is deprecated and ignored: OTELPIPE_SERVICE_GRAPH_ENABLED is set and wins"
    ]
    row = next(v for v in data["variables"] if v["name"] == "OTELPIPE_SERVICE_GRAPH_ENABLED")
    assert row["value"] == "true" and row["source"] == "env"


def test_startup_logs_the_old_name_once_and_obeys_it(tmp_path: Path) -> None:
    code = (
        "import logging, otelpipe\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "p = otelpipe.configure()\n"
        "print('redactor', p.redactor is None)\n"
        "p.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTELPIPE_REDACT="false",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "redactor True" in result.stdout  # the old name switched redaction off
    assert result.stderr.count("OTELPIPE_REDACT is deprecated, use OTELPIPE_REDACT_ENABLED") == 1
    assert "known OTELPIPE_* variable" not in result.stderr  # not flagged as unknown
