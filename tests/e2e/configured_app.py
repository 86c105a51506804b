"""An app that sets up telemetry in code with `otelpipe.configure()` (no opentelemetry-instrument)."""

import logging
import sys

from opentelemetry import trace
from opentelemetry.trace import SpanKind

import otelpipe

pipeline = otelpipe.configure()
logging.basicConfig(level=logging.INFO)
log = logging.getLogger("configured.app")
tracer = trace.get_tracer("configured.app")

for i in range(int(sys.argv[1])):
    with tracer.start_as_current_span("GET /items/{id}", kind=SpanKind.SERVER) as span:
        span.set_attribute("http.route", "/items/{id}")
        log.warning("handled item %d", i)
pipeline.shutdown()
print("DONE", flush=True)
