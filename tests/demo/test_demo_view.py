"""The demo's live view rendered with rich's recording console at 80x24 and 160x50: what a person sees."""

from __future__ import annotations

import io
import json
from collections import Counter
from types import SimpleNamespace

import pytest
from rich.console import Console

from otelpipe.demo.observed import FigureRow, REDRow, SLORow
from otelpipe.demo.traffic import TrafficStats
from otelpipe.demo.view import DemoView, Frame, real_window, render

WINDOWS = {"1d": 1.2, "1h": 15.2, "2h": 9.3, "30d": 0.3, "30m": 21.0, "3d": 0.5, "5m": 28.1, "6h": 4.1}
REAL = ["417ms", "2.5s", "5s", "10s", "30s", "2m", "6m", "1h"]  # 5m ... 30d divided by 720, in order
TRACE = "0af7651916cd43dd8448eb211c80319c"
OPERATIONS = [
    ("shop", "GET /api/products", "server", 300, 0),
    ("shop", "POST /api/orders", "server", 150, 41),
    ("shop", "order.create", "internal", 150, 41),
    ("shop", "GET /api/orders/<order_id>", "server", 60, 0),
    ("shop", "SELECT shop", "client", 700, 0),
    ("shop", "POST", "client", 150, 41),
    ("payments", "POST /charge", "server", 150, 41),
    ("payments", "GET /stock/<sku>", "server", 200, 0),
    ("payments", "POST /admin/faults", "server", 2, 0),
    ("shop", "GET /api/users/<user_id>", "server", 40, 0),
    ("shop", "reconcile", "internal", 30, 0),
    ("payments", "INSERT payments", "client", 150, 0),
    ("shop", "GET /api/products/<sku>", "server", 80, 0),
    ("shop", "GET", "client", 200, 0),
]
OPENED = "api-availability burning 28.1x budget over 5m/1h (page fires at 14.4x); 30d error budget exhausted (spent x154)"
RESOLVED = (
    "recovered after 19s, clear for 5s; now: api-availability below its alert thresholds: burning 0.7x over "
    "5m/1h (page fires at 14.4x); 30d error budget exhausted (spent x154)"
)
FIGURES = [
    FigureRow("shop", "orders created", 412),
    FigureRow("shop", "revenue", 22714.5, "USD"),
    FigureRow("shop", "mean order amount", 55.13, "USD"),
    FigureRow("shop", "signups", 12),
    FigureRow("shop", "CPU busy", 0.234, "%"),
    FigureRow("shop", "memory used", 0.41, "%"),
    FigureRow("payments", "payment charges", 409),
    FigureRow("payments", "process CPU", 0.031, "%"),
]
MESSAGE = "order created order_id=42 sku=SKU-1 quantity=2 amount_usd=1234.50 for a customer who ordered a lot"


def _event(kind: str, summary: str) -> dict[str, object]:
    traces = [{"trace_id": TRACE}] if kind == "opened" else []
    incident = {"severity": "critical", "service": "shop", "name": "api-availability", "summary": summary}
    return {"event": kind, "incident": {**incident, "traces": traces}}


def _frame() -> Frame:
    log = json.dumps(
        {
            "level": "INFO",
            "trace_id": TRACE,
            "span_id": "b7ad6b7169203331",
            "request_id": "r-1",
            "message": MESSAGE,
        }
    )
    return Frame(
        elapsed_s=31,
        duration_s=60,
        stats=TrafficStats(sent=612, by_status=Counter({200: 540, 404: 31, 502: 41})),
        red_rows=[REDRow(s, o, k, c, e, 0.004 * c, c) for s, o, k, c, e in OPERATIONS],
        slo_rows=[
            SLORow("shop", "api-availability", 0.999, -153.2, dict(WINDOWS)),
            SLORow("shop", "checkout-latency", 0.99, 0.62, {k: v / 30 for k, v in WINDOWS.items()}),
            SLORow("shop", "order-processing", 0.995, 0.97, {k: v / 100 for k, v in WINDOWS.items()}),
        ],
        events=[_event("opened", OPENED), _event("resolved", RESOLVED)],
        log_lines=[log] * 5,
        time_scale=720,
        figure_rows=list(FIGURES),
    )


def _screen(width: int, height: int) -> list[str]:
    console = Console(width=width, height=height, record=True, file=io.StringIO())
    console.print(render(_frame(), width, height))
    return console.export_text().splitlines()


