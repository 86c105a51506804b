"""What one metric-rule collection costs, with and without opentelemetry-instrumentation-system-metrics.

Rerun: `.venv/bin/python bench/metric_collection.py [--rounds R]`

Each configuration runs in its own process (the instrumentor is a per-process singleton) and
reports the median of R collections by `MetricSnapshotReader.snapshot()`, against an app with
five business instruments and no system metrics measured in the same process. The rule tick
collects once per `OTELPIPE_SLO_INTERVAL` (10 s default), and so does every other reader (e.g.
the OTLP exporter every 60 s): observable callbacks run once per reader collection.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = {
    "default set": "",
    "default set without system.network.connections": "system.network.connections",
    "cpu, memory and process only": "system.swap.*,system.disk.*,system.network.*,system.thread_count,"
    "process.context_switches,process.disk.io,process.open_file_descriptor.count,process.runtime.*,cpython.*",
}


def _child(rounds: int) -> None:
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider

    from otelpipe.processors.metric_snapshot import MetricSnapshotReader

    def app(provider: MeterProvider) -> None:
        meter = provider.get_meter("shop")
        meter.create_counter("shop.orders.created").add(1, {"channel": "web"})
        meter.create_counter("shop.revenue").add(10.0)
        meter.create_counter("shop.signups").add(1)
        meter.create_up_down_counter("shop.carts.open").add(1)
        meter.create_histogram("shop.order.amount").record(12.5)

    baseline, candidate = MetricSnapshotReader(), MetricSnapshotReader()
    app(MeterProvider(metric_readers=[baseline]))
    instrumented = MeterProvider(metric_readers=[candidate])
    app(instrumented)
    SystemMetricsInstrumentor().instrument(meter_provider=instrumented)
    baseline.snapshot()
    points = sum(len(p) for p in candidate.snapshot().points.values())
    base_s, cand_s = [], []
    for _ in range(rounds):  # alternate, so load on the shared cores hits both alike
        started = time.perf_counter()
        baseline.snapshot()
        base_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        candidate.snapshot()
        cand_s.append(time.perf_counter() - started)
    print(
        json.dumps(
            {
                "baseline_ms": statistics.median(base_s) * 1e3,
                "ms": statistics.median(cand_s) * 1e3,
                "points": points,
            }
        )
    )


def _evaluation(rounds: int) -> str:
    """One tick of 10 metric rules over a snapshot with a 2,000-series counter and a 2,000-series histogram."""
    from otelpipe.incidents.metric_rules import MetricRuleEvaluator, parse_metric_rules
    from otelpipe.processors.metric_snapshot import MetricPoint, MetricSnapshot

    def snapshot(step: int) -> MetricSnapshot:
        counters = tuple(
            MetricPoint("orders", "counter", {"id": i}, 1, 0, float(step * i), identity=(("id", i),))
            for i in range(2000)
        )
        histograms = tuple(
            MetricPoint(
                "latency",
                "histogram",
                {"id": i},
                1,
                0,
                0.0,
                count=step * 3,
                boundaries=(0.1, 1.0),
                bucket_counts=(step, step, step),
                identity=(("id", i),),
            )
            for i in range(2000)
        )
        return MetricSnapshot(0, "shop", {"orders": counters, "latency": histograms})

    entries = [{"name": f"rate{i}", "metric": "orders", "rate": {"below": 1}} for i in range(5)]
    entries += [{"name": f"p{i}", "metric": "latency", "quantile": {"above": 1}} for i in range(5)]
    evaluator = MetricRuleEvaluator(parse_metric_rules({"rules": entries}))
    snapshots = [snapshot(step) for step in range(1, rounds + 2)]
    evaluator.evaluate(snapshots[0], 0.0)
    times = []
    for step, snap in enumerate(snapshots[1:], start=1):
        started = time.perf_counter()
        evaluator.evaluate(snap, step * 10.0)
        times.append(time.perf_counter() - started)
    return f"one tick of 10 rules over 2 x 2,000 series: {statistics.median(times) * 1e3:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        _child(args.rounds)
        return
    print(f"one collection, median of {args.rounds} (baseline: 5 business instruments, no system metrics)")
    for name, excluded in CONFIGS.items():
        env = {**os.environ, "OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS": excluded}
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--rounds", str(args.rounds)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"  {name:50s} {figures['ms']:8.2f} ms  ({figures['points']} points; "
            f"baseline {figures['baseline_ms']:.3f} ms)"
        )
    print(_evaluation(min(args.rounds, 15)))


if __name__ == "__main__":
    main()
