"""One SLO evaluator per prefork host: forked workers push their RED to the process that ran configure().

Under `opentelemetry-instrument gunicorn -w 4` every worker used to evaluate its own quarter of
the traffic and open its own incident: four pages for one burst. Here the process that ran
`configure()` (the gunicorn master) keeps the only evaluator. At its first `fork()` it starts a
loopback-only OTLP/HTTP receiver (the sink's `OTLPReceiver`; plain HTTP because gRPC does not survive
fork) on an ephemeral port and switches its evaluation loop to a `REDStreamMerger` fed by that
receiver and by its own RED store. Each forked child evaluates nothing and pushes its cumulative
RED to the parent every `push_interval_s` as compact OTLP (`otelpipe.fleet.push`: only the
series that changed, written straight from the store's snapshot), identified by its pid and a fresh
`service.instance.id`, so a respawned worker is a new stream and never a burst or a negative.

Why not a lock-shared file or shared memory: the merger and the OTLP encoding already exist and
are tested; loopback HTTP costs one small request per worker per second off the request path, and
the same code path serves the multi-host gateway. If the receiver cannot start, children fall
back to evaluating for themselves (the old behaviour) rather than going unwatched.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from otelpipe.config import SLOSettings
from otelpipe.diagnostics import logger
from otelpipe.fleet.merger import REDStreamMerger
from otelpipe.processors.red_snapshot import REDSnapshot

if TYPE_CHECKING:
    from otelpipe.evaluation import Evaluation, EvaluationLoop
    from otelpipe.fleet.push import REDPusher
    from otelpipe.processors.red import REDStore
    from otelpipe.sink import OTLPReceiver

__all__ = ["PreforkMerge"]

_log = logger("fleet")
_LOCAL_INSTANCE = (("otelpipe.prefork", "parent"),)
_PUSH_TIMEOUT_S = 2.0


class PreforkMerge:
    """Fork hooks that turn the configuring process into its workers' evaluator (see module doc)."""

    def __init__(
        self,
        loop: EvaluationLoop,
        store: REDStore,
        settings: SLOSettings,
        resource: Mapping[str, Any],
        *,
        cardinality_limit: int = 2000,
        rebuild: Callable[[], Evaluation] | None = None,
    ) -> None:
        self._loop = loop
        self._store = store
        self._settings = settings
        self._resource = dict(resource)
        self._cardinality_limit = cardinality_limit
        self._rebuild = rebuild
        self._owner_pid = os.getpid()
        self.merger: REDStreamMerger | None = None
        self.endpoint: str | None = None
        self._sink: OTLPReceiver | None = None
        self._sink_port: int | None = None
        self._pusher: REDPusher | None = None
        self._failed = False
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(before=self._before_fork, after_in_child=self._after_fork_in_child)

    # ------------------------------------------------------------------ parent

    def _before_fork(self) -> None:
        if os.getpid() != self._owner_pid or self._sink is not None or self._failed:
            return
        try:
            self.start_receiver()
        except Exception:
            self._failed = True
            _log.warning(
                "otelpipe could not start the loopback receiver for forked workers; "
                "each worker evaluates its own SLOs",
                exc_info=True,
            )

    def start_receiver(self) -> str:
        """Start merging (done at the first fork; callable directly). Returns the push endpoint."""
        from otelpipe.sink import OTLPReceiver

        # Workers push every push interval: one silent for many intervals is gone (recycled by
        # max_requests, killed), and forgetting it soon keeps recycling from filling the stream limit.
        stale_after_s = min(
            self._settings.stream_stale_after_s, max(30.0, 20 * self._settings.prefork_push_interval_s)
        )
        merger = REDStreamMerger(
            self._store.boundaries, series_limit=self._cardinality_limit, stale_after_s=stale_after_s
        )
        sink = OTLPReceiver(merger.receive, host="127.0.0.1", grpc_port=None, http_port=0).start()
        self.merger, self._sink = merger, sink
        self.endpoint = f"{sink.http_endpoint}/v1/metrics"
        self._sink_port = sink.http_port
        self._loop.set_source(self.snapshot)
        # Imported here, once, so forked children never import while another thread holds a lock.
        import otelpipe.fleet.push  # noqa: F401

        _log.debug("workers push RED to %s", self.endpoint)
        return self.endpoint

    def snapshot(self) -> REDSnapshot:
        """The parent's own spans and every worker's pushed RED, merged."""
        merger = self.merger
        assert merger is not None
        merger.add_snapshot(self._store.snapshot(), _LOCAL_INSTANCE)
        return merger.snapshot()

    # ------------------------------------------------------------------- child

    def _after_fork_in_child(self) -> None:
        self._sink = None  # the parent's server; its socket is simply never used here
        self.merger = None
        self._owner_pid = -1  # a worker that forks again does not become an evaluator
        try:
            if self.endpoint is None:
                if self._rebuild is not None:  # no parent to push to: watch ourselves
                    self._loop.evaluation = self._rebuild()
                    self._loop.start()
                return
            self._start_pusher(self.endpoint)
        except Exception:
            _log.warning("otelpipe could not set up RED push in a forked worker", exc_info=True)

    def _start_pusher(self, endpoint: str) -> None:
        from otelpipe.fleet.push import REDPusher

        assert self._sink_port is not None
        identity = {"service.instance.id": str(uuid.uuid4()), "process.pid": os.getpid()}
        self._pusher = REDPusher(
            self._store.snapshot,
            {**self._resource, **identity},
            host="127.0.0.1",
            port=self._sink_port,
            interval_s=self._settings.prefork_push_interval_s,
            timeout_s=_PUSH_TIMEOUT_S,
        ).start()

    # ------------------------------------------------------------------ either

    def close(self) -> None:
        """Parent: stop the receiver. Child: push the last counts, then stop pushing."""
        pusher, self._pusher = self._pusher, None
        if pusher is not None:
            pusher.close()
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.stop()
