"""Detection latency of one error burst per deployment shape: in-process, prefork master, gateway, Prometheus.

Each run starts fresh real processes and one webhook receiver, sends good traffic for a warm-up,
switches every request to an erroring route (t=0) and times the webhook's `opened` event:

- in-process: one `opentelemetry-instrument` Flask process evaluating itself (`OTELPIPE_SLO_INTERVAL`);
- prefork: `opentelemetry-instrument gunicorn -w 4`, workers pushing RED to the master
  (`OTELPIPE_PREFORK_PUSH_INTERVAL`), the master evaluating;
- gateway: two app processes with `OTELPIPE_SLO_EVALUATION=gateway` exporting OTLP metrics every
  `OTEL_METRIC_EXPORT_INTERVAL` to one `otelpipe gateway`;
- Prometheus (with --prometheus-runs > 0): bench/detection_latency.py's harness, a real Prometheus
  scraping /metrics and evaluating the generated rules (it also reports its own in-process figure).

    .venv/bin/python bench/fleet_detection.py                        # 1 s intervals, 3 runs each
    .venv/bin/python bench/fleet_detection.py --interval 10 --runs 1

Prints figures; no pass/fail. Same SLO everywhere: 99.9 % availability over 30 d, default tiers
(page 14.4x over 5m and 1h).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SPEC = """\
version: otelpipe/v1
service: fleet
slos:
  - name: availability
    objective: 99.9
    period: 30d
    sli: {kind: availability}
"""


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Traffic:
    """Requests at `rps` spread over `bases`, to /ok until `burst()`, then to /fail."""

    def __init__(self, bases: list[str], rps: float) -> None:
        self._bases = itertools.cycle(bases)
        self._rps = rps
        self._path = "/ok"
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(4)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        pause = 4 / self._rps
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(next(self._bases) + self._path, timeout=5):
                    pass
            except (urllib.error.URLError, OSError):
                pass
            self._stop.wait(pause)

    def burst(self) -> float:
        self._path = "/fail"
        return time.time()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


def _fmt(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f} s"


def _opened_after(webhook: object, started: float, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if webhook.events("opened"):  # type: ignore[attr-defined]
            return time.time() - started
        time.sleep(0.02)
    return None


def _measure(
    start: Callable[[object], tuple[list[str], Callable[[], None]]], fleet: ModuleType, args
) -> float | None:
    webhook = fleet.Webhook()
    try:
        bases, stop = start(webhook)
        traffic = Traffic(bases, args.rps)
        try:
            time.sleep(args.warmup)
            started = traffic.burst()
            return _opened_after(webhook, started, args.timeout)
        finally:
            traffic.stop()
            stop()
    finally:
        webhook.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0, help="tick, push and export interval, s")
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of good traffic first")
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument(
        "--prometheus-runs", type=int, default=1, help="runs of the Prometheus path (0: skip)"
    )
    args = parser.parse_args(argv)
    fleet = _load(ROOT / "tests" / "fleet" / "conftest.py", "fleet_conftest")
    interval = f"{args.interval:g}s"
    workdir = Path(tempfile.mkdtemp(prefix="otelpipe-fleet-detect-"))
    spec = workdir / "slo.yaml"
    spec.write_text(SPEC)

    def base_env(webhook: object, **extra: str) -> dict[str, str]:
        return fleet.app_env(
            OTEL_SERVICE_NAME="fleet",
            OTELPIPE_SLO_FILE=str(spec),
            OTELPIPE_SLO_INTERVAL=interval,
            OTELPIPE_WEBHOOK_URL=webhook.url,  # type: ignore[attr-defined]
            **extra,
        )

    def in_process(webhook: object) -> tuple[list[str], Callable[[], None]]:
        app = fleet.AppProcess(base_env(webhook))
        return [app.base], app.stop

    def prefork(webhook: object) -> tuple[list[str], Callable[[], None]]:
        server = fleet.Gunicorn(base_env(webhook, OTELPIPE_PREFORK_PUSH_INTERVAL=interval), 4)
        return [server.base], server.stop

    def gateway(webhook: object) -> tuple[list[str], Callable[[], None]]:
        gw = fleet.GatewayProcess(base_env(webhook, OTEL_METRICS_EXPORTER="none"))
        pod_env = base_env(
            webhook,
            OTELPIPE_SLO_EVALUATION="gateway",
            OTEL_METRICS_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_EXPORTER_OTLP_ENDPOINT=gw.grpc_endpoint,
            OTEL_METRIC_EXPORT_INTERVAL=str(int(args.interval * 1000)),
        )
        pods = [fleet.AppProcess(pod_env), fleet.AppProcess(pod_env)]

        def stop() -> None:
            for pod in pods:
                pod.stop()
            gw.stop()

        return [pod.base for pod in pods], stop

    print(
        f"interval {interval} (tick, push, export), {args.rps:g} req/s, warm-up {args.warmup:g}s, 100 % errors from t=0"
    )
    results: dict[str, list[float]] = {}
    for name, start in (("in-process", in_process), ("prefork -w 4", prefork), ("gateway, 2 pods", gateway)):
        for run in range(1, args.runs + 1):
            seconds = _measure(start, fleet, args)
            print(f"{name:16s} run {run}: {_fmt(seconds)}", flush=True)
            if seconds is not None:
                results.setdefault(name, []).append(seconds)
    prometheus = shutil.which("prometheus")
    if args.prometheus_runs and prometheus:
        harness = _load(ROOT / "tests" / "integration" / "slo_detection_harness.py", "slo_detection_harness")
        for run in range(1, args.prometheus_runs + 1):
            with tempfile.TemporaryDirectory(prefix="otelpipe-detect-") as tmp:
                detection = harness.run_detection(
                    Path(tmp),
                    prometheus,
                    scrape_interval=args.interval,
                    eval_interval=args.interval,
                    slo_interval=args.interval,
                    rps=args.rps,
                    timeout=args.timeout,
                )
            print(
                f"prometheus       run {run}: {_fmt(detection.prometheus_s)} "
                f"(its own in-process figure {_fmt(detection.in_process_s)})"
            )
            if detection.prometheus_s is not None:
                results.setdefault("prometheus rules", []).append(detection.prometheus_s)
    print("median: " + ", ".join(f"{name} {statistics.median(v):.2f} s" for name, v in results.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
