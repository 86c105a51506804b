"""Console notifier: one readable line per incident transition, for the demo and local runs."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, TextIO

from otelpipe.exporters._delivery import DeliveryOptions, QueuedNotifier
from otelpipe.incidents.document import rfc3339
from otelpipe.incidents.model import IncidentEvent

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter


def format_event(event: IncidentEvent) -> str:
    """`2024-05-01T12:00:00.000Z OPENED [critical] checkout/availability: <summary> traces: ...`.

    The summary is the engine's text for this transition (a resolution says it recovered, for how
    long, and the figures now), so the line never repeats the firing text on recovery.
    """
    incident = event.incident
    text = (
        f"{rfc3339(event.at)} {event.kind.upper()} [{incident.severity}] {incident.key}: {incident.summary}"
    )
    links = [t.url or t.trace_id for t in incident.traces[:3]]
    if links:
        text += " traces: " + " ".join(links)
    return text


class ConsoleNotifier(QueuedNotifier):
    """Writes `format_event` lines to `stream` (default stderr) from the notifier's worker thread."""

    name = "console"

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        options: DeliveryOptions | None = None,
        meter: Meter | None = None,
    ) -> None:
        self._stream = stream
        self._write_lock = threading.Lock()
        super().__init__(options, meter=meter)

    def _deliver(self, event: IncidentEvent) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        with self._write_lock:
            stream.write(format_event(event) + "\n")
            stream.flush()
