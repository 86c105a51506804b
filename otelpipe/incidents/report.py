"""Incident list and report (counts, MTTR) from the incident history: the text behind the CLI."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from otelpipe.incidents.model import Incident


@dataclass(frozen=True, slots=True)
class ServiceFigures:
    """Incident figures of one service."""

    service: str
    total: int
    open: int
    mttr_s: float | None  # mean time to recover over resolved incidents


@dataclass(frozen=True, slots=True)
class IncidentReport:
    """Summary of a set of incidents; MTTR counts from opening until the condition cleared for good
    (the hold-down is not repair time)."""

    total: int
    open: int
    resolved: int
    mttr_s: float | None
    longest_s: float | None
    by_service: tuple[ServiceFigures, ...]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(incidents: Sequence[Incident]) -> IncidentReport:
    """Counts and MTTR overall and per service."""
    recover = [i.time_to_recover_s for i in incidents if i.time_to_recover_s is not None]
    services = sorted({i.service for i in incidents})
    by_service = []
    for service in services:
        mine = [i for i in incidents if i.service == service]
        durations = [i.time_to_recover_s for i in mine if i.time_to_recover_s is not None]
        by_service.append(
            ServiceFigures(service, len(mine), sum(i.status == "open" for i in mine), _mean(durations))
        )
    return IncidentReport(
        total=len(incidents),
        open=sum(i.status == "open" for i in incidents),
        resolved=sum(i.status == "resolved" for i in incidents),
        mttr_s=_mean(recover),
        longest_s=max(recover, default=None),
        by_service=tuple(by_service),
    )


def format_duration(seconds: float | None) -> str:
    """Compact human duration: 45s, 12m30s, 3h05m, 2d04h; '-' for None."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def format_list(incidents: Sequence[Incident], *, now: float | None = None) -> str:
    """One line per incident, newest first as given: status, severity, opened, duration, key, summary."""
    if not incidents:
        return "no incidents"
    current = time.time() if now is None else now
    lines = [f"{'STATUS':<9}{'SEVERITY':<10}{'OPENED (UTC)':<22}{'DURATION':<10}{'KEY':<32}SUMMARY"]
    for incident in incidents:
        end = incident.recovered_at if incident.recovered_at is not None else current
        lines.append(
            f"{incident.status:<9}{incident.severity:<10}{_when(incident.opened_at):<22}"
            f"{format_duration(end - incident.opened_at):<10}{incident.key:<32}{incident.summary}"
        )
    return "\n".join(lines)


def format_report(report: IncidentReport) -> str:
    """The incident report: totals, MTTR, longest, per-service table."""
    lines = [
        f"incidents: {report.total} ({report.open} open, {report.resolved} resolved)",
        f"MTTR: {format_duration(report.mttr_s)}   longest: {format_duration(report.longest_s)}",
    ]
    if report.by_service:
        lines.append("")
        lines.append(f"{'SERVICE':<24}{'INCIDENTS':>10}{'OPEN':>6}{'MTTR':>10}")
        for figures in report.by_service:
            lines.append(
                f"{figures.service:<24}{figures.total:>10}{figures.open:>6}{format_duration(figures.mttr_s):>10}"
            )
    return "\n".join(lines)


def report_json(report: IncidentReport) -> dict[str, Any]:
    """The report as JSON-ready data (for `--json`)."""
    return {
        "total": report.total,
        "open": report.open,
        "resolved": report.resolved,
        "mttr_s": report.mttr_s,
        "longest_s": report.longest_s,
        "by_service": [
            {"service": f.service, "total": f.total, "open": f.open, "mttr_s": f.mttr_s}
            for f in report.by_service
        ],
    }
