"""The current context, the span in a context and a span context's fields, read without the API's calls.

Why: `context.get_current()` is two Python calls around one C-level `ContextVar.get`,
`trace.get_current_span(ctx)` two around one `ctx.get`, and each `SpanContext` property one call
around a tuple index; on the span, request and log-record paths they run several times a request.
Each fast read is checked once, at import, against the public API, and is None (or the public call)
where the SDK stores things differently, so its users fall back to the API.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from opentelemetry import context as context_api
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

__all__ = ["SPAN_CONTEXT_UNPACKS", "SPAN_KEY", "current_context"]


def _context_getter() -> Callable[[], Context]:
    """`context.get_current` as the default runtime context's C-level `ContextVar.get`, else itself."""
    runtime = getattr(context_api, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if isinstance(var, ContextVar):
        getter: Callable[[], Context] = var.get
        return getter
    return context_api.get_current


def _span_key() -> str | None:
    """The context key the current span lives under, learnt through the public API.

    The key itself is private (`opentelemetry.trace.propagation._SPAN_KEY`), so it is read off a
    context that `set_span_in_context` built. None unless that context is the one-key mapping it
    is today and `get_current_span` reads the span back from it.
    """
    try:
        keys = list(set_span_in_context(INVALID_SPAN, Context()))
        if len(keys) != 1 or not isinstance(keys[0], str):
            return None
        span = NonRecordingSpan(SpanContext(1, 1, False))
        return keys[0] if get_current_span(Context({keys[0]: span})) is span else None
    except Exception:  # import-time probes never fail the import: the public API is used instead
        return None


def _span_context_unpacks() -> bool:
    """Whether a `SpanContext` unpacks as (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid).

    It is a tuple whose properties index into it; unpacking it costs no call where the property
    reads cost one each. Also checks that `TraceFlags`' SAMPLED bit is what `.sampled` reads, which
    the fast readers test with `flags & TraceFlags.SAMPLED`.
    """
    try:
        flags = TraceFlags(TraceFlags.SAMPLED)
        state = TraceState([("k", "v")])
        context = SpanContext(0x1234, 0x56, is_remote=True, trace_flags=flags, trace_state=state)
        trace_id, span_id, is_remote, trace_flags, trace_state, valid = context  # type: ignore[misc]
    except Exception:
        return False
    return (
        (trace_id, span_id) == (context.trace_id, context.span_id)
        and is_remote is context.is_remote is True
        and trace_flags is context.trace_flags is flags
        and trace_state is context.trace_state is state
        and valid is context.is_valid is True
        and TraceFlags(1).sampled is True
        and TraceFlags(0).sampled is False
    )


current_context = _context_getter()
SPAN_KEY = _span_key()
SPAN_CONTEXT_UNPACKS = _span_context_unpacks()
