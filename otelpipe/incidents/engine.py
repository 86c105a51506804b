"""Incident lifecycle: turns level-triggered alert states into opened/updated/resolved transitions.

Pure state machine over an injected clock; the only side effects are handing events to notifiers
(non-blocking `submit`) and writing to an optional store, so tests drive it tick by tick.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from otelpipe.alerts import AlertState
from otelpipe.incidents.model import (
    Incident,
    IncidentEvent,
    dedup_key_for,
    incident_id_for,
    trace_links,
)
from otelpipe.incidents.notifier import Notifier
from otelpipe.incidents.store import IncidentStore
from otelpipe.incidents.text import renotified_text, resolved_text, updated_text

_log = logging.getLogger("otelpipe.incidents")


class IncidentEngine:
    """Opens one incident per condition key, updates it on real change, resolves it after a hold-down.

    - A re-fire within the hold-down continues the same incident silently (no flap re-page).
    - `updated` is sent when the severity changes or the worst burn rate grew by `update_burn_factor`
      since the last notification; `renotified` after `renotify_interval_s` without notification.
    - Keys absent from a tick are left as they are: a detector reports every condition each tick,
      so absence means "no information", not "clear".
    - With a `store`, open incidents survive a restart: they are loaded here and neither forgotten
      nor paged again; their resolution is still delivered.
    """

    def __init__(
        self,
        notifiers: Sequence[Notifier] = (),
        *,
        clock: Callable[[], float] = time.time,
        hold_down_s: float = 300.0,
        renotify_interval_s: float = 14400.0,
        update_burn_factor: float = 2.0,
        trace_url_template: str | None = None,
        max_trace_links: int = 5,
        store: IncidentStore | None = None,
        max_history: int = 1000,
    ) -> None:
        if hold_down_s < 0 or renotify_interval_s <= 0 or update_burn_factor <= 1:
            raise ValueError("hold_down_s must be >= 0, renotify_interval_s > 0 and update_burn_factor > 1")
        self._notifiers = tuple(notifiers)
        self._clock = clock
        self._hold_down_s = hold_down_s
        self._renotify_s = renotify_interval_s
        self._burn_factor = update_burn_factor
        self._template = trace_url_template
        self._max_links = max_trace_links
        self._store = store
        self._open: dict[str, Incident] = {}
        self._resolved: deque[Incident] = deque(maxlen=max_history)
        if store is not None:
            for incident in store.load_open():
                self._open[incident.key] = incident
            if self._open:
                _log.info("restored %d open incident(s) from the incident store", len(self._open))

    def observe(self, states: Iterable[AlertState]) -> list[IncidentEvent]:
        """Apply one tick of alert states; return the transitions, already handed to the notifiers."""
        now = self._clock()
        events: list[IncidentEvent] = []
        for state in states:
            event = self._apply(state, now)
            if event is not None:
                events.append(event)
        open_now = tuple(self._open.values())
        for notifier in self._notifiers:
            for event in events:
                _safely(notifier.submit, event)
            _safely(notifier.sync, open_now)
        return events

    def open_incidents(self) -> list[Incident]:
        """Incidents not yet resolved, oldest first."""
        return sorted(self._open.values(), key=lambda i: i.opened_at)

    def history(self, limit: int | None = None) -> list[Incident]:
        """Open and resolved incidents, newest first (from the store when there is one)."""
        if self._store is not None:
            return self._store.history(limit)
        everything = sorted([*self._open.values(), *self._resolved], key=lambda i: -i.opened_at)
        return everything if limit is None else everything[:limit]

    def close(self, timeout_s: float = 5.0) -> None:
        """Shut the notifiers down (delivering what is queued within `timeout_s` overall), close the store."""
        deadline = time.monotonic() + timeout_s
        for notifier in self._notifiers:
            _safely(notifier.shutdown, max(0.0, deadline - time.monotonic()))
        if self._store is not None:
            _safely(self._store.close)

    def _apply(self, state: AlertState, now: float) -> IncidentEvent | None:
        current = self._open.get(state.key)
        if state.firing:
            if current is None:
                return self._open_incident(state, now)
            return self._continue(current, state, now)
        if current is None:
            return None
        current = self._with_figures(current, state, now)  # a resolution reports the figures now
        if current.clear_since is None:
            self._keep(replace(current, clear_since=now), persist=True)
            return None
        if now - current.clear_since < self._hold_down_s:
            self._keep(current, persist=False)
            return None
        resolved = replace(
            current,
            status="resolved",
            summary=resolved_text(current, state, now),
            recovered_at=current.clear_since,
            resolved_at=now,
            updated_at=now,
        )
        del self._open[state.key]
        self._resolved.append(resolved)
        self._persist(resolved)
        return IncidentEvent("resolved", resolved, now)

    def _open_incident(self, state: AlertState, now: float) -> IncidentEvent:
        incident = Incident(
            id=incident_id_for(state.key, now),
            dedup_key=dedup_key_for(state.key),
            key=state.key,
            service=state.service,
            name=state.name,
            kind=state.kind,
            severity=state.severity,
            status="open",
            summary=state.summary,
            opened_at=now,
            updated_at=now,
            last_notified_at=now,
        )
        incident = self._with_evidence(incident, state, now)
        incident = replace(incident, notified_burn=incident.max_burn)
        self._keep(incident, persist=True)
        return IncidentEvent("opened", incident, now)

    def _continue(self, current: Incident, state: AlertState, now: float) -> IncidentEvent | None:
        was_clearing = current.clear_since is not None
        incident = replace(self._with_evidence(current, state, now), clear_since=None)
        grew = current.notified_burn > 0 and incident.max_burn >= current.notified_burn * self._burn_factor
        if incident.severity != current.severity or grew:
            incident = replace(incident, summary=updated_text(current, incident, state))
            incident = self._notified(incident, now)
            self._keep(incident, persist=True)
            return IncidentEvent("updated", incident, now, previous_severity=current.severity)
        if now - current.last_notified_at >= self._renotify_s:
            incident = replace(incident, summary=renotified_text(incident, state, now))
            incident = self._notified(incident, now)
            self._keep(incident, persist=True)
            return IncidentEvent("renotified", incident, now)
        self._keep(incident, persist=was_clearing)
        return None

    def _with_evidence(self, incident: Incident, state: AlertState, now: float) -> Incident:
        traces = (
            trace_links(state.exemplars, self._template, self._max_links)
            if state.exemplars
            else incident.traces
        )
        return replace(
            incident,
            severity=state.severity,
            summary=state.summary,
            updated_at=now,
            tier=state.tier,
            objective=state.objective,
            burn_rates=dict(state.burn_rates),
            budget_remaining=state.budget_remaining,
            total=state.total,
            errors=state.errors,
            labels=dict(state.labels),
            traces=traces,
        )

    @staticmethod
    def _with_figures(incident: Incident, state: AlertState, now: float) -> Incident:
        """The latest figures of a clearing condition; severity, tier and evidence stay the incident's."""
        return replace(
            incident,
            updated_at=now,
            burn_rates=dict(state.burn_rates),
            budget_remaining=state.budget_remaining,
            total=state.total,
            errors=state.errors,
        )

    @staticmethod
    def _notified(incident: Incident, now: float) -> Incident:
        return replace(
            incident,
            last_notified_at=now,
            notified_burn=incident.max_burn,
            notifications=incident.notifications + 1,
        )

    def _keep(self, incident: Incident, *, persist: bool) -> None:
        self._open[incident.key] = incident
        if persist:
            self._persist(incident)

    def _persist(self, incident: Incident) -> None:
        if self._store is None:
            return
        try:
            self._store.save(incident)
        except Exception:  # the evaluator must keep running even when the disk is full
            _log.warning("could not persist incident %s", incident.id, exc_info=True)


def _safely(call: Callable[..., object], *args: object) -> None:
    try:
        call(*args)
    except Exception:  # a broken notifier must not stop the evaluator or the other notifiers
        _log.warning("notifier %r raised", getattr(call, "__self__", call), exc_info=True)
