"""REDStreamMerger: many senders' cumulative or delta RED streams → one monotone snapshot per series."""

from __future__ import annotations

import pytest

from otelpipe.fleet import REDStreamMerger
from otelpipe.processors.red_snapshot import OVERFLOW, SERVICE_NAME, STATUS_CODE, STATUS_ERROR

DELTA = 1  # AGGREGATION_TEMPORALITY_DELTA


def _totals(merger: REDStreamMerger, service: str = "checkout") -> tuple[int, int]:
    snapshot = merger.snapshot()
    series = [s for s in snapshot.series if s.attributes.get(SERVICE_NAME) == service]
    return sum(s.calls for s in series), sum(s.errors for s in series)


def test_two_instances_started_after_the_merger_are_summed(clock, make_request):
    merger = REDStreamMerger(clock=clock)
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1000.5, time_s=1001, ok=10, errors=2))
    merger.add_request(make_request(instance="b", start_s=1000.7, time_s=1001, ok=5))
    assert _totals(merger) == (17, 2)
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1000.5, time_s=1002, ok=30, errors=2))
    merger.add_request(make_request(instance="b", start_s=1000.7, time_s=1002, ok=6))
    assert _totals(merger) == (38, 2)


def test_streams_older_than_the_merger_are_a_baseline_not_a_burst(clock, make_request):
    merger = REDStreamMerger(clock=clock)
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1, time_s=1001, ok=100_000, errors=5000))
    assert _totals(merger) == (0, 0)
    assert merger.stats.baselined == 2 * 2  # calls and duration of two series
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1, time_s=1002, ok=100_010, errors=5001))
    assert _totals(merger) == (11, 1)


def test_a_series_new_to_a_known_instance_counts_from_zero(clock, make_request):
    merger = REDStreamMerger(clock=clock)
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1, time_s=1001, ok=1000))
    clock.advance(1)
    # the first errors of a long-running process: the error series is new, but all of it is news
    merger.add_request(make_request(instance="a", start_s=1, time_s=1002, ok=1000, errors=7))
    assert _totals(merger) == (7, 7)


def test_restarted_worker_is_a_new_stream_never_negative(clock, make_request):
    merger = REDStreamMerger(clock=clock)
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1000.2, time_s=1001, ok=50))
    merger.add_request(make_request(instance="b", start_s=1000.2, time_s=1001, ok=50))
    before = merger.snapshot()
    clock.advance(1)
    # "a" was killed and respawned (same instance id: a new start time tells it apart)
    merger.add_request(make_request(instance="a", start_s=1001.5, time_s=1002, ok=3))
    merger.add_request(make_request(instance="b", start_s=1000.2, time_s=1002, ok=60))
    after = merger.snapshot()
    assert _totals(merger) == (113, 0)
    for old, new in zip(before.series, after.series, strict=True):
        assert new.calls >= old.calls
        assert all(n >= o for n, o in zip(new.bucket_counts, old.bucket_counts, strict=True))
        assert new.start_time_unix_nano == old.start_time_unix_nano  # the evaluator keeps its baseline


def test_value_below_the_last_with_the_same_start_is_a_reset(clock, make_request):
    merger = REDStreamMerger(clock=clock)
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1000.1, time_s=1001, ok=40))
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1000.1, time_s=1002, ok=4))
    assert _totals(merger) == (44, 0)
    assert merger.stats.resets >= 1


def test_retried_or_reordered_points_are_skipped(clock, make_request):
    merger = REDStreamMerger(clock=clock)
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1000.1, time_s=1002, ok=40))
    merger.add_request(make_request(instance="a", start_s=1000.1, time_s=1002, ok=40))  # retry
    merger.add_request(make_request(instance="a", start_s=1000.1, time_s=1001, ok=30))  # late
    assert _totals(merger) == (40, 0)
    assert merger.stats.stale_points == 4


def test_delta_streams_are_summed(clock, make_request):
    merger = REDStreamMerger(clock=clock)
    for second in range(3):
        clock.advance(1)
        for instance in ("a", "b"):
            merger.add_request(
                make_request(
                    instance=instance,
                    start_s=1000 + second,
                    time_s=1001 + second,
                    ok=10,
                    errors=1,
                    temporality=DELTA,
                )
            )
    assert _totals(merger) == (66, 6)


@pytest.mark.parametrize("shape", ["spanmetrics", "legacy"])
def test_spanmetrics_connector_shape_in_ms_becomes_seconds(clock, make_request, shape):
    merger = REDStreamMerger(clock=clock)
    clock.advance(1)
    merger.add_request(make_request("payments-go", shape=shape, start_s=1000.1, ok=20, errors=4, fast=0.75))
    snapshot = merger.snapshot()
    assert {s.attributes[SERVICE_NAME] for s in snapshot.series} == {"payments-go"}
    ok = next(s for s in snapshot.series if s.attributes[STATUS_CODE] != STATUS_ERROR)
    assert ok.calls == 20 and ok.errors == 0
    assert ok.count_at_most(snapshot.boundaries, 0.01) == 15  # 10 ms lands in the 0.01 s bucket
    assert ok.count_at_most(snapshot.boundaries, 1.0) == 20
    assert ok.sum == pytest.approx(15 * 0.01 + 5 * 1.0)
    assert _totals(merger, "payments-go") == (24, 4)


