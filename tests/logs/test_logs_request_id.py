from __future__ import annotations

import logging
import os
import re

import flask
import pytest
from opentelemetry import baggage, context
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.propagate import inject
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelpipe.access_log import install_flask_access_log
from otelpipe.processors.request_id import flask_request_hook, flask_response_hook, get_request_id


@pytest.fixture
def app_and_spans(tracer_provider, correlation, captured):
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    logger, handler = captured
    app = flask.Flask("shop")

    @app.route("/orders/<int:order_id>")
    def order(order_id: int) -> str:
        logger.info("handling order %s", order_id)
        return "ok"

    @app.route("/boom")
    def boom() -> str:
        raise ValueError("nope")

    install_flask_access_log(app, logger=logger)
    FlaskInstrumentor().instrument_app(
        app,
        request_hook=flask_request_hook,
        response_hook=flask_response_hook,
        tracer_provider=tracer_provider,
    )
    yield app, exporter, handler
    FlaskInstrumentor().uninstrument_app(app)


def test_incoming_header_is_used_logged_tagged_and_returned(app_and_spans):
    app, exporter, handler = app_and_spans
    response = app.test_client().get("/orders/7", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    view_record = next(r for r in handler.records if r.getMessage() == "handling order 7")
    assert view_record.request_id == "abc-123"
    span = exporter.get_finished_spans()[0]
    assert span.attributes["request.id"] == "abc-123"
    assert view_record.trace_id == format(span.context.trace_id, "032x")
    assert get_request_id() == ""


def test_generated_when_absent_and_invalid_header_replaced(app_and_spans):
    app, _, _ = app_and_spans
    client = app.test_client()
    first = client.get("/orders/1").headers["X-Request-ID"]
    forged = client.get("/orders/1", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert forged != "bad id with spaces" and len(forged) == 32 and forged != first


def test_baggage_request_id_used(app_and_spans):
    app, exporter, _ = app_and_spans
    headers: dict[str, str] = {}
    token = context.attach(baggage.set_baggage("request.id", "from-baggage"))
    try:
        inject(headers)
    finally:
        context.detach(token)
    response = app.test_client().get("/orders/2", headers=headers)
    assert response.headers["X-Request-ID"] == "from-baggage"
    assert exporter.get_finished_spans()[0].attributes["request.id"] == "from-baggage"


def test_access_log_lines(app_and_spans):
    app, _, handler = app_and_spans
    app.test_client().get("/orders/3", headers={"X-Request-ID": "r3"})
    app.test_client().get("/boom")
    started = [r for r in handler.records if r.getMessage().startswith("request started")]
    completed = [r for r in handler.records if r.getMessage().startswith("request completed")]
    assert len(started) == 2 and len(completed) == 2
    first = completed[0]
    assert getattr(first, "http.route") == "/orders/<int:order_id>"
    assert getattr(first, "http.response.status_code") == 200
    assert first.duration_ms >= 0
    assert first.request_id == "r3"
    assert first.trace_id != "0" * 32
    assert getattr(completed[1], "http.response.status_code") == 500


def test_hooks_outside_flask_never_raise_and_clear():
    flask_request_hook(None, {})
    assert len(get_request_id()) == 32
    flask_response_hook(None, "200 OK", None)  # type: ignore[arg-type]
    headers: list[tuple[str, str]] = []
    flask_response_hook(None, "200 OK", headers)
    assert headers == [("X-Request-ID", get_request_id() or headers[0][1])]
    assert get_request_id() == ""
    logging.getLogger("tests").info("fine")


def test_baggage_read_directly_or_through_the_public_api(monkeypatch):
    """The one-lookup baggage read and the public get_baggage fallback pick the same id."""
    from otelpipe.processors import request_id

    assert request_id._BAGGAGE_KEY is not None
    token = context.attach(baggage.set_baggage("request.id", "carried-1", baggage.set_baggage("other", "x")))
    try:
        direct = request_id.request_id_from_environ({})
        monkeypatch.setattr(request_id, "_BAGGAGE_KEY", None)
        public = request_id.request_id_from_environ({})
    finally:
        context.detach(token)
    assert direct == public == "carried-1"
    assert len(request_id.request_id_from_environ({})) == 32  # no baggage: a fresh id


def test_response_hook_keeps_an_id_the_app_set_itself():
    flask_request_hook(None, {"HTTP_X_REQUEST_ID": "mine-1"})
    headers = [("Content-Type", "text/plain"), ("x-request-id", "app-own"), ("X-Other", "1")]
    flask_response_hook(None, "200 OK", headers)
    assert headers == [("Content-Type", "text/plain"), ("x-request-id", "app-own"), ("X-Other", "1")]
    flask_request_hook(None, {"HTTP_X_REQUEST_ID": "mine-2"})
    headers = [("", "odd"), ("X-Other", "1")]
    flask_response_hook(None, "200 OK", headers)
    assert headers[-1] == ("X-Request-ID", "mine-2") and get_request_id() == ""


def test_fresh_ids_are_hex_do_not_touch_random_and_differ_in_a_forked_worker():
    """A fresh id is 32 hex digits, leaves the `random` sequence (the SDK's trace ids) alone, and a
    forked worker's ids are not the parent's: its copy of the generator is reseeded at fork."""
    import random

    from otelpipe.processors import request_id

    random.seed(7)
    expected = random.getrandbits(64)
    random.seed(7)
    fresh = {request_id.request_id_from_environ({}) for _ in range(50)}
    assert random.getrandbits(64) == expected
    assert len(fresh) == 50 and all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in fresh)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write_end, request_id.request_id_from_environ({}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child_id) == 32 and child_id != request_id.request_id_from_environ({})
