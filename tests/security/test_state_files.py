"""State files are private, symlink-proof and validated; SLO windows survive a clean shutdown (issue 12, item 4).

Measured before: files 0644 and directories 0755 (incident history world-readable), a symlink
planted as the state file made SQLite create or overwrite its target, a planted incident row
`{"v":1}` raised KeyError at start-up, and every clean shutdown lost the SLO windows.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from otelpipe.incidents.model import Incident
from otelpipe.incidents.store import FILENAME, IncidentStore
from otelpipe.slo.state import STATE_FILE_NAME, SavedSLO, SLOStateStore, read_saved
from otelpipe.state_files import UnsafeStateFile

SPEC = """\
version: otelpipe/v1
service: shop
slos:
  - {name: ok, objective: 99, sli: {kind: availability}}
"""

APP = """\
import otelpipe
from opentelemetry import trace
pipeline = otelpipe.configure()
tracer = trace.get_tracer("t")
for _ in range(7):
    with tracer.start_as_current_span("GET /x", kind=trace.SpanKind.SERVER):
        pass
pipeline.evaluation.tick()
print("SLO_ON", pipeline.slo_evaluator is not None and pipeline.slo_evaluator._state is not None)
pipeline.shutdown()
print("DONE")
"""


def _start_app(tmp_path: Path, state_dir: Path, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "slo.yaml"
    spec.write_text(SPEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_SERVICE_NAME="shop",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTELPIPE_SLO_FILE=str(spec),
        OTELPIPE_STATE_DIR=str(state_dir),
    )
    return subprocess.run(
        [sys.executable, "-c", APP],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: os.umask(umask),
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.integration
@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_shutdown_keeps_the_windows_and_state_is_private(tmp_path: Path, umask: int) -> None:
    state_dir = tmp_path / "var" / "lib" / "state"
    result = _start_app(tmp_path, state_dir, umask)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SLO_ON True" in result.stdout and "DONE" in result.stdout
    assert "could not save SLO state" not in result.stderr

    saved = read_saved(state_dir)  # written only by the shutdown flush (the periodic save is 60 s)
    assert saved["shop/ok"].status["total"] == 7

    for directory in (tmp_path / "var", tmp_path / "var" / "lib", state_dir):
        assert _mode(directory) == 0o700, directory
    files = [p for p in state_dir.iterdir()]
    assert {STATE_FILE_NAME, FILENAME} <= {p.name for p in files}
    for path in files:
        assert _mode(path) == 0o600, path


def test_an_existing_world_readable_state_file_is_tightened(tmp_path: Path) -> None:
    SLOStateStore(tmp_path).close()
    os.chmod(tmp_path / STATE_FILE_NAME, 0o644)
    SLOStateStore(tmp_path).close()
    assert _mode(tmp_path / STATE_FILE_NAME) == 0o600


@pytest.mark.parametrize("name", [STATE_FILE_NAME, FILENAME, STATE_FILE_NAME + "-wal", FILENAME + "-journal"])
@pytest.mark.parametrize("target_exists", [False, True], ids=["dangling", "existing"])
def test_a_planted_symlink_is_refused_and_its_target_untouched(
    tmp_path: Path, name: str, target_exists: bool
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    target = tmp_path / "precious"
    if target_exists:
        target.write_text("precious data")
    (state_dir / name).symlink_to(target)
    with pytest.raises(UnsafeStateFile, match="symlink"):
        if name.startswith(STATE_FILE_NAME):
            SLOStateStore(state_dir)
        else:
            IncidentStore(state_dir)
    if target_exists:
        assert target.read_text() == "precious data"
    else:
        assert not target.exists()


def test_the_cli_reader_refuses_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    SLOStateStore(real).close()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / STATE_FILE_NAME).symlink_to(real / STATE_FILE_NAME)
    with pytest.raises(UnsafeStateFile):
        read_saved(linked)


@pytest.mark.integration
def test_a_symlink_through_configure_keeps_the_app_running_in_memory(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    target = tmp_path / "created-by-sqlite"
    (state_dir / FILENAME).symlink_to(target)
    result = _start_app(tmp_path, state_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DONE" in result.stdout
    assert "OTELPIPE_STATE_DIR" in result.stderr and "kept in memory" in result.stderr
    assert not target.exists()


def _incident(key: str) -> Incident:
    return Incident(
        id=f"inc-{key}",
        dedup_key=f"otelpipe/{key}",
        key=key,
        service="shop",
        name=key.split("/")[1],
        kind="slo",
        severity="critical",
        status="open",
        summary="burning",
        opened_at=100.0,
        updated_at=100.0,
        last_notified_at=100.0,
    )


PLANTED = [
    '{"v":1}',
    "[1, 2]",
    "not json",
    "[" * 100_000,
    json.dumps({"id": 1, "v": 1}),
    json.dumps({**{k: "x" for k in ("id", "dedup_key", "key", "service", "name", "kind", "severity")},
                "status": "open", "summary": "s", "opened_at": "yesterday", "updated_at": 1, "last_notified_at": 1}),
    json.dumps({**{k: "x" for k in ("id", "dedup_key", "key", "service", "name", "kind", "severity")},
                "status": "open", "summary": "s", "opened_at": 1, "updated_at": 1, "last_notified_at": 1,
                "traces": [{"trace_id": "a"}]}),
]  # fmt: skip


def test_planted_incident_rows_are_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = IncidentStore(tmp_path)
    store.save(_incident("shop/good"))
    store.close()
    with sqlite3.connect(tmp_path / FILENAME) as db:
        for i, body in enumerate(PLANTED):
            db.execute(
                "INSERT INTO incidents (id, key, status, opened_at, resolved_at, body) VALUES (?, ?, 'open', ?, NULL, ?)",
                (f"planted-{i}", f"shop/p{i}", 50.0 + i, body),
            )
    db.close()
    caplog.set_level(logging.WARNING, logger="otelpipe")
    store = IncidentStore(tmp_path)
    try:
        assert [i.key for i in store.load_open()] == ["shop/good"]
    finally:
        store.close()
    warnings = [r for r in caplog.records if "malformed incident row" in r.getMessage()]
    assert len(warnings) == 1 and f"skipped {len(PLANTED)} " in warnings[0].getMessage()


def test_planted_slo_rows_are_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SLOStateStore(tmp_path)
    store.save([SavedSLO("shop/ok", b"\x00", {"total": 1}, 1.0)])
    with store._conn:  # planted rows, bypassing the typed writer
        store._conn.executemany(
            "INSERT INTO slo(key, rings, status, saved_at) VALUES (?, ?, ?, ?)",
            [
                ("shop/a", b"r", '{"v":1', 1.0),  # broken JSON
                ("shop/b", b"r", "[1]", 1.0),  # not a mapping
                ("shop/c", "text, not bytes", "{}", 1.0),
                ("shop/d", b"r", "{}", "yesterday"),
                ("shop/e", b"r", "[" * 100_000, 1.0),
            ],
        )
    caplog.set_level(logging.WARNING, logger="otelpipe")
    try:
        assert list(store.load()) == ["shop/ok"]
    finally:
        store.close()
    warnings = [r for r in caplog.records if "malformed SLO state row" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 5 " in warnings[0].getMessage()
