"""Detection latency of one injected error burst: otelpipe in-process incident vs a real Prometheus on the generated rules.

Each run starts a fresh instrumented app (tests/integration/flaky_app.py), a webhook receiver and
Debian's `prometheus` scraping the app's /metrics with the rules `otelpipe slo rules` generates;
after a warm-up of good traffic the app switches to 100 % errors, and the script times when the
in-process incident reaches the webhook and when Prometheus lists the page alert as firing.

    .venv/bin/python bench/detection_latency.py                       # 1 s everywhere, 3 runs
    .venv/bin/python bench/detection_latency.py --scrape-interval 15 --eval-interval 15 --slo-interval 10

Prints figures; no pass/fail. The harness is shared with
tests/integration/test_integration_prometheus_slo.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from types import ModuleType

HARNESS = Path(__file__).resolve().parent.parent / "tests" / "integration" / "slo_detection_harness.py"


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("slo_detection_harness", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="bursts, each with fresh processes (default 3)")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="Prometheus scrape_interval, s")
    parser.add_argument("--eval-interval", type=float, default=1.0, help="Prometheus evaluation_interval, s")
    parser.add_argument("--slo-interval", type=float, default=1.0, help="OTELPIPE_SLO_INTERVAL, s")
    parser.add_argument("--rps", type=float, default=20.0, help="requests per second to the app")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up on a path after this, s")
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    args = parser.parse_args(argv)
    if not Path(args.prometheus).exists():
        print(f"prometheus not found at {args.prometheus} (Debian package `prometheus`)", file=sys.stderr)
        return 2

    harness = _harness()
    print(
        f"scrape {args.scrape_interval:g}s, rule evaluation {args.eval_interval:g}s, "
        f"otelpipe tick {args.slo_interval:g}s, {args.rps:g} req/s, 100 % errors from t=0"
    )
    print("run  in-process(s)  prometheus firing(s)  prometheus activeAt(s)")
    in_process: list[float] = []
    prometheus: list[float] = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="otelpipe-detect-") as workdir:
            detection = harness.run_detection(
                Path(workdir),
                args.prometheus,
                scrape_interval=args.scrape_interval,
                eval_interval=args.eval_interval,
                slo_interval=args.slo_interval,
                rps=args.rps,
                timeout=args.timeout,
            )
        print(
            f"{run:3d}  {_fmt(detection.in_process_s)}        {_fmt(detection.prometheus_s)}"
            f"                {_fmt(detection.prometheus_active_s)}"
        )
        if detection.in_process_s is not None:
            in_process.append(detection.in_process_s)
        if detection.prometheus_s is not None:
            prometheus.append(detection.prometheus_s)
    if in_process and prometheus:
        a, b = statistics.median(in_process), statistics.median(prometheus)
        print(f"median: in-process {a:.2f} s, Prometheus {b:.2f} s ({b / a:.1f}x slower)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
