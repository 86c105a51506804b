"""`otelpipe slo ...`: status table from persisted state, rule and dashboard generation, validation."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from otelpipe.cli_io import error, input_path, print_json, problem, shown, write_output
from otelpipe.config import load_settings
from otelpipe.incidents.metric_rules import load_metric_rules
from otelpipe.incidents.rules import RuleSpecError
from otelpipe.slo.check import check_slo_file
from otelpipe.slo.dashboard import generate_dashboard
from otelpipe.slo.durations import format_duration, parse_duration
from otelpipe.slo.evaluator import SLOEvaluator, SLOStatus
from otelpipe.slo.prometheus_rules import PrometheusNames, generate_rules
from otelpipe.slo.spec import SLOSpecError, load_spec
from otelpipe.slo.state import STATE_FILE_NAME, SavedSLO, read_saved
from otelpipe.slo.wording import budget_short, human_duration


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `slo` with subcommands status, rules, dashboard, validate."""
    slo = subparsers.add_parser(
        "slo", help="SLO status, Prometheus rules, Grafana dashboard, spec validation"
    )
    commands = slo.add_subparsers(dest="slo_command", required=True)

    status = commands.add_parser("status", help="table of SLOs from the persisted state")
    status.add_argument(
        "--state-dir",
        default=os.environ.get("OTELPIPE_STATE_DIR") or None,
        help=f"directory holding {STATE_FILE_NAME} (default: $OTELPIPE_STATE_DIR, as the app has it)",
    )
    status.add_argument(
        "--spec", help="spec file (- for stdin): recompute figures for now from the saved windows"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)

    rules = commands.add_parser("rules", help="write Prometheus recording and alerting rules for a spec")
    rules.add_argument("spec", help="SLO spec file (native or OpenSLO v1), - for stdin")
    rules.add_argument("-o", "--output", help="file to write (default or -: stdout)")
    rules.add_argument(
        "--unit",
        choices=("ms", "s"),
        help="duration histogram unit, as OTELPIPE_RED_UNIT or the connector's histogram.unit "
        "(default: OTELPIPE_RED_UNIT or its default ms, as the app uses)",
    )
    rules.add_argument(
        "--boundaries",
        help="histogram buckets in seconds, comma-separated, that latency thresholds must be among "
        "(default: OTELPIPE_RED_BUCKETS or its default, the spanmetrics connector's buckets)",
    )
    rules.add_argument("--collector-ms", action="store_true", help="same as --unit ms (kept for old scripts)")
    rules.set_defaults(func=_rules)

    dashboard = commands.add_parser("dashboard", help="write a Grafana dashboard JSON for a spec")
    dashboard.add_argument("spec", help="SLO spec file (native or OpenSLO v1), - for stdin")
    dashboard.add_argument("-o", "--output", help="file to write (default or -: stdout)")
    dashboard.set_defaults(func=_dashboard)

    validate = commands.add_parser(
        "validate", help="check a spec (SLOs and rules), print every problem and what it declares"
    )
    validate.add_argument("spec", help="SLO spec file (native or OpenSLO v1), - for stdin")
    validate.add_argument(
        "--boundaries",
        help="RED histogram boundaries in seconds, comma-separated, to check latency thresholds against "
        "(default: OTELPIPE_RED_BUCKETS or its default, as the app uses)",
    )
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.set_defaults(func=_validate)


def _rules(args: argparse.Namespace) -> int:
    red = load_settings(strict=False).settings.red  # the app's unit and buckets unless given
    boundaries: Sequence[float] = red.buckets
    unit = args.unit or ("ms" if args.collector_ms else red.unit)
    if args.boundaries:
        try:
            boundaries = [float(b) for b in args.boundaries.split(",") if b.strip()]
        except ValueError:
            return error(f"--boundaries: got {args.boundaries!r}, expected numbers such as 0.1,0.4,0.8")
    with input_path(args.spec) as path:
        try:
            spec = load_spec(path)
            metric_rules = load_metric_rules(path)
            text = generate_rules(
                spec,
                names=PrometheusNames.for_unit(unit),
                boundaries=boundaries,
                metric_rules=metric_rules,
            )
        except (SLOSpecError, RuleSpecError, OSError) as exc:
            return error(shown(str(exc), path, args.spec))
    write_output(text, args.output)
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    with input_path(args.spec) as path:
        try:
            spec = load_spec(path)
            metric_rules = load_metric_rules(path)
        except (SLOSpecError, RuleSpecError, OSError) as exc:
            return error(shown(str(exc), path, args.spec))
    write_output(generate_dashboard(spec, metric_rules=metric_rules), args.output)
    return 0


