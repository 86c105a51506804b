"""The one Incident <-> dict mapping: round trip, every field covered, malformed data refused."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from otelpipe.incidents import codec
from otelpipe.incidents.codec import (
    RECORD_VERSION,
    IncidentDataError,
    incident_from_dict,
    incident_from_record,
    incident_record,
    incident_to_dict,
)
from otelpipe.incidents.model import Incident, TraceLink

FULL = Incident(
    id="inc-1",
    dedup_key="otelpipe/shop/availability",
    key="shop/availability",
    service="shop",
    name="availability",
    kind="slo",
    severity="warning",
    status="resolved",
    summary="recovered",
    opened_at=100.0,
    updated_at=110.5,
    last_notified_at=120.0,
    tier="ticket-2h-1d",
    objective=0.99,
    burn_rates={"2h": 3.5, "1d": 1.25},
    budget_remaining=-0.5,
    total=10,
    errors=3,
    traces=(
        TraceLink("a" * 32, "b" * 16, 0.25, True, "http://t/a"),
        TraceLink("c" * 32, "d" * 16, 1.0, False),
    ),
    labels={"team": "shop"},
    notified_burn=4.0,
    clear_since=130.0,
    recovered_at=130.0,
    resolved_at=430.0,
    notifications=3,
)


def test_every_field_survives_a_round_trip() -> None:
    data = incident_to_dict(FULL)
    assert list(data) == [f.name for f in fields(Incident)]
    assert incident_from_dict(data) == FULL
    assert incident_from_record(incident_record(FULL)) == FULL
    assert incident_record(FULL)["v"] == RECORD_VERSION


def test_every_field_is_type_checked_when_read() -> None:
    # A field added to Incident but not here would be dropped silently on reload.
    checked = set(codec._REQUIRED) | set(codec._OPTIONAL)
    assert checked == {f.name for f in fields(Incident)}


def test_absent_optional_fields_take_the_defaults() -> None:
    minimal = {name: incident_to_dict(FULL)[name] for name in codec._REQUIRED}
    assert incident_from_dict(minimal) == replace(
        FULL,
        tier="",
        objective=None,
        burn_rates={},
        budget_remaining=None,
        total=0,
        errors=0,
        traces=(),
        labels={},
        notified_burn=0.0,
        clear_since=None,
        recovered_at=None,
        resolved_at=None,
        notifications=1,
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"opened_at": True}, "opened_at"),  # a JSON bool is not a timestamp
        ({"severity": None}, "severity"),
        ({"total": 1.5}, "total"),
        ({"burn_rates": {"5m": "high"}}, "burn_rates"),
        ({"labels": {"team": 1}}, "labels"),
        ({"traces": [{"trace_id": "a", "span_id": "b", "duration_s": 1, "error": "yes"}]}, "error"),
        (
            {"traces": [{"trace_id": "a", "span_id": "b", "duration_s": 1, "error": True, "extra": 1}]},
            "trace",
        ),
    ],
)
def test_malformed_data_is_refused_naming_the_field(change: dict[str, object], named: str) -> None:
    with pytest.raises(IncidentDataError, match=named):
        incident_from_dict({**incident_to_dict(FULL), **change})


def test_a_record_without_version_is_read_and_a_newer_version_refused() -> None:
    record = incident_record(FULL)
    del record["v"]
    assert incident_from_record(record) == FULL
    with pytest.raises(IncidentDataError, match="record version 2"):
        incident_from_record({**record, "v": RECORD_VERSION + 1})
    with pytest.raises(IncidentDataError, match="expected an object"):
        incident_from_record([record])
