"""Terminal view of the demo (rich): progress, RED per operation, SLO burn, incidents, correlated log lines.

On a terminal it redraws in place; otherwise (CI, pipes) it prints a short status line every few
seconds and every incident transition as it arrives, so a log of the run still tells the story.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from otelpipe.demo.observed import MetricView
from otelpipe.demo.traffic import TrafficStats

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(label: str) -> float:
    try:
        return float(label[:-1]) * _UNIT_SECONDS.get(label[-1], 1)
    except ValueError:
        return float("inf")


def _red_table(metrics: MetricView | None, rows: Sequence[Any] | None = None) -> Table:
    table = Table(title="RED per operation (from exported traces.span.metrics.*)", expand=True)
    for column in ("service", "operation", "kind", "calls", "errors", "err %", "mean ms"):
        table.add_column(
            column, justify="right" if column in ("calls", "errors", "err %", "mean ms") else "left"
        )
    if metrics is None and rows is None:
        table.add_row("-", "exporting to an external endpoint: see your backend", "", "", "", "", "")
        return table
    for row in (rows if rows is not None else metrics.red_rows() if metrics else [])[:12]:
        style = "red" if row.error_ratio > 0.05 else None
        table.add_row(
            row.service,
            row.operation,
            row.kind,
            str(row.calls),
            str(row.errors),
            f"{100 * row.error_ratio:.1f}",
            f"{row.mean_ms:.1f}",
            style=style,
        )
    return table


def _slo_table(metrics: MetricView | None, rows: Sequence[Any] | None = None) -> Table:
    table = Table(title="SLOs (otelpipe.slo.* gauges; windows scaled for the demo)", expand=True)
    table.add_column("slo")
    table.add_column("objective", justify="right")
    table.add_column("budget left", justify="right")
    table.add_column("burn rate per window (short to long)")
    for row in rows if rows is not None else metrics.slo_rows() if metrics else []:
        budget = "-" if row.budget_remaining is None else f"{100 * row.budget_remaining:.1f}%"
        burns = sorted(row.burn_rates.items(), key=lambda item: _seconds(item[0]))
        table.add_row(
            row.slo,
            "-" if row.objective is None else f"{100 * row.objective:g}%",
            budget,
            "  ".join(f"{window} {burn:.1f}x" for window, burn in burns[:6]) or "-",
            style="red" if any(burn >= 14.4 for _, burn in burns) else None,
        )
    return table


def _incident_line(event: dict[str, Any]) -> str:
    incident = event.get("incident", {})
    traces = incident.get("traces") or []
    example = f" e.g. trace {traces[0]['trace_id']}" if traces else ""
    return (
        f"{event.get('event', '?'):>9} {incident.get('severity', '?'):<8} {incident.get('service', '?')}/"
        f"{incident.get('name', '?')}: {incident.get('summary', '')}{example}"
    )


def _incidents_panel(events: Sequence[dict[str, Any]]) -> Panel:
    lines = [_incident_line(e) for e in events[-6:]] or ["no incident yet"]
    return Panel("\n".join(lines), title="incidents (webhook deliveries)")


def _log_panel(lines: Sequence[str]) -> Panel:
    shown: list[str] = []
    for line in reversed(lines):
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("trace_id", "0" * 32) == "0" * 32:
            continue
        shown.append(
            f"{record.get('level', '')[:4]} trace={record['trace_id'][:12]}… span={record.get('span_id', '')[:8]}… "
            f"req={str(record.get('request_id', ''))[:8]} {record.get('message', '')[:70]}"
        )
        if len(shown) == 4:
            break
    return Panel("\n".join(reversed(shown)) or "waiting for logs", title="correlated JSON log lines (shop)")


class DemoView:
    """Receives the runner's callbacks and renders them."""

    def __init__(self, console: Console | None = None, duration_s: float = 60.0) -> None:
        self.console = console or Console()
        self.live_mode = self.console.is_terminal
        self._progress = Progress(
            TextColumn("traffic"), BarColumn(), TextColumn("{task.fields[detail]}"), TimeElapsedColumn()
        )
        self._task = self._progress.add_task("traffic", total=duration_s, detail="")
        self._live: Live | None = None
        self._seen_events = 0
        self._last_line = 0.0

    def started(self, *, shop: Any, payments: Any, endpoint: str, sink: bool) -> None:
        self.console.print(
            f"shop {shop.url} (pid {shop.pid}) and payments {payments.url} (pid {payments.pid}) "
            "under opentelemetry-instrument + otelpipe; "
            f"OTLP to {endpoint}{' (embedded otelpipe sink)' if sink else ''}"
        )
        if self.live_mode:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.start()

    def burst(self, action: str) -> None:
        message = "error burst injected on payments" if action == "start" else "error burst over"
        if self._live is not None:
            self._live.console.print(f"[bold yellow]{message}[/]")
        else:
            self.console.print(message)

    def update(
        self,
        elapsed: float,
        stats: TrafficStats,
        metrics: MetricView | None,
        events: Sequence[dict[str, Any]],
        shop_lines: Sequence[str],
        payment_lines: Sequence[str],
    ) -> None:
        detail = f"{stats.sent} requests, {stats.server_errors} 5xx"
        self._progress.update(
            self._task, completed=min(elapsed, self._progress.tasks[0].total or elapsed), detail=detail
        )
        new_events = list(events[self._seen_events :])
        self._seen_events = len(events)
        if self._live is not None:
            self._live.update(
                Group(
                    self._progress,
                    _red_table(metrics),
                    _slo_table(metrics),
                    _incidents_panel(events),
                    _log_panel(list(shop_lines)),
                )
            )
            return
        for event in new_events:
            self.console.print("incident " + _incident_line(event))
        now = time.monotonic()
        if now - self._last_line >= 5:
            self._last_line = now
            self.console.print(f"[{elapsed:5.1f}s] {detail}")

    def finish(self, result: Any) -> None:
        if self._live is not None:
            self._live.stop()
        console = self.console
        if not self.live_mode and result.red_rows:
            console.print(_red_table(None, result.red_rows))
            console.print(_slo_table(None, result.slo_rows))
        table = Table(title="demo summary")
        table.add_column("what")
        table.add_column("value", justify="right")
        table.add_row("requests sent", str(result.traffic.sent))
        table.add_row("5xx answers", str(result.traffic.server_errors))
        table.add_row("incidents opened", str(len(result.opened)))
        table.add_row("incidents resolved", str(len(result.resolved)))
        for signal_name, count in result.sink_totals.items():
            unit = {"traces": "spans", "metrics": "metric points", "logs": "log records"}[signal_name]
            table.add_row(f"sink received {unit}", str(count))
        table.add_row("exported to", result.exported_to)
        table.add_row("processes left behind", str(len(result.leftover_pids)))
        console.print(table)
        for event in result.incidents:
            console.print("incident " + _incident_line(event))
        console.print(_log_panel(result.log_lines))
