"""SLO figures as OTel observable gauges, read from the evaluator's latest status at collection.

Gauges: `otelpipe.slo.objective`, `otelpipe.slo.sli` (attr `window`), `otelpipe.slo.burn_rate`
(attr `window`), `otelpipe.slo.error_budget.remaining`, all with `slo` and `service`. Window
labels are nominal (`5m`, `30d`), matching the generated Prometheus rules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otelpipe.slo.evaluator import SLOStatus

_logger = logging.getLogger("otelpipe.slo")

StatusSource = Callable[[], Sequence[SLOStatus]]


def register_slo_metrics(meter: Meter, status: StatusSource) -> None:
    """Register the four SLO gauges on `meter`; `status` is usually `SLOEvaluator.status`."""
    meter.create_observable_gauge(
        "otelpipe.slo.objective",
        callbacks=[_guarded(status, _objective)],
        unit="1",
        description="Target ratio of good events of each SLO.",
    )
    meter.create_observable_gauge(
        "otelpipe.slo.sli",
        callbacks=[_guarded(status, _sli)],
        unit="1",
        description="Good events / all events of each SLO per window (absent without traffic).",
    )
    meter.create_observable_gauge(
        "otelpipe.slo.burn_rate",
        callbacks=[_guarded(status, _burn)],
        unit="1",
        description="Error ratio / error budget of each SLO per window; 1 spends the budget over the period.",
    )
    meter.create_observable_gauge(
        "otelpipe.slo.error_budget.remaining",
        callbacks=[_guarded(status, _budget)],
        unit="1",
        description="Fraction of each SLO's period error budget left; negative once overspent.",
    )


def _attrs(s: SLOStatus) -> dict[str, str]:
    return {"slo": s.name, "service": s.service}


def _objective(statuses: Sequence[SLOStatus]) -> Iterable[Observation]:
    return [Observation(s.objective, _attrs(s)) for s in statuses]


def _sli(statuses: Sequence[SLOStatus]) -> Iterable[Observation]:
    return [
        Observation(value, {**_attrs(s), "window": window})
        for s in statuses
        for window, value in s.sli_by_window.items()
        if value is not None
    ]


def _burn(statuses: Sequence[SLOStatus]) -> Iterable[Observation]:
    return [
        Observation(value, {**_attrs(s), "window": window})
        for s in statuses
        for window, value in s.burn_rates.items()
    ]


def _budget(statuses: Sequence[SLOStatus]) -> Iterable[Observation]:
    return [Observation(s.budget_remaining, _attrs(s)) for s in statuses]


def _guarded(
    status: StatusSource, build: Callable[[Sequence[SLOStatus]], Iterable[Observation]]
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    """A callback that never raises into the SDK's collection."""

    def callback(options: CallbackOptions) -> Iterable[Observation]:
        try:
            return list(build(status()))
        except Exception:
            _logger.warning("could not read SLO status for metrics", exc_info=True)
            return []

    return callback
