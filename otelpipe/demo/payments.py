"""Demo payments and inventory service: the shop's downstream dependency, with fault injection.

It exists so the demo has a real second hop (an HTTP client span in the shop, a server span here)
and a switch that makes it fail on purpose: ``PAYMENTS_ERROR_RATE`` / ``PAYMENTS_EXTRA_LATENCY_MS``
at start, ``POST /admin/faults`` at runtime. It is instrumented only from outside
(``opentelemetry-instrument``), so it deliberately imports nothing from otelpipe.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from opentelemetry import metrics
from werkzeug.serving import make_server

_log = logging.getLogger("demo.payments")

#: What the shop can buy; prices in USD. Small and fixed so traffic can pick valid SKUs.
CATALOG: Mapping[str, float] = {
    "sku-book": 12.5,
    "sku-mug": 8.0,
    "sku-shirt": 19.9,
    "sku-lamp": 45.0,
    "sku-headphones": 89.0,
}
#: Accepted payment methods; anything else is a client error (400), not an outage.
PAYMENT_METHODS = frozenset({"card", "paypal", "apple_pay"})
#: Upper bound on injected latency, so a typo cannot hang the demo for minutes.
MAX_EXTRA_LATENCY_MS = 30_000


@dataclass(frozen=True)
class FaultSettings:
    """Injected faults: the probability that ``/pay`` fails and the latency added to every call."""

    error_rate: float = 0.0
    latency_ms: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be within 0..1, got {self.error_rate!r}")
        if not 0 <= self.latency_ms <= MAX_EXTRA_LATENCY_MS:
            raise ValueError(f"latency_ms must be within 0..{MAX_EXTRA_LATENCY_MS}, got {self.latency_ms!r}")


class FaultInjector:
    """Thread-safe holder of the current faults; request threads read it, the admin endpoint swaps it."""

    def __init__(self, settings: FaultSettings | None = None, rng: random.Random | None = None) -> None:
        self._settings = settings or FaultSettings()
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    @property
    def settings(self) -> FaultSettings:
        """The faults in force now."""
        return self._settings

    def replace(self, settings: FaultSettings) -> None:
        """Switch to new faults; requests already sleeping keep their old latency."""
        self._settings = settings

    def delay(self) -> None:
        """Sleep for the injected latency (on the request thread: this is the fault)."""
        latency_ms = self._settings.latency_ms
        if latency_ms > 0:
            time.sleep(latency_ms / 1000.0)

    def injected_status(self) -> int | None:
        """Return 503 or 500 when this call should fail, else None."""
        error_rate = self._settings.error_rate
        if error_rate <= 0.0:
            return None
        with self._lock:  # random.Random is not documented as thread-safe
            roll = self._rng.random()
            status = 503 if self._rng.random() < 0.5 else 500
        return status if roll < error_rate else None


def faults_from_env(environ: Mapping[str, str]) -> FaultSettings:
    """Read ``PAYMENTS_ERROR_RATE`` (0..1) and ``PAYMENTS_EXTRA_LATENCY_MS`` (int ms); empty means 0."""
    raw_rate = environ.get("PAYMENTS_ERROR_RATE", "").strip() or "0"
    raw_latency = environ.get("PAYMENTS_EXTRA_LATENCY_MS", "").strip() or "0"
    try:
        return FaultSettings(error_rate=float(raw_rate), latency_ms=int(raw_latency))
    except ValueError as exc:
        raise ValueError(
            f"bad fault settings PAYMENTS_ERROR_RATE={raw_rate!r} PAYMENTS_EXTRA_LATENCY_MS={raw_latency!r}:"
            f" expected a float in 0..1 and an integer in 0..{MAX_EXTRA_LATENCY_MS} ({exc})"
        ) from exc


def create_app(injector: FaultInjector | None = None) -> Flask:
    """Build the payments/inventory Flask app around ``injector`` (a fresh, fault-free one by default)."""
    faults = injector or FaultInjector()
    app = Flask("demo.payments")
    app.extensions["fault_injector"] = faults
    # A business figure through the plain metrics API (the global provider opentelemetry-instrument set).
    charges = metrics.get_meter("demo.payments").create_counter(
        "payments.charges", unit="{charge}", description="Charge attempts by outcome"
    )

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return jsonify(status="ok")

    @app.get("/inventory/<sku>")
    def inventory(sku: str) -> ResponseReturnValue:
        faults.delay()
        price = CATALOG.get(sku)
        if price is None:
            return jsonify(error="unknown sku", sku=sku), 404
        return jsonify(sku=sku, in_stock=True, price_usd=price)

    @app.post("/pay")
    def pay() -> ResponseReturnValue:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(error="expected a JSON object"), 400
        amount = body.get("amount_usd")
        method = body.get("payment_method")
        if not isinstance(amount, (int, float)) or isinstance(amount, bool) or amount <= 0:
            return jsonify(error="amount_usd must be a positive number"), 400
        if method not in PAYMENT_METHODS:
            return jsonify(error=f"payment_method must be one of {sorted(PAYMENT_METHODS)}"), 400
        faults.delay()
        status = faults.injected_status()
        if status is not None:
            _log.warning("payment declined by injected fault: status=%d method=%s", status, method)
            charges.add(1, {"outcome": "failed", "payment_method": method})
            reason = "payment gateway unavailable" if status == 503 else "payment processor error"
            return jsonify(error=reason, injected=True), status
        charges.add(1, {"outcome": "approved", "payment_method": method})
        transaction_id = uuid.uuid4().hex
        return jsonify(transaction_id=transaction_id, status="approved", amount_usd=amount)

    @app.get("/admin/faults")
    def get_faults() -> ResponseReturnValue:
        return jsonify(_faults_json(faults.settings))

    @app.post("/admin/faults")
    def set_faults() -> ResponseReturnValue:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(error="expected a JSON object {error_rate, latency_ms}"), 400
        current = faults.settings
        try:
            new = FaultSettings(
                error_rate=float(body.get("error_rate", current.error_rate)),
                latency_ms=int(body.get("latency_ms", current.latency_ms)),
            )
        except (TypeError, ValueError) as exc:
            return jsonify(error=str(exc)), 400
        faults.replace(new)
        _log.info("faults set: error_rate=%.3f latency_ms=%d", new.error_rate, new.latency_ms)
        return jsonify(_faults_json(new))

    return app


def _faults_json(settings: FaultSettings) -> dict[str, Any]:
    return {"error_rate": settings.error_rate, "latency_ms": settings.latency_ms}


def _serve_until_signal(app: Flask, host: str, port: int) -> None:
    """Serve with werkzeug's threaded server until SIGTERM/SIGINT, then stop cleanly.

    The server runs on a worker thread and the main thread waits, because ``shutdown()`` blocks
    until ``serve_forever`` returns and so cannot be called from the serving thread's signal handler.
    A normal return lets ``opentelemetry-instrument``'s atexit hooks flush telemetry.
    """
    server = make_server(host, port, app, threaded=True)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    worker = threading.Thread(target=server.serve_forever, name="payments-http", daemon=True)
    worker.start()
    _log.info("payments service listening on http://%s:%d", host, server.server_port)
    while not stop.wait(0.5):
        pass
    _log.info("payments service stopping")
    server.shutdown()
    server.server_close()
    worker.join(timeout=5.0)


def _configure_logging() -> None:
    """Log INFO to stderr. `basicConfig` works under `opentelemetry-instrument` too: the logging
    instrumentation (and otelpipe) wrap it so their handlers do not make it a no-op."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access line per request is noise here


def main(argv: list[str] | None = None) -> int:
    """Run the payments service; port from ``--port`` or env ``PAYMENTS_PORT`` (default 8081)."""
    parser = argparse.ArgumentParser(description="otelpipe demo payments/inventory service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PAYMENTS_PORT", "8081")))
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        settings = faults_from_env(os.environ)
    except ValueError as exc:
        _log.error("%s", exc)
        return 2
    _log.info("faults at start: error_rate=%.3f latency_ms=%d", settings.error_rate, settings.latency_ms)
    _serve_until_signal(create_app(FaultInjector(settings)), args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
