"""The `otelpipe` command: check the configuration, run the local OTLP sink, the demo, SLO and incident tools."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from otelpipe import __version__
from otelpipe.config import OTEL_VARIABLES, VARIABLES, load_settings, parse_duration
from otelpipe.diagnostics import looks_secret, shown_value
from otelpipe.slo.durations import format_duration


def _cmd_check(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    loaded = load_settings(strict=False)
    table = Table(title="otelpipe effective configuration", show_lines=False)
    table.add_column("variable")
    table.add_column("value")
    table.add_column("source")
    for variable in VARIABLES:
        raw = os.environ.get(variable.name)
        value = loaded.values[variable.name]
        if value is not None and (variable.secret or looks_secret(variable.name)):
            shown = "***"
        elif isinstance(value, tuple):
            shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) or "(none)"
        elif value is None:
            shown = "(unset)"
        elif isinstance(value, bool):
            shown = "true" if value else "false"
        elif variable.parse is parse_duration and isinstance(value, float):
            shown = format_duration(value)  # 5m, not 300
        else:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
        shown = shown_value(variable.name, shown)  # URL passwords and query tokens (trace URL template)
        table.add_row(variable.name, shown, "env" if raw not in (None, "") else "default")
    for name, _meaning in OTEL_VARIABLES:
        raw = os.environ.get(name)
        shown = shown_value(name, raw) if raw else "(unset)"  # headers, OTLP endpoint passwords
        table.add_row(name, shown, "env" if raw else "SDK default")
    console.print(table)
    errors = [str(error) for error in loaded.errors]
    slo_file = loaded.settings.slo.file
    if slo_file:
        from otelpipe.slo.check import check_slo_file

        # the same boundaries the app's RED store will use, so a latency threshold is judged as at start-up
        checked = check_slo_file(slo_file, loaded.settings.red.buckets)
        errors.extend(f"OTELPIPE_SLO_FILE: {problem}" for problem in checked.errors)
        console.print(
            f"SLO file {slo_file}: {len(checked.spec.slos)} SLO(s) and "
            f"{len(checked.rules) + len(checked.metric_rules)} rule(s) will run"
            + (f"; {len(checked.errors)} problem(s), each skipped at start-up" if checked.errors else "")
        )
    hooks_ok = _print_sdk_hooks(console)
    from otelpipe.instrumentations import skipped_instrumentations

    for skipped in skipped_instrumentations():
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[bold yellow]warning[/]: {escape(skipped)}"
        )
    if errors:
        err = Console(stderr=True, highlight=False, soft_wrap=True)
        for error in errors:
            err.print(f"[bold red]error[/]: {escape(error)}")
        err.print(f"{len(errors)} configuration error(s)")
        return 1
    if not hooks_ok:
        return 1
    console.print("configuration OK")
    return 0


def _print_sdk_hooks(console: Console) -> bool:
    """One line for the SDK otelpipe runs on; one error per private hook it lacks (see otelpipe._sdk)."""
    from otelpipe._sdk import check_sdk_hooks, sdk_version

    results = check_sdk_hooks()
    missing = [result for result in results if not result.ok]
    console.print(
        f"opentelemetry-sdk {sdk_version()}: {len(results) - len(missing)}/{len(results)} SDK hooks present"
    )
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for result in missing:
        err.print(
            f"[bold red]error[/]: SDK hook {result.hook.symbol} missing ({result.error}): {result.hook.degraded}"
        )
    return not missing


def _cmd_sink(args: argparse.Namespace) -> int:
    from otelpipe.sink import OTLPSink, SinkStore
    from otelpipe.sink.store import RotatingJsonl, Signal

    console = Console(highlight=False)
    output = RotatingJsonl(args.output, args.max_output_bytes) if args.output else None
    sink = OTLPSink(
        SinkStore(jsonl=output),
        host=args.host,
        grpc_port=None if args.grpc_port < 0 else args.grpc_port,
        http_port=None if args.http_port < 0 else args.http_port,
    )
    if args.tail:
        from otelpipe.sink.tail import SinkTail

        sink.store.subscribe(SinkTail(lambda line: console.print(line, markup=False, soft_wrap=True)))
    try:
        sink.start()
    except OSError as exc:
        console.print(f"[red]cannot start the sink[/]: {exc}")
        return 2
    console.print(
        f"otelpipe sink listening: OTLP/gRPC {sink.grpc_endpoint if sink.grpc_port else 'off'}, "
        f"OTLP/HTTP {sink.http_endpoint if sink.http_port else 'off'}"
        + (f", appending OTLP-JSON to {args.output}" if args.output else "")
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + args.duration if args.duration else None
    last: dict[Signal, int] = dict(sink.store.totals())  # print once something arrives, not zeros
    try:
        while not stop.wait(args.interval):
            totals = sink.store.totals()
            if totals != last and not args.quiet:
                console.print(
                    f"received: {totals['traces']} spans, {totals['metrics']} metric points, "
                    f"{totals['logs']} log records from {_services(sink)}"
                )
                last = dict(totals)
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
        if output is not None:
            output.close()
    totals = sink.store.totals()
    console.print(
        f"total: {totals['traces']} spans, {totals['metrics']} metric points, {totals['logs']} log records"
    )
    return 0


def _services(sink: object) -> str:
    from otelpipe.sink import OTLPSink

    assert isinstance(sink, OTLPSink)
    names = sorted({s for per in sink.store.per_service().values() for s in per})
    return ", ".join(names) or "-"


def build_parser() -> argparse.ArgumentParser:
    """The full command tree; areas add their own subcommands through `register(subparsers)`."""
    parser = argparse.ArgumentParser(prog="otelpipe", description=__doc__)
    parser.add_argument("--version", action="version", version=f"otelpipe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="print the effective configuration and every configuration error")
    check.set_defaults(func=_cmd_check)

    sink = sub.add_parser(
        "sink",
        help="run a local OTLP receiver (gRPC and HTTP) that counts, or with --tail shows, what it gets",
    )
    sink.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sink.add_argument(
        "--grpc-port", type=int, default=4317, help="OTLP/gRPC port, -1 to disable (default 4317)"
    )
    sink.add_argument(
        "--http-port", type=int, default=4318, help="OTLP/HTTP port, -1 to disable (default 4318)"
    )
    sink.add_argument("--output", "-o", help="append every request as an OTLP-JSON line to this file")
    sink.add_argument(
        "--max-output-bytes",
        type=int,
        default=256 * 1024 * 1024,
        help="rotate the output file to <file>.1 past this size (default 256 MiB)",
    )
    sink.add_argument("--interval", type=float, default=2.0, help="seconds between summaries (default 2)")
    sink.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (default: run)"
    )
    sink.add_argument("--quiet", action="store_true", help="print only the final total")
    sink.add_argument(
        "--tail",
        action="store_true",
        help="print what arrives: span names, new metric names, log bodies and incidents",
    )
    sink.set_defaults(func=_cmd_sink)

    for module in ("otelpipe.demo.cli", "otelpipe.slo.cli", "otelpipe.incidents.cli", "otelpipe.fleet.cli"):
        if importlib.util.find_spec(module) is not None:  # areas not built yet simply have no subcommand
            importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader stopped early (`| head`): end quietly, as other command-line tools do; stdout
        # goes to /dev/null so the interpreter's final flush does not complain either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
