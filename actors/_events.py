"""System events: the `NodeUp` / `NodeDown` messages actors receive, `ActorFailed`, and the
callbacks users register with `ActorSystem.on`."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from actors._message import Message
from actors.errors import ActorUsageError

__all__ = ["EVENTS", "ActorFailed", "EventHub", "NodeDown", "NodeUp", "SystemEvent"]

logger = logging.getLogger(__name__)

SystemEvent = Literal["node_up", "node_down", "dead_letter", "actor_failed"]
"""The events :meth:`ActorSystem.on` accepts."""
EVENTS: frozenset[str] = frozenset({"node_up", "node_down", "dead_letter", "actor_failed"})


@dataclass(frozen=True, slots=True)
class ActorFailed:
    """A handler raised, as passed to ``on("actor_failed", ...)`` callbacks.

    Attributes:
        actor: The actor's name on this node.
        message_type: The class of the message it was handling.
        exception: What the handler raised.
    """

    actor: str
    message_type: type[Message]
    exception: Exception


class NodeUp(Message, tag="masterless.NodeUp"):
    """Delivered to every local actor with a handler for it when a peer node connects.

    Attributes:
        node_id: The peer's id.
        uri: The peer's advertised uri.
    """

    node_id: str
    uri: str | None = None


class NodeDown(Message, tag="masterless.NodeDown"):
    """Delivered to every local actor with a handler for it when a peer node's connection ends.

    Attributes:
        node_id: The peer's id.
        reason: The transport's reason (``"closed"``, ``"lost"``, ``"restarted"``...).
    """

    node_id: str
    reason: str


class EventHub:
    """The callbacks registered per event; an ``async`` callback runs as a task it tracks."""

    __slots__ = ("_callbacks", "_node_id", "_tasks")

    def __init__(self, node_id: str, events: Iterable[str] = EVENTS) -> None:
        self._node_id = node_id
        self._callbacks: dict[str, list[Callable[..., Any]]] = {event: [] for event in events}
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, event: str, callback: Callable[..., Any]) -> None:
        """Register ``callback`` for ``event``.

        Raises:
            ActorUsageError: Unknown event name (it is also a `ValueError`).
        """
        if event not in self._callbacks:
            raise ActorUsageError(f"unknown event {event!r}; use one of {sorted(self._callbacks)}")
        self._callbacks[event].append(callback)

    def has(self, event: str) -> bool:
        """Whether any callback is registered for ``event``."""
        return bool(self._callbacks[event])

    def emit(self, event: str, *args: Any) -> None:
        """Call every callback of ``event``; failures are logged, never raised."""
        for callback in list(self._callbacks[event]):
            try:
                result = callback(*args)
            except Exception:
                logger.exception("%s: %s callback %r failed", self._node_id, event, callback)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: event callback failed", self._node_id, exc_info=task.exception())

    async def cancel_running(self) -> None:
        """Cancel the callback tasks still running (but not the caller's own) and wait."""
        me = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
