"""Per-request cost of otelpipe against the stock opentelemetry-distro, as ratios measured in one run.

Rerun: `.venv/bin/python bench/request_cost.py [--requests N] [--rounds R] [--sampling 0.01,1.0]
[--variants all|none|name,...] [--shape QUERIES,LOG_LINES] [--quick]` (also `make bench`).

What an adopter compares is a real request, not a span in a loop: a Flask + SQLAlchemy (SQLite) app,
one SELECT and one log line per request, started under `opentelemetry-instrument` in subprocesses,
traces + metrics + logs over OTLP/HTTP to a local `otelpipe` sink, `parentbased_traceidratio`
sampling. Every configuration runs in its own long-lived process. In each round every otelpipe
process runs right before or after the stock process at the same sampling rate (the order flips
every round), and the ratio is taken from that adjacent pair, so machine load shared with other
work cancels out; the table shows the median ratio over the rounds and its interquartile range.

Rounds are short (30 requests, about 40 ms) and many (300): on the shared 2-core VM this was built
on, the speed of the machine drifts by up to 2x within seconds (one process's median request moved
from 970 to 1,900 µs within a run of 500-request rounds, and pairs of such rounds ranged 0.63-1.69),
so only measurements a few milliseconds apart see the same machine. A second stock process, compared
with the first exactly like an otelpipe process, is the control: its ratio shows the bias and the
noise of the method (0.978-1.013 in the runs the README reports: two processes of one build differ by up to 0.02). Configurations: the stock distro (`OTEL_PYTHON_DISTRO=distro`,
`OTEL_PYTHON_CONFIGURATOR=configurator`), otelpipe with its defaults (`OTEL_PYTHON_DISTRO=otelpipe`,
an SLO file loaded so the evaluation loop runs), and otelpipe with one piece switched off (or on)
at a time.

Timing is taken inside the app process: each request goes through Flask's test client (the full
WSGI stack, instrumentation hooks included, no socket). A loopback HTTP client would add a client
process and socket work on the same two cores, whose scheduling noise is larger than the
differences measured here, and would only dilute the ratio (a bigger denominator); the in-process
figure is the stricter one. Three figures per round: the median of the request thread's CPU time
per request (`thread_time_ns` around each request; the headline: it is what otelpipe adds to the
request path, it does not count time spent waiting for a core, and the median ignores the requests
a busy host interrupted), the whole process's CPU per request over the round (adds the export
threads' work) and the median wall-clock request (noisy on a busy machine). Noise on a shared
machine only ever adds time, so the table also shows each process's fastest round (the least
disturbed one), in µs.

After the rounds, each otelpipe process at the lowest sampling rate serves a few failing requests,
flushes, and the bench checks the RED metrics the sink received: SERVER calls equal the requests
sent and errors equal the failing ones (exit status 1 if not).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# -- the instrumented app (runs in the subprocess, `request_cost.py --app`) --


def _app_main() -> None:  # pragma: no cover - runs under opentelemetry-instrument
    import logging

    from _item_app import item_app, shape_from_environment
    from flask import abort

    app = item_app(os.environ["BENCH_DB"], **shape_from_environment())
    log = logging.getLogger("bench.app")

    @app.get("/fail")
    def fail() -> None:
        log.error("failing on purpose")
        abort(500)

    client = app.test_client()
    sent = 0

    def run(count: int) -> tuple[list[int], int, list[int]]:
        nonlocal sent
        times, threads = [], []
        clock, thread_clock = time.perf_counter_ns, time.thread_time_ns
        cpu_start = time.process_time_ns()
        for i in range(count):
            start, thread_start = clock(), thread_clock()
            response = client.get(f"/item/{i % 100}")
            threads.append(thread_clock() - thread_start)
            times.append(clock() - start)
            if response.status_code != 200:
                raise SystemExit(f"unexpected status {response.status_code}")
        cpu = time.process_time_ns() - cpu_start
        sent += count
        return times, cpu, threads

    run(int(os.environ.get("BENCH_WARMUP", "500")))
    print("READY", flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "run":
            count = int(arg)
            times, cpu, thread = run(count)
            reply = {
                "median_ns": statistics.median(times),
                "cpu_ns": cpu / count,
                "thread_ns": statistics.median(thread),
            }
            print(json.dumps(reply), flush=True)
        elif command == "fail":
            for _ in range(int(arg)):
                client.get("/fail")
            print(json.dumps({"sent": sent, "failed": int(arg)}), flush=True)
        elif command == "flush":
            from opentelemetry import metrics, trace
            from opentelemetry._logs import get_logger_provider

            for provider in (
                trace.get_tracer_provider(),
                get_logger_provider(),
                metrics.get_meter_provider(),
            ):
                flush = getattr(provider, "force_flush", None)
                if flush is not None:
                    flush(10_000)
            print(json.dumps({"flushed": True}), flush=True)
        elif command == "quit":
            return


# -- the driver --

SLO_SPEC = """\
version: otelpipe/v1
service: bench
slos:
  - name: availability
    objective: 99.9
    period: 30d
    sli: {kind: availability}
  - name: latency
    objective: 95
    period: 30d
    sli: {kind: latency, threshold: 100ms}  # a bucket boundary in every otelpipe version (--other-python)
