"""The one place that reads the environment: `OTELPIPE_*` (and the `OTEL_*` otelpipe needs) into frozen settings.

Every variable is declared once in `VARIABLES` with its default, meaning and expected form; the
parser, `otelpipe check` and the README's table all come from that declaration. Parsing is
lenient by default (a bad value is reported as a `ConfigError` and the default is used, so the
app still starts) and strict with `OTELPIPE_STRICT=true` (the first error is raised).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Generic, TypeVar

from otelpipe.diagnostics import shown_value
from otelpipe.processors.red_snapshot import SPAN_KINDS_BY_NAME
from otelpipe.slo import durations as _durations

T = TypeVar("T")

#: The Collector spanmetrics connector's default buckets (2 ms ... 15 s), in seconds.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
)  # fmt: skip
SPAN_KINDS = tuple(SPAN_KINDS_BY_NAME)  # server, client, producer, consumer, internal
#: Every kind, as the spanmetrics connector counts them.
DEFAULT_SPAN_KINDS = SPAN_KINDS


class ConfigError(ValueError):
    """A configuration value otelpipe cannot use: names the variable, the value and the expected form."""

    def __init__(self, variable: str, value: str, expected: str) -> None:
        self.variable = variable
        self.value = value
        self.expected = expected
        super().__init__(f"{variable}={value!r} is invalid: expected {expected}")


# --- value parsers: each takes the raw string and returns the value or raises ValueError(expected) ---


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("true or false")


def _parse_int(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        expected = f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(expected) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(expected)
        return value

    return parse


def _parse_float(minimum_exclusive: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        expected = f"a number > {minimum_exclusive:g}"
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(expected) from None
        if not math.isfinite(value) or value <= minimum_exclusive:
            raise ValueError(expected)
        return value

    return parse


def parse_duration(raw: str) -> float:
    """Seconds from a duration with its unit (`250ms`, `10s`, `5m`, `1h30m`): the one grammar of otelpipe."""
    try:
        return _durations.parse_duration(raw)
    except ValueError:
        raise ValueError("a duration with a unit, greater than zero, such as 250ms, 10s, 5m, 1h or 1h30m") from None


def _parse_duration_or_zero(raw: str) -> float:
    """Like `parse_duration`, and `0s` is allowed (e.g. no hold-down)."""
    try:
        return _durations.parse_duration(raw, allow_zero=True)
    except ValueError:
        raise ValueError("a duration with a unit, such as 0s, 30s, 5m or 1h") from None


def _parse_names(raw: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            raise ValueError("a comma-separated list of attribute names such as http.route,user.tier")
    return names


def _parse_span_kinds(raw: str) -> tuple[str, ...]:
    kinds = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    if not kinds or any(kind not in SPAN_KINDS for kind in kinds):
        raise ValueError("a comma-separated list of " + ", ".join(SPAN_KINDS))
    return kinds


def parse_buckets(raw: str) -> tuple[float, ...]:
    """Histogram boundaries in seconds: positive, unique, ascending."""
    expected = "comma-separated positive numbers of seconds in ascending order, e.g. 0.01,0.1,0.5,1,5"
    try:
        values = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ValueError(expected) from None
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        raise ValueError(expected)
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(expected + " (no duplicates)")
    return values


def _parse_patterns(raw: str) -> tuple[str, ...]:
    """Regular expressions separated by newlines or `;;` (commas and semicolons occur inside regexes)."""
    from otelpipe.processors.redaction import compile_custom_pattern  # the engine that will run them

    parts = tuple(p.strip() for p in re.split(r"\n|;;", raw) if p.strip())
    for part in parts:
        try:
            compile_custom_pattern(part)
        except ValueError as exc:
            raise ValueError(f"regular expressions separated by ';;' ({exc})") from None
    return parts


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return value

    return parse


def _parse_url(raw: str) -> str:
    value = raw.strip()
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("an http:// or https:// URL")
    return value


def _parse_path(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("a file or directory path")
    return value


def _parse_text(raw: str) -> str:
    return raw.strip()


def _parse_trace_url(raw: str) -> str:
    value = _parse_url(raw)
    if "{trace_id}" not in value:
        raise ValueError("an http(s) URL containing {trace_id}, e.g. http://jaeger:16686/trace/{trace_id}")
    return value


@dataclass(frozen=True)
class Variable(Generic[T]):
    """Declaration of one environment variable: the single source for parsing, `otelpipe check`, docs,
    the settings field it fills (`setting`, e.g. ``red.dimensions``) and that field's default."""

    name: str
    setting: str
    default: T
    parse: Callable[[str], T]
    meaning: str
    secret: bool = False
    shown_default: str | None = None  # how a user would write the default, when str() is not it
    # earlier names still read when `name` is unset, each reported as deprecated (check, start-up log)
    deprecated_names: tuple[str, ...] = ()

    @property
    def default_text(self) -> str:
        """The default as a user would type it."""
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None:
            return "(unset)"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, tuple):
            if not self.default:
                return "(none)"
            return ",".join(_format_number(v) if isinstance(v, float) else str(v) for v in self.default)
        if isinstance(self.default, float):
            return _format_number(self.default)
        return str(self.default)


