"""Forks two children that record SERVER spans, then prints what the parent's SLO evaluator counted.

Run by test_fleet_prefork.py with OTELPIPE_* in the environment; otelpipe.configure() reads them.
Prints one JSON line: {"evaluating": bool, "total": int | null}.
"""

import json
import os
import sys
import time

from opentelemetry import trace
from opentelemetry.trace import SpanKind

import otelpipe

pipeline = otelpipe.configure()
tracer = trace.get_tracer("fork-app")
children = []
for index in range(2):
    pid = os.fork()
    if pid == 0:
        for _ in range(10 * (index + 1)):
            with tracer.start_as_current_span("GET /x", kind=SpanKind.SERVER):
                pass
        time.sleep(0.5)
        sys.exit(0)  # atexit: the pipeline's shutdown pushes the last counts
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
loop = pipeline.evaluation
if loop is None:
    print(json.dumps({"evaluating": False, "total": None}), flush=True)
    sys.exit(0)
# Host mode reaches 30 in about 1 s (a generous deadline for a loaded machine); the other modes never
# do, so for them this is only the window in which a wrong count would show.
host = os.environ.get("OTELPIPE_SLO_EVALUATION") == "host"
deadline = time.monotonic() + (45 if host else 4)
total = 0
while time.monotonic() < deadline:
    total = sum(status.total for status in loop.evaluation.evaluator.status())
    if total >= 30:
        break
    time.sleep(0.1)
time.sleep(0.5)  # a late duplicate would show here
print(json.dumps({"evaluating": True, "total": sum(s.total for s in loop.evaluation.evaluator.status())}), flush=True)
