"""Through `otelpipe.configure()`: a sampled span is exported masked (default and
OTELPIPE_REDACT_PATTERNS), an unsampled (RECORD_ONLY) span costs no redaction at all (issue 13),
and the RED series and service-graph edges built from either kind are exported masked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.integration]

SCRIPT = textwrap.dedent(
    """
    import json
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, set_span_in_context
    import otelpipe

    pipeline = otelpipe.configure()
    redactor = pipeline.redactor
    tracer = trace.get_tracer("t")
    unsampled = set_span_in_context(
        NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(0)))
    )
    before = redactor.texts_scanned
    for _ in range(20):
        with tracer.start_as_current_span("unsampled-span", context=unsampled, kind=SpanKind.SERVER) as span:
            span.set_attribute("note", "password=hunter22")
    after_unsampled = redactor.texts_scanned
    with tracer.start_as_current_span("sampled-span", kind=SpanKind.SERVER) as span:
        span.set_attribute("note", "password=hunter22 id ssn-123 to bob@example.com")
    pipeline.force_flush()  # masked in the export thread, just before the exporter sends it
    after_sampled = redactor.texts_scanned
    pipeline.shutdown()
    print("COUNTS " + json.dumps([before, after_unsampled, after_sampled]), flush=True)
    """
)


def test_configure_masks_sampled_spans_and_skips_unsampled_ones(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTELPIPE_REDACT_PATTERNS=r"(\w+\s?)+@example\.com;;ssn-\d{3}",
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts_line = next(line for line in done.stdout.splitlines() if line.startswith("COUNTS "))
    before, after_unsampled, after_sampled = json.loads(counts_line.split(" ", 1)[1])
    assert after_unsampled == before, "unsampled spans were scanned"
    assert after_sampled > after_unsampled
    exported = done.stdout
    assert '"name": "sampled-span"' in exported and "unsampled-span" not in exported
    assert "hunter22" not in exported and "ssn-123" not in exported and "bob@example.com" not in exported
    assert "password=[REDACTED]" in exported


STRUCTLOG_SCRIPT = textwrap.dedent(
    """
    import sys
    import otelpipe

    pipeline = otelpipe.configure()
    print("IMPORTED " + str("structlog" in sys.modules), flush=True)
    import structlog  # after configure(), as under opentelemetry-instrument

    structlog.configure(
        processors=[structlog.processors.JSONRenderer()], logger_factory=structlog.PrintLoggerFactory()
    )
    structlog.get_logger().info("login", password="hunter22", url="https://u:pw-struct@db")
    pipeline.shutdown()
    """
)


def test_configure_masks_structlog_imported_and_configured_later(tmp_path):
    pytest.importorskip("structlog")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    done = subprocess.run(
        [sys.executable, "-c", STRUCTLOG_SCRIPT],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "IMPORTED False" in done.stdout  # otelpipe did not import structlog itself
    line = next(line for line in done.stdout.splitlines() if '"event": "login"' in line)
    assert json.loads(line)["password"] == "[REDACTED]"
    assert "hunter22" not in done.stdout and "pw-struct" not in done.stdout


RED_SCRIPT = textwrap.dedent(
    """
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind
    import otelpipe

    pipeline = otelpipe.configure()
    tracer = trace.get_tracer("t")
    with tracer.start_as_current_span("GET /login?password=hunter22", kind=SpanKind.SERVER) as span:
        print("SAMPLED " + str(span.get_span_context().trace_flags.sampled), flush=True)
        span.set_attribute("http.route", "/pay/4111 1111 1111 1111")
        with tracer.start_as_current_span("call", kind=SpanKind.CLIENT) as client:
            client.set_attribute("peer.service", "Authorization: Bearer s3cr3tT0kenAbCdEf123456")
        with tracer.start_as_current_span("query", kind=SpanKind.CLIENT) as client:
            client.set_attribute("server.address", "db?password=hunter22")
    pipeline.shutdown()
    """
)


@pytest.mark.parametrize("ratio", ["0", "1"])
def test_configure_masks_exported_red_labels_of_sampled_and_unsampled_spans(tmp_path, ratio):
    """RED series and service-graph edges are built from every span; an unsampled span's
    attributes are never masked per span, so its labels must be masked in the store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG=ratio,
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="console",
        OTEL_LOGS_EXPORTER="none",
    )
    done = subprocess.run(
        [sys.executable, "-c", RED_SCRIPT],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    exported = done.stdout
    assert f"SAMPLED {ratio == '1'}" in exported
    assert '"span.name": "GET /login?password=[REDACTED]"' in exported
    assert '"http.route": "/pay/[REDACTED]"' in exported
    assert '"server": "Authorization: Bearer [REDACTED]"' in exported  # service-graph edges
    assert '"server": "db?password=[REDACTED]"' in exported
    leaked = [s for s in ("hunter22", "4111 1111", "s3cr3tT0ken") if s in exported + done.stderr]
    assert not leaked, leaked
