"""Parse and validate an SLO spec file (native `otelpipe/v1` form or OpenSLO v1) into one `SLOSpec`.

Everything is checked here, once: consumers rely on the model being valid. Every problem raises
`SLOSpecError` naming the file, the path inside it, the bad value and the expected form; with an
`errors` list every problem is collected instead and the SLOs that have one are left out.

Native form::

    version: otelpipe/v1
    service: shop                    # default service of every SLO
    labels: {team: shop}             # optional, added to every SLO
    slos:
      - name: api-availability
        objective: 99.9              # percent
        period: 30d                  # rolling; default 30d
        sli: {kind: availability}    # or {kind: latency, threshold: 400ms}
        selector:                    # optional; default: SERVER spans of the service
          span_name: order.create    # also http_route, http_method, span_kind (server|client|
                                     # internal|producer|consumer|any), service
        alerting:                    # optional
          min_events: 100            # no alert on fewer events in a tier's long window
          tiers:                     # default: Sloth's 30d tiers scaled to the period
            - {severity: page, short: 5m, long: 1h, factor: 14.4}

OpenSLO v1 (multi-document YAML, or a YAML list of documents): every kind (`SLO`, `SLI`,
`AlertPolicy`, `AlertCondition`, `AlertNotificationTarget`, `Service`, `DataSource`). A metric
source (inline `type`, or `metricSourceRef` to a `DataSource`) is mapped onto the RED store: `type:
otelpipe` with RED dimensions (`service`, `span_name`, `http_route`, `http_method`, `span_kind`,
plus `errors: true|false` or `duration_at_most: 500ms`), or a Prometheus-style `spec.query` over
`traces_span_metrics_calls_total` / `traces_span_metrics_duration_*` (label matchers become the
selector, `status_code` the error filter, `le` the latency threshold). Other vendor queries cannot be
computed from spans and are refused with that reason. `thresholdMetric` objectives take `op: lte|lt`
and a `value` in the metric's unit (seconds for `type: otelpipe`); ratio objectives `op: gt|gte`.
Several objectives give one SLO each (`<name>-<displayName>`). `timeWindow` rolling or calendar
(budgeted as a rolling window of its length; `1M` = 30 days); `budgetingMethod: Occurrences`
(Timeslices and RatioTimeslices are refused: not implemented). `AlertPolicy` conditions of
`kind: burnrate` become tiers: `threshold` is the factor, `lookbackWindow` the long window (short
window 1/12 of it, the SRE Workbook's ratio), `alertAfter` how long the condition must hold (`for:`),
free-text severity (page, critical, high, ... page; anything else opens a ticket);
`notificationTargets` are kept as the alert annotation `openslo_notification_targets` (routing
stays with otelpipe's notifiers). The annotation `otelpipe/min-events` sets the minimum-traffic guard.
"""

from __future__ import annotations

import bisect
import math
import re
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from otelpipe.slo.durations import parse_duration
from otelpipe.slo.model import (
    SLI,
    SLO,
    SPAN_KINDS,
    AlertOptions,
    AlertSettings,
    AlertTier,
    Selector,
    SLOSpec,
    TierSeverity,
    default_tiers,
)
from otelpipe.slo.spec_file import Plain, SpecFileError, load_documents, read_spec_text

NATIVE_VERSION = "otelpipe/v1"
OPENSLO_VERSION = "openslo/v1"


class SLOSpecError(ValueError):
    """An SLO spec is invalid: names the file, the path inside it, the bad value, the expected form."""

    def __init__(self, source: str, path: str, value: object, expected: str) -> None:
        self.source = source
        self.path = path
        self.value = value
        self.expected = expected
        super().__init__(f"{source}: {path or '<top>'}: got {_show(value)}, expected {expected}")


_SHOWN_CHARS = 40


def _show(value: object) -> str:
    """A short, secret-free description of a bad value: a spec may be a credentials file given by mistake.

    Numbers and short strings are shown (so a typo is visible), with known secret shapes masked;
    long strings and containers are described by kind and size, never echoed.
    """
    if value is None or isinstance(value, (bool, int, float, Plain)):
        return repr(value)  # Plain: otelpipe's own description of the value, shown as is
    if isinstance(value, str):
        if len(value) > _SHOWN_CHARS:
            return f"a string of {len(value)} characters"
        from otelpipe.processors.redaction import Redactor

        return repr(Redactor().redact_text(value))
    if isinstance(value, Mapping):
        return f"a mapping with {len(value)} key(s)"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item(s)"
    return f"a value of type {type(value).__name__}"


_MISSING = object()


class _Problems:
    """Collects `SLOSpecError`s so one pass reports every problem, not just the first.

    `guard()` keeps parsing past a failed part; a part (an SLO, a document) with any problem is
    skipped by its caller, the rest stay usable.
    """

    def __init__(self) -> None:
        self.errors: list[SLOSpecError] = []

    @contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except SLOSpecError as exc:
            self.errors.append(exc)


class _Node:
    """A value plus its path in the file, so every error can say where it came from."""

    __slots__ = ("path", "source", "value")

    def __init__(self, value: object, path: str, source: str) -> None:
        self.value = value
        self.path = path
        self.source = source

    def fail(self, expected: str, value: object = _MISSING) -> SLOSpecError:
        return SLOSpecError(self.source, self.path, self.value if value is _MISSING else value, expected)

    def _child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def mapping(
        self, allowed: Sequence[str], what: str, problems: _Problems | None = None
    ) -> dict[str, _Node]:
        """The mapping's keys as nodes; an unknown key raises, or with `problems` is recorded and skipped."""
        if not isinstance(self.value, Mapping):
            raise self.fail(f"a mapping ({what})")
        out: dict[str, _Node] = {}
        for key, item in self.value.items():
            if key not in allowed:
                error = SLOSpecError(
                    self.source,
                    self._child_path(str(key)),
                    key,
                    f"one of the supported keys of {what}: {', '.join(allowed)}",
                )
                if problems is None:
                    raise error
                problems.errors.append(error)
                continue
            out[key] = _Node(item, self._child_path(key), self.source)
        return out

    def items(self, what: str) -> list[_Node]:
        if not isinstance(self.value, list):
            raise self.fail(f"a list ({what})")
        return [_Node(item, self._child_path(i), self.source) for i, item in enumerate(self.value)]

    def text(self, what: str) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            raise self.fail(f"a non-empty string ({what})")
        return self.value.strip()

    def number(self, what: str) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise self.fail(f"a number ({what})")
        if not math.isfinite(self.value):
            raise self.fail(f"a finite number ({what})")
        return float(self.value)

    def duration(self, what: str) -> float:
        if not isinstance(self.value, str):
            raise self.fail(f"a duration such as 5m, 1h, 30d ({what})")
        try:
            return parse_duration(self.value)
        except ValueError:
            raise self.fail(f"a duration such as 5m, 1h, 30d ({what})") from None

    def boolean(self, what: str) -> bool:
        if not isinstance(self.value, bool):
            raise self.fail(f"true or false ({what})")
        return self.value

    def labels(self) -> dict[str, str]:
        if not isinstance(self.value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in self.value.items()
        ):
            raise self.fail("a mapping of label name to string value")
        return {k: str(v) for k, v in self.value.items()}


