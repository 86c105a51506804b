"""Mask secrets in structlog output that never passes through the stdlib (``PrintLogger``,
``WriteLogger`` + ``JSONRenderer``), the way `log_output` does for stdlib handlers.

otelpipe inserts its `RedactSecrets` processor just before the renderer (the last processor) of
structlog's configuration now, and again after every ``structlog.configure``/``configure_once``
the app makes later (under `opentelemetry-instrument` otelpipe runs first). structlog is never
imported by otelpipe (with rich it costs hundreds of ms): if the app has not imported it yet, a
one-shot import hook applies the redaction right after the app's own ``import structlog``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
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


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``then`` right after ``structlog`` is first imported, then steps out of the import path."""

    def __init__(self, then: Callable[[], None]) -> None:
        self._then = then

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "structlog":
            return None
        self.remove()
        spec = importlib.util.find_spec(fullname)  # the finders after this one, as without it
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module
        then = self._then

        def exec_then_patch(module: ModuleType) -> None:
            exec_module(module)
            try:
                then()
            except Exception:  # the app's import must succeed whatever happens here
                _log.warning("could not add secret masking to structlog", exc_info=True)

        loader.exec_module = exec_then_patch  # type: ignore[method-assign]
        return spec

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def redact_structlog(redactor: Redactor) -> Callable[[], None]:
    """Keep a `RedactSecrets` before structlog's renderer from now on; returns an undo."""
    undo_patch: list[Callable[[], None]] = []

    def patch() -> None:
        undo_patch.append(_patch_structlog(redactor))

    if "structlog" in sys.modules:
        patch()
    else:
        finder = _AfterImport(patch)
        sys.meta_path.insert(0, finder)
        undo_patch.append(finder.remove)

    def undo() -> None:
        for step in undo_patch:
            step()

    return undo


def _patch_structlog(redactor: Redactor) -> Callable[[], None]:
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