def _format_number(value: float) -> str:
    return f"{value:g}"


def _optional(parse: Callable[[str], T]) -> Callable[[str], T | None]:
    return parse


# Each variable is declared once: its parser, meaning, the settings field it fills and that field's
# default (the dataclasses below read their defaults from here).
VARIABLES: tuple[Variable[Any], ...] = (
    Variable(
        "OTELPIPE_ENABLED", "enabled", True, _parse_bool, "Master switch; false leaves the stock SDK setup untouched."
    ),
    Variable("OTELPIPE_STRICT", "strict", False, _parse_bool, "Make any configuration error fatal instead of logged."),
    Variable(
        "OTELPIPE_STATE_DIR", "state_dir",
        None,
        _optional(_parse_path),
        "Directory for SLO windows and incident history (SQLite, one directory per process); unset keeps them in memory.",
    ),
    Variable("OTELPIPE_RED_ENABLED", "red.enabled", True, _parse_bool, "Derive RED metrics from spans."),
    Variable(
        "OTELPIPE_RED_DIMENSIONS", "red.dimensions",
        (),
        _parse_names,
        "Extra span/resource attributes to add as RED dimensions (comma-separated).",
    ),
    Variable(
        "OTELPIPE_RED_EXCLUDE_DIMENSIONS", "red.exclude_dimensions",
        (),
        _parse_names,
        "Default RED dimensions to drop, e.g. http.response.status_code (comma-separated).",
    ),
    Variable(
        "OTELPIPE_RED_SPAN_KINDS", "red.span_kinds",
        DEFAULT_SPAN_KINDS,
        _parse_span_kinds,
        "Span kinds that feed RED metrics (server, client, producer, consumer, internal).",
    ),
    Variable(
        "OTELPIPE_RED_BUCKETS", "red.buckets",
        DEFAULT_BUCKETS,
        parse_buckets,
        "Duration histogram boundaries in seconds (ascending, comma-separated).",
    ),
    Variable(
        "OTELPIPE_RED_UNIT", "red.unit",
        "ms",
        _parse_choice("ms", "s"),
        "Duration histogram unit: ms (the spanmetrics connector's default) or s.",
    ),
    Variable(
        "OTELPIPE_RED_CARDINALITY_LIMIT", "red.cardinality_limit",
        2000,
        _parse_int(1, 1_000_000),
        "Series per RED metric; further series fold into one otel.metric.overflow=true series.",
    ),
    Variable(
        "OTELPIPE_RED_RECORD_UNSAMPLED_ENABLED", "red.record_unsampled",
        True,
        _parse_bool,
        "Record (not export) spans the sampler drops, so RED counts stay exact under sampling.",
        deprecated_names=("OTELPIPE_RED_RECORD_UNSAMPLED",),
    ),
    Variable(
        "OTELPIPE_FAST_SAMPLER_ENABLED", "fast_sampler",
        True,
        _parse_bool,
        "Decide the SDK's ParentBased samplers (the default, parentbased_*) with an equivalent one-frame sampler; false keeps the SDK's.",
    ),
    Variable(
        "OTELPIPE_RED_EXEMPLARS_ENABLED", "red.exemplars",
        True,
        _parse_bool,
        "Attach example trace ids to duration buckets.",
        deprecated_names=("OTELPIPE_RED_EXEMPLARS",),
    ),
    Variable(
        "OTELPIPE_SERVICE_GRAPH_ENABLED", "red.service_graph",
        True,
        _parse_bool,
        "Emit traces_service_graph_request_* for CLIENT and PRODUCER spans.",
        deprecated_names=("OTELPIPE_SERVICE_GRAPH",),
    ),
    Variable(
        "OTELPIPE_LOG_CORRELATION_ENABLED", "logs.correlation",
        True,
        _parse_bool,
        "Add trace_id, span_id, trace_sampled, service and request_id to every stdlib log record.",
        deprecated_names=("OTELPIPE_LOG_CORRELATION",),
    ),
    Variable(
        "OTELPIPE_LOG_FORMAT", "logs.format",
        "unchanged",
        _parse_choice("unchanged", "json", "ecs"),
        "Set the root handlers' formatter: unchanged, json (one object per line) or ecs (Elastic names).",
    ),
    Variable(
        "OTELPIPE_ACCESS_LOG_ENABLED", "logs.access_log",
        False,
        _parse_bool,
        "Log start and completion of every Flask request.",
        deprecated_names=("OTELPIPE_ACCESS_LOG",),
    ),
    Variable(
        "OTELPIPE_REDACT_ENABLED", "redaction.enabled",
        True,
        _parse_bool,
        "Mask secrets in log records and span attributes.",
        deprecated_names=("OTELPIPE_REDACT",),
    ),
    Variable(
        "OTELPIPE_REDACT_KEYS", "redaction.keys",
        (),
        _parse_names,
        "Extra attribute/field names whose values are masked (comma-separated).",
    ),
    Variable(
        "OTELPIPE_REDACT_PATTERNS", "redaction.patterns",
        (),
        _parse_patterns,
        "Extra regular expressions whose matches are masked (separated by ';;'); 20 ms per value, then the value is masked whole.",
    ),
    Variable("OTELPIPE_SLO_FILE", "slo.file", None, _optional(_parse_path), "YAML file with SLOs and threshold rules."),
    Variable(
        "OTELPIPE_SLO_INTERVAL", "slo.interval_s", 10.0, parse_duration, "SLO evaluation tick, e.g. 10s.", shown_default="10s"
    ),
    Variable(
        "OTELPIPE_SLO_TIME_SCALE", "slo.time_scale",
        1.0,
        _parse_float(0),
        "Demo only: divide every SLO window by this factor so a burn shows within a minute.",
    ),
    Variable(
        "OTELPIPE_SLO_EVALUATION", "slo.evaluation",
        "host",
        _parse_choice("host", "process", "gateway"),
        "Where SLOs and rules are evaluated: host (one evaluator per host: forked workers push RED to the "
        "process that ran configure()), process (each process alone), gateway (not here: an otelpipe "
        "gateway evaluates the exported RED).",
    ),
    Variable(
        "OTELPIPE_PREFORK_PUSH_INTERVAL", "slo.prefork_push_interval_s",
        1.0,
        parse_duration,
        "With host evaluation, how often each forked worker pushes its RED to its parent over loopback.",
        shown_default="1s",
    ),
    Variable(
        "OTELPIPE_STREAM_STALE_AFTER", "slo.stream_stale_after_s",
        300.0,
        parse_duration,
        "RED streams (workers, pods) silent this long are forgotten by the merging evaluator.",
        shown_default="5m",
    ),
    Variable(
        "OTELPIPE_STATE_SAVE_INTERVAL", "slo.save_interval_s",
        5.0,
        parse_duration,
        "How often SLO windows are saved to OTELPIPE_STATE_DIR (and at shutdown), so `otelpipe slo status` reads live figures.",
        shown_default="5s",
    ),
    Variable(
        "OTELPIPE_SYSTEM_METRICS_ENABLED", "system_metrics",
        True,
        _parse_bool,
        "configure(): record system and process metrics (opentelemetry-instrumentation-system-metrics, when installed).",
        deprecated_names=("OTELPIPE_SYSTEM_METRICS",),
    ),
    Variable(
        "OTELPIPE_INCIDENT_HOLD_DOWN", "incidents.hold_down_s",
        300.0,
        _parse_duration_or_zero,
        "How long a condition must stay clear before its incident resolves (flap suppression).",
        shown_default="5m",
    ),
    Variable(
        "OTELPIPE_INCIDENT_RENOTIFY", "incidents.renotify_interval_s",
        14400.0,
        parse_duration,
        "Re-notify interval for a long-running incident.",
        shown_default="4h",
    ),
    Variable(
        "OTELPIPE_TRACE_URL_TEMPLATE", "incidents.trace_url_template",
        None,
        _optional(_parse_trace_url),
        "Link to a trace in your tracing UI, with {trace_id}, e.g. http://jaeger:16686/trace/{trace_id}.",
    ),
    Variable(
        "OTELPIPE_ALERTMANAGER_URL", "incidents.alertmanager_url",
        None,
        _optional(_parse_url),
        "Alertmanager base URL; incidents are posted to /api/v2/alerts.",
    ),
    Variable(
        "OTELPIPE_PAGERDUTY_ROUTING_KEY", "incidents.pagerduty_routing_key",
        None,
        _optional(_parse_text),
        "PagerDuty Events v2 routing key; enables the PagerDuty notifier.",
        secret=True,
    ),
    Variable(
        "OTELPIPE_PAGERDUTY_URL", "incidents.pagerduty_url",
        "https://events.pagerduty.com/v2/enqueue",
        _parse_url,
        "PagerDuty Events v2 endpoint (override for tests or proxies).",
    ),
    Variable(
        "OTELPIPE_WEBHOOK_URL", "incidents.webhook_url",
        None,
        _optional(_parse_url),
        "Webhook receiving incident open/update/resolve as JSON.",
        secret=True,
    ),
    Variable(
        "OTELPIPE_WEBHOOK_FORMAT", "incidents.webhook_format",
        "json",
        _parse_choice("json", "slack"),
        "Webhook body: json (otelpipe schema) or slack (Slack-compatible text).",
    ),
    Variable(
        "OTELPIPE_CONSOLE_NOTIFIER_ENABLED", "incidents.console",
        False,
        _parse_bool,
        "Also print incident transitions to stderr (the demo does).",
        deprecated_names=("OTELPIPE_CONSOLE_NOTIFIER",),
    ),
    Variable(
        "OTELPIPE_NOTIFY_TIMEOUT", "incidents.notify_timeout_s",
        5.0,
        parse_duration,
        "Deadline of one notifier HTTP attempt (connect, send and answer together).",
        shown_default="5s",
    ),
    Variable(
        "OTELPIPE_NOTIFY_QUEUE_SIZE", "incidents.notify_queue_size",
        1000,
        _parse_int(1, 1_000_000),
        "Bounded queue per notifier; events beyond it are dropped and counted.",
    ),
    Variable(
        "OTELPIPE_SHUTDOWN_TIMEOUT", "export.shutdown_timeout_s",
        5.0,
        parse_duration,
        "Upper bound on flushing telemetry at exit, so a dead collector cannot stall a deploy.",
        shown_default="5s",
    ),
)
VARIABLES_BY_NAME: Mapping[str, Variable[Any]] = {v.name: v for v in VARIABLES}
# old name -> the variable that replaced it (still read, reported as deprecated)
DEPRECATED_NAMES: Mapping[str, Variable[Any]] = {old: v for v in VARIABLES for old in v.deprecated_names}