def load_spec(path: str | Path, *, errors: list[SLOSpecError] | None = None) -> SLOSpec:
    """Read and validate the spec file at `path` (native or OpenSLO v1, detected from its content).

    With `errors`, see `parse_spec`: problems are collected there and only valid SLOs returned.
    """
    try:
        text = read_spec_text(path)
    except SpecFileError as exc:
        raise SLOSpecError(exc.source, exc.where, exc.found, exc.expected) from None
    return parse_spec(text, source=str(path), errors=errors)


def parse_spec(text: str, *, source: str = "<string>", errors: list[SLOSpecError] | None = None) -> SLOSpec:
    """Validate spec `text`; `source` names it in error messages.

    Without `errors` the first problem raises. With a list, every problem in an SLO (or OpenSLO
    document) is appended to it and that SLO is left out, so one typo does not cost the others;
    only a file that cannot be read as a spec at all still raises.
    """
    try:  # size, depth and alias budgets; non-mapping documents refused without echoing them
        documents = load_documents(text, source)
    except SpecFileError as exc:
        raise SLOSpecError(exc.source, exc.where, exc.found, exc.expected) from None
    return parse_spec_documents(documents, source=source, errors=errors)


def parse_spec_documents(
    documents: list[Any], *, source: str = "<string>", errors: list[SLOSpecError] | None = None
) -> SLOSpec:
    """`parse_spec` on YAML documents already loaded (with `load_documents`'s budgets), so one file is
    read and parsed once for its SLOs, threshold rules and metric rules."""
    if not documents:
        raise SLOSpecError(source, "", "", "a native spec (version: otelpipe/v1) or OpenSLO v1 documents")
    first = documents[0]
    problems = _Problems()
    head = first[0] if isinstance(first, list) and first else first
    api_version = head.get("apiVersion") if isinstance(head, Mapping) else None
    if api_version == OPENSLO_VERSION:
        spec = _parse_openslo(documents, source, problems)
    elif isinstance(api_version, str) and api_version.startswith("openslo/"):
        raise SLOSpecError(
            source,
            "apiVersion",
            api_version,
            "apiVersion: openslo/v1 (otelpipe reads OpenSLO v1; v1alpha, as in Sloth's OpenSLO "
            "example, and v2alpha are drafts it does not read)",
        )
    elif isinstance(head, Mapping) and head.get("version") == "prometheus/v1":
        raise SLOSpecError(
            source,
            "version",
            "prometheus/v1",
            f"version: {NATIVE_VERSION}. prometheus/v1 is Sloth's spec, whose SLIs are PromQL queries; "
            "otelpipe measures SLIs from its RED store: keep the SLO's name, objective and alerting "
            "block and give an sli {kind: availability|latency} with a selector",
        )
    elif len(documents) == 1:
        spec = _parse_native(_Node(first, "", source), problems)
    else:
        raise SLOSpecError(source, "", f"{len(documents)} documents", "one native document or OpenSLO v1")
    spec = _check_unique(spec, problems)
    if problems.errors:
        if errors is None:
            raise problems.errors[0]
        errors.extend(problems.errors)
    return spec


def check_thresholds(spec: SLOSpec, boundaries: Sequence[float]) -> None:
    """Refuse latency thresholds that are not RED bucket boundaries, naming the nearest ones.

    Latency good events are read from the histogram's cumulative bucket counts, which are exact
    only at a boundary; interpolating would make the SLI a guess.
    """
    problems = threshold_errors(spec, boundaries)
    if problems:
        raise problems[0]


def threshold_errors(spec: SLOSpec, boundaries: Sequence[float]) -> list[SLOSpecError]:
    """One error per SLO whose latency threshold is not a boundary (see `check_thresholds`)."""
    ordered = sorted(boundaries)
    errors: list[SLOSpecError] = []
    for slo in spec.slos:
        threshold = slo.sli.threshold_seconds
        if threshold is None or any(math.isclose(threshold, b, rel_tol=1e-9) for b in ordered):
            continue
        at = bisect.bisect_left(ordered, threshold)
        nearest = [f"{b:g}s" for b in ordered[max(0, at - 1) : at + 1]]
        errors.append(
            SLOSpecError(
                spec.source,
                f"{slo.origin}.sli.threshold" if slo.origin else "threshold",
                f"{threshold:g}s",
                f"a RED histogram bucket boundary (OTELPIPE_RED_BUCKETS); nearest: "
                f"{' or '.join(nearest) or 'none configured'}",
            )
        )
    return errors


def snap_threshold(threshold: float, boundaries: Sequence[float]) -> float:
    """The boundary equal (to float precision) to `threshold`; call after `check_thresholds`."""
    for boundary in boundaries:
        if math.isclose(threshold, boundary, rel_tol=1e-9):
            return boundary
    raise ValueError(f"{threshold} is not a boundary")


def _check_unique(spec: SLOSpec, problems: _Problems) -> SLOSpec:
    """`spec` without repeated `service/name` keys (the first declaration wins), each one reported."""
    seen: set[str] = set()
    kept: list[SLO] = []
    for slo in spec.slos:
        if slo.key in seen:
            problems.errors.append(
                SLOSpecError(spec.source, f"{slo.origin}.name", slo.name, "a name unique per service")
            )
            continue
        seen.add(slo.key)
        kept.append(slo)
    return spec if len(kept) == len(spec.slos) else SLOSpec(slos=tuple(kept), source=spec.source)