"""

CONTROL = "stock-control"

# otelpipe pieces switched one at a time: label -> environment. The switches keep their pre-_ENABLED
# names on purpose: --other-tree/--other-python may run an otelpipe from before the rename, and
# both old and new versions read these (the new one as deprecated aliases). The last four split a
# request's cost into its parts: the log path is log correlation and redaction together (each alone
# leaves the other's work and otelpipe's OTLP log processor running); with RED off as well, what is
# left is the rest of otelpipe; with the master switch off, otelpipe installed but doing nothing.
VARIANTS: dict[str, dict[str, str]] = {
    "internal-metrics-on": {"OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true"},
    "record-unsampled-off": {"OTELPIPE_RED_RECORD_UNSAMPLED": "false"},
    "redact-off": {"OTELPIPE_REDACT": "false"},
    "log-correlation-off": {"OTELPIPE_LOG_CORRELATION": "false"},
    "no-slo-file": {"OTELPIPE_SLO_FILE": ""},
    "red-off": {"OTELPIPE_RED_ENABLED": "false"},
    "fast-sampler-off": {"OTELPIPE_FAST_SAMPLER_ENABLED": "false"},
    "log-path-off": {"OTELPIPE_LOG_CORRELATION": "false", "OTELPIPE_REDACT": "false"},
    "red-and-log-path-off": {
        "OTELPIPE_RED_ENABLED": "false",
        "OTELPIPE_LOG_CORRELATION": "false",
        "OTELPIPE_REDACT": "false",
    },
    "otelpipe-off": {"OTELPIPE_ENABLED": "false"},
}
# Variants whose RED does not count every request (nothing to check against the requests sent).
_NOT_EXACT = frozenset({"red-off", "red-and-log-path-off", "otelpipe-off", "record-unsampled-off", "other-python"})


@dataclass
class Process:
    """One configuration's long-lived app process."""

    label: str
    sampling: float
    otelpipe: bool
    service: str
    proc: subprocess.Popen[str]
    medians: list[float] = field(default_factory=list)  # µs, wall clock, median request of a round
    cpu: list[float] = field(default_factory=list)  # µs of process CPU (all threads) per request
    wall_ratios: list[float] = field(default_factory=list)  # against the stock run next to it
    cpu_ratios: list[float] = field(default_factory=list)
    thread: list[float] = field(default_factory=list)  # µs of the request thread's CPU per request
    thread_ratios: list[float] = field(default_factory=list)
    thread_added: list[float] = field(default_factory=list)  # µs per request over the stock run next to it

    def ask(self, command: str, timeout: float = 300.0) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = _readline(self.proc.stdout, timeout)
        try:
            return dict(json.loads(line))
        except ValueError:
            raise SystemExit(f"{self.label}: unexpected reply {line!r}") from None


