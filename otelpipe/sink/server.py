"""`OTLPSink`: the OTLP receiver wired to a `SinkStore`, the demo's embedded collector and the tests' peer.

It binds 127.0.0.1 by default: it is a developer tool, not a collector. The receiving itself (and
its limits) lives in `otelpipe.sink.receiver`, reusable with any per-request callback.
"""

from __future__ import annotations

from otelpipe.sink.receiver import OTLPReceiver, ReceiverLimits
from otelpipe.sink.store import SinkStore


class OTLPSink(OTLPReceiver):
    """gRPC (default 4317) and HTTP/protobuf (default 4318) OTLP receivers writing into one store.

    Port 0 picks a free port; the bound ports are in `grpc_port` and `http_port` after `start()`.
    Pass `None` as a port to disable that transport.
    """

    def __init__(
        self,
        store: SinkStore | None = None,
        *,
        host: str = "127.0.0.1",
        grpc_port: int | None = 4317,
        http_port: int | None = 4318,
        limits: ReceiverLimits | None = None,
    ) -> None:
        self.store = store or SinkStore()
        super().__init__(self.store.add, host=host, grpc_port=grpc_port, http_port=http_port, limits=limits)

    def start(self) -> OTLPSink:
        """Bind and serve in background threads; raises OSError if a port is taken."""
        super().start()
        return self

    def __enter__(self) -> OTLPSink:
        return self.start()