#: Standard OpenTelemetry variables otelpipe reads itself (the SDK reads these and the rest directly).
OTEL_VARIABLES: tuple[tuple[str, str], ...] = (
    ("OTEL_SERVICE_NAME", "Service name (else service.name from OTEL_RESOURCE_ATTRIBUTES)."),
    ("OTEL_RESOURCE_ATTRIBUTES", "Resource attributes, key=value pairs separated by commas."),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP endpoint (otelpipe's default: the SDK's, localhost:4317/4318)."),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc or http/protobuf (otelpipe's distro defaults to grpc)."),
    ("OTEL_EXPORTER_OTLP_HEADERS", "Headers for OTLP requests (never printed by otelpipe check)."),
    ("OTEL_TRACES_EXPORTER", "otlp, console or none (otelpipe's distro defaults to otlp)."),
    ("OTEL_METRICS_EXPORTER", "otlp, prometheus, console or none (default otlp)."),
    ("OTEL_LOGS_EXPORTER", "otlp, console or none (default otlp)."),
    ("OTEL_EXPORTER_PROMETHEUS_PORT", "Port of /metrics with OTEL_METRICS_EXPORTER=otlp,prometheus (9464)."),
    ("OTEL_TRACES_SAMPLER", "Sampler name, e.g. parentbased_traceidratio."),
    ("OTEL_TRACES_SAMPLER_ARG", "Sampler argument, e.g. 0.01."),
    ("OTEL_SDK_DISABLED", "true turns the SDK and otelpipe off: nothing built, no thread, logs untouched."),
)


