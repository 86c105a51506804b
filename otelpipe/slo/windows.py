"""Bounded, time-bucketed good/total counts with running sums over fixed sliding windows.

Each SLO keeps two rings: a fine one (resolution = shortest window / 30) for the short alert
windows and a coarse one (resolution = period / 4320) for days-long windows and the period. A
window lives in the finest ring that covers it in at most 4320 buckets, so a 30-day SLO uses
2 x (2160 + 4320) int64 cells (~104 KB) and a window sum is off by less than one bucket.
Running sums make a read O(1) and an update O(windows + buckets passed).
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterable

_MAX_BUCKETS = 4320
_FINE_DIVISIONS = 30
_HEADER = struct.Struct("<4sdqq")  # magic, resolution, size, head (-1 = empty)
_MAGIC = b"RNG1"


class CountRing:
    """Ring of (good, total) counts per time bucket, with running sums over each window.

    A window of length w covers the newest ceil(w / resolution) buckets, the current one included.
    Counts that arrive for a bucket older than the newest are added to the newest (clocks never
    run backwards on purpose; losing them would hide errors).
    """

    __slots__ = ("_good", "_head", "_n", "_sum_good", "_sum_total", "_total", "resolution", "size")

    def __init__(self, resolution: float, windows: Iterable[float]) -> None:
        if resolution <= 0:
            raise ValueError("resolution must be positive")
        self.resolution = resolution
        self._n: dict[float, int] = {w: max(1, math.ceil(w / resolution - 1e-9)) for w in windows}
        if not self._n:
            raise ValueError("a ring needs at least one window")
        self.size = max(self._n.values())
        self._good = array("q", bytes(8 * self.size))
        self._total = array("q", bytes(8 * self.size))
        self._head: int | None = None
        self._sum_good: dict[float, int] = dict.fromkeys(self._n, 0)
        self._sum_total: dict[float, int] = dict.fromkeys(self._n, 0)

    @property
    def windows(self) -> tuple[float, ...]:
        """Window lengths (seconds) this ring keeps sums for."""
        return tuple(self._n)

    def add(self, now: float, good: int, total: int) -> None:
        """Count `good` of `total` events at time `now` (seconds)."""
        self.advance(now)
        if not total and not good:
            return
        assert self._head is not None
        index = self._head % self.size
        self._good[index] += good
        self._total[index] += total
        for w in self._n:
            self._sum_good[w] += good
            self._sum_total[w] += total

    def advance(self, now: float) -> None:
        """Move the newest bucket to `now`, dropping what falls out of each window."""
        bucket = math.floor(now / self.resolution)
        head = self._head
        if head is None:
            self._head = bucket
            return
        steps = bucket - head
        if steps <= 0:
            return
        if steps >= self.size:
            self._clear()
            self._head = bucket
            return
        for w, n in self._n.items():
            leaving = min(steps, n)
            self._sum_good[w] -= self._range_sum(self._good, head - n + 1, leaving)
            self._sum_total[w] -= self._range_sum(self._total, head - n + 1, leaving)
        self._zero_range(head + 1, steps)
        self._head = bucket

    def window_sum(self, window: float) -> tuple[int, int]:
        """(good, total) over `window`, as of the last `add`/`advance`."""
        return self._sum_good[window], self._sum_total[window]

    def to_bytes(self) -> bytes:
        """Serialised counts, for the state store."""
        head = -1 if self._head is None else self._head
        header = _HEADER.pack(_MAGIC, self.resolution, self.size, head)
        return header + self._good.tobytes() + self._total.tobytes()

    def load_bytes(self, data: bytes) -> bool:
        """Restore counts saved by `to_bytes`; False (and unchanged) if the layout differs."""
        if len(data) != _HEADER.size + 16 * self.size:
            return False
        magic, resolution, size, head = _HEADER.unpack_from(data)
        if magic != _MAGIC or resolution != self.resolution or size != self.size:
            return False
        body = memoryview(data)[_HEADER.size :]
        good = array("q")
        good.frombytes(body[: 8 * size])
        total = array("q")
        total.frombytes(body[8 * size :])
        self._good, self._total = good, total
        self._head = None if head < 0 else head
        for w, n in self._n.items():
            if self._head is None:
                self._sum_good[w] = self._sum_total[w] = 0
            else:
                self._sum_good[w] = self._range_sum(self._good, self._head - n + 1, n)
                self._sum_total[w] = self._range_sum(self._total, self._head - n + 1, n)
        return True

    def _range_sum(self, cells: array[int], first: int, count: int) -> int:
        start = first % self.size
        end = start + count
        if end <= self.size:
            return sum(cells[start:end])
        return sum(cells[start:]) + sum(cells[: end - self.size])

    def _zero_range(self, first: int, count: int) -> None:
        start = first % self.size
        end = start + count
        for cells in (self._good, self._total):
            if end <= self.size:
                cells[start:end] = array("q", bytes(8 * count))
            else:
                cells[start:] = array("q", bytes(8 * (self.size - start)))
                cells[: end - self.size] = array("q", bytes(8 * (end - self.size)))

    def _clear(self) -> None:
        self._good = array("q", bytes(8 * self.size))
        self._total = array("q", bytes(8 * self.size))
        for w in self._n:
            self._sum_good[w] = self._sum_total[w] = 0


class WindowCounts:
    """Good/total counts of one SLO over all its windows: a fine ring and a coarse ring.

    `windows` are the lengths (seconds) to keep; `period` the longest (the SLO period).
    """

    __slots__ = ("_ring_of", "rings")

    def __init__(self, windows: Iterable[float], period: float) -> None:
        lengths = sorted(set(windows) | {period})
        fine_res = lengths[0] / _FINE_DIVISIONS
        coarse_res = max(fine_res, period / _MAX_BUCKETS)
        fine = [w for w in lengths if w / fine_res <= _MAX_BUCKETS]
        coarse = [w for w in lengths if w / fine_res > _MAX_BUCKETS]
        self.rings: tuple[CountRing, ...] = (CountRing(fine_res, fine),)
        if coarse:
            self.rings += (CountRing(coarse_res, coarse),)
        self._ring_of: dict[float, CountRing] = {w: ring for ring in self.rings for w in ring.windows}

    def add(self, now: float, good: int, total: int) -> None:
        """Count `good` of `total` events observed at `now`."""
        for ring in self.rings:
            ring.add(now, good, total)

    def advance(self, now: float) -> None:
        """Let time pass without events (so old buckets leave the windows)."""
        for ring in self.rings:
            ring.advance(now)

    def window_sum(self, window: float) -> tuple[int, int]:
        """(good, total) over `window` seconds."""
        return self._ring_of[window].window_sum(window)

    def memory_bytes(self) -> int:
        """Bytes held by the count arrays (the bound the issue asks for: <= 1 MB per SLO)."""
        return sum(16 * ring.size for ring in self.rings)

    def to_bytes(self) -> bytes:
        """All rings, serialised, for the state store."""
        parts = [ring.to_bytes() for ring in self.rings]
        return struct.pack("<I", len(parts)) + b"".join(struct.pack("<I", len(p)) + p for p in parts)

    def load_bytes(self, data: bytes) -> bool:
        """Restore rings saved by `to_bytes`; False (nothing changed) if the layout differs."""
        try:
            (count,) = struct.unpack_from("<I", data)
            offset = 4
            parts: list[bytes] = []
            for _ in range(count):
                (length,) = struct.unpack_from("<I", data, offset)
                parts.append(data[offset + 4 : offset + 4 + length])
                offset += 4 + length
        except struct.error:
            return False
        if count != len(self.rings) or offset != len(data):
            return False
        backups = [ring.to_bytes() for ring in self.rings]
        for ring, part in zip(self.rings, parts, strict=True):
            if not ring.load_bytes(part):
                for restored, backup in zip(self.rings, backups, strict=True):
                    restored.load_bytes(backup)
                return False
        return True
