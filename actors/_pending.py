"""The pending-ask table: correlation ids, the futures waiting on them, and their timers.

An ask takes an id and a future with `PendingAsks.open`, arms its timeout with `arm`, and gives
the entry back with `close` however it ended. The receive path finds the entry for a reply with
`waiting`; a lost peer fails its entries with `fail_peer`, and closing the system fails all of
them with `fail_all`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

from actors.errors import AskTimeoutError, NodeDownError

__all__ = ["PendingAsk", "PendingAsks"]


@dataclass(slots=True)
class PendingAsk:
    """One ask waiting for its answer.

    Attributes:
        future: Resolved with the reply, or failed with the error.
        node_id: The node asked (a reply from any other node is ignored).
        target: The actor asked, for error messages.
        timer: The timeout's handle, once armed.
    """

    future: asyncio.Future[Any]
    node_id: str
    target: str
    timer: asyncio.TimerHandle | None = None


def _expire_ask(
    future: asyncio.Future[Any], node_id: str, name: str, type_name: str, timeout: float
) -> None:
    if not future.done():
        future.set_exception(
            AskTimeoutError(f"no reply from {node_id}/{name} to {type_name} within {timeout} s")
        )


class PendingAsks:
    """The asks of one system that wait for an answer, by correlation id."""

    __slots__ = ("_entries", "_ids")

    def __init__(self) -> None:
        self._entries: dict[int, PendingAsk] = {}
        self._ids = count(1)

    def __len__(self) -> int:
        return len(self._entries)

    def open(
        self, loop: asyncio.AbstractEventLoop, node_id: str, target: str
    ) -> tuple[int, asyncio.Future[Any]]:
        """Register a new ask to ``node_id``/``target``.

        Returns:
            Its correlation id and the future its answer resolves.
        """
        correlation_id = next(self._ids)
        future: asyncio.Future[Any] = loop.create_future()
        self._entries[correlation_id] = PendingAsk(future, node_id, target)
        return correlation_id, future

    def arm(self, correlation_id: int, timeout: float, type_name: str) -> None:
        """Fail the ask with `AskTimeoutError` if it has no answer within ``timeout`` seconds.

        A timer that fails the future, rather than ``asyncio.timeout()``: no task cancellation
        round trip, one handle per ask.
        """
        entry = self._entries[correlation_id]
        entry.timer = entry.future.get_loop().call_later(
            timeout, _expire_ask, entry.future, entry.node_id, entry.target, type_name, timeout
        )

    def close(self, correlation_id: int) -> None:
        """Forget the ask and cancel its timer, however it ended."""
        entry = self._entries.pop(correlation_id, None)
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()

    def waiting(self, correlation_id: int, node_id: str) -> PendingAsk | None:
        """The ask ``correlation_id`` if it still waits for an answer from ``node_id``."""
        entry = self._entries.get(correlation_id)
        if entry is None or entry.node_id != node_id or entry.future.done():
            return None
        return entry

    def fail_peer(self, node_id: str, reason: str, own_id: str) -> None:
        """Fail every ask waiting on ``node_id`` with `NodeDownError`: its connection ended."""
        for entry in self._entries.values():
            if entry.node_id == node_id and not entry.future.done():
                entry.future.set_exception(
                    NodeDownError(
                        f"node {node_id!r} went down ({reason}) while {own_id!r} waited "
                        f"for a reply from {node_id}/{entry.target}",
                        node_id,
                    )
                )

    def fail_all(self, make_error: Callable[[PendingAsk], Exception]) -> None:
        """Fail every waiting ask with the error ``make_error`` builds for it."""
        for entry in self._entries.values():
            if not entry.future.done():
                entry.future.set_exception(make_error(entry))
