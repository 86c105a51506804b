"""The evaluation tick: RED snapshot → SLO windows and threshold rules (and metric snapshot → metric rules) → incident engine, on one background thread.

Nothing here runs on the span path: the span processor only adds to the RED store, and this loop
reads a snapshot every `interval_s`. A failing tick is logged (rate-limited) and the loop goes
on; a slow notifier cannot stall it because notifiers queue and deliver on their own threads.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from otelpipe.alerts import AlertState
from otelpipe.diagnostics import logger, warn_limited

if TYPE_CHECKING:
    from otelpipe.incidents.engine import IncidentEngine
    from otelpipe.incidents.metric_rules import MetricRuleEvaluator
    from otelpipe.incidents.model import IncidentEvent
    from otelpipe.incidents.rules import RuleEvaluator
    from otelpipe.processors.metric_snapshot import MetricSnapshot
    from otelpipe.processors.red_snapshot import REDSnapshot
    from otelpipe.slo.evaluator import SLOEvaluator

_log = logger("evaluation")


@dataclass
class Evaluation:
    """The stateful parts one loop drives; rebuilt from scratch in a forked child."""

    evaluator: SLOEvaluator | None = None
    rules: RuleEvaluator | None = None
    engine: IncidentEngine | None = None
    metric_rules: MetricRuleEvaluator | None = None
    metric_snapshot: Callable[[], MetricSnapshot] | None = None  # MetricSnapshotReader.snapshot, per tick
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:
                _log.warning("evaluation component failed to close", exc_info=True)


class EvaluationLoop:
    """Ticks `evaluation` every `interval_s` from `snapshot()`; restarts itself in forked children.

    `rebuild()` must return a fresh `Evaluation` for a child process: file-backed state and
    notifier threads do not survive `fork()`, so children evaluate in memory. Without `rebuild` a
    forked child does not evaluate at all (its parent evaluates for it, see `otelpipe.fleet.prefork`),
    and drops its copy of the parent's components so it never saves or notifies on their behalf.
    """

    def __init__(
        self,
        snapshot: Callable[[], REDSnapshot],
        evaluation: Evaluation,
        *,
        interval_s: float,
        rebuild: Callable[[], Evaluation] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._snapshot = snapshot
        self.evaluation = evaluation
        self.interval_s = interval_s
        self._rebuild = rebuild
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.failures = 0
        self.last_tick_s = 0.0
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    def set_source(self, snapshot: Callable[[], REDSnapshot]) -> None:
        """Read RED from `snapshot` from the next tick on (a stream merger instead of the local store)."""
        self._snapshot = snapshot

    def tick(self) -> list[IncidentEvent]:
        """One evaluation; returns the incident events it produced. Never raises."""
        started = time.perf_counter()
        evaluation = self.evaluation
        try:
            snapshot = self._snapshot()
            states: list[AlertState] = []
            if evaluation.evaluator is not None:
                states.extend(evaluation.evaluator.tick(snapshot))
            if evaluation.rules is not None:
                states.extend(evaluation.rules.evaluate(snapshot, self._clock()))
            states.extend(self._metric_rule_states(evaluation))
            events: list[IncidentEvent] = []
            if evaluation.engine is not None:
                events = evaluation.engine.observe(states)
            self.ticks += 1
            return events
        except Exception:
            self.failures += 1
            warn_limited("evaluation-tick", "otelpipe evaluation tick failed", area="evaluation")
            _log.debug("evaluation tick failed", exc_info=True)
            return []
        finally:
            self.last_tick_s = time.perf_counter() - started

    def _metric_rule_states(self, evaluation: Evaluation) -> list[AlertState]:
        """Metric rules on a fresh collection; a failing collection costs these rules one tick, not the SLOs."""
        if evaluation.metric_rules is None or evaluation.metric_snapshot is None:
            return []
        try:
            states: list[AlertState] = evaluation.metric_rules.evaluate(
                evaluation.metric_snapshot(), self._clock()
            )
            return states
        except Exception:
            warn_limited("metric-rules-tick", "otelpipe metric rules skipped a tick", area="evaluation")
            _log.debug("metric rule evaluation failed", exc_info=True)
            return []

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="otelpipe-evaluation", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop ticking, then close components (notifiers get their flush timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.evaluation.close()

    def _after_fork_in_child(self) -> None:
        if self._rebuild is None:
            # The parent's evaluator, state handles and notifiers are the parent's: never close,
            # flush or tick them from here.
            self._stop = threading.Event()
            self._thread = None
            self.evaluation = Evaluation()
            return
        if self._thread is None:
            return  # the parent never started the loop; nothing to carry over
        try:
            self._stop = threading.Event()
            self._thread = None
            self.evaluation = self._rebuild()
            self.start()
        except Exception:
            _log.warning("otelpipe evaluation could not restart in a forked worker", exc_info=True)
