"""Function calls per whole request on the request thread, stock distro vs otelpipe, diffed by function.

Call counts do not depend on machine load, so they direct request-path work where timings on a busy
2-core host cannot (bench/request_cost.py confirms in time). The app is bench/request_cost.py's
(Flask + SQLAlchemy, one SELECT, one log line per request) under `opentelemetry-instrument`,
`parentbased_traceidratio` sampling, OTLP/HTTP exporters to a closed port (nothing leaves during the
run; the export threads are not profiled: cProfile on 3.11 sees only the thread it runs on). Each
`client.get` is profiled whole, after a warm-up. The table counts Python functions and C calls
(builtins, methods of built-in types) per request, grouped by module, then lists the functions
otelpipe adds or calls more often than the stock distro.

Run: .venv/bin/python bench/request_calls.py [--requests N] [--sampling 0.01] [--top 40]
     [--env KEY=VALUE ...]   (extra environment for the otelpipe process, e.g. a switch turned off)
     --instructions N [--variant KEY=VALUE ...] [--cache]   (machine instructions per request instead)

Instructions are not time: with --cache, callgrind also simulates the L1 caches and branch
prediction, and the table adds misses per request. What otelpipe adds is Python bytecode, which
misses more per instruction than the stock request's average (much of which is SQLite's and the
C library's tight loops): that is why its share of CPU time is larger than its share of
instructions (README, Benchmarks).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from request_cost import (  # the same SLOs and --shape as bench/request_cost.py (bench/ is on sys.path)
    SLO_SPEC,
    add_shape_option,
    set_shape,
)


def _app_main() -> None:  # pragma: no cover - runs under opentelemetry-instrument
    import cProfile
    import gc
    import pstats
    import random

    from _item_app import fill_items, item_app, shape_from_environment

    db = os.environ["BENCH_DB"]
    fill_items(db)
    app = item_app(db, **shape_from_environment())
    client = app.test_client()
    for i in range(int(os.environ.get("BENCH_WARMUP", "500"))):
        client.get(f"/item/{i % 100}")
    count = int(os.environ["BENCH_REQUESTS"])
    if os.environ.get("BENCH_CALLGRIND"):  # instructions counted by callgrind, on this thread's file
        # Start-up's objects out of the collector's way: a full collection falls in a 100-request
        # window or not at random and costs as much as tens of requests; with the objects frozen,
        # collections scan only what the measured requests allocate.
        gc.collect()
        gc.freeze()
        # The SDK draws trace ids from `random`: the same ids, so the same requests sampled, in every
        # run and configuration (at 1 % a handful of the measured requests are; their count would
        # otherwise vary by a few from run to run, each one a whole exported trace's work).
        random.seed(0)
        control = ["callgrind_control", "--instr=on", str(os.getpid())]
        subprocess.run(control, check=True, capture_output=True)
        subprocess.run([*control[:1], "--zero", str(os.getpid())], check=True, capture_output=True)
        for i in range(count):
            client.get(f"/item/{i % 100}")
        subprocess.run([*control[:1], "--instr=off", str(os.getpid())], check=True, capture_output=True)
        print(json.dumps({"pid": os.getpid()}))
        return
    gc_before = [generation["collections"] for generation in gc.get_stats()]
    profile = cProfile.Profile()
    profile.enable()
    for i in range(count):
        client.get(f"/item/{i % 100}")
    profile.disable()
    gc_after = [generation["collections"] for generation in gc.get_stats()]
    stats: dict[str, float] = {}
    callers: dict[str, dict[str, float]] = {}
    for (filename, line, function), (_, calls, _tt, _ct, by) in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        if function == "<method 'disable' of '_lsprof.Profiler' objects>":
            continue
        key = _key(filename, line, function)
        stats[key] = stats.get(key, 0.0) + calls / count
        into = callers.setdefault(key, {})
        for (c_file, c_line, c_function), c_stats in by.items():
            c_key = _key(c_file, c_line, c_function)
            into[c_key] = into.get(c_key, 0.0) + c_stats[1] / count
    gc_runs = [(after - before) * 1000 / count for before, after in zip(gc_before, gc_after, strict=True)]
    print(json.dumps({"calls": stats, "callers": callers, "gc": gc_runs, "tracked": len(gc.get_objects())}))


def _key(filename: str, line: int, function: str) -> str:
    """A stable key: the addresses in names like `<function MultiDict.items at 0x...>` removed."""
    return f"{filename}\t{line}\t{re.sub(r' at 0x[0-9a-f]+', '', function)}"


def _module(filename: str) -> str:
    """A dotted module name from a source path (site-packages relative), or '(C)' for builtins."""
    if filename == "~":
        return "(C)"
    path = Path(filename)
    parts = path.with_suffix("").parts
    for anchor in ("site-packages", "lib-dynload"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
            break
    else:
        here = Path(__file__).resolve().parent.parent.parts
        if parts[: len(here)] == here:
            parts = parts[len(here) :]  # editable install: processors/ is otelpipe.processors
            if parts[0] != "otelpipe":
                parts = ("otelpipe", *parts)
        elif "python3" in "".join(parts):
            parts = ("stdlib", path.stem)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts[-4:])


def _profile(
    otelpipe: bool,
    requests: int,
    sampling: str,
    workdir: Path,
    extra: dict[str, str],
    callgrind: bool = False,
    cache: bool = False,
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(
        OTEL_SERVICE_NAME="request-calls",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG=sampling,
        OTELPIPE_STATE_DIR=str(workdir / "state"),
        BENCH_DB=str(workdir / "items.db"),
        BENCH_REQUESTS=str(requests),
    )
    if otelpipe:
        env.update(
            OTEL_PYTHON_DISTRO="otelpipe",
            OTEL_PYTHON_CONFIGURATOR="otelpipe",
            OTELPIPE_SLO_FILE=str(workdir / "slo.yaml"),
        )
        env.update(extra)
    else:
        env.update(OTEL_PYTHON_DISTRO="distro", OTEL_PYTHON_CONFIGURATOR="configurator")
    instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    command = [instrument, sys.executable, str(Path(__file__).resolve()), "--app"]
    out_file = workdir / f"callgrind-{'otelpipe' if otelpipe else 'stock'}"
    if callgrind:
        # Every cache warm after 200 requests (~50x slower under valgrind); a fixed hash seed makes
        # dict and set layouts, and so the counts, repeat from run to run.
        env.update(BENCH_CALLGRIND="1", BENCH_WARMUP="200", PYTHONHASHSEED="0")
        command = [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=yes",
            "--trace-children-skip=*callgrind_control*,*vgdb*,*perl*",
            "--instr-atstart=no",
            *(["--cache-sim=yes", "--branch-sim=yes"] if cache else []),
            "--separate-threads=yes",
            f"--callgrind-out-file={out_file}.%p",
            *command,
        ]
    out = subprocess.run(
        command,
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    reply = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    if callgrind:  # the request thread is the main thread: file -01
        text = Path(f"{out_file}.{reply['pid']}-01").read_text()
        lines = text.splitlines()
        events = next(line for line in lines if line.startswith("events:")).split()[1:]
        totals = next(line for line in lines if line.startswith("totals:")).split()[1:]
        reply["events"] = {event: int(total) / requests for event, total in zip(events, totals, strict=False)}
        reply["instructions"] = reply["events"]["Ir"]
    return reply


# What --cache prints per request: simulated L1 misses (instruction; data read and write) and
# mispredicted branches (conditional; indirect, which the interpreter's dispatch is made of).
_CACHE_FIGURES = {"I1 misses": ("I1mr",), "D1 misses": ("D1mr", "D1mw"), "mispredicted": ("Bcm", "Bim")}


def _total(stats: dict[str, float], python_only: bool) -> float:
    return sum(v for k, v in stats.items() if not (python_only and k.startswith("~\t")))


def _describe(key: str) -> str:
    filename, line, function = key.split("\t")
    if filename == "~":
        return function
    return f"{_module(filename)}:{function}:{line}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--sampling", default="0.01")
    parser.add_argument("--top", type=int, default=40, help="functions listed in the diff")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--callers", action="append", default=[], metavar="TEXT", help="also list the callers of functions matching TEXT"
    )
    parser.add_argument(
        "--instructions",
        type=int,
        default=0,
        metavar="N",
        help="instead: count machine instructions per request over N requests under valgrind's callgrind",
    )
    parser.add_argument(
        "--cache",
        action="store_true",
        help="with --instructions: also simulate caches and branch prediction (callgrind --cache-sim, --branch-sim)"
        " and print misses per request: L1 instruction and data misses, mispredicted branches",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --instructions: also otelpipe with this setting (repeatable, one run each)",
    )
    add_shape_option(parser)
    parser.add_argument("--app", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.app:
        _app_main()
        return
    set_shape(parser, args.shape)
    extra = dict(item.split("=", 1) for item in args.env)
    if args.instructions:
        # Stock, otelpipe defaults (with --env), then each --variant, one process each; the counts
        # do not depend on load, so the runs need not alternate.
        configurations: list[tuple[str, bool, dict[str, str]]] = [
            ("stock opentelemetry-distro", False, {}),
            ("otelpipe" + (" " + " ".join(args.env) if args.env else " defaults"), True, extra),
        ]
        for variant in args.variant:
            configurations.append((f"otelpipe {variant}", True, {**extra, **dict([variant.split("=", 1)])}))
        print(
            f"Instructions per request on the request thread (callgrind, {args.instructions} requests "
            f"after 200, sampling {args.sampling})"
        )
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            (workdir / "slo.yaml").write_text(SLO_SPEC)
            base = 0.0
            base_events: dict[str, float] = {}
            for label, otelpipe, env in configurations:
                count = _profile(otelpipe, args.instructions, args.sampling, workdir, env, callgrind=True, cache=args.cache)
                base = base or count["instructions"]
                line = f"| {label} | {count['instructions'] / 1e6:.3f} M | {count['instructions'] / base:.3f} |"
                if args.cache:
                    events = count["events"]
                    base_events = base_events or events
                    for name, parts in _CACHE_FIGURES.items():
                        value = sum(events[part] for part in parts)
                        line += f" {name} {value / 1000:.1f} k ({value / sum(base_events[p] for p in parts):.3f}) |"
                print(line, flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "slo.yaml").write_text(SLO_SPEC)
        stock_run = _profile(False, args.requests, args.sampling, workdir, {})
        mine_run = _profile(True, args.requests, args.sampling, workdir, extra)
    stock, mine = stock_run["calls"], mine_run["calls"]
    print(f"Calls per request on the request thread ({args.requests} requests, sampling {args.sampling}"
          + (f", otelpipe with {' '.join(args.env)}" if args.env else "") + ")")
    print(f"  all calls:        stock {_total(stock, False):7.1f}   otelpipe {_total(mine, False):7.1f}"
          f"   ratio {_total(mine, False) / _total(stock, False):.3f}")
    print(f"  Python functions: stock {_total(stock, True):7.1f}   otelpipe {_total(mine, True):7.1f}"
          f"   ratio {_total(mine, True) / _total(stock, True):.3f}")

    print(
        "  gc collections per 1000 requests (gen 0/1/2): stock "
        + "/".join(f"{n:.1f}" for n in stock_run["gc"])
        + ", otelpipe "
        + "/".join(f"{n:.1f}" for n in mine_run["gc"])
        + f"; objects tracked by gc: stock {stock_run['tracked']}, otelpipe {mine_run['tracked']}"
    )

    by_module: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for index, stats in enumerate((stock, mine)):
        for key, calls in stats.items():
            by_module[_module(key.split("\t")[0])][index] += calls
    print()
    print("| module | stock | otelpipe | difference |")
    print("| --- | ---: | ---: | ---: |")
    rows = sorted(by_module.items(), key=lambda item: -abs(item[1][1] - item[1][0]))
    for module, (before, after) in rows:
        if abs(after - before) >= 0.5:
            print(f"| {module} | {before:.1f} | {after:.1f} | {after - before:+.1f} |")

    diff = {key: mine.get(key, 0.0) - stock.get(key, 0.0) for key in set(stock) | set(mine)}
    grown = sorted((item for item in diff.items() if item[1] >= 0.05), key=lambda item: -item[1])
    print()
    print(f"Functions otelpipe calls more often per request (top {args.top}; 'new' = not called by stock)")
    print("| function | stock | otelpipe | difference |")
    print("| --- | ---: | ---: | ---: |")
    for key, delta in grown[: args.top]:
        before = stock.get(key, 0.0)
        mark = " (new)" if before == 0 else ""
        print(f"| {_describe(key)}{mark} | {before:.2f} | {mine.get(key, 0.0):.2f} | {delta:+.2f} |")
    fewer = sorted((item for item in diff.items() if item[1] <= -0.05), key=lambda item: item[1])
    if fewer:
        print()
        print("Functions otelpipe calls less often per request (top 15)")
        for key, _delta in fewer[:15]:
            print(f"  {_describe(key)}: {stock.get(key, 0.0):.2f} -> {mine.get(key, 0.0):.2f}")
    for text in args.callers:
        for key in sorted(k for k in mine if text in _describe(k)):
            print(f"\nCallers of {_describe(key)} (otelpipe, per request; stock {stock.get(key, 0.0):.2f})")
            for caller, calls in sorted(mine_run["callers"].get(key, {}).items(), key=lambda item: -item[1]):
                if calls >= 0.05:
                    before = stock_run["callers"].get(key, {}).get(caller, 0.0)
                    print(f"  {calls:6.2f}  (stock {before:5.2f})  {_describe(caller)}")


if __name__ == "__main__":
    main()
