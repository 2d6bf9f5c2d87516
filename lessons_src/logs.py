"""Quieten Prefect's console output for a noisy demo while its logs still reach the server."""

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
