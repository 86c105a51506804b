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
import time

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


# The parent's span export is inside a gRPC call (the collector answers after 1 s) when its main
# thread forks. Unguarded, grpcio skips its fork handlers ("Other threads are currently calling
# into gRPC") and the child's exporter waits forever on the parent's call; guarded, the fork waits
# for the call to end and the child's spans arrive.
GRPC_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import otelpipe
    from opentelemetry import trace

    otelpipe.configure()
    provider = trace.get_tracer_provider()
    with trace.get_tracer("fork").start_as_current_span("from-parent"):
        pass
    threading.Thread(target=provider.force_flush, daemon=True).start()
    time.sleep(0.3)  # the export is now waiting for the slow collector's answer
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
        signal.alarm(20)
        with trace.get_tracer("fork").start_as_current_span("from-child"):
            pass
        provider.force_flush(10_000)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status), file=sys.stderr)
    """
)


def test_child_forked_mid_grpc_export_exports_over_grpc() -> None:
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    names: list[str] = []

    class SlowCollector(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: object, context: object) -> trace_service_pb2.ExportTraceServiceResponse:
            assert isinstance(request, trace_service_pb2.ExportTraceServiceRequest)
            batch = [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
            names.extend(batch)
            if "from-parent" in batch:
                time.sleep(1.0)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(SlowCollector(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
        env.update(
            OTEL_SERVICE_NAME="fork-probe",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
            OTEL_EXPORTER_OTLP_INSECURE="true",
        )
        done = subprocess.run(
            [sys.executable, "-c", GRPC_SCRIPT],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        server.stop(0)
    assert "child exit 0" in done.stderr, done.stderr[-2000:]
    assert "from-child" in names, (names, done.stderr[-2000:])
