"""Which installed OpenTelemetry instrumentations `opentelemetry-instrument` will skip, and why.

The SDK skips an instrumentation whose library is installed at a version outside the range it
supports, and says so only at debug level: SQLAlchemy 2.1 under instrumentation-sqlalchemy 0.66
gives an app with no database spans and no message. `otelpipe check` reports it instead.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts


def skipped_instrumentations() -> list[str]:
    """One line per instrumentation whose library is installed at an unsupported version."""
    problems: list[str] = []
    for entry_point in entry_points(group="opentelemetry_instrumentor"):
        dist = entry_point.dist
        if dist is None:
            continue
        try:
            conflict = get_dist_dependency_conflicts(dist)
        except Exception:  # a broken distribution must not break `otelpipe check`
            continue
        # `found` is None when the library is simply not installed: nothing to instrument, no problem
        if conflict is None or not conflict.found:
            continue
        problems.append(
            f"instrumentation {entry_point.name} ({dist.name}) is skipped by opentelemetry-instrument: "
            f"it needs {conflict.required}, installed is {conflict.found}"
        )
    return sorted(set(problems))