def _default(setting: str) -> Any:
    """The default of the variable that fills `setting`: settings built in code start where the env does."""
    return next(variable.default for variable in VARIABLES if variable.setting == setting)


@dataclass(frozen=True)
class REDSettings:
    """How spans become RED metrics."""

    enabled: bool = _default("red.enabled")
    dimensions: tuple[str, ...] = _default("red.dimensions")
    exclude_dimensions: tuple[str, ...] = _default("red.exclude_dimensions")
    span_kinds: tuple[str, ...] = _default("red.span_kinds")
    buckets: tuple[float, ...] = _default("red.buckets")
    unit: str = _default("red.unit")
    cardinality_limit: int = _default("red.cardinality_limit")
    record_unsampled: bool = _default("red.record_unsampled")
    exemplars: bool = _default("red.exemplars")
    service_graph: bool = _default("red.service_graph")


@dataclass(frozen=True)
class LogSettings:
    """Log correlation, formatting and the request id."""

    correlation: bool = _default("logs.correlation")
    format: str = _default("logs.format")
    access_log: bool = _default("logs.access_log")


@dataclass(frozen=True)
class RedactionSettings:
    """What is masked before any exporter or handler sees it."""

    enabled: bool = _default("redaction.enabled")
    keys: tuple[str, ...] = _default("redaction.keys")
    patterns: tuple[str, ...] = _default("redaction.patterns")


