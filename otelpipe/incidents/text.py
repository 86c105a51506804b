"""What an incident says at each transition, so no message contradicts the figures it shows.

An opening states the firing condition; an update says what changed since the last notification;
a renotification says how long it has been firing; a resolution says that it recovered, how long
it lasted and the figures now (never the firing summary). The engine stores the text as the
incident's `summary`, so every notifier, the store and `incidents list` show the same words.
"""

from __future__ import annotations

from otelpipe.alerts import AlertState
from otelpipe.incidents.model import Incident
from otelpipe.slo.wording import human_duration

_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


def updated_text(previous: Incident, incident: Incident, state: AlertState) -> str:
    """`escalated warning -> critical: <firing summary>` or `worst window burn 20.0x -> 45.0x: ...`."""
    if incident.severity != previous.severity:
        verb = "escalated" if _RANK[incident.severity] > _RANK[previous.severity] else "de-escalated"
        change = f"{verb} {previous.severity} -> {incident.severity}"
    else:
        change = f"worst window burn {previous.notified_burn:.1f}x -> {incident.max_burn:.1f}x"
    return f"{change}: {state.summary}"


def renotified_text(incident: Incident, state: AlertState, now: float) -> str:
    """`still firing after 4h: <firing summary>`."""
    return f"still firing after {human_duration(now - incident.opened_at)}: {state.summary}"


def resolved_text(incident: Incident, state: AlertState, now: float) -> str:
    """`recovered after 48s (clear for 5m since ...); now: <current figures>`."""
    recovered_at = incident.clear_since if incident.clear_since is not None else now
    lasted = human_duration(max(0.0, recovered_at - incident.opened_at))
    held = human_duration(max(0.0, now - recovered_at))
    return f"recovered after {lasted}, clear for {held}; now: {state.summary}"
