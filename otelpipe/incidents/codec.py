"""The one mapping between an `Incident` and plain data, and back.

`incident_to_dict` turns every field into JSON-ready values (times stay epoch seconds);
`incident_from_dict` is its checked inverse. The stored record (`incident_record`, versioned), the
documented JSON (`otelpipe.incidents.document`), PagerDuty's details and the OTLP event's
attributes are all views of that dict, so a new field is added here and the views choose to show it.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from otelpipe.incidents.model import Incident, TraceLink

# Version of the stored record. 1: the form written since incidents were first persisted (a row
# without "v" is read as 1). Raise it when a field changes meaning, and read the old form here.
RECORD_VERSION = 1

_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
# Field -> accepted JSON types; data failing any of them (planted, truncated, a buggy writer) is
# refused here instead of raising KeyError/TypeError in the engine at start-up.
_REQUIRED: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "dedup_key": (str,),
    "key": (str,),
    "service": (str,),
    "name": (str,),
    "kind": (str,),
    "severity": (str,),
    "status": (str,),
    "summary": (str,),
    "opened_at": _NUMBER,
    "updated_at": _NUMBER,
    "last_notified_at": _NUMBER,
}
# Optional fields take the dataclass default when absent (rows written before the field existed).
_OPTIONAL: dict[str, tuple[type, ...]] = {
    "tier": (str,),
    "objective": _OPTIONAL_NUMBER,
    "burn_rates": (dict,),
    "budget_remaining": _OPTIONAL_NUMBER,
    "total": (int,),
    "errors": (int,),
    "traces": (list,),
    "labels": (dict,),
    "notified_burn": _NUMBER,
    "clear_since": _OPTIONAL_NUMBER,
    "recovered_at": _OPTIONAL_NUMBER,
    "resolved_at": _OPTIONAL_NUMBER,
    "notifications": (int,),
}
_TRACE: dict[str, tuple[type, ...]] = {
    "trace_id": (str,),
    "span_id": (str,),
    "duration_s": _NUMBER,
    "error": (bool,),
    "url": (str, type(None)),
}
_TRACE_OPTIONAL = frozenset({"url"})


class IncidentDataError(ValueError):
    """The data is not an incident this release can read; the message names the first bad field."""


def trace_to_dict(trace: TraceLink) -> dict[str, Any]:
    """`{"trace_id", "span_id", "duration_s", "error", "url"}`."""
    return {
        "trace_id": trace.trace_id,
        "span_id": trace.span_id,
        "duration_s": trace.duration_s,
        "error": trace.error,
        "url": trace.url,
    }


def incident_to_dict(incident: Incident) -> dict[str, Any]:
    """Every field of the incident under its own name, in declaration order, JSON-ready."""
    data = {f.name: getattr(incident, f.name) for f in fields(Incident)}
    data["burn_rates"] = dict(incident.burn_rates)
    data["labels"] = dict(incident.labels)
    data["traces"] = [trace_to_dict(t) for t in incident.traces]
    return data


def incident_from_dict(data: object) -> Incident:
    """The incident `data` describes (keys it does not know are ignored); IncidentDataError if malformed."""
    if not isinstance(data, dict):
        raise IncidentDataError(f"expected an object, got {type(data).__name__}")
    for name, types in _REQUIRED.items():
        if not _typed(data.get(name, _ABSENT), types):
            raise IncidentDataError(f"field {name!r} missing or not {_names(types)}")
    for name, types in _OPTIONAL.items():
        if name in data and not _typed(data[name], types):
            raise IncidentDataError(f"field {name!r} is not {_names(types)}")
    traces = tuple(_trace_from_dict(trace) for trace in data.get("traces", ()))
    burn_rates = data.get("burn_rates", {})
    if not all(isinstance(k, str) and _typed(v, _NUMBER) for k, v in burn_rates.items()):
        raise IncidentDataError("field 'burn_rates' is not an object of numbers")
    labels = data.get("labels", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise IncidentDataError("field 'labels' is not an object of strings")
    known = {name: data[name] for name in (*_REQUIRED, *_OPTIONAL) if name in data}
    return Incident(**{**known, "traces": traces, "burn_rates": dict(burn_rates), "labels": dict(labels)})


def incident_record(incident: Incident) -> dict[str, Any]:
    """The stored form: every field plus the record version `v`."""
    return {"v": RECORD_VERSION, **incident_to_dict(incident)}


def incident_from_record(data: object) -> Incident:
    """The incident of a stored record of this or an earlier version; IncidentDataError otherwise."""
    version = data.get("v", 1) if isinstance(data, dict) else 1  # not an object: said below
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= RECORD_VERSION:
        raise IncidentDataError(f"record version {version!r:.40}; this release reads 1 to {RECORD_VERSION}")
    return incident_from_dict(data)


def _trace_from_dict(data: object) -> TraceLink:
    if not isinstance(data, dict) or set(data) - set(_TRACE):
        raise IncidentDataError(f"a trace is not an object with only the fields {sorted(_TRACE)}")
    for name, types in _TRACE.items():
        if not _typed(data.get(name, None if name in _TRACE_OPTIONAL else _ABSENT), types):
            raise IncidentDataError(f"trace field {name!r} missing or not {_names(types)}")
    return TraceLink(**data)


_ABSENT = object()


def _typed(value: object, types: tuple[type, ...]) -> bool:
    """`isinstance`, except that a bool is not a number here (JSON true is not a timestamp)."""
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)