@dataclass(frozen=True)
class SLOSettings:
    """Where the SLO spec lives and how often it is evaluated."""

    file: str | None = _default("slo.file")
    interval_s: float = _default("slo.interval_s")
    time_scale: float = _default("slo.time_scale")
    evaluation: str = _default("slo.evaluation")
    prefork_push_interval_s: float = _default("slo.prefork_push_interval_s")
    stream_stale_after_s: float = _default("slo.stream_stale_after_s")
    save_interval_s: float = _default("slo.save_interval_s")


@dataclass(frozen=True)
class IncidentSettings:
    """Incident lifecycle and where incidents are delivered."""

    hold_down_s: float = _default("incidents.hold_down_s")
    renotify_interval_s: float = _default("incidents.renotify_interval_s")
    trace_url_template: str | None = _default("incidents.trace_url_template")
    alertmanager_url: str | None = _default("incidents.alertmanager_url")
    pagerduty_routing_key: str | None = field(default=_default("incidents.pagerduty_routing_key"), repr=False)
    pagerduty_url: str = _default("incidents.pagerduty_url")
    webhook_url: str | None = field(default=_default("incidents.webhook_url"), repr=False)
    webhook_format: str = _default("incidents.webhook_format")
    console: bool = _default("incidents.console")
    notify_timeout_s: float = _default("incidents.notify_timeout_s")
    notify_queue_size: int = _default("incidents.notify_queue_size")


@dataclass(frozen=True)
class ExportSettings:
    """Local export options on top of the SDK's OTLP exporters."""

    shutdown_timeout_s: float = _default("export.shutdown_timeout_s")


