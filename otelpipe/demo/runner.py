"""`otelpipe demo`: the shop and payments services under `opentelemetry-instrument`, traffic, a burst, live view.

Everything shown comes from real telemetry: the services are instrumented only from outside, export
OTLP to the embedded `otelpipe sink` (or to `OTEL_EXPORTER_OTLP_ENDPOINT` when it is set), and the
shop's incident engine posts to a local webhook the demo listens on. The one demo-only setting is
`OTELPIPE_SLO_TIME_SCALE`: SLO windows are divided by it, so a 5m/1h page tier becomes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otelpipe.demo.observed import MetricView, WebhookInbox
from otelpipe.demo.processes import ServiceProcess, free_port
from otelpipe.demo.traffic import TrafficStats, drive
from otelpipe.sink import OTLPSink, SinkStore

SLO_SPEC = Path(__file__).with_name("slo.yaml")


@dataclass(frozen=True)
class DemoOptions:
    """Knobs of one demo run; defaults give about a minute with one error burst."""

    duration_s: float = 60.0
    rps: float = 20.0
    burst: bool = True
    burst_error_rate: float = 1.0
    # During the burst payments also answer this much slower and this many extra clients arrive, so
    # requests pile up in the shop (http.server.active_requests) and the saturation rule fires.
    # The latency stays under the api-latency SLO's 400 ms for an order (inventory + pay).
    burst_latency_ms: int = 100
    burst_clients: int = 4
    time_scale: float = 720.0  # 30 d -> 1 h: the 1h/5m page tier -> 5 s/0.4 s, the 3d/6h ticket -> 6 min/30 s
    hold_down_s: float = 5.0
    settle_s: float = 60.0  # after the traffic phase, wait this long at most for open incidents to resolve
    keep_dir: bool = False


@dataclass
class DemoResult:
    """What happened, for the summary and for tests."""

    traffic: TrafficStats
    incidents: list[dict[str, Any]]
    sink_totals: dict[Any, int]
    sink_per_service: dict[Any, dict[str, int]]
    leftover_pids: list[int]
    workdir: str
    exported_to: str
    log_lines: list[str] = field(default_factory=list)
    red_rows: list[Any] = field(default_factory=list)
    slo_rows: list[Any] = field(default_factory=list)
    figure_rows: list[Any] = field(default_factory=list)  # business and system figures (observed.FigureRow)

    @property
    def opened(self) -> list[dict[str, Any]]:
        return [e for e in self.incidents if e.get("event") == "opened"]

    @property
    def resolved(self) -> list[dict[str, Any]]:
        return [e for e in self.incidents if e.get("event") == "resolved"]


def _service_env(
    name: str, endpoint: str, protocol: str, workdir: Path, options: DemoOptions, extra: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELPIPE_")}
    env.update(
        OTEL_SERVICE_NAME=name,
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=demo,service.version=1.0.0",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTEL_BSP_SCHEDULE_DELAY="500",
        OTEL_BLRP_SCHEDULE_DELAY="500",
        OTEL_PYTHON_DISTRO="otelpipe",
        OTEL_PYTHON_CONFIGURATOR="otelpipe",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.25",  # RED stays exact: otelpipe records what the sampler drops
        OTELPIPE_LOG_FORMAT="json",
        OTELPIPE_STATE_DIR=str(workdir / f"state-{name}"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class _Phase:
    """Schedules the burst as fractions of the traffic phase."""

    def __init__(self, options: DemoOptions) -> None:
        self.start_at = options.duration_s * 0.3
        self.end_at = options.duration_s * 0.55
        self.enabled = options.burst
        self.state = "steady"

    def due(self, elapsed: float) -> str | None:
        if not self.enabled:
            return None
        if self.state == "steady" and elapsed >= self.start_at:
            self.state = "burst"
            return "start"
        if self.state == "burst" and elapsed >= self.end_at:
            self.state = "recovered"
            return "end"
        return None


def _set_faults(payments: ServiceProcess, error_rate: float, latency_ms: int = 0) -> None:
    body = json.dumps({"error_rate": error_rate, "latency_ms": latency_ms}).encode()
    request = urllib.request.Request(
        payments.url + "/admin/faults", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def _start_rush(base_url: str, options: DemoOptions, duration_s: float, stop: threading.Event) -> list[threading.Thread]:
    """Extra clients for the burst, each sending back to back: with payments slowed they hold requests
    open in the shop, the saturation a real traffic spike on a slow dependency causes."""
    clients = [
        threading.Thread(
            target=drive,
            args=(base_url, options.rps, duration_s),
            kwargs={"stop_event": stop},
            name=f"demo-rush-{index}",
            daemon=True,
        )
        for index in range(options.burst_clients)
    ]
    for client in clients:
        client.start()
    return clients


def run_demo(options: DemoOptions, view: Any | None = None) -> DemoResult:
    """Run the whole demo; `view` (see `otelpipe.demo.view`) is told what happens as it happens."""
    workdir = Path(tempfile.mkdtemp(prefix="otelpipe-demo-"))
    external = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    sink: OTLPSink | None = None
    if external:
        endpoint, protocol = external, os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    else:
        sink = OTLPSink(SinkStore(), grpc_port=0, http_port=None).start()
        endpoint, protocol = sink.grpc_endpoint, "grpc"
    metrics = MetricView(sink.store) if sink is not None else None
    inbox = WebhookInbox()
    services: list[ServiceProcess] = []
    stop = threading.Event()
    previous_sigint = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    stats = TrafficStats()
    try:
        payments = ServiceProcess(
            "payments",
            "otelpipe.demo.payments",
            free_port(),
            _service_env("payments", endpoint, protocol, workdir, options, {}),
        )
        services.append(payments)
        shop = ServiceProcess(
            "shop",
            "otelpipe.demo.shop",
            free_port(),
            _service_env(
                "shop",
                endpoint,
                protocol,
                workdir,
                options,
                {
                    "PAYMENTS_URL": payments.url,
                    "SHOP_DB_URL": str(workdir / "shop.db"),
                    "SHOP_RECONCILE_INTERVAL_S": "2",
                    # order.create is an INTERNAL span and the order-processing SLO selects it
                    "OTELPIPE_RED_SPAN_KINDS": "server,client,producer,consumer,internal",
                    "OTELPIPE_SLO_FILE": str(SLO_SPEC),
                    "OTELPIPE_SLO_INTERVAL": "1s",
                    "OTELPIPE_SLO_TIME_SCALE": f"{options.time_scale:g}",
                    "OTELPIPE_INCIDENT_HOLD_DOWN": f"{options.hold_down_s:g}s",
                    "OTELPIPE_WEBHOOK_URL": inbox.url,
                    "OTELPIPE_TRACE_URL_TEMPLATE": "http://localhost:16686/trace/{trace_id}",
                },
            ),
        )
        services.append(shop)
        payments.wait_ready()
        shop.wait_ready()
        if view is not None:
            view.started(shop=shop, payments=payments, endpoint=endpoint, sink=sink is not None)

        phase = _Phase(options)
        started = time.monotonic()
        rush_stop = threading.Event()
        rush: list[threading.Thread] = []

        def on_tick(live: TrafficStats) -> None:
            nonlocal stats
            stats = live
            action = phase.due(time.monotonic() - started)
            if action is None:
                return
            if action == "start":
                _set_faults(payments, options.burst_error_rate, options.burst_latency_ms)
                rush.extend(_start_rush(shop.url, options, phase.end_at - phase.start_at, rush_stop))
            else:
                _set_faults(payments, 0.0)
                rush_stop.set()
            if view is not None:
                view.burst(action)

        traffic = threading.Thread(
            target=drive,
            args=(shop.url, options.rps, options.duration_s),
            kwargs={"on_tick": on_tick, "stop_event": stop},
            name="demo-traffic",
            daemon=True,
        )
        traffic.start()
        settle_deadline: float | None = None
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if view is not None:
                view.update(elapsed, stats, metrics, inbox.snapshot(), shop.lines, payments.lines)
            if settle_deadline is None and not traffic.is_alive():
                settle_deadline = time.monotonic() + options.settle_s
                # Keep gentle traffic so the burn windows see the recovery, and wait for resolution.
                traffic = threading.Thread(
                    target=drive,
                    args=(shop.url, max(2.0, options.rps / 4), options.settle_s),
                    kwargs={"stop_event": stop},
                    name="demo-settle-traffic",
                    daemon=True,
                )
                traffic.start()
            if settle_deadline is not None:
                events = inbox.snapshot()
                opened = {e["incident"]["id"] for e in events if e.get("event") == "opened"}
                resolved = {e["incident"]["id"] for e in events if e.get("event") == "resolved"}
                if (
                    not options.burst
                    or (opened and opened <= resolved)
                    or time.monotonic() >= settle_deadline
                ):
                    break
            time.sleep(0.25)
        stop.set()
        rush_stop.set()
        traffic.join(10)
        for client in rush:
            client.join(10)
    finally:
        stop.set()
        for service in reversed(services):
            service.stop()
        if sink is not None:
            time.sleep(0.2)  # let the last gRPC calls of the exiting services land
            sink.stop()
        inbox.stop()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous_sigint)
    leftovers = [s.pid for s in services if s.alive()]
    result = DemoResult(
        traffic=stats,
        incidents=inbox.snapshot(),
        sink_totals=dict(sink.store.totals()) if sink is not None else {},
        sink_per_service={k: dict(v) for k, v in sink.store.per_service().items()}
        if sink is not None
        else {},
        leftover_pids=leftovers,
        workdir=str(workdir),
        exported_to=endpoint + ("" if external else " (embedded otelpipe sink)"),
        log_lines=[line for s in services for line in s.lines if line.startswith("{")][-50:],
        red_rows=metrics.red_rows() if metrics is not None else [],
        slo_rows=metrics.slo_rows() if metrics is not None else [],
        figure_rows=metrics.figure_rows() if metrics is not None else [],
    )
    if not options.keep_dir:
        shutil.rmtree(workdir, ignore_errors=True)
    return result