def _readline(stream: IO[str], timeout: float) -> str:
    """One line from a child's stdout, or exit if it does not come before the deadline."""
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    if not selector.select(timeout):
        raise SystemExit(f"no reply within {timeout:.0f}s")
    return stream.readline()


def _environment(
    label: str, sampling: float, extra: dict[str, str], sink_endpoint: str, workdir: Path, otelpipe: bool
) -> tuple[str, dict[str, str]]:
    """The service name and environment of one configuration's app (shared with bench/served_cost.py)."""
    service = f"bench-{label}-{sampling:g}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_SERVICE_NAME=service,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=sink_endpoint,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG=str(sampling),
        BENCH_DB=str(workdir / "items.db"),
        PYTHONUNBUFFERED="1",
    )
    if otelpipe:
        env.update(
            OTEL_PYTHON_DISTRO="otelpipe",
            OTEL_PYTHON_CONFIGURATOR="otelpipe",
            OTELPIPE_SLO_FILE=str(workdir / "slo.yaml"),
            OTELPIPE_STATE_DIR=str(workdir / f"state-{service}"),
        )
    else:
        env.update(OTEL_PYTHON_DISTRO="distro", OTEL_PYTHON_CONFIGURATOR="configurator")
    for key, value in extra.items():
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    return service, env


