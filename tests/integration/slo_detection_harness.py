"""One injected error burst, detected twice: by otelpipe in-process and by a real Prometheus on the generated rules.

Shared by `test_integration_prometheus_slo.py` and `bench/detection_latency.py` (loaded by file
path: tests are not a package). Everything is real: `tests/integration/flaky_app.py` runs under
`opentelemetry-instrument` with otelpipe's configurator, exposes `/metrics` through
opentelemetry-exporter-prometheus, evaluates the SLO spec every `slo_interval` seconds and posts
incidents to a local webhook; Debian's `prometheus` scrapes `/metrics` and evaluates the rules
`otelpipe.slo.prometheus_rules.write_rules` generated from the same spec.

Detection times are wall-clock (`time.time()`) in this process: the burst starts when the app
is asked to switch to 100 % errors; in-process detection is the arrival of the webhook's
`opened` event; Prometheus detection is the first poll of `/api/v1/alerts` that shows the page
alert `firing` (its own `activeAt` is reported too).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from otelpipe.slo.prometheus_rules import alert_name, write_rules
from otelpipe.slo.spec import load_spec

FLAKY_APP = Path(__file__).with_name("flaky_app.py")
SERVICE = "flaky"
SLO_NAME = "work-availability"
SPEC_TEXT = f"""\
version: otelpipe/v1
service: {SERVICE}
slos:
  - name: {SLO_NAME}
    objective: 99.9
    period: 30d
    sli: {{kind: availability}}
    selector: {{http_route: /work}}
