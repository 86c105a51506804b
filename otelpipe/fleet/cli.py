"""`otelpipe gateway`: run the fleet-wide SLO evaluator until stopped."""

from __future__ import annotations

import argparse
import signal
import threading
import time

from rich.console import Console

from otelpipe.cli_io import CLIError
from otelpipe.config import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `gateway` subcommand."""
    gateway = sub.add_parser(
        "gateway",
        help="receive RED over OTLP from apps or a Collector; evaluate SLOs and rules per service",
        description="Receive RED metrics (otelpipe's or the spanmetrics connector's) over OTLP gRPC "
        "and HTTP, merge all senders of each service, evaluate the SLOs and rules of "
        "OTELPIPE_SLO_FILE and raise incidents as configured by the OTELPIPE_* variables.",
    )
    gateway.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    gateway.add_argument("--grpc-port", type=int, default=4317, help="OTLP/gRPC port, -1 to disable")
    gateway.add_argument("--http-port", type=int, default=4318, help="OTLP/HTTP port, -1 to disable")
    gateway.add_argument("--interval", type=float, default=10.0, help="seconds between summaries")
    gateway.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds")
    gateway.add_argument("--quiet", action="store_true", help="print only the start and stop lines")
    gateway.set_defaults(func=_cmd_gateway)


def _cmd_gateway(args: argparse.Namespace) -> int:
    from otelpipe.fleet.gateway import start_gateway

    console = Console(highlight=False, soft_wrap=True)
    try:
        gateway = start_gateway(
            host=args.host,
            grpc_port=None if args.grpc_port < 0 else args.grpc_port,
            http_port=None if args.http_port < 0 else args.http_port,
        )
    except ConfigError as error:
        raise CLIError(str(error)) from None
    except OSError as error:
        raise CLIError(f"cannot start the gateway: {error}") from None
    receiver = gateway.receiver
    console.print(
        "otelpipe gateway listening: "
        f"OTLP/gRPC {receiver.grpc_endpoint if receiver.grpc_port else 'off'}, "
        f"OTLP/HTTP {receiver.http_endpoint if receiver.http_port else 'off'}"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        while not stop.wait(min(args.interval, 0.5) if deadline else args.interval):
            if not args.quiet:
                console.print(_summary(gateway))
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()
    console.print(f"gateway stopped: {_summary(gateway)}")
    return 0


def _summary(gateway: object) -> str:
    from otelpipe.fleet.gateway import Gateway

    assert isinstance(gateway, Gateway)
    merger, engine = gateway.merger, gateway.pipeline.incident_engine
    open_incidents = [i.key for i in engine.open_incidents()] if engine is not None else []
    return (
        f"{merger.instances()} senders, services {', '.join(merger.services()) or '-'}, "
        f"{merger.stats.points} points merged, {merger.stats.resets} resets; "
        f"open incidents: {', '.join(open_incidents) or 'none'}"
    )