# ---------------------------------------------------------------- native form

# `rules:` (threshold rules) shares the file; otelpipe.incidents.rules parses it.
_NATIVE_TOP = ("version", "service", "labels", "slos", "rules")
_NATIVE_SLO = ("name", "description", "objective", "period", "sli", "selector", "alerting", "labels")
_NATIVE_SLI = ("kind", "threshold")
_NATIVE_SELECTOR = ("service", "span_name", "http_route", "http_method", "span_kind")
_NATIVE_ALERTING = ("min_events", "tiers", "name", "labels", "annotations", "page_alert", "ticket_alert")
_NATIVE_TIER = ("severity", "short", "long", "factor")
_NATIVE_TIER_OPTIONAL = ("for",)
_ALERT_OPTIONS = ("labels", "annotations", "disable")


def _parse_native(root: _Node, problems: _Problems) -> SLOSpec:
    top = root.mapping(_NATIVE_TOP, "a native SLO spec", problems)
    version = top.get("version")
    if version is None or version.value != NATIVE_VERSION:
        node = version or root
        raise node.fail(
            f"version: {NATIVE_VERSION} (native form) or apiVersion: openslo/v1 (OpenSLO)",
            None if version is None else version.value,
        )
    default_service: str | None = None
    common_labels: dict[str, str] = {}
    with problems.guard():
        default_service = top["service"].text("service name") if "service" in top else None
    with problems.guard():
        common_labels = top["labels"].labels() if "labels" in top else {}
    if "slos" not in top:
        if "rules" in top:
            return SLOSpec(slos=(), source=root.source)  # a file of threshold rules only
        raise root.fail("a `slos` list (or a `rules` list)", None)
    slos: list[SLO] = []
    nodes = top["slos"].items("SLOs")
    if not nodes:
        raise top["slos"].fail("at least one SLO")
    for node in nodes:
        before = len(problems.errors)
        with problems.guard():
            slo = _parse_native_slo(node, default_service, common_labels, problems)
            if slo is not None and len(problems.errors) == before:
                slos.append(slo)
    return SLOSpec(slos=tuple(slos), source=root.source)


def _parse_native_slo(
    node: _Node, default_service: str | None, common_labels: dict[str, str], problems: _Problems
) -> SLO | None:
    """One SLO; every problem found is added to `problems` (the caller drops an SLO that has any)."""
    fields = node.mapping(_NATIVE_SLO, "an SLO", problems)
    name = ""
    objective = 0.0
    period = 30 * 86400.0
    with problems.guard():
        if "name" not in fields:
            raise node.fail("an SLO with a `name`", None)
        name = fields["name"].text("SLO name")
    with problems.guard():
        if "objective" not in fields:
            raise node.fail("an SLO with an `objective` (percent, e.g. 99.9 or 99.9%)", None)
        objective = _percent(fields["objective"])
    with problems.guard():
        period = fields["period"].duration("SLO period") if "period" in fields else period

    selector: Selector | None = None
    with problems.guard():
        selector_fields = (
            fields["selector"].mapping(_NATIVE_SELECTOR, "a selector", problems)
            if "selector" in fields
            else {}
        )
        service = selector_fields["service"].text("service name") if "service" in selector_fields else None
        service = service or default_service
        if service is None:
            raise node.fail("a service: at the top of the spec or in the SLO's selector", None)
        selector = _selector(service, selector_fields)

    sli: SLI | None = None
    with problems.guard():
        if "sli" not in fields:
            raise node.fail("an `sli` ({kind: availability} or {kind: latency, threshold: 500ms})", None)
        sli_fields = fields["sli"].mapping(_NATIVE_SLI, "an SLI", problems)
        kind = sli_fields["kind"].value if "kind" in sli_fields else None
        sli_selector = selector or Selector(service="")
        if kind == "availability":
            if "threshold" in sli_fields:
                raise sli_fields["threshold"].fail("no threshold for an availability SLI")
            sli = SLI("availability", sli_selector)
        elif kind == "latency":
            if "threshold" not in sli_fields:
                raise fields["sli"].fail("a latency SLI with a `threshold` duration, e.g. 500ms")
            sli = SLI("latency", sli_selector, sli_fields["threshold"].duration("latency threshold"))
        else:
            where = sli_fields.get("kind") or fields["sli"]
            raise where.fail("kind: availability or kind: latency", kind)

    min_events = 0
    tiers = default_tiers(period)
    settings = AlertSettings()
    if "alerting" in fields:
        with problems.guard():
            alerting = fields["alerting"].mapping(_NATIVE_ALERTING, "alerting", problems)
            if "min_events" in alerting:
                with problems.guard():
                    min_events = _count(alerting["min_events"], "minimum events in the long window")
            if "tiers" in alerting:
                parsed: list[AlertTier] = []
                for tier_node in alerting["tiers"].items("alert tiers"):
                    with problems.guard():
                        parsed.append(_native_tier(tier_node, period))
                tiers = tuple(parsed)
            settings = _alert_settings(alerting)
            tiers = tuple(t for t in tiers if not (settings.page if t.severity == "page" else settings.ticket).disable)
    labels = dict(common_labels)
    description = ""
    with problems.guard():
        if "labels" in fields:
            labels.update(fields["labels"].labels())
    with problems.guard():
        description = fields["description"].text("description") if "description" in fields else ""
    if sli is None or selector is None:
        return None  # its problems are recorded already
    return SLO(
        name=name,
        service=selector.service,
        objective=objective,
        period=period,
        sli=sli,
        tiers=tiers,
        min_events=min_events,
        description=description,
        labels=labels,
        origin=node.path,
        alerting=settings,
    )


def _alert_settings(alerting: Mapping[str, _Node]) -> AlertSettings:
    """Sloth's alerting options: `name`, `labels`, `annotations`, `page_alert`, `ticket_alert`."""

    def options(key: str) -> AlertOptions:
        if key not in alerting:
            return AlertOptions()
        fields = alerting[key].mapping(_ALERT_OPTIONS, key)
        return AlertOptions(
            labels=fields["labels"].labels() if "labels" in fields else {},
            annotations=fields["annotations"].labels() if "annotations" in fields else {},
            disable=fields["disable"].boolean(f"{key}.disable") if "disable" in fields else False,
        )

    name = alerting["name"].text("alert name") if "name" in alerting else ""
    if name and not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name):
        raise alerting["name"].fail("a Prometheus alert name (letters, digits, _ and :)")
    return AlertSettings(
        name=name,
        labels=alerting["labels"].labels() if "labels" in alerting else {},
        annotations=alerting["annotations"].labels() if "annotations" in alerting else {},
        page=options("page_alert"),
        ticket=options("ticket_alert"),
    )


