"""The pre-instrument check that says when opentelemetry-instrument loaded another configurator than otelpipe's."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import pytest

from otelpipe import autoconfig


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(autoconfig, "_configured", False)
    for name in ("OTEL_PYTHON_CONFIGURATOR", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "otelpipe" and r.levelno == logging.WARNING]


def test_another_configurator_chosen_by_install_order_is_named_with_the_fix(
    unconfigured: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otelpipe"):
        autoconfig.warn_if_not_configured()
    [message] = _warnings(caplog)
    assert "loaded another configurator" in message
    assert "set OTEL_PYTHON_DISTRO=otelpipe and OTEL_PYTHON_CONFIGURATOR=otelpipe" in message


@pytest.mark.parametrize(
    "setting",
    [{"OTEL_PYTHON_CONFIGURATOR": "configurator"}, {"OTEL_SDK_DISABLED": "true"}, {}],
    ids=["stock-chosen-deliberately", "sdk-disabled", "otelpipe-configured"],
)
def test_quiet_when_otelpipe_ran_or_the_choice_was_deliberate(
    setting: dict[str, str], unconfigured: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in setting.items():
        unconfigured.setenv(name, value)
    if not setting:
        unconfigured.setattr(autoconfig, "_configured", True)
    with caplog.at_level(logging.WARNING, logger="otelpipe"):
        autoconfig.warn_if_not_configured()
    assert _warnings(caplog) == []


def test_the_check_is_registered_as_a_pre_instrument_hook() -> None:
    [entry_point] = entry_points(group="opentelemetry_pre_instrument", name="otelpipe")
    assert entry_point.load() is autoconfig.warn_if_not_configured


def test_otelpipes_configurator_marks_itself_configured(
    unconfigured: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import otelpipe.pipeline

    calls: list[dict[str, object]] = []
    unconfigured.setattr(
        otelpipe.pipeline, "configure_from_auto_instrumentation", lambda **kw: calls.append(kw)
    )
    autoconfig.OtelpipeConfigurator()._configure(auto_instrumentation_version="test")
    assert calls == [{"auto_instrumentation_version": "test"}]
    with caplog.at_level(logging.WARNING, logger="otelpipe"):
        autoconfig.warn_if_not_configured()
    assert _warnings(caplog) == []
