"""Cost of a stdlib log call inside a span: plain vs otelpipe correlation vs alternatives.

Also otelpipe's JsonFormatter vs python-json-logger on the same records. One process, median of
rounds; ratios are against the plain record measured in the same run.
Run: .venv/bin/python bench/log_record.py
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable

from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import get_current_span
from pythonjsonlogger.json import JsonFormatter as PjlFormatter

from otelpipe.processors.json_formatter import JsonFormatter
from otelpipe.processors.log_correlation import install_log_correlation
from otelpipe.processors.redaction import RedactingFilter, Redactor

ROUNDS = 9
CALLS = 20_000

tracer = TracerProvider().get_tracer("bench")
devnull = open(os.devnull, "w")  # noqa: SIM115 - lives for the whole run
handler = logging.StreamHandler(devnull)
logger = logging.getLogger("bench.log_record")
logger.handlers = [handler]
logger.propagate = False
logger.setLevel(logging.INFO)


class NaiveFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x")
        record.span_id = format(ctx.span_id, "016x")
        return True


def _round() -> float:
    with tracer.start_as_current_span("request"):
        start = time.perf_counter()
        for i in range(CALLS):
            logger.info("order %s paid", i, extra={"order_id": i})
        return (time.perf_counter() - start) / CALLS * 1e6


def median_us(setup: Callable[[], Callable[[], None]]) -> float:
    teardown = setup()
    try:
        _round()
        return statistics.median(_round() for _ in range(ROUNDS))
    finally:
        teardown()


def plain() -> Callable[[], None]:
    return lambda: None


def otelpipe_correlation() -> Callable[[], None]:
    return install_log_correlation("bench", "1.0", "bench").uninstall


def otelpipe_correlation_redaction() -> Callable[[], None]:
    """otelpipe's defaults on the app's stream handler: correlation fields and the redacting filter."""
    teardown = otelpipe_correlation()
    f = RedactingFilter(Redactor())
    handler.addFilter(f)

    def undo() -> None:
        handler.removeFilter(f)
        teardown()

    return undo


def naive_filter() -> Callable[[], None]:
    f = NaiveFilter()
    handler.addFilter(f)
    return lambda: handler.removeFilter(f)


def instrumentation_logging() -> Callable[[], None]:
    instrumentor = LoggingInstrumentor()
    instrumentor.instrument(inject_trace_context=True, enable_log_auto_instrumentation=False)
    return instrumentor.uninstrument


def with_formatter(formatter: logging.Formatter) -> Callable[[], Callable[[], None]]:
    def setup() -> Callable[[], None]:
        teardown = otelpipe_correlation()
        handler.setFormatter(formatter)

        def undo() -> None:
            handler.setFormatter(None)
            teardown()

        return undo

    return setup


def main() -> None:
    results = {
        "plain record": median_us(plain),
        "+ otelpipe correlation": median_us(otelpipe_correlation),
        "+ otelpipe corr. + redaction": median_us(otelpipe_correlation_redaction),
        "+ naive hex filter": median_us(naive_filter),
        "+ instrumentation-logging": median_us(instrumentation_logging),
        "plain record (again)": median_us(plain),
    }
    base = (results["plain record"] + results["plain record (again)"]) / 2
    print(f"log call inside a span, median of {ROUNDS} rounds x {CALLS} calls")
    for name, value in results.items():
        print(f"  {name:28s} {value:6.2f} us  {value / base:5.3f}x")
    otelpipe_json = median_us(with_formatter(JsonFormatter()))
    pjl = median_us(
        with_formatter(
            PjlFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s")
        )
    )
    print("JSON formatting (with correlation), whole log call")
    print(
        f"  otelpipe JsonFormatter       {otelpipe_json:6.2f} us  {otelpipe_json / pjl:5.3f}x of python-json-logger"
    )
    print(f"  python-json-logger           {pjl:6.2f} us")


if __name__ == "__main__":
    main()
