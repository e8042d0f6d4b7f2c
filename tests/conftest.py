"""Shared test fixtures: fail any test during which asyncio logged an error.

asyncio reports "Task was destroyed but it is pending", unretrieved task exceptions and
unclosed transports through its logger (or as ResourceWarning, which pytest turns into errors).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


class _AsyncioErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_asyncio_errors() -> Iterator[None]:
    """Fail the test if asyncio logged an error (destroyed pending task, lost exception)."""
    handler = _AsyncioErrors()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    messages = [record.getMessage() for record in handler.records]
    assert not messages, f"asyncio logged errors: {messages}"
