"""ConsoleNotifier: one readable line per incident transition."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from otelpipe.exporters.console import ConsoleNotifier

if TYPE_CHECKING:
    from conftest import EventFactory

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def test_console_notifier_writes_one_line_per_event(make_event: EventFactory) -> None:
    stream = io.StringIO()
    notifier = ConsoleNotifier(stream)
    notifier.submit(make_event("opened"))
    notifier.submit(
        make_event("resolved", at=1_714_565_700.0, summary="recovered after 10m, clear for 5m; now: ok")
    )
    assert notifier.force_flush(5)
    notifier.shutdown()
    assert stream.getvalue().splitlines() == [
        "2024-05-01T12:00:00.000Z OPENED [critical] checkout/availability: availability burning 14.9x "
        f"budget (page: 5m/1h) traces: http://jaeger:16686/trace/{TRACE_ID}",
        "2024-05-01T12:15:00.000Z RESOLVED [critical] checkout/availability: recovered after 10m, clear "
        f"for 5m; now: ok traces: http://jaeger:16686/trace/{TRACE_ID}",
    ]
