"""`otelpipe gateway`: SLOs, threshold rules and incidents per service, from RED received over OTLP.

Apps (with `OTELPIPE_SLO_EVALUATION=gateway`) or a Collector (its spanmetrics connector, or the
`loadbalancing` exporter routing by service) send RED metric points here; one `REDStreamMerger`
turns all senders of a service into one cumulative snapshot, and the same evaluation loop,
incident engine, notifiers and state dir as in an app run on it, configured by the same
`OTELPIPE_*` variables. So a service gets one incident however many workers, pods or languages
serve it. The gateway's own `otelpipe.slo.*` gauges go out through the SDK's metric exporters
(Prometheus `/metrics` on `OTEL_EXPORTER_PROMETHEUS_PORT` by default).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, replace
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation

from otelpipe.config import ConfigError, Settings, load_settings
from otelpipe.diagnostics import logger
from otelpipe.fleet.merger import REDStreamMerger

__all__ = ["ENV_DEFAULTS", "Gateway", "start_gateway"]

_log = logger("fleet")

#: What the gateway changes from the SDK defaults unless set: it has no spans or logs of its own
#: worth exporting, and it must not send its metrics to an OTLP endpoint that may be itself.
ENV_DEFAULTS = {
    "OTEL_SERVICE_NAME": "otelpipe-gateway",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "prometheus",
}


@dataclass
class Gateway:
    """A running gateway: its pipeline (evaluation, incidents), merger and receiver."""

    pipeline: Any  # otelpipe.pipeline.Pipeline
    merger: REDStreamMerger
    receiver: Any  # otelpipe.sink.OTLPReceiver

    def stop(self) -> None:
        """Stop receiving, then save windows and flush notifiers (bounded by the shutdown timeout)."""
        self.receiver.stop()
        self.pipeline.shutdown()


def start_gateway(
    *,
    host: str = "127.0.0.1",
    grpc_port: int | None = 4317,
    http_port: int | None = 4318,
    environ: MutableMapping[str, str] | None = None,
) -> Gateway:
    """Configure evaluation from the environment and start receiving; raises ConfigError or OSError.

    Call once per process: it builds the global SDK providers through `otelpipe.configure()`.
    """
    env = os.environ if environ is None else environ
    for name, value in ENV_DEFAULTS.items():
        env.setdefault(name, value)
    loaded = load_settings(env)
    for error in loaded.errors:
        _log.error("otelpipe configuration: %s; using the default", error)
    settings = _gateway_settings(loaded.settings)
    from otelpipe.pipeline import configure
    from otelpipe.sink import OTLPReceiver

    pipeline = configure(settings)
    loop = pipeline.evaluation
    if loop is None:
        problems = [e for e in pipeline.config_errors if e.variable == "OTELPIPE_SLO_FILE"]
        pipeline.shutdown()
        if problems:
            raise problems[-1]
        raise ConfigError("OTELPIPE_SLO_FILE", str(settings.slo.file), "an SLO spec the gateway can evaluate")
    merger = REDStreamMerger(
        settings.red.buckets,
        series_limit=settings.red.cardinality_limit,
        stale_after_s=settings.slo.stream_stale_after_s,
    )
    loop.set_source(merger.snapshot)
    _register_gauges(pipeline.meter_provider.get_meter("otelpipe.gateway"), merger)
    receiver = OTLPReceiver(merger.receive, host=host, grpc_port=grpc_port, http_port=http_port)
    try:
        receiver.start()
    except OSError:
        pipeline.shutdown()
        raise
    return Gateway(pipeline, merger, receiver)


def _gateway_settings(settings: Settings) -> Settings:
    """The app settings, with what a gateway needs: RED on (it sizes the evaluator), evaluate here."""
    if not settings.slo.file:
        raise ConfigError("OTELPIPE_SLO_FILE", "(unset)", "the SLO spec (YAML) the gateway evaluates")
    return replace(
        settings,
        enabled=True,
        red=replace(settings.red, enabled=True),
        slo=replace(settings.slo, evaluation="process"),
    )


def _register_gauges(meter: Any, merger: REDStreamMerger) -> None:
    def senders(_options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(merger.instances())

    def counters(name: str) -> Any:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            yield Observation(getattr(merger.stats, name))

        return observe

    meter.create_observable_gauge(
        "otelpipe.gateway.senders", [senders], description="Processes whose RED arrived recently"
    )
    for name, description in (
        ("points", "RED data points merged"),
        ("resets", "Counter resets detected (restarted senders)"),
        ("dropped_points", "Points of streams beyond the stream limit, dropped"),
        ("unsupported", "RED metrics of a shape the gateway cannot merge"),
    ):
        meter.create_observable_counter(f"otelpipe.gateway.{name}", [counters(name)], description=description)
