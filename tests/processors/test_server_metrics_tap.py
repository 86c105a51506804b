"""Dropped HTTP server spans counted from the instrumentation's own measurements (quiet spans).

Each case serves the same requests twice through the real Flask (and WSGI middleware)
instrumentation: once with every span sampled (recording SDK spans, the reference) and once with
none (quiet server spans completed by the duration measurement), and compares RED series by
series: same dimensions, same calls and errors, every span counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import version
from typing import Any

import pytest
from flask import Flask, abort
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler
from opentelemetry.trace import SpanKind
from packaging.version import Version
from werkzeug.test import Client

from otelpipe.processors.red import REDSpanProcessor, REDStore
from otelpipe.processors.server_metrics_tap import QuietServerSpan, TappingMeterProvider
from otelpipe.processors.unsampled import LightUnsampledTracerProvider, UnsampledSpan


class Setup:
    """A light tracer provider and a tapping meter provider sharing one RED store, as configure() wires them."""

    def __init__(self, sampler: Sampler, tapped: bool = True) -> None:
        self.store = REDStore()
        red = REDSpanProcessor(self.store)
        self.tracer_provider = LightUnsampledTracerProvider(
            sampler=sampler, resource=Resource.create({"service.name": "shop"}), keep=red.attribute_names
        )
        self.tracer_provider.add_span_processor(red)
        self.reader = InMemoryMetricReader()
        self.meter_provider = TappingMeterProvider(metric_readers=[self.reader])
        if tapped:
            self.tracer_provider.server_tap = self.meter_provider.tap
        self.kinds: list[str] = []

    def series(self) -> dict[tuple[tuple[str, Any], ...], tuple[int, int, int]]:
        """Series key -> (calls, errors, spans in buckets) for server spans."""
        result = {}
        for series in self.store.snapshot().series:
            attributes = dict(series.attributes)
            if attributes.get("span.kind") != "SPAN_KIND_SERVER":
                continue
            key = tuple(sorted((k, v) for k, v in attributes.items()))
            result[key] = (series.calls, series.errors, sum(series.bucket_counts))
        return result


def _flask_app(setup: Setup, propagate: bool) -> Flask:
    app = Flask(__name__)
    app.config["PROPAGATE_EXCEPTIONS"] = propagate

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, int]:
        if item_id == 13:
            raise RuntimeError("unlucky")
        if item_id == 7:
            abort(503)
        if item_id == 4:
            abort(404)
        return {"id": item_id}

    FlaskInstrumentor().instrument_app(
        app, tracer_provider=setup.tracer_provider, meter_provider=setup.meter_provider
    )

    @app.before_request  # after the instrumentation's own: its span is current
    def note_span_type() -> None:
        setup.kinds.append(type(trace.get_current_span()).__name__)

    return app


# Flask's instrumentation before 0.64b0 does not close a raising request (no duration, no decrement):
# its dropped spans stay recording UnsampledSpans (the oldest supported set has 0.63b1).
FLASK_TAPPED = Version(version("opentelemetry-instrumentation-flask")) >= Version("0.64b0")
DROPPED_FLASK_SPAN = QuietServerSpan.__name__ if FLASK_TAPPED else UnsampledSpan.__name__

PATHS = [f"/items/{i}" for i in (1, 2, 4, 7, 13, 20, 21)] + ["/nowhere", "/items/x"]


def _serve_flask(setup: Setup, propagate: bool) -> list[int]:
    client = Client(_flask_app(setup, propagate))
    statuses = []
    for _ in range(3):
        for path in PATHS:
            try:
                statuses.append(client.get(path).status_code)
            except RuntimeError:  # propagated from the view: the server would answer 500
                statuses.append(500)
    return statuses


@pytest.mark.parametrize("propagate", [False, True], ids=["handled-errors", "propagated-exceptions"])
def test_flask_quiet_spans_give_the_same_red_series_as_recording_spans(propagate: bool) -> None:
    reference, quiet = Setup(ALWAYS_ON), Setup(ALWAYS_OFF)
    expected_statuses = _serve_flask(reference, propagate)
    assert _serve_flask(quiet, propagate) == expected_statuses
    assert set(quiet.kinds) == {DROPPED_FLASK_SPAN}  # every dropped server span was quiet (0.64b0+)
    assert set(reference.kinds) == {"_Span"}  # the SDK's recording span
    assert quiet.series() == reference.series()
    totals = [sum(v[i] for v in quiet.series().values()) for i in (0, 1, 2)]
    errors = sum(1 for status in expected_statuses if status >= 500)
    assert totals == [len(PATHS) * 3, errors, len(PATHS) * 3]
    assert errors == 6  # 503 and the exception, three rounds
    routes = {dict(key).get("http.route") for key in quiet.series()}
    assert "/items/<int:item_id>" in routes


def test_without_the_tap_dropped_server_spans_stay_recording() -> None:
    untapped = Setup(ALWAYS_OFF, tapped=False)
    reference = Setup(ALWAYS_ON)
    assert _serve_flask(untapped, False) == _serve_flask(reference, False)
    assert set(untapped.kinds) == {UnsampledSpan.__name__}
    assert untapped.series() == reference.series()


def _wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise ValueError("broken")
    status = "500 Internal Server Error" if path == "/fail" else "200 OK"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"ok"]


def _serve_wsgi(setup: Setup) -> list[int]:
    client = Client(
        OpenTelemetryMiddleware(
            _wsgi_app, tracer_provider=setup.tracer_provider, meter_provider=setup.meter_provider
        )
    )
    statuses = []
    for path in ["/a", "/fail", "/boom", "/a", "/b"]:
        try:
            statuses.append(client.get(path).status_code)
        except ValueError:
            statuses.append(500)
    return statuses


def test_wsgi_middleware_quiet_spans_give_the_same_red_series_as_recording_spans() -> None:
    reference, quiet = Setup(ALWAYS_ON), Setup(ALWAYS_OFF)
    assert _serve_wsgi(quiet) == _serve_wsgi(reference) == [200, 500, 500, 200, 200]
    assert quiet.series() == reference.series()
    assert sum(calls for calls, _, _ in quiet.series().values()) == 5
    assert sum(errors for _, errors, _ in quiet.series().values()) == 2


def test_the_instrumentations_measurements_are_unchanged_by_the_tap() -> None:
    """The tapped instruments still record every measurement into the app's own metrics."""
    quiet = Setup(ALWAYS_OFF)
    _serve_flask(quiet, False)
    data = quiet.reader.get_metrics_data()
    points = {
        metric.name: metric.data.data_points
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    durations = [name for name in ("http.server.duration", "http.server.request.duration") if name in points]
    assert durations  # the old, the new, or both (http/dup) semantic conventions
    for name in durations:
        assert sum(point.count for point in points[name]) == len(PATHS) * 3
    assert sum(point.value for point in points["http.server.active_requests"]) == 0


def test_a_span_that_is_never_measured_is_not_invented_and_a_quiet_span_is_not_recording() -> None:
    quiet = Setup(ALWAYS_OFF)
    _flask_app(quiet, False)  # instruments created: the Flask scope is tapped
    tracer = quiet.tracer_provider.get_tracer("opentelemetry.instrumentation.flask")
    span = tracer.start_span("GET /x", kind=SpanKind.SERVER, attributes={"http.method": "GET"})
    if not FLASK_TAPPED:
        assert type(span) is UnsampledSpan
        return
    assert isinstance(span, QuietServerSpan) and not span.is_recording()
    span.end()
    assert quiet.series() == {}  # waits for its measurement (or the request's close)
    other = quiet.tracer_provider.get_tracer("some.other.library").start_span("GET /y", kind=SpanKind.SERVER)
    assert type(other) is UnsampledSpan and other.is_recording()


_SEMCONV_MODES = ["http", "http/dup"]


@pytest.mark.parametrize("mode", _SEMCONV_MODES)
def test_the_same_series_under_the_new_http_semantic_conventions(mode: str) -> None:
    """The instrumentations read OTEL_SEMCONV_STABILITY_OPT_IN once per process: the cases above, in a fresh one."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OTEL_SEMCONV_STABILITY_OPT_IN": mode}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            __file__,
            "-k",
            "not semantic_conventions and not configure and not close_every_request",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "6 passed" in result.stdout  # every case above ran


_CONFIGURE_SCRIPT = """
import json
import otelpipe
from flask import Flask
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
pipeline = otelpipe.configure()
app = Flask("t")
kinds = []
@app.get("/items/<int:n>")
def item(n):
    kinds.append(type(trace.get_current_span()).__name__)
    return {"n": n}, (500 if n % 5 == 0 else 200)
FlaskInstrumentor().instrument_app(app)
client = app.test_client()
for n in range(40):
    client.get(f"/items/{n}")
series = [s for s in pipeline.red_store.snapshot().series if s.attributes.get("span.kind") == "SPAN_KIND_SERVER"]
print(json.dumps({"meter_provider": type(metrics.get_meter_provider()).__name__, "kinds": sorted(set(kinds)),
                  "calls": sum(s.calls for s in series), "errors": sum(s.errors for s in series)}))
pipeline.shutdown()
"""


def test_configure_taps_the_meter_provider_so_dropped_flask_spans_are_quiet_and_counted() -> None:
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_TRACES_SAMPLER="always_off",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="shop",
    )
    result = subprocess.run(
        [sys.executable, "-c", _CONFIGURE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "meter_provider": "TappingMeterProvider",
        "kinds": [DROPPED_FLASK_SPAN],
        "calls": 40,
        "errors": 8,
    }


@pytest.mark.parametrize(
    ("scope", "meter_version", "tapped"),
    [
        ("opentelemetry.instrumentation.flask", "0.63b1", False),
        ("opentelemetry.instrumentation.flask", "0.64b0", True),
        ("opentelemetry.instrumentation.flask", "0.66b1", True),
        ("opentelemetry.instrumentation.flask", None, False),
        ("opentelemetry.instrumentation.flask", "not-a-version", False),
        ("opentelemetry.instrumentation.wsgi", "0.63b1", True),
        ("opentelemetry.instrumentation.django", "0.66b1", False),
    ],
)
def test_only_instrumentations_that_close_every_request_are_tapped(
    scope: str, meter_version: str | None, tapped: bool
) -> None:
    provider = TappingMeterProvider(metric_readers=[InMemoryMetricReader()])
    meter = provider.get_meter(scope, meter_version)
    meter.create_histogram("http.server.duration")
    meter.create_up_down_counter("http.server.active_requests")
    assert (scope in provider.tap.ready) is tapped
