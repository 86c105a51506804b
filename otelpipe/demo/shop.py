"""Demo shop API: users and orders in SQLite through SQLAlchemy, payment and inventory over HTTP.

It is the application otelpipe watches in ``otelpipe demo``: real Flask server spans, SQLAlchemy
database spans, ``requests`` client spans to the payments service, one manual ``order.create`` span
(the SLO spec counts its ERROR status), a background ``inventory.reconcile`` job and business metrics.
It uses only the OpenTelemetry API and is instrumented from outside by ``opentelemetry-instrument``,
so it deliberately imports nothing from otelpipe.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

import requests
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import DateTime, Engine, ForeignKey, String, create_engine, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool
from werkzeug.serving import make_server

_log = logging.getLogger("demo.shop")

#: Instrumentation scope of the shop's own spans and metrics.
SCOPE_NAME = "otelpipe.demo.shop"
#: Name of the manual span around order creation; the demo SLO spec selects spans by this name.
ORDER_SPAN_NAME = "order.create"
#: Name of the background job's span.
RECONCILE_SPAN_NAME = "inventory.reconcile"
USER_TIERS = ("bronze", "silver", "gold")
_MAX_PAGE = 100
_SEED_USERS = (
    ("Alice", "alice@example.com", "gold"),
    ("Bob", "bob@example.com", "silver"),
    ("Carol", "carol@example.com", "bronze"),
    ("Dan", "dan@example.com", "bronze"),
)


class _Base(DeclarativeBase):
    pass


class User(_Base):
    """A customer; ``tier`` is a dimension of the business metrics."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str] = mapped_column(String(120), unique=True)
    tier: Mapped[str] = mapped_column(String(16))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "email": self.email, "tier": self.tier}


class Order(_Base):
    """A paid order; only orders whose payment succeeded are stored."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    sku: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int]
    amount_usd: Mapped[float]
    payment_method: Mapped[str] = mapped_column(String(20))
    transaction_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "sku": self.sku,
            "quantity": self.quantity,
            "amount_usd": self.amount_usd,
            "payment_method": self.payment_method,
            "transaction_id": self.transaction_id,
            "status": self.status,
            "created_at": _as_utc(self.created_at).isoformat(),
        }


def _as_utc(moment: datetime) -> datetime:
    """SQLite stores no zone: a naive value read back is the UTC value written."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def engine_for(db: str) -> Engine:
    """Make an engine from a SQLAlchemy URL, a SQLite file path or ``:memory:``.

    SQLite connections are shared across the threaded server's request threads, hence
    ``check_same_thread=False``.

    ``:memory:`` uses one shared connection (StaticPool) so every request thread sees the same data.
    """
    if db == ":memory:":
        return create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    if "://" in db:
        connect_args = {"check_same_thread": False} if db.startswith("sqlite") else {}
        return create_engine(db, connect_args=connect_args)
    # A file path: the URL names only the file, so database span names ("SELECT shop.db") stay the
    # same from run to run instead of carrying a random temporary directory into RED series.
    path = str(Path(db).resolve())
    return create_engine(
        f"sqlite:///{Path(db).name}", creator=lambda: sqlite3.connect(path, check_same_thread=False)
    )


@dataclass(frozen=True)
class ShopState:
    """What the views and the background job share; kept in ``app.extensions["shop"]``."""

    engine: Engine
    sessions: sessionmaker[Session]
    payments_url: str
    http_timeout_s: float
    tracer: trace.Tracer
    orders_created: metrics.Counter
    revenue: metrics.Counter
    order_amount: metrics.Histogram
    signups: metrics.Counter


