"""`otelpipe incidents list|report`: open and past incidents and MTTR from the state directory."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from pathlib import Path

from otelpipe.cli_io import error
from otelpipe.incidents.document import incident_document
from otelpipe.incidents.model import Incident
from otelpipe.incidents.report import format_list, format_report, report_json, summarize
from otelpipe.incidents.store import FILENAME, IncidentStore
from otelpipe.slo.durations import parse_duration


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `incidents` command with `list` and `report` subcommands."""
    parser = subparsers.add_parser("incidents", help="list incidents and report MTTR")
    commands = parser.add_subparsers(dest="incidents_command", required=True)
    for name, handler, helptext in (
        ("list", _list, "open and past incidents, newest first"),
        ("report", _report, "incident counts and mean time to recover"),
    ):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument(
            "--state-dir",
            default=os.environ.get("OTELPIPE_STATE_DIR") or None,
            help=f"directory holding {FILENAME} (default: $OTELPIPE_STATE_DIR, as the app has it)",
        )
        sub.add_argument("--since", help="only incidents opened within this duration, e.g. 7d")
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "list":
            sub.add_argument("--open", action="store_true", help="only open incidents")
            sub.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
        sub.set_defaults(func=handler)


def _history(args: argparse.Namespace) -> tuple[IncidentStore | None, float | None] | int:
    """The open store and the `--since` cut-off; no store when the directory has no history yet."""
    if not args.state_dir:
        return error("no state directory: pass --state-dir or set OTELPIPE_STATE_DIR as the app has it")
    since = None
    if args.since:
        try:
            since = time.time() - parse_duration(args.since)
        except ValueError:
            return error(f"--since: got {args.since!r}, expected a duration such as 24h or 7d")
    if not Path(args.state_dir).is_dir():
        return error(f"no state directory {args.state_dir} (no incident history there)")
    if not (Path(args.state_dir) / FILENAME).is_file():
        return None, since  # the app has not recorded an incident yet: an empty history, not an error
    try:
        store = IncidentStore(args.state_dir)
    except (OSError, sqlite3.Error) as exc:
        return error(f"cannot open incident history in {args.state_dir}: {exc}")
    return store, since


def _incidents(store: IncidentStore | None, limit: int | None, since: float | None) -> list[Incident]:
    if store is None:
        return []
    try:
        return list(store.history(limit, since=since))
    finally:
        store.close()


def _list(args: argparse.Namespace) -> int:
    opened = _history(args)
    if isinstance(opened, int):
        return opened
    store, since = opened
    incidents = _incidents(store, None if args.open else args.limit, since)
    if args.open:
        incidents = [i for i in incidents if i.status == "open"][: args.limit]
    text = (
        json.dumps([incident_document(i) for i in incidents], indent=2)
        if args.json
        else format_list(incidents)
    )
    print(text)
    return 0


def _report(args: argparse.Namespace) -> int:
    opened = _history(args)
    if isinstance(opened, int):
        return opened
    store, since = opened
    report = summarize(_incidents(store, None, since))
    print(json.dumps(report_json(report), indent=2) if args.json else format_report(report))
    return 0
