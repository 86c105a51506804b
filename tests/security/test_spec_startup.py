"""A hostile SLO file or a failing SLO/incident start-up is contained (issue 12, item 3).

Through `otelpipe.configure()` and `opentelemetry-instrument` in fresh interpreters (global
providers can be set once per process): the problem is reported once on the `otelpipe` logger,
RED and the rest of otelpipe stay on (no fall-back to the stock SDK), the bounded shutdown is
registered, and `OTELPIPE_STRICT=true` exits with a message naming the variable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_spec_file import alias_bomb

APP = """\
import atexit, logging, sys, time
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record)
logging.getLogger("otelpipe").addHandler(Keep(level=logging.ERROR))
FAULT = {fault!r}
if FAULT:
    import otelpipe.slo.evaluator as ev
    def boom(self, *a, **k):
        raise RuntimeError("evaluator exploded")
    ev.SLOEvaluator.__init__ = boom
import otelpipe
from opentelemetry import trace
started = time.perf_counter()
pipeline = otelpipe.configure()
print("CONFIGURE_S", time.perf_counter() - started)
with trace.get_tracer("t").start_as_current_span("GET /x", kind=trace.SpanKind.SERVER):
    pass
print("RED_SERIES", len(pipeline.red_store.snapshot().series))
print("SLO", pipeline.slo_evaluator is not None)
print("SLO_ERRORS", len([r for r in records if "OTELPIPE_SLO_FILE" in r.getMessage()]))
print("MESSAGES", " | ".join(r.getMessage() for r in records))
print("CURRENT", otelpipe.pipeline.current() is pipeline)
started = time.perf_counter()
pipeline.shutdown()
print("SHUTDOWN_S", time.perf_counter() - started)
"""


def _env(spec: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_PYTHON_DISTRO="otelpipe",  # beside opentelemetry-distro, install order would choose
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTELPIPE_SLO_FILE=str(spec),
        **extra,
    )
    return env


def _configure(tmp_path: Path, spec: Path, fault: bool = False, **extra: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", APP.format(fault=fault)],
        env=_env(spec, **extra),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,  # a FIFO used to block start-up forever
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "slo.fifo"
    os.mkfifo(path)
    return path


def _bomb(tmp_path: Path) -> Path:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    return path


def _deep(tmp_path: Path) -> Path:
    path = tmp_path / "deep.yaml"
    path.write_text("version: otelpipe/v1\nslos: " + "[" * 5000 + "]" * 5000 + "\n")
    return path


@pytest.mark.integration
@pytest.mark.parametrize("make_spec", [_bomb, _fifo, _deep], ids=["alias-bomb", "fifo", "deep"])
def test_hostile_spec_turns_only_slos_off(tmp_path: Path, make_spec) -> None:
    out = _configure(tmp_path, make_spec(tmp_path))
    assert float(out["CONFIGURE_S"]) < 20.0  # generous; the bomb cost 48 s and the FIFO forever
    assert out["RED_SERIES"] == "1"  # RED stays on
    assert out["SLO"] == "False"
    assert out["SLO_ERRORS"] == "1", out["MESSAGES"]
    assert "lol" not in out["MESSAGES"]
    assert out["CURRENT"] == "True"


@pytest.mark.integration
def test_any_exception_while_starting_slos_is_contained(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "version: otelpipe/v1\nservice: shop\nslos:\n  - {name: ok, objective: 99, sli: {kind: availability}}\n"
    )
    out = _configure(tmp_path, spec, fault=True, OTELPIPE_STATE_DIR=str(tmp_path / "state"))
    assert out["RED_SERIES"] == "1"
    assert out["SLO"] == "False"
    assert out["SLO_ERRORS"] == "1", out["MESSAGES"]
    assert "RuntimeError: evaluator exploded" in out["MESSAGES"]
    assert "SLO evaluation and incidents are off" in out["MESSAGES"]
    assert out["CURRENT"] == "True"
    assert float(out["SHUTDOWN_S"]) < 20.0


@pytest.mark.integration
def test_strict_any_exception_raises_a_config_error(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "version: otelpipe/v1\nservice: shop\nslos:\n  - {name: ok, objective: 99, sli: {kind: availability}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", APP.format(fault=True)],
        env=_env(spec, OTELPIPE_STRICT="true"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "ConfigError: OTELPIPE_SLO_FILE=" in result.stderr
    assert "RuntimeError: evaluator exploded" in result.stderr


def _instrumented(tmp_path: Path, spec: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    app = "import otelpipe.pipeline as p; print('APP RAN', p.current() is not None)"
    return subprocess.run(
        [instrument, sys.executable, "-c", app],
        env=_env(spec, **extra),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.integration
def test_instrumented_app_keeps_otelpipe_with_a_hostile_spec(tmp_path: Path) -> None:
    result = _instrumented(tmp_path, _bomb(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "APP RAN True" in result.stdout  # otelpipe configured, not the stock SDK fall-back
    assert "using the stock SDK setup" not in result.stderr
    assert result.stderr.count("OTELPIPE_SLO_FILE") == 1, result.stderr[-3000:]


@pytest.mark.integration
@pytest.mark.parametrize("make_spec", [_bomb, _fifo], ids=["alias-bomb", "fifo"])
def test_strict_instrumented_app_exits_with_the_message(tmp_path: Path, make_spec) -> None:
    result = _instrumented(tmp_path, make_spec(tmp_path), OTELPIPE_STRICT="true")
    assert result.returncode != 0
    assert "APP RAN" not in result.stdout
    assert "otelpipe: configuration error: OTELPIPE_SLO_FILE=" in result.stderr, result.stderr[-3000:]
    assert "lol" not in result.stderr