def create_app(
    db: str,
    payments_url: str,
    *,
    http_timeout_s: float = 2.0,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> Flask:
    """Build the shop app on database ``db`` (see :func:`engine_for`), calling ``payments_url``.

    The providers default to the global ones (set by ``opentelemetry-instrument``); tests pass their own.
    Creates the tables and a few seed users when the users table is empty.
    """
    engine = engine_for(db)
    _Base.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    _seed_users(sessions)
    meter = metrics.get_meter(SCOPE_NAME, meter_provider=meter_provider)
    state = ShopState(
        engine=engine,
        sessions=sessions,
        payments_url=payments_url.rstrip("/"),
        http_timeout_s=http_timeout_s,
        tracer=trace.get_tracer(SCOPE_NAME, tracer_provider=tracer_provider),
        orders_created=meter.create_counter(
            "shop.orders.created", unit="{order}", description="Orders paid and stored"
        ),
        revenue=meter.create_counter("shop.revenue", unit="USD", description="Revenue of paid orders"),
        order_amount=meter.create_histogram(
            "shop.order.amount",
            unit="USD",
            description="Amount of each paid order",
            explicit_bucket_boundaries_advisory=[5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
        ),
        signups=meter.create_counter("shop.signups", unit="{user}", description="Users registered"),
    )
    app = Flask("demo.shop")
    app.extensions["shop"] = state

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return jsonify(status="ok")

    @app.get("/api/users")
    def list_users() -> ResponseReturnValue:
        with sessions() as session:
            users = session.scalars(select(User).order_by(User.id).limit(_MAX_PAGE)).all()
            return jsonify(users=[user.to_json() for user in users])

    @app.post("/api/users")
    def create_user() -> ResponseReturnValue:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(error="expected a JSON object {name, email, tier}"), 400
        name, email, tier = body.get("name"), body.get("email"), body.get("tier", "bronze")
        if not isinstance(name, str) or not name or not isinstance(email, str) or "@" not in email:
            return jsonify(error="name and a valid email are required"), 400
        if tier not in USER_TIERS:
            return jsonify(error=f"tier must be one of {list(USER_TIERS)}"), 400
        try:
            with sessions.begin() as session:
                user = User(name=name[:80], email=email[:120], tier=tier)
                session.add(user)
                session.flush()
                payload = user.to_json()
        except IntegrityError:
            return jsonify(error="email already registered"), 409
        state.signups.add(1, {"user_tier": tier})
        _log.info("user created: user_id=%d tier=%s", payload["id"], tier)
        return jsonify(payload), 201

    @app.get("/api/orders")
    def list_orders() -> ResponseReturnValue:
        limit = min(max(request.args.get("limit", 20, type=int) or 20, 1), _MAX_PAGE)
        query = select(Order).order_by(Order.id.desc()).limit(limit)
        user_id = request.args.get("user_id", type=int)
        if user_id is not None:
            query = query.where(Order.user_id == user_id)
        with sessions() as session:
            return jsonify(orders=[order.to_json() for order in session.scalars(query).all()])

    @app.get("/api/orders/<int:order_id>")
    def get_order(order_id: int) -> ResponseReturnValue:
        with sessions() as session:
            order = session.get(Order, order_id)
            if order is None:
                return jsonify(error="order not found", order_id=order_id), 404
            return jsonify(order.to_json())

    @app.post("/api/orders")
    def create_order() -> ResponseReturnValue:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(error="expected a JSON object {user_id, sku, quantity, payment_method}"), 400
        return _create_order(state, body)

    return app


def _seed_users(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return
        session.add_all(User(name=name, email=email, tier=tier) for name, email, tier in _SEED_USERS)


def _create_order(state: ShopState, body: Mapping[str, Any]) -> ResponseReturnValue:
    """Check stock, charge, store: the business transaction the SLO is about.

    Client mistakes (bad input, unknown user or SKU) answer 4xx and leave the span status UNSET:
    they are not the shop's failures. Dependency or database failures answer 5xx and mark the
    span ERROR, which is what burns the order SLO's error budget.
    """
    with state.tracer.start_as_current_span(ORDER_SPAN_NAME, kind=SpanKind.INTERNAL) as span:
        user_id, sku = body.get("user_id"), body.get("sku")
        quantity, method = body.get("quantity", 1), body.get("payment_method", "card")
        if not isinstance(user_id, int) or not isinstance(sku, str) or not isinstance(method, str):
            return jsonify(error="user_id (int), sku (str) and payment_method (str) are required"), 400
        if not isinstance(quantity, int) or not 1 <= quantity <= 100:
            return jsonify(error="quantity must be an integer in 1..100"), 400
        span.set_attribute("order.sku", sku)
        span.set_attribute("order.quantity", quantity)
        span.set_attribute("payment.method", method)
        with state.sessions() as session:
            user = session.get(User, user_id)
            tier = user.tier if user is not None else None
        if tier is None:
            return jsonify(error="user not found", user_id=user_id), 404
        span.set_attribute("user.tier", tier)

        try:
            stock = requests.get(f"{state.payments_url}/inventory/{sku}", timeout=state.http_timeout_s)
        except requests.RequestException as exc:
            return _fail(span, _status_for(exc), "inventory check failed", exc)
        if stock.status_code == 404:
            return jsonify(error="unknown sku", sku=sku), 400
        if stock.status_code != 200:
            return _fail(span, 502, f"inventory check failed with HTTP {stock.status_code}")
        amount = round(float(stock.json()["price_usd"]) * quantity, 2)
        span.set_attribute("order.amount_usd", amount)

        try:
            paid = requests.post(
                f"{state.payments_url}/pay",
                json={"amount_usd": amount, "payment_method": method, "user_id": user_id},
                timeout=state.http_timeout_s,
            )
        except requests.RequestException as exc:
            return _fail(span, _status_for(exc), "payment failed", exc)
        if paid.status_code == 400:
            return jsonify(error="payment rejected", detail=paid.json().get("error")), 400
        if paid.status_code != 200:
            return _fail(span, 502, f"payment failed with HTTP {paid.status_code}")

        try:
            with state.sessions.begin() as session:
                order = Order(
                    user_id=user_id,
                    sku=sku,
                    quantity=quantity,
                    amount_usd=amount,
                    payment_method=method,
                    transaction_id=str(paid.json()["transaction_id"]),
                    status="confirmed",
                    created_at=datetime.now(timezone.utc),
                )
                session.add(order)
                session.flush()
                payload = order.to_json()
        except SQLAlchemyError as exc:
            return _fail(span, 500, "storing the order failed", exc)

        span.set_attribute("order.id", payload["id"])
        state.orders_created.add(1, {"payment_method": method, "user_tier": tier})
        state.revenue.add(amount, {"payment_method": method})
        state.order_amount.record(amount, {"payment_method": method})
        _log.info(
            "order created: order_id=%d user_id=%d sku=%s amount_usd=%.2f payment_method=%s",
            payload["id"],
            user_id,
            sku,
            amount,
            method,
        )
        return jsonify(payload), 201


def _status_for(exc: requests.RequestException) -> int:
    """504 when the dependency was too slow, 502 when it could not be reached or answered badly."""
    return 504 if isinstance(exc, requests.Timeout) else 502


def _fail(
    span: trace.Span, status: int, reason: str, exc: BaseException | None = None
) -> ResponseReturnValue:
    """Mark the order span ERROR, log why, and build the 5xx answer."""
    if exc is not None:
        span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, reason))
    _log.warning("order failed: %s (HTTP %d)%s", reason, status, f": {exc}" if exc else "")
    return jsonify(error=reason), status


class InventoryReconciler:
    """Background job: every ``interval_s`` counts ordered units per SKU inside an INTERNAL span.

    It gives the demo a span that no request starts (a root span from a non-HTTP thread).
    Failures are logged and marked on the span; they never stop the thread.
    """

    def __init__(self, state: ShopState, interval_s: float) -> None:
        self._state = state
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inventory-reconcile", daemon=True)
        self.runs = 0

    def start(self) -> None:
        """Start the job thread."""
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the job to stop and wait for the current run to finish."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def is_alive(self) -> bool:
        """Whether the job thread is running."""
        return self._thread.is_alive()

    def run_once(self) -> dict[str, int]:
        """Reconcile once; returns units ordered per SKU."""
        with self._state.tracer.start_as_current_span(RECONCILE_SPAN_NAME, kind=SpanKind.INTERNAL) as span:
            query = select(Order.sku, func.sum(Order.quantity)).group_by(Order.sku)
            with self._state.sessions() as session:
                units = {sku: int(total or 0) for sku, total in session.execute(query).all()}
            span.set_attribute("inventory.skus", len(units))
            span.set_attribute("inventory.units_ordered", sum(units.values()))
            self.runs += 1
            return units

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                units = self.run_once()
            except Exception as exc:  # a failing run must not kill the job thread
                _log.warning("inventory reconcile failed: %s", exc)
            else:
                _log.debug("inventory reconciled: %d skus", len(units))


def shop_state(app: Flask) -> ShopState:
    """The shared state of an app built by :func:`create_app`."""
    state = app.extensions["shop"]
    assert isinstance(state, ShopState)
    return state


@contextmanager
def _database_location(configured: str | None) -> Iterator[str]:
    """Yield the configured database, or a SQLite file in a temporary directory removed afterwards."""
    if configured:
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix="otelpipe-demo-shop-") as tmp:
        yield str(Path(tmp) / "shop.db")


