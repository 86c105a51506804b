"""Forked children never inherit a held REDMetricProducer lock (issue 12, item 7).

A reader collecting on another thread holds the producer's lock for the whole build; a fork()
landing inside it used to leave the child's copy locked forever (64 of 200 children hung in
produce()). Each child here calls produce() on a thread it joins with a deadline, then leaves
through os._exit, so a hang is a non-zero exit code, never a stuck test.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from otelpipe.processors.red import REDSpanProcessor, REDStore
from otelpipe.processors.red_metrics import REDMetricProducer, attach_red_producer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

CHILDREN = 200
CHILD_DEADLINE_S = 10.0  # generous: an unblocked produce() takes milliseconds
HUNG = 3


def _child(producer: REDMetricProducer) -> None:
    code = HUNG
    try:
        worker = threading.Thread(target=producer.produce, daemon=True)
        worker.start()
        worker.join(CHILD_DEADLINE_S)
        code = HUNG if worker.is_alive() else 0
    finally:
        os._exit(code)


def _reap(pids: list[int], deadline: float) -> list[int]:
    """Exit codes of our own children; any still running at `deadline` is killed by its pid."""
    codes: dict[int, int] = {}
    while len(codes) < len(pids) and time.monotonic() < deadline:
        for pid in pids:
            if pid not in codes:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes[pid] = os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    for pid in pids:
        if pid not in codes:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            codes[pid] = -signal.SIGKILL
    return [codes[pid] for pid in pids]


def test_children_forked_while_a_reader_collects_can_produce() -> None:
    store = REDStore(boundaries=(0.01, 0.1, 1.0), cardinality_limit=2000)
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    tracer_provider.add_span_processor(REDSpanProcessor(store))
    tracer = tracer_provider.get_tracer("fork")
    for i in range(300):  # enough series that a collection holds the lock for a while
        with tracer.start_as_current_span(f"op-{i}", kind=SpanKind.SERVER):
            pass
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    producer = REDMetricProducer(store)
    assert attach_red_producer(meter_provider, producer) == 1

    stop = threading.Event()
    collections = 0

    def collect() -> None:
        nonlocal collections
        while not stop.is_set():
            reader.get_metrics_data()
            collections += 1

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    pids: list[int] = []
    try:
        while collections == 0:
            time.sleep(0.001)
        for _ in range(CHILDREN):
            pid = os.fork()
            if pid == 0:
                _child(producer)
            pids.append(pid)
    finally:
        stop.set()
        collector.join(30)
        meter_provider.shutdown()
        codes = _reap(pids, time.monotonic() + CHILD_DEADLINE_S + 30)
    hung = sum(1 for code in codes if code != 0)
    assert collections > 0
    assert hung == 0, f"{hung} of {CHILDREN} forked children could not produce (exit codes {set(codes)})"
