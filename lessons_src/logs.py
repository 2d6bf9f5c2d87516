"""Quieten Prefect's console output for a noisy demo, and collect the client's retry messages."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_console(level: int = logging.WARNING) -> Iterator[None]:
    """Show only `level` and above from Prefect's console handler inside the block; the API handler is untouched."""
    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    root = logging.getLogger()
    if not any(isinstance(h, PrefectConsoleHandler) for h in root.handlers):
        setup_logging()
    handlers = [h for h in root.handlers if isinstance(h, PrefectConsoleHandler)]
    previous = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(level)
    try:
        yield
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            handler.setLevel(old)


class _RetryCollector(logging.Handler):
    """Keep Prefect's client retry messages; pass on every record the logger would have shown anyway."""

    def __init__(self, forward_from: int, parent: logging.Logger) -> None:
        super().__init__(logging.DEBUG)
        self.forward_from = forward_from
        self.parent = parent
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Another attempt will be made" in message:
            self.messages.append(message)
        if record.levelno >= self.forward_from:
            self.parent.handle(record)


@contextmanager
def client_retries() -> Iterator[list[str]]:
    """Collect the Prefect client's retry messages (e.g. a 503 from a busy SQLite server) sent inside the block."""
    logger = logging.getLogger("prefect.client")
    previous_level, previous_propagate = logger.level, logger.propagate
    collector = _RetryCollector(logger.getEffectiveLevel(), logger.parent or logging.getLogger())
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # DEBUG records stop here; the collector passes on the rest
    try:
        yield collector.messages
    finally:
        logger.setLevel(previous_level)
        logger.propagate = previous_propagate
        logger.removeHandler(collector)
