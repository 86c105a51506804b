"""No secret in `otelpipe check` or the start-up messages (issue 12, item 6).

Measured before: `otelpipe check` and the start-up message printed Alertmanager/PagerDuty/OTLP
URL passwords, a trace-URL token and the value of a misspelled secret variable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otelpipe.config import load_settings
from otelpipe.diagnostics import looks_secret, shown_value

# Every value carries "s3cret" so one search finds any leak.
VALID = {
    "OTELPIPE_ALERTMANAGER_URL": "http://am-user:s3cretAM@127.0.0.1:9093",
    "OTELPIPE_PAGERDUTY_URL": "https://pd:s3cretPD@events.example.com/v2/enqueue",
    "OTELPIPE_PAGERDUTY_ROUTING_KEY": "s3cretROUTING",
    "OTELPIPE_WEBHOOK_URL": "https://hooks.example.com/services/s3cretHOOK",
    "OTELPIPE_TRACE_URL_TEMPLATE": "http://jaeger:16686/trace/{trace_id}?token=s3cretTRACE",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otlp:s3cretOTLP@127.0.0.1:4317",
    "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer s3cretHEADER",
    "OTEL_RESOURCE_ATTRIBUTES": "service.name=shop,link=http://u:s3cretRES@wiki/x",
}
# Unknown (misspelled) and invalid ones: these end up in error messages.
INVALID = {
    "OTELPIPE_PAGERDUTY_ROUTNG_KEY": "s3cretTYPO",
    "OTELPIPE_API_TOKEN": "s3cretTOKEN",
    "OTELPIPE_SENTRY_DSN": "https://key:s3cretDSN@sentry.example/1",
    "OTELPIPE_DB_PASSWORD": "s3cretPW",
    "OTELPIPE_SOMETHING": "see http://u:s3cretUNKNOWN@host/",
    "OTELPIPE_ALERTMANAGER_URL": "ftp://am:s3cretBADURL@127.0.0.1:9093",
    "OTELPIPE_TRACE_URL_TEMPLATE": "http://jaeger:16686/search?token=s3cretNOTRACEID",
}


def _env(values: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELPIPE_"))}
    env.update(values, COLUMNS="250")
    return env


def _check(values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("otelpipe"))
    return subprocess.run(
        [exe, "check"], check=False, env=_env(values), capture_output=True, text=True, timeout=60
    )


def test_check_masks_url_passwords_tokens_and_secret_variables() -> None:
    result = _check(VALID)
    output = result.stdout + result.stderr
    assert "s3cret" not in output, output
    assert "http://127.0.0.1:9093" in result.stdout  # still shows where alerts go
    assert "http://jaeger:16686/***" in result.stdout
    assert "http://127.0.0.1:4317" in result.stdout


def test_check_errors_never_echo_secret_values() -> None:
    result = _check(INVALID)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "s3cret" not in output, output
    assert "OTELPIPE_PAGERDUTY_ROUTNG_KEY='***' is invalid" in result.stderr
    assert "OTELPIPE_ALERTMANAGER_URL='ftp://127.0.0.1:9093' is invalid" in result.stderr
    assert f"{len(INVALID)} configuration error(s)" in result.stderr


@pytest.mark.integration
def test_start_up_messages_never_echo_secret_values(tmp_path: Path) -> None:
    app = (
        "import logging, otelpipe\n"
        "logging.basicConfig(level=logging.DEBUG)\n"
        "otelpipe.configure().shutdown()\n"
        "print('STARTED')\n"
    )
    values = {
        **VALID,
        **INVALID,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    result = subprocess.run(
        [sys.executable, "-c", app],
        env=_env(values),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "STARTED" in result.stdout
    assert "OTELPIPE_PAGERDUTY_ROUTNG_KEY='***'" in result.stderr  # reported, masked
    assert "s3cret" not in result.stdout + result.stderr, result.stderr


def test_strict_error_names_the_variable_without_its_value() -> None:
    with pytest.raises(ValueError, match=r"OTELPIPE_PAGERDUTY_ROUTNG_KEY='\*\*\*' is invalid") as caught:
        load_settings({"OTELPIPE_PAGERDUTY_ROUTNG_KEY": "s3cretTYPO"}, strict=True)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("OTELPIPE_PAGERDUTY_ROUTNG_KEY", True),
        ("OTELPIPE_APIKEY", True),
        ("MY_AUTH", True),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", True),
        ("OTELPIPE_SESSION_COOKIE", True),
        ("OTELPIPE_REDACT_KEYS", False),  # a list of field names, shown
        ("OTELPIPE_SLO_FILE", False),
        ("OTEL_SERVICE_NAME", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret
    assert (shown_value(name, "value") == "***") is secret