def _configure_logging() -> None:
    """Log INFO to stderr. `basicConfig` works under `opentelemetry-instrument` too: the logging
    instrumentation (and otelpipe) wrap it so their handlers do not make it a no-op."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access line per request is noise here


def main(argv: list[str] | None = None) -> int:
    """Run the shop until SIGTERM/SIGINT.

    Port from ``--port`` or env ``SHOP_PORT`` (8080); env ``SHOP_DB_URL`` (file path, ``:memory:`` or
    SQLAlchemy URL; default a temporary SQLite file), ``PAYMENTS_URL`` (http://127.0.0.1:8081),
    ``SHOP_HTTP_TIMEOUT_S`` (2), ``SHOP_RECONCILE_INTERVAL_S`` (5).
    """
    parser = argparse.ArgumentParser(description="otelpipe demo shop API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SHOP_PORT", "8080")))
    args = parser.parse_args(argv)
    _configure_logging()
    payments_url = os.environ.get("PAYMENTS_URL", "http://127.0.0.1:8081")
    timeout_s = float(os.environ.get("SHOP_HTTP_TIMEOUT_S", "2"))
    interval_s = float(os.environ.get("SHOP_RECONCILE_INTERVAL_S", "5"))
    with _database_location(os.environ.get("SHOP_DB_URL")) as db:
        app = create_app(db, payments_url, http_timeout_s=timeout_s)
        state = shop_state(app)
        reconciler = InventoryReconciler(state, interval_s)
        reconciler.start()
        _log.info("shop using database %s and payments at %s", db, payments_url)
        try:
            _serve_until_signal(app, args.host, args.port)
        finally:
            reconciler.stop()
            state.engine.dispose()
    return 0


def _serve_until_signal(app: Flask, host: str, port: int) -> None:
    """Serve with werkzeug's threaded server until SIGTERM/SIGINT, then stop cleanly.

    The server runs on a worker thread and the main thread waits, because ``shutdown()`` blocks
    until ``serve_forever`` returns. A normal return lets ``opentelemetry-instrument``'s atexit
    hooks flush telemetry. (Duplicated in payments.py: the demo apps share no code with otelpipe.)
    """
    server = make_server(host, port, app, threaded=True)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    worker = threading.Thread(target=server.serve_forever, name="shop-http", daemon=True)
    worker.start()
    _log.info("shop listening on http://%s:%d", host, server.server_port)
    while not stop.wait(0.5):
        pass
    _log.info("shop stopping")
    server.shutdown()
    server.server_close()
    worker.join(timeout=5.0)


if __name__ == "__main__":
    raise SystemExit(main())