def _native_tier(node: _Node, period: float) -> AlertTier:
    fields = node.mapping(_NATIVE_TIER + _NATIVE_TIER_OPTIONAL, "an alert tier")
    for key in _NATIVE_TIER:
        if key not in fields:
            raise node.fail(f"a tier with {', '.join(_NATIVE_TIER)} (missing {key})")
    severity = _severity(fields["severity"])
    short = fields["short"].duration("short window")
    long = fields["long"].duration("long window")
    factor = fields["factor"].number("burn-rate factor")
    hold = fields["for"].duration("how long the condition must hold") if "for" in fields else 0.0
    return _tier(node, severity, short, long, factor, period=period, for_seconds=hold)


def _tier(
    node: _Node,
    severity: TierSeverity,
    short: float,
    long: float,
    factor: float,
    *,
    period: float,
    for_seconds: float = 0.0,
) -> AlertTier:
    if factor <= 0:
        raise node.fail("a positive burn-rate factor", factor)
    if short > long:
        raise node.fail("a short window no longer than the long window", f"short {short:g}s > long {long:g}s")
    if long > period:
        raise node.fail("a long window no longer than the SLO period", f"{long:g}s > period {period:g}s")
    return AlertTier(severity, short, long, factor, for_seconds)


def _severity(node: _Node) -> TierSeverity:
    value = node.value
    if value in ("page", "critical"):
        return "page"
    if value in ("ticket", "warning"):
        return "ticket"
    raise node.fail("severity page (alias critical) or ticket (alias warning)")


def _percent(node: _Node) -> float:
    raw = node.value
    if isinstance(raw, str) and raw.strip().endswith("%"):  # `99.9%`, as rules accept `above: 5%`
        try:
            node = _Node(float(raw.strip()[:-1]), node.path, node.source)
        except ValueError:
            raise node.fail("a percentage such as 99.9 or 99.9%") from None
    value = node.number("objective in percent, e.g. 99.9 or 99.9%")
    if not 0 < value < 100:
        raise node.fail("a percentage strictly between 0 and 100, e.g. 99.9")
    return round(value / 100.0, 12)  # 99.9 / 100 is 0.9990000000000001 in binary


def _count(node: _Node, what: str) -> int:
    if isinstance(node.value, bool) or not isinstance(node.value, int) or node.value < 0:
        raise node.fail(f"a non-negative integer ({what})")
    return node.value


def _selector(service: str, fields: Mapping[str, _Node]) -> Selector:
    def optional(key: str) -> str | None:
        return fields[key].text(key) if key in fields else None

    span_name = optional("span_name")
    # A named operation may be of any kind (order.create is INTERNAL); otherwise the service's
    # own request handling (SERVER spans) is what users mean by "the service's availability".
    span_kind: str | None = None if span_name else "SPAN_KIND_SERVER"
    if "span_kind" in fields:
        span_kind = _span_kind(fields["span_kind"])
    return Selector(
        service=service,
        span_name=span_name,
        http_route=optional("http_route"),
        http_method=optional("http_method"),
        span_kind=span_kind,
    )


def _span_kind(node: _Node) -> str | None:
    value = node.value
    if isinstance(value, str):
        if value.lower() == "any":
            return None
        spelled = value.upper() if value.upper().startswith("SPAN_KIND_") else f"SPAN_KIND_{value.upper()}"
        if spelled in SPAN_KINDS:
            return spelled
    raise node.fail("server, client, internal, producer, consumer (or SPAN_KIND_...) or any")


# ---------------------------------------------------------------- OpenSLO v1

_OS_DOC = ("apiVersion", "kind", "metadata", "spec")
_OS_META = ("name", "displayName", "labels", "annotations")
_OS_SLO = (
    "description",
    "service",
    "indicator",
    "indicatorRef",
    "timeWindow",
    "budgetingMethod",
    "objectives",
    "alertPolicies",
)
_OS_SLI_DOC = ("metadata", "spec")
_OS_SLI = ("description", "ratioMetric", "thresholdMetric")
_OS_RATIO = ("counter", "good", "bad", "total", "raw", "rawType")
_OS_METRIC = ("metricSource",)
_OS_SOURCE = ("type", "metricSourceRef", "spec")
_OS_SOURCE_SPEC = (*_NATIVE_SELECTOR, "errors", "duration_at_most")
_OS_WINDOW = ("duration", "isRolling", "calendar")
_OS_CALENDAR = ("startTime", "timeZone")
_OS_OBJECTIVE = (
    "displayName",
    "op",
    "value",
    "target",
    "targetPercent",
    "timeSliceTarget",
    "timeSliceWindow",
    "compositeWeight",
)
_OS_POLICY = (
    "description",
    "alertWhenNoData",
    "alertWhenResolved",
    "alertWhenBreaching",
    "conditions",
    "notificationTargets",
)
_OS_CONDITION_DOC = ("kind", "metadata", "spec", "conditionRef", "apiVersion")
_OS_CONDITION = ("description", "severity", "condition")
_OS_BURNRATE = ("kind", "op", "threshold", "lookbackWindow", "alertAfter")
_OS_TARGET = ("description", "target")
_OS_DATA_SOURCE = ("description", "type", "connectionDetails")
_OS_KINDS = ("SLO", "SLI", "AlertPolicy", "AlertCondition", "AlertNotificationTarget", "Service", "DataSource")
_OS_OPS = ("lt", "lte", "gt", "gte")
_MIN_EVENTS_ANNOTATION = "otelpipe/min-events"
_NOTIFICATION_ANNOTATION = "openslo_notification_targets"
# OpenSLO durations: a whole number and one unit; M, Q and Y are calendar lengths, taken as 30, 90
# and 365 days (budgets are rolling, see `_os_time_window`).
_OS_DURATION = re.compile(r"([1-9][0-9]*)([smhdwMQY])")
_OS_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 30 * 86400, "Q": 90 * 86400, "Y": 365 * 86400}
# Severities are free text in OpenSLO; these words page, any other one opens a ticket.
_PAGE_WORDS = frozenset({"page", "critical", "high", "urgent", "emergency", "p1", "sev1", "error"})
# RED metrics as a Prometheus-style query names them (otelpipe's /metrics or the connector's).
_RED_SELECTOR = re.compile(
    r"(traces_span_metrics_calls_total|traces_span_metrics_duration_(milliseconds|seconds)_(bucket|count|sum))"
    r"\s*(\{[^}]*\})?"
)
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_PROM_LABELS = {
    "service_name": "service",
    "span_name": "span_name",
    "http_route": "http_route",
    "http_request_method": "http_method",
    "span_kind": "span_kind",
}
_QUERY_TYPES = ("prometheus", "thanos", "mimir", "cortex", "victoriametrics", "promql", "any")


