"""Spans are masked where otelpipe builds the exporters, in the export thread, and nothing is masked
on the request thread there (issue 13: 0.025 of a request at 100 % sampling); every exporter
otelpipe does not build (the user's export processor, one added later) still gets the
request-thread RedactingSpanProcessor, so no path exports a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from google.protobuf.json_format import MessageToJson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, TraceFlags

from otelpipe.processors.export_drops import DropCountingBatchSpanProcessor, ExportDropCounts
from otelpipe.processors.redaction import Redactor
from otelpipe.processors.span_redaction import ExportRedaction

TOKEN = "s3cr3tT0kenAbCdEf123456"

SPAN = textwrap.dedent(
    """
    import json
    from opentelemetry import trace
    import otelpipe

    def processors(pipeline):
        return [type(p).__name__ for p in pipeline.tracer_provider._active_span_processor._span_processors]

    def secret_span(pipeline):
        before = pipeline.redactor.texts_scanned
        with trace.get_tracer("t").start_as_current_span("GET /reset?token=tk-123456") as span:
            span.set_attribute("password", "hunter22")
            span.set_attribute("note", "Authorization: Bearer TOKEN")
            span.add_event("mail to https://bob:pw-event@mail", {"api_key": "ev-secret"})
        return pipeline.redactor.texts_scanned - before
    """
).replace("TOKEN", TOKEN)

OWNED = SPAN + textwrap.dedent(
    """
    pipeline = otelpipe.configure()
    state = {"processors": processors(pipeline), "request_thread_scans": secret_span(pipeline)}
    pipeline.shutdown()
    print("STATE " + json.dumps(state), flush=True)
    """
)


def _run(script: str, env: dict[str, str], cwd: Any) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("STATE "))
    return json.loads(line.split(" ", 1)[1]), done.stdout + done.stderr


def _assert_masked(exported: str) -> None:
    leaked = [s for s in ("tk-123456", "hunter22", TOKEN, "pw-event", "ev-secret") if s in exported]
    assert not leaked, leaked
    assert "[REDACTED]" in exported


@pytest.mark.integration
def test_otlp_exporters_from_env_mask_in_the_export_thread(sink, otlp_env, wait_until, tmp_path):
    env = otlp_env(sink, protocol="http/protobuf", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    state, output = _run(OWNED, env, tmp_path)
    assert "DropCountingBatchSpanProcessor" in state["processors"]
    assert "RedactingSpanProcessor" not in state["processors"], state
    assert state["request_thread_scans"] == 0  # nothing scanned while the span ended
    assert wait_until(lambda: sink.store.totals()["traces"] >= 1, timeout=20), sink.store.totals()
    exported = "\n".join(MessageToJson(r.request) for r in sink.store.received("traces"))
    _assert_masked(exported + output)
    assert "GET /reset?token=[REDACTED]" in exported


USER_EXPORT = SPAN + textwrap.dedent(
    """
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    later = InMemorySpanExporter()
    if MODE == "export_span_processor":  # the user's own processor for the exporters from env
        pipeline = otelpipe.configure(export_span_processor=SimpleSpanProcessor)
        before = processors(pipeline)
    else:  # otelpipe's exporters, then the user adds an exporter of their own
        pipeline = otelpipe.configure()
        before = processors(pipeline)
        pipeline.tracer_provider.add_span_processor(SimpleSpanProcessor(later))
    state = {"before": before, "after": processors(pipeline), "request_thread_scans": secret_span(pipeline)}
    state["later"] = [repr((s.name, dict(s.attributes), [dict(e.attributes) for e in s.events]))
                      for s in later.get_finished_spans()]
    pipeline.shutdown()
    print("STATE " + json.dumps(state), flush=True)
    """
)


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["export_span_processor", "added_later"])
def test_exporters_otelpipe_does_not_build_get_the_request_thread_processor(tmp_path, mode):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    state, output = _run(USER_EXPORT.replace("MODE", repr(mode)), env, tmp_path)
    assert "RedactingSpanProcessor" in state["after"], state
    assert state["request_thread_scans"] > 0
    if mode == "added_later":
        assert "RedactingSpanProcessor" not in state["before"], state
        assert len(state["later"]) == 1 and "[REDACTED]" in state["later"][0]
        _assert_masked(state["later"][0])
    _assert_masked(output)  # the console exporter's output too
    assert '"name": "GET /reset?token=[REDACTED]"' in output


def test_export_redaction_masks_every_part_of_the_span_and_fails_closed():
    provider = TracerProvider(resource=Resource({"service.name": "shop", "db.password": "res-secret"}))
    exporter = InMemorySpanExporter()
    counts = ExportDropCounts()
    redaction = ExportRedaction(Redactor())
    provider.add_span_processor(DropCountingBatchSpanProcessor(exporter, counts, before_export=redaction))
    linked = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    tracer = provider.get_tracer("t")
    try:
        with tracer.start_as_current_span("GET /reset?token=tk-123456", links=[Link(linked, {"api_key": "lk"})]) as span:
            span.add_event("sent to https://bob:pw-event@mail", {"password": "ev"})
            span.set_attribute("raw", f"Authorization: Bearer {TOKEN}")
            raise RuntimeError("upstream said password=hunter22")
    except RuntimeError:
        pass
    assert redaction.spans_scanned == 0  # nothing on the thread that ended the span
    assert provider.force_flush(10_000)
    (exported,) = exporter.get_finished_spans()
    text = repr(
        (
            exported.name,
            exported.attributes,
            [(e.name, e.attributes) for e in exported.events],
            [link.attributes for link in exported.links],
            exported.status.description,
            exported.resource.attributes,
        )
    )
    for secret in ("tk-123456", "pw-event", "'ev'", "'lk'", TOKEN, "hunter22", "res-secret"):
        assert secret not in text, secret
    assert exported.name == "GET /reset?token=[REDACTED]"
    assert redaction.spans_scanned == 1 and redaction.failures == 0
    assert counts.exported() == {"traces": 1}

    def broken(batch: Any) -> None:
        raise RuntimeError("redaction broke")

    failing = TracerProvider()
    failing_exporter = InMemorySpanExporter()
    failing.add_span_processor(DropCountingBatchSpanProcessor(failing_exporter, counts, before_export=broken))
    with failing.get_tracer("t").start_as_current_span("s") as span:
        span.set_attribute("password", "hunter22")
    failing.force_flush(10_000)
    assert failing_exporter.get_finished_spans() == ()  # not exported unmasked
    assert counts.dropped()[("traces", "export_failed")] == 1
    provider.shutdown()
    failing.shutdown()
