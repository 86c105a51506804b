"""`otelpipe sink` against hostile clients on real loopback sockets: every cost is bounded.

Each case sends what a broken or malicious client could (bad Content-Length, a gzip bomb, floods of
requests, idle connections, a flood to the -o file) and asserts the answer (400/413/503), the bound
(bytes kept, memory, threads, file size) and that the sink still serves a normal export afterwards.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otelpipe.sink import OTLPSink, ReceiverLimits, SinkStore
from otelpipe.sink.body import BodyError, content_length, decode_body

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_growth(action: Callable[[], object]) -> tuple[object, int]:
    """Run `action`, sampling this process's RSS every 5 ms; return its result and the peak growth."""
    baseline = _rss()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, _rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join(5)
    return result, max(peak, _rss()) - baseline


def raw_http(port: int, head: bytes, body: bytes = b"", timeout: float = 10.0) -> bytes:
    """Send raw bytes, return whatever comes back until the server closes or answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except ConnectionResetError:
            pass
        return b"".join(chunks)


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def post_head(length: str | None, *, encoding: str | None = None, path: str = "/v1/traces") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/x-protobuf"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if encoding:
        lines.append(f"Content-Encoding: {encoding}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def export_one_span(sink: OTLPSink, name: str = "still-alive") -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "security"}))
    provider.add_span_processor(
        SimpleSpanProcessor(HttpSpanExporter(endpoint=f"{sink.http_endpoint}/v1/traces", timeout=5))
    )
    with provider.get_tracer("t").start_as_current_span(name):
        pass
    provider.shutdown()


def assert_still_serves(sink: OTLPSink) -> None:
    before = sink.store.totals()["traces"]
    export_one_span(sink)
    assert sink.store.totals()["traces"] == before + 1


@pytest.fixture
def make_sink() -> Iterator[Callable[..., OTLPSink]]:
    started: list[OTLPSink] = []

    def make(store: SinkStore | None = None, **limits: float) -> OTLPSink:
        sink = OTLPSink(store or SinkStore(), grpc_port=None, http_port=0, limits=ReceiverLimits(**limits))  # type: ignore[arg-type]
        started.append(sink.start())
        return sink

    yield make
    for sink in started:
        sink.stop()


def span_request(size: int) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.name = "x" * size
    span.trace_id = b"\x01" * 16
    span.span_id = b"\x02" * 8
    return request.SerializeToString()


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "+5", " 12_0", "99999999999999999999999"])
def test_malformed_content_length_is_a_400_with_one_log_line(
    make_sink: Callable[..., OTLPSink],
    length: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    sink = make_sink()
    caplog.set_level(logging.WARNING, logger="otelpipe")
    reply = raw_http(sink.http_port, post_head(length), b"\x00" * 16)  # type: ignore[arg-type]
    assert status_of(reply) == 400
    assert "Traceback" not in capfd.readouterr().err
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("otelpipe")]
    assert all("\n" not in line for line in lines)
    assert sink.store.totals()["traces"] == 0
    assert_still_serves(sink)


def test_oversized_content_length_is_refused_before_reading(make_sink: Callable[..., OTLPSink]) -> None:
    sink = make_sink(max_request_bytes=1 * MiB)
    started = time.monotonic()
    reply = raw_http(sink.http_port, post_head(str(512 * MiB)))  # type: ignore[arg-type]  # no body sent at all
    assert status_of(reply) == 413
    assert time.monotonic() - started < 5  # answered without waiting for 512 MiB
    assert_still_serves(sink)


def test_missing_content_length_is_411(make_sink: Callable[..., OTLPSink]) -> None:
    sink = make_sink()
    assert status_of(raw_http(sink.http_port, post_head(None))) == 411  # type: ignore[arg-type]


def gzip_bomb(inflated_mib: int) -> bytes:
    """A valid gzip member of `inflated_mib` MiB of zeros, about 1 KiB per MiB (blocks repeat after a full flush)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    zeros = bytes(MiB)
    for _ in range(inflated_mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = b"\x03\x00" + struct.pack("<II", crc, (inflated_mib * MiB) & 0xFFFFFFFF)
    return header + block * inflated_mib + trailer


def test_gzip_bomb_is_refused_once_the_inflated_size_passes_the_cap(
    make_sink: Callable[..., OTLPSink],
) -> None:
    bomb = gzip_bomb(1024)  # 1 MiB on the wire, 1 GiB inflated
    assert len(bomb) < 2 * MiB
    sink = make_sink(max_request_bytes=8 * MiB)
    reply, growth = peak_rss_growth(
        lambda: raw_http(sink.http_port, post_head(str(len(bomb)), encoding="gzip"), bomb)  # type: ignore[arg-type]
    )
    assert status_of(reply) == 413  # type: ignore[arg-type]
    assert growth < 64 * MiB, f"RSS grew {growth / MiB:.0f} MiB inflating a bomb capped at 8 MiB"
    print(f"\ngzip bomb {len(bomb) / MiB:.1f} MiB -> 1 GiB: 413, RSS +{growth / MiB:.1f} MiB")
    assert_still_serves(sink)


def test_decode_body_caps_deflate_and_rejects_garbage() -> None:
    payload = span_request(1000)
    assert decode_body(zlib.compress(payload), "deflate", cap=MiB) == payload
    with pytest.raises(BodyError) as too_big:
        decode_body(zlib.compress(bytes(4 * MiB)), "deflate", cap=MiB)
    assert too_big.value.status == 413
    with pytest.raises(BodyError) as garbage:
        decode_body(b"\x1f\x8bnot gzip at all", "gzip", cap=MiB)
    assert garbage.value.status == 400
    with pytest.raises(BodyError) as truncated:
        decode_body(zlib.compress(payload)[:-8], "deflate", cap=MiB)
    assert truncated.value.status == 400
    with pytest.raises(BodyError) as unknown:
        decode_body(payload, "br", cap=MiB)
    assert unknown.value.status == 415
    with pytest.raises(BodyError):
        content_length(["10", "11"], transfer_encoding=None, cap=MiB)


def test_retained_requests_are_bounded_in_bytes(make_sink: Callable[..., OTLPSink]) -> None:
    store = SinkStore(max_bytes=1 * MiB)
    sink = make_sink(store)
    body = span_request(100_000)
    for _ in range(40):  # 4 MB sent, 1 MiB may be kept
        assert status_of(raw_http(sink.http_port, post_head(str(len(body))), body)) == 200  # type: ignore[arg-type]
    assert store.totals()["traces"] == 40  # every request still counted
    assert store.kept_bytes() <= 1 * MiB
    kept = store.received("traces")
    assert 1 <= len(kept) <= 10
    assert sum(r.request.ByteSize() for r in kept) == store.kept_bytes()


def test_idle_connections_are_closed_after_the_idle_timeout(make_sink: Callable[..., OTLPSink]) -> None:
    sink = make_sink(idle_timeout_s=0.5)
    with socket.create_connection(("127.0.0.1", sink.http_port), timeout=10) as sock:  # type: ignore[arg-type]
        started = time.monotonic()
        assert sock.recv(1) == b""  # the server hung up on a silent client
        assert time.monotonic() - started < 5
    # a body that never completes is cut off too
    with socket.create_connection(("127.0.0.1", sink.http_port), timeout=10) as sock:  # type: ignore[arg-type]
        sock.sendall(post_head("1000") + b"\x00" * 10)
        started = time.monotonic()
        reply = sock.recv(65536)
        assert reply == b"" or status_of(reply) == 408
        assert time.monotonic() - started < 5


def _handler_threads() -> int:
    return sum(
        1 for t in threading.enumerate() if t.name.startswith("Thread-") and "process_request" in t.name
    )


def test_connections_beyond_the_limit_get_503_and_threads_stay_bounded(
    make_sink: Callable[..., OTLPSink],
) -> None:
    sink = make_sink(max_connections=4, idle_timeout_s=30)
    idle = [socket.create_connection(("127.0.0.1", sink.http_port), timeout=10) for _ in range(4)]  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 30
        while _handler_threads() < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        extra = [raw_http(sink.http_port, post_head("0")) for _ in range(50)]  # type: ignore[arg-type]
        assert {status_of(reply) for reply in extra} == {503}
        assert _handler_threads() <= 4
        assert sink.refused_connections == 50
    finally:
        for sock in idle:
            sock.close()
    # the slots come back once the idle clients leave
    deadline = time.monotonic() + 10
    while _handler_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert_still_serves(sink)


def test_sink_cli_output_file_rotates_at_its_cap(tmp_path: Path) -> None:
    out = tmp_path / "received.jsonl"
    exe = str(Path(sys.executable).with_name("otelpipe"))
    cap = 200_000
    proc = subprocess.Popen(
        [
            exe,
            "sink",
            "--grpc-port",
            "-1",
            "--http-port",
            "0",
            "-o",
            str(out),
            "--max-output-bytes",
            str(cap),
            "--interval",
            "0.2",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        port = int(first.split("OTLP/HTTP ")[1].split(",")[0].strip().rsplit(":", 1)[1])
        body = span_request(20_000)  # ~20 KB protobuf, larger as OTLP-JSON
        for _ in range(60):
            assert status_of(raw_http(port, post_head(str(len(body))), body)) == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    rotated = Path(str(out) + ".1")
    assert rotated.exists()
    assert out.stat().st_size <= cap
    assert rotated.stat().st_size <= cap


def test_grpc_gzip_bomb_is_refused_after_decompression() -> None:
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    sink = OTLPSink(
        SinkStore(), grpc_port=0, http_port=None, limits=ReceiverLimits(max_request_bytes=4 * MiB)
    ).start()
    try:
        request = ExportTraceServiceRequest()
        request.resource_spans.add().scope_spans.add().spans.add().name = "\0" * (32 * MiB)
        with grpc.insecure_channel(f"127.0.0.1:{sink.grpc_port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(request, timeout=10, compression=grpc.Compression.Gzip)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert sink.store.totals()["traces"] == 0
    finally:
        sink.stop()


def test_request_headers_dripped_a_byte_at_a_time_are_cut_off_at_the_header_deadline(
    make_sink: Callable[..., OTLPSink], caplog: pytest.LogCaptureFixture
) -> None:
    """Each byte arrives well within the idle timeout; the headers as a whole do not."""
    sink = make_sink(idle_timeout_s=2.0, header_timeout_s=1.0)
    drip = b"X-Drip: " + b"a" * 60  # one byte per 0.1 s: 6.8 s, far past the 1 s header deadline
    sent = 0
    with socket.create_connection(("127.0.0.1", sink.http_port), timeout=10) as sock:  # type: ignore[arg-type]
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for byte in drip:
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.1)
            sock.settimeout(0.0)
            closed = sock.recv(1) == b""
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        except BlockingIOError:  # nothing to read and not closed: the server is still waiting
            closed = False
    assert closed and sent < len(drip), f"the server read {sent} dripped bytes and kept the connection"
    assert any("request headers not received within 1s" in r.getMessage() for r in caplog.records)
    assert_still_serves(sink)
