"""Redaction cost and accuracy: hostile values per KB, a hostile Flask request vs a plain one.

    .venv/bin/python bench/redaction.py            # everything
    .venv/bin/python bench/redaction.py --quick    # fewer rounds

1. CPU time of `Redactor.redact_text` on adversarial values of 1, 4, 16 and 64 KB, per KB
   (flat per KB means linear; the replaced card scan was cubic: 4 KB of `1-1-…` took 8 s).
2. A Flask request under `otelpipe.configure()` (redaction on, exporters off) with a
   4,000-character `?q=1-1-1-…` vs a plain request, alternating in one run.
3. Accuracy (when tests/security/redaction_corpora.py exists): caught % on the secrets corpus,
   false-positive % on the ids corpus and on 100,000 random trace ids, span ids, UUIDs,
   timestamps and order numbers.

Prints figures; no pass/fail.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "1-1-1-…": lambda n: ("1-" * n)[:n],
    "1 1 1 …": lambda n: ("1 " * n)[:n],
    "4111 4111 …": lambda n: ("4111 " * n)[:n],
    "digit run": lambda n: "4" * n,
    "password=…": lambda n: ("password=" * n)[:n],
    "prose": lambda n: ("the quick brown fox jumps over the lazy dog " * n)[:n],
}


def _cpu(fn: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time()
        fn()
        best = min(best, time.thread_time() - start)
    return best


def per_kb(rounds: int) -> None:
    from otelpipe.processors.redaction import Redactor

    redactor = Redactor()
    sizes = (1, 4, 16, 64)
    print("1. redact_text CPU µs per KB (least of rounds)")
    print(f"   {'value':<14}" + "".join(f"{s:>8} KB" for s in sizes) + "   64KB/1KB per-KB ratio")
    for name, make in ADVERSARIAL.items():
        costs = []
        for size in sizes:
            text = make(size * 1024)
            costs.append(_cpu(lambda text=text: redactor.redact_text(text), rounds) / size * 1e6)
        print(f"   {name:<14}" + "".join(f"{c:>11.1f}" for c in costs) + f"   {costs[-1] / costs[0]:>8.2f}")


def flask_request(rounds: int) -> None:
    for variable in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"):
        os.environ[variable] = "none"
    os.environ["OTELPIPE_ACCESS_LOG_ENABLED"] = "true"
    import logging

    from flask import Flask
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    import otelpipe
    from otelpipe.pipeline import flask_instrumentor_kwargs

    pipeline = otelpipe.configure()
    logging.getLogger().handlers = [logging.NullHandler()]
    app = Flask("bench")

    @app.get("/ok")
    def ok() -> str:
        logging.getLogger("bench").info("handled")
        return "ok"

    FlaskInstrumentor().instrument_app(app, **flask_instrumentor_kwargs())
    client = app.test_client()
    plain_url, hostile_url = "/ok?q=hello", "/ok?q=" + ("1-" * 2000)[:4000]
    for url in (plain_url, hostile_url):
        assert client.get(url).status_code == 200
    plain: list[float] = []
    hostile: list[float] = []
    for _ in range(rounds):
        for url, into in ((plain_url, plain), (hostile_url, hostile)):
            start = time.perf_counter()
            client.get(url)
            into.append(time.perf_counter() - start)
    p, h = statistics.median(plain), statistics.median(hostile)
    print("2. Flask request under otelpipe.configure() (redaction on, access log on, exporters off)")
    print(f"   plain /ok?q=hello            median {p * 1e3:7.2f} ms")
    print(
        f"   /ok?q=1-1-1-… (4,000 chars)  median {h * 1e3:7.2f} ms   ({h / p:.2f}x plain, max {max(hostile) * 1e3:.1f} ms)"
    )
    pipeline.shutdown()


def span_cost(rounds: int, spans: int = 5000) -> None:
    """µs per span end with the Flask instrumentation's attributes: no redaction, redaction of a
    sampled span, redaction of an unsampled (RECORD_ONLY) span, alternating in one run."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, set_span_in_context

    from otelpipe.processors.redaction import Redactor
    from otelpipe.processors.sampling import RecordUnsampledSampler
    from otelpipe.processors.span_redaction import RedactingSpanProcessor

    attributes = {
        "http.method": "GET",
        "http.target": "/api/items/42?sort=asc",
        "http.url": "http://127.0.0.1:8000/api/items/42?sort=asc",
        "http.scheme": "http",
        "http.host": "127.0.0.1:8000",
        "net.peer.ip": "127.0.0.1",
        "http.user_agent": "python-requests/2.32",
        "http.route": "/api/items/<int:item_id>",
        "http.status_code": 200,
    }
    plain = TracerProvider(sampler=RecordUnsampledSampler(ParentBased(ALWAYS_ON))).get_tracer("b")
    redacting_provider = TracerProvider(sampler=RecordUnsampledSampler(ParentBased(ALWAYS_ON)))
    redacting_provider.add_span_processor(RedactingSpanProcessor(Redactor()))
    redacting = redacting_provider.get_tracer("b")
    unsampled = set_span_in_context(
        NonRecordingSpan(SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(0)))
    )

    def run(tracer: object, context: object) -> float:
        start = time.thread_time()
        for _ in range(spans):
            with tracer.start_as_current_span(
                "GET /api/items/<int:item_id>", context=context, kind=SpanKind.SERVER, attributes=attributes
            ):  # type: ignore[attr-defined]
                pass
        return (time.thread_time() - start) / spans * 1e6

    cases = {
        "no redaction, sampled": (plain, None),
        "redaction, sampled span": (redacting, None),
        "redaction, unsampled span": (redacting, unsampled),
    }
    best = {name: float("inf") for name in cases}
    for _ in range(rounds):
        for name, (tracer, context) in cases.items():
            best[name] = min(best[name], run(tracer, context))
    print("4. span end with 9 HTTP attributes, CPU µs per span (least of rounds)")
    base = best["no redaction, sampled"]
    for name, value in best.items():
        print(f"   {name:<28} {value:7.2f}   (+{value - base:.2f} µs)")


def accuracy(random_ids: int) -> None:
    corpora = ROOT / "tests" / "security" / "redaction_corpora.py"
    if not corpora.exists():
        return
    sys.path.insert(0, str(corpora.parent))
    import redaction_corpora as c

    from otelpipe.processors.redaction import Redactor

    redactor = Redactor()
    caught = sum(c.leaked_after(redactor, case) == [] for case in c.SECRETS)
    kept = sum(redactor.redact_text(text) == text for text in c.FALSE_POSITIVES)
    print("3. accuracy")
    print(f"   secrets corpus: {caught}/{len(c.SECRETS)} caught ({100 * caught / len(c.SECRETS):.1f} %)")
    print(f"   ids corpus: {len(c.FALSE_POSITIVES) - kept}/{len(c.FALSE_POSITIVES)} falsely masked")
    for kind in c.RANDOM_ID_KINDS:
        texts = c.random_ids(kind, random_ids)
        hit = sum(redactor.redact_text(text) != text for text in texts)
        print(
            f"   {random_ids:,} random {kind:<28} {hit:>5} masked as bare text ({100 * hit / random_ids:.4f} %)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and ids")
    args = parser.parse_args(argv)
    per_kb(3 if args.quick else 7)
    flask_request(50 if args.quick else 300)
    accuracy(10_000 if args.quick else 100_000)
    span_cost(3 if args.quick else 7)
    return 0


if __name__ == "__main__":
    sys.exit(main())
