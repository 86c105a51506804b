"""Mask secrets in structlog output that never passes through the stdlib (``PrintLogger``,
``WriteLogger`` + ``JSONRenderer``), the way `log_output` does for stdlib handlers.

otelpipe inserts its `RedactSecrets` processor just before the renderer (the last processor) of
structlog's configuration now, and again after every ``structlog.configure``/``configure_once``
the app makes later (under `opentelemetry-instrument` otelpipe runs first). Only when structlog
is installed; nothing is imported otherwise.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from otelpipe.diagnostics import logger
from otelpipe.processors.redaction import Redactor
from otelpipe.processors.structlog_correlation import RedactSecrets

_log = logger("logs")


def _with_redaction(processors: list[Any], redacting: RedactSecrets) -> list[Any]:
    if any(isinstance(p, RedactSecrets) for p in processors):
        return processors  # the app placed one itself
    position = max(len(processors) - 1, 0)
    return [*processors[:position], redacting, *processors[position:]]


def redact_structlog(redactor: Redactor) -> Callable[[], None]:
    """Keep a `RedactSecrets` before structlog's renderer from now on; returns an undo."""
    if importlib.util.find_spec("structlog") is None:
        return lambda: None
    import structlog
    import structlog._config as config_module

    redacting = RedactSecrets(redactor)
    original = config_module.configure

    def configure_then_decorate(*args: Any, **kwargs: Any) -> None:
        if args and args[0] is not None:
            args = (_with_redaction(list(args[0]), redacting), *args[1:])
        elif kwargs.get("processors") is not None:
            kwargs["processors"] = _with_redaction(list(kwargs["processors"]), redacting)
        original(*args, **kwargs)

    was_configured = structlog.is_configured()
    try:
        original(processors=_with_redaction(list(structlog.get_config()["processors"]), redacting))
        # Keep "not configured yet" as it was, so the app's configure_once still applies.
        config_module._CONFIG.is_configured = was_configured
    except Exception:
        _log.warning("could not add secret masking to structlog's processors", exc_info=True)
        return lambda: None
    config_module.configure = configure_then_decorate  # configure_once calls this name
    structlog.configure = configure_then_decorate

    def undo() -> None:
        config_module.configure = original
        structlog.configure = original

    return undo