@dataclass(frozen=True, slots=True)
class _RedSource:
    """What one OpenSLO metric source measures, mapped onto the RED store."""

    selector: Selector
    extra: dict[str, object]  # errors: bool, duration_at_most: seconds
    per_second: float = 1.0  # values of this source's duration metric per second (1000 for ms)


def _parse_openslo(documents: list[Any], source: str, problems: _Problems) -> SLOSpec:
    by_kind: dict[str, dict[str, _Node]] = {kind: {} for kind in _OS_KINDS}
    slo_nodes: list[tuple[_Node, dict[str, _Node]]] = []
    flat: list[tuple[object, str]] = []
    for index, document in enumerate(documents):
        if isinstance(document, list):  # a YAML sequence of objects, as the OpenSLO SDK writes them
            flat.extend((item, f"documents[{index}][{sub}]") for sub, item in enumerate(document))
        else:
            flat.append((document, f"documents[{index}]"))
    for document, path in flat:
        node = _Node(document, path, source)
        fields = node.mapping(_OS_DOC, "an OpenSLO document")
        if fields.get("apiVersion") is None or fields["apiVersion"].value != OPENSLO_VERSION:
            where = fields.get("apiVersion") or node
            raise where.fail("apiVersion: openslo/v1", None if "apiVersion" not in fields else where.value)
        kind_node = fields.get("kind")
        kind = kind_node.value if kind_node is not None else None
        if kind not in _OS_KINDS:
            raise (kind_node or node).fail(f"an OpenSLO v1 kind ({', '.join(_OS_KINDS)})", kind)
        name = _os_name(fields, node)
        _os_check_document(kind, fields, node)
        by_kind[kind][name] = node
        if kind == "SLO":
            slo_nodes.append((node, fields))
    if not slo_nodes:
        declared = ", ".join(f"{kind} {name}" for kind, names in by_kind.items() for name in names)
        raise SLOSpecError(
            source,
            "",
            f"no kind: SLO document ({declared or 'nothing'})",
            "at least one OpenSLO document of kind SLO (the other documents are valid)",
        )
    slos: list[SLO] = []
    for node, fields in slo_nodes:
        with problems.guard():  # a bad SLO is reported and left out; the others stay
            slos.extend(_os_slos(node, fields, by_kind))
    return SLOSpec(slos=tuple(slos), source=source)


def _os_check_document(kind: str, fields: Mapping[str, _Node], node: _Node) -> None:
    """Structural checks of the supporting kinds (references are resolved when an SLO uses them)."""
    if kind in ("SLO", "SLI"):
        return
    spec = fields.get("spec")
    if spec is None:
        raise node.fail(f"a {kind} with a spec", None)
    if kind == "DataSource":
        data = spec.mapping(_OS_DATA_SOURCE, "a DataSource spec")
        if "type" not in data:
            raise spec.fail("a DataSource with a type (e.g. Prometheus)")
        data["type"].text("data source type")
    elif kind == "AlertNotificationTarget":
        target = spec.mapping(_OS_TARGET, "an AlertNotificationTarget spec")
        if "target" not in target:
            raise spec.fail("an AlertNotificationTarget with a target (e.g. pagerduty)")
        target["target"].text("notification target")
    elif kind == "Service":
        spec.mapping(("description",), "a Service spec")
    elif kind == "AlertPolicy":
        spec.mapping(_OS_POLICY, "an AlertPolicy spec")
    elif kind == "AlertCondition":
        condition = spec.mapping(_OS_CONDITION, "an AlertCondition spec")
        if "condition" in condition:
            burn = condition["condition"].mapping(_OS_BURNRATE, "a burn-rate condition")
            if "op" in burn and burn["op"].value not in _OS_OPS:
                raise burn["op"].fail("op: one of lt, lte, gt, gte")


def _os_name(fields: Mapping[str, _Node], node: _Node) -> str:
    if "metadata" not in fields:
        raise node.fail("metadata with a name", None)
    meta = fields["metadata"].mapping(_OS_META, "OpenSLO metadata")
    if "name" not in meta:
        raise fields["metadata"].fail("metadata with a name")
    return meta["name"].text("metadata.name")


def _os_labels(node: _Node) -> dict[str, str]:
    """OpenSLO labels: each value a string or a list of strings (joined with commas)."""
    if not isinstance(node.value, Mapping):
        raise node.fail("a mapping of label name to a string or a list of strings")
    labels: dict[str, str] = {}
    for key, value in node.value.items():
        values = value if isinstance(value, list) else [value]
        if not isinstance(key, str) or not all(isinstance(v, (str, int, float)) for v in values):
            raise node.fail("a mapping of label name to a string or a list of strings")
        labels[key] = ",".join(str(v) for v in values)
    return labels


