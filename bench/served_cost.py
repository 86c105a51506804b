"""Per-request cost of otelpipe against the stock opentelemetry-distro, served by gunicorn over HTTP.

Rerun: `.venv/bin/python bench/served_cost.py [--requests N] [--rounds R] [--sampling 0.01,1.0]
[--variants none|name,...] [--quick]` (also `make bench`).

bench/request_cost.py times a request inside the app process (Flask's test client: no socket, no
HTTP server), the strictest ratio. This is the request as an adopter serves it: the same app
(bench/_item_app.py) under `opentelemetry-instrument gunicorn -w 1` (a sync worker), one process per
configuration, each request a new HTTP/1.1 connection from this driver over loopback. What is
measured is the worker's CPU time per request, read from the kernel's scheduler statistics
(`/proc/<pid>/task/<tid>/schedstat`, nanoseconds of CPU): its main thread (the request thread: socket
work, HTTP parsing, the WSGI app, the telemetry on the request path) and the whole worker (the
export threads added). The client's work is in this process and counts in neither.

Rounds and pairing are request_cost.py's: short rounds, each otelpipe process next to its stock
baseline (order flipping every round), a second stock process as the control, the median of the
pair ratios with their interquartile range. At the end every worker is stopped gracefully (SIGTERM:
the SDK flushes at exit) and, for each otelpipe configuration at the lowest sampling rate that counts
every span, the RED calls and errors the sink received are checked against the requests sent
(exit status 1 if they differ).
"""

from __future__ import annotations

import argparse
import http.client
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from request_cost import (  # bench/ is on sys.path
    _NOT_EXACT,
    CONTROL,
    VARIANTS,
    _check_red,
    _configuration_name,
    _environment,
    _ratio_text,
    _sink_and_workdir,
)


