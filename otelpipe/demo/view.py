"""Terminal view of the demo (rich): traffic, SLO burn, incidents, business and system figures, RED per
operation, correlated log lines.

The layout is cut to the terminal: on 80x24 the SLOs and incidents (the point of the demo) come
first, the business and system figures get one line, and the RED table gets the rows that are
left, saying how many it leaves out; larger terminals get boxed tables, a small figures table and
the log lines. Windows are shown at their real, scaled length
(the demo divides every SLO window by the time scale), every window is shown, a budget reads as
a bar or "exhausted x154", and text too long for its line ends in an ellipsis.

On a terminal it redraws in place; otherwise (CI, pipes) it prints a short status line every few
seconds and every incident transition as it arrives, so a log of the run still tells the story.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from otelpipe.demo.observed import MetricView
from otelpipe.demo.traffic import TrafficStats
from otelpipe.slo.durations import format_duration, parse_duration
from otelpipe.slo.wording import budget_short

#: operations of the demo's own control plane (fault injection), not of the shop's users
_CONTROL_PREFIXES = ("/admin/", "GET /admin", "POST /admin")
_COMPACT_WIDTH = 120  # below this width (or 40 lines) the compact layout is used
_COMPACT_HEIGHT = 40


@dataclass
class Frame:
    """Everything one redraw shows; built from what arrived (metrics, webhooks, service output)."""

    elapsed_s: float
    duration_s: float
    stats: TrafficStats
    red_rows: Sequence[Any] | None  # None: exported elsewhere, not visible here
    slo_rows: Sequence[Any]
    events: Sequence[dict[str, Any]]
    log_lines: Sequence[str] = field(default_factory=list)
    time_scale: float = 1.0
    figure_rows: Sequence[Any] = field(default_factory=list)  # observed.FigureRow: business and system


def real_window(label: str, time_scale: float) -> str:
    """The length a nominal window (`5m`) really has at `time_scale` (720: `0.4s`)."""
    try:
        seconds = parse_duration(label) / time_scale
    except ValueError:
        return label
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 10:
        return f"{seconds:.2g}s"
    return format_duration(round(seconds))


def _window_seconds(label: str) -> float:
    try:
        return parse_duration(label)
    except ValueError:
        return float("inf")


def _budget(remaining: float | None, width: int = 10) -> Text:
    """A bar of what is left (green, yellow, red), or `exhausted x154` in red."""
    if remaining is None:
        return Text("no traffic", style="dim")
    if remaining < 0:
        return Text(budget_short(remaining), style="bold red")
    filled = round(remaining * width)
    style = "green" if remaining > 0.5 else "yellow" if remaining > 0.2 else "red"
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    text.append(f" {remaining:.0%} left")
    return text


def _line(text: str | Text, width: int) -> Text:
    """One line, cut with an ellipsis when it does not fit."""
    line = text if isinstance(text, Text) else Text(text)
    line.no_wrap = True
    line.overflow = "ellipsis"
    line.truncate(width, overflow="ellipsis")
    return line


def _is_control(operation: str) -> bool:
    return any(operation.startswith(prefix) or prefix in operation for prefix in _CONTROL_PREFIXES)


def _traffic_line(frame: Frame, width: int) -> Text:
    stats = frame.stats
    client = sum(count for status, count in stats.by_status.items() if 400 <= status < 500)
    done = min(1.0, frame.elapsed_s / frame.duration_s) if frame.duration_s else 1.0
    bar = max(4, min(20, width // 10))
    text = Text("traffic ")
    text.append("━" * round(done * bar), style="green")
    text.append("━" * (bar - round(done * bar)), style="dim")
    text.append(f" {frame.elapsed_s:3.0f}s  {stats.sent} requests, ")
    text.append(f"{stats.server_errors} 5xx", style="red" if stats.server_errors else "")
    text.append(f", {client} 4xx")
    if client:
        text.append(" (client errors: no SLO burn)", style="dim")
    return _line(text, width)


def _slo_section(frame: Frame, width: int, compact: bool) -> list[RenderableType]:
    scale = frame.time_scale
    title = "SLOs (otelpipe.slo.* gauges)"
    if scale != 1:
        title += f"; windows scaled 1/{scale:g}: 30d lasts {real_window('30d', scale)}"
    if not frame.slo_rows:
        return [_line(Text(title, style="bold"), width), _line("  waiting for the first SLO gauges", width)]
    if compact:
        out: list[RenderableType] = [_line(Text(title, style="bold"), width)]
        name_width = min(28, max(len(row.slo) for row in frame.slo_rows))
        for row in frame.slo_rows:
            head = Text(f"{row.slo:<{name_width}}"[:name_width])
            objective = "-" if row.objective is None else f"{100 * row.objective:g}%"
            head.append(f" {objective:>6}  budget ")
            head.append_text(_budget(row.budget_remaining))
            out.append(_line(head, width))
            burns = _burns(row, scale, prefix="  burn ")
            if burns.cell_len > width:  # every window must show: drop the x, then wrap onto a second line
                burns = _burns(row, scale, prefix="  burn x ", unit="")
            out.append(burns if burns.cell_len > width else _line(burns, width))
        return out
    table = Table(title=title, expand=True, box=box.SIMPLE_HEAD)
    table.add_column("slo", no_wrap=True, overflow="ellipsis")
    table.add_column("objective", justify="right")
    table.add_column("error budget", no_wrap=True)
    table.add_column("burn rate per window, short to long (real length)", no_wrap=True, overflow="ellipsis")
    for row in frame.slo_rows:
        table.add_row(
            row.slo,
            "-" if row.objective is None else f"{100 * row.objective:g}%",
            _budget(row.budget_remaining),
            _burns(row, scale),
        )
    return [table]


def _burns(row: Any, scale: float, prefix: str = "", unit: str = "x") -> Text:
    """Every window, short to long, at its real length; a burn at or above 1x spends budget early."""
    text = Text(prefix)
    windows = sorted(row.burn_rates.items(), key=lambda item: _window_seconds(item[0]))
    for index, (window, burn) in enumerate(windows):
        if index:
            text.append(" ")
        style = "bold red" if burn >= 14.4 else "yellow" if burn >= 1 else ""
        text.append(f"{real_window(window, scale)}:")
        shown = f"{burn:.0f}" if burn >= 10 else f"{burn:.1f}".removesuffix(".0")  # 444x, 2.5x, 0x
        text.append(shown + unit, style=style)
    if not windows:
        text.append("-")
    return text


#: short names for the one-line figures on a small terminal
_SHORT_FIGURES = {
    "orders created": "orders",
    "mean order amount": "avg order",
    "payment charges": "charges",
    "CPU busy": "CPU",
    "memory used": "mem",
    "process CPU": "proc CPU",
}
#: business figures first: on a narrow line the system ones are what the ellipsis cuts
_SYSTEM_FIGURES = ("CPU busy", "memory used", "process CPU")


def figure_value(row: Any) -> str:
    """`412`, `$12,345.50`, `23%`: a figure as a person reads it (utilizations are exported as 0..1)."""
    if row.unit == "%":
        return f"{100 * row.value:.0f}%"
    if row.unit == "USD":
        return f"${row.value:,.2f}"
    text = f"{row.value:,.0f}" if float(row.value).is_integer() else f"{row.value:,.2f}"
    return f"{text} {row.unit}".rstrip()


def _figures_by_service(frame: Frame) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    order = ("orders created", "revenue", "mean order amount", "signups", "payment charges", *_SYSTEM_FIGURES)
    rank = {figure: index for index, figure in enumerate(order)}
    for row in sorted(frame.figure_rows, key=lambda r: rank.get(r.figure, len(order))):
        grouped.setdefault(row.service, []).append(row)
    return grouped


def _figure_section(frame: Frame, width: int, compact: bool) -> list[RenderableType]:
    """Business (orders, revenue, signups, charges) and system (CPU, memory) figures per service.

    Compact: one line, cut with an ellipsis, so the SLOs and incidents above keep their room.
    """
    grouped = _figures_by_service(frame)
    if compact:
        text = Text("figures ", style="bold")
        if not grouped:
            text.append("waiting for business and system metrics", style="dim")
        for index, (service, rows) in enumerate(grouped.items()):
            text.append(("; " if index else "") + service + " ")
            text.append(", ".join(f"{_SHORT_FIGURES.get(r.figure, r.figure)} {figure_value(r)}" for r in rows))
        return [_line(text, width)]
    table = Table(
        title="business & system (shop.*, payments.*, system.*, process.* metrics)",
        expand=True,
        box=None,
        show_header=False,
    )
    table.add_column("service", no_wrap=True, width=10)
    table.add_column("business", no_wrap=True, overflow="ellipsis", ratio=3)
    table.add_column("system", no_wrap=True, overflow="ellipsis", ratio=2)
    if not grouped:
        table.add_row("-", Text("waiting for business and system metrics", style="dim"), "")
    for service, rows in grouped.items():
        business = [r for r in rows if r.figure not in _SYSTEM_FIGURES]
        system = [r for r in rows if r.figure in _SYSTEM_FIGURES]
        table.add_row(
            service,
            "  ".join(f"{r.figure} {figure_value(r)}" for r in business) or "-",
            "  ".join(f"{r.figure} {figure_value(r)}" for r in system) or "-",
        )
    return [table]


def incident_line(event: dict[str, Any]) -> str:
    """`   opened critical shop/api-availability: <the engine's text for this transition>`."""
    incident = event.get("incident", {})
    traces = incident.get("traces") or []
    example = f" e.g. trace {traces[0]['trace_id']}" if traces and event.get("event") != "resolved" else ""
    return (
        f"{event.get('event', '?'):>9} {incident.get('severity', '?'):<8} {incident.get('service', '?')}/"
        f"{incident.get('name', '?')}: {incident.get('summary', '')}{example}"
    )


def _incident_section(frame: Frame, width: int, lines: int, *, wrap: bool) -> list[RenderableType]:
    """The latest transitions, one line each (cut with an ellipsis) or, with `wrap`, whole."""
    out: list[RenderableType] = [_line(Text("incidents (webhook deliveries)", style="bold"), width)]
    shown = [incident_line(e) for e in frame.events[-lines:]] or ["  no incident yet"]
    for text in shown:
        style = "red" if " opened " in text[:20] else "green" if "resolved" in text[:12] else ""
        out.append(Text(text, style=style) if wrap else _line(Text(text, style=style), width))
    return out


def _red_section(
    frame: Frame, width: int, rows_left: int, compact: bool, *, always_note: bool = False
) -> list[RenderableType]:
    """The RED table with at most `rows_left` rows, plus a line saying what it leaves out."""
    title = (
        "RED per operation: server errors = 5xx; a 4xx is the caller's error"
        if compact
        else "RED per operation (traces.span.metrics.*): a server span errs on 5xx or an exception; "
        "a 4xx is the caller's error (its client span), never the server's SLO"
    )
    table = Table(
        expand=True,
        box=None if compact else box.SIMPLE_HEAD,
        show_edge=False,
    )
    for column in ("service", "operation", "kind", "calls", "errors", "err %", "mean ms"):
        numeric = column in ("calls", "errors", "err %", "mean ms")
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=True,
            overflow="ellipsis",
            ratio=3 if column == "operation" else None,
            min_width=8 if column in ("service", "kind") else None,
        )
    header: list[RenderableType] = [_line(Text(title, style="bold"), width)]
    if frame.red_rows is None:
        table.add_row("-", "exported to an external endpoint: see your backend", "", "", "", "", "")
        return [*header, table]
    # operations with errors first, then the busiest: what a cut table must not lose
    rows = sorted(
        (r for r in frame.red_rows if not _is_control(r.operation)), key=lambda r: (r.errors == 0, -r.calls)
    )
    hidden = len(frame.red_rows) - len(rows)
    fit = max(0, rows_left)
    more = max(0, len(rows) - fit)
    for row in rows[:fit]:
        table.add_row(
            row.service,
            row.operation,
            row.kind,
            str(row.calls),
            str(row.errors),
            f"{100 * row.error_ratio:.1f}",
            f"{row.mean_ms:.1f}",
            style="red" if row.error_ratio > 0.05 else None,
        )
    notes = []
    if more:
        notes.append(f"{more} more operation(s) below (taller terminal: all)")
    if hidden:
        notes.append("/admin control endpoint hidden")
    out = [*header, table]
    if notes or always_note:
        out.append(_line(Text("; ".join(notes), style="dim"), width))
    return out


def log_summaries(lines: Sequence[str], limit: int) -> list[str]:
    """The latest shop log lines that carry a trace id, as `level trace span req message`."""
    shown: list[str] = []
    for line in reversed(lines):
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("trace_id", "0" * 32) == "0" * 32:
            continue
        shown.append(
            f"{str(record.get('level', ''))[:4]} trace={str(record['trace_id'])[:12]}… "
            f"span={str(record.get('span_id', ''))[:8]}… req={str(record.get('request_id', ''))[:8]} "
            f"{record.get('message', '')}"
        )
        if len(shown) == limit:
            break
    return list(reversed(shown))


def _log_panel(lines: Sequence[str], width: int, limit: int = 4) -> Panel:
    inner = max(10, width - 4)
    shown = [_line(text, inner) for text in log_summaries(lines, limit)] or [Text("waiting for logs")]
    return Panel(
        Group(*shown),
        title="shop log lines with their trace ids (JSON on stdout, shown as text)",
        width=width,
    )


def _height(parts: Sequence[RenderableType], width: int) -> int:
    """Lines `parts` take at `width` (rendered off-screen)."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    options = console.options.update(width=width)
    return sum(len(console.render_lines(part, options, pad=False)) for part in parts)