def _os_slos(node: _Node, fields: dict[str, _Node], by_kind: dict[str, dict[str, _Node]]) -> list[SLO]:
    """One SLO per objective (named `<name>-<objective displayName>` when there are several)."""
    name = _os_name(fields, node)
    meta = fields["metadata"].mapping(_OS_META, "OpenSLO metadata")
    labels = _os_labels(meta["labels"]) if "labels" in meta else {}
    min_events = 0
    if "annotations" in meta:
        annotations = meta["annotations"].labels()
        if _MIN_EVENTS_ANNOTATION in annotations:
            raw = annotations[_MIN_EVENTS_ANNOTATION]
            if not raw.isdigit():
                raise _Node(raw, f"{meta['annotations'].path}.{_MIN_EVENTS_ANNOTATION}", node.source).fail(
                    "a non-negative integer (minimum events in the long window)"
                )
            min_events = int(raw)
    if "spec" not in fields:
        raise node.fail("an SLO with a spec", None)
    spec = fields["spec"].mapping(_OS_SLO, "an OpenSLO SLO spec")
    if "service" not in spec:
        raise fields["spec"].fail("spec.service", None)
    service = spec["service"].text("service name")

    budgeting = spec.get("budgetingMethod")
    method = None if budgeting is None else budgeting.value
    if method in ("Timeslices", "RatioTimeslices"):
        raise budgeting.fail(  # type: ignore[union-attr]
            "budgetingMethod: Occurrences. Time-slice budgeting (the share of good time slices) is "
            "not implemented: otelpipe counts every request once, from its RED store"
        )
    if method != "Occurrences":
        raise (budgeting or fields["spec"]).fail("budgetingMethod: Occurrences", method)
    period = _os_time_window(spec.get("timeWindow"), fields["spec"])

    if "objectives" not in spec:
        raise fields["spec"].fail("spec.objectives (at least one objective)", None)
    objectives = spec["objectives"].items("objectives")
    if not objectives:
        raise spec["objectives"].fail("at least one objective")

    if ("indicator" in spec) == ("indicatorRef" in spec):
        raise fields["spec"].fail("exactly one of indicator or indicatorRef")
    if "indicator" in spec:
        indicator = spec["indicator"]
    else:
        ref = spec["indicatorRef"].text("name of a kind: SLI document")
        if ref not in by_kind["SLI"]:
            raise spec["indicatorRef"].fail(f"the name of a kind: SLI document (known: {sorted(by_kind['SLI'])})")
        indicator = by_kind["SLI"][ref]

    tiers = default_tiers(period)
    targets: list[str] = []
    policies = spec.get("alertPolicies")
    if policies is not None and policies.value is not None:
        collected: list[AlertTier] = []
        for policy in policies.items("alert policies"):
            policy_tiers, policy_targets = _os_policy(policy, by_kind, period)
            collected.extend(policy_tiers)
            targets.extend(policy_targets)
        if collected:
            tiers = tuple(collected)
    alerting = AlertSettings(annotations={_NOTIFICATION_ANNOTATION: ",".join(targets)} if targets else {})
    description = spec["description"].text("description") if "description" in spec else ""

    slos: list[SLO] = []
    for index, objective_node in enumerate(objectives):
        objective_fields = objective_node.mapping(_OS_OBJECTIVE, "an objective")
        for unsupported in ("timeSliceTarget", "timeSliceWindow"):
            if unsupported in objective_fields:
                raise objective_fields[unsupported].fail("no time-slice settings (budgetingMethod Occurrences)")
        objective = _os_target(objective_node, objective_fields)
        sli = _os_sli(indicator, service, objective_fields, by_kind)
        slo_name = name
        if len(objectives) > 1:
            shown = objective_fields["displayName"].value if "displayName" in objective_fields else ""
            suffix = re.sub(r"[^a-z0-9]+", "-", str(shown).lower()).strip("-") or str(index)
            slo_name = f"{name}-{suffix}"
        slos.append(
            SLO(
                name=slo_name,
                service=service,
                objective=objective,
                period=period,
                sli=sli,
                tiers=tiers,
                min_events=min_events,
                description=description,
                labels=labels,
                origin=objective_node.path if len(objectives) > 1 else node.path,
                alerting=alerting,
            )
        )
    return slos


def _os_duration(node: _Node, what: str) -> float:
    """An OpenSLO duration (`30d`, `2w`, `1M`): seconds, months as 30 days."""
    match = _OS_DURATION.fullmatch(str(node.value).strip()) if isinstance(node.value, str) else None
    if match is None:
        raise node.fail(f"an OpenSLO duration such as 5m, 1h, 28d, 2w, 1M ({what})")
    return int(match.group(1)) * float(_OS_UNITS[match.group(2)])


def _os_time_window(node: _Node | None, parent: _Node) -> float:
    """The budget period. A calendar window is accepted and budgeted as a rolling window of its
    length (a 1M calendar month as the last 30 days): burn-rate alerts are the same, the remaining
    budget does not reset at the calendar boundary."""
    if node is None:
        raise parent.fail("spec.timeWindow: [{duration: 30d, isRolling: true}]", None)
    windows = node.items("time windows")
    if len(windows) != 1:
        raise node.fail("exactly one time window")
    window = windows[0].mapping(_OS_WINDOW, "a time window")
    if "duration" not in window:
        raise windows[0].fail("a duration such as 30d or 1M", None)
    rolling = window["isRolling"].boolean("isRolling") if "isRolling" in window else False
    if not rolling:
        if "calendar" not in window:
            raise windows[0].fail("isRolling: true, or a calendar {startTime, timeZone}")
        calendar = window["calendar"].mapping(_OS_CALENDAR, "a calendar")
        if "timeZone" in calendar:
            zone = calendar["timeZone"].text("time zone")
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise calendar["timeZone"].fail("an IANA time zone such as Europe/Berlin") from None
        if "startTime" in calendar:
            try:
                datetime.fromisoformat(str(calendar["startTime"].value))
            except ValueError:
                raise calendar["startTime"].fail("a start time such as 2022-01-01 12:00:00") from None
    return _os_duration(window["duration"], "time window")


def _os_target(node: _Node, fields: Mapping[str, _Node]) -> float:
    if ("target" in fields) == ("targetPercent" in fields):
        raise node.fail("exactly one of target (ratio) or targetPercent")
    if "target" in fields:
        target = fields["target"].number("target ratio")
        if not 0 < target < 1:
            raise fields["target"].fail("a ratio strictly between 0 and 1, e.g. 0.999")
        return target
    return _percent(fields["targetPercent"])