def _validate(args: argparse.Namespace) -> int:
    if args.boundaries:
        try:
            boundaries = tuple(float(b) for b in args.boundaries.split(",") if b.strip())
        except ValueError:
            return error(f"--boundaries: got {args.boundaries!r}, expected numbers such as 0.1,0.25,0.5")
    else:
        # what the app's RED store will use (OTELPIPE_RED_BUCKETS or its default)
        boundaries = load_settings(strict=False).settings.red.buckets
    with input_path(args.spec) as path:
        checked = check_slo_file(path, boundaries)
        problems = [shown(p, path, args.spec) for p in checked.errors]
    name = "<stdin>" if args.spec == "-" else args.spec
    rule_count = len(checked.rules) + len(checked.metric_rules)
    if args.json:
        print_json(
            {
                "source": name,
                "ok": not problems,
                "errors": problems,
                "slos": [
                    {
                        "key": slo.key,
                        "objective": slo.objective,
                        "sli": slo.sli.kind,
                        "threshold_s": slo.sli.threshold_seconds,
                        "period_s": slo.period,
                        "selector": dict(slo.sli.selector.dimensions()),
                        "tiers": [{"name": t.name, "factor": t.factor} for t in slo.tiers],
                    }
                    for slo in checked.spec.slos
                ],
                "rules": [
                    {
                        "key": rule.key,
                        "kind": rule.kind,
                        "above": rule.above,
                        "window_s": rule.window_s,
                        "severity": rule.severity,
                    }
                    for rule in checked.rules
                ],
                "metric_rules": [
                    {"describe": m.describe(), "severity": m.severity} for m in checked.metric_rules
                ],
            }
        )
        return 2 if problems else 0
    for message in problems:
        problem(message)
    if problems and (checked.usable or len(problems) > 1):  # one problem needs no summary line
        print(
            f"{name}: {len(problems)} problem(s); at start-up each is skipped and "
            f"{len(checked.spec.slos)} SLO(s), {rule_count} rule(s) run",
            file=sys.stderr,
        )
    else:
        print(f"{name}: {len(checked.spec.slos)} SLO(s), {rule_count} rule(s) OK")
    for slo in checked.spec.slos:
        what = (
            slo.sli.kind
            if slo.sli.threshold_seconds is None
            else f"latency <= {format_duration(slo.sli.threshold_seconds)}"
        )
        tiers = ", ".join(f"{t.name} x{t.factor:g}" for t in slo.tiers)
        selects = ", ".join(f"{name}={value}" for name, value in slo.sli.selector.dimensions())
        print(
            f"  SLO {slo.key}: {slo.objective * 100:g}% {what} over {format_duration(slo.period)} "
            f"of {selects}; tiers {tiers}"
        )
    for rule in checked.rules:
        threshold = (
            f"error rate > {rule.above * 100:g}%"
            if rule.kind == "error_rate"
            else f"p{rule.quantile * 100:g} latency > {format_duration(rule.above)}"
        )
        print(f"  rule {rule.key}: {threshold} over {format_duration(rule.window_s)} ({rule.severity})")
    for metric_rule in checked.metric_rules:
        print(
            f"  metric rule {metric_rule.key('<this service>')}: {metric_rule.describe()} ({metric_rule.severity})"
        )
    return 2 if problems else 0