def render(frame: Frame, width: int, height: int) -> Group:
    """The whole view for a `width` x `height` terminal; never taller than `height` lines.

    SLOs and incidents come first and always show, then the business and system figures (one line
    on a small terminal); the RED table gets the lines left (saying how
    many operations it leaves out), and the log panel shows only when there is room for it.
    """
    compact = width < _COMPACT_WIDTH or height < _COMPACT_HEIGHT
    parts: list[RenderableType] = [_traffic_line(frame, width)]
    parts += _slo_section(frame, width, compact)
    parts += _incident_section(frame, width, 3 if compact else 6, wrap=not compact)
    tail: list[RenderableType] = [] if compact else [_log_panel(frame.log_lines, width)]
    left = height - _height(parts + tail, width)
    red_overhead = _height(_red_section(frame, width, 0, compact, always_note=True), width)
    figures = _figure_section(frame, width, compact)
    figures_height = _height(figures, width)
    if left - red_overhead >= figures_height:  # only in the room the SLOs and incidents leave
        parts += figures
        left -= figures_height
    parts += _red_section(frame, width, left - red_overhead, compact)
    return Group(*parts, *tail)


class DemoView:
    """Receives the runner's callbacks and renders them."""

    def __init__(
        self, console: Console | None = None, duration_s: float = 60.0, time_scale: float = 1.0
    ) -> None:
        self.console = console or Console()
        self.live_mode = self.console.is_terminal
        self.duration_s = duration_s
        self.time_scale = time_scale
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
        new_events = list(events[self._seen_events :])
        self._seen_events = len(events)
        if self._live is not None:
            frame = Frame(
                elapsed_s=elapsed,
                duration_s=self.duration_s,
                stats=stats,
                red_rows=metrics.red_rows() if metrics is not None else None,
                slo_rows=metrics.slo_rows() if metrics is not None else [],
                events=list(events),
                log_lines=list(shop_lines),
                time_scale=self.time_scale,
                figure_rows=metrics.figure_rows() if metrics is not None else [],
            )
            width, height = self.console.size
            self._live.update(render(frame, width, height - 2))  # the burst messages scroll above
            return
        for event in new_events:
            self.console.print("incident " + incident_line(event), highlight=False, soft_wrap=True)
        now = time.monotonic()
        if now - self._last_line >= 5:
            self._last_line = now
            self.console.print(
                f"[{elapsed:5.1f}s] {stats.sent} requests, {stats.server_errors} 5xx", highlight=False
            )

    def finish(self, result: Any) -> None:
        """The summary, once: the live view (or the streamed lines) already showed incidents and logs."""
        if self._live is not None:
            self._live.stop()
        console = self.console
        width = console.size.width
        if not self.live_mode:
            frame = Frame(
                elapsed_s=result.traffic.elapsed_s,
                duration_s=self.duration_s,
                stats=result.traffic,
                red_rows=result.red_rows or None,
                slo_rows=result.slo_rows,
                events=[],
                time_scale=self.time_scale,
                figure_rows=getattr(result, "figure_rows", []),
            )
            for part in _slo_section(frame, width, compact=False):
                console.print(part)
            for part in _figure_section(frame, width, compact=False):
                console.print(part)
            for part in _red_section(frame, width, 40, compact=False):
                console.print(part)
            console.print(_log_panel(result.log_lines, width))
        table = Table(title="demo summary")
        table.add_column("what")
        table.add_column("value", justify="right")
        table.add_row("requests sent", str(result.traffic.sent))
        table.add_row("5xx answers", str(result.traffic.server_errors))
        client = sum(c for status, c in result.traffic.by_status.items() if 400 <= status < 500)
        table.add_row("4xx answers (client errors)", str(client))
        table.add_row("incidents opened", str(len(result.opened)))
        table.add_row("incidents resolved", str(len(result.resolved)))
        for signal_name, count in result.sink_totals.items():
            unit = {"traces": "spans", "metrics": "metric points", "logs": "log records"}[signal_name]
            table.add_row(f"sink received {unit}", str(count))
        table.add_row("exported to", result.exported_to)
        table.add_row("processes left behind", str(len(result.leftover_pids)))
        console.print(table)
