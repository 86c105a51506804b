"""SDK assembly: turn `Settings` into tracer, meter and logger providers with otelpipe's pieces in place.

Both entry routes end here: `otelpipe.configure()` from application code and the
`opentelemetry-instrument` configurator. Exporters, resource and sampler come from the SDK's own
`_initialize_components`, so every standard `OTEL_*` variable keeps its documented meaning;
otelpipe adds its span processors, log record processors, sampler wrapper and RED metric
producer around it, then starts the SLO/incident ticker. Data flows one way: span end → RED
store → (metric readers | SLO windows → incident engine → notifiers).
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.environment_variables import OTEL_PYTHON_TRACER_PROVIDER
from opentelemetry.metrics import get_meter_provider
from opentelemetry.sdk._configuration import (
    _get_exporter_entry_point,
    _get_sampler,
    _import_sampler,
    _initialize_components,
)
from opentelemetry.sdk._logs import LoggerProvider as SDKLoggerProvider
from opentelemetry.sdk.metrics import MeterProvider as SDKMeterProvider
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler

from otelpipe.config import ConfigError, LoadedSettings, Settings, load_settings, sdk_disabled, service_name
from otelpipe.diagnostics import logger
from otelpipe.processors.red_snapshot import SPAN_KINDS_BY_NAME

if TYPE_CHECKING:  # the components are imported lazily at run time, only when switched on
    from collections.abc import Mapping, Sequence

    from opentelemetry._logs import LoggerProvider
    from opentelemetry.metrics import Meter, MeterProvider
    from opentelemetry.sdk._logs import LogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.trace import Span, TracerProvider
    from opentelemetry.util.types import AttributeValue

    from otelpipe.evaluation import EvaluationLoop
    from otelpipe.fleet.prefork import PreforkMerge
    from otelpipe.incidents.engine import IncidentEngine
    from otelpipe.incidents.metric_rules import MetricRule
    from otelpipe.incidents.notifier import Notifier
    from otelpipe.incidents.rules import RuleEvaluator
    from otelpipe.processors.export_drops import ExportDropCounts
    from otelpipe.processors.metric_snapshot import MetricSnapshotReader
    from otelpipe.processors.red import REDSpanProcessor, REDStore
    from otelpipe.processors.redaction import Redactor
    from otelpipe.slo.evaluator import SLOEvaluator, SLOStatus
    from otelpipe.slo.model import SLOSpec

_log = logger()
_lock = threading.Lock()
_current: Pipeline | None = None


@dataclass
class Pipeline:
    """Handle on what `configure()` built: flush it, shut it down, or reach its components."""

    settings: Settings
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    logger_provider: LoggerProvider | None = None
    red_store: REDStore | None = None
    export_counts: ExportDropCounts | None = None
    redactor: Redactor | None = None  # when OTELPIPE_REDACT_ENABLED is on
    slo_evaluator: SLOEvaluator | None = None
    incident_engine: IncidentEngine | None = None
    evaluation: EvaluationLoop | None = None
    prefork: PreforkMerge | None = None  # OTELPIPE_SLO_EVALUATION=host, after the first fork
    metric_reader: MetricSnapshotReader | None = None  # with metric rules
    notifiers: list[Notifier] = field(default_factory=list)
    config_errors: tuple[ConfigError, ...] = ()
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _shut: bool = False

    def meter(self, name: str) -> Meter:
        """A meter of this pipeline's meter provider (the global one before `configure()` set it)."""
        return (self.meter_provider or get_meter_provider()).get_meter(name)

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export everything pending on all providers; False if something did not finish in time."""
        ok = True
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is None:
                continue
            try:
                result = flush(timeout_millis)
                ok = ok and result is not False
            except Exception:
                _log.warning("force_flush failed on %s", type(provider).__name__, exc_info=True)
                ok = False
        return ok

    def shutdown(self) -> None:
        """Stop the ticker and notifiers, then flush and shut down providers within the shutdown timeout.

        Provider shutdown runs in a daemon thread joined with `OTELPIPE_SHUTDOWN_TIMEOUT`, because
        against a black-hole collector the stock SDK waits out every export timeout in turn
        (58 s measured), longer than Kubernetes' default grace period.
        """
        if self._shut:
            return
        self._shut = True
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            # The SDK's own atexit hooks would rerun the unbounded shutdown after this one times out.
            atexit.unregister(getattr(provider, "shutdown", _no_shutdown))
        for close in reversed(self._closers):
            try:
                close()
            except Exception:
                _log.warning("otelpipe component failed to close", exc_info=True)

        def _shutdown_providers() -> None:
            for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
                shutdown = getattr(provider, "shutdown", None)
                if shutdown is None:
                    continue
                try:
                    shutdown()
                except Exception:
                    _log.warning("shutdown failed on %s", type(provider).__name__, exc_info=True)

        worker = threading.Thread(target=_shutdown_providers, name="otelpipe-shutdown", daemon=True)
        worker.start()
        worker.join(self.settings.export.shutdown_timeout_s)
        if worker.is_alive():
            _log.warning(
                "telemetry shutdown did not finish within %.1fs (OTELPIPE_SHUTDOWN_TIMEOUT); "
                "pending data is dropped so the process can exit",
                self.settings.export.shutdown_timeout_s,
            )


def _no_shutdown() -> None:
    """Placeholder for a provider without `shutdown` (nothing to unregister)."""


def _report_errors(loaded: LoadedSettings) -> None:
    for error in loaded.errors:
        _log.error("otelpipe configuration: %s; using the default", error)
    for deprecation in loaded.deprecations:  # once: configure() builds the pipeline once per process
        _log.warning("otelpipe configuration: %s", deprecation)


def _env_sampler() -> Sampler | None:
    sampler: Sampler | None = _import_sampler(_get_sampler())
    return sampler


def configure(
    settings: Settings | None = None,
    *,
    _bridge_logs: bool = True,
    _system_metrics: bool = True,
    **initialize_kwargs: Any,  # _initialize_components' keywords, of many types: passed through as given
) -> Pipeline:
    """Build and register global tracer, meter and logger providers with otelpipe in place.

    `settings` defaults to the environment (lenient unless `OTELPIPE_STRICT=true`; errors are
    logged once on the `otelpipe` logger). Exporters, resource and sampler follow the standard
    `OTEL_*` variables. Calling it again returns the pipeline already built: global providers
    can be set only once per process.
    """
    global _current
    with _lock:
        if _current is not None:
            _log.warning("otelpipe.configure() called again; returning the existing pipeline")
            return _current
        if sdk_disabled():
            _current = _disabled_pipeline(settings)
            return _current
        if settings is None:
            loaded = load_settings()
            _report_errors(loaded)
            settings, errors = loaded.settings, loaded.errors
        else:
            errors = ()
        pipeline = _build(settings, initialize_kwargs)
        pipeline.config_errors = (*errors, *pipeline.config_errors)  # plus what _build found (SLO file)
        if (
            _bridge_logs
            and settings.enabled
            and os.environ.get("OTEL_LOGS_EXPORTER", "otlp").strip() != "none"
        ):
            _bridge_stdlib_logs()
        if _system_metrics and settings.enabled and settings.system_metrics:
            _instrument_system_metrics(pipeline.meter_provider)  # the instrument route has its own
        _current = pipeline
        atexit.register(pipeline.shutdown)
        return pipeline


def _disabled_pipeline(settings: Settings | None) -> Pipeline:
    """OTEL_SDK_DISABLED=true: build nothing. The API's no-op providers stay in place; no
    processor, reader, thread or atexit hook is created and logging is left as the app set it."""
    pipeline = Pipeline(settings=replace(settings or Settings(), enabled=False))
    pipeline.tracer_provider = trace.get_tracer_provider()
    pipeline.meter_provider = get_meter_provider()
    pipeline.logger_provider = get_logger_provider()
    pipeline._shut = True  # nothing to flush or stop
    _log.debug("OTEL_SDK_DISABLED=true: otelpipe stays off")
    return pipeline


def configure_from_auto_instrumentation(**kwargs: Any) -> Pipeline:  # Any: as configure()
    """The configurator's route: same as `configure()`, keeping what opentelemetry-instrument passes.

    The logging instrumentor that `opentelemetry-instrument` runs next bridges stdlib logs to OTLP.
    """
    return configure(None, _bridge_logs=False, _system_metrics=False, **kwargs)


def _bridge_stdlib_logs() -> None:
    """Send stdlib log records to the logs pipeline, once, the way opentelemetry-instrument does.

    opentelemetry-instrumentation-logging owns the maintained bridge (the SDK's own handler is
    deprecated); instrumenting twice would duplicate every record, so an instrumented process is
    left alone.
    """
    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    instrumentor = LoggingInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def current() -> Pipeline | None:
    """The pipeline built in this process, if any."""
    return _current


def flask_instrumentor_kwargs() -> dict[str, Callable[..., None]]:
    """Hooks the distro hands to FlaskInstrumentor: request id in from the header or baggage, out in the response."""
    if sdk_disabled():
        return {}
    from otelpipe.processors.request_id import flask_request_hook, flask_response_hook

    pipeline = current()
    if pipeline is None or not pipeline.settings.logs.access_log:
        return {"request_hook": flask_request_hook, "response_hook": flask_response_hook}
    from otelpipe.access_log import access_log_request_hook

    def request_hook(span: Span, environ: Mapping[str, Any]) -> None:  # Any: WSGI environ values
        flask_request_hook(span, environ)
        access_log_request_hook(span, environ)

    return {"request_hook": request_hook, "response_hook": flask_response_hook}


_SDK_DEFAULTS = {
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "16384",
    # system-metrics' connection count scans every socket on the host: ~80 ms of a ~100 ms collection
    # here (bench/metric_collection.py), paid once per reader collection.
    "OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS": "system.network.connections",
}



def _build_redactor(settings: Settings) -> Redactor | None:
    if not settings.redaction.enabled:
        return None
    from otelpipe.processors.redaction import DEFAULT_SECRET_KEYS, Redactor

    return Redactor(
        keys=DEFAULT_SECRET_KEYS | frozenset(settings.redaction.keys),
        custom_patterns=settings.redaction.patterns,  # run under a timeout: they are not ours to vet
    )


def _build_red(settings: Settings) -> tuple[REDStore, REDSpanProcessor] | tuple[None, None]:
    if not settings.red.enabled:
        return None, None
    from otelpipe.processors.red import DEFAULT_DIMENSIONS, REDSpanProcessor, REDStore

    dimensions = tuple(dict.fromkeys((*DEFAULT_DIMENSIONS, *settings.red.dimensions)))
    store = REDStore(
        settings.red.buckets,
        cardinality_limit=settings.red.cardinality_limit,
        dimensions=dimensions,
        exclude_dimensions=settings.red.exclude_dimensions,
        exemplars=settings.red.exemplars,
        span_kinds=[SPAN_KINDS_BY_NAME[k] for k in settings.red.span_kinds],
        service_graph=settings.red.service_graph,
    )
    return store, REDSpanProcessor(store)


def _resource_attributes(tracer_provider: TracerProvider | None) -> dict[str, AttributeValue]:
    resource: Resource | None = getattr(tracer_provider, "resource", None)  # the SDK's provider has one
    return dict(resource.attributes or {}) if resource is not None else {}


def _build(settings: Settings, initialize_kwargs: dict[str, Any]) -> Pipeline:  # Any: see configure()
    pipeline = Pipeline(settings=settings)
    if not settings.enabled:
        _initialize_components(**initialize_kwargs)
        pipeline.tracer_provider = trace.get_tracer_provider()
        pipeline.meter_provider = get_meter_provider()
        pipeline.logger_provider = get_logger_provider()
        return pipeline

    from otelpipe._sdk import EXPORT_DROPS_HOOK, LIGHT_TRACING_HOOK, report_missing_hooks

    # one loud error per private SDK hook this SDK lacks, naming what degrades
    missing = {result.hook for result in report_missing_hooks()}
    redactor = _build_redactor(settings)
    pipeline.redactor = redactor
    span_processors: list[SpanProcessor] = []
    log_processors: list[LogRecordProcessor] = []
    store, red_processor = _build_red(settings)
    if red_processor is not None:
        span_processors.append(red_processor)
    pipeline.red_store = store
    if store is not None and redactor is not None:
        from otelpipe.processors.redaction import LabelRedactor

        store.label_redactor = LabelRedactor(redactor)  # RED sees spans before they are masked

    from otelpipe.processors.otlp_logs import CorrelatingLogRecordProcessor

    log_processors.append(CorrelatingLogRecordProcessor(redactor))

    sampler = initialize_kwargs.pop("sampler", None) or _env_sampler()
    if settings.fast_sampler:
        # The SDK's ParentBased over its own static/ratio samplers (the default included): the same
        # decisions in one frame instead of about a dozen calls per span. Any other sampler as given.
        from otelpipe.processors.fast_sampling import fast_parent_based

        sampler = fast_parent_based(sampler)
    # Spans the sampler drops (even the SDK default drops those of an unsampled caller) become light
    # recording spans keeping only RED's attributes (otelpipe.processors.unsampled): exact RED for a
    # fraction of what the SDK's own RECORD_ONLY span costs.
    keep = None
    if red_processor is not None and settings.red.record_unsampled:
        if LIGHT_TRACING_HOOK not in missing:
            keep = red_processor.attribute_names
        else:  # full SDK spans for what the sampler drops: exact RED, costlier requests
            from otelpipe.processors.sampling import RecordUnsampledSampler

            sampler = RecordUnsampledSampler(sampler or ParentBased(ALWAYS_ON))

    # Drops (queue full, failed batches) are counted by the export processors themselves, once per
    # batch, not through the SDK's internal metrics, which add about a dozen Counter.add calls per request.
    from otelpipe.processors.export_drops import (
        ExportDropCounts,
        log_processor_factory,
        span_processor_factory,
    )

    export_counts = ExportDropCounts()
    # Spans are masked where otelpipe builds the exporters: per batch in the export thread, only
    # what is exported. Any other exporter gets the request-thread RedactingSpanProcessor (below).
    export_redaction = None
    if redactor is not None:
        from otelpipe.processors.span_redaction import ExportRedaction

        def export_redaction() -> ExportRedaction:
            return ExportRedaction(redactor)

    if EXPORT_DROPS_HOOK not in missing:
        initialize_kwargs.setdefault("export_span_processor", span_processor_factory(export_counts, export_redaction))
        initialize_kwargs.setdefault("export_log_record_processor", log_processor_factory(export_counts))
    pipeline.export_counts = export_counts
    # SDK default otelpipe changes, unless the user set it: cap attribute values so one huge value
    # cannot push a batch past the 4 MiB gRPC message limit and lose the whole batch.
    for variable, value in _SDK_DEFAULTS.items():
        os.environ.setdefault(variable, value)
    # Like the distros: OTLP for every signal unless OTEL_*_EXPORTER says otherwise.
    signals: tuple[tuple[str, str, Literal["traces", "metrics", "logs"]], ...] = (
        ("trace", "OTEL_TRACES_EXPORTER", "traces"),
        ("metric", "OTEL_METRICS_EXPORTER", "metrics"),
        ("log", "OTEL_LOGS_EXPORTER", "logs"),
    )
    for signal, variable, signal_type in signals:
        if not os.environ.get(variable):  # "otlp" means gRPC or HTTP by OTEL_EXPORTER_OTLP_PROTOCOL
            initialize_kwargs.setdefault(
                f"{signal}_exporter_names", [_get_exporter_entry_point("otlp", signal_type)]
            )
    from otelpipe.sdk_components import initialize_components

    # No provider set before, so the global one after is otelpipe's (get_tracer_provider() would load
    # the one OTEL_PYTHON_TRACER_PROVIDER names and fix it as global: not called then).
    ours = OTEL_PYTHON_TRACER_PROVIDER in os.environ or isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    initialize_components(
        keep,
        span_processors=span_processors,
        log_record_processors=log_processors,
        sampler=sampler,
        **initialize_kwargs,
    )
    pipeline.tracer_provider = trace.get_tracer_provider()
    if redactor is not None and ours and isinstance(pipeline.tracer_provider, SDKTracerProvider):
        from otelpipe.processors.span_redaction import ExportRedaction, guard_unowned_exports

        def masks(processor: SpanProcessor) -> bool:  # exports nothing, or masks what it exports
            return processor is red_processor or isinstance(getattr(processor, "before_export", None), ExportRedaction)

        guard_unowned_exports(pipeline.tracer_provider, redactor, masks)
    pipeline.meter_provider = get_meter_provider()
    pipeline.logger_provider = get_logger_provider()

    from otelpipe.processors.export_drops import register_export_metrics

    register_export_metrics(pipeline.meter("otelpipe.export"), export_counts)
    if isinstance(pipeline.meter_provider, SDKMeterProvider):
        from otelpipe.processors.fork_safety import guard_collection_across_fork

        guard_collection_across_fork(pipeline.meter_provider)
    if store is not None:
        from otelpipe.processors.red_metrics import REDMetricProducer, attach_red_producer

        if isinstance(pipeline.meter_provider, SDKMeterProvider):
            attach_red_producer(pipeline.meter_provider, REDMetricProducer(store, unit=settings.red.unit))
        else:  # a provider set before otelpipe's: its readers are not ours to extend
            _log.error("the global MeterProvider is not the SDK's; RED metrics are not exported")

    resource = _resource_attributes(pipeline.tracer_provider)
    if settings.logs.correlation:
        from otelpipe.processors.log_correlation import install_log_correlation

        handle = install_log_correlation(
            str(resource.get("service.name", service_name())),
            str(resource.get("service.version", "")),
            str(resource.get("deployment.environment", resource.get("deployment.environment.name", ""))),
        )
        pipeline._closers.append(handle.uninstall)
    if settings.logs.format != "unchanged" or redactor is not None:
        from otelpipe.log_output import configure_log_output

        pipeline._closers.append(configure_log_output(settings.logs.format, redactor))
    if redactor is not None:
        from otelpipe.structlog_output import redact_structlog

        pipeline._closers.append(redact_structlog(redactor))
    if store is not None and settings.slo.file:
        _start_evaluation_contained(pipeline, settings, store)
    _log.debug("otelpipe configured for service %s", resource.get("service.name"))
    return pipeline


def _load_slo_file(
    settings: Settings, boundaries: tuple[float, ...]
) -> tuple[SLOSpec, RuleEvaluator | None, tuple[ConfigError, ...], tuple[MetricRule, ...]]:
    """Spec and threshold rules from `OTELPIPE_SLO_FILE`, without the SLOs and rules that are invalid.

    Each problem is logged and kept in `ConfigError`s; a bad SLO or rule is skipped and the rest
    run. Raises ConfigError (the first problem) in strict mode, or when nothing in the file is usable.
    """
    from otelpipe.incidents.rules import RuleEvaluator
    from otelpipe.slo.check import check_slo_file

    path = settings.slo.file
    assert path is not None
    checked = check_slo_file(path, boundaries)
    errors = [ConfigError("OTELPIPE_SLO_FILE", path, f"a valid SLO/rules file ({e})") for e in checked.errors]
    if errors and (settings.strict or not checked.usable):
        problems = "; ".join(checked.errors)
        raise ConfigError(
            "OTELPIPE_SLO_FILE", path, f"a valid SLO/rules file ({len(errors)} problem(s): {problems})"
        )
    for error in errors:
        _log.error("otelpipe configuration: %s; skipped, the other SLOs and rules run", error)
    return (
        checked.spec,
        (RuleEvaluator(checked.rules) if checked.rules else None),
        tuple(errors),
        checked.metric_rules,
    )


def _notifiers(settings: Settings, logger_provider: LoggerProvider | None, meter: Meter) -> list[Notifier]:
    from otelpipe.exporters._delivery import DeliveryOptions

    inc = settings.incidents
    options = DeliveryOptions(timeout_s=inc.notify_timeout_s, queue_size=inc.notify_queue_size)
    notifiers: list[Notifier] = []
    if inc.alertmanager_url:
        from otelpipe.exporters.alertmanager import AlertmanagerNotifier

        notifiers.append(AlertmanagerNotifier(inc.alertmanager_url, options=options, meter=meter))
    if inc.pagerduty_routing_key:
        from otelpipe.exporters.pagerduty import PagerDutyNotifier

        notifiers.append(
            PagerDutyNotifier(inc.pagerduty_routing_key, url=inc.pagerduty_url, options=options, meter=meter)
        )
    if inc.webhook_url:
        from otelpipe.exporters.webhook import WebhookNotifier

        fmt: Literal["json", "slack"] = "slack" if inc.webhook_format == "slack" else "json"
        notifiers.append(WebhookNotifier(inc.webhook_url, format=fmt, options=options, meter=meter))
    if isinstance(logger_provider, SDKLoggerProvider):
        from otelpipe.exporters.otlp_event import OTLPEventNotifier

        notifiers.append(OTLPEventNotifier(logger_provider, options=options, meter=meter))
    if inc.console:
        from otelpipe.exporters.console import ConsoleNotifier

        notifiers.append(ConsoleNotifier(options=options))
    return notifiers


def _start_evaluation_contained(pipeline: Pipeline, settings: Settings, store: REDStore) -> None:
    """Start SLOs and incidents; whatever goes wrong, report it once and leave the rest of otelpipe on.

    An exception escaping here used to make the configurator fall back to the stock SDK (RED, log
    correlation and the bounded shutdown all gone, strict mode ignored). In strict mode the error
    is raised as a ConfigError, which the configurator turns into an exit; the bounded shutdown is
    registered first, since the providers already exist.
    """
    try:
        _start_evaluation(pipeline, settings, store)
        return
    except ConfigError as exc:  # only strict mode raises these; lenient ones are reported inside
        error = exc
    except Exception as exc:
        detail = str(exc)
        detail = detail if len(detail) <= 200 else detail[:197] + "..."
        error = ConfigError(
            "OTELPIPE_SLO_FILE",
            settings.slo.file or "",
            f"SLOs and incidents that can start ({type(exc).__name__}: {detail})",
        )
        _log.debug("SLO/incident start-up failed", exc_info=True)
    if settings.strict:
        atexit.register(pipeline.shutdown)
        raise error
    _log.error("otelpipe: %s; SLO evaluation and incidents are off, the rest of otelpipe runs", error)
    pipeline.config_errors = (*pipeline.config_errors, error)


def _start_evaluation(pipeline: Pipeline, settings: Settings, store: REDStore) -> None:
    """SLO evaluator, threshold rules and incident engine on one ticking thread."""
    from otelpipe.evaluation import Evaluation, EvaluationLoop
    from otelpipe.incidents.engine import IncidentEngine
    from otelpipe.incidents.store import IncidentStore
    from otelpipe.slo.evaluator import SLOEvaluator
    from otelpipe.slo.metrics import register_slo_metrics
    from otelpipe.slo.state import SLOStateStore

    mode = settings.slo.evaluation
    if mode == "gateway":  # an otelpipe gateway evaluates this service's exported RED
        _log.debug("SLO evaluation left to a gateway (OTELPIPE_SLO_EVALUATION=gateway)")
        return
    try:
        spec, rules, skipped, metric_rules = _load_slo_file(settings, store.boundaries)
    except ConfigError as error:
        if settings.strict:
            raise
        _log.error("otelpipe configuration: %s; SLO evaluation is off", error)
        pipeline.config_errors = (*pipeline.config_errors, error)
        return
    pipeline.config_errors = (*pipeline.config_errors, *skipped)
    meter = pipeline.meter("otelpipe.incidents")
    metric_reader = _metric_reader(pipeline) if metric_rules else None
    if metric_reader is not None:
        _warn_without_system_metrics(metric_rules)

    def build(persistent: bool) -> Evaluation:
        evaluation = Evaluation()
        slo_state = incident_store = None
        if persistent and settings.state_dir:
            try:
                slo_state = SLOStateStore(settings.state_dir)
                incident_store = IncidentStore(settings.state_dir)
            except (OSError, sqlite3.Error) as exc:  # also a symlink planted as a state file
                if slo_state is not None:
                    slo_state.close()
                error = ConfigError("OTELPIPE_STATE_DIR", settings.state_dir, f"a writable directory ({exc})")
                if settings.strict:
                    raise error from None
                _log.error("otelpipe configuration: %s; SLO windows and incidents are kept in memory", error)
                slo_state = incident_store = None
        evaluation.evaluator = SLOEvaluator(
            spec,
            boundaries=store.boundaries,
            state=slo_state,
            time_scale=settings.slo.time_scale,
            persist_interval=settings.slo.save_interval_s,
        )
        evaluation.rules = rules
        if metric_reader is not None:
            from otelpipe.incidents.metric_rules import MetricRuleEvaluator

            evaluation.metric_rules = MetricRuleEvaluator(metric_rules)
            evaluation.metric_snapshot = metric_reader.snapshot
        notifiers = _notifiers(settings, pipeline.logger_provider, meter)
        evaluation.engine = IncidentEngine(
            notifiers,
            hold_down_s=settings.incidents.hold_down_s,
            renotify_interval_s=settings.incidents.renotify_interval_s,
            trace_url_template=settings.incidents.trace_url_template,
            store=incident_store,
        )
        evaluator, engine = evaluation.evaluator, evaluation.engine
        # Closed in reverse: save the windows first, then close their database, then the notifiers.
        evaluation.closers.append(lambda: engine.close(settings.export.shutdown_timeout_s))
        if slo_state is not None:
            evaluation.closers.append(slo_state.close)
        evaluation.closers.append(evaluator.flush)
        return evaluation

    # Forked workers evaluate in memory: SQLite handles and notifier threads do not survive fork().
    # "host": forked workers push RED to this process, which evaluates for all of them.
    loop = EvaluationLoop(
        store.snapshot,
        build(True),
        interval_s=settings.slo.interval_s,
        rebuild=(lambda: build(False)) if mode == "process" else None,
    )
    if mode == "host":
        from otelpipe.fleet.prefork import PreforkMerge

        prefork = PreforkMerge(
            loop,
            store,
            settings.slo,
            _resource_attributes(pipeline.tracer_provider),
            cardinality_limit=settings.red.cardinality_limit,
            rebuild=lambda: build(False),
        )
        pipeline.prefork = prefork

    def current_status() -> list[SLOStatus]:
        # late-bound: a forked worker replaces loop.evaluation with its own evaluator
        evaluator = loop.evaluation.evaluator
        return evaluator.status() if evaluator is not None else []

    register_slo_metrics(pipeline.meter("otelpipe.slo"), current_status)
    pipeline.slo_evaluator = loop.evaluation.evaluator
    pipeline.incident_engine = loop.evaluation.engine
    pipeline.evaluation = loop
    pipeline._closers.append(loop.stop)
    if pipeline.prefork is not None:
        pipeline._closers.append(pipeline.prefork.close)  # runs first: a worker's last push
    loop.start()


def _metric_reader(pipeline: Pipeline) -> MetricSnapshotReader | None:
    """A pull reader on the app's MeterProvider, beside its exporters, collected on the rule tick."""
    from opentelemetry.sdk.metrics import MeterProvider

    from otelpipe.processors.metric_snapshot import MetricSnapshotReader

    if not isinstance(pipeline.meter_provider, MeterProvider):
        _log.error("otelpipe metric rules need the SDK MeterProvider; metric rules are off")
        return None
    from otelpipe._sdk import add_metric_reader

    reader = MetricSnapshotReader()
    try:
        add_metric_reader(pipeline.meter_provider, reader)
    except Exception:  # a private hook of an SDK outside the tested range (otelpipe check names it)
        _log.error("otelpipe metric rules could not add their reader to the MeterProvider; metric rules are off")
        return None
    pipeline.metric_reader = reader
    return reader


def _warn_without_system_metrics(rules: Sequence[MetricRule]) -> None:
    """Say once why a rule over system.*/process.* metrics will never see data."""
    import importlib.util

    watched = sorted({r.metric for r in rules if r.metric.startswith(("system.", "process."))})
    if watched and importlib.util.find_spec("opentelemetry.instrumentation.system_metrics") is None:
        _log.warning(
            "metric rules watch %s, which opentelemetry-instrumentation-system-metrics records; it is not "
            "installed (pip install 'otelpipe[system-metrics]'), so these rules see no data",
            ", ".join(watched),
        )


def _instrument_system_metrics(meter_provider: MeterProvider | None) -> None:
    """System and process metrics by the ecosystem's instrumentation, when it is installed.

    Under opentelemetry-instrument its own entry point does this (and honours
    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS); configure() in code has no instrumentor pass.
    """
    try:
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    except ImportError:
        _log.debug("opentelemetry-instrumentation-system-metrics not installed; no system metrics")
        return
    instrumentor = SystemMetricsInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(meter_provider=meter_provider)


def _reset_for_tests() -> None:
    """Forget the current pipeline (tests only; global SDK providers stay as they are)."""
    global _current
    with _lock:
        _current = None
