"""Cost of one SLO evaluation tick (100 SLOs over a ~2000-series RED snapshot) and of a state write.

Prints figures; no pass/fail. The baseline is the same tick with one SLO, measured in the same run,
so the ratio shows how the cost grows with the number of SLOs.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from otelpipe.processors.red_snapshot import REDSnapshot, SeriesStats
from otelpipe.slo.evaluator import SLOEvaluator
from otelpipe.slo.model import SLI, SLO, Selector, SLOSpec, default_tiers
from otelpipe.slo.state import SLOStateStore

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SERVICES = 10
ROUTES = 50
PERIOD = 30 * 86400.0


def _snapshot(step: int) -> REDSnapshot:
    series = []
    for s in range(SERVICES):
        for r in range(ROUTES):
            for error in (False, True):
                for method in ("GET", "POST"):
                    calls = step * (100 if not error else 1) + r
                    attrs = {
                        "service.name": f"svc{s}",
                        "span.name": f"GET /r{r}",
                        "span.kind": "SPAN_KIND_SERVER",
                        "http.route": f"/r{r}",
                        "http.request.method": method,
                        "status.code": "STATUS_CODE_ERROR" if error else "STATUS_CODE_UNSET",
                    }
                    buckets = (calls // 2, calls // 4, calls - calls // 2 - calls // 4) + (0,) * (
                        len(BOUNDS) - 2
                    )
                    series.append(SeriesStats(attrs, calls, calls if error else 0, buckets, 0.0, 0.0, 0.0, 1))
    return REDSnapshot(BOUNDS, tuple(series), 0)


def _spec(count: int) -> SLOSpec:
    slos = []
    for i in range(count):
        selector = Selector(
            service=f"svc{i % SERVICES}", http_route=f"/r{i % ROUTES}" if i >= SERVICES else None
        )
        sli = SLI("latency", selector, 0.25) if i % 3 == 2 else SLI("availability", selector)
        slos.append(SLO(f"slo{i}", f"svc{i % SERVICES}", 0.999, PERIOD, sli, default_tiers(PERIOD)))
    return SLOSpec(tuple(slos))


def _tick_cost(count: int, snapshots: list[REDSnapshot]) -> float:
    clock = [1_000_000.0]
    ev = SLOEvaluator(_spec(count), boundaries=BOUNDS, clock=lambda: clock[0])
    ev.tick(snapshots[0])
    times = []
    for snap in snapshots[1:]:
        clock[0] += 10.0
        start = time.perf_counter()
        ev.tick(snap)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    snapshots = [_snapshot(step) for step in range(1, 22)]
    print(f"snapshot: {len(snapshots[0].series)} series, {len(BOUNDS)} boundaries")
    one = _tick_cost(1, snapshots)
    hundred = _tick_cost(100, snapshots)
    print(f"tick, 1 SLO:    {one * 1000:8.2f} ms (median of {len(snapshots) - 1})")
    print(f"tick, 100 SLOs: {hundred * 1000:8.2f} ms  ({hundred / one:.1f}x the 1-SLO tick)")

    with tempfile.TemporaryDirectory() as directory:
        clock = [1_000_000.0]
        store = SLOStateStore(directory)
        ev = SLOEvaluator(
            _spec(100), boundaries=BOUNDS, clock=lambda: clock[0], state=store, persist_interval=1e12
        )
        for snap in snapshots:
            clock[0] += 10.0
            ev.tick(snap)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            ev.flush()
            times.append(time.perf_counter() - start)
        store.close()
        print(
            f"state write, 100 SLOs: {statistics.median(times) * 1000:8.2f} ms "
            f"({ev.memory_bytes() / 1e6:.1f} MB of rings, {ev.memory_bytes() / 100 / 1e3:.0f} KB per SLO)"
        )


if __name__ == "__main__":
    main()
