"""Threshold rules over RED series ("error rate > 5 % with > 100 requests", "p95 latency > 2 s").

Rules live under the top-level `rules:` key of the SLO YAML file::

    rules:
      - name: checkout-errors            # required; key is "<service>/<name>"
        service: checkout                # required; matches the service.name dimension
        severity: warning                # critical | error | warning | info (default warning)
        window: 5m                       # look-back window (default 5m)
        match: {span.name: POST /pay}    # extra dimension filter; default span.kind SERVER ("*" = any)
        labels: {team: shop}             # copied onto the alert
        error_rate: {above: 5%, min_requests: 100}
      - name: checkout-latency
        service: checkout
        latency: {quantile: 0.95, above: 2s, min_requests: 20}

Each rule has exactly one of `error_rate` or `latency`. The spec is parsed once into frozen
`ThresholdRule`s; `RuleEvaluator` turns RED snapshots into level-triggered `AlertState`s.
Entries with a `metric:` key are rules over any recorded metric: `otelpipe.incidents.metric_rules`
parses and evaluates them, and this module skips them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from otelpipe.alerts import AlertState, Severity
from otelpipe.processors.red_snapshot import (
    SERVICE_NAME,
    SPAN_KIND,
    ExemplarRef,
    REDSnapshot,
    SeriesStats,
)
from otelpipe.slo.durations import parse_duration
from otelpipe.slo.spec_file import SpecFileError, load_documents, read_spec_text

DEFAULT_MATCH: Mapping[str, str] = {SPAN_KIND: "SPAN_KIND_SERVER"}
ANY = "*"
_MAX_EXEMPLARS = 5


class RuleSpecError(ValueError):
    """A rule spec that cannot be used; names where (path), what (value) and what was expected."""

    def __init__(self, path: str, value: object, expected: str) -> None:
        super().__init__(f"{path}: got {value!r}, expected {expected}")
        self.path = path
        self.value = value
        self.expected = expected


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """One parsed rule; `kind` says which threshold applies."""

    name: str
    service: str
    kind: Literal["error_rate", "latency"]
    above: float  # error ratio in (0, 1], or latency in seconds
    min_requests: int = 0
    quantile: float = 0.95  # latency rules only
    window_s: float = 300.0
    severity: Severity = "warning"
    match: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MATCH))
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Condition identity, the incident dedup key derives from it."""
        return f"{self.service}/{self.name}"


def load_rules(path: str | Path, *, errors: list[RuleSpecError] | None = None) -> tuple[ThresholdRule, ...]:
    """Rules from the `rules:` key of a YAML file (none when the key is absent); `errors` as in `parse_rules`."""
    try:  # the same bounded reading as the SLO spec (size, alias and depth budgets)
        documents = load_documents(read_spec_text(path), str(path))
    except SpecFileError as exc:
        raise RuleSpecError(f"{exc.where or '<top>'}", exc.found, exc.expected) from None
    if len(documents) != 1:
        return ()  # a multi-document OpenSLO file carries no otelpipe threshold rules
    return parse_rules(documents[0], errors=errors)


def parse_rules(document: object, *, errors: list[RuleSpecError] | None = None) -> tuple[ThresholdRule, ...]:
    """Validate the whole document's `rules:` list; raise `RuleSpecError` at the first problem.

    With `errors`, a bad rule is appended there and left out, and the valid ones are returned.
    """
    if document is None:
        return ()
    if not isinstance(document, Mapping):
        raise RuleSpecError("<document>", _short(document), "a mapping with a 'rules' key")
    raw = document.get("rules")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RuleSpecError("rules", _short(raw), "a list of rules")
    found: list[RuleSpecError] = []
    kept: list[ThresholdRule] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if isinstance(item, Mapping) and "metric" in item:
            continue  # a metric rule: otelpipe.incidents.metric_rules parses it
        try:
            rule = _parse_rule(item, f"rules[{index}]")
            if rule.key in seen:
                raise RuleSpecError(
                    f"rules[{index}].name", rule.name, f"a name unique per service ({rule.key})"
                )
        except RuleSpecError as exc:
            found.append(exc)
            continue
        seen.add(rule.key)
        kept.append(rule)
    if found and errors is None:
        raise found[0]
    if errors is not None:
        errors.extend(found)
    return tuple(kept)


