"""Demo shop, payments service and traffic driver, exercised with real servers on 127.0.0.1."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from werkzeug.serving import make_server

from otelpipe.demo import payments, shop, traffic

ORDER = {"user_id": 1, "sku": "sku-book", "quantity": 2, "payment_method": "card"}  # user 1 is gold


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def payments_server() -> Iterator[tuple[str, payments.FaultInjector]]:
    injector = payments.FaultInjector(rng=random.Random(7))
    with serve(payments.create_app(injector)) as url:
        yield url, injector


def set_faults(payments_url: str, **faults: Any) -> None:
    answer = requests.post(f"{payments_url}/admin/faults", json=faults, timeout=5)
    assert answer.status_code == 200, answer.text


# --- payments ---------------------------------------------------------------------------------


def test_payments_serves_inventory_and_payments() -> None:
    client = payments.create_app().test_client()
    stock = client.get("/inventory/sku-mug")
    assert stock.status_code == 200
    assert stock.json == {"sku": "sku-mug", "in_stock": True, "price_usd": 8.0}
    assert client.get("/inventory/nope").status_code == 404
    paid = client.post("/pay", json={"amount_usd": 8.0, "payment_method": "paypal"})
    assert paid.status_code == 200
    assert (
        paid.json is not None and paid.json["status"] == "approved" and len(paid.json["transaction_id"]) == 32
    )
    assert client.post("/pay", json={"amount_usd": 8.0, "payment_method": "cash"}).status_code == 400
    assert client.post("/pay", json={"amount_usd": -1, "payment_method": "card"}).status_code == 400
    assert client.get("/healthz").json == {"status": "ok"}


def test_payments_admin_endpoint_switches_injected_errors() -> None:
    client = payments.create_app(payments.FaultInjector(rng=random.Random(1))).test_client()
    body = {"amount_usd": 5, "payment_method": "card"}
    assert client.post("/admin/faults", json={"error_rate": 1.0}).json == {"error_rate": 1.0, "latency_ms": 0}
    failed = {client.post("/pay", json=body).status_code for _ in range(20)}
    assert failed == {500, 503}  # both injected flavours show up, nothing succeeds
    assert client.post("/admin/faults", json={"error_rate": 0}).status_code == 200
    assert {client.post("/pay", json=body).status_code for _ in range(5)} == {200}
    assert client.post("/admin/faults", json={"error_rate": 1.5}).status_code == 400
    assert client.post("/admin/faults", json={"latency_ms": -3}).status_code == 400
    assert client.get("/admin/faults").json == {"error_rate": 0.0, "latency_ms": 0}


def test_payments_partial_error_rate_fails_about_that_share() -> None:
    client = payments.create_app(
        payments.FaultInjector(payments.FaultSettings(error_rate=0.3), rng=random.Random(3))
    ).test_client()
    statuses = [
        client.post("/pay", json={"amount_usd": 1, "payment_method": "card"}).status_code for _ in range(300)
    ]
    failures = sum(status >= 500 for status in statuses)
    assert 60 <= failures <= 120  # 30 % of 300 = 90, with room for chance


def test_payments_injected_latency_slows_calls() -> None:
    client = payments.create_app(payments.FaultInjector(payments.FaultSettings(latency_ms=120))).test_client()
    started = time.monotonic()
    assert client.get("/inventory/sku-book").status_code == 200
    assert time.monotonic() - started >= 0.12


def test_faults_from_env_reads_both_variables_and_names_them_on_error() -> None:
    settings = payments.faults_from_env({"PAYMENTS_ERROR_RATE": "0.25", "PAYMENTS_EXTRA_LATENCY_MS": "40"})
    assert settings == payments.FaultSettings(error_rate=0.25, latency_ms=40)
    assert payments.faults_from_env({}) == payments.FaultSettings()
    with pytest.raises(ValueError, match="PAYMENTS_ERROR_RATE='2'"):
        payments.faults_from_env({"PAYMENTS_ERROR_RATE": "2"})


# --- shop -------------------------------------------------------------------------------------


def test_order_flow_persists_through_sqlalchemy(payments_server: tuple[str, Any], tmp_path: Path) -> None:
    url, _ = payments_server
    db = str(tmp_path / "shop.db")
    client = shop.create_app(db, url).test_client()
    created = client.post("/api/orders", json=ORDER)
    assert created.status_code == 201, created.json
    order = created.json
    assert order is not None
    assert order["amount_usd"] == 25.0 and order["status"] == "confirmed" and order["user_id"] == 1
    assert client.get(f"/api/orders/{order['id']}").json == order
    assert client.get("/api/orders?user_id=1").json == {"orders": [order]}
    assert client.get("/api/orders/999").status_code == 404

    # A second app on the same file sees the order: it was committed, not just cached.
    again = shop.create_app(db, url)
    assert again.test_client().get(f"/api/orders/{order['id']}").json == order
    assert len(again.test_client().get("/api/users").json["users"]) == 4  # seeded once, not twice
    # The engine names only the file, so database span names do not carry the temporary directory.
    assert shop.shop_state(again).engine.url.database == "shop.db"
    shop.shop_state(again).engine.dispose()


def test_shop_answers_client_mistakes_with_4xx(payments_server: tuple[str, Any]) -> None:
    url, _ = payments_server
    client = shop.create_app(":memory:", url).test_client()
    assert client.post("/api/orders", json={**ORDER, "user_id": 99}).status_code == 404
    assert client.post("/api/orders", json={**ORDER, "sku": "sku-unknown"}).status_code == 400
    assert client.post("/api/orders", json={**ORDER, "quantity": 0}).status_code == 400
    assert client.post("/api/orders", json={**ORDER, "payment_method": "cash"}).status_code == 400
    assert client.post("/api/orders", data="nope").status_code == 400
    user = {"name": "Eve", "email": "eve@example.com", "tier": "silver"}
    assert client.post("/api/users", json=user).status_code == 201
    assert client.post("/api/users", json=user).status_code == 409
    assert (
        client.post("/api/users", json={**user, "email": "x@example.com", "tier": "platinum"}).status_code
        == 400
    )
    assert client.get("/api/orders").json == {"orders": []}


def test_payment_faults_fail_orders_and_store_nothing(payments_server: tuple[str, Any]) -> None:
    url, _ = payments_server
    client = shop.create_app(":memory:", url).test_client()
    set_faults(url, error_rate=1.0)
    assert {client.post("/api/orders", json=ORDER).status_code for _ in range(5)} == {502}
    assert client.get("/api/orders").json == {"orders": []}
    set_faults(url, error_rate=0.0)
    assert client.post("/api/orders", json=ORDER).status_code == 201


def test_slow_payments_hit_the_shop_timeout(payments_server: tuple[str, Any]) -> None:
    url, _ = payments_server
    client = shop.create_app(":memory:", url, http_timeout_s=0.1).test_client()
    set_faults(url, latency_ms=10_000)
    started = time.monotonic()
    assert client.post("/api/orders", json=ORDER).status_code == 504
    # The shop gave up instead of waiting the 10 s latency out (its budget is 0.1 s; the margin is
    # for a loaded machine, the bug it catches costs the full 10 s).
    assert time.monotonic() - started < 5.0


def test_order_span_is_error_when_payment_fails_and_metrics_count_successes(
    payments_server: tuple[str, Any],
) -> None:
    url, _ = payments_server
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    app = shop.create_app(":memory:", url, tracer_provider=tracer_provider, meter_provider=meter_provider)
    FlaskInstrumentor().instrument_app(app, tracer_provider=tracer_provider)
    RequestsInstrumentor().instrument(tracer_provider=tracer_provider)
    try:
        client = app.test_client()
        assert client.post("/api/orders", json=ORDER).status_code == 201
        set_faults(url, error_rate=1.0)
        assert client.post("/api/orders", json={**ORDER, "payment_method": "paypal"}).status_code == 502
        signup = {"name": "Ada", "email": "ada@example.com", "tier": "silver"}
        assert client.post("/api/users", json=signup).status_code == 201
    finally:
        RequestsInstrumentor().uninstrument()
        FlaskInstrumentor().uninstrument_app(app)

    finished = spans.get_finished_spans()
    orders = [span for span in finished if span.name == shop.ORDER_SPAN_NAME]
    assert [span.status.status_code for span in orders] == [StatusCode.UNSET, StatusCode.ERROR]
    failed = orders[1]
    assert failed.kind is SpanKind.INTERNAL
    assert failed.status.description == "payment failed with HTTP " + str(failed.status.description)[-3:]
    assert failed.attributes is not None and failed.attributes["payment.method"] == "paypal"
    server = next(
        span
        for span in finished
        if span.kind is SpanKind.SERVER and span.context.trace_id == failed.context.trace_id
    )
    assert failed.parent is not None and failed.parent.span_id == server.context.span_id
    pay_calls = [
        s
        for s in finished
        if s.kind is SpanKind.CLIENT and s.parent and s.parent.span_id == failed.context.span_id
    ]
    assert len(pay_calls) == 2  # inventory check and payment, both children of order.create

    points: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points[metric.name] = list(metric.data.data_points)
    (created,) = points["shop.orders.created"]
    assert created.value == 1 and dict(created.attributes) == {"payment_method": "card", "user_tier": "gold"}
    (revenue,) = points["shop.revenue"]
    assert revenue.value == 25.0 and dict(revenue.attributes) == {"payment_method": "card"}
    (amount,) = points["shop.order.amount"]  # the business metrics metric rules watch
    assert (amount.count, amount.sum, dict(amount.attributes)) == (1, 25.0, {"payment_method": "card"})
    (signups,) = points["shop.signups"]
    assert signups.value == 1 and dict(signups.attributes) == {"user_tier": "silver"}
    tracer_provider.shutdown()
    meter_provider.shutdown()


def test_inventory_reconciler_emits_internal_spans_and_stops(
    payments_server: tuple[str, Any], wait_until: Callable[..., bool]
) -> None:
    url, _ = payments_server
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    app = shop.create_app(":memory:", url, tracer_provider=tracer_provider)
    assert app.test_client().post("/api/orders", json=ORDER).status_code == 201
    reconciler = shop.InventoryReconciler(shop.shop_state(app), interval_s=0.02)
    reconciler.start()

    def jobs() -> list[Any]:
        return [span for span in spans.get_finished_spans() if span.name == shop.RECONCILE_SPAN_NAME]

    assert wait_until(lambda: len(jobs()) >= 2 and reconciler.runs >= 2, timeout=30)
    reconciler.stop()
    assert not reconciler.is_alive()
    first = jobs()[0]
    assert all(span.kind is SpanKind.INTERNAL and span.parent is None for span in jobs())
    assert first.attributes is not None and first.attributes["inventory.units_ordered"] == 2
    tracer_provider.shutdown()


# --- traffic ----------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when the driver waits on its stop event (see `ClockedStop`)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now


class ClockedStop(threading.Event):
    """The driver's stop event: `wait(t)` advances the fake clock by `t` instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        if not self.is_set():
            assert timeout is not None, "the driver waits with a deadline"
            self.clock.waits.append(timeout)
            self.clock.now += timeout
        return self.is_set()


