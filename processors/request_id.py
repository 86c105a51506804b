"""Per-request id kept in a contextvar, plus Flask instrumentation hooks that set and return it.

The id comes from the incoming ``X-Request-ID`` header, else W3C baggage ``request.id``, else 128
fresh random bits in hex (the form of ``uuid4().hex``); it is stamped on the server span as
``request.id`` and echoed in the response, so a user-visible id leads to the trace and to every log
line of the request.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping, MutableSequence
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import baggage
from opentelemetry.context import Context

from otelpipe.processors.context_reads import current_context

REQUEST_ID_HEADER = "X-Request-ID"
BAGGAGE_KEY = "request.id"
SPAN_ATTRIBUTE = "request.id"

_ENVIRON_HEADER = "HTTP_X_REQUEST_ID"
_LOWER_HEADER = REQUEST_ID_HEADER.lower()
# Incoming ids end up in log lines: refuse anything that could forge lines or blow up storage.
_VALID_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

_REQUEST_ID: ContextVar[str] = ContextVar("otelpipe_request_id", default="")

# Fresh ids from a generator of our own, seeded from the OS: `os.urandom` per request is a
# getrandom(2) system call, one more than the stock distro makes per request (an id names a request,
# it guards nothing, as the SDK's own random trace ids do not). Its own instance leaves the `random`
# module's sequence (the SDK's trace ids) alone; reseeded in a forked worker, whose copy of the state
# would otherwise repeat the parent's ids.
_FRESH_IDS = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_FRESH_IDS.seed)


def _baggage_key() -> str | None:
    """The context key W3C baggage lives under, read off a context ``set_baggage`` built.

    ``get_baggage`` is four Python calls around one ``ctx.get``; the key is private
    (``opentelemetry.baggage._BAGGAGE_KEY``). None (the public call is used) unless the context
    is the one-key mapping of a plain dict that it is today.
    """
    probe = baggage.set_baggage(BAGGAGE_KEY, "probe", Context())
    keys = list(probe)
    if len(keys) != 1 or not isinstance(keys[0], str) or type(probe[keys[0]]) is not dict:
        return None
    return keys[0] if baggage.get_baggage(BAGGAGE_KEY, Context({keys[0]: {BAGGAGE_KEY: "x"}})) == "x" else None


_current_context = current_context
_BAGGAGE_KEY = _baggage_key()


def _carried_request_id() -> object | None:
    """``baggage.get_baggage(BAGGAGE_KEY)`` in one C-level lookup where `_baggage_key` allows."""
    if _BAGGAGE_KEY is None:
        return baggage.get_baggage(BAGGAGE_KEY)
    entries = _current_context().get(_BAGGAGE_KEY)
    return entries.get(BAGGAGE_KEY) if type(entries) is dict else None


def get_request_id() -> str:
    """Return the request id of the current context, or "" outside a request."""
    return _REQUEST_ID.get()


def set_request_id(request_id: str) -> Token[str]:
    """Make ``request_id`` current; pass the token to :func:`reset_request_id` when done."""
    return _REQUEST_ID.set(request_id)


def reset_request_id(token: Token[str]) -> None:
    """Restore the request id that was current before :func:`set_request_id`."""
    _REQUEST_ID.reset(token)


def _valid(candidate: object) -> str | None:
    if isinstance(candidate, str) and _VALID_ID.fullmatch(candidate):
        return candidate
    return None


def request_id_from_environ(environ: Mapping[str, Any]) -> str:
    """Pick the id for a WSGI request: header, then baggage ``request.id``, then 32 random hex digits."""
    header = environ.get(_ENVIRON_HEADER)
    if header is not None and (found := _valid(header)) is not None:
        return found
    carried = _carried_request_id()
    if carried is not None and (found := _valid(carried)) is not None:
        return found
    return f"{_FRESH_IDS.getrandbits(128):032x}"


def flask_request_hook(span: Any, environ: Mapping[str, Any]) -> None:
    """``request_hook`` for FlaskInstrumentor: choose the request id, make it current, tag the span.

    Called as ``request_hook(span, flask.request.environ)`` by opentelemetry-instrumentation-flask
    0.66b1 after the server span started. Never raises into the app.
    """
    try:
        request_id = request_id_from_environ(environ)
        _REQUEST_ID.set(request_id)
        if span is not None and span.is_recording():
            span.set_attribute(SPAN_ATTRIBUTE, request_id)
    except Exception:
        return


def flask_response_hook(span: Any, status: str, response_headers: MutableSequence[tuple[str, str]]) -> None:
    """``response_hook`` for FlaskInstrumentor: echo the id in ``X-Request-ID`` and clear it.

    Called as ``response_hook(span, status, response_headers)`` just before WSGI start_response,
    so appending to ``response_headers`` reaches the client. The id is cleared afterwards so a
    reused worker thread does not stamp the previous request's id on unrelated logs.
    """
    try:
        request_id = _REQUEST_ID.get()
        if not request_id:
            return
        for name, _ in response_headers:  # a plain loop: no generator call per request
            # Only names starting with x/X can match: no lower() copy of Content-Type and the like.
            if name[:1] in ("x", "X") and name.lower() == _LOWER_HEADER:
                break
        else:
            response_headers.append((REQUEST_ID_HEADER, request_id))
        _REQUEST_ID.set("")
    except Exception:
        return
