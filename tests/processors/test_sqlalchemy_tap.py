"""Dropped SQLAlchemy query spans described by SQLAlchemy's events (quiet query spans).

Each case runs the same queries twice through the real SQLAlchemy instrumentation on a real SQLite
database: once with every span sampled (recording SDK spans, the reference) and once with none
(quiet query spans, light recording connect spans), and compares RED series and service-graph edges
one by one: same dimensions, same calls and errors, every span counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from otelpipe.processors import sqlalchemy_tap as tap_module
from otelpipe.processors.red import REDSpanProcessor, REDStore
from otelpipe.processors.sqlalchemy_tap import QuietQuerySpan, sqlalchemy_tap
from otelpipe.processors.unsampled import LightUnsampledTracerProvider, UnsampledSpan

Series = dict[tuple[tuple[str, Any], ...], tuple[int, int, int]]


class Setup:
    """A light tracer provider feeding one RED store, as configure() wires it, and an instrumented engine."""

    def __init__(self, sampler: Sampler, database: Path, dimensions: tuple[str, ...] = ()) -> None:
        self.store = REDStore(dimensions=(*REDStore().dimensions, *dimensions))
        red = REDSpanProcessor(self.store)
        self.provider = LightUnsampledTracerProvider(
            sampler=sampler, resource=Resource.create({"service.name": "shop"}), keep=red.attribute_names
        )
        self.provider.add_span_processor(red)
        self.database = database
        self.span_types: list[str] = []

    @staticmethod
    def _key(attributes: Any) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted(dict(attributes).items()))

    def series(self) -> Series:
        """Series key -> (calls, errors, spans in buckets) for client spans."""
        return {
            self._key(s.attributes): (s.calls, s.errors, sum(s.bucket_counts))
            for s in self.store.snapshot().series
            if s.attributes.get("span.kind") == "SPAN_KIND_CLIENT"
        }

    def edges(self) -> Series:
        return {self._key(e.attributes): (e.calls, e.errors, sum(e.bucket_counts)) for e in self.store.snapshot().edges}

    def run_queries(self) -> list[str]:
        """Successful, failing and many-row statements on a file database; returns what each gave."""
        self.database.unlink(missing_ok=True)  # one path for both runs: span names carry the database
        engine = create_engine(f"sqlite:///{self.database}")
        SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=self.provider)
        try:
            # After the instrumentation's own listener: the span the query ran under, by type.
            event.listen(engine, "after_cursor_execute", self._note_span)
            outcomes = []
            for round_ in range(3):
                with engine.begin() as connection:
                    connection.execute(text("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)"))
                    connection.execute(
                        text("INSERT INTO items (name) VALUES (:name)"), [{"name": f"n{round_}-{i}"} for i in range(3)]
                    )
                    count = connection.execute(text("SELECT count(*) FROM items")).scalar_one()
                    outcomes.append(f"count {count}")
                for statement in ("SELECT * FROM no_such_table", "SELECT nonsense("):
                    try:
                        with engine.connect() as connection:
                            connection.execute(text(statement))
                    except OperationalError:
                        outcomes.append("failed")
            return outcomes
        finally:
            SQLAlchemyInstrumentor().uninstrument()
            engine.dispose()

    def _note_span(self, conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: Any) -> None:
        self.span_types.append(type(getattr(context, "_otel_span", None)).__name__)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Setup, Setup]]:
    yield Setup(ALWAYS_ON, tmp_path / "shop.db"), Setup(ALWAYS_OFF, tmp_path / "shop.db")


def test_quiet_query_spans_give_the_same_red_series_and_edges_as_recording_spans(pair: tuple[Setup, Setup]) -> None:
    reference, quiet = pair
    outcomes = reference.run_queries()
    assert quiet.run_queries() == outcomes
    assert outcomes.count("failed") == 6
    assert set(quiet.span_types) == {QuietQuerySpan.__name__}
    assert set(reference.span_types) == {"_Span"}
    assert quiet.series() == reference.series()
    assert quiet.edges() == reference.edges()
    series = quiet.series()
    by_name: dict[str, list[int]] = {}
    for key, (calls, errors, _) in series.items():
        totals = by_name.setdefault(str(dict(key)["span.name"]).split()[0], [0, 0])
        totals[0] += calls
        totals[1] += errors
    # 3 rounds: a transaction's CREATE, INSERT (one executemany) and SELECT, then two failing queries.
    assert by_name["SELECT"] == [3 + 6, 6]
    assert by_name["INSERT"] == [3, 0]
    assert by_name["connect"] == [9, 0]  # light recording spans: db.system set by the instrumentation
    assert {dict(key).get("db.system") for key in series} == {"sqlite"}
    assert {dict(key)["server"] for key in quiet.edges()} == {"sqlite"}


# The statement and operation keys the instrumentation sets, by OTEL_SEMCONV_STABILITY_OPT_IN (database part).
_PER_QUERY_KEYS = {
    "": {"db.statement", "db.operation"},
    "database": {"db.query.text", "db.operation.name"},
    "database/dup": {"db.statement", "db.operation", "db.query.text", "db.operation.name"},
}[os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")]


@pytest.mark.parametrize("name", ["db.statement", "db.query.text"])
def test_a_per_query_dimension_keeps_query_spans_recording(tmp_path: Path, name: str) -> None:
    """The statement as a RED dimension: only a recording span carries it, so no quiet span in that mode."""
    reference = Setup(ALWAYS_ON, tmp_path / "shop.db", dimensions=(name,))
    dropped = Setup(ALWAYS_OFF, tmp_path / "shop.db", dimensions=(name,))
    reference.run_queries()
    dropped.run_queries()
    carried = any(dict(key).get(name) == "SELECT count(*) FROM items" for key in reference.series())
    assert carried is (name in _PER_QUERY_KEYS)
    assert set(dropped.span_types) == {UnsampledSpan.__name__ if carried else QuietQuerySpan.__name__}
    assert dropped.series() == reference.series()


@pytest.mark.parametrize(
    ("version", "tapped"),
    [("0.62b0", False), ("0.63b0", True), ("0.63b1", True), ("0.66b1", True), ("0.67b0", False), (None, False), ("x", False)],
)
def test_only_known_instrumentation_versions_get_quiet_query_spans(version: str | None, tapped: bool) -> None:
    assert (sqlalchemy_tap(frozenset({"db.system"}), version) is not None) is tapped


@pytest.mark.parametrize("name", ["db.statement", "db.query.text", "db.operation", "db.operation.name"])
def test_no_tap_when_red_reads_a_per_query_attribute_of_the_mode(name: str) -> None:
    tap = sqlalchemy_tap(frozenset({"db.system", name}), "0.66b1")
    assert (tap is None) is (name in _PER_QUERY_KEYS)


def test_a_description_that_fails_still_counts_the_query_and_never_reaches_the_app(
    pair: tuple[Setup, Setup], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, quiet = pair

    def broken(*_: Any) -> dict[str, Any]:
        raise RuntimeError("engine attributes unreadable")

    original = tap_module.sqlalchemy_tap

    def tap_with_broken_description(keep: frozenset[str], version: str | None) -> Any:
        tap = original(keep, version)
        assert tap is not None
        tap._describe_engine = broken
        return tap

    monkeypatch.setattr(tap_module, "sqlalchemy_tap", tap_with_broken_description)
    outcomes = quiet.run_queries()
    assert outcomes.count("failed") == 6
    queries = {k: v for k, v in quiet.series().items() if dict(k)["span.name"] != "connect"}
    assert sum(calls for calls, _, _ in queries.values()) == 3 * 3 + 6
    assert sum(errors for _, errors, _ in queries.values()) == 6
    assert all("db.system" not in dict(key) for key in queries)  # counted, without the engine's attributes


def test_the_listeners_are_installed_once_per_process() -> None:
    sqlalchemy_tap(frozenset({"db.system"}), "0.66b1")
    sqlalchemy_tap(frozenset({"db.system"}), "0.66b1")
    assert event.contains(Engine, "after_cursor_execute", tap_module._after_cursor_execute)
    assert event.contains(Engine, "handle_error", tap_module._handle_error)
    with create_engine("sqlite://").connect() as connection:
        listeners = list(connection.dispatch.after_cursor_execute)
    assert listeners.count(tap_module._after_cursor_execute) == 1


_SEMCONV_MODES = ["database", "database/dup"]


@pytest.mark.parametrize("mode", _SEMCONV_MODES)
def test_the_same_series_under_the_new_database_semantic_conventions(mode: str) -> None:
    """The instrumentation reads OTEL_SEMCONV_STABILITY_OPT_IN once per process: the cases above, in a fresh one."""
    import subprocess
    import sys

    env = {**os.environ, "OTEL_SEMCONV_STABILITY_OPT_IN": mode}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", __file__,
         "-k", "quiet_query_spans_give_the_same or per_query_dimension or per_query_attribute or fails_still"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "8 passed" in result.stdout  # every case above ran


_CONFIGURE_SCRIPT = """
import json, sys
import otelpipe
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
pipeline = otelpipe.configure()
SQLAlchemyInstrumentor().instrument()  # wraps sqlalchemy.create_engine: imported after
import sqlalchemy
from sqlalchemy import event, text
engine = sqlalchemy.create_engine("sqlite:///" + sys.argv[1])
kinds = []
event.listen(engine, "after_cursor_execute", lambda *a: kinds.append(type(getattr(a[4], "_otel_span", None)).__name__))
for n in range(20):
    with engine.connect() as connection:
        try:
            connection.execute(text("SELECT 1" if n % 4 else "SELECT * FROM missing"))
        except Exception:
            pass
series = [s for s in pipeline.red_store.snapshot().series
          if s.attributes.get("span.kind") == "SPAN_KIND_CLIENT" and s.attributes["span.name"] != "connect"]
print(json.dumps({"kinds": sorted(set(kinds)), "calls": sum(s.calls for s in series),
                  "errors": sum(s.errors for s in series),
                  "systems": sorted({str(s.attributes.get("db.system")) for s in series})}))
pipeline.shutdown()
"""


def test_configure_makes_dropped_query_spans_quiet_and_counts_them(tmp_path: Path) -> None:
    import json
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
        [sys.executable, "-c", _CONFIGURE_SCRIPT, str(tmp_path / "shop.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Failing queries never reach after_cursor_execute: only the 15 that ran are noted.
    assert report == {"kinds": [QuietQuerySpan.__name__], "calls": 20, "errors": 5, "systems": ["sqlite"]}
