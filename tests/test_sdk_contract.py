"""Contract tests: every private SDK hook otelpipe relies on exists and behaves as relied on (otelpipe._sdk)."""

from __future__ import annotations

import logging

import pytest

from otelpipe._sdk import HOOKS, Hook, check_sdk_hooks, report_missing_hooks


@pytest.mark.parametrize("hook", HOOKS, ids=[h.symbol.split("(")[0][:60] for h in HOOKS])
def test_hook_present_on_installed_sdk(hook: Hook) -> None:
    hook.probe()  # raises with what is missing or different


def test_every_hook_documents_why_and_what_degrades() -> None:
    for hook in HOOKS:
        assert hook.why and hook.used_by and hook.public_alternative and hook.degraded


def _broken() -> None:
    raise LookupError("Span._frobnicate is missing")


def test_missing_hook_is_reported_once_with_what_degrades(caplog: pytest.LogCaptureFixture) -> None:
    fake = Hook("Span._frobnicate", "tests", "why", "none", "RED counts nothing", _broken)
    results = check_sdk_hooks((*HOOKS, fake))
    assert [r.hook for r in results if not r.ok] == [fake]
    with caplog.at_level(logging.ERROR, logger="otelpipe"):
        missing = report_missing_hooks(results)
    assert [r.hook for r in missing] == [fake]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "Span._frobnicate" in messages[0] and "RED counts nothing" in messages[0]


def test_check_command_names_the_sdk_and_its_hooks(capsys: pytest.CaptureFixture[str]) -> None:
    from otelpipe.cli import main

    main(["check"])
    out = capsys.readouterr().out
    assert f"{len(HOOKS)}/{len(HOOKS)} SDK hooks present" in out


def test_add_metric_reader_without_the_public_method_collects() -> None:
    """SDK 1.42's path (no `MeterProvider.add_metric_reader`), run on whichever SDK is installed."""
    from types import SimpleNamespace

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from otelpipe._sdk import add_metric_reader

    provider = MeterProvider(shutdown_on_exit=False)
    counter = provider.get_meter("shop").create_counter("shop.orders.created")
    counter.add(5)  # before the reader: a cumulative reader added later does not see it
    reader = InMemoryMetricReader()
    add_metric_reader(SimpleNamespace(_measurement_consumer=provider._measurement_consumer), reader)
    counter.add(2, {"channel": "web"})
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        (dict(point.attributes or {}), getattr(point, "value", None))
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    ]
    assert points == [({"channel": "web"}, 2)]
    provider.shutdown()