def _drive(url: str, rps: float, duration_s: float, **kwargs: Any) -> tuple[traffic.TrafficStats, FakeClock]:
    """`traffic.drive` on a fake clock: pacing is exact and costs no wall-clock time."""
    clock = FakeClock()
    stop = ClockedStop(clock)
    return traffic.drive(url, rps=rps, duration_s=duration_s, stop_event=stop, clock=clock, **kwargs), clock


@pytest.mark.integration
def test_traffic_driver_against_real_servers(payments_server: tuple[str, Any]) -> None:
    url, _ = payments_server
    app = shop.create_app(":memory:", url)
    ticks: list[int] = []
    with serve(app) as shop_url:
        stats, clock = _drive(shop_url, 30, 1.5, on_tick=lambda s: ticks.append(s.sent), seed=4)
        stored = requests.get(f"{shop_url}/api/orders?limit=100", timeout=5).json()["orders"]
    assert stats.planned == 45 and stats.sent == 45
    # Paced by deadlines: one interval between requests, none before the first.
    assert clock.waits == pytest.approx([0.0] + [1 / 30] * 44)
    assert stats.elapsed_s == pytest.approx(44 / 30)
    assert stats.transport_errors == 0 and stats.server_errors == 0
    assert stats.by_status[201] >= 5 and stats.by_status[200] >= 5
    assert sum(stats.by_status.values()) == stats.sent
    assert ticks == list(range(1, stats.sent + 1))
    assert len(stored) >= 5  # orders created by the traffic really landed in the database
    shop.shop_state(app).engine.dispose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_traffic_driver_sends_fewer_requests_when_they_are_slow_instead_of_overrunning() -> None:
    clock = FakeClock()

    def slow_answer(stats: traffic.TrafficStats) -> None:
        clock.now += 3 / 30  # every request takes three intervals

    stats = traffic.drive(
        f"http://127.0.0.1:{_closed_port()}",
        rps=30,
        duration_s=1.5,
        on_tick=slow_answer,
        stop_event=ClockedStop(clock),
        clock=clock,
    )
    assert stats.planned == 45
    assert stats.sent == 15 and stats.transport_errors == 15  # the run ends at duration_s
    assert set(clock.waits) == {0.0}  # behind schedule: no pause between requests