@dataclass
class Server:
    """One configuration's gunicorn (a master and one sync worker)."""

    label: str
    sampling: float
    otelpipe: bool
    service: str
    port: int
    proc: subprocess.Popen[bytes]
    worker: int = 0
    sent: int = 0
    failed: int = 0
    thread: list[float] = field(default_factory=list)  # µs of the worker's main thread per request
    cpu: list[float] = field(default_factory=list)  # µs of the whole worker per request
    thread_ratios: list[float] = field(default_factory=list)
    cpu_ratios: list[float] = field(default_factory=list)

    def cpu_ns(self) -> tuple[int, int]:
        """CPU nanoseconds so far: the worker's main thread, and all its threads."""
        main = total = 0
        task_dir = Path(f"/proc/{self.worker}/task")
        for task in task_dir.iterdir():
            try:
                ns = int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError):  # a thread that just ended
                continue
            total += ns
            if task.name == str(self.worker):
                main = ns
        return main, total

    def get(self, path: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def run(self, count: int) -> tuple[float, float]:
        """Serve `count` requests; µs of CPU per request (main thread, whole worker)."""
        main0, total0 = self.cpu_ns()
        for i in range(count):
            status = self.get(f"/item/{(self.sent + i) % 100}")
            if status != 200:
                raise SystemExit(f"{self.label}: unexpected status {status}")
        main1, total1 = self.cpu_ns()
        self.sent += count
        return (main1 - main0) / count / 1000, (total1 - total0) / count / 1000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(label: str, sampling: float, extra: dict[str, str], sink: str, workdir: Path, otelpipe: bool) -> Server:
    service, env = _environment(label, sampling, extra, sink, workdir, otelpipe)
    port = _free_port()
    bench = Path(__file__).resolve().parent
    bindir = Path(sys.executable).parent
    command = [
        str(bindir / "opentelemetry-instrument"),
        str(bindir / "gunicorn"),
        "--workers", "1",
        "--bind", f"127.0.0.1:{port}",
        "--pythonpath", str(bench),
        "--graceful-timeout", "20",
        "_served_app:app",
    ]  # fmt: skip
    stderr = (workdir / f"{service}.stderr").open("w")
    proc = subprocess.Popen(command, env=env, stdout=stderr, stderr=stderr, cwd=workdir)
    return Server(label, sampling, otelpipe, service, port, proc)


def _wait_ready(server: Server, warmup: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.label}: gunicorn exited (see {server.service}.stderr in the work dir)")
        try:
            if server.get("/item/1") == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{server.label}: no answer within 120 s")
        time.sleep(0.2)
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    if len(children) != 1:
        raise SystemExit(f"{server.label}: expected one gunicorn worker, found {children}")
    server.worker = int(children[0])
    server.sent = 1
    server.run(warmup)


def _stop(server: Server) -> None:
    """Stop this gunicorn (by its pid, never by name): SIGTERM lets the worker flush at exit."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30, help="requests per server per round")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--sampling", default="0.01,1.0", help="comma-separated sampler ratios")
    parser.add_argument("--variants", default="none", help="'none' or comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="60 rounds of 30 requests")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds = 30, 60
    samplings = [float(s) for s in args.sampling.split(",")]
    names = [] if args.variants == "none" else args.variants.split(",")
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")

    sink, workdir = _sink_and_workdir("otelpipe-served-cost-")
    servers: list[Server] = []
    try:
        for sampling in samplings:
            servers.append(_start("stock", sampling, {}, sink.http_endpoint, workdir, otelpipe=False))
            if sampling == min(samplings):
                servers.append(_start(CONTROL, sampling, {}, sink.http_endpoint, workdir, otelpipe=False))
            servers.append(_start("otelpipe", sampling, {}, sink.http_endpoint, workdir, otelpipe=True))
            if sampling == min(samplings):
                servers += [_start(n, sampling, VARIANTS[n], sink.http_endpoint, workdir, True) for n in names]
        for server in servers:
            _wait_ready(server, args.warmup)
        print(f"{len(servers)} gunicorn workers, {args.rounds} rounds x {args.requests} requests; work dir {workdir}")
        for round_index in range(args.rounds):
            for index, server in enumerate(s for s in servers if s.label != "stock"):
                stock = next(s for s in servers if s.sampling == server.sampling and s.label == "stock")
                pair = (stock, server) if (round_index + index) % 2 == 0 else (server, stock)
                figures = {id(member): member.run(args.requests) for member in pair}
                for member in pair:
                    member.thread.append(figures[id(member)][0])
                    member.cpu.append(figures[id(member)][1])
                mine, base = figures[id(server)], figures[id(stock)]
                server.thread_ratios.append(mine[0] / base[0])
                server.cpu_ratios.append(mine[1] / base[1])
            if (round_index + 1) % 20 == 0:
                print(f"round {round_index + 1}/{args.rounds} done", flush=True)

        print()
        print(
            "| configuration | sampling | worker request-thread CPU µs per request, median round | "
            "otelpipe / stock, request thread (median of pairs, interquartile range) | whole worker, pairs |"
        )
        print("| --- | --- | --- | --- | --- |")
        for sampling in samplings:
            for server in (s for s in servers if s.sampling == sampling):
                name = _configuration_name(server.label, server.otelpipe)
                ratios = (
                    ["1", "1"]
                    if server.label == "stock"
                    else [_ratio_text(server.thread_ratios), _ratio_text(server.cpu_ratios)]
                )
                print(f"| {name} | {sampling:g} | {statistics.median(server.thread):.0f} | {' | '.join(ratios)} |")

        lowest = min(samplings)
        checked = [s for s in servers if s.otelpipe and s.sampling == lowest and s.label not in _NOT_EXACT]
        for server in checked:
            for _ in range(7):
                server.failed += server.get("/fail") == 500
        for server in servers:
            _stop(server)
        ok = True
        print()
        for server in checked:
            expected = (server.sent + server.failed, server.failed)
            ok = _check_red(sink, server.service, server.label, lowest, expected) and ok
        return 0 if ok else 1
    finally:
        for server in servers:
            _stop(server)
        sink.stop()


if __name__ == "__main__":
    sys.exit(main())
