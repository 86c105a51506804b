"""A process forked while the parent collects or exports metrics still does both (gunicorn master -> workers).

Each case runs in its own interpreter: `configure()` sets the global providers once per process, and
forking the pytest process itself would copy its threads' locks too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")

# The parent is held inside a collection (a slow observable callback, as the system-metrics
# callbacks are for milliseconds every interval) or inside an export (a collector that accepts and
# never answers) while its main thread forks; the child then flushes under a 20 s alarm (an unblocked
# flush takes about the 1 s export timeout; a lock inherited held blocks it forever).
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import otelpipe
    from opentelemetry.metrics import Observation, get_meter_provider

    hold = sys.argv[1]
    otelpipe.configure()
    provider = get_meter_provider()
    inside, release, calls = threading.Event(), threading.Event(), []

    def callback(options):
        calls.append(1)
        inside.set()
        if hold == "collect":
            release.wait(30)  # the fork happens while this collection is held, however slow the machine
        return [Observation(1)]

    provider.get_meter("fork").create_observable_gauge("fork.gauge", callbacks=[callback])
    threading.Thread(target=provider.force_flush, daemon=True).start()
    assert inside.wait(10)
    if hold == "export":
        time.sleep(0.5)  # collection done; the export now waits on the silent collector
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
        signal.alarm(20)
        release.set()  # the child's own collection must not wait
        calls.clear()
        try:
            provider.force_flush()
        except Exception:
            pass  # the export itself fails against the silent collector; what counts is returning
        os._exit(0 if calls else 4)
    release.set()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child exit", os.waitstatus_to_exitcode(status), file=sys.stderr)
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print("child hung", file=sys.stderr)
    """
)


@pytest.mark.parametrize("hold", ["collect", "export"])
def test_child_forked_mid_collection_or_export_collects_and_exports(hold: str) -> None:
    silent = socket.socket()  # accepts connections (backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
        env.update(
            OTEL_SERVICE_NAME="fork-probe",
            OTEL_TRACES_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_METRICS_EXPORTER="console" if hold == "collect" else "otlp",
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{silent.getsockname()[1]}",
            OTEL_EXPORTER_OTLP_TIMEOUT="1",
            OTEL_METRIC_EXPORT_INTERVAL="600000",
        )
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, hold],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        silent.close()
    # 0: the child ran its own callbacks and returned; 3: a lock inherited held, waited on forever
    assert "child exit 0" in done.stderr, done.stderr[-2000:]
