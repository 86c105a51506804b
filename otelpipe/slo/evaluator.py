"""In-process SLO evaluation: diff cumulative RED snapshots into window counts, judge each tier.

Runs once per evaluation tick on a background thread, never on the span path. Emits one
level-triggered `AlertState` per SLO per tick; the incident engine owns edges and hold-downs.

`time_scale` (demo only) divides every window and the period, so a 30-day SLO with
`time_scale=720` behaves like a 1-hour one and a burn shows within a minute. Window labels
(`5m`, `1h`, ...) keep their nominal, unscaled names so that in-process figures line up with the
Prometheus rules.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from otelpipe.alerts import AlertState
from otelpipe.processors.red_snapshot import (
    STATUS_CODE,
    STATUS_ERROR,
    ExemplarRef,
    REDSnapshot,
    SeriesIdentity,
    SeriesStats,
)
from otelpipe.slo.burn import TierVerdict, budget_remaining, burn_rate, evaluate_tier
from otelpipe.slo.durations import format_duration
from otelpipe.slo.identity import alert_name, identity_labels
from otelpipe.slo.model import SLO, SLOSpec
from otelpipe.slo.spec import check_thresholds, snap_threshold
from otelpipe.slo.state import SavedSLO, SLOStateStore
from otelpipe.slo.windows import WindowCounts
from otelpipe.slo.wording import budget_text

_logger = logging.getLogger("otelpipe.slo")

_MAX_EXEMPLARS = 5
_SEVERITY = {"page": "critical", "ticket": "warning"}


@dataclass(frozen=True, slots=True)
class SLOStatus:
    """Latest figures of one SLO: what `otelpipe slo status` prints and the gauges export."""

    key: str
    name: str
    service: str
    objective: float
    period: str  # nominal, e.g. "30d"
    at: float
    sli: float | None  # good/total over the period; None without traffic
    good: int
    total: int
    budget_remaining: float
    sli_by_window: Mapping[str, float | None] = field(default_factory=dict)
    burn_rates: Mapping[str, float] = field(default_factory=dict)
    firing: bool = False
    severity: str = ""  # "page" or "ticket" while firing
    firing_tiers: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """Plain-JSON form, for the state store."""
        data = asdict(self)
        data["sli_by_window"] = dict(self.sli_by_window)
        data["burn_rates"] = dict(self.burn_rates)
        data["firing_tiers"] = list(self.firing_tiers)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SLOStatus:
        """Inverse of `to_json`; raises on malformed data."""
        fields: dict[str, Any] = dict(data)
        fields["firing_tiers"] = tuple(fields.get("firing_tiers") or ())
        return cls(**fields)


@dataclass(slots=True)
class _Previous:
    start: int
    calls: int
    errors: int
    buckets: tuple[int, ...]


class _Track:
    """One SLO with its window counts and the scaled window length of each nominal label."""

    __slots__ = ("counts", "labels", "pending", "slo", "threshold")

    def __init__(self, slo: SLO, threshold: float | None, time_scale: float) -> None:
        self.slo = slo
        self.threshold = threshold
        self.pending: dict[int, float] = {}  # tier index -> since when its condition holds (for `for:`)
        # nominal label -> scaled length; the period last so tables read short to long
        self.labels: dict[str, float] = {format_duration(w): w / time_scale for w in slo.windows()}
        self.counts = WindowCounts(self.labels.values(), slo.period / time_scale)

    def window(self, nominal: float) -> tuple[int, int]:
        return self.counts.window_sum(self.labels[format_duration(nominal)])


class SLOEvaluator:
    """Evaluates every SLO of a spec from successive RED snapshots.

    `boundaries` are the RED histogram boundaries (seconds); latency thresholds must be among
    them (`SLOSpecError` otherwise). With a `state` store, window counts are restored at start and
    saved every `persist_interval` seconds and on `flush()`.
    """

    def __init__(
        self,
        spec: SLOSpec,
        *,
        boundaries: Sequence[float],
        clock: Callable[[], float] = time.time,
        state: SLOStateStore | None = None,
        time_scale: float = 1.0,
        persist_interval: float = 60.0,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        check_thresholds(spec, boundaries)
        self.spec = spec
        self._boundaries = tuple(boundaries)
        self._clock = clock
        self._state = state
        self._time_scale = time_scale
        self._persist_interval = persist_interval
        self._tracks = [
            _Track(
                slo,
                None
                if slo.sli.threshold_seconds is None
                else snap_threshold(slo.sli.threshold_seconds, self._boundaries),
                time_scale,
            )
            for slo in spec.slos
        ]
        self._previous: dict[SeriesIdentity, _Previous] = {}
        self._matches: dict[SeriesIdentity, tuple[int, ...]] = {}
        self._lock = threading.Lock()
        self._latest: list[SLOStatus] = []
        self._last_save = clock()
        self._warned_boundaries = False
        if state is not None:
            self._restore(state)

    # ---------------------------------------------------------------- public

    def tick(self, snapshot: REDSnapshot) -> list[AlertState]:
        """Fold `snapshot` into the windows and return the current state of every SLO."""
        with self._lock:
            now = self._clock()
            good, total = self._diff(snapshot)
            for index, track in enumerate(self._tracks):
                track.counts.add(now, good[index], total[index])
            alerts: list[AlertState] = []
            statuses: list[SLOStatus] = []
            for track in self._tracks:
                status, verdicts = self._judge(track, now, advance=True)
                statuses.append(status)
                alerts.append(self._alert(track, status, verdicts, snapshot, now))
            self._latest = statuses
            if self._state is not None and now - self._last_save >= self._persist_interval:
                self._save(self._state, now)
        return alerts

    def status(self) -> list[SLOStatus]:
        """Latest status of each SLO (computed now from the windows if no tick ran yet)."""
        latest = self._latest
        if latest:
            return list(latest)
        with self._lock:
            now = self._clock()
            return [self._judge(track, now)[0] for track in self._tracks]

    def flush(self) -> None:
        """Save window counts to the state store now (call at shutdown)."""
        with self._lock:
            if self._state is not None:
                self._save(self._state, self._clock())

    def memory_bytes(self) -> int:
        """Bytes held by all window rings."""
        return sum(track.counts.memory_bytes() for track in self._tracks)

    # ---------------------------------------------------------------- internals

    def _diff(self, snapshot: REDSnapshot) -> tuple[list[int], list[int]]:
        """Per-SLO (good, total) events since the previous snapshot.

        A series seen for the first time, or whose counts went down or start time changed (a
        restart or fork of the RED store), counts from zero.
        """
        count = len(self._tracks)
        good = [0] * count
        total = [0] * count
        at_most_index = self._threshold_indices(snapshot.boundaries)
        previous = self._previous
        current: dict[SeriesIdentity, _Previous] = {}
        for series in snapshot.series:
            key = series.identity
            matches = self._matches.get(key)
            if matches is None:
                matches = self._match(series)
                self._matches[key] = matches
            now = _Previous(series.start_time_unix_nano, series.calls, series.errors, series.bucket_counts)
            current[key] = now
            if not matches:
                continue
            before = previous.get(key)
            if (
                before is None
                or before.start != now.start
                or now.calls < before.calls
                or now.errors < before.errors
                or len(before.buckets) != len(now.buckets)
            ):
                before = _Previous(now.start, 0, 0, (0,) * len(now.buckets))
            calls = now.calls - before.calls
            if calls <= 0:
                continue
            errors = now.errors - before.errors
            at_most: dict[int, int] = {}
            for index in matches:
                track = self._tracks[index]
                total[index] += calls
                if track.threshold is None:
                    good[index] += calls - errors
                    continue
                bucket = at_most_index.get(track.threshold)
                if bucket is None:
                    total[index] -= calls  # cannot judge latency without the bucket: skip
                    continue
                if bucket not in at_most:
                    at_most[bucket] = sum(now.buckets[: bucket + 1]) - sum(before.buckets[: bucket + 1])
                good[index] += at_most[bucket]
        self._previous = current
        if len(self._matches) > 4 * max(len(current), 1000):
            self._matches = {k: v for k, v in self._matches.items() if k in current}
        return good, total

    def _match(self, series: SeriesStats) -> tuple[int, ...]:
        attributes = series.attributes
        return tuple(i for i, track in enumerate(self._tracks) if track.slo.sli.selector.matches(attributes))

    def _threshold_indices(self, boundaries: tuple[float, ...]) -> dict[float, int]:
        thresholds = {t.threshold for t in self._tracks if t.threshold is not None}
        out = {b: i for i, b in enumerate(boundaries) if b in thresholds}
        if len(out) != len(thresholds) and not self._warned_boundaries:
            self._warned_boundaries = True
            _logger.warning(
                "RED histogram boundaries %s lack latency SLO thresholds %s; those SLOs are not updated",
                boundaries,
                sorted(thresholds - set(out)),
            )
        return out

    def _judge(
        self, track: _Track, now: float, *, advance: bool = False
    ) -> tuple[SLOStatus, list[TierVerdict]]:
        slo = track.slo
        track.counts.advance(now)
        verdicts = [
            self._held(
                track,
                index,
                evaluate_tier(
                    tier,
                    track.window(tier.short_window),
                    track.window(tier.long_window),
                    slo.objective,
                    slo.min_events,
                ),
                now,
                advance,
            )
            for index, tier in enumerate(slo.tiers)
        ]
        burn_rates: dict[str, float] = {}
        sli_by_window: dict[str, float | None] = {}
        for label, scaled in track.labels.items():
            good, total = track.counts.window_sum(scaled)
            burn_rates[label] = burn_rate(good, total, slo.objective)
            sli_by_window[label] = good / total if total else None
        good, total = track.window(slo.period)
        firing = [v for v in verdicts if v.firing]
        severity = ""
        if firing:
            severity = "page" if any(v.tier.severity == "page" for v in firing) else "ticket"
        status = SLOStatus(
            key=slo.key,
            name=slo.name,
            service=slo.service,
            objective=slo.objective,
            period=format_duration(slo.period),
            at=now,
            sli=good / total if total else None,
            good=good,
            total=total,
            budget_remaining=budget_remaining(good, total, slo.objective),
            sli_by_window=sli_by_window,
            burn_rates=burn_rates,
            firing=bool(firing),
            severity=severity,
            firing_tiers=tuple(v.tier.name for v in firing),
        )
        return status, verdicts

    def _held(
        self, track: _Track, index: int, verdict: TierVerdict, now: float, advance: bool
    ) -> TierVerdict:
        """A tier with `for_seconds` (OpenSLO alertAfter, Prometheus `for:`) fires only once its
        condition has held that long; `advance` (a tick) records when the condition started."""
        hold = verdict.tier.for_seconds / self._time_scale
        if hold <= 0:
            return verdict
        if not verdict.firing:
            if advance:
                track.pending.pop(index, None)
            return verdict
        since = track.pending.get(index)
        if since is None:
            since = now
            if advance:
                track.pending[index] = now
        return verdict if now - since >= hold else replace(verdict, firing=False)

    def _alert(
        self,
        track: _Track,
        status: SLOStatus,
        verdicts: list[TierVerdict],
        snapshot: REDSnapshot,
        now: float,
    ) -> AlertState:
        slo = track.slo
        worst = _worst(verdicts)
        tier_name = worst.tier.name if worst is not None else ""
        if status.firing and worst is not None:
            burn = min(worst.short_burn, worst.long_burn)
            # the tier's own threshold beside the burn, so severity never reads against the number
            summary = (
                f"{slo.name} burning {burn:.1f}x budget over {format_duration(worst.tier.short_window)}"
                f"/{format_duration(worst.tier.long_window)} ({worst.tier.severity} fires at "
                f"{worst.tier.factor:g}x); {budget_text(status.budget_remaining, status.period)}"
            )
            exemplars = self._exemplars(track, snapshot)
        else:
            budget = budget_text(status.budget_remaining if status.total else None, status.period)
            if worst is None:
                summary = f"{slo.name}: {budget}"
            else:
                burn = min(worst.short_burn, worst.long_burn)
                summary = (
                    f"{slo.name} below its alert thresholds: burning {burn:.1f}x over "
                    f"{format_duration(worst.tier.short_window)}/{format_duration(worst.tier.long_window)} "
                    f"({worst.tier.severity} fires at {worst.tier.factor:g}x); {budget}"
                )
            exemplars = ()
        return AlertState(
            key=slo.key,
            service=slo.service,
            name=slo.name,
            firing=status.firing,
            severity="critical" if status.severity == "page" else "warning",  # type: ignore[arg-type]
            summary=summary,
            at=now,
            kind="slo",
            tier=tier_name,
            objective=slo.objective,
            burn_rates=dict(status.burn_rates),
            budget_remaining=status.budget_remaining,
            total=worst.long_total if worst is not None else 0,
            errors=worst.long_bad if worst is not None else 0,
            exemplars=exemplars,
            # The generated Prometheus alert's identity (alertname, sloth_*), so one Alertmanager
            # inhibit rule (equal: [sloth_id]) links both paths; sloth_severity follows severity.
            labels={
                **identity_labels(slo, "page" if status.severity == "page" else "ticket"),
                "alertname": alert_name(slo),
            },
        )

    def _exemplars(self, track: _Track, snapshot: REDSnapshot) -> tuple[ExemplarRef, ...]:
        """Recent failing (availability) or too-slow (latency) requests from the SLO's series."""
        selector = track.slo.sli.selector
        found: list[ExemplarRef] = []
        for series in snapshot.series:
            if not series.exemplars or not selector.matches(series.attributes):
                continue
            series_error = series.attributes.get(STATUS_CODE) == STATUS_ERROR
            for exemplar in series.exemplars:
                if track.threshold is None:
                    bad = exemplar.error or series_error
                else:
                    bad = exemplar.value > track.threshold
                if bad:
                    found.append(exemplar)
        found.sort(key=lambda e: e.time_unix_nano, reverse=True)
        return tuple(found[:_MAX_EXEMPLARS])

    def _restore(self, state: SLOStateStore) -> None:
        try:
            saved = state.load()
        except Exception:  # never keep the host app from starting over lost history
            _logger.warning("could not read SLO state from %s; starting fresh", state.path, exc_info=True)
            return
        self.load_saved(saved)

    def load_saved(self, saved: Mapping[str, SavedSLO]) -> None:
        """Restore window counts from saved rows (done at start when a state store is given)."""
        with self._lock:
            self._load_saved(saved)

    def _load_saved(self, saved: Mapping[str, SavedSLO]) -> None:
        for track in self._tracks:
            row = saved.get(track.slo.key)
            if row is None:
                continue
            if not track.counts.load_bytes(row.rings):
                _logger.warning(
                    "saved windows of SLO %s do not fit its current windows or time scale; starting it fresh",
                    track.slo.key,
                )
        self._latest = []

    def _save(self, state: SLOStateStore, now: float) -> None:
        statuses = {s.key: s for s in self._latest}
        rows = []
        for track in self._tracks:
            status = statuses.get(track.slo.key) or self._judge(track, now)[0]
            rows.append(SavedSLO(track.slo.key, track.counts.to_bytes(), status.to_json(), now))
        try:
            state.save(rows)
        except Exception:  # a full disk must not break evaluation
            _logger.warning("could not save SLO state to %s", state.path, exc_info=True)
        self._last_save = now


def _worst(verdicts: Sequence[TierVerdict]) -> TierVerdict | None:
    """The firing tier that matters most (page before ticket, then highest factor); else the closest."""
    if not verdicts:
        return None
    firing = [v for v in verdicts if v.firing]
    if firing:
        return max(firing, key=lambda v: (v.tier.severity == "page", v.tier.factor))
    return max(verdicts, key=lambda v: min(v.short_burn, v.long_burn) / v.tier.factor)
