"""A Flask app for fault tests, run under `opentelemetry-instrument` (otelpipe configures it).

`/burst?n=N` ends N CLIENT spans and logs one line per span inside the request's SERVER span, so a
request produces far more telemetry than it costs to serve; `/stats` reports what otelpipe's RED
store counted and the process RSS, so a test can tell that the span path ran while exports hung.
"""

import logging
import os
import signal
import sys

from flask import Flask, request
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from werkzeug.serving import make_server

app = Flask(__name__)
log = logging.getLogger("faults.app")
tracer = trace.get_tracer("faults.app")


def _rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


@app.get("/burst")
def burst() -> dict[str, int]:
    n = min(int(request.args.get("n", "10")), 5000)
    for i in range(n):
        with tracer.start_as_current_span("downstream", kind=SpanKind.CLIENT) as span:
            span.set_attribute("peer.service", "db")
            log.info("downstream call %d", i)
    return {"spans": n}


@app.get("/secret")
def secret() -> tuple[str, int]:
    """Puts the secret corpus (SECRET_CORPUS, ';'-separated) into span attributes, events and logs; fails."""
    corpus = os.environ.get("SECRET_CORPUS", "").split(";")
    span = trace.get_current_span()
    for i, value in enumerate(corpus):
        span.set_attribute(f"user{i}.password", value)
        span.set_attribute("user.note", f"Authorization: Bearer {value}")
        span.add_event("login", {"token": value, "detail": f"api_key={value}"})
        log.error("login failed password=%s", value)
        log.warning("retrying with Authorization: Bearer %s", value)
        log.warning("auth header", extra={"authorization": f"Bearer {value}", "api_key": value})
    return "denied", 500


@app.get("/fail")
def fail() -> tuple[str, int]:
    return "injected failure", 500


@app.get("/stats")
def stats() -> dict[str, object]:
    from otelpipe.pipeline import current

    pipeline = current()
    calls: dict[str, int] = {}
    if pipeline is not None and pipeline.red_store is not None:
        for series in pipeline.red_store.snapshot().series:
            kind = str(series.attributes.get("span.kind"))
            calls[kind] = calls.get(kind, 0) + series.calls
    loop = getattr(pipeline, "evaluation", None)
    evaluation = {"ticks": loop.ticks, "last_tick_s": loop.last_tick_s} if loop is not None else {}
    return {"pid": os.getpid(), "rss_kib": _rss_kib(), "calls": calls, "evaluation": evaluation}


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=open(os.devnull, "w"))  # noqa: SIM115
    server = make_server("127.0.0.1", 0, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # let atexit run otelpipe's shutdown
    print(f"READY {server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