def _parse_rule(item: object, path: str) -> ThresholdRule:
    spec = _mapping(item, path)
    known = {"name", "service", "severity", "window", "match", "labels", "error_rate", "latency"}
    for extra in sorted(set(spec) - known, key=str):
        raise RuleSpecError(f"{path}.{extra}", extra, f"one of the keys {', '.join(sorted(known))}")
    name = _text(spec.get("name"), f"{path}.name")
    service = _text(spec.get("service"), f"{path}.service")
    severity = spec.get("severity", "warning")
    if severity not in get_args(Severity):
        raise RuleSpecError(f"{path}.severity", severity, "one of critical, error, warning, info")
    window_s = _duration(spec.get("window", "5m"), f"{path}.window")
    match = dict(DEFAULT_MATCH)
    match.update(_strings(spec.get("match", {}), f"{path}.match"))
    labels = _strings(spec.get("labels", {}), f"{path}.labels")
    common: dict[str, Any] = {
        "name": name,
        "service": service,
        "severity": cast(Severity, severity),
        "window_s": window_s,
        "match": match,
        "labels": labels,
    }
    has_error, has_latency = "error_rate" in spec, "latency" in spec
    if has_error == has_latency:
        raise RuleSpecError(
            path, sorted(spec), "exactly one of 'error_rate' or 'latency' (or a 'metric' rule)"
        )
    if has_error:
        threshold = _mapping(spec["error_rate"], f"{path}.error_rate")
        _only(threshold, {"above", "min_requests"}, f"{path}.error_rate")
        return ThresholdRule(
            kind="error_rate",
            above=_ratio(threshold.get("above"), f"{path}.error_rate.above"),
            min_requests=_count(threshold.get("min_requests", 0), f"{path}.error_rate.min_requests"),
            **common,
        )
    threshold = _mapping(spec["latency"], f"{path}.latency")
    _only(threshold, {"above", "quantile", "min_requests"}, f"{path}.latency")
    quantile = threshold.get("quantile", 0.95)
    if isinstance(quantile, bool) or not isinstance(quantile, int | float) or not 0 < quantile < 1:
        raise RuleSpecError(f"{path}.latency.quantile", quantile, "a number between 0 and 1, e.g. 0.95")
    return ThresholdRule(
        kind="latency",
        above=_duration(threshold.get("above"), f"{path}.latency.above"),
        quantile=float(quantile),
        min_requests=_count(threshold.get("min_requests", 0), f"{path}.latency.min_requests"),
        **common,
    )


def _short(value: object) -> object:
    text = repr(value)
    return value if len(text) <= 80 else text[:77] + "..."


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RuleSpecError(path, _short(value), "a mapping")
    return value


