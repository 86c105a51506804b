"""Scenario 11: with redaction on (the default), secrets in logs, span attributes, span events and
RED dimensions never reach the OTLP sink or the incident webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToJson

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAULT_APP = Path(__file__).with_name("fault_app.py")
DEMO_SPEC = (Path(__file__).parents[2] / "otelpipe" / "demo" / "slo.yaml").read_text()
SECRETS = [
    "s3cr3tT0kenAbCdEf123456",  # bearer token
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",  # JWT
    "4111 1111 1111 1111",  # Luhn-valid card number
    "5500-0000-0000-0004",
    "hunter2-Pa55word!",
]


class _Webhook(BaseHTTPRequestHandler):
    bodies: list[str] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).bodies.append(self.rfile.read(length).decode("utf-8", "replace"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[str]]]:
    handler = type("_Hook", (_Webhook,), {"bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler.bodies
    finally:
        server.shutdown()
        server.server_close()


def test_secret_corpus_never_reaches_the_sink_or_the_webhook(
    tmp_path, sink, otlp_env, instrumented_app, wait_until, webhook
):
    url, bodies = webhook
    slo_file = tmp_path / "slo.yaml"
    slo_file.write_text(
        DEMO_SPEC + "rules:\n  - name: secret-failures\n    service: shop\n"
        "    error_rate: {above: 1%, min_requests: 1}\n    window: 1m\n"
    )
    env = otlp_env(
        sink,
        OTEL_SERVICE_NAME="shop",
        SECRET_CORPUS=";".join(SECRETS),
        OTELPIPE_RED_DIMENSIONS="user.note",
        OTELPIPE_SLO_FILE=str(slo_file),
        OTELPIPE_SLO_INTERVAL="200ms",
        OTELPIPE_WEBHOOK_URL=url,
        OTELPIPE_CONSOLE_NOTIFIER_ENABLED="true",
    )
    app = instrumented_app(env, script=FAULT_APP)
    assert [app.get("/secret") for _ in range(5)] == [500] * 5
    assert wait_until(lambda: len(bodies) >= 1, timeout=20), "no incident: " + app.stop()[-3000:]
    assert wait_until(lambda: sink.store.totals()["logs"] >= 5 * len(SECRETS) * 2, timeout=20), (
        sink.store.totals()
    )
    output = app.stop()

    exported = [MessageToJson(r.request) for r in sink.store.received()]
    assert any("[REDACTED]" in text for text in exported), "redaction did not run at all"
    everything = "\n".join([*exported, *bodies, output])
    leaked = [secret for secret in SECRETS if secret in everything or secret.replace(" ", "") in everything]
    assert not leaked, [
        everything[max(0, everything.find(s) - 300) : everything.find(s) + 60] for s in leaked
    ]
    assert all(json.loads(body) for body in bodies)
