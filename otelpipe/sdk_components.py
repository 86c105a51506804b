"""The SDK's `_initialize_components`, with otelpipe's light TracerProvider when RED records unsampled spans.

`_initialize_components` always builds a stock `TracerProvider` and registers it globally (once
per process), so the only way to give instrumentations tracers that start `UnsampledSpan`s is to
run its steps here with `LightUnsampledTracerProvider` in place of the stock provider, and the
SDK's `_init_metrics` (a few lines) with `TappingMeterProvider`, whose HTTP server instruments let
dropped server spans stay non-recording (otelpipe.processors.server_metrics_tap). Every other
step is the SDK's own helper, called in the SDK's order with the SDK's defaults (resource,
OpAMP hooks, exporters from `OTEL_*_EXPORTER`, sampler, id generator, configurators, metrics and
logs), so every `OTEL_*` variable keeps its meaning. Mirrors opentelemetry-sdk 1.45.1; the pinned
set in constraints.txt is bumped as one, and tests/e2e runs this path under
`opentelemetry-instrument`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.metrics import set_meter_provider
from opentelemetry.sdk import _configuration as sdk_configuration
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import set_tracer_provider

from otelpipe.processors.server_metrics_tap import TappingMeterProvider
from otelpipe.processors.unsampled import LightUnsampledTracerProvider

__all__ = ["INITIALIZE_PARAMETERS", "SDK_HELPERS", "initialize_components"]

# The SDK helpers `_initialize_light` calls, and the `_initialize_components` parameters it mirrors
# (otelpipe._sdk checks both on the installed SDK; a mismatch falls back to the stock path).
SDK_HELPERS = (
    "ResourceAttributes",
    "_import_exporters",
    "_get_exporter_names",
    "_import_sampler",
    "_get_sampler",
    "_import_id_generator",
    "_get_id_generator",
    "_import_tracer_configurator",
    "_get_tracer_configurator",
    "_import_meter_configurator",
    "_get_meter_configurator",
    "_import_logger_configurator",
    "_get_logger_configurator",
    "_init_logging",
    "_OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED",
)
INITIALIZE_PARAMETERS = frozenset(
    {
        "auto_instrumentation_version",
        "trace_exporter_names",
        "metric_exporter_names",
        "log_exporter_names",
        "sampler",
        "resource_attributes",
        "id_generator",
        "setup_logging_handler",
        "exporter_args_map",
        "span_processors",
        "export_span_processor",
        "log_record_processors",
        "export_log_record_processor",
        "tracer_configurator",
        "meter_configurator",
        "logger_configurator",
    }
)


def initialize_components(keep: frozenset[str] | None, **kwargs: Any) -> None:
    """`_initialize_components(**kwargs)`; with `keep`, unsampled spans are `UnsampledSpan`s keeping those attributes."""
    if keep is None:
        sdk_configuration._initialize_components(**kwargs)
    else:
        _initialize_light(keep, **kwargs)


def _initialize_light(  # _initialize_components' own parameters
    keep: frozenset[str],
    auto_instrumentation_version: str | None = None,
    trace_exporter_names: list[str] | None = None,
    metric_exporter_names: list[str] | None = None,
    log_exporter_names: list[str] | None = None,
    sampler: Any = None,
    resource_attributes: dict[str, Any] | None = None,
    id_generator: Any = None,
    setup_logging_handler: bool | None = None,
    exporter_args_map: dict[Any, dict[str, Any]] | None = None,
    span_processors: Sequence[SpanProcessor] | None = None,
    export_span_processor: Any = None,
    log_record_processors: Sequence[Any] | None = None,
    export_log_record_processor: Any = None,
    tracer_configurator: Any = None,
    meter_configurator: Any = None,
    logger_configurator: Any = None,
) -> None:
    sdk: Any = sdk_configuration
    attributes = dict(resource_attributes or {})
    if auto_instrumentation_version:
        attributes[sdk.ResourceAttributes.TELEMETRY_AUTO_VERSION] = auto_instrumentation_version
    resource = Resource.create(attributes)
    _opamp(sdk, "pre_sdk_init_function", resource)
    span_exporters, metric_exporters, log_exporters = sdk._import_exporters(
        (trace_exporter_names or []) + sdk._get_exporter_names("traces"),
        (metric_exporter_names or []) + sdk._get_exporter_names("metrics"),
        (log_exporter_names or []) + sdk._get_exporter_names("logs"),
    )
    if sampler is None:
        sampler = sdk._import_sampler(sdk._get_sampler())
    if id_generator is None:
        id_generator = sdk._import_id_generator(sdk._get_id_generator())
    if tracer_configurator is None:
        tracer_configurator = sdk._import_tracer_configurator(sdk._get_tracer_configurator())
    if meter_configurator is None:
        meter_configurator = sdk._import_meter_configurator(sdk._get_meter_configurator())
    if logger_configurator is None:
        logger_configurator = sdk._import_logger_configurator(sdk._get_logger_configurator())

    # The SDK's _init_tracing, with the light provider.
    provider = LightUnsampledTracerProvider(
        id_generator=id_generator,
        sampler=sampler,
        resource=resource,
        _tracer_configurator=tracer_configurator,
        keep=keep,
    )
    set_tracer_provider(provider)
    args_map = exporter_args_map or {}
    export_processor = export_span_processor or BatchSpanProcessor
    for span_processor in span_processors or []:
        provider.add_span_processor(span_processor)
    for exporter_class in span_exporters.values():
        provider.add_span_processor(export_processor(exporter_class(**args_map.get(exporter_class, {}))))

    # The SDK's _init_metrics, with a MeterProvider whose HTTP server instruments tell the tracer
    # provider about each request: dropped server spans of those instrumentations need not record.
    metric_readers = []
    for reader_or_exporter in metric_exporters.values():
        reader_args = args_map.get(reader_or_exporter, {})
        if issubclass(reader_or_exporter, MetricReader):
            metric_readers.append(reader_or_exporter(**reader_args))
        else:
            metric_readers.append(PeriodicExportingMetricReader(reader_or_exporter(**reader_args)))
    meter_provider = TappingMeterProvider(
        resource=resource, metric_readers=metric_readers, _meter_configurator=meter_configurator
    )
    set_meter_provider(meter_provider)
    provider.server_tap = meter_provider.tap
    if setup_logging_handler is None:
        variable = sdk._OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED
        setup_logging_handler = os.getenv(variable, "false").strip().lower() == "true"
    sdk._init_logging(
        log_exporters,
        resource,
        setup_logging_handler,
        exporter_args_map=exporter_args_map,
        log_record_processors=log_record_processors,
        export_log_record_processor=export_log_record_processor,
        logger_configurator=logger_configurator,
    )
    _opamp(sdk, "post_sdk_init_function", resource)


def _opamp(sdk: Any, name: str, resource: Resource) -> None:
    """The SDK's OpAMP entry point, as `_initialize_components` calls it (SDK 1.43+; 1.42 has no OpAMP step)."""
    import_opamp = getattr(sdk, "_import_opamp", None)
    init_opamp = import_opamp(name) if import_opamp is not None else None
    if init_opamp is not None:
        init_opamp(resource)
