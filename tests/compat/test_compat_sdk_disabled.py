"""`OTEL_SDK_DISABLED=true` turns otelpipe off entirely, through `otelpipe.configure()`.

A fresh interpreter configures otelpipe with everything that builds something switched on (an SLO
file, so an evaluation thread; JSON logs; log correlation; a Prometheus `/metrics` port) and
reports what exists afterwards. With the variable set: no new thread, no listening port, the
API's no-op providers, the log record factory and handlers' formatters as the app left them, a
plain log line. Without it the same script shows all of those, so the test can fail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

DEMO_SLO = Path(__file__).resolve().parents[2] / "otelpipe" / "demo" / "slo.yaml"
SCRIPT = """
import json, logging, socket, sys, threading

handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
logging.getLogger().addHandler(handler)
factory, formatter = logging.getLogRecordFactory(), handler.formatter
threads_before = {t.ident for t in threading.enumerate()}

import otelpipe
from opentelemetry import trace

pipeline = otelpipe.configure()
logging.getLogger("app").warning("plain line")
with socket.socket() as probe:
    listening = probe.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0
print("REPORT " + json.dumps({
    "new_threads": sorted(t.name for t in threading.enumerate() if t.ident not in threads_before),
    "listening": listening,
    "tracer_provider": type(trace.get_tracer_provider()).__name__,
    "red_store": pipeline.red_store is not None,
    "enabled": pipeline.settings.enabled,
    "factory_untouched": logging.getLogRecordFactory() is factory,
    "formatter_untouched": handler.formatter is formatter,
}), flush=True)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(tmp_path: Path, **extra: str) -> tuple[dict[str, Any], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_SERVICE_NAME="shop",
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        OTELPIPE_SLO_FILE=str(DEMO_SLO),
        OTELPIPE_LOG_FORMAT="json",
        OTELPIPE_SHUTDOWN_TIMEOUT="2s",
        **extra,
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(port)],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("REPORT "))
    return json.loads(line.removeprefix("REPORT ")), proc.stdout


def test_sdk_disabled_builds_nothing_and_leaves_logging_alone(tmp_path: Path) -> None:
    report, output = _run(tmp_path, OTEL_SDK_DISABLED="TRUE")
    assert report == {
        "new_threads": [],
        "listening": False,
        "tracer_provider": "ProxyTracerProvider",
        "red_store": False,
        "enabled": False,
        "factory_untouched": True,
        "formatter_untouched": True,
    }
    assert "WARNING plain line" in output.splitlines()


def test_without_it_the_same_script_builds_everything(tmp_path: Path) -> None:
    report, output = _run(tmp_path)
    assert report["new_threads"] and report["listening"] and report["red_store"]
    assert report["tracer_provider"] != "ProxyTracerProvider"  # an SDK provider was set
    assert not (report["factory_untouched"] and report["formatter_untouched"])
    assert "WARNING plain line" not in output.splitlines()
