"""An app set up with `otelpipe.configure()` that keeps producing the spans dashboards query.

Each round: SERVER spans (one in ten an error), an INTERNAL span, CLIENT spans to a peer service
(one in five failing) and to a database. Prints `READY` once the first round has ended, then runs
until SIGTERM. Metrics go to `/metrics` (OTEL_METRICS_EXPORTER=prometheus), nothing else is sent.
"""

import signal
import sys
import time

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

import otelpipe

pipeline = otelpipe.configure()
tracer = trace.get_tracer("compat.app")
running = True


def _stop(*_: object) -> None:
    global running
    running = False


signal.signal(signal.SIGTERM, _stop)


def one_round(i: int) -> None:
    with tracer.start_as_current_span("GET /api/products", kind=SpanKind.SERVER) as server:
        server.set_attribute("http.route", "/api/products")
        server.set_attribute("http.request.method", "GET")
        if i % 10 == 0:
            server.set_status(Status(StatusCode.ERROR))
        with tracer.start_as_current_span("render", kind=SpanKind.INTERNAL):
            time.sleep(0.001)
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as client:
            client.set_attribute("peer.service", "stock")
            if i % 5 == 0:
                client.set_status(Status(StatusCode.ERROR))
        with tracer.start_as_current_span("SELECT products", kind=SpanKind.CLIENT) as query:
            query.set_attribute("db.system", "postgresql")


i = 0
while running:
    one_round(i)
    if i == 0:
        print("READY", flush=True)
    i += 1
    time.sleep(0.01)
pipeline.shutdown()
sys.exit(0)
