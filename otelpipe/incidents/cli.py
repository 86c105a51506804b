"""`otelpipe incidents list|report`: open and past incidents and MTTR from the state directory."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

from otelpipe.incidents.document import incident_document
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


def _history(args: argparse.Namespace) -> tuple[IncidentStore, float | None] | int:
    if not args.state_dir:
        print(
            "no state directory: pass --state-dir or set OTELPIPE_STATE_DIR as the app has it",
            file=sys.stderr,
        )
        return 2
    since = None
    if args.since:
        try:
            since = time.time() - parse_duration(args.since)
        except ValueError:
            print(f"--since: got {args.since!r}, expected a duration such as 24h or 7d", file=sys.stderr)
            return 2
    if not (Path(args.state_dir) / FILENAME).is_file():
        print(f"no incident history in {args.state_dir} (no {FILENAME})", file=sys.stderr)
        return 1
    try:
        store = IncidentStore(args.state_dir)
    except (OSError, sqlite3.Error) as exc:
        print(f"cannot open incident history in {args.state_dir}: {exc}", file=sys.stderr)
        return 1
    return store, since


def _list(args: argparse.Namespace) -> int:
    opened = _history(args)
    if isinstance(opened, int):
        return opened
    store, since = opened
    try:
        incidents = store.history(None if args.open else args.limit, since=since)
    finally:
        store.close()
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
    try:
        report = summarize(store.history(since=since))
    finally:
        store.close()
    print(json.dumps(report_json(report), indent=2) if args.json else format_report(report))
    return 0
