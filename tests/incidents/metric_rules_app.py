"""An app set up by `otelpipe.configure()` whose metric rules fire: a business counter and real CPU figures.

Ticks the evaluation by hand (OTELPIPE_SLO_INTERVAL is long), prints one JSON line per incident
event and, at the end, the summary of each rule's last state.
"""

import json
import time

from opentelemetry import metrics

import otelpipe

pipeline = otelpipe.configure()
orders = metrics.get_meter("shop").create_counter("shop.orders.created")
loop = pipeline.evaluation


def tick() -> None:
    for event in loop.tick():
        print(json.dumps({"key": event.incident.key, "kind": event.kind, "summary": event.incident.summary}))


def burn_cpu(seconds: float) -> None:
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        pass


orders.add(5, {"channel": "web"})
tick()  # baseline; psutil's first cpu_percent() reads 0
burn_cpu(0.3)
orders.add(5, {"channel": "web"})
time.sleep(1.1)
tick()  # orders still flowing; the process used CPU
time.sleep(1.1)
burn_cpu(0.3)
tick()  # no order for a window: the business rule fires
burn_cpu(0.3)  # psutil reports CPU since its previous call: give the last reading something to see
time.sleep(0.2)
states = loop.evaluation.metric_rules.evaluate(pipeline.metric_reader.snapshot(), time.time())
print(json.dumps({"states": {s.name: s.summary for s in states}}))
pipeline.shutdown()
print("DONE", flush=True)
