"""Opt-in Flask access log: one line at request start and one at completion, trace-correlated.

Uses Flask's own request callbacks (not the OTel hooks, which run after the response is sent),
so the completion line is written while the request span and request id are still current.
"""

from __future__ import annotations

import logging
import time
from typing import Any

DEFAULT_LOGGER_NAME = "app.access"
_START_KEY = "otelpipe.access_log.start"
_INSTALLED_MARK = "_otelpipe_access_log"


def install_flask_access_log(app: Any, logger: logging.Logger | None = None) -> None:
    """Log ``request started`` / ``request completed`` for every request of ``app``.

    Extras: ``http.request.method``, ``http.route``, ``url.path``, and on completion
    ``http.response.status_code`` and ``duration_ms``. Errors in the hooks never reach the app.
    """
    import flask

    log = logger or logging.getLogger(DEFAULT_LOGGER_NAME)

    def _describe() -> dict[str, Any]:
        request = flask.request
        rule = request.url_rule
        return {
            "http.request.method": request.method,
            "http.route": rule.rule if rule is not None else "",
            "url.path": request.path,
        }

    def _started() -> None:
        try:
            flask.request.environ[_START_KEY] = time.perf_counter()
            fields = _describe()
            log.info("request started %s %s", fields["http.request.method"], fields["url.path"], extra=fields)
        except Exception:  # an access log must never fail the request
            return

    def _completed(response: Any) -> Any:
        try:
            start = flask.request.environ.get(_START_KEY)
            duration_ms = round((time.perf_counter() - start) * 1000, 3) if start is not None else None
            fields = _describe()
            fields["http.response.status_code"] = response.status_code
            fields["duration_ms"] = duration_ms
            log.info(
                "request completed %s %s %s",
                fields["http.request.method"],
                fields["url.path"],
                response.status_code,
                extra=fields,
            )
        except Exception:  # an access log must never fail the request
            pass
        return response

    # Plain list appends, not the @app.before_request decorators: under auto-instrumentation this is
    # first called while the app serves its first request, when Flask refuses setup methods.
    app.before_request_funcs.setdefault(None, []).append(_started)
    app.after_request_funcs.setdefault(None, []).append(_completed)
    setattr(app, _INSTALLED_MARK, True)


def access_log_request_hook(span: Any, environ: Any) -> None:
    """A FlaskInstrumentor ``request_hook`` that installs the access log on the serving app once.

    This is how `OTELPIPE_ACCESS_LOG_ENABLED=true` works under `opentelemetry-instrument`, where otelpipe
    never sees the app object: the first request installs the callbacks, and Flask runs the new
    before-request callback for that same request too.
    """
    try:
        import flask

        app = flask.current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy
        if not getattr(app, _INSTALLED_MARK, False):
            install_flask_access_log(app)
    except Exception:  # an access log must never fail the request
        return
