"""Build the pipeline from the environment with `otelpipe.configure()`, exercise it, print what came out.

Run in a subprocess per configuration (global SDK providers can be set once per process). Each
scenario observes a component's behaviour, not a settings field, so a break anywhere on the path
env -> Settings -> pipeline -> component shows up.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

import otelpipe
import otelpipe.pipeline


def _red(pipeline: Any) -> dict[str, Any]:
    tracer = trace.get_tracer("wiring.probe")
    for tier in ("gold", "silver", "bronze"):
        with tracer.start_as_current_span("GET /items", kind=SpanKind.SERVER) as span:
            span.set_attribute("http.route", "/items")
            span.set_attribute("http.request.method", "GET")
            span.set_attribute("user.tier", tier)
    with tracer.start_as_current_span("work", kind=SpanKind.INTERNAL):
        pass
    with tracer.start_as_current_span("call payments", kind=SpanKind.CLIENT) as client:
        client.set_attribute("peer.service", "payments")
        client.set_attribute("server.address", "payments")
    snapshot = pipeline.red_store.snapshot()
    return {
        "boundaries": list(snapshot.boundaries),
        "series": [
            {
                "attributes": {k: str(v) for k, v in s.attributes.items()},
                "calls": s.calls,
                "exemplars": len(s.exemplars),
            }
            for s in snapshot.series
        ],
        "edges": len(snapshot.edges),
        "overflow_spans": snapshot.overflow_spans,
    }


def _redaction(pipeline: Any) -> dict[str, Any]:
    tracer = trace.get_tracer("wiring.probe")
    with tracer.start_as_current_span("redact", kind=SpanKind.SERVER) as span:
        span.set_attribute("customfield", "visible-value")
        span.set_attribute("note", "order ORDER-12345 placed")
        finished = span
    pipeline.force_flush()  # spans are masked in the export thread, just before the exporter sends them
    logging.getLogger("wiring").warning("customfield=%s and ORDER-777", "visible-value")
    return {
        "span_attributes": {k: str(v) for k, v in (finished.attributes or {}).items()},
    }


def _incidents(pipeline: Any) -> dict[str, Any]:
    loop = pipeline.evaluation
    if loop is None:
        return {"evaluation": False}
    engine = loop.evaluation.engine
    notifiers = list(getattr(engine, "_notifiers", ()))
    return {
        "evaluation": True,
        "notifiers": [
            {
                "type": type(n).__name__,
                "format": getattr(n, "_format", None),
                "queue_size": getattr(getattr(n, "options", None), "queue_size", None),
                "timeout_s": getattr(n, "timeout_s", None),
                "url": getattr(n, "_url", getattr(n, "_endpoint", None)),
                "counted": getattr(n, "_counter", None) is not None,  # otelpipe.incident.notifications
            }
            for n in notifiers
        ],
        "trace_url_template": getattr(engine, "_template", None),
        "hold_down_s": getattr(engine, "_hold_down_s", None),
        "renotify_s": getattr(engine, "_renotify_s", None),
        "persistent_incidents": getattr(engine, "_store", None) is not None,
        "interval_s": loop.interval_s,
        "time_scale": getattr(loop.evaluation.evaluator, "_time_scale", None),
        "save_interval_s": getattr(loop.evaluation.evaluator, "_persist_interval", None),
        "persistent_windows": getattr(loop.evaluation.evaluator, "_state", None) is not None,
        "prefork": pipeline.prefork is not None,
        "threshold_rules": loop.evaluation.rules is not None,
        "metric_rules": getattr(loop.evaluation, "metric_rules", None) is not None,
        "metric_reader": pipeline.metric_reader is not None,
        "rebuilds_after_fork": getattr(loop, "_rebuild", None) is not None,
    }


def _logs(pipeline: Any) -> dict[str, Any]:
    """What a stdlib log record carries inside a span (log correlation), and the Flask hooks handed out."""
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    logging.getLogger("wiring.logs").addHandler(keep)
    tracer = trace.get_tracer("wiring.probe")
    with tracer.start_as_current_span("log inside", kind=SpanKind.SERVER):
        logging.getLogger("wiring.logs").warning("inside a span")
    hooks = otelpipe.pipeline.flask_instrumentor_kwargs()
    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    return {
        "trace_id": str(getattr(records[0], "trace_id", "")) if records else "",
        "request_hook": getattr(hooks.get("request_hook"), "__name__", None),
        "system_metrics": SystemMetricsInstrumentor().is_instrumented_by_opentelemetry,
        "logs_bridged": LoggingInstrumentor().is_instrumented_by_opentelemetry,
    }


def _prefork(pipeline: Any) -> dict[str, Any]:
    """Start the host evaluator's receiver (done at the first fork) and report how it forgets streams."""
    pipeline.prefork.start_receiver()
    merger = pipeline.prefork.merger
    return {"stale_after_s": merger.stale_after_ns / 1e9, "series_limit": merger.series_limit}


