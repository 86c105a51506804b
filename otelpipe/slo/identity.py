"""The identity of an SLO's alert, shared by generated Prometheus rules and in-process incidents.

Alertmanager tells alerts apart by their labels only. Both paths name the alert the same way
(`alerting.name`, else `<Service><Name>SLO`) and carry Sloth's `sloth_id`, `sloth_service`,
`sloth_slo` and `sloth_severity` labels, so an inhibit rule such as `equal: [sloth_id]` links a
Prometheus alert with otelpipe's own incident for the same SLO. (The `severity` label stays
otelpipe's own on the in-process path: critical for a page, warning for a ticket.)
"""

from __future__ import annotations

import re

from otelpipe.slo.model import SLO, TierSeverity

__all__ = ["alert_name", "identity_labels", "sloth_id"]


def alert_name(slo: SLO) -> str:
    """`alerting.name`, else e.g. `ShopApiAvailabilitySLO` (one name; `sloth_severity` tells tiers apart)."""
    if slo.alerting.name:
        return slo.alerting.name
    words = re.split(r"[^A-Za-z0-9]+", f"{slo.service} {slo.name}")
    return "".join(w[:1].upper() + w[1:] for w in words if w) + "SLO"


def sloth_id(slo: SLO) -> str:
    """`<service>-<name>`, Sloth's SLO id."""
    return f"{slo.service}-{slo.name}"


def identity_labels(slo: SLO, severity: TierSeverity | None = None) -> dict[str, str]:
    """Labels of the SLO's alert: SLO labels, `alerting.labels`, the severity's own labels, `sloth_*`.

    Without `severity` the `sloth_severity` label and the per-severity labels are left out.
    """
    labels = {**slo.labels, **slo.alerting.labels}
    if severity is not None:
        options = slo.alerting.page if severity == "page" else slo.alerting.ticket
        labels.update(options.labels)
    labels.update(sloth_id=sloth_id(slo), sloth_service=slo.service, sloth_slo=slo.name)
    if severity is not None:
        labels["sloth_severity"] = severity
    return labels