def _os_sli(
    indicator: _Node, service: str, objective: Mapping[str, _Node], by_kind: dict[str, dict[str, _Node]]
) -> SLI:
    doc = indicator.mapping((*_OS_SLI_DOC, "apiVersion", "kind"), "an SLI")
    if "spec" not in doc:
        raise indicator.fail("an SLI with a spec", None)
    spec = doc["spec"].mapping(_OS_SLI, "an OpenSLO SLI spec")
    if ("ratioMetric" in spec) == ("thresholdMetric" in spec):
        raise doc["spec"].fail("exactly one of ratioMetric or thresholdMetric")
    op = objective.get("op")
    if op is not None and op.value not in _OS_OPS:
        raise op.fail("op: one of lt, lte, gt, gte")
    if "thresholdMetric" in spec:
        source = _os_source(spec["thresholdMetric"], service, by_kind)
        if source.extra:
            raise spec["thresholdMetric"].fail("a duration metric with no status or bucket filter", source.extra)
        if op is None or op.value not in ("lt", "lte"):
            raise (op or indicator).fail(
                "objective op: lte or lt (a RED duration SLI counts requests at most as slow as the "
                "value; gt/gte would make slow requests the good ones)",
                None if op is None else op.value,
            )
        if "value" not in objective:
            raise op.fail("objective value: the latency threshold")
        value = objective["value"].number("latency threshold")
        if value <= 0:
            raise objective["value"].fail("a positive latency threshold")
        return SLI("latency", source.selector, round(value / source.per_second, 12))

    if op is not None and op.value not in ("gt", "gte"):
        raise op.fail("op: gt or gte for a ratioMetric (the good ratio stays above the target)")
    if "value" in objective:
        raise objective["value"].fail("no objective value with a ratioMetric (the target is the ratio)")
    ratio = spec["ratioMetric"].mapping(_OS_RATIO, "a ratioMetric")
    if "raw" in ratio or "rawType" in ratio:
        where = ratio.get("raw") or ratio["rawType"]
        raise where.fail(
            "good or bad and total sources: a raw ratio query cannot be mapped onto RED counts", "raw"
        )
    if "counter" in ratio and ratio["counter"].value is not True:
        raise ratio["counter"].fail("counter: true (RED counts are counters)")
    if "total" not in ratio or ("good" in ratio) == ("bad" in ratio):
        raise spec["ratioMetric"].fail("total and exactly one of good or bad")
    total = _os_source(ratio["total"], service, by_kind)
    if total.extra:
        raise ratio["total"].fail("a total over all calls (no status or bucket filter)", total.extra)
    part_key = "good" if "good" in ratio else "bad"
    part = _os_source(ratio[part_key], service, by_kind)
    if part.selector != total.selector:
        raise ratio[part_key].fail("the same RED dimensions as the total source")
    extra = part.extra
    if part_key == "bad":
        if extra != {"errors": True}:
            raise ratio["bad"].fail("errors: true (bad = spans that ended in error)", extra)
        return SLI("availability", total.selector)
    if extra == {"errors": False}:
        return SLI("availability", total.selector)
    if set(extra) == {"duration_at_most"} and isinstance(extra["duration_at_most"], float):
        return SLI("latency", total.selector, extra["duration_at_most"])
    raise ratio["good"].fail("errors: false (availability) or duration_at_most: <duration> (latency)", extra)


def _os_source(node: _Node, service: str, by_kind: dict[str, dict[str, _Node]]) -> _RedSource:
    metric = node.mapping(_OS_METRIC, "a metric")
    if "metricSource" not in metric:
        raise node.fail("a metricSource", None)
    source = metric["metricSource"].mapping(_OS_SOURCE, "a metricSource")
    kind: str | None = source["type"].text("metric source type") if "type" in source else None
    if "metricSourceRef" in source:
        ref = source["metricSourceRef"].text("name of a kind: DataSource document")
        data_source = by_kind["DataSource"].get(ref)
        if data_source is not None:
            ref_type = str(data_source.value["spec"]["type"])  # type: ignore[index]
            if kind is not None and kind != ref_type:
                raise source["type"].fail(f"the type of DataSource {ref} ({ref_type})")
            kind = ref_type
        elif kind is None:
            raise source["metricSourceRef"].fail(
                f"the name of a kind: DataSource document (known: {sorted(by_kind['DataSource'])}) or a type"
            )
    if kind is None:
        raise metric["metricSource"].fail("a metricSource with a type (or a metricSourceRef to a DataSource)")
    if kind == "otelpipe":
        return _os_otelpipe_source(source, service)
    return _os_query_source(source, kind, service)


def _os_otelpipe_source(source: Mapping[str, _Node], service: str) -> _RedSource:
    fields = source["spec"].mapping(_OS_SOURCE_SPEC, "an otelpipe metric source") if "spec" in source else {}
    extra: dict[str, object] = {}
    if "errors" in fields:
        extra["errors"] = fields["errors"].boolean("errors")
    if "duration_at_most" in fields:
        extra["duration_at_most"] = fields["duration_at_most"].duration("latency threshold")
    selector_fields = {k: v for k, v in fields.items() if k in _NATIVE_SELECTOR}
    own_service = selector_fields["service"].text("service") if "service" in selector_fields else service
    return _RedSource(_selector(own_service, selector_fields), extra)