def _exports(pipeline: Any) -> dict[str, Any]:
    """What the export processors counted for a few spans and log records, after a flush."""
    tracer = trace.get_tracer("wiring.probe")
    for n in range(3):
        with tracer.start_as_current_span(f"export {n}", kind=SpanKind.SERVER):
            logging.getLogger("wiring.exports").warning("record %d", n)
    pipeline.force_flush()
    return {"exported": pipeline.export_counts.exported(), "dropped": len(pipeline.export_counts.dropped())}


def _sampled(pipeline: Any) -> dict[str, Any]:
    """Whether a new root span is sampled (exported), and whether RED still counted it."""
    with trace.get_tracer("wiring.probe").start_as_current_span("root", kind=SpanKind.SERVER) as span:
        sampled = span.get_span_context().trace_flags.sampled
    return {"sampled": sampled, "red_calls": sum(s.calls for s in pipeline.red_store.snapshot().series)}


def _sampler(pipeline: Any) -> dict[str, Any]:
    """The tracer provider's sampler class, and the decision it makes for a root span."""
    provider: Any = trace.get_tracer_provider()
    tracer = trace.get_tracer("wiring.probe")
    with tracer.start_as_current_span("root") as span:
        sampled = span.get_span_context().trace_flags.sampled
    # Whether a dropped span's children get their span context without the SDK's start_span.
    children = getattr(tracer, "_child_flags", None) is not None
    return {"class": type(provider.sampler).__name__, "sampled": sampled, "light_children": children}


def _metric_tick(pipeline: Any) -> dict[str, Any]:
    """Set an app metric, run one evaluation tick, name the incidents it opened."""
    from opentelemetry import metrics

    metrics.get_meter("wiring.probe").create_up_down_counter("wiring.queue.depth").add(5)
    events = pipeline.evaluation.tick()
    return {"events": sorted(f"{e.kind} {e.incident.name}" for e in events)}


def _forked(pipeline: Any) -> dict[str, Any]:
    """Fork like a pre-fork server and report, from the child, what evaluates there and where it keeps state."""
    import select

    if os.environ.get("WIRING_PROBE_NO_RECEIVER"):  # the host's loopback receiver cannot start

        def refuse(self: Any) -> Any:
            raise OSError("address in use (wiring probe)")

        import otelpipe.sink

        otelpipe.sink.OTLPReceiver.start = refuse  # type: ignore[method-assign]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, running no exit hook of the parent's
        try:
            loop = pipeline.evaluation
            evaluation = loop.evaluation
            report = {
                "evaluator": evaluation.evaluator is not None,
                "persistent_windows": getattr(evaluation.evaluator, "_state", None) is not None,
                "persistent_incidents": getattr(evaluation.engine, "_store", None) is not None,
                "ticking": loop._thread is not None and loop._thread.is_alive(),
            }
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], 60)  # deadline: a child that hangs fails the probe
    data = os.read(read_end, 65536) if ready else b"{}"
    if not ready:
        os.kill(pid, signal.SIGKILL)  # a hung child (we started it) must not hang the probe too
    os.waitpid(pid, 0)
    return dict(json.loads(data or b"{}"))


SCENARIOS = {
    "red": _red,
    "redaction": _redaction,
    "incidents": _incidents,
    "logs": _logs,
    "prefork": _prefork,
    "forked": _forked,
    "exports": _exports,
    "sampled": _sampled,
    "sampler": _sampler,
    "metric_tick": _metric_tick,
}


def main() -> None:
    if os.environ.get("WIRING_PROBE_NO_SYSTEM_METRICS"):  # as if the optional extra were not installed
        sys.modules["opentelemetry.instrumentation.system_metrics"] = None  # type: ignore[assignment]
    route = os.environ.get("WIRING_PROBE_ROUTE")
    if route == "opentelemetry-instrument":  # the configurator's route
        pipeline = otelpipe.pipeline.configure_from_auto_instrumentation()
    elif route == "settings-in-code":  # an app that parses its own mapping, not os.environ
        mapping = json.loads(os.environ["WIRING_PROBE_SETTINGS"])
        pipeline = otelpipe.configure(otelpipe.Settings.from_env(mapping))
    elif route == "sampler-in-code":  # an app that passes its own sampler, whatever OTEL_TRACES_SAMPLER says
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

        pipeline = otelpipe.configure(sampler=ALWAYS_OFF)
    else:
        pipeline = otelpipe.configure()
    out = {name: SCENARIOS[name](pipeline) for name in sys.argv[1:]}
    pipeline.shutdown()
    # what would hold the interpreter's exit once shutdown() has returned (it waits for these)
    out["exit_held_by"] = [
        t.name
        for t in threading.enumerate()
        if t.is_alive() and not t.daemon and t is not threading.main_thread()
    ]
    print("PROBE " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