def _only(spec: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for extra in sorted(set(spec) - allowed):
        raise RuleSpecError(f"{path}.{extra}", spec[extra], f"one of the keys {sorted(allowed)}")


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleSpecError(path, value, "a non-empty string")
    return value.strip()


def _strings(value: object, path: str) -> dict[str, str]:
    spec = _mapping(value, path)
    result: dict[str, str] = {}
    for key, item in spec.items():
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise RuleSpecError(f"{path}.{key}", item, "a string or number")
        result[str(key)] = str(item)
    return result


def _duration(value: object, path: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)  # plain numbers are seconds
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            pass
    raise RuleSpecError(path, value, "a positive duration such as 500ms, 2s, 5m (or seconds as a number)")


def _ratio(value: object, path: str) -> float:
    ratio: float | None = None
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            ratio = float(value.strip()[:-1]) / 100
        except ValueError:
            ratio = None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ratio = float(value)
    if ratio is None or not 0 < ratio <= 1:
        raise RuleSpecError(path, value, "a ratio in (0, 1] such as 0.05, or a percentage such as 5%")
    return ratio


def _count(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RuleSpecError(path, value, "a whole number >= 0")
    return value


# -- evaluation ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Totals:
    calls: int
    errors: int
    buckets: tuple[int, ...]

    def minus(self, earlier: _Totals) -> _Totals:
        if len(earlier.buckets) != len(self.buckets) or earlier.calls > self.calls:
            return self  # boundaries changed or the store restarted: count from zero
        return _Totals(
            self.calls - earlier.calls,
            max(0, self.errors - earlier.errors),
            tuple(max(0, a - b) for a, b in zip(self.buckets, earlier.buckets, strict=True)),
        )


def estimate_quantile(quantile: float, boundaries: Sequence[float], buckets: Sequence[int]) -> float | None:
    """Linear interpolation inside the bucket holding the rank, as Prometheus' histogram_quantile.

    `buckets` are per-bucket counts with one more entry than `boundaries` (the +Inf bucket); a rank
    in the +Inf bucket yields the highest finite boundary. None without observations.
    """
    total = sum(buckets)
    if total == 0:
        return None
    rank = quantile * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index >= len(boundaries):
                return boundaries[-1] if boundaries else None
            lower = boundaries[index - 1] if index > 0 else 0.0
            return lower + (boundaries[index] - lower) * (rank - seen) / count
        seen += count
    return boundaries[-1] if boundaries else None


class RuleEvaluator:
    """Evaluates rules against successive cumulative RED snapshots, over each rule's window.

    Keeps per rule the aggregate counts of recent ticks (bounded by `max_samples`) to subtract the
    figures from one window ago. Until a full window of history exists, counts since the matching
    series started are used when they started within the window, else since the oldest tick kept.
    """

    def __init__(self, rules: Sequence[ThresholdRule], *, max_samples: int = 4096) -> None:
        self.rules = tuple(rules)
        self._history: dict[str, deque[tuple[float, _Totals]]] = {
            rule.key: deque(maxlen=max_samples) for rule in self.rules
        }

    def evaluate(self, snapshot: REDSnapshot, now: float | None = None) -> list[AlertState]:
        """One `AlertState` per rule (firing or not) for this tick."""
        at = snapshot.time_unix_nano / 1e9 if now is None else now
        return [self._evaluate(rule, snapshot, at) for rule in self.rules]

    def _evaluate(self, rule: ThresholdRule, snapshot: REDSnapshot, now: float) -> AlertState:
        matching = [s for s in snapshot.series if _matches(rule, s)]
        current = _Totals(
            sum(s.calls for s in matching),
            sum(s.errors for s in matching),
            tuple(map(sum, zip(*(s.bucket_counts for s in matching), strict=True)))
            if matching
            else (0,) * (len(snapshot.boundaries) + 1),
        )
        started_ns = min((s.start_time_unix_nano for s in matching), default=snapshot.time_unix_nano)
        window = current.minus(self._baseline(rule, now, started_ns / 1e9, current))
        history = self._history[rule.key]
        history.append((now, current))
        while len(history) > 1 and history[1][0] <= now - rule.window_s:
            history.popleft()
        window_label = _label(rule.window_s)
        if rule.kind == "error_rate":
            rate = window.errors / window.calls if window.calls else 0.0
            firing = window.calls >= max(1, rule.min_requests) and rate > rule.above
            summary = (
                f"{rule.name}: error rate {rate:.1%} (threshold {rule.above:.1%}) over {window_label}, "
                f"{window.errors} of {window.calls} requests"
            )
            exemplars = _recent(matching, now - rule.window_s, lambda e: e.error)
        else:
            estimate = estimate_quantile(rule.quantile, snapshot.boundaries, window.buckets)
            firing = (
                estimate is not None and window.calls >= max(1, rule.min_requests) and estimate > rule.above
            )
            shown = "n/a" if estimate is None else f"{estimate:.3g}s"
            summary = (
                f"{rule.name}: p{rule.quantile * 100:g} latency {shown} (threshold {rule.above:g}s) "
                f"over {window_label}, {window.calls} requests"
            )
            exemplars = _recent(matching, now - rule.window_s, lambda e: e.value > rule.above)
        return AlertState(
            key=rule.key,
            service=rule.service,
            name=rule.name,
            firing=firing,
            severity=rule.severity,
            summary=summary,
            at=now,
            kind="rule",
            total=window.calls,
            errors=window.errors,
            exemplars=exemplars if firing else (),
            labels=dict(rule.labels),
        )

    def _baseline(self, rule: ThresholdRule, now: float, started: float, current: _Totals) -> _Totals:
        cutoff = now - rule.window_s
        history = self._history[rule.key]
        older = [totals for at, totals in history if at <= cutoff]
        if older:
            return older[-1]
        if started >= cutoff:
            return _Totals(0, 0, (0,) * len(current.buckets))
        return history[0][1] if history else current


def _matches(rule: ThresholdRule, series: SeriesStats) -> bool:
    attributes = series.attributes
    if attributes.get(SERVICE_NAME) != rule.service:
        return False
    return all(
        expected == ANY or str(attributes.get(name)) == expected for name, expected in rule.match.items()
    )


def _recent(
    matching: Sequence[SeriesStats], since: float, wanted: Callable[[ExemplarRef], bool]
) -> tuple[ExemplarRef, ...]:
    since_ns = since * 1e9
    found = [e for s in matching for e in s.exemplars if e.time_unix_nano >= since_ns and wanted(e)]
    found.sort(key=lambda e: -e.time_unix_nano)
    return tuple(found[:_MAX_EXEMPLARS])


def _label(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