def test_source_buckets_straddling_an_output_boundary_count_as_slower(clock, make_request):
    # output 0.007 s sits inside the source bucket (6 ms, 8 ms]: those calls are counted above it
    merger = REDStreamMerger((0.003, 0.007, 0.01, 1.0), clock=clock)
    clock.advance(1)
    merger.add_request(make_request(shape="spanmetrics", start_s=1000.1, ok=10, fast=1.0))
    (series,) = merger.snapshot().series
    assert series.count_at_most((0.003, 0.007, 0.01, 1.0), 0.007) == 0
    assert series.count_at_most((0.003, 0.007, 0.01, 1.0), 0.01) == 10


def test_stale_streams_expire_and_an_expired_series_returns_with_a_new_start(clock, make_request):
    merger = REDStreamMerger(stale_after_s=60, clock=clock)
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1000.1, time_s=1001, ok=10))
    first = merger.snapshot().series[0]
    clock.advance(120)
    merger.snapshot()
    assert merger.snapshot().series == ()
    assert merger.stats.expired_streams == 2
    assert merger.instances() == 0
    # the same process resumes after a long silence: its counts are old news, not a burst
    merger.add_request(make_request(instance="a", start_s=1000.1, time_s=1121, ok=15))
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1000.1, time_s=1122, ok=16))
    (again,) = merger.snapshot().series
    assert again.calls == 1
    assert again.start_time_unix_nano > first.start_time_unix_nano


def test_series_beyond_the_limit_fold_into_one_overflow_series_per_service(clock, make_request):
    merger = REDStreamMerger(series_limit=2, clock=clock)
    clock.advance(1)
    merger.add_request(make_request("a", start_s=1000.1, ok=1, errors=1))
    merger.add_request(make_request("b", start_s=1000.1, ok=3, errors=4))
    snapshot = merger.snapshot()
    assert len(snapshot.series) == 3
    overflow = next(s for s in snapshot.series if s.attributes.get(OVERFLOW))
    assert overflow.attributes[SERVICE_NAME] == "b"
    assert overflow.calls == 7
    assert snapshot.overflow_spans > 0


def test_streams_beyond_the_limit_are_dropped_and_counted(clock, make_request):
    merger = REDStreamMerger(stream_limit=2, clock=clock)
    clock.advance(1)
    merger.add_request(make_request(instance="a", start_s=1000.1, ok=1))
    merger.add_request(make_request(instance="b", start_s=1000.1, ok=5))
    assert _totals(merger) == (1, 0)
    assert merger.stats.dropped_points == 2
    assert merger.instances() == 1  # a sender with no tracked stream is not remembered either


SPEC = """
version: otelpipe/v1
service: checkout
slos:
  - name: availability
    objective: 99
    period: 30d
    sli: {kind: availability}
  - name: latency
    objective: 90
    period: 30d
    sli: {kind: latency, threshold: 100ms}
"""


def test_evaluator_on_merged_snapshots_sees_all_requests_and_no_restart_burst(clock, make_request):
    from otelpipe.slo.evaluator import SLOEvaluator
    from otelpipe.slo.spec import parse_spec

    merger = REDStreamMerger(clock=clock)
    evaluator = SLOEvaluator(parse_spec(SPEC), boundaries=merger.boundaries, clock=clock.seconds)
    counts = {"a": 0, "b": 0}
    for second in range(1, 31):
        clock.advance(1)
        for instance in counts:
            counts[instance] += 10
        if second == 15:
            counts["a"] = 4  # "a" was killed and respawned: its new process has served 4 so far
        start_a = 1000.1 if second < 15 else 1014.5
        merger.add_request(make_request(instance="a", start_s=start_a, time_s=clock.seconds(), ok=counts["a"]))
        merger.add_request(make_request(instance="b", start_s=1000.1, time_s=clock.seconds(), ok=counts["b"]))
        states = evaluator.tick(merger.snapshot())
        assert not any(state.firing for state in states), states
    availability, latency = evaluator.status()
    sent = 14 * 10 + 4 + 15 * 10 + 30 * 10
    assert availability.total == sent and availability.good == sent
    assert latency.total == sent and latency.good == sent  # every call in the 10 ms bucket
    assert availability.burn_rates["5m"] == 0.0


def test_saved_positions_let_a_restarted_merger_continue_every_stream(clock, make_request):
    import json

    first = REDStreamMerger(clock=clock)
    clock.advance(1)
    old_start = 10.0  # the sender started long before either merger
    first.add_request(make_request(instance="a", start_s=old_start, time_s=1001, ok=500, errors=5))
    clock.advance(1)
    first.add_request(make_request(instance="a", start_s=old_start, time_s=1002, ok=520, errors=6))
    _, positions = first.snapshot_and_positions()

    clock.advance(30)  # restarted, with the positions saved as JSON in the state dir
    second = REDStreamMerger(clock=clock)
    assert second.restore(json.loads(json.dumps(positions))) == 4
    second.add_request(make_request(instance="a", start_s=old_start, time_s=1033, ok=530, errors=8))
    assert _totals(second) == (12, 2)  # what happened since the last position: no gap, no burst
    assert second.stats.baselined == 0
    # a series new to the restored sender counts from zero too
    second.add_request(make_request(instance="b", start_s=old_start, time_s=1033, ok=999))
    assert _totals(second) == (12, 2)  # an unknown sender is still a baseline


def test_unreadable_positions_cost_only_a_baseline(clock, make_request):
    merger = REDStreamMerger(clock=clock)
    assert merger.restore([["garbage"], None, [1, 2, 3]]) == 0  # type: ignore[list-item]
    merger.add_request(make_request(instance="a", start_s=10, time_s=1001, ok=50))
    assert _totals(merger) == (0, 0)
