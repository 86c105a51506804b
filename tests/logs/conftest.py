"""Shared fixtures for the logs tests: a real TracerProvider and a record-collecting handler."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otelpipe.processors.log_correlation import LogCorrelationHandle, install_log_correlation


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def tracer_provider() -> TracerProvider:
    return TracerProvider()


@pytest.fixture
def correlation() -> Iterator[LogCorrelationHandle]:
    handle = install_log_correlation("shop", "1.2.3", "test")
    yield handle
    handle.uninstall()


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, ListHandler]]:
    handler = ListHandler()
    logger = logging.getLogger("tests.logs.capture")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, handler
    logger.handlers = []