@dataclass(frozen=True)
class Settings:
    """Everything otelpipe needs, parsed once. Build it in code or with `Settings.from_env()`."""

    enabled: bool = _default("enabled")
    strict: bool = _default("strict")
    state_dir: str | None = _default("state_dir")
    system_metrics: bool = _default("system_metrics")
    fast_sampler: bool = _default("fast_sampler")
    red: REDSettings = field(default_factory=REDSettings)
    logs: LogSettings = field(default_factory=LogSettings)
    redaction: RedactionSettings = field(default_factory=RedactionSettings)
    slo: SLOSettings = field(default_factory=SLOSettings)
    incidents: IncidentSettings = field(default_factory=IncidentSettings)
    export: ExportSettings = field(default_factory=ExportSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Strict parse: raise the first `ConfigError`."""
        loaded = load_settings(environ, strict=True)
        return loaded.settings


@dataclass(frozen=True)
class LoadedSettings:
    """Settings plus every error found (each erroneous variable fell back to its default)."""

    settings: Settings
    errors: tuple[ConfigError, ...]
    values: Mapping[str, Any]  # variable name -> effective value
    # one message per old variable name set (see `Variable.deprecated_names`): read or ignored, and the new name
    deprecations: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)  # variable name -> the env name its value came from


def _raw_value(variable: Variable[Any], env: Mapping[str, str], deprecations: list[str]) -> tuple[str, str | None]:
    """The name and raw value to parse for `variable`: its own name first, then its deprecated names."""
    raw = env.get(variable.name)
    name, chosen = variable.name, (None if raw is None or raw.strip() == "" else raw)
    for old in variable.deprecated_names:
        old_raw = env.get(old)
        if old_raw is None or old_raw.strip() == "":
            continue
        if chosen is None:
            name, chosen = old, old_raw
            deprecations.append(f"{old} is deprecated, use {variable.name} (read for now)")
        else:
            deprecations.append(f"{old} is deprecated and ignored: {variable.name} is set and wins")
    return name, chosen


def load_settings(environ: Mapping[str, str] | None = None, *, strict: bool | None = None) -> LoadedSettings:
    """Parse every `OTELPIPE_*` variable.

    With `strict` (default: the value of `OTELPIPE_STRICT`) the first bad value raises
    `ConfigError`; otherwise bad values fall back to their defaults and are returned as errors.
    Unknown `OTELPIPE_*` names are reported too: a typo silently ignored is a config bug.
    """
    env = os.environ if environ is None else environ
    errors: list[ConfigError] = []
    values: dict[str, Any] = {}
    deprecations: list[str] = []
    sources: dict[str, str] = {}
    for variable in VARIABLES:
        source, raw = _raw_value(variable, env, deprecations)
        if raw is None:
            values[variable.name] = variable.default
            continue
        sources[variable.name] = source
        try:
            values[variable.name] = variable.parse(raw)
        except ValueError as exc:
            shown = shown_value(source, raw, secret=variable.secret)  # no secret in any message
            errors.append(ConfigError(source, shown, str(exc)))
            values[variable.name] = variable.default
    for name in sorted(env):
        if name.startswith("OTELPIPE_") and name not in VARIABLES_BY_NAME and name not in DEPRECATED_NAMES:
            shown = shown_value(name, env[name])  # a misspelled ..._PAGERDUTY_ROUTNG_KEY is still a key
            errors.append(ConfigError(name, shown, "a known OTELPIPE_* variable (see otelpipe check)"))
    if strict is None:
        strict = bool(values["OTELPIPE_STRICT"])
    if strict and errors:
        raise errors[0]
    return LoadedSettings(_build(values), tuple(errors), values, tuple(deprecations), sources)


def _build(values: Mapping[str, Any]) -> Settings:
    """Settings from parsed values, each placed in the field its variable declares."""
    sections: dict[str, dict[str, Any]] = {}
    for variable in VARIABLES:
        section, _, name = variable.setting.rpartition(".")
        sections.setdefault(section, {})[name] = values[variable.name]
    nested = {
        f.name: f.default_factory(**sections.pop(f.name, {}))  # type: ignore[misc]
        for f in fields(Settings)
        if f.default_factory is not MISSING
    }
    return Settings(**sections.pop(""), **nested)


def _formerly(variable: Variable[Any]) -> str:
    if not variable.deprecated_names:
        return ""
    names = ", ".join(f"`{old}`" for old in variable.deprecated_names)
    return f" Formerly {names} (still read when this is unset; deprecated)."


def markdown_table() -> str:
    """The README's environment-variable table (a test keeps the README equal to this)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{v.name}` | `{v.default_text}` | {v.meaning}{_formerly(v)} |" for v in VARIABLES]
    rows += [f"| `{name}` | SDK default | {meaning} |" for name, meaning in OTEL_VARIABLES]
    return "\n".join(rows)


def sdk_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """`OTEL_SDK_DISABLED=true` (case-insensitive, as the SDK reads it): otelpipe must stay off too."""
    env = os.environ if environ is None else environ
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def service_name(environ: Mapping[str, str] | None = None) -> str:
    """The service name as the SDK resolves it: OTEL_SERVICE_NAME, then OTEL_RESOURCE_ATTRIBUTES."""
    env = os.environ if environ is None else environ
    name = env.get("OTEL_SERVICE_NAME", "").strip()
    if name:
        return name
    for pair in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, _, value = pair.partition("=")
        if key.strip() == "service.name" and value.strip():
            return value.strip()
    return "unknown_service"