def test_traffic_driver_counts_transport_errors_and_honours_stop_event() -> None:
    clock = FakeClock()
    stop = ClockedStop(clock)

    def stop_after_three(stats: traffic.TrafficStats) -> None:
        if stats.sent == 3:
            stop.set()

    stats = traffic.drive(
        f"http://127.0.0.1:{_closed_port()}",
        rps=50,
        duration_s=5,
        on_tick=stop_after_three,
        stop_event=stop,
        clock=clock,
    )
    assert stats.planned == 250
    assert stats.sent == 3 and stats.transport_errors == 3 and not stats.by_status
    with pytest.raises(ValueError, match="rps"):
        traffic.drive("http://127.0.0.1:1", rps=0, duration_s=1)


def test_traffic_driver_survives_a_failing_progress_callback(payments_server: tuple[str, Any]) -> None:
    url, _ = payments_server
    app = shop.create_app(":memory:", url)
    calls: list[int] = []

    def broken(stats: traffic.TrafficStats) -> None:
        calls.append(stats.sent)
        raise RuntimeError("progress bar crashed")

    with serve(app) as shop_url:
        stats, _ = _drive(shop_url, 40, 0.3, on_tick=broken, seed=2)
    assert calls == [1]  # called once, then dropped
    assert stats.planned == 12 and stats.sent == 12 and stats.transport_errors == 0