def _status(args: argparse.Namespace) -> int:
    if not args.state_dir:
        return error("no state directory: pass --state-dir or set OTELPIPE_STATE_DIR as the app has it")
    try:
        saved = read_saved(args.state_dir)
    except FileNotFoundError:
        return error(f"no SLO state in {args.state_dir} ({STATE_FILE_NAME} not found)")
    except sqlite3.DatabaseError as exc:
        return error(f"{Path(args.state_dir) / STATE_FILE_NAME} is not usable: {exc}")
    settings = load_settings(strict=False).settings
    if args.spec:
        with input_path(args.spec) as path:
            try:
                spec = load_spec(path)
            except SLOSpecError as exc:
                return error(shown(str(exc), path, args.spec))
        thresholds = sorted(
            {s.sli.threshold_seconds for s in spec.slos if s.sli.threshold_seconds is not None}
        )
        # windows are saved at the app's time scale; read them at the same one (OTELPIPE_SLO_TIME_SCALE)
        evaluator = SLOEvaluator(spec, boundaries=thresholds, time_scale=settings.slo.time_scale)
        evaluator.load_saved(saved)
        statuses = evaluator.status()
    else:
        statuses = []
        for row in saved.values():
            try:
                statuses.append(SLOStatus.from_json(row.status))
            except (TypeError, ValueError):
                continue
    if not statuses:
        return error(f"no SLOs saved in {args.state_dir}")
    if args.json:
        newest = max((row.saved_at for row in saved.values()), default=0.0)
        print_json(
            {
                "saved_at": newest,
                "age_s": max(0.0, time.time() - newest),
                "save_interval_s": settings.slo.save_interval_s,
                "recomputed": bool(args.spec),
                "slos": [s.to_json() for s in sorted(statuses, key=lambda s: s.key)],
            }
        )
        return 0
    console = Console(highlight=False)
    for line in _report(statuses):
        console.print(line)
    console.print(
        _freshness(saved, settings.slo.save_interval_s, recomputed=bool(args.spec)), highlight=False
    )
    return 0


def _freshness(
    saved: Mapping[str, SavedSLO], interval_s: float, *, recomputed: bool, now: float | None = None
) -> str:
    """How old the figures are: the app saves every OTELPIPE_STATE_SAVE_INTERVAL and at shutdown."""
    newest = max((row.saved_at for row in saved.values()), default=0.0)
    age = max(0.0, (time.time() if now is None else now) - newest)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(newest))
    text = (
        f"{'windows' if recomputed else 'figures'} saved {human_duration(age)} ago ({when})"
        + ("; figures recomputed for now" if recomputed else "")
        + f"; the app saves every {human_duration(interval_s)} (OTELPIPE_STATE_SAVE_INTERVAL) and at shutdown"
    )
    if age > 3 * interval_s + 10:
        text += "; older than that: the app has stopped, or runs with another state directory"
    return text


def _window_order(label: str) -> float:
    try:
        return parse_duration(label)
    except ValueError:
        return float("inf")


def _report(statuses: Sequence[SLOStatus]) -> list[str]:
    """A few lines per SLO, which fit any terminal width: full names, windows short to long.

    A wide table squeezed into 80 columns cut names until two SLOs looked alike; lines wrap instead.
    """
    lines: list[str] = []
    for s in sorted(statuses, key=lambda s: s.key):
        sli = "no traffic" if s.sli is None else f"{s.sli * 100:.3f}% good of {s.total}"
        windows = sorted(s.burn_rates.items(), key=lambda item: _window_order(item[0]))  # short to long
        burns = " ".join(f"{window}:{rate:.2f}" for window, rate in windows)
        alert = (
            f"[bold red]FIRING {s.severity}[/] ({', '.join(s.firing_tiers)})"
            if s.firing
            else "[green]ok[/green]"
        )
        budget = budget_short(s.budget_remaining if s.total else None)
        lines.append(f"[bold]{escape(s.key)}[/]  objective {s.objective * 100:g}% over {s.period}")
        lines.append(f"  {alert}; SLI {sli}; error budget {budget}")
        lines.append(f"  burn {burns}")
    return lines
