"""Delivery machinery against real local HTTP servers: outages, slow endpoints, drops, order, masking."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otelpipe.alerts import AlertState
from otelpipe.exporters._delivery import DeliveryOptions, QueuedNotifier, mask_url
from otelpipe.exporters.webhook import WebhookNotifier
from otelpipe.incidents.engine import IncidentEngine
from otelpipe.incidents.model import IncidentEvent

if TYPE_CHECKING:
    from conftest import EventFactory, Recorder

FAST = DeliveryOptions(timeout_s=2.0, max_attempts=50, backoff_base_s=0.02, backoff_max_s=0.1)


def test_endpoint_down_then_up_delivers_once_in_order(
    port_factory: Callable[[], int],
    recorder_factory: Callable[[int], Recorder],
    make_event: EventFactory,
) -> None:
    port = port_factory()  # nothing listens yet: connection refused
    notifier = WebhookNotifier(f"http://127.0.0.1:{port}/hook", options=FAST)
    notifier.submit(make_event("opened"))
    notifier.submit(make_event("resolved"))
    deadline = time.monotonic() + 30
    while notifier.retries < 3 and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    assert notifier.retries >= 3, "the notifier stopped retrying a refused endpoint"
    server = recorder_factory(port)
    assert notifier.force_flush(10)
    notifier.shutdown()
    assert [body["event"] for body in server.bodies()] == ["opened", "resolved"]
    assert notifier.delivered == 2 and notifier.failed == 0 and notifier.dropped == 0
    assert notifier.retries >= 3


def test_server_errors_are_retried_and_client_errors_are_not(
    recorder: Recorder, make_event: EventFactory
) -> None:
    recorder.status = lambda n: 503 if n <= 2 else (400 if n == 4 else 202)
    notifier = WebhookNotifier(recorder.url, options=FAST)
    notifier.submit(make_event("opened"))  # 503, 503, 202
    notifier.submit(make_event("updated"))  # 400: permanent, given up
    notifier.submit(make_event("resolved"))  # 202
    assert notifier.force_flush(10)
    notifier.shutdown()
    assert [b["event"] for b in recorder.bodies()] == ["opened", "opened", "opened", "updated", "resolved"]
    assert (notifier.delivered, notifier.failed, notifier.retries) == (2, 1, 2)


def test_gives_up_after_max_attempts(port_factory: Callable[[], int], make_event: EventFactory) -> None:
    options = DeliveryOptions(timeout_s=1.0, max_attempts=3, backoff_base_s=0.01)
    notifier = WebhookNotifier(f"http://127.0.0.1:{port_factory()}/", options=options)
    notifier.submit(make_event("opened"))
    assert notifier.force_flush(10)
    notifier.shutdown()
    assert (notifier.delivered, notifier.failed, notifier.retries) == (0, 1, 2)


def test_slow_endpoint_does_not_block_the_evaluator(recorder: Recorder) -> None:
    recorder.hold.clear()  # the server holds every request until released
    notifier = WebhookNotifier(recorder.url, options=DeliveryOptions(timeout_s=5.0))
    clock = [1_714_564_800.0]
    engine = IncidentEngine([notifier], clock=lambda: clock[0], renotify_interval_s=1.0)
    firing = AlertState("checkout/availability", "checkout", "availability", True, "critical", "burning", 0.0)
    engine.observe([firing])
    assert recorder.wait_for(1)
    ticks = 0
    for _ in range(20):  # the worker is stuck in the first request; each tick only enqueues
        clock[0] += 2
        ticks += len(engine.observe([firing]))
    assert ticks == 20
    assert len(recorder.requests) == 1  # the server still holds the first request
    assert notifier.delivered == 0
    recorder.hold.set()
    assert notifier.force_flush(10)
    notifier.shutdown()
    assert notifier.delivered == 21
    assert [b["event"] for b in recorder.bodies()] == ["opened"] + ["renotified"] * 20


def test_full_queue_drops_and_counts(recorder: Recorder, make_event: EventFactory) -> None:
    recorder.hold.clear()
    notifier = WebhookNotifier(recorder.url, options=DeliveryOptions(queue_size=2, timeout_s=5.0))
    notifier.submit(make_event("opened"))
    assert recorder.wait_for(1)  # taken off the queue by the worker
    for _ in range(5):
        notifier.submit(make_event("renotified"))
    assert notifier.dropped == 3
    recorder.hold.set()
    assert notifier.force_flush(10)
    notifier.shutdown()
    assert notifier.delivered == 3
    notifier.submit(make_event("resolved"))  # after shutdown: dropped, not delivered
    assert notifier.dropped == 4


def test_failures_are_logged_without_secrets_and_counted_as_metrics(
    port_factory: Callable[[], int], make_event: EventFactory, caplog: pytest.LogCaptureFixture
) -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")

    class Leaky(QueuedNotifier):
        name = "leaky"

        def _deliver(self, event: IncidentEvent) -> None:
            raise OSError("refused by https://hooks.example.com/T0KEN-SECRET")

        def _secrets(self) -> tuple[str, ...]:
            return ("T0KEN-SECRET",)

    notifier = Leaky(DeliveryOptions(max_attempts=2, backoff_base_s=0.0), meter=meter)
    with caplog.at_level(logging.WARNING, logger="otelpipe.exporters"):
        notifier.submit(make_event("opened"))
        assert notifier.force_flush(5)
    notifier.shutdown()
    assert notifier.failed == 1
    assert caplog.records, "a failure must be logged"
    assert all("T0KEN-SECRET" not in r.getMessage() for r in caplog.records)
    assert any("***" in r.getMessage() for r in caplog.records)
    points = {
        (p.attributes["otelpipe.notifier"], p.attributes["outcome"]): p.value
        for m in reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
        for p in m.data.data_points
    }
    assert points == {("leaky", "retried"): 1, ("leaky", "failed"): 1}


def test_mask_url_hides_paths_queries_and_credentials() -> None:
    assert mask_url("https://user:pw@hooks.slack.com/services/T/B/X?x=1") == "https://hooks.slack.com/***"
    assert mask_url("http://alertmanager:9093") == "http://alertmanager:9093"
