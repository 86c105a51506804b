"""Incidents: one per firing condition, opened, updated and resolved by `IncidentEngine`, kept in
`IncidentStore`, delivered by the notifiers in `otelpipe.exporters`."""

from otelpipe.incidents.engine import IncidentEngine
from otelpipe.incidents.model import Incident, IncidentEvent, TraceLink
from otelpipe.incidents.notifier import Notifier
from otelpipe.incidents.rules import RuleEvaluator, RuleSpecError, ThresholdRule, load_rules, parse_rules
from otelpipe.incidents.store import IncidentStore

__all__ = [
    "Incident",
    "IncidentEngine",
    "IncidentEvent",
    "IncidentStore",
    "Notifier",
    "RuleEvaluator",
    "RuleSpecError",
    "ThresholdRule",
    "TraceLink",
    "load_rules",
    "parse_rules",
]
