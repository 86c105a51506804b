"""Rules over any metric the app records (system, process, business), read by `MetricSnapshotReader`.

They share the `rules:` list of the SLO YAML with the RED threshold rules; an entry with a
`metric:` key is a metric rule::

    rules:
      - name: high-cpu                       # required; key is "<service>/<name>"
        service: shop                        # optional: only the process whose service.name it is
        metric: system.cpu.utilization       # instrument name, as recorded (any scope)
        match: {state: idle}                 # attribute filter ("*" = any value)
        aggregate: avg                       # sum | avg | min | max over matching series
        value: {below: 0.2}                  # idle under 20 % = CPU busier than 80 %
        for: 2m                              # the condition must hold this long (default 0)
        severity: critical                   # critical | error | warning | info (default warning)
        labels: {team: shop}
      - name: orders-stopped
        service: shop
        metric: shop.orders.created
        window: 2m                           # look-back of rate, quantile and absent (default 5m)
        rate: {below: 0.05}                  # per second, increase over the window
      - name: slow-checkout
        metric: http.server.duration
        unit: ms                             # optional: the unit as recorded, for the PromQL name
        match: {http.route: /checkout}
        quantile: {quantile: 0.95, above: 2000, min_count: 20}
      - name: no-signups
        metric: shop.signups
        window: 10m
        absent: true

Exactly one condition: `value` (current value: gauges, up-down counters, counter totals), `rate`
(per-second increase of a counter or change of an up-down counter over the window; needs a full
window of history, so a starting process does not read "no orders yet" as "orders stopped"),
`quantile` (of a histogram's observations in the window, interpolated like Prometheus'
`histogram_quantile`; `min_count` observations at least) or `absent` (the metric stopped: seen in
this process, then no data for the whole window: for counters and histograms nothing recorded, for
gauges and up-down counters no point; a metric never seen here, such as one recorded only in
other processes, does not fire).
Conditions take `above` or `below` (strict); numbers, or percentages such as `80%`.
Aggregation defaults to `avg` for gauges and `sum` otherwise.

Pure: `MetricRuleEvaluator.evaluate(snapshot, now)` turns successive cumulative snapshots into
level-triggered `AlertState`s. Memory is O(matching series + ticks in the window) per rule.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from otelpipe.alerts import AlertState, Severity
from otelpipe.incidents.rules import (
    ANY,
    RuleSpecError,
    _duration,
    _label,
    _mapping,
    _only,
    _short,
    _strings,
    _text,
    estimate_quantile,
)
from otelpipe.processors.metric_snapshot import MetricPoint, MetricSnapshot
from otelpipe.slo.spec_file import SpecFileError, load_documents, read_spec_text
from otelpipe.slo.wording import human_duration

Condition = Literal["value", "rate", "quantile", "absent"]
Aggregate = Literal["sum", "avg", "min", "max"]
_CONDITIONS: tuple[Condition, ...] = get_args(Condition)
_AGGREGATES: tuple[Aggregate, ...] = get_args(Aggregate)
_KEYS = {
    "name",
    "service",
    "metric",
    "unit",
    "match",
    "aggregate",
    "window",
    "for",
    "severity",
    "labels",
    *_CONDITIONS,
}


@dataclass(frozen=True, slots=True)
class MetricRule:
    """One parsed metric rule; `condition` says which test applies, `above`/`below` its threshold."""

    name: str
    metric: str
    condition: Condition
    service: str = ""  # "" = whichever service reads the file
    above: float | None = None
    below: float | None = None
    quantile: float = 0.95
    min_count: int = 0
    aggregate: Aggregate | None = None  # None: avg for gauges, sum otherwise
    window_s: float = 300.0
    for_s: float = 0.0
    severity: Severity = "warning"
    match: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""  # path in the file, e.g. rules[2]
    unit: str = ""  # the instrument's unit as recorded (ms, s, By, 1, ...): only for generated PromQL names

    def key(self, service: str) -> str:
        """Condition identity in the process of `service`; the incident dedup key derives from it."""
        return f"{self.service or service}/{self.name}"

    def threshold_text(self) -> str:
        return f"above {self.above:g}" if self.above is not None else f"below {self.below:g}"

    def describe(self) -> str:
        """One line, e.g. `system.cpu.utilization{state=idle} avg below 0.2, for 5m`."""
        match = ",".join(f"{k}={v}" for k, v in self.match.items())
        subject = f"{self.metric}{{{match}}}" if match else self.metric
        window = _label(self.window_s)
        if self.condition == "absent":
            text = f"{subject} absent for {window}"
        elif self.condition == "value":
            text = f"{subject} {self.aggregate or 'sum/avg'} {self.threshold_text()}"
        elif self.condition == "rate":
            text = f"{subject} rate {self.threshold_text()}/s over {window}"
        else:
            text = f"{subject} p{self.quantile * 100:g} {self.threshold_text()} over {window}"
        return text + (f", for {_label(self.for_s)}" if self.for_s else "")


# -- parsing ------------------------------------------------------------------------------------


def load_metric_rules(
    path: str | Path, *, errors: list[RuleSpecError] | None = None
) -> tuple[MetricRule, ...]:
    """Metric rules from the `rules:` key of a YAML file (none when absent, or in OpenSLO files)."""
    try:  # the same bounded reading as the SLO spec (regular file, size, alias and depth budgets)
        documents = load_documents(read_spec_text(path), str(path))
    except SpecFileError as exc:
        raise RuleSpecError(f"{exc.where or '<top>'}", exc.found, exc.expected) from None
    if len(documents) != 1:
        return ()
    return parse_metric_rules(documents[0], errors=errors)


def parse_metric_rules(
    document: object, *, errors: list[RuleSpecError] | None = None
) -> tuple[MetricRule, ...]:
    """Validate every `rules:` entry that has a `metric:` key; `RuleSpecError` at the first problem.

    With `errors`, a bad rule is appended there and left out, and the valid ones are returned.
    """
    if not isinstance(document, Mapping):
        return ()  # parse_rules reports a malformed document
    raw = document.get("rules")
    if not isinstance(raw, list):
        return ()
    rules: list[MetricRule] = []
    seen: dict[tuple[str, str], str] = {}
    for index, item in enumerate(raw):
        path = f"rules[{index}]"
        if not isinstance(item, Mapping):
            continue
        if "metric" not in item:  # a RED threshold rule shares the incident key space
            if isinstance(item.get("service"), str) and isinstance(item.get("name"), str):
                seen[item["service"].strip(), item["name"].strip()] = path
            continue
        try:
            rule = parse_metric_rule(item, path)
            for (service, name), other in seen.items():
                if name == rule.name and (service == rule.service or "" in (service, rule.service)):
                    raise RuleSpecError(
                        f"{path}.name", rule.name, f"a name unique per service (also at {other})"
                    )
        except RuleSpecError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        seen[rule.service, rule.name] = path
        rules.append(rule)
    return tuple(rules)


def parse_metric_rule(item: object, path: str) -> MetricRule:
    """One `rules:` entry with a `metric:` key."""
    spec = _mapping(item, path)
    _only(spec, _KEYS, path)
    name = _text(spec.get("name"), f"{path}.name")
    metric = _text(spec.get("metric"), f"{path}.metric")
    service = _text(spec["service"], f"{path}.service") if "service" in spec else ""
    severity = spec.get("severity", "warning")
    if severity not in get_args(Severity):
        raise RuleSpecError(f"{path}.severity", severity, "one of critical, error, warning, info")
    aggregate = spec.get("aggregate")
    if aggregate is not None and aggregate not in _AGGREGATES:
        raise RuleSpecError(f"{path}.aggregate", aggregate, "one of sum, avg, min, max")
    window_s = _duration(spec.get("window", "5m"), f"{path}.window")
    for_s = 0.0 if spec.get("for", 0) in (0, "0", "0s") else _duration(spec.get("for"), f"{path}.for")
    present = [c for c in _CONDITIONS if c in spec]
    if len(present) != 1:
        raise RuleSpecError(path, sorted(spec), "exactly one of value, rate, quantile or absent")
    condition = present[0]
    common: dict[str, Any] = {
        "name": name,
        "metric": metric,
        "condition": condition,
        "service": service,
        "aggregate": cast(Aggregate | None, aggregate),
        "window_s": window_s,
        "for_s": for_s,
        "severity": cast(Severity, severity),
        "match": _strings(spec.get("match", {}), f"{path}.match"),
        "labels": _strings(spec.get("labels", {}), f"{path}.labels"),
        "origin": path,
        "unit": _text(spec["unit"], f"{path}.unit") if "unit" in spec else "",
    }
    where = f"{path}.{condition}"
    if condition == "absent":
        if spec["absent"] is not True:
            raise RuleSpecError(where, spec["absent"], "true (no data for the rule's window)")
        return MetricRule(**common)
    threshold = _mapping(spec[condition], where)
    allowed = {"above", "below"} | ({"quantile", "min_count"} if condition == "quantile" else set())
    _only(threshold, allowed, where)
    if ("above" in threshold) == ("below" in threshold):
        raise RuleSpecError(where, dict(threshold), "exactly one of above or below")
    bound = "above" if "above" in threshold else "below"
    value = _number(threshold[bound], f"{where}.{bound}")
    extra: dict[str, Any] = {}
    if condition == "quantile":
        quantile = threshold.get("quantile", 0.95)
        if isinstance(quantile, bool) or not isinstance(quantile, int | float) or not 0 < quantile < 1:
            raise RuleSpecError(f"{where}.quantile", quantile, "a number between 0 and 1, e.g. 0.95")
        min_count = threshold.get("min_count", 0)
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 0:
            raise RuleSpecError(f"{where}.min_count", min_count, "a whole number >= 0")
        extra = {"quantile": float(quantile), "min_count": min_count}
    extra[bound] = value
    return MetricRule(**common, **extra)


def _number(value: object, path: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            pass
    raise RuleSpecError(path, _short(value), "a finite number such as 0.8, or a percentage such as 80%")


# -- evaluation ---------------------------------------------------------------------------------

_SeriesKey = tuple[tuple[str, Any], ...]


@dataclass
class _RuleState:
    """What one rule remembers between ticks."""

    started: float | None = None  # first tick this rule saw
    last_data: float | None = None  # absent: last tick with data
    pending_since: float | None = None  # `for:` bookkeeping
    # per series: (start time, cumulative value or count, cumulative bucket counts)
    series: dict[_SeriesKey, tuple[int, float, tuple[int, ...]]] = field(default_factory=dict)
    # running increase since `started` (sums: value, histograms: count and buckets), one entry per tick
    increase: float = 0.0
    buckets: tuple[int, ...] = ()
    boundaries: tuple[float, ...] = ()
    history: deque[tuple[float, float, tuple[int, ...]]] = field(default_factory=lambda: deque(maxlen=4096))


class MetricRuleEvaluator:
    """Evaluates metric rules against successive cumulative `MetricSnapshot`s."""

    def __init__(self, rules: Sequence[MetricRule]) -> None:
        self.rules = tuple(rules)
        self._states: dict[str, _RuleState] = {rule.origin or rule.name: _RuleState() for rule in self.rules}

    def evaluate(self, snapshot: MetricSnapshot, now: float | None = None) -> list[AlertState]:
        """One `AlertState` per rule that applies to this process's service (firing or not)."""
        at = snapshot.time_unix_nano / 1e9 if now is None else now
        states = []
        for rule in self.rules:
            if rule.service and snapshot.service and rule.service != snapshot.service:
                continue  # another service's rule: this process has no say on it
            states.append(self._evaluate(rule, snapshot, at))
        return states

    def _evaluate(self, rule: MetricRule, snapshot: MetricSnapshot, now: float) -> AlertState:
        state = self._states[rule.origin or rule.name]
        if state.started is None:
            state.started = now
        points = snapshot.points.get(rule.metric, ())
        if rule.match:
            points = tuple(p for p in points if _matches(rule.match, p))
        grew = self._track(state, points, now)
        holds, shown, total = self._condition(rule, state, points, grew, now)
        if holds:
            state.pending_since = now if state.pending_since is None else state.pending_since
        else:
            state.pending_since = None
        firing = holds and now - cast(float, state.pending_since) >= rule.for_s
        service = rule.service or snapshot.service
        held = ""
        if holds and rule.for_s and state.pending_since is not None:
            held = f", for {human_duration(now - state.pending_since)}"
        return AlertState(
            key=rule.key(snapshot.service),
            service=service,
            name=rule.name,
            firing=firing,
            severity=rule.severity,
            summary=f"{rule.name}: {rule.metric} {shown}{held}",
            at=now,
            kind="rule",
            total=total,
            labels={**rule.labels, "metric": rule.metric},
        )

    def _track(self, state: _RuleState, points: Sequence[MetricPoint], now: float) -> bool:
        """Fold this tick's cumulative points into the running increase; True if anything was recorded.

        Runs per matching series per tick, so it stays flat: one dict lookup, bucket sums in place.
        """
        started_ns = cast(float, state.started) * 1e9
        series = state.series
        acc = list(state.buckets)
        increase = 0.0
        grew = False
        for point in points:
            kind = point.kind
            if kind == "gauge":
                continue
            key = point.identity or tuple(sorted(point.attributes.items()))
            buckets: tuple[int, ...] = ()
            if kind == "histogram":
                if state.boundaries and point.boundaries != state.boundaries:
                    continue  # different buckets cannot be added up
                state.boundaries = point.boundaries
                figure, buckets = float(point.count), point.bucket_counts
            else:
                figure = point.value
            start = point.start_time_unix_nano
            before = series.get(key)
            base: tuple[int, ...] | None
            if before is not None and before[0] == start and figure >= before[1]:
                delta, base = figure - before[1], before[2]
            elif before is None and start < started_ns:
                delta, base = 0.0, buckets  # baseline: recorded before we watched
            elif kind == "updowncounter" and before is not None:
                delta, base = figure - before[1], buckets
            else:  # new or restarted series: everything it holds is new
                delta, base = figure, None
            series[key] = (start, figure, buckets)
            increase += delta
            if delta:
                grew = True
                if buckets:
                    if len(acc) != len(buckets):
                        acc = [0] * len(buckets)
                    if base is None or len(base) != len(buckets):
                        for index, count in enumerate(buckets):
                            acc[index] += count
                    else:
                        for index, count in enumerate(buckets):
                            acc[index] += count - base[index]
        state.increase += increase
        state.buckets = tuple(acc)
        state.history.append((now, state.increase, state.buckets))
        return grew

    def _baseline(
        self, rule: MetricRule, state: _RuleState, now: float
    ) -> tuple[float, float, tuple[int, ...]] | None:
        """The sample from one window ago (or the oldest kept when the window is not yet covered)."""
        cutoff = now - rule.window_s
        while len(state.history) > 1 and state.history[1][0] <= cutoff:
            state.history.popleft()
        oldest = state.history[0]
        return oldest if oldest[0] <= cutoff else None

    def _condition(
        self, rule: MetricRule, state: _RuleState, points: Sequence[MetricPoint], grew: bool, now: float
    ) -> tuple[bool, str, int]:
        """(condition holds, the figure as shown in the summary, points or observations it rests on)."""
        window = _label(rule.window_s)
        baseline = self._baseline(rule, state, now)
        if rule.condition == "absent":
            gauges = any(p.kind in ("gauge", "updowncounter") for p in points)
            if gauges or grew or (points and state.last_data is None):
                state.last_data = now
            if state.last_data is None:  # never seen here: another process's metric, or not yet
                return False, "not seen yet", 0
            silent = now - state.last_data
            return silent >= rule.window_s, f"no data for {human_duration(silent)} (threshold {window})", len(points)
        if not points:
            return False, "no data", 0
        if rule.condition == "value":
            if any(p.kind == "histogram" for p in points):
                return False, "is a histogram: use quantile", len(points)
            value = _aggregate(rule, [p.value for p in points], points[0].kind)
            return _compare(rule, value), f"= {value:.4g} ({rule.threshold_text()})", len(points)
        if rule.condition == "rate":
            if any(p.kind in ("gauge", "histogram") for p in points):
                return False, f"is a {points[0].kind}: rate needs a counter", len(points)
            if baseline is None:
                return False, f"rate n/a: less than {window} of history", len(points)
            elapsed = now - baseline[0]
            rate = (state.increase - baseline[1]) / elapsed if elapsed > 0 else 0.0
            return (
                _compare(rule, rate),
                f"rate {rate:.4g}/s ({rule.threshold_text()}) over {window}",
                len(points),
            )
        if any(p.kind != "histogram" for p in points):
            return False, f"is a {points[0].kind}: quantile needs a histogram", len(points)
        start = baseline if baseline is not None else state.history[0]
        buckets = (
            tuple(a - b for a, b in zip(state.buckets, start[2], strict=False)) if start[2] else state.buckets
        )
        count = sum(buckets)
        estimate = estimate_quantile(rule.quantile, state.boundaries, buckets)
        label = f"p{rule.quantile * 100:g}"
        if estimate is None or count < max(1, rule.min_count):
            return False, f"{label} n/a: {count} observations in {window}", count
        return (
            _compare(rule, estimate),
            f"{label} {estimate:.4g} ({rule.threshold_text()}) over {window}, {count} observations",
            count,
        )


def _matches(match: Mapping[str, str], point: MetricPoint) -> bool:
    attributes = point.attributes
    return all(
        expected == ANY or (name in attributes and str(attributes[name]) == expected)
        for name, expected in match.items()
    )


def _aggregate(rule: MetricRule, values: Sequence[float], kind: str) -> float:
    how = rule.aggregate or ("avg" if kind == "gauge" else "sum")
    if how == "avg":
        return sum(values) / len(values)
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    return sum(values)


def _compare(rule: MetricRule, value: float) -> bool:
    if rule.above is not None:
        return value > rule.above
    return rule.below is not None and value < rule.below
