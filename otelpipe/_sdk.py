"""The inventory of every private OpenTelemetry SDK symbol otelpipe relies on, and a check that each is there.

otelpipe plugs into the SDK's public interfaces wherever one exists; where none does (custom
processors under `opentelemetry-instrument`, producers on existing readers, a span's fields read
without the public properties' per-call cost), it uses a private symbol. Each one is listed here with
why it is needed, who uses it and the public alternative, and `check_sdk_hooks()` verifies them on
the installed SDK against real SDK objects. `otelpipe check` prints the result and `configure()` logs
one error per missing hook, naming the feature that is degraded, instead of losing it silently.
`tests/test_sdk_contract.py` holds one contract test per hook.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, cast

_log = logging.getLogger("otelpipe")


def _always_on() -> Any:
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON as sampler

    return sampler


@dataclass(frozen=True)
class Hook:
    """One private SDK symbol: what it is, who needs it, what breaks without it."""

    symbol: str
    used_by: str
    why: str
    public_alternative: str
    degraded: str  # what the user loses if the hook is missing
    probe: Callable[[], None]  # raises when the hook is missing or behaves differently


def _configuration() -> Any:
    import opentelemetry.sdk._configuration as configuration

    return configuration


def _probe_initialize_components() -> None:
    parameters = inspect.signature(_configuration()._initialize_components).parameters
    missing = {"span_processors", "log_record_processors", "sampler"} - set(parameters)
    if missing:
        raise LookupError(f"_initialize_components() lacks {sorted(missing)}")


def _probe_configurator() -> None:
    configurator = _configuration()._OTelSDKConfigurator
    if not callable(getattr(configurator, "_configure", None)):
        raise LookupError("_OTelSDKConfigurator._configure is missing")


def _probe_exporter_helpers() -> None:
    configuration = _configuration()
    for name in ("_get_exporter_entry_point", "_get_sampler", "_import_sampler"):
        if not callable(getattr(configuration, name, None)):
            raise LookupError(f"opentelemetry.sdk._configuration.{name} is missing")


def _probe_reader_collect() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    try:
        if not callable(getattr(reader, "_set_collect_callback", None)):
            raise LookupError("MetricReader._set_collect_callback is missing")
        if getattr(reader, "_collect", None) is None:
            raise LookupError("MetricReader._collect is not set by the MeterProvider")
        if not isinstance(getattr(reader, "_instrument_class_temporality", None), dict):
            raise LookupError("MetricReader._instrument_class_temporality is missing")
        storages = getattr(getattr(provider, "_measurement_consumer", None), "_reader_storages", None)
        if not isinstance(storages, dict) or reader not in storages:
            raise LookupError("MeterProvider._measurement_consumer._reader_storages is missing")
    finally:
        provider.shutdown()


def add_metric_reader(provider: Any, reader: Any) -> None:
    """Register `reader` on a running `MeterProvider`.

    `MeterProvider.add_metric_reader` is public from SDK 1.43; on 1.42 the same steps are taken
    through the measurement consumer (a new reader storage swapped in under its lock, then the
    collect callback), so metric rules keep their reader on the oldest supported SDK.
    """
    public = getattr(provider, "add_metric_reader", None)
    if public is not None:
        public(reader)
        return
    from opentelemetry.sdk.metrics._internal.metric_reader_storage import MetricReaderStorage

    consumer = provider._measurement_consumer
    with consumer._lock:
        storages = dict(consumer._reader_storages)
        storages[reader] = MetricReaderStorage(
            consumer._sdk_config, reader._instrument_class_temporality, reader._instrument_class_aggregation
        )
        consumer._reader_storages = storages
    reader._set_collect_callback(consumer.collect)


def _probe_add_metric_reader() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    provider = MeterProvider(shutdown_on_exit=False)
    try:
        counter = provider.get_meter("otelpipe.sdk-check").create_counter("probe")
        reader = InMemoryMetricReader()
        add_metric_reader(provider, reader)
        counter.add(1)
        data = reader.get_metrics_data()
        points = [
            getattr(point, "value", None)
            for resource in (data.resource_metrics if data is not None else ())
            for scope in resource.scope_metrics
            for metric in scope.metrics
            for point in metric.data.data_points
        ]
        if points != [1]:
            raise LookupError(f"a reader added to a running MeterProvider did not collect (saw {points})")
    finally:
        provider.shutdown()


def _probe_meter_resource() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    provider = MeterProvider(shutdown_on_exit=False)
    try:
        if not isinstance(getattr(getattr(provider, "_sdk_config", None), "resource", None), Resource):
            raise LookupError("MeterProvider._sdk_config.resource is missing")
    finally:
        provider.shutdown()


def _probe_fork_locks() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    try:
        consumer = getattr(provider, "_measurement_consumer", None)
        for owner, name in ((consumer, "_lock"), (reader, "_export_lock")):
            if not callable(getattr(getattr(owner, name, None), "acquire", None)):
                raise LookupError(f"{type(owner).__name__}.{name} is not a lock")
    finally:
        provider.shutdown()


def _probe_instrument_classes() -> None:
    from opentelemetry.sdk.metrics._internal.instrument import _Counter, _Histogram  # noqa: F401


def _finished_span() -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind

    # An explicit sampler: the default reads OTEL_TRACES_SAMPLER, which may drop the probe's span.
    provider = TracerProvider(resource=Resource.get_empty(), sampler=_always_on(), shutdown_on_exit=False)
    tracer = provider.get_tracer("otelpipe.sdk-check")
    span = tracer.start_span("check", kind=SpanKind.SERVER, attributes={"a": 1})
    span.end()
    return span


def _probe_span_fields() -> None:
    from opentelemetry.attributes import BoundedAttributes

    span = _finished_span()
    for name in ("_name", "_kind", "_status", "_start_time", "_end_time", "_resource", "_context", "_events", "_links"):
        if not hasattr(span, name):
            raise LookupError(f"Span.{name} is missing")
    if not isinstance(span._kind._value_, int) or not isinstance(span._status._status_code._value_, int):
        raise LookupError("Span._kind / Span._status._status_code are not int-valued enums")
    attributes = span._attributes
    if type(attributes) is not BoundedAttributes or not isinstance(getattr(attributes, "_dict", None), dict):
        raise LookupError("Span._attributes is not a BoundedAttributes with a _dict")
    if getattr(attributes, "_lock", None) is None:
        raise LookupError("BoundedAttributes._lock is missing")


def _probe_on_ending() -> None:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    order: list[str] = []

    class _Probe(SpanProcessor):
        def _on_ending(self, span: Any) -> None:
            order.append("ending")

        def on_end(self, span: Any) -> None:
            order.append("end")

    provider = TracerProvider(sampler=_always_on(), shutdown_on_exit=False)
    provider.add_span_processor(_Probe())
    provider.get_tracer("otelpipe.sdk-check").start_span("check").end()
    if order != ["ending", "end"]:
        raise LookupError(f"SpanProcessor._on_ending is not called before on_end (saw {order})")


def _probe_runtime_context() -> None:
    from contextvars import ContextVar

    from opentelemetry import context

    runtime = getattr(context, "_RUNTIME_CONTEXT", None)
    if not isinstance(getattr(runtime, "_current_context", None), ContextVar):
        raise LookupError("opentelemetry.context._RUNTIME_CONTEXT._current_context is not a ContextVar")


def _probe_fast_sampler() -> None:
    from otelpipe.processors.fast_sampling import check_fast_sampler

    check_fast_sampler()


def _probe_logs_sdk() -> None:
    from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor  # noqa: F401


def _probe_export_drops() -> None:
    from opentelemetry.sdk._shared_internal import BatchProcessor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from otelpipe.processors.export_drops import DropCountingBatchSpanProcessor, ExportDropCounts

    parameters = set(inspect.signature(_configuration()._initialize_components).parameters)
    missing = {"export_span_processor", "export_log_record_processor"} - parameters
    if missing:
        raise LookupError(f"_initialize_components() lacks {sorted(missing)}")
    if "metrics" not in inspect.signature(BatchProcessor).parameters:
        raise LookupError("BatchProcessor takes no metrics object")

    class _Failing(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.FAILURE

    counts = ExportDropCounts()
    processor = DropCountingBatchSpanProcessor(_Failing(), counts)
    provider = TracerProvider(sampler=_always_on(), shutdown_on_exit=False)
    provider.add_span_processor(processor)
    provider.get_tracer("otelpipe.sdk-check").start_span("check").end()
    cast(Any, processor).shutdown()  # exports what is queued first
    if counts.dropped() != {("traces", "export_failed"): 1}:
        raise LookupError(f"the batch processor did not report its failed batch (saw {counts.dropped()})")


def _probe_light_tracing() -> None:
    import opentelemetry.sdk.trace as sdk_trace
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from otelpipe.processors.unsampled import LightUnsampledTracerProvider, UnsampledSpan
    from otelpipe.sdk_components import INITIALIZE_PARAMETERS, SDK_HELPERS

    configuration = _configuration()
    for name in SDK_HELPERS:
        if not hasattr(configuration, name):
            raise LookupError(f"opentelemetry.sdk._configuration.{name} is missing")
    unknown = set(inspect.signature(configuration._initialize_components).parameters) - INITIALIZE_PARAMETERS
    if unknown:  # a new step the light setup would skip
        raise LookupError(
            f"_initialize_components() has parameters otelpipe does not mirror: {sorted(unknown)}"
        )
    tracer = sdk_trace.TracerProvider(sampler=_always_on(), shutdown_on_exit=False).get_tracer(
        "otelpipe.sdk-check"
    )
    for name in ("_is_enabled", "span_processor", "_instrumentation_scope", "resource"):
        if not hasattr(tracer, name):
            raise LookupError(f"Tracer.{name} is missing")
    ended: list[Any] = []

    class _Probe(SpanProcessor):
        def on_end(self, span: Any) -> None:
            ended.append(span)

    provider = LightUnsampledTracerProvider(sampler=ALWAYS_OFF, keep=frozenset({"a"}), shutdown_on_exit=False)
    provider.add_span_processor(_Probe())
    span = provider.get_tracer("otelpipe.sdk-check").start_span("check", attributes={"a": 1, "b": 2})
    span.end()
    if not isinstance(span, UnsampledSpan) or ended != [span] or dict(span.attributes or {}) != {"a": 1}:
        raise LookupError("a dropped span did not become a light UnsampledSpan seen by the processors")


EXPORT_DROPS_HOOK = Hook(
    "opentelemetry.sdk._shared_internal.BatchProcessor(metrics=), Batch*Processor._batch_processor/_default_*, "
    "_initialize_components(export_span_processor=, export_log_record_processor=)",
    "otelpipe.processors.export_drops, otelpipe.pipeline",
    "counts queue-full drops and failed batches once per batch, without the SDK's per-span internal metrics",
    "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true (about a dozen Counter.add calls per request)",
    "export drops are not counted (the stock batch processors export)",
    _probe_export_drops,
)
LIGHT_TRACING_HOOK = Hook(
    "opentelemetry.sdk._configuration._import_exporters/_init_metrics/_init_logging/... (the steps of "
    "_initialize_components), Tracer._is_enabled/_instrumentation_scope/span_processor, TracerProvider._tracers_lock; "
    "Tracer.sampler/id_generator/_tracer_config/_tracer_metrics for a dropped span's children (probed per tracer: "
    "the SDK starts them itself otherwise)",
    "otelpipe.sdk_components, otelpipe.processors.unsampled",
    "builds the SDK with a TracerProvider whose dropped spans are light UnsampledSpans: exact RED under "
    "sampling at a fraction of a RECORD_ONLY span's cost",
    "RecordUnsampledSampler (full RECORD_ONLY SDK spans)",
    "unsampled spans are recorded as full SDK spans: RED stays exact, each request costs more",
    _probe_light_tracing,
)

HOOKS: tuple[Hook, ...] = (
    Hook(
        "opentelemetry.sdk._configuration._initialize_components(span_processors=, log_record_processors=, sampler=)",
        "otelpipe.pipeline",
        "builds providers from the standard OTEL_* variables with otelpipe's processors in place",
        "none: the SDK has no variable or entry point for custom processors (opentelemetry-python #4806)",
        "otelpipe cannot configure the SDK; the configurator falls back to the stock setup",
        _probe_initialize_components,
    ),
    Hook(
        "opentelemetry.sdk._configuration._OTelSDKConfigurator",
        "otelpipe.autoconfig",
        "the configurator entry point opentelemetry-instrument loads",
        "none (the documented way to ship a configurator)",
        "otelpipe is not loaded by opentelemetry-instrument",
        _probe_configurator,
    ),
    Hook(
        "opentelemetry.sdk._configuration._get_exporter_entry_point/_get_sampler/_import_sampler",
        "otelpipe.pipeline",
        "resolve `otlp` by OTEL_EXPORTER_OTLP_PROTOCOL and the OTEL_TRACES_SAMPLER the way the SDK does",
        "re-implementing the SDK's variable parsing",
        "configure() cannot pick exporters or the sampler from the environment",
        _probe_exporter_helpers,
    ),
    Hook(
        "MetricReader._collect/_set_collect_callback/_instrument_class_temporality, "
        "MeterProvider._measurement_consumer._reader_storages",
        "otelpipe.processors.red_metrics",
        "adds the RED producer's points to every reader's collection (one pre-aggregated store, no API call per span)",
        "MetricProducer on readers (in the specification; not in the Python SDK yet)",
        "RED metrics are not exported (SLOs still evaluate in process)",
        _probe_reader_collect,
    ),
    Hook(
        "MeterProvider.add_metric_reader (SDK >= 1.43), else MeterProvider._measurement_consumer."
        "_lock/_reader_storages/_sdk_config and metrics._internal.metric_reader_storage.MetricReaderStorage",
        "otelpipe.pipeline (metric rules), otelpipe._sdk.add_metric_reader",
        "metric rules read the app's metrics through a reader added to the provider the SDK already built",
        "MeterProvider.add_metric_reader (public from SDK 1.43; the fallback is for 1.42)",
        "metric rules see no data (SLOs, threshold rules and RED are unaffected)",
        _probe_add_metric_reader,
    ),
    Hook(
        "MeterProvider._sdk_config.resource",
        "otelpipe.processors.red_metrics",
        "gives each forked worker its own service.instance.id and the RED scope the provider's resource",
        "none",
        "forked workers share one identity; RED points may carry an empty resource",
        _probe_meter_resource,
    ),
    Hook(
        "MeterProvider._measurement_consumer._lock, PeriodicExportingMetricReader._export_lock",
        "otelpipe.processors.fork_safety",
        "a worker forked while the master collects or exports would inherit these locks held and never "
        "export metrics; they are taken before fork() and renewed in the child",
        "none (the SDK renews neither in its own fork handlers)",
        "a prefork worker (gunicorn, uWSGI) forked mid-collection may export no metrics at all",
        _probe_fork_locks,
    ),
    Hook(
        "opentelemetry.sdk.metrics._internal.instrument._Counter/_Histogram",
        "otelpipe.processors.red_metrics",
        "look up the temporality each reader prefers for counters and histograms",
        "none (the reader's preference table is keyed by these classes)",
        "RED metrics are not exported",
        _probe_instrument_classes,
    ),
    Hook(
        "Span._name/_kind/_status/_start_time/_end_time/_resource/_context, BoundedAttributes._dict/_lock",
        "otelpipe.processors.red, otelpipe.processors.span_redaction",
        "the span-end hot path reads fields directly (the public properties allocate per call); "
        "redaction rewrites attributes the SDK already froze",
        "the public properties (slower; used as fallback where the type differs)",
        "RED counts nothing and span redaction is off",
        _probe_span_fields,
    ),
    Hook(
        "SpanProcessor._on_ending",
        "otelpipe.processors.span_redaction",
        "masks secrets while the span is ending, before the on_end of an exporter otelpipe did not build",
        "OnEnding in the specification (development); not public in the Python SDK",
        "exporters otelpipe did not build export span attributes unredacted (its own mask at export)",
        _probe_on_ending,
    ),
    Hook(
        "opentelemetry.context._RUNTIME_CONTEXT._current_context",
        "otelpipe.processors.log_correlation, otelpipe.processors.request_id",
        "reads the current context with one C call per log record (and per request for baggage)",
        "opentelemetry.context.get_current() (used automatically when this is missing)",
        "log correlation is a little slower (falls back to the public API)",
        _probe_runtime_context,
    ),
    Hook(
        "opentelemetry.sdk._logs (LoggerProvider, LogRecordProcessor)",
        "otelpipe.processors.otlp_logs, otelpipe.pipeline",
        "the logs SDK is still private in Python",
        "none yet",
        "OTLP log correlation/redaction and OTLP incident events are off",
        _probe_logs_sdk,
    ),
    Hook(
        "ParentBased._root/_remote_parent_*/_local_parent_*, StaticSampler._decision, "
        "sampling._get_from_env_or_default, trace.propagation._SPAN_KEY, SpanContext's tuple layout",
        "otelpipe.processors.fast_sampling, otelpipe.pipeline",
        "the SDK's ParentBased over its own samplers, decided in one frame instead of about a dozen calls per span",
        "the SDK's ParentBased (used automatically when this is missing)",
        "sampling decisions cost what they cost in the stock SDK (the decisions are the same)",
        _probe_fast_sampler,
    ),
    EXPORT_DROPS_HOOK,
    LIGHT_TRACING_HOOK,
)


@dataclass(frozen=True)
class HookResult:
    hook: Hook
    error: str | None  # None when the hook is present and behaves as relied on

    @property
    def ok(self) -> bool:
        return self.error is None


def check_sdk_hooks(hooks: tuple[Hook, ...] = HOOKS) -> list[HookResult]:
    """Probe every hook on the installed SDK; never raises."""
    results = []
    for hook in hooks:
        try:
            hook.probe()
            results.append(HookResult(hook, None))
        except Exception as exc:
            results.append(HookResult(hook, f"{type(exc).__name__}: {exc}"))
    return results


def sdk_version() -> str:
    try:
        return metadata.version("opentelemetry-sdk")
    except metadata.PackageNotFoundError:
        return "not installed"


def report_missing_hooks(results: list[HookResult] | None = None) -> list[HookResult]:
    """Log one error per missing hook naming what is degraded; returns the missing ones."""
    missing = [r for r in (results if results is not None else check_sdk_hooks()) if not r.ok]
    for result in missing:
        _log.error(
            "otelpipe: opentelemetry-sdk %s lacks %s (%s); %s",
            sdk_version(),
            result.hook.symbol,
            result.error,
            result.hook.degraded,
        )
    return missing
