"""The interface between the incident engine and whatever delivers incidents to people.

Notifiers live in `otelpipe.exporters`; the engine depends only on this protocol, so data keeps
flowing one way (engine -> notifiers) and any object with these methods can be plugged in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from otelpipe.incidents.model import Incident, IncidentEvent


@runtime_checkable
class Notifier(Protocol):
    """Delivers incident transitions. Every method must return promptly and never raise."""

    def submit(self, event: IncidentEvent) -> None:
        """Queue one transition for delivery; never blocks on I/O."""

    def sync(self, open_incidents: Sequence[Incident]) -> None:
        """Latest set of open incidents, given every tick (level-triggered targets re-send from it)."""

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything queued so far was handled; True if it was within the timeout."""

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued within the timeout, then stop."""