def _start(
    label: str,
    sampling: float,
    extra: dict[str, str],
    sink_endpoint: str,
    workdir: Path,
    otelpipe: bool,
    python: str = sys.executable,
) -> Process:
    service, env = _environment(label, sampling, extra, sink_endpoint, workdir, otelpipe)
    instrument = str(Path(python).with_name("opentelemetry-instrument"))
    stderr = (workdir / f"{service}.stderr").open("w")
    proc = subprocess.Popen(
        [instrument, python, str(Path(__file__).resolve()), "--app"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=workdir,  # opentelemetry-instrument puts the working directory on sys.path
    )
    return Process(label, sampling, otelpipe, service, proc)


def _wait_ready(process: Process) -> None:
    assert process.proc.stdout is not None
    line = _readline(process.proc.stdout, 900)
    if line.strip() != "READY":
        raise SystemExit(f"{process.label} did not start: {line!r} (see its .stderr in the work dir)")


def _sink_and_workdir(prefix: str) -> tuple[Any, Path]:
    """A started local OTLP sink, and a work dir holding the items database and the SLO file that
    `_environment` points every app at (shared with bench/served_cost.py)."""
    from otelpipe.sink import OTLPSink, SinkStore

    sink = OTLPSink(SinkStore(keep=100_000), grpc_port=0, http_port=0).start()
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    _make_db(workdir / "items.db")
    (workdir / "slo.yaml").write_text(SLO_SPEC)
    return sink, workdir


def _make_db(path: Path) -> None:
    from _item_app import fill_items

    fill_items(str(path))


def _red_totals(sink: Any, service: str) -> tuple[int, int]:
    """Latest cumulative SERVER calls and error calls in `traces.span.metrics.calls` for `service`."""
    latest: dict[tuple[Any, ...], int] = {}
    for received in sink.store.received("metrics"):
        for rm in received.request.resource_metrics:
            names = [kv.value.string_value for kv in rm.resource.attributes if kv.key == "service.name"]
            if names != [service]:
                continue
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != "traces.span.metrics.calls":
                        continue
                    for point in metric.sum.data_points:
                        attrs = tuple(sorted((kv.key, kv.value.string_value) for kv in point.attributes))
                        if ("span.kind", "SPAN_KIND_SERVER") in attrs:
                            latest[attrs] = point.as_int
    calls = sum(latest.values())
    errors = sum(v for attrs, v in latest.items() if ("status.code", "STATUS_CODE_ERROR") in attrs)
    return calls, errors


def _configuration_name(label: str, otelpipe: bool, other_python: str | None = None) -> str:
    """A configuration's name in the result table (shared with bench/served_cost.py)."""
    if label == CONTROL:
        return "control: a second stock process"
    if not otelpipe:
        return "stock opentelemetry-distro"
    if label == "other-python":
        return f"otelpipe under {other_python}"
    if label in VARIANTS:
        return "otelpipe, " + " ".join(f"{k}={v or '(unset)'}" for k, v in VARIANTS[label].items())
    return "otelpipe defaults"


def add_shape_option(parser: argparse.ArgumentParser) -> None:
    """`--shape`, read back with `set_shape` (shared with bench/request_calls.py)."""
    parser.add_argument(
        "--shape",
        default="1,1",
        metavar="QUERIES,LOG_LINES",
        help="SELECTs and log lines per request (default 1,1): run two shapes to read what one more "
        "dropped span or log record costs",
    )


def set_shape(parser: argparse.ArgumentParser, shape: str) -> tuple[int, int]:
    """`--shape QUERIES,LOG_LINES`, handed to every app process through the environment (shared with
    bench/request_calls.py; the app reads it with `_item_app.shape_from_environment`)."""
    try:
        queries, log_lines = (int(n) for n in shape.split(","))
    except ValueError:
        parser.error(f"--shape {shape!r}: expected two whole numbers, QUERIES,LOG_LINES (e.g. 1,1)")
    if queries < 1 or log_lines < 0:
        parser.error(f"--shape {shape!r}: expected at least one SELECT and no negative log lines")
    os.environ["BENCH_QUERIES"], os.environ["BENCH_LOG_LINES"] = str(queries), str(log_lines)
    return queries, log_lines


def _check_red(sink: Any, service: str, label: str, sampling: float, expected: tuple[int, int]) -> bool:
    """Wait up to 15 s for the sink's RED calls and errors of `service` to equal `expected`; print the verdict."""
    deadline = time.monotonic() + 15
    got = _red_totals(sink, service)
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        got = _red_totals(sink, service)
    verdict = "exact" if got == expected else "MISMATCH"
    print(
        f"RED at {sampling:g} sampling, {label}: calls {got[0]} / errors {got[1]} for "
        f"{expected[0]} requests / {expected[1]} failing: {verdict}"
    )
    return got == expected


def _ratio_text(ratios: list[float]) -> str:
    if len(ratios) < 2:  # --rounds 1: no quartiles to give
        return f"{ratios[0]:.3f}"
    low, _, high = statistics.quantiles(ratios, n=4)
    return f"{statistics.median(ratios):.3f} ({low:.3f}-{high:.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per process per round")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--sampling", default="0.01,1.0", help="comma-separated sampler ratios")
    parser.add_argument(
        "--variants", default="all", help="'all', 'none' or comma-separated: " + ", ".join(VARIANTS)
    )
    parser.add_argument(
        "--other-python",
        metavar="PYTHON",
        help="also run otelpipe under PYTHON (e.g. another checkout's .venv/bin/python, with its "
        "opentelemetry-instrument beside it), to compare two otelpipe versions in one run",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every round's figures to FILE")
    parser.add_argument("--variants-at-full", action="store_true", help="also run the variants at 100 %%")
    parser.add_argument("--quick", action="store_true", help="100 rounds of 30 requests")
    add_shape_option(parser)
    args = parser.parse_args()
    if args.app:
        _app_main()
        return 0
    if args.quick:
        args.requests, args.rounds = 30, 100
    queries, log_lines = set_shape(parser, args.shape)
    samplings = [float(s) for s in args.sampling.split(",")]
    names = (
        list(VARIANTS)
        if args.variants == "all"
        else []
        if args.variants == "none"
        else args.variants.split(",")
    )
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    if args.other_python:
        VARIANTS["other-python"] = {}
        names.insert(0, "other-python")

    sink, workdir = _sink_and_workdir("otelpipe-request-cost-")
    processes: list[Process] = []
    try:
        for sampling in samplings:
            processes.append(_start("stock", sampling, {}, sink.http_endpoint, workdir, otelpipe=False))
            if sampling == min(samplings):  # the control: stock against stock, paired like the others
                processes.append(_start(CONTROL, sampling, {}, sink.http_endpoint, workdir, otelpipe=False))
            processes.append(_start("otelpipe", sampling, {}, sink.http_endpoint, workdir, otelpipe=True))
            for name in names:
                if sampling == min(samplings) or args.variants_at_full or name == "other-python":
                    python = args.other_python if name == "other-python" else sys.executable
                    processes.append(
                        _start(
                            name,
                            sampling,
                            VARIANTS[name],
                            sink.http_endpoint,
                            workdir,
                            otelpipe=True,
                            python=python,
                        )
                    )
        for process in processes:  # started together, warmed up one after another
            _wait_ready(process)
        print(
            f"{len(processes)} processes, {args.rounds} rounds x {args.requests} requests, "
            f"samplings {samplings}, {queries} SELECT(s) and {log_lines} log line(s) per request; work dir {workdir}",
            flush=True,
        )
        # Each otelpipe process (and the control) runs right next to its stock baseline (order
        # flipping every round): a ratio compares two measurements some 40 ms apart, whatever else the
        # machine does.
        for round_index in range(args.rounds):
            for index, process in enumerate(p for p in processes if p.label != "stock"):
                stock = next(p for p in processes if p.sampling == process.sampling and p.label == "stock")
                pair = (stock, process) if (round_index + index) % 2 == 0 else (process, stock)
                replies = {id(member): member.ask(f"run {args.requests}") for member in pair}
                for member in pair:
                    member.medians.append(replies[id(member)]["median_ns"] / 1000)
                    member.cpu.append(replies[id(member)]["cpu_ns"] / 1000)
                    member.thread.append(replies[id(member)]["thread_ns"] / 1000)
                mine, base = replies[id(process)], replies[id(stock)]
                process.wall_ratios.append(mine["median_ns"] / base["median_ns"])
                process.cpu_ratios.append(mine["cpu_ns"] / base["cpu_ns"])
                process.thread_ratios.append(mine["thread_ns"] / base["thread_ns"])
                process.thread_added.append((mine["thread_ns"] - base["thread_ns"]) / 1000)
            print(f"round {round_index + 1}/{args.rounds} done", flush=True)

        ok = True
        print()
        print(
            "| configuration | sampling | request-thread CPU µs, fastest round | "
            "otelpipe / stock, request-thread CPU (median of pairs, interquartile range) | "
            "added µs per request, request thread (median of pairs) | process CPU, pairs | wall, pairs |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for sampling in samplings:
            for process in (p for p in processes if p.sampling == sampling):
                name = _configuration_name(process.label, process.otelpipe, args.other_python)
                cells = [f"{min(process.thread):.0f}"]
                if process.label != "stock":
                    cells += [
                        _ratio_text(process.thread_ratios),
                        f"{statistics.median(process.thread_added):+.0f}",
                        _ratio_text(process.cpu_ratios),
                        _ratio_text(process.wall_ratios),
                    ]
                else:
                    cells += ["1", "0", "1", "1"]
                print(f"| {name} | {sampling:g} | {' | '.join(cells)} |")
        if args.json:
            raw = [
                {
                    "label": p.label,
                    "sampling": p.sampling,
                    "thread_us": p.thread,
                    "cpu_us": p.cpu,
                    "wall_us": p.medians,
                }
                for p in processes
            ]
            Path(args.json).write_text(json.dumps(raw, indent=1))

        lowest = min(samplings)
        print()
        for process in processes:
            if not process.otelpipe or process.sampling != lowest or process.label in _NOT_EXACT:
                continue  # RED off, counting only sampled spans by design, or not this version
            reply = process.ask("fail 7")
            process.ask("flush")
            expected = (reply["sent"] + reply["failed"], reply["failed"])
            ok = _check_red(sink, process.service, process.label, lowest, expected) and ok
        return 0 if ok else 1
    finally:
        for process in processes:
            if process.proc.poll() is None:
                try:
                    assert process.proc.stdin is not None
                    process.proc.stdin.write("quit\n")
                    process.proc.stdin.flush()
                except OSError:
                    pass
        for process in processes:
            try:
                process.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.proc.kill()
                process.proc.wait()
        sink.stop()


if __name__ == "__main__":
    sys.exit(main())