# --- the real processes -----------------------------------------------------------------------


def _start(module: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0"],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            return process, int(match.group(1))
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"{module} did not start")


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=10)
    return rest


@pytest.mark.integration
def test_services_run_as_modules_and_stop_cleanly_on_sigterm(tmp_path: Path) -> None:
    pay, pay_port = _start("otelpipe.demo.payments", {"PAYMENTS_ERROR_RATE": "0", "PYTHONUNBUFFERED": "1"})
    try:
        shop_process, shop_port = _start(
            "otelpipe.demo.shop",
            {
                "PAYMENTS_URL": f"http://127.0.0.1:{pay_port}",
                "SHOP_DB_URL": str(tmp_path / "shop.db"),
                "SHOP_RECONCILE_INTERVAL_S": "0.1",
                "PYTHONUNBUFFERED": "1",
            },
        )
        try:
            answer = requests.post(f"http://127.0.0.1:{shop_port}/api/orders", json=ORDER, timeout=10)
            assert answer.status_code == 201
        finally:
            shop_log = _stop(shop_process)
    finally:
        pay_log = _stop(pay)
    assert shop_process.returncode == 0 and pay.returncode == 0
    assert f"order created: order_id={answer.json()['id']}" in shop_log
    assert "shop stopping" in shop_log and "payments service stopping" in pay_log
    assert (tmp_path / "shop.db").exists()
