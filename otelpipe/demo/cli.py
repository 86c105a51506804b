"""`otelpipe demo` subcommand."""

from __future__ import annotations

import argparse

from rich.console import Console

from otelpipe.demo.runner import DemoOptions, run_demo
from otelpipe.demo.view import DemoView


def _positive(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {raw!r}")
    return value


def _cmd_demo(args: argparse.Namespace) -> int:
    options = DemoOptions(
        duration_s=args.duration,
        rps=args.rps,
        burst=not args.no_burst,
        time_scale=args.time_scale,
        keep_dir=args.keep,
    )
    view = DemoView(Console(), duration_s=options.duration_s, time_scale=options.time_scale)
    result = run_demo(options, view)
    view.finish(result)
    ok = not result.leftover_pids and result.traffic.sent > 0
    if options.burst:
        ok = ok and bool(result.opened) and len(result.resolved) >= len(result.opened)
    return 0 if ok else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `otelpipe demo`."""
    demo = subparsers.add_parser(
        "demo",
        help="run the e-commerce demo: two instrumented services, traffic, an error burst, live RED/SLO/incidents",
        description="Starts the demo shop and payments services under opentelemetry-instrument with otelpipe, "
        "exporting to an embedded otelpipe sink (or to OTEL_EXPORTER_OTLP_ENDPOINT if set), drives traffic, "
        "injects an error burst halfway and shows RED metrics, SLO burn rates and the incident it raises.",
    )
    demo.add_argument("--duration", type=_positive, default=60.0, help="seconds of traffic (default 60)")
    demo.add_argument("--rps", type=_positive, default=20.0, help="requests per second (default 20)")
    demo.add_argument("--no-burst", action="store_true", help="do not inject the error burst")
    demo.add_argument(
        "--time-scale",
        type=_positive,
        default=720.0,
        help="divide SLO windows by this (demo only; default 720: 30 days last one hour, the 1h window 5 s)",
    )
    demo.add_argument("--keep", action="store_true", help="keep the working directory (state, database)")
    demo.set_defaults(func=_cmd_demo)
