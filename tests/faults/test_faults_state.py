"""Scenario 10: the state directory is unusable, corrupt, or shared by two processes at once.

Root ignores permission bits (this suite may run as root), so "unusable" is simulated by a regular
file where the directory should be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from otelpipe.alerts import AlertState
from otelpipe.incidents.engine import IncidentEngine
from otelpipe.incidents.store import FILENAME, IncidentStore
from otelpipe.slo.state import STATE_FILE_NAME, SLOStateStore

FAULT_APP = Path(__file__).with_name("fault_app.py")
SLO_FILE = Path(__file__).parents[2] / "otelpipe" / "demo" / "slo.yaml"


def _firing(key: str, at: float = 1000.0) -> AlertState:
    return AlertState(key=key, service="shop", name=key, firing=True, severity="critical", summary="x", at=at)


def test_corrupt_state_files_are_moved_aside_and_replaced(tmp_path: Path, caplog) -> None:
    (tmp_path / FILENAME).write_bytes(b"\x00not sqlite" * 500)
    (tmp_path / STATE_FILE_NAME).write_bytes(b"\xffgarbage" * 500)
    incidents = IncidentStore(tmp_path)
    slo_state = SLOStateStore(tmp_path)
    try:
        engine = IncidentEngine(store=incidents, clock=lambda: 1000.0)
        engine.observe([_firing("shop/after-corruption")])
        assert [i.key for i in incidents.load_open()] == ["shop/after-corruption"]
        assert slo_state.load() == {}
    finally:
        slo_state.close()
        incidents.close()
    aside = sorted(p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name)
    assert len(aside) == 2, aside  # the damaged files are kept for inspection, not deleted
    assert any(
        FILENAME in record.getMessage() and "moved it" in record.getMessage() for record in caplog.records
    )


_WRITER = textwrap.dedent(
    """
    import sys
    from otelpipe.alerts import AlertState
    from otelpipe.incidents.engine import IncidentEngine
    from otelpipe.incidents.store import IncidentStore

    state_dir, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = IncidentStore(state_dir, timeout_s=30)
    engine = IncidentEngine(store=store, hold_down_s=0.0)
    for i in range(count):
        engine.observe([AlertState(key=f"{name}/{i}", service=name, name=str(i), firing=True,
                                   severity="error", summary="s", at=1000.0 + i)])
    store.close()
    print("done", flush=True)
    """
)


def test_two_processes_sharing_a_state_dir_lose_no_incident(tmp_path: Path) -> None:
    count = 60
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), name, str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alpha", "beta")
    ]
    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0 and "done" in out, err[-2000:]
    store = IncidentStore(tmp_path)
    try:
        keys = {incident.key for incident in store.history()}
    finally:
        store.close()
    assert keys == {f"{name}/{i}" for name in ("alpha", "beta") for i in range(count)}


@pytest.mark.integration
def test_unusable_state_dir_keeps_red_and_names_the_variable(
    tmp_path: Path, sink, otlp_env, instrumented_app
):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be")
    env = otlp_env(sink, OTELPIPE_STATE_DIR=str(blocker), OTELPIPE_SLO_FILE=str(SLO_FILE))
    app = instrumented_app(env, script=FAULT_APP)
    assert app.get("/burst?n=3") == 200
    with urllib.request.urlopen(app.base_url + "/stats", timeout=10) as response:
        stats = json.loads(response.read())
    output = app.stop()
    assert stats["calls"].get("SPAN_KIND_CLIENT") == 3, (stats, output)
    assert "OTELPIPE_STATE_DIR" in output, output
    assert "Traceback" not in output, output
    assert os.path.isfile(blocker)