"""


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (for servers that cannot report their own)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def _wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if predicate():
                return True
        time.sleep(interval)
    return False


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class WebhookReceiver:
    """Records every JSON body POSTed to it with its arrival time; stands in for a paging system."""

    def __init__(self) -> None:
        received: list[tuple[float, dict[str, Any]]] = []
        self.received = received

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with contextlib.suppress(ValueError):
                    received.append((at, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/incidents"
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)
        self._thread.start()

    def first(self, severity: str) -> tuple[float, dict[str, Any]] | None:
        """Arrival time and body of the first event that opened an incident at `severity` or raised it there."""
        for at, body in list(self.received):
            if (
                body.get("event") in ("opened", "updated")
                and body.get("incident", {}).get("severity") == severity
            ):
                return at, body
        return None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class PrometheusServer:
    """Debian's `prometheus` on 127.0.0.1, scraping one target and evaluating one rule file."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        *,
        target: str,
        rules: Path,
        scrape_interval: float,
        eval_interval: float,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        # scrape_timeout must not exceed scrape_interval, and its default (10s) would.
        config.write_text(
            json.dumps(
                {
                    "global": {
                        "scrape_interval": f"{int(scrape_interval * 1000)}ms",
                        "scrape_timeout": f"{int(scrape_interval * 1000)}ms",
                        "evaluation_interval": f"{int(eval_interval * 1000)}ms",
                    },
                    "rule_files": [str(rules)],
                    "scrape_configs": [{"job_name": "flaky", "static_configs": [{"targets": [target]}]}],
                }
            ),
            encoding="utf-8",
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        if not _wait_for(self._ready, timeout=30, interval=0.1):
            self.stop()
            raise AssertionError("prometheus did not become ready:\n" + self.log())

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited:\n" + self.log())
        with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
            return bool(response.status == 200)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector result of `expr` now."""
        data = _get_json(f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}")
        return list(data["data"]["result"])

    def alerts(self) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts, as `/api/v1/alerts` lists them."""
        return list(_get_json(self.url + "/api/v1/alerts")["data"]["alerts"])

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its `health` and `lastError`."""
        groups = _get_json(self.url + "/api/v1/rules")["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        _stop_process(self.proc)


class FlakyApp:
    """tests/integration/flaky_app.py under `opentelemetry-instrument` with otelpipe and a Prometheus reader."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "app.log"
        instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
        # Output goes to a file: a pipe nobody drains would block the app once werkzeug's request
        # log fills it.
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [instrument, sys.executable, str(FLAKY_APP)],
                env=env,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.port = 0
        if not _wait_for(self._started, timeout=60, interval=0.1):
            self.stop()
            raise AssertionError("app did not start:\n" + self.log())
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _started(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("app exited:\n" + self.log())
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("READY "):
                self.port = int(line.split()[1])
                return True
        return False

    def get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def set_error_rate(self, rate: float) -> None:
        request = urllib.request.Request(
            self.base_url + "/admin/errors", data=str(rate).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["error_rate"] == rate

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        _stop_process(self.proc)


class LoadGenerator:
    """Steady GET /work traffic at about `rps` requests per second on one thread, counting statuses."""

    def __init__(self, app: FlakyApp, rps: float) -> None:
        self._app = app
        self._period = 1.0 / rps
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                status = self._app.get("/work")
                self.statuses[status] = self.statuses.get(status, 0) + 1
            next_at += self._period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def app_env(*, metrics_port: int, spec: Path, webhook_url: str, slo_interval: float) -> dict[str, str]:
    """The app's environment: Prometheus reader only, SLO evaluation at real time scale, webhook incidents."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_PYTHON_DISTRO="otelpipe",
        OTEL_PYTHON_CONFIGURATOR="otelpipe",
        OTEL_SERVICE_NAME=SERVICE,
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        OTELPIPE_SLO_FILE=str(spec),
        OTELPIPE_SLO_INTERVAL=f"{slo_interval:g}s",
        OTELPIPE_SLO_TIME_SCALE="1",  # the same real 5m/1h windows Prometheus uses
        OTELPIPE_WEBHOOK_URL=webhook_url,
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass(frozen=True)
class Detection:
    """When the burst began and when each path noticed it (wall-clock seconds)."""

    burst_at: float
    in_process_at: float | None
    prometheus_at: float | None
    prometheus_active_at: float | None  # the alert's `activeAt` as Prometheus stamped it
    alert_before_burst: bool  # a page alert was already active before the burst (must be False)
    webhook_event: dict[str, Any] | None
    rules: list[dict[str, Any]]
    requests: dict[int, int]
    logs: str

    @property
    def in_process_s(self) -> float | None:
        return None if self.in_process_at is None else self.in_process_at - self.burst_at

    @property
    def prometheus_s(self) -> float | None:
        return None if self.prometheus_at is None else self.prometheus_at - self.burst_at

    @property
    def prometheus_active_s(self) -> float | None:
        return None if self.prometheus_active_at is None else self.prometheus_active_at - self.burst_at


def _page_alerts(prometheus: PrometheusServer, name: str) -> list[dict[str, Any]]:
    return [
        a
        for a in prometheus.alerts()
        if a["labels"].get("alertname") == name and a["labels"].get("sloth_severity") == "page"
    ]


def _rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_detection(
    workdir: Path,
    prometheus_binary: str,
    *,
    scrape_interval: float = 1.0,
    eval_interval: float = 1.0,
    slo_interval: float = 1.0,
    rps: float = 20.0,
    timeout: float = 45.0,
) -> Detection:
    """Start everything, warm up with good traffic, switch to 100 % errors, time both detections."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / "slo.yaml"
    spec_path.write_text(SPEC_TEXT, encoding="utf-8")
    spec = load_spec(spec_path)
    rules_path = write_rules(spec, workdir / "rules")
    name = alert_name(spec.slos[0])
    with contextlib.ExitStack() as stack:
        webhook = WebhookReceiver()
        stack.callback(webhook.close)
        metrics_port = free_port()
        env = app_env(
            metrics_port=metrics_port, spec=spec_path, webhook_url=webhook.url, slo_interval=slo_interval
        )
        app = FlakyApp(workdir / "app", env)
        stack.callback(app.stop)
        prometheus = PrometheusServer(
            prometheus_binary,
            workdir / "prometheus",
            target=f"127.0.0.1:{metrics_port}",
            rules=rules_path,
            scrape_interval=scrape_interval,
            eval_interval=eval_interval,
        )
        stack.callback(prometheus.stop)
        load = LoadGenerator(app, rps)
        stack.callback(load.stop)

        def logs() -> str:
            return f"--- app ---\n{app.log()}\n--- prometheus ---\n{prometheus.log()}"

        # Warm-up: the recorded 5m error ratio exists (two scrapes of good traffic, rules evaluated).
        ratio = f'slo:sli_error:ratio_rate5m{{sloth_slo="{SLO_NAME}"}}'
        if not _wait_for(lambda: prometheus.query(ratio), timeout=timeout, interval=0.2):
            raise AssertionError(f"no {ratio} during warm-up\n" + logs())
        time.sleep(max(slo_interval, eval_interval))  # one more in-process tick and rule evaluation
        alert_before = bool(_page_alerts(prometheus, name)) or webhook.first("critical") is not None

        burst_at = time.time()  # taken before the switch: both latencies include its round trip
        app.set_error_rate(1.0)
        in_process_at = prometheus_at = active_at = None
        event: dict[str, Any] | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (in_process_at is None or prometheus_at is None):
            if in_process_at is None and (hit := webhook.first("critical")) is not None:
                in_process_at, event = hit
            if prometheus_at is None:
                with contextlib.suppress(OSError, ValueError):
                    firing = [a for a in _page_alerts(prometheus, name) if a["state"] == "firing"]
                    if firing:
                        prometheus_at = time.time()
                        active_at = _rfc3339(firing[0]["activeAt"])
            time.sleep(0.05)
        load.stop()
        return Detection(
            burst_at=burst_at,
            in_process_at=in_process_at,
            prometheus_at=prometheus_at,
            prometheus_active_at=active_at,
            alert_before_burst=alert_before,
            webhook_event=event,
            rules=prometheus.rules(),
            requests=dict(load.statuses),
            logs=logs(),
        )
    raise AssertionError("unreachable")  # ExitStack does not swallow exceptions
