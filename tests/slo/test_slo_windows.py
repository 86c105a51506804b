"""Time-bucketed count rings."""

from otelpipe.slo.windows import CountRing, WindowCounts


def test_window_sums_slide_and_expire() -> None:
    ring = CountRing(10.0, [30.0, 60.0])
    ring.add(0, 1, 2)
    ring.add(10, 3, 4)
    ring.add(25, 5, 6)
    assert ring.window_sum(30.0) == (9, 12)
    ring.advance(30)  # bucket 0 leaves the 30 s window
    assert ring.window_sum(30.0) == (8, 10)
    assert ring.window_sum(60.0) == (9, 12)
    ring.advance(59.9)
    assert ring.window_sum(60.0) == (9, 12)
    ring.advance(60)
    assert ring.window_sum(60.0) == (8, 10)
    ring.advance(1000)  # a gap longer than the ring clears it
    assert ring.window_sum(60.0) == (0, 0)


def test_late_counts_land_in_newest_bucket() -> None:
    ring = CountRing(10.0, [30.0])
    ring.add(100, 1, 1)
    ring.add(50, 1, 1)
    assert ring.window_sum(30.0) == (2, 2)


def test_ring_wraps_many_times_and_matches_brute_force() -> None:
    ring = CountRing(1.0, [5.0, 7.0])
    events: list[tuple[int, int]] = []
    for t in range(0, 200, 3):
        ring.add(t, t % 4, 5)
        events.append((t, t % 4))
        for window in (5, 7):
            expected = [g for at, g in events if at > t - window]
            assert ring.window_sum(float(window)) == (sum(expected), 5 * len(expected))


def test_roundtrip_and_layout_mismatch() -> None:
    counts = WindowCounts([300, 3600, 86400, 259200], 2592000)
    counts.add(1000, 7, 9)
    data = counts.to_bytes()
    again = WindowCounts([300, 3600, 86400, 259200], 2592000)
    assert again.load_bytes(data)
    again.advance(1000)
    assert again.window_sum(3600) == (7, 9)
    assert again.window_sum(2592000) == (7, 9)
    other = WindowCounts([60, 3600], 86400)
    assert not other.load_bytes(data)
    assert not other.load_bytes(b"garbage")
    assert other.window_sum(3600) == (0, 0)


def test_thirty_day_slo_fits_in_one_megabyte() -> None:
    counts = WindowCounts([300, 1800, 3600, 7200, 21600, 86400, 259200], 30 * 86400)
    assert len(counts.rings) == 2
    assert counts.rings[0].resolution == 10.0
    assert counts.rings[1].resolution == 600.0
    assert counts.memory_bytes() <= 1_000_000
