"""Entry points for `opentelemetry-instrument`: a distro that sets defaults and a configurator that builds the SDK.

The SDK offers no environment variable or entry point for custom span or log processors; a
configurator that subclasses `_OTelSDKConfigurator` and passes them to `_initialize_components`
is the supported route (opentelemetry-python #4806). Only one configurator loads per process:
with opentelemetry-distro also installed, set `OTEL_PYTHON_DISTRO=otelpipe` and
`OTEL_PYTHON_CONFIGURATOR=otelpipe` (our distro also sets the latter by default, which is
enough when it is the distro that loads). Unset, opentelemetry-instrument (0.63b0 to 0.66b1
alike) takes the first distro and configurator in the order the installed packages are listed on
disk, which differs between two environments of the same versions; `warn_if_not_configured`
says so when otelpipe lost that draw.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.instrumentation.environment_variables import OTEL_PYTHON_CONFIGURATOR
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.environment_variables import OTEL_EXPORTER_OTLP_PROTOCOL

_log = logging.getLogger("otelpipe")
_configured = False  # opentelemetry-instrument ran OtelpipeConfigurator in this process


class OtelpipeDistro(BaseDistro):  # type: ignore[misc]
    """Defaults like opentelemetry-distro (OTLP/gRPC for all signals) and otelpipe's instrumentor hooks."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault(OTEL_TRACES_EXPORTER, "otlp")
        os.environ.setdefault(OTEL_METRICS_EXPORTER, "otlp")
        os.environ.setdefault(OTEL_LOGS_EXPORTER, "otlp")
        os.environ.setdefault(OTEL_EXPORTER_OTLP_PROTOCOL, "grpc")
        os.environ.setdefault(OTEL_PYTHON_CONFIGURATOR, "otelpipe")

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        """Give the Flask instrumentor otelpipe's request-id hooks (the only way in without app code)."""
        if entry_point.name == "flask":
            try:
                from otelpipe.pipeline import flask_instrumentor_kwargs

                for key, value in flask_instrumentor_kwargs().items():
                    kwargs.setdefault(key, value)
            except Exception:  # never let otelpipe stop the app from being instrumented
                _log.warning("otelpipe: flask request hooks unavailable", exc_info=True)
        super().load_instrumentor(entry_point, **kwargs)


class OtelpipeConfigurator(_OTelSDKConfigurator):  # type: ignore[misc]
    """Builds the SDK the stock way, with otelpipe's processors, sampler and readers in place."""

    def _configure(self, **kwargs: Any) -> None:
        global _configured
        _configured = True
        try:
            from otelpipe.pipeline import configure_from_auto_instrumentation

            configure_from_auto_instrumentation(**kwargs)
        except Exception as exc:
            from otelpipe.config import ConfigError

            if isinstance(exc, ConfigError):
                # OTELPIPE_STRICT=true asked for a fatal error; opentelemetry-instrument swallows
                # exceptions from configurators, so exit the way a bad command line would.
                raise SystemExit(f"otelpipe: configuration error: {exc}") from exc
            # otelpipe must not cost the app its telemetry: fall back to the stock SDK setup.
            _log.error("otelpipe failed to configure; using the stock SDK setup", exc_info=True)
            super()._configure(**kwargs)  # type: ignore[no-untyped-call]


def warn_if_not_configured() -> None:
    """`opentelemetry_pre_instrument` hook: one warning when another configurator was loaded by chance.

    Runs after opentelemetry-instrument chose its configurator. Quiet when otelpipe's ran, when
    `OTEL_PYTHON_CONFIGURATOR` names another one (a deliberate choice) and when the SDK is disabled.
    """
    try:
        from otelpipe.config import sdk_disabled

        if _configured or os.environ.get(OTEL_PYTHON_CONFIGURATOR) or sdk_disabled():
            return
        _log.warning(
            "otelpipe is installed but opentelemetry-instrument loaded another configurator (with several "
            "installed and %s unset, the first in site-packages order wins): no RED metrics, log "
            "correlation or SLOs from otelpipe; set OTEL_PYTHON_DISTRO=otelpipe and %s=otelpipe",
            OTEL_PYTHON_CONFIGURATOR,
            OTEL_PYTHON_CONFIGURATOR,
        )
    except Exception:  # opentelemetry-instrument does not catch pre-instrument hooks' errors
        pass
