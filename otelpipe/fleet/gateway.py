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

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Observation

from otelpipe.config import ConfigError, Settings, load_settings
from otelpipe.diagnostics import logger, warn_limited
from otelpipe.fleet.merger import REDStreamMerger
from otelpipe.state_files import private_dir, private_file, refuse_symlink

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

    from otelpipe.pipeline import Pipeline
    from otelpipe.processors.red_snapshot import REDSnapshot
    from otelpipe.sink import OTLPReceiver

__all__ = ["ENV_DEFAULTS", "POSITIONS_FILE", "Gateway", "StreamPositions", "start_gateway"]

#: Where each sender's stream stood at the last evaluation tick, next to the SLO windows.
POSITIONS_FILE = "gateway-streams.json"
_MAX_POSITIONS_BYTES = 64 * 1024 * 1024  # bounded by the merger's stream limit; more is not ours

_log = logger("fleet")

#: What the gateway changes from the SDK defaults unless set: it has no spans or logs of its own
#: worth exporting, and it must not send its metrics to an OTLP endpoint that may be itself.
ENV_DEFAULTS = {
    "OTEL_SERVICE_NAME": "otelpipe-gateway",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "prometheus",
}


class StreamPositions:
    """The evaluation loop's source on a gateway: merged snapshots, and stream positions saved with them.

    Each tick takes the snapshot and the positions at one instant; the latest positions are written
    to `<state dir>/gateway-streams.json` every `save_interval_s` and at shutdown, after the last
    windows are saved, so a restarted gateway continues every stream where its saved windows end: no
    gap and no double count on a clean restart, at most one save interval either way after a crash.
    """

    def __init__(self, merger: REDStreamMerger, state_dir: str | None, save_interval_s: float) -> None:
        self._merger = merger
        self.path = Path(state_dir) / POSITIONS_FILE if state_dir else None
        self._interval = save_interval_s
        self._latest: list[list[Any]] | None = None
        self._saved_at = time.monotonic()
        self._lock = threading.Lock()

    def restore(self) -> int:
        """Load the positions of the previous run, if any; returns how many streams continue."""
        if self.path is None or not self.path.exists():
            return 0
        try:
            refuse_symlink(self.path)  # never read (or later replace) state through a planted link
            with self.path.open("rb") as file:
                raw = file.read(_MAX_POSITIONS_BYTES + 1)
            if len(raw) > _MAX_POSITIONS_BYTES:
                raise ValueError(f"larger than {_MAX_POSITIONS_BYTES} bytes")
            records = json.loads(raw)
        except (OSError, ValueError):
            _log.warning("could not read %s; every sender starts from a baseline", self.path, exc_info=True)
            return 0
        return self._merger.restore(records if isinstance(records, list) else [])

    def __call__(self) -> REDSnapshot:
        if self.path is None:
            return self._merger.snapshot()
        snapshot, positions = self._merger.snapshot_and_positions()
        with self._lock:
            self._latest = positions
        if time.monotonic() - self._saved_at >= self._interval:
            self.save()
        return snapshot

    def save(self) -> None:
        """Write the positions of the last tick (atomically: a crash leaves the previous file)."""
        with self._lock:
            positions, self._saved_at = self._latest, time.monotonic()
        if self.path is None or positions is None:
            return
        try:
            private_dir(self.path.parent)
            refuse_symlink(self.path)
            temporary = self.path.with_name(self.path.name + ".tmp")
            private_file(temporary)  # 0600, symlinks refused: stream positions name every sender
            with temporary.open("w", encoding="utf-8") as file:
                file.write(json.dumps(positions, separators=(",", ":")))
            temporary.replace(self.path)
        except OSError:
            warn_limited("fleet-positions", "could not save RED stream positions to %s", str(self.path), area="fleet")


@dataclass
class Gateway:
    """A running gateway: its pipeline (evaluation, incidents), merger and receiver."""

    pipeline: Pipeline
    merger: REDStreamMerger
    receiver: OTLPReceiver
    positions: StreamPositions | None = field(default=None)

    def stop(self) -> None:
        """Stop receiving, save windows and flush notifiers (bounded by the shutdown timeout), then positions."""
        self.receiver.stop()
        self.pipeline.shutdown()  # stops ticking: the positions kept are those of the last tick
        if self.positions is not None:
            self.positions.save()


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
    positions = StreamPositions(merger, settings.state_dir, settings.slo.save_interval_s)
    positions.restore()
    loop.set_source(positions)
    _register_gauges(pipeline.meter("otelpipe.gateway"), merger)
    receiver = OTLPReceiver(merger.receive, host=host, grpc_port=grpc_port, http_port=http_port)
    try:
        receiver.start()
    except OSError:
        pipeline.shutdown()
        raise
    return Gateway(pipeline, merger, receiver, positions)


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


def _register_gauges(meter: Meter, merger: REDStreamMerger) -> None:
    def senders(_options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(merger.instances())

    def counters(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
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
