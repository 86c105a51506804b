"""End to end: a hostile query string cannot freeze an instrumented Flask app (issue 12: a 4 KB
`?q=1-1-1-…` took 31 s and stalled other requests), and a card inside it is still masked."""

from __future__ import annotations

import pytest
from google.protobuf.json_format import MessageToJson

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CARD = "4111-1111-1111-1111"


def test_hostile_query_completes_and_is_redacted(sink, otlp_env, instrumented_app, wait_until):
    env = otlp_env(sink, OTEL_SERVICE_NAME="hostile", OTELPIPE_ACCESS_LOG_ENABLED="true", OTELPIPE_LOG_FORMAT="json")
    app = instrumented_app(env)
    hostile = ("1-" * 2000)[:3999] + "+" + CARD
    # urlopen's 10 s timeout bounds each request: the cubic scan took 31 s for this one.
    assert app.get("/hello/a?q=" + hostile) == 200
    assert app.get("/hello/b?q=1+" + "1+" * 2000) == 200
    assert app.get("/hello/c") == 200
    assert wait_until(lambda: sink.store.totals()["traces"] >= 3, timeout=20), sink.store.totals()
    output = app.stop()
    exported = "\n".join(MessageToJson(r.request) for r in sink.store.received())
    assert "[REDACTED]" in exported, "the card in the query was not masked"
    assert CARD not in exported and CARD not in output
    assert "1-1-1-1-1" in exported  # the harmless digits are kept