def test_real_window_lengths() -> None:
    assert [real_window(w, 720) for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")] == REAL
    assert real_window("5m", 1) == "5m"


@pytest.mark.parametrize(("width", "height"), [(80, 24), (160, 50)])
def test_view_fits_and_keeps_slos_and_incidents_visible(width: int, height: int) -> None:
    lines = _screen(width, height)
    screen = "\n".join(lines)
    assert len(lines) <= height and max(map(len, lines)) <= width
    for name in ("api-availability", "checkout-latency", "order-processing"):
        slo_line = next(i for i, line in enumerate(lines) if line.lstrip().startswith(name))
        burns = " ".join(lines[slo_line : slo_line + 2])
        assert [w for w in REAL if f" {w}:" in f" {burns}"] == REAL  # every window, real length, in order
    assert "exhausted x154" in screen and "-15320" not in screen  # a budget as a person reads it
    assert "62% left" in screen
    assert "windows scaled 1/720: 30d lasts 1h" in screen
    assert "   opened critical shop/api-availability" in screen
    assert " resolved critical shop/api-availability: recovered after 19s" in screen
    assert "31 4xx (client errors: no SLO burn)" in screen
    assert "a 4xx is the caller's" in screen
    assert "/admin/faults" not in screen and "/admin control endpoint hidden" in screen
    assert "..." not in screen  # cut text ends in a real ellipsis, never a bare "..."


def test_small_terminal_says_what_it_leaves_out_and_cuts_with_an_ellipsis() -> None:
    screen = "\n".join(_screen(80, 24))
    assert "order.create" in screen and "POST /charge" in screen  # failing operations are never cut
    assert "4 more operation(s) below" in screen  # one line went to the figures
    assert "budget…" in screen or "…" in screen
    assert "shop log lines" not in screen  # no room for logs; SLOs and incidents win


def test_small_terminal_gives_the_figures_one_line_below_slos_and_incidents() -> None:
    lines = _screen(80, 24)
    figures = [i for i, line in enumerate(lines) if line.startswith("figures ")]
    assert len(figures) == 1 and "business & system" not in "\n".join(lines)
    assert lines[figures[0]].startswith("figures shop orders 412, revenue $22,714.50, avg order $55.13")
    slos = lines.index(next(line for line in lines if line.startswith("SLOs")))
    incidents = lines.index("incidents (webhook deliveries)")
    assert slos < incidents < figures[0]
    assert " resolved critical shop/api-availability" in lines[incidents + 2]  # both transitions still shown
    for name in ("api-availability", "checkout-latency", "order-processing"):
        assert any(line.startswith(name) for line in lines[slos:incidents])


def test_small_terminal_drops_the_figures_before_an_slo_or_incident() -> None:
    frame = _frame()
    frame.slo_rows = [*frame.slo_rows, *(SLORow("shop", f"extra-{n}", 0.99, 0.5, dict(WINDOWS)) for n in range(5))]
    console = Console(width=80, height=24, record=True, file=io.StringIO())
    console.print(render(frame, 80, 24))
    lines = console.export_text().splitlines()
    assert len(lines) <= 24
    assert "figures " not in "\n".join(lines)  # no room left: the figures give way
    assert any(line.startswith("extra-4") for line in lines)
    assert " resolved critical shop/api-availability" in "\n".join(lines)


def test_large_terminal_shows_every_operation_whole_incidents_and_logs() -> None:
    screen = "\n".join(_screen(160, 50))
    assert "more operation(s) below" not in screen
    for _, operation, *_ in OPERATIONS:
        if "/admin" not in operation:
            assert operation in screen
    assert "(spent x154) e.g." in screen  # whole incident lines (wrapped, not cut)
    assert "shop log lines with their trace ids (JSON on stdout, shown as text)" in screen
    assert f"trace={TRACE[:12]}" in screen and "amount_usd=1234.50" in screen
    assert "…" in screen  # the long log message is cut with an ellipsis


def test_large_terminal_shows_business_and_system_figures_per_service() -> None:
    lines = _screen(160, 50)
    screen = "\n".join(lines)
    assert "business & system" in screen
    shop = next(line for line in lines if line.lstrip().startswith("shop ") and "orders created" in line)
    for figure in ("orders created 412", "revenue $22,714.50", "mean order amount $55.13", "signups 12"):
        assert figure in shop
    assert "CPU busy 23%" in shop and "memory used 41%" in shop  # utilizations 0..1 read as percent
    payments = next(line for line in lines if "payment charges" in line)
    assert "payment charges 409" in payments and "process CPU 3%" in payments
    assert screen.index("incidents (webhook deliveries)") < screen.index("business & system")


def test_summary_is_printed_once_and_incidents_only_as_they_arrive() -> None:
    out = io.StringIO()
    view = DemoView(Console(file=out, width=120), duration_s=60, time_scale=720)  # not a terminal
    events = [_event("opened", OPENED)]
    stats = TrafficStats(sent=10)
    view.update(1.0, stats, None, events, [], [])
    view.update(2.0, stats, None, events, [], [])  # the same event again: not repeated
    view.update(3.0, stats, None, [*events, _event("resolved", RESOLVED)], [], [])
    frame = _frame()
    result = SimpleNamespace(
        traffic=frame.stats,
        red_rows=frame.red_rows,
        slo_rows=frame.slo_rows,
        log_lines=frame.log_lines,
        figure_rows=frame.figure_rows,
        opened=[events[0]],
        resolved=[1],
        sink_totals={"traces": 5},
        exported_to="127.0.0.1:4317",
        leftover_pids=[],
    )
    view.finish(result)
    text = out.getvalue()
    assert text.count("incident    opened critical") == 1
    assert text.count("incident  resolved critical") == 1
    assert text.count("demo summary") == 1
    assert text.count("shop log lines with their trace ids") == 1
    assert "4xx answers (client errors)" in text
    assert text.count("business & system") == 1 and "orders created 412" in text


def test_every_window_shows_even_when_the_burns_are_wide() -> None:
    frame = _frame()
    wide = {
        "10s": 2000,
        "1m": 2000,
        "2m": 2000,
        "4m": 2000,
        "12m": 2000,
        "48m": 1200,
        "2h24m": 337,
        "1d": 300,
    }
    frame.slo_rows = [*frame.slo_rows, SLORow("shop", "daily-orders", 0.9995, -300.0, wide)]
    console = Console(width=80, height=24, record=True, file=io.StringIO())
    console.print(render(frame, 80, 24))
    lines = console.export_text().splitlines()
    assert len(lines) <= 24 and max(map(len, lines)) <= 80
    words = " ".join(" ".join(lines).split())
    assert "burn x 14ms:2000 83ms:2000" in words and "12s:337 2m:300" in words  # wrapped, not cut
