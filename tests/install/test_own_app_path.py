"""The README's "Try it on your own app" path, run block by block in a fresh virtual environment.

A copy of the repository stands in for the clone; `~` is a temporary HOME. The install block runs
as printed (pip takes wheels from the machine's local cache), the sink and app blocks with free
ports in place of 4317 and 5000. Then a failing route must open an incident that the app prints,
the sink tails, and the CLI reads from the state directory; SQLAlchemy must be in the range the
package metadata declares, and `otelpipe check` must warn once a 2.1 is forced in.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", ".build", "build", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis"
)


def _block(name: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text.split(f"<!-- own-app:{name} -->", 1)[1]
    fence = "```python" if name == "app" else "```sh"
    return after.split(fence, 1)[1].split("```", 1)[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate, timeout: float, what: str, *logs: Path) -> None:  # type: ignore[no-untyped-def]
    """Poll `predicate`; on timeout fail with the tail of each of `logs` (what the processes said)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            tails = "".join(f"\n--- {log.name} (tail):\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
            raise AssertionError(f"timed out waiting for {what}{tails}")
        time.sleep(0.2)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process group this test started (each block runs in its own session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_own_app_path_from_the_readme_in_a_fresh_venv(tmp_path: Path) -> None:
    clone = tmp_path / "otelpipe"
    shutil.copytree(ROOT, clone, ignore=COPY_IGNORE)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_", "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    venv_bin = home / "otelpipe-try" / "bin"

    install = subprocess.run(
        ["bash", "-ec", _block("install")],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    version = subprocess.run(
        [str(venv_bin / "python"), "-c", "import sqlalchemy, flask; print(sqlalchemy.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert version.startswith("2.0."), version  # the range in otelpipe's own metadata, not a note

    grpc_port, app_port = _free_port(), _free_port()
    sink_out = tmp_path / "sink.out"
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(_block("app"))
    app_out, app_err = app_dir / "app.out", app_dir / "app.err"
    run = _block("run").replace("4317", str(grpc_port))
    # faster ticks and metric exports (the README's defaults are 10s and 60s), nothing else
    app_env = {
        **env,
        "PORT": str(app_port),
        "OTELPIPE_SLO_INTERVAL": "1s",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    }
    with (
        sink_out.open("wb") as sink_file,
        app_out.open("wb") as out_file,
        app_err.open("wb") as err_file,
    ):
        sink = subprocess.Popen(
            ["bash", "-ec", _block("sink").strip() + f" --grpc-port {grpc_port} --http-port -1"],
            cwd=tmp_path,
            env=env,
            stdout=sink_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # The app exports from its first request on: start it once the sink listens (on a slow host
        # the sink's start-up could otherwise cost the app's first exports their retries).
        _wait(lambda: _listening(grpc_port), 90, "the sink to listen", sink_out)
        app = subprocess.Popen(
            ["bash", "-ec", run],
            cwd=app_dir,
            env=app_env,
            stdout=out_file,
            stderr=err_file,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{app_port}"
            _wait(lambda: _get(f"{base}/items/1") == 200, 90, "the app to answer", app_err)
            assert [_get(f"{base}/items/{i}") for i in range(10)] == [200] * 10
            assert {_get(f"{base}/fail") for _ in range(20)} == {500}
            _wait(lambda: "OPENED [critical] myapp/availability" in app_err.read_text(), 60, "the incident", app_err)
            _wait(lambda: "INCIDENT myapp: opened" in sink_out.read_text(), 60, "the sink to tail it", sink_out, app_err)
            _wait(lambda: "traces.span.metrics.calls" in sink_out.read_text(), 30, "RED metrics")
            state = {**env, "OTELPIPE_STATE_DIR": str(app_dir / ".otelpipe-state")}
            _wait((app_dir / ".otelpipe-state" / "slo-state.sqlite").exists, 30, "saved SLO state")
            statuses: list[subprocess.CompletedProcess[str]] = []

            def saved_status_shows_the_page() -> bool:
                statuses.append(
                    subprocess.run(
                        [str(venv_bin / "otelpipe"), "slo", "status"],
                        env=state,
                        capture_output=True,
                        text=True,
                        timeout=60,
                        check=False,
                    )
                )
                return "FIRING page" in statuses[-1].stdout

            # The state is saved every OTELPIPE_STATE_SAVE_INTERVAL (5 s): poll until a save after the page.
            _wait(saved_status_shows_the_page, 60, "the saved SLO state to show the page")
            status = statuses[-1]
            incidents = subprocess.run(
                [str(venv_bin / "otelpipe"), "incidents", "list"],
                env=state,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            _stop(app)
            _stop(sink)

    checked = app_out.read_text()
    assert "SLO file" in checked and "1 SLO(s) and 0 rule(s) will run" in checked
    assert "configuration OK" in checked
    assert "burning" in app_err.read_text() and "(page fires at 14.4x)" in app_err.read_text()
    tailed = sink_out.read_text()
    assert "spans    myapp: " in tailed and "GET /items/<int:item_id>" in tailed
    assert "SELECT" in tailed  # SQLAlchemy was instrumented: database spans arrived
    assert "metrics  myapp: new " in tailed and "traces.span.metrics.calls" in tailed
    assert status.returncode == 0, status.stderr
    assert "myapp/availability" in status.stdout and "FIRING page" in status.stdout
    assert incidents.returncode == 0, incidents.stderr
    assert "myapp/availability" in incidents.stdout and "open" in incidents.stdout

    # a SQLAlchemy outside the instrumentation's range is not silently left uninstrumented
    forced = subprocess.run(
        [str(venv_bin / "pip"), "install", "-q", "sqlalchemy==2.1.1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if forced.returncode != 0:
        pytest.skip(f"SQLAlchemy 2.1.1 is not in this machine's wheel cache: {forced.stderr[-300:]}")
    check = subprocess.run(
        [str(venv_bin / "otelpipe"), "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "instrumentation sqlalchemy" in check.stderr and "is skipped" in check.stderr, check.stderr
