"""The pending-ask table: correlation ids, the futures waiting on them, and their deadlines.

An ask takes an id and a future (and, with a timeout, a place in its timeout's queue) with
`PendingAsks.open`, and gives the entry back with `close` however it ended. The receive path
finds the entry for a reply with `waiting`; a lost peer fails its entries with `fail_peer`, and
closing the system fails all of them with `fail_all`.

Timeouts cost no timer per ask: the asks that share a timeout value wait in one queue, oldest
first, under one timer (see `_Deadlines`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import count
from typing import Any, NamedTuple

from actors.errors import AskTimeoutError, NodeDownError

__all__ = ["PendingAsk", "PendingAsks"]


class PendingAsk(NamedTuple):
    """One ask waiting for its answer (built with ``tuple.__new__`` on the hot path).

    Attributes:
        future: Resolved with the reply, or failed with the error.
        node_id: The node asked (a reply from any other node is ignored).
        target: The actor asked, for error messages.
        timeout: The ask's timeout in seconds (None: it waits forever).
        deadline: When it times out, in the event loop's clock (0.0 without a timeout).
        type_name: The message's class name, for the timeout's error message.
    """

    future: asyncio.Future[Any]
    node_id: str
    target: str
    timeout: float | None = None
    deadline: float = 0.0
    type_name: str = ""


_new = tuple.__new__


class _Deadlines:
    """The armed asks that share one timeout value, and the one timer that expires them.

    Asks with the same timeout reach their deadlines in the order they were armed (the loop's
    clock only goes forward), so the dict's insertion order is deadline order and only its
    oldest entry needs a timer. The timer is not moved when that entry is answered: when it
    fires, it expires what is due and re-arms for the new oldest entry. A steady stream of
    asks answered in time thus costs one timer event per timeout period, instead of a
    ``call_later`` and a ``cancel`` (two heap operations) per ask.
    """

    __slots__ = ("entries", "timer")

    def __init__(self) -> None:
        self.entries: dict[int, PendingAsk] = {}
        self.timer: asyncio.TimerHandle | None = None


class PendingAsks:
    """The asks of one system that wait for an answer, by correlation id."""

    __slots__ = ("_deadlines", "_entries", "_ids")

    def __init__(self) -> None:
        self._entries: dict[int, PendingAsk] = {}
        self._deadlines: dict[float, _Deadlines] = {}
        self._ids = count(1)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def armed(self) -> int:
        """How many asks wait with a timeout (each in its timeout's queue)."""
        return sum(len(queue.entries) for queue in self._deadlines.values())

    def open(
        self,
        loop: asyncio.AbstractEventLoop,
        node_id: str,
        target: str,
        timeout: float | None = None,
        type_name: str = "Message",
    ) -> tuple[int, asyncio.Future[Any]]:
        """Register a new ask to ``node_id``/``target``.

        With a ``timeout``, the ask fails with `AskTimeoutError` if it has no answer within
        that many seconds. It gets no timer of its own: it joins the queue of asks with the
        same timeout (see `_Deadlines`), whose single timer fails the future (rather than
        ``asyncio.timeout()``: no task cancellation round trip either).

        Returns:
            Its correlation id and the future its answer resolves.
        """
        correlation_id = next(self._ids)
        future: asyncio.Future[Any] = loop.create_future()
        if timeout is None:
            # tuple.__new__ applies no defaults: every field is given.
            entry = _new(PendingAsk, (future, node_id, target, None, 0.0, type_name))
            self._entries[correlation_id] = entry
            return correlation_id, future
        deadline = loop.time() + timeout
        entry = _new(PendingAsk, (future, node_id, target, timeout, deadline, type_name))
        self._entries[correlation_id] = entry
        queue = self._deadlines.get(timeout)
        if queue is None:
            queue = self._deadlines[timeout] = _Deadlines()
        queue.entries[correlation_id] = entry
        if queue.timer is None:
            queue.timer = loop.call_at(deadline, self._expire, timeout, loop)
        return correlation_id, future

    def close(self, correlation_id: int) -> None:
        """Forget the ask, however it ended."""
        entry = self._entries.pop(correlation_id, None)
        if entry is not None and entry.timeout is not None:
            queue = self._deadlines.get(entry.timeout)
            if queue is not None:
                queue.entries.pop(correlation_id, None)

    def _expire(self, timeout: float, loop: asyncio.AbstractEventLoop) -> None:
        """The timer of the asks with this timeout: fail those due, re-arm for the next."""
        queue = self._deadlines[timeout]
        queue.timer = None
        entries = queue.entries
        now = loop.time()
        while entries:
            correlation_id = next(iter(entries))
            entry = entries[correlation_id]
            if entry.deadline > now:
                queue.timer = loop.call_at(entry.deadline, self._expire, timeout, loop)
                return
            del entries[correlation_id]
            if not entry.future.done():
                entry.future.set_exception(
                    AskTimeoutError(
                        f"no reply from {entry.node_id}/{entry.target} to {entry.type_name} "
                        f"within {timeout} s"
                    )
                )
        # Nothing left with this timeout: drop the queue, so that many distinct timeouts
        # do not accumulate.
        del self._deadlines[timeout]

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
