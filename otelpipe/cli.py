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
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from otelpipe import __version__
from otelpipe.cli_io import PREFIX, CLIError, error, is_terminal, print_json, problem
from otelpipe.config import OTEL_VARIABLES, VARIABLES, LoadedSettings, load_settings, parse_duration
from otelpipe.diagnostics import looks_secret, shown_value
from otelpipe.slo.durations import format_duration


def _check_rows(loaded: LoadedSettings) -> list[tuple[str, str, str]]:
    """(variable, value as shown, source) for every otelpipe and SDK variable; secrets masked."""
    rows: list[tuple[str, str, str]] = []
    for variable in VARIABLES:
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
        source = loaded.sources.get(variable.name)
        where = "default" if source is None else "env" if source == variable.name else f"env ({source})"
        rows.append((variable.name, shown, where))
    for name, _meaning in OTEL_VARIABLES:
        raw = os.environ.get(name)
        shown = shown_value(name, raw) if raw else "(unset)"  # headers, OTLP endpoint passwords
        rows.append((name, shown, "env" if raw else "SDK default"))
    return rows


def _cmd_check(args: argparse.Namespace) -> int:
    loaded = load_settings(strict=False)
    rows = _check_rows(loaded)
    errors = [str(error) for error in loaded.errors]
    warnings: list[str] = list(loaded.deprecations)  # old variable names: read, but say the new one
    slo_summary: dict[str, object] | None = None
    slo_file = loaded.settings.slo.file
    if slo_file:
        from otelpipe.slo.check import check_slo_file

        # the same boundaries the app's RED store will use, so a latency threshold is judged as at start-up
        checked = check_slo_file(slo_file, loaded.settings.red.buckets)
        errors.extend(f"OTELPIPE_SLO_FILE: {problem}" for problem in checked.errors)
        slo_summary = {
            "file": slo_file,
            "slos": len(checked.spec.slos),
            "rules": len(checked.rules) + len(checked.metric_rules),
            "problems": len(checked.errors),
        }
    from otelpipe._sdk import check_sdk_hooks, sdk_version
    from otelpipe.instrumentations import skipped_instrumentations

    hooks = check_sdk_hooks()
    missing = [result for result in hooks if not result.ok]
    errors.extend(
        f"SDK hook {result.hook.symbol} missing ({result.error}): {result.hook.degraded}"
        for result in missing
    )
    warnings.extend(skipped_instrumentations())
    code = 1 if errors else 0  # 1: the check ran and found problems (2 is kept for bad command input)
    if args.json:
        print_json(
            {
                "ok": not errors,
                "variables": [{"name": n, "value": v, "source": s} for n, v, s in rows],
                "slo_file": slo_summary,
                "sdk": {"version": sdk_version(), "hooks": len(hooks), "hooks_missing": len(missing)},
                "errors": errors,
                "warnings": warnings,
            }
        )
        return code
    if is_terminal():
        console = Console(highlight=False, soft_wrap=True)
        table = Table(title="otelpipe effective configuration", show_lines=False)
        for column in ("variable", "value", "source"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
    else:  # piped: plain aligned lines at full width, never a name cut to fit 80 columns
        width = max(len(name) for name, _, _ in rows)
        value_width = min(60, max(len(value) for _, value, _ in rows))
        for name, value, source in rows:
            print(f"{name:<{width}}  {value:<{value_width}}  {source}")
    if slo_summary is not None:
        problems = int(str(slo_summary["problems"]))
        print(
            f"SLO file {slo_file}: {slo_summary['slos']} SLO(s) and {slo_summary['rules']} rule(s) will run"
            + (f"; {problems} problem(s), each skipped at start-up" if problems else "")
        )
    print(f"opentelemetry-sdk {sdk_version()}: {len(hooks) - len(missing)}/{len(hooks)} SDK hooks present")
    sys.stdout.flush()
    for warning in warnings:
        print(f"otelpipe: warning: {warning}", file=sys.stderr)
    for error_line in errors:
        problem(error_line)
    if errors:
        print(f"{len(errors)} configuration error(s)", file=sys.stderr)
        return code
    print("configuration OK")
    return 0


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
        raise CLIError(f"cannot start the sink: {exc}") from None
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


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one error form: a single `otelpipe: error:` line and exit 2.

    Subcommand parsers are built from the same class, so `otelpipe slo rules --unit us` reads
    like every other bad input instead of argparse's usage block and per-command prefix.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PREFIX}{message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full command tree; areas add their own subcommands through `register(subparsers)`."""
    parser = _Parser(prog="otelpipe", description=__doc__)
    parser.add_argument("--version", action="version", version=f"otelpipe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="print the effective configuration and every configuration error")
    check.add_argument("--json", action="store_true", help="machine-readable output")
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
    except CLIError as exc:
        return error(str(exc))
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
