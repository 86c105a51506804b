"""Python function calls per log record on a real request path, stock distro vs otelpipe (cProfile).

Call counts do not depend on machine load, so they compare log-path changes exactly where timings
on a busy 2-core host cannot. The app is bench/request_cost.py's (Flask + SQLAlchemy, one SELECT,
one log line per request) under `opentelemetry-instrument`, 1 % `parentbased_traceidratio`, OTLP/HTTP
exporters to a closed port (nothing is sent during the run); only the `log.info` call is profiled.
With --instructions the same log call is counted in machine instructions under valgrind's
callgrind instead: only the `log.info` call runs inside `operator.call`, and callgrind collects
only inside that C function (`--toggle-collect`), so nothing else of the request is counted.
With --parts each stage of the log path is counted the same way, alone (it alone runs inside
`operator.call`): the record factory chain (the LogRecord and every factory wrapping it), the
redaction filter, the OTel bridge handler's emit (the whole OTLP path, processors included),
otelpipe's log processor and the batch export processor, so a change to one stage can be weighed
where it happens.
Run: .venv/bin/python bench/log_path_calls.py [--requests N] [--top N] [--instructions] [--parts]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _app_main() -> None:  # pragma: no cover - runs under opentelemetry-instrument
    import cProfile
    import logging
    import operator
    import pstats

    from _item_app import fill_items, item_app

    db = os.environ["BENCH_DB"]
    fill_items(db)
    profile: cProfile.Profile | None = None

    counted = False

    def profiled_log_line(log: logging.Logger, item_id: int) -> None:
        if counted:  # callgrind collects inside operator.call only
            operator.call(log.info, "item %s served", item_id)
            return
        if profile is not None:
            profile.enable()
        log.info("item %s served", item_id)
        if profile is not None:
            profile.disable()

    app = item_app(db, profiled_log_line)
    client = app.test_client()
    for i in range(300):
        client.get(f"/item/{i % 100}")
    count = int(os.environ["BENCH_REQUESTS"])
    if os.environ.get("BENCH_CALLGRIND"):
        part = os.environ.get("BENCH_PART", "")
        counted = not part
        if part and not _count_part_only(part):
            print(json.dumps({"pid": os.getpid(), "absent": True}))
            return
        for i in range(count):
            client.get(f"/item/{i % 100}")
        print(json.dumps({"pid": os.getpid()}))
        return
    profile = cProfile.Profile()
    for i in range(count):
        client.get(f"/item/{i % 100}")
    stats = pstats.Stats(profile)
    top = int(os.environ.get("BENCH_TOP", "0"))
    if top:
        rows = sorted(stats.stats.items(), key=lambda item: -item[1][1])  # type: ignore[attr-defined]
        for (path, line, name), (_, ncalls, *_rest) in rows[:top]:
            print(f"    {ncalls / count:6.1f}  {name}  {Path(path).name}:{line}")
    print(f"{stats.total_calls / count:.1f}")


def _count_part_only(part: str) -> bool:  # pragma: no cover - runs under opentelemetry-instrument
    """Route one stage of the log path through `operator.call`, the only place callgrind counts.

    False when this setup has no such stage (the stock distro has no redaction filter).
    """
    import logging
    import operator

    from opentelemetry._logs import get_logger_provider

    root = logging.getLogger()
    if part == "factory":
        factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(lambda *args, **kwargs: operator.call(factory, *args, **kwargs))
        return True
    found = False
    if part == "filter":
        # One filter object may sit on several handlers: wrap it once, since callgrind's toggle
        # would switch collection off inside a nested `operator.call`.
        filters = {id(f): f for handler in root.handlers for f in handler.filters}
        for log_filter in filters.values():
            if type(log_filter).__name__ == "RedactingFilter":
                log_filter.filter = functools.partial(operator.call, log_filter.filter)  # type: ignore[method-assign]
                found = True
    elif part == "bridge":
        for handler in root.handlers:
            if type(handler).__module__.startswith("opentelemetry."):
                handler.emit = functools.partial(operator.call, handler.emit)  # type: ignore[method-assign]
                found = True
    elif part in ("processor", "batch"):
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        multi = getattr(get_logger_provider(), "_multi_log_record_processor", None)
        for processor in getattr(multi, "_log_record_processors", ()):
            if (part == "batch" and isinstance(processor, BatchLogRecordProcessor)) or (
                part == "processor" and type(processor).__name__ == "CorrelatingLogRecordProcessor"
            ):
                processor.on_emit = functools.partial(operator.call, processor.on_emit)  # type: ignore[method-assign]
                found = True
    return found


_PARTS = {
    "factory": "record factory chain (LogRecord included)",
    "filter": "otelpipe redaction filter",
    "bridge": "OTel bridge emit (OTLP path, processors included)",
    "processor": "otelpipe log processor (request id, redaction)",
    "batch": "batch export processor (SDK's; otelpipe's counts drops)",
}


def _calls(
    otelpipe: bool, requests: int, workdir: Path, top: int = 0, callgrind: bool = False, part: str = ""
) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_SERVICE_NAME="log-path-calls",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.01",
        OTELPIPE_STATE_DIR=str(workdir / "state"),
        BENCH_DB=str(workdir / "items.db"),
        BENCH_REQUESTS=str(requests),
        BENCH_TOP=str(top),
        BENCH_PART=part,
    )
    if otelpipe:
        env.update(OTEL_PYTHON_DISTRO="otelpipe", OTEL_PYTHON_CONFIGURATOR="otelpipe")
    else:
        env.update(OTEL_PYTHON_DISTRO="distro", OTEL_PYTHON_CONFIGURATOR="configurator")
    instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    command = [instrument, sys.executable, str(Path(__file__).resolve()), "--app"]
    out_file = workdir / f"callgrind-{'otelpipe' if otelpipe else 'stock'}"
    if callgrind:
        # A fixed hash seed makes dict and set layouts, and so the counts, repeat from run to run.
        env.update(BENCH_CALLGRIND="1", PYTHONHASHSEED="0")
        command = [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=yes",
            "--collect-atstart=no",
            "--toggle-collect=_operator_call*",
            "--separate-threads=yes",  # the request thread only: the export threads are not the log call
            f"--callgrind-out-file={out_file}.%p",
            *command,
        ]
    out = subprocess.run(
        command,
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    lines = out.stdout.strip().splitlines()
    if callgrind:
        result = json.loads(lines[-1])
        pid = result["pid"]
        if result.get("absent"):
            return "-"
        text = Path(f"{out_file}.{pid}-01").read_text()  # thread 1: the main (request) thread
        totals = next(line for line in text.splitlines() if line.startswith(("totals:", "summary:")))
        return f"{int(totals.split()[1]) / requests:,.0f}"
    return "\n".join(lines[-top - 1 :]) if top else lines[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--top", type=int, default=0, help="also list the N most-called functions")
    parser.add_argument(
        "--instructions", action="store_true", help="count machine instructions per log call (callgrind)"
    )
    parser.add_argument(
        "--parts", action="store_true", help="count each stage of the log path alone (callgrind)"
    )
    parser.add_argument("--app", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.app:
        _app_main()
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.parts:
            print(
                "Instructions per log record, per stage (one log.info inside a Flask request, 1 % sampling)"
            )
            print(f"  {'stage':52}  {'stock':>9}  {'otelpipe':>9}")
            for part, label in _PARTS.items():
                stock = _calls(False, args.requests, workdir, callgrind=True, part=part)
                mine = _calls(True, args.requests, workdir, callgrind=True, part=part)
                print(f"  {label:52}  {stock:>9}  {mine:>9}", flush=True)
            return
        if args.instructions:
            print(
                "Instructions per log record (one log.info inside a Flask request, 1 % sampling, callgrind)"
            )
            stock = _calls(False, args.requests, workdir, callgrind=True)
            print(f"  stock opentelemetry-distro  {stock}", flush=True)
            mine = _calls(True, args.requests, workdir, callgrind=True)
            ratio = int(mine.replace(",", "")) / int(stock.replace(",", ""))
            print(f"  otelpipe defaults           {mine}  ({ratio:.2f} x)")
            return
        print("Python calls per log record (one log.info inside a Flask request, 1 % sampling)")
        print(f"  stock opentelemetry-distro  {_calls(False, args.requests, workdir, args.top)}")
        print(f"  otelpipe defaults           {_calls(True, args.requests, workdir, args.top)}")


if __name__ == "__main__":
    main()
