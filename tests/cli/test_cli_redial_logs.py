"""A kept peer that stays away is logged once per back-off step, not once per re-dial.

(The operator's view of a node's logs; the re-dial loop itself is tested in tests/transport.)
"""

from __future__ import annotations

import asyncio
import logging
import re

from transport import Node

REDIAL_FAILED = re.compile(r"re-dial (\d+) of b at \S+ failed")


class _Attempts(logging.Handler):
    """Collects the attempt numbers of logged re-dial failures; signals attempt ``until``."""

    def __init__(self, until: int) -> None:
        super().__init__(logging.INFO)
        self.logged: list[int] = []
        self.until = until
        self.reached = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        match = REDIAL_FAILED.search(record.getMessage())
        if match:
            self.logged.append(int(match[1]))
            if self.logged[-1] >= self.until:
                self.reached.set()


async def test_redial_failures_are_logged_once_per_backoff_step() -> None:
    handler = _Attempts(until=16)
    log = logging.getLogger("transport")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        # Delays 0.01, 0.02, 0.04, then 0.04 forever: three steps, then the cap.
        async with Node("a", reconnect_initial=0.01, reconnect_max=0.04) as a:
            b = Node("b")
            await b.start()
            await a.connect(b.info() or "")
            await b.close()
            await asyncio.wait_for(handler.reached.wait(), timeout=30)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    # Each new delay once (attempts 1-3); at the cap only at powers of two (4, 8, 16).
    assert handler.logged == [1, 2, 3, 4, 8, 16]