def _os_query_source(source: Mapping[str, _Node], kind: str, service: str) -> _RedSource:
    """A vendor source: its Prometheus-style `spec.query` mapped onto RED when it selects a RED metric.

    Accepted: one selector of `traces_span_metrics_calls_total` or the duration histogram
    (`..._milliseconds_*` / `..._seconds_*`), with `=` matchers on RED labels, `status_code` =
    or != `STATUS_CODE_ERROR` (bad or good calls), and on a bucket `le` (good = at most that long).
    """
    spec = source.get("spec")
    query_node = None
    if spec is not None and isinstance(spec.value, Mapping) and "query" in spec.value:
        query_node = _Node(spec.value["query"], f"{spec.path}.query", spec.source)
    where = source.get("type") or source.get("metricSourceRef") or spec
    assert where is not None
    if kind.lower() not in _QUERY_TYPES:
        raise where.fail(
            "a metric source otelpipe can map onto its RED metrics: type: otelpipe with RED dimensions, "
            "or a Prometheus-style spec.query over traces_span_metrics_calls_total or "
            f"traces_span_metrics_duration_* (a {kind} metric cannot be computed from spans)",
            kind,
        )
    if query_node is None or not isinstance(query_node.value, str):
        raise (spec or where).fail(
            f"a {kind} source with a spec.query over RED metrics (traces_span_metrics_calls_total or "
            "traces_span_metrics_duration_*), or type: otelpipe with RED dimensions",
            None if spec is None else spec.value,
        )
    query = query_node.value
    selectors = {(m.group(1), m.group(4) or "{}") for m in _RED_SELECTOR.finditer(query)}
    if len(selectors) != 1:
        raise query_node.fail(
            "a query over one RED metric selector (traces_span_metrics_calls_total{...} or "
            "traces_span_metrics_duration_<unit>_bucket/_count{...}); "
            + ("it names none" if not selectors else "it names several"),
        )
    ((metric, braces),) = selectors
    matchers = braces.strip()[1:-1]
    parsed = _MATCHER.findall(matchers)
    if _MATCHER.sub("", matchers).strip():
        raise query_node.fail("label matchers such as service_name=\"shop\" in the RED selector")
    fields: dict[str, _Node] = {}
    extra: dict[str, object] = {}
    per_second = 1000.0 if "_milliseconds_" in metric else 1.0
    for label, op, value in parsed:
        if label == "status_code" and value == "STATUS_CODE_ERROR" and op in ("=", "!="):
            extra["errors"] = op == "="
        elif label == "le" and op == "=" and metric.endswith("_bucket"):
            try:
                extra["duration_at_most"] = round(float(value) / per_second, 12)
            except ValueError:
                raise query_node.fail(f'a numeric le bucket, got le="{value}"') from None
        elif label in _PROM_LABELS and op == "=":
            fields[_PROM_LABELS[label]] = _Node(value, query_node.path, query_node.source)
        else:
            raise query_node.fail(
                "= matchers on service_name, span_name, span_kind, http_route, http_request_method, "
                f'status_code(!)="STATUS_CODE_ERROR" or le; got {label}{op}"{value}"'
            )
    if "span_kind" in fields:
        fields["span_kind"] = _Node(
            str(fields["span_kind"].value).removeprefix("SPAN_KIND_").lower(), query_node.path, query_node.source
        )
    own_service = str(fields.pop("service").value) if "service" in fields else service
    return _RedSource(_selector(own_service, fields), extra, per_second)


def _os_policy(
    node: _Node, by_kind: dict[str, dict[str, _Node]], period: float
) -> tuple[list[AlertTier], list[str]]:
    """The tiers of one AlertPolicy and the names of its notification targets."""
    if isinstance(node.value, str):
        if node.value not in by_kind["AlertPolicy"]:
            raise node.fail(f"the name of a kind: AlertPolicy document (known: {sorted(by_kind['AlertPolicy'])})")
        node = by_kind["AlertPolicy"][node.value]
    doc = node.mapping((*_OS_DOC, "alertPolicyRef"), "an alert policy")
    if "alertPolicyRef" in doc:
        return _os_policy(doc["alertPolicyRef"], by_kind, period)
    if "spec" not in doc:
        raise node.fail("an AlertPolicy with a spec", None)
    spec = doc["spec"].mapping(_OS_POLICY, "an AlertPolicy spec")
    if "alertWhenNoData" in spec and spec["alertWhenNoData"].value is True:
        raise spec["alertWhenNoData"].fail("alertWhenNoData: false (absent-data alerts are not supported)")
    targets: list[str] = []
    if "notificationTargets" in spec and spec["notificationTargets"].value is not None:
        for target in spec["notificationTargets"].items("notification targets"):
            targets.append(_os_target_name(target, by_kind))
    if "conditions" not in spec:
        raise doc["spec"].fail("conditions", None)
    tiers = [_os_condition(c, by_kind, period) for c in spec["conditions"].items("conditions")]
    return tiers, targets


def _os_target_name(node: _Node, by_kind: dict[str, dict[str, _Node]]) -> str:
    """Routing stays with otelpipe's notifiers; the target's name is kept as an alert annotation."""
    fields = node.mapping((*_OS_DOC, "targetRef"), "a notification target")
    if "targetRef" in fields:
        return fields["targetRef"].text("name of a kind: AlertNotificationTarget document")
    name = _os_name(fields, node)
    if "spec" in fields:
        _os_check_document("AlertNotificationTarget", fields, node)
    return name


def _os_condition(node: _Node, by_kind: dict[str, dict[str, _Node]], period: float) -> AlertTier:
    doc = node.mapping(_OS_CONDITION_DOC, "an alert condition")
    if "conditionRef" in doc:
        ref = doc["conditionRef"].text("name of a kind: AlertCondition document")
        if ref not in by_kind["AlertCondition"]:
            raise doc["conditionRef"].fail(
                f"the name of a kind: AlertCondition document (known: {sorted(by_kind['AlertCondition'])})"
            )
        return _os_condition(by_kind["AlertCondition"][ref], by_kind, period)
    if "spec" not in doc:
        raise node.fail("an AlertCondition with a spec", None)
    spec = doc["spec"].mapping(_OS_CONDITION, "an AlertCondition spec")
    if "severity" not in spec or "condition" not in spec:
        raise doc["spec"].fail("severity and condition")
    severity_text = spec["severity"].text("severity")
    severity: TierSeverity = "page" if severity_text.lower() in _PAGE_WORDS else "ticket"
    condition = spec["condition"].mapping(_OS_BURNRATE, "a burn-rate condition")
    if "kind" not in condition or condition["kind"].value != "burnrate":
        where = condition.get("kind") or spec["condition"]
        raise where.fail("kind: burnrate", None if "kind" not in condition else where.value)
    if "op" in condition and condition["op"].value not in ("gte", "gt"):
        raise condition["op"].fail("op gt or gte: a burn-rate alert fires when the burn rate exceeds the threshold")
    if "threshold" not in condition or "lookbackWindow" not in condition:
        raise spec["condition"].fail("threshold and lookbackWindow")
    factor = condition["threshold"].number("burn-rate threshold")
    long = _os_duration(condition["lookbackWindow"], "lookback window")
    # alertAfter is how long the condition must hold (Prometheus `for:`); the short window is the
    # SRE Workbook's 1/12 of the long one.
    hold = _os_duration(condition["alertAfter"], "alertAfter") if "alertAfter" in condition else 0.0
    return _tier(spec["condition"], severity, long / 12, long, factor, period=period, for_seconds=hold)
