"""Read the SLO/rules file once and collect every problem in it, for start-up, `check` and `slo validate`.

One typo must not switch all alerting off: each SLO and each threshold rule stands alone, so a
bad one is reported (file, path, value, expected form) and left out while the rest run. The
latency thresholds are checked against the same RED bucket boundaries the app will use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from otelpipe.incidents.metric_rules import MetricRule, parse_metric_rules
from otelpipe.incidents.rules import RuleSpecError, ThresholdRule, parse_rules
from otelpipe.slo.model import SLOSpec
from otelpipe.slo.spec import SLOSpecError, parse_spec_documents, threshold_errors
from otelpipe.slo.spec_file import SpecFileError, load_documents, read_spec_text


@dataclass(frozen=True, slots=True)
class SLOFileCheck:
    """The usable part of an SLO file and one message per problem (each names path, value, expected form)."""

    source: str
    spec: SLOSpec
    rules: tuple[ThresholdRule, ...]
    errors: tuple[str, ...]
    metric_rules: tuple[MetricRule, ...] = ()  # `rules:` entries with a `metric:` key

    @property
    def usable(self) -> bool:
        """Whether anything in the file can be evaluated."""
        return bool(self.spec.slos or self.rules or self.metric_rules)


def check_slo_file(path: str | Path, boundaries: Sequence[float]) -> SLOFileCheck:
    """Parse SLOs and rules at `path`, keeping the valid ones; never raises for a bad file."""
    source = str(path)
    errors: list[str] = []
    spec_errors: list[SLOSpecError] = []
    try:  # read and parse once (bounded); SLOs, threshold rules and metric rules share the documents
        documents = load_documents(read_spec_text(path), source)
        spec = parse_spec_documents(documents, source=source, errors=spec_errors)
    except SpecFileError as exc:
        return SLOFileCheck(source, SLOSpec(slos=(), source=source), (), (str(exc),))
    except SLOSpecError as exc:  # not readable as a spec at all: nothing of it can run
        return SLOFileCheck(source, SLOSpec(slos=(), source=source), (), (str(exc),))
    document = documents[0] if len(documents) == 1 else None  # OpenSLO files carry no otelpipe rules
    errors.extend(str(e) for e in spec_errors)
    kept = []
    for slo in spec.slos:
        bad_threshold = threshold_errors(SLOSpec(slos=(slo,), source=source), boundaries)
        errors.extend(str(e) for e in bad_threshold)
        if not bad_threshold:
            kept.append(slo)
    if len(kept) != len(spec.slos):
        spec = SLOSpec(slos=tuple(kept), source=spec.source)
    rule_errors: list[RuleSpecError] = []
    try:
        rules = parse_rules(document, errors=rule_errors)
    except RuleSpecError as exc:
        rules = ()
        errors.append(f"{source}: {exc}")
    errors.extend(f"{source}: {e}" for e in rule_errors)
    metric_errors: list[RuleSpecError] = []
    try:
        metric_rules = parse_metric_rules(document, errors=metric_errors)
    except RuleSpecError as exc:
        metric_rules = ()
        errors.append(f"{source}: {exc}")
    errors.extend(f"{source}: {e}" for e in metric_errors)
    return SLOFileCheck(source, spec, rules, tuple(errors), metric_rules)
