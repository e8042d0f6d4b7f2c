"""`ActorSystem`: hosts named actors on one transport node and routes messages between nodes.

Wire envelope, one transport packet per message:

```text
[kind, target_actor, tag, payload, sender_node, sender_actor, correlation_id]
```

``kind`` is an `EnvelopeKind` (0 tell, 1 ask, 2 reply, 3 error). For tell and ask, ``tag`` and
``payload`` are the message's wire form (see `encode_message`) and ``correlation_id`` is None
for a tell. A reply carries the reply message's tag and payload (both None when the handler
returned None). An error carries ``tag`` = ``"RemoteError"`` or ``"DeadLetter"`` and
``payload`` = ``[type name or reason, text]``. ``sender_node`` is informative: replies and
``Context.sender`` use the peer id the transport authenticated.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import types
from collections import Counter
from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass, field
from itertools import count
from ssl import SSLContext
from typing import Any, Literal, TypeVar, overload

from pydantic import ValidationError

from actors._actor import Actor, ActorRef, Terminated
from actors._mailbox import SUPERVISION_POLICIES, ActorCell, Envelope, Supervision, current_actor
from actors._message import _REGISTRY as _message_classes
from actors._message import Message, encode_message, message_class
from actors._values import copy_reply, decode_reply, encode_reply, receiving_system, validate_reply
from actors._watch import Notify, SendUnwatch, SendWatch, WatchAction, WatchTable
from actors.errors import (
    ActorNotFoundError,
    AskError,
    AskTimeoutError,
    DeadLetterError,
    EncodeError,
    HandlerDefinitionError,
    NodeDownError,
    NodeError,
    RemoteError,
    SpawnError,
    SystemClosedError,
)
from transport import EncodingError, Node, TransportError

__all__ = [
    "ActorFailed",
    "ActorStats",
    "ActorSystem",
    "DeadLetter",
    "EnvelopeKind",
    "NodeDown",
    "NodeUp",
    "SystemStats",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Builds an Envelope at C speed (a NamedTuple's own __new__ is a Python function).
_new_envelope = tuple.__new__


class EnvelopeKind(enum.IntEnum):
    """The first field of every envelope."""

    TELL = 0
    ASK = 1
    REPLY = 2
    ERROR = 3
    WATCH = 4
    UNWATCH = 5
    TERMINATED = 6


# Plain ints on the hot path: cheaper to compare and pack than IntEnum members.
_TELL = 0
_ASK = 1
_REPLY = 2
_ERROR = 3
_WATCH = 4
_UNWATCH = 5
_TERMINATED = 6
_WATCH_KINDS = frozenset({_WATCH, _UNWATCH, _TERMINATED})
_ERROR_REMOTE = "RemoteError"
_ERROR_DEAD_LETTER = "DeadLetter"


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


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message nobody could handle, as passed to ``on("dead_letter", ...)`` handlers.

    Attributes:
        reason: ``"unknown_actor"``, ``"unknown_tag"``, ``"invalid_payload"``,
            ``"no_handler"``, ``"actor_stopped"``, ``"invalid_reply"`` or
            ``"malformed_envelope"``.
        target: The actor it was addressed to, if known.
        tag: The message's wire tag, if known.
        sender_node: The node it came from (None for local senders outside actors).
        detail: A human-readable explanation.
    """

    reason: str
    target: str | None
    tag: str | None
    sender_node: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class ActorFailed:
    """A handler raised, as passed to ``on("actor_failed", ...)`` callbacks.

    Attributes:
        actor: The actor's name on this node.
        message_type: The class of the message being handled.
        exception: What the handler raised.
    """

    actor: str
    message_type: type[Message]
    exception: Exception


@dataclass(frozen=True, slots=True)
class ActorStats:
    """One actor's counters, in `SystemStats.by_actor`.

    Attributes:
        handled: Messages given to a handler (including those it failed on).
        failed: Messages whose handler raised.
        restarts: Times the supervisor replaced the instance (``supervision="restart"``).
        mailbox_depth: Messages waiting in the mailbox now.
        mailbox_size: The mailbox bound, or None when unbounded.
    """

    handled: int
    failed: int
    restarts: int
    mailbox_depth: int
    mailbox_size: int | None = None


@dataclass(frozen=True, slots=True)
class SystemStats:
    """A snapshot of an `ActorSystem`'s counters (see `ActorSystem.stats`).

    Attributes:
        actors: How many actors run.
        pending_asks: How many asks wait for a reply.
        dead_letters: How many dead letters were counted since start.
        dead_letters_by_reason: The same count split by `DeadLetter.reason`.
        peers: Ids of the connected peer nodes.
        by_actor: Each running actor's `ActorStats`, by name.
    """

    actors: int
    pending_asks: int
    dead_letters: int
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    peers: tuple[str, ...] = ()
    by_actor: dict[str, ActorStats] = field(default_factory=dict)


@dataclass(slots=True)
class _PendingAsk:
    future: asyncio.Future[Any]
    node_id: str
    target: str


def _expire_ask(
    future: asyncio.Future[Any],
    node_id: str,
    name: str,
    message_type: type[Message],
    timeout: float,
) -> None:
    if not future.done():
        future.set_exception(
            AskTimeoutError(
                f"no reply from {node_id}/{name} to {message_type.__qualname__} within {timeout} s"
            )
        )


SystemEvent = Literal["node_up", "node_down", "dead_letter", "actor_failed"]
"""The events :meth:`ActorSystem.on` accepts."""
_EVENTS: frozenset[str] = frozenset({"node_up", "node_down", "dead_letter", "actor_failed"})


class ActorSystem:
    """Named actors on one node of the mesh, and the routes to actors on other nodes.

    An `ActorSystem` wraps one `transport.Node`. Use it as an async context manager, or call
    `start` and `close`.

    Example:
        ```python
        async with ActorSystem("node-a", port=9000, cookie=b"secret") as system:
            system.spawn("counter", Counter())
            await system.connect("tcp://127.0.0.1:9001")
            system.tell("node-b", "counter", Count(total=0))
            reply = await system.ask("node-b", "counter", Count(total=1), timeout=5.0)
        ```

    Args:
        node_id: This node's id, unique in the mesh.
        host: The address to listen on.
        port: The port to listen on; 0 picks a free one (see `info`).
        cookie: Shared secret that peers must prove to connect; None leaves the mesh open.
        ssl: An `ssl.SSLContext` for TLS (listening, and dialing unless ``dial_ssl=`` is
            passed among the node options), or None.
        stop_timeout: Seconds `close` waits for each actor to finish its current message
            before cancelling it.
        **node_options: Passed to `transport.Node` (heartbeat_interval, heartbeat_timeout,
            handshake_timeout, advertise, ...).
    """

    def __init__(
        self,
        node_id: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cookie: bytes | str | None = None,
        ssl: SSLContext | None = None,
        stop_timeout: float = 5.0,
        **node_options: Any,
    ) -> None:
        self._id = node_id
        self._node = Node(node_id, host=host, port=port, cookie=cookie, ssl=ssl, **node_options)
        self._node.on("packets", self._on_packets)
        self._node.on("connect", self._on_connect)
        self._node.on("disconnect", self._on_disconnect)
        self._stop_timeout = stop_timeout
        self._actors: dict[str, ActorCell] = {}
        self._pending: dict[int, _PendingAsk] = {}
        self._correlation_ids = count(1)
        self._handlers: dict[str, list[Callable[..., Any]]] = {event: [] for event in _EVENTS}
        self._handler_tasks: set[asyncio.Task[Any]] = set()
        self._dead_letters: Counter[str] = Counter()
        self._discarded: Counter[str] = Counter()
        self._watches = WatchTable(node_id, self._is_running, self.is_up)
        self._started = False
        self._closing = False
        self._closed = asyncio.Event()

    # --- identity and lifecycle ----------------------------------------------------------------

    @property
    def id(self) -> str:
        """This node's id."""
        return self._id

    @property
    def node(self) -> Node:
        """The `transport.Node` this system sends and receives through."""
        return self._node

    def info(self) -> str | None:
        """The uri peers connect to (``"tcp://127.0.0.1:9000"``); None before `start`."""
        return self._node.info()

    @property
    def peers(self) -> list[str]:
        """Ids of the peer nodes connected now."""
        return list(self._node.peers)

    @property
    def actors(self) -> tuple[str, ...]:
        """Names of the actors running here."""
        return tuple(self._actors)

    @property
    def closed(self) -> bool:
        """True once `close` has begun."""
        return self._closing

    async def start(self) -> None:
        """Start listening.

        Raises:
            SystemClosedError: The system was closed.
            NodeError: The node could not listen (address in use, bad options...).
        """
        if self._closing:
            raise SystemClosedError(f"actor system {self._id!r} is closed")
        if self._started:
            return
        try:
            await self._node.start()
        except (TransportError, OSError) as exc:
            await self._node.close()
            raise NodeError(f"node {self._id!r} could not start: {exc}") from exc
        self._started = True
        logger.info("actor system %s listening on %s", self._id, self._node.info())

    async def __aenter__(self) -> ActorSystem:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop every actor (their ``on_stop`` runs), fail pending asks, then close the node.

        Pending asks fail with `SystemClosedError`. Each actor finishes the message it is
        handling (waiting at most ``stop_timeout`` before it is cancelled); messages still
        queued in mailboxes become dead letters. Event callbacks still running at the end are
        cancelled. Calling `close` again waits for the first call to finish.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        me = asyncio.current_task()
        try:
            # Fail pending asks first: a handler awaiting one would otherwise hold up its
            # actor's stop until the ask's own timeout.
            self._fail_pending(lambda p: SystemClosedError(self._closed_ask_text(p)))
            cells = list(self._actors.values())
            for cell in cells:
                cell.request_stop()
            tasks = [c.task for c in cells if c.task is not None and c.task is not me]
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=self._stop_timeout)
                for task in late:
                    logger.warning("actor task %s did not stop in time; cancelling", task)
                    task.cancel()
                if late:
                    await asyncio.wait(late)
            self._actors.clear()
            self._watches.clear()
            if self._discarded:
                logger.warning(
                    "actor system %s closed with %d queued message(s) unhandled, now dead "
                    "letters (%s)",
                    self._id,
                    sum(self._discarded.values()),
                    ", ".join(f"{name}: {n}" for name, n in self._discarded.most_common(5))
                    + (", ..." if len(self._discarded) > 5 else ""),
                )
            self._fail_pending(lambda p: SystemClosedError(self._closed_ask_text(p)))
        finally:
            try:
                await self._node.close()
            finally:
                # Event callbacks still running (including node_down callbacks fired by the
                # node's own close) are cancelled, so no task outlives the system.
                handler_tasks = [t for t in self._handler_tasks if t is not me]
                for task in handler_tasks:
                    task.cancel()
                if handler_tasks:
                    await asyncio.wait(handler_tasks)
                self._closed.set()
                logger.info("actor system %s closed", self._id)

    def _closed_ask_text(self, pending: _PendingAsk) -> str:
        return (
            f"actor system {self._id!r} closed while waiting for a reply from "
            f"{pending.node_id}/{pending.target}"
        )

    def _check_open(self) -> None:
        if self._closing:
            raise SystemClosedError(f"actor system {self._id!r} is closed")

    # --- actors --------------------------------------------------------------------------------

    def spawn(
        self,
        name: str,
        actor: Actor | Callable[[], Actor],
        *,
        supervision: Supervision = "resume",
        mailbox_size: int | None = None,
    ) -> ActorRef:
        """Start an actor under a name, unique on this node.

        Args:
            name: The actor's name; peers address it as ``(this node id, name)``.
            actor: An `Actor` instance, or a factory (e.g. the class) that builds one.
            supervision: What happens when a handler raises: ``"resume"`` (default) keeps
                the instance and goes on, ``"restart"`` builds a fresh instance from the
                factory, ``"stop"`` removes the actor.
            mailbox_size: Bound the mailbox to this many waiting messages. When it is full,
                a local `tell` returns False, an `ask` fails with `DeadLetterError`
                (``"mailbox_full"``) and a tell from a peer becomes a dead letter
                ``"mailbox_full"``. None (the default) leaves it unbounded.

        Returns:
            A ref to the new actor.

        Raises:
            SpawnError: The name is taken, the policy is unknown, ``"restart"`` was asked for
                without a factory, the factory failed, or the instance is already spawned.
            HandlerDefinitionError: The actor's class has a malformed ``@handler``.
            SystemClosedError: The system is closed.
        """
        self._check_open()
        if not isinstance(name, str) or not name:
            raise SpawnError(f"actor name must be a non-empty str, not {name!r}")
        if name in self._actors:
            raise SpawnError(f"an actor named {name!r} already runs on {self._id!r}")
        if mailbox_size is not None and (type(mailbox_size) is not int or mailbox_size < 1):
            raise SpawnError(f"mailbox_size must be a positive int or None, not {mailbox_size!r}")
        if supervision not in SUPERVISION_POLICIES:
            raise SpawnError(
                f"unknown supervision policy {supervision!r}; use one of "
                f"{sorted(SUPERVISION_POLICIES)}"
            )
        factory: Callable[[], Actor] | None
        if isinstance(actor, Actor):
            instance, factory = actor, None
            if supervision == "restart":
                raise SpawnError(
                    f"supervision='restart' needs a factory to build fresh instances; pass "
                    f"{type(actor).__qualname__} (or a function) instead of an instance"
                )
            if instance._actor_context is not None:
                raise SpawnError(f"{instance!r} is already spawned")
        elif callable(actor):
            factory = actor
            try:
                instance = factory()
            except Exception as exc:
                raise SpawnError(f"factory for actor {name!r} failed: {exc!r}") from exc
            if not isinstance(instance, Actor):
                raise SpawnError(
                    f"factory for actor {name!r} returned {type(instance).__qualname__}, "
                    "not an Actor"
                )
        else:
            raise SpawnError(f"spawn() needs an Actor or a factory, not {actor!r}")
        try:
            type(instance)._handler_table()  # surface malformed handlers now
        except NameError as exc:
            raise HandlerDefinitionError(str(exc)) from exc
        cell = ActorCell(self, name, instance, factory, supervision, mailbox_size)
        self._actors[name] = cell
        cell.start()
        logger.debug("spawned %r", cell)
        return cell.context.self_ref

    async def stop(self, name: str) -> None:
        """Stop an actor after the message it is handling, and wait for its ``on_stop``.

        Messages still in its mailbox, and any sent to it afterwards, become dead letters.
        Called from the actor's own handler, it returns at once and the actor stops when the
        handler returns.

        Args:
            name: The actor's name.

        Raises:
            ActorNotFoundError: No actor runs under that name.
        """
        cell = self._actors.pop(name, None)
        if cell is None:
            raise ActorNotFoundError(f"no actor named {name!r} runs on {self._id!r}")
        cell.request_stop()
        task = cell.task
        if task is not None and task is not asyncio.current_task():
            await asyncio.shield(task)

    def _forget(self, cell: ActorCell) -> None:
        if self._actors.get(cell.name) is cell:
            del self._actors[cell.name]

    def _ended(self, cell: ActorCell) -> None:
        """The actor's ``on_stop`` ran: end the watches of it and those it held."""
        self._apply_watch(self._watches.actor_stopped(cell.name))

    def ref(self, node_id: str, name: str) -> ActorRef:
        """A ref to the actor ``name`` on node ``node_id`` (this node or a peer).

        Args:
            node_id: The id of the node hosting the actor.
            name: The actor's name there.

        Returns:
            The ref. Nothing is checked until a message is sent.
        """
        return ActorRef(self, node_id, name)

    # --- the mesh ------------------------------------------------------------------------------

    async def connect(self, uri: str, *, timeout: float | None = None) -> str:
        """Connect to a peer node (and keep reconnecting to it if the connection drops).

        Args:
            uri: The peer's uri, e.g. ``"tcp://127.0.0.1:9001"``.
            timeout: Seconds to wait for the handshake; None uses the node's
                ``handshake_timeout`` (5 s by default).

        Returns:
            The peer's node id.

        Raises:
            NodeError: The connection was refused, timed out, or failed the handshake.
            SystemClosedError: The system is closed.
        """
        self._check_open()
        try:
            return await self._node.connect(uri, timeout=timeout)
        except (TransportError, OSError) as exc:
            raise NodeError(f"{self._id!r} could not connect to {uri}: {exc}") from exc

    def on(self, event: SystemEvent, callback: Callable[..., Any]) -> None:
        """Register a callback (plain or ``async``) for a system event.

        Events and their arguments: ``"node_up"(node_id, uri)`` when a peer connects,
        ``"node_down"(node_id, reason)`` when its connection ends, ``"dead_letter"(DeadLetter)``
        when a message could not be handled. Actors receive `NodeUp` / `NodeDown` messages
        instead, if they have handlers for them.

        Args:
            event: The event name.
            callback: Called with the event's arguments; exceptions are logged.

        Raises:
            ValueError: Unknown event name.
        """
        if event not in _EVENTS:
            raise ValueError(f"unknown event {event!r}; use one of {sorted(_EVENTS)}")
        self._handlers[event].append(callback)

    # --- sending -------------------------------------------------------------------------------

    @overload
    def tell(self, node_id: str, name: str, message: Message) -> bool: ...

    @overload
    def tell(
        self,
        node_id: list[str] | tuple[str, ...] | Set[str],
        name: str,
        message: Message,
    ) -> int: ...

    def tell(self, node_id: str | Iterable[str], name: str, message: Message) -> bool | int:
        """Send a message to the actor ``name`` on one node or on several, without waiting.

        A message for this node's own id goes straight to the local mailbox (no encoding, no
        copy: messages are frozen). For several nodes, the message is encoded once and the
        same packet is handed to the transport for every peer.

        Args:
            node_id: A node id, or a list / tuple / set of them (multi-dispatch).
            name: The target actor's name on those nodes.
            message: The message.

        Returns:
            For one node id, True when the message was handed to the local mailbox or the
            transport, False when the local actor does not exist (a dead letter) or the peer
            is not connected. For several, how many of them it was handed to.

        Raises:
            TypeError: ``message`` is not a `Message`.
            EncodeError: The message cannot be encoded for the wire.
            NodeError: The transport refused the packet for another reason.
        """
        if not isinstance(message, Message):
            raise TypeError(f"tell() needs a Message, not {type(message).__qualname__}")
        sender = current_actor.get()
        sender_name = sender[1] if sender is not None and sender[0] is self else None
        if type(node_id) is str:
            if node_id == self._id:
                return self._deliver_local(name, message, sender_name, None, 0)
            return self._send(node_id, _TELL, name, message, sender_name, None)
        targets = list(dict.fromkeys(node_id))
        remote = [target for target in targets if target != self._id]
        handed = 0
        if remote:
            handed += self._send(remote, _TELL, name, message, sender_name, None)
        if len(remote) != len(targets):
            handed += self._deliver_local(name, message, sender_name, None, 0)
        return handed

    @overload
    async def ask(
        self,
        node_id: str,
        name: str,
        message: Message,
        *,
        timeout: float | None = 5.0,
        reply_type: None = None,
    ) -> Any: ...

    @overload
    async def ask(
        self,
        node_id: str,
        name: str,
        message: Message,
        *,
        timeout: float | None = 5.0,
        reply_type: type[_T],
    ) -> _T: ...

    @overload
    async def ask(
        self,
        node_id: str,
        name: str,
        message: Message,
        *,
        timeout: float | None = 5.0,
        reply_type: types.UnionType,
    ) -> Any: ...

    async def ask(
        self,
        node_id: str,
        name: str,
        message: Message,
        *,
        timeout: float | None = 5.0,
        reply_type: object = None,
    ) -> Any:
        """Send a message and wait for the handler's return value.

        The reply is the handler's return value, whatever its type: a `Message` comes back as
        its class; None, bool, int, float, str, bytes, list, tuple and dict come back equal
        (a tuple as a list); anything else pydantic can serialize (a model, a dataclass,
        datetime, UUID, Decimal, Enum...) comes back in its msgpack-native form, which
        ``reply_type`` validates back into the type you expect.

        Args:
            node_id: The id of the node hosting the target (this node's own id works too).
            name: The target actor's name.
            message: The message.
            timeout: Seconds to wait for the reply; None waits forever.
            reply_type: Validate the reply into this type on arrival (``int``,
                ``list[Point]``, a model, ``datetime``...); with a class ``T`` the call is
                typed as returning ``T``. None (the default) returns the reply as it came,
                typed ``Any``.

        Returns:
            The reply (validated into ``reply_type`` when one is given).

        Raises:
            AskTimeoutError: No reply within ``timeout`` (it is an `asyncio.TimeoutError`);
                a reply arriving later is dropped.
            RemoteError: The handler raised (carries the exception's type name and message),
                or its return value cannot be serialized (type name ``"EncodeError"``).
            AskError: The reply does not validate as ``reply_type``.
            DeadLetterError: No such actor, no handler for the message, a payload that failed
                validation, or the actor stopped before handling it.
            NodeDownError: The node is not connected, or its connection ended while waiting.
            SystemClosedError: The system is closed or closed while waiting.
            TypeError: ``message`` is not a `Message`.
            ValueError: ``timeout`` is NaN.
            EncodeError: The message cannot be encoded for the wire.
            NodeError: The transport refused the packet for another reason.
        """
        reply = await self._ask(node_id, name, message, timeout)
        if reply_type is None:
            return reply
        return validate_reply(reply, reply_type, self)

    async def _ask(self, node_id: str, name: str, message: Message, timeout: float | None) -> Any:
        self._check_open()
        if not isinstance(message, Message):
            raise TypeError(f"ask() needs a Message, not {type(message).__qualname__}")
        if timeout is not None and timeout != timeout:
            raise ValueError("ask() timeout must be seconds or None, not NaN")
        if node_id != self._id and node_id not in self._node.peers:
            # Never into a reconnect queue: the reply could not come back before the peer is
            # up again, and the caller should hear now that it is not.
            raise NodeDownError(
                f"cannot ask {node_id}/{name}: node {node_id!r} is not connected to {self._id!r}",
                node_id,
            )
        sender = current_actor.get()
        sender_name = sender[1] if sender is not None and sender[0] is self else None
        correlation_id = next(self._correlation_ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[correlation_id] = _PendingAsk(future, node_id, name)
        timer: asyncio.TimerHandle | None = None
        try:
            if node_id == self._id:
                self._deliver_local(name, message, sender_name, node_id, correlation_id)
            elif not self._send(node_id, _ASK, name, message, sender_name, correlation_id):
                raise NodeDownError(
                    f"cannot ask {node_id}/{name}: node {node_id!r} is not connected to "
                    f"{self._id!r}",
                    node_id,
                )
            if timeout is not None:
                # A timer that fails the future, rather than asyncio.timeout(): no task
                # cancellation round trip, one handle per ask.
                timer = loop.call_later(
                    timeout, _expire_ask, future, node_id, name, type(message), timeout
                )
            return await future
        finally:
            if timer is not None:
                timer.cancel()
            del self._pending[correlation_id]

    def _send(
        self,
        node_id: str | list[str],
        kind: int,
        name: str,
        message: Message,
        sender_name: str | None,
        correlation_id: int | None,
    ) -> bool | int:
        tag, payload = encode_message(message)
        envelope = [kind, name, tag, payload, self._id, sender_name, correlation_id]
        try:
            return self._node.send(node_id, envelope)
        except (EncodingError, TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(
                f"cannot send {type(message).__qualname__} to {node_id}/{name}: {exc}"
            ) from exc
        except TransportError as exc:
            raise NodeError(f"{self._id!r} cannot send to {node_id}: {exc}") from exc

    def _deliver_local(
        self,
        name: str,
        message: Message,
        sender_name: str | None,
        reply_node: str | None,
        correlation_id: int,
    ) -> bool:
        cell = self._actors.get(name)
        if cell is None:
            self._dead_letter(
                "unknown_actor",
                name,
                message.__message_tag__,
                self._id,
                f"no actor named {name!r} on {self._id!r}",
                reply_node,
                correlation_id,
            )
            return False
        envelope = Envelope(message, self._id, sender_name, reply_node, correlation_id)
        if cell.put(envelope):
            return True
        if reply_node is not None:  # an ask: answer it; a tell's caller sees False
            self._mailbox_full(cell, envelope)
        return False

    # --- replies -------------------------------------------------------------------------------

    def _reply(self, node_id: str, correlation_id: int, result: Any) -> None:
        if node_id == self._id:
            pending = self._pending.get(correlation_id)
            if pending is None or pending.future.done():
                return
            try:
                pending.future.set_result(copy_reply(result))
            except EncodeError as exc:
                logger.error("%s: reply %d cannot be sent: %s", self._id, correlation_id, exc)
                pending.future.set_exception(RemoteError("EncodeError", str(exc)))
            return
        try:
            tag, payload = encode_reply(result)
            sent = self._node.send(
                node_id, [_REPLY, None, tag, payload, self._id, None, correlation_id]
            )
        except (EncodeError, EncodingError, TypeError, ValueError, OverflowError) as exc:
            logger.error("%s: reply %d cannot be sent: %s", self._id, correlation_id, exc)
            self._reply_error(node_id, correlation_id, "EncodeError", str(exc))
            return
        if not sent:
            logger.debug("reply %d to %s dropped: not connected", correlation_id, node_id)

    def _reply_error(self, node_id: str, correlation_id: int, type_name: str, text: str) -> None:
        self._send_error(node_id, correlation_id, _ERROR_REMOTE, type_name, text)

    def _send_error(
        self, node_id: str, correlation_id: int, error_tag: str, name: str, text: str
    ) -> None:
        if node_id == self._id:
            pending = self._pending.get(correlation_id)
            if pending is not None and not pending.future.done():
                pending.future.set_exception(_ask_error(error_tag, name, text))
            return
        envelope = [_ERROR, None, error_tag, [name, text], self._id, None, correlation_id]
        if not self._node.send(node_id, envelope):
            logger.debug("error reply %d to %s dropped: not connected", correlation_id, node_id)

    def _fail_pending(self, make_error: Callable[[_PendingAsk], Exception]) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(make_error(pending))

    # --- liveness, backpressure and death watch ---------------------------------------------

    def is_up(self, node_id: str) -> bool:
        """Whether messages to ``node_id`` go out now: this node while open, or a connected peer.

        An ask to a node that is not up raises `NodeDownError` at once (it never waits in the
        transport's reconnect queue); a tell to a kept peer that is re-dialling is queued.

        Args:
            node_id: A node id.

        Returns:
            True for this system's own id (until `close`) and for connected peers.
        """
        if node_id == self._id:
            return self._started and not self._closing
        return node_id in self._node.peers

    async def drained(self, node_id: str) -> None:
        """Wait until the outgoing buffer to ``node_id`` is below the transport's low-water mark.

        Use it between bursts of tells when `tell` returned False for a connected peer (its
        buffer passed the high-water mark). Returns at once when nothing is buffered, when the
        node is this one, and when the connection ends (check `is_up`).

        Args:
            node_id: A peer's node id.

        Raises:
            SystemClosedError: The system is closed.
        """
        self._check_open()
        if node_id == self._id:
            return
        await self._node.drained(node_id)

    def _is_running(self, name: str) -> bool:
        cell = self._actors.get(name)
        return cell is not None and not cell.stopped

    def _watch(self, watcher: str, ref: ActorRef) -> None:
        self._apply_watch(self._watches.watch(watcher, (ref.node_id, ref.name)))

    def _unwatch(self, watcher: str, ref: ActorRef) -> None:
        self._apply_watch(self._watches.unwatch(watcher, (ref.node_id, ref.name)))

    def _apply_watch(self, actions: list[WatchAction]) -> None:
        for action in actions:
            if isinstance(action, Notify):
                cell = self._actors.get(action.watcher)
                if cell is None or self._closing:
                    continue  # the watcher is gone too; nobody to tell
                ref = ActorRef(self, *action.target)
                cell.put_system(
                    Envelope(Terminated(ref=ref, reason=action.reason), None, None, None, 0)
                )
            elif isinstance(action, SendWatch):
                self._node.send(
                    action.node, [_WATCH, action.target, None, None, self._id, action.watcher, None]
                )
            elif isinstance(action, SendUnwatch):
                self._node.send(
                    action.node,
                    [_UNWATCH, action.target, None, None, self._id, action.watcher, None],
                )
            else:
                self._node.send(
                    action.node,
                    [
                        _TERMINATED,
                        action.target,
                        None,
                        action.reason,
                        self._id,
                        action.watcher,
                        None,
                    ],
                )

    def _on_watch_packet(
        self, peer_id: str, kind: int, target: Any, reason: Any, watcher: Any
    ) -> None:
        if type(target) is not str or type(watcher) is not str:
            self._dead_letter(
                "malformed_envelope", None, None, peer_id, f"watch notice {kind} without names"
            )
            return
        if kind == _WATCH:
            actions = self._watches.watched(peer_id, target, watcher)
        elif kind == _UNWATCH:
            actions = self._watches.unwatched(peer_id, target, watcher)
        elif reason in ("stopped", "not_found", "node_down"):
            actions = self._watches.terminated(peer_id, target, watcher, reason)
        else:
            self._dead_letter(
                "malformed_envelope", target, None, peer_id, f"unknown termination {reason!r:.80}"
            )
            return
        self._apply_watch(actions)

    # --- dead letters --------------------------------------------------------------------------

    @property
    def dead_letters(self) -> int:
        """How many dead letters this system has counted."""
        return sum(self._dead_letters.values())

    @property
    def pending_asks(self) -> int:
        """How many asks from this system wait for a reply."""
        return len(self._pending)

    def stats(self) -> SystemStats:
        """A snapshot of this system's counters.

        Returns:
            Actors, pending asks, dead letters (total and by reason), and peers.
        """
        return SystemStats(
            actors=len(self._actors),
            pending_asks=len(self._pending),
            dead_letters=sum(self._dead_letters.values()),
            dead_letters_by_reason=dict(self._dead_letters),
            peers=tuple(self._node.peers),
            by_actor={
                name: ActorStats(
                    cell.handled, cell.failed, cell.restarts, cell.queued, cell.mailbox_size
                )
                for name, cell in self._actors.items()
            },
        )

    def _dead_letter(
        self,
        reason: str,
        target: str | None,
        tag: str | None,
        sender_node: str | None,
        detail: str,
        reply_node: str | None = None,
        correlation_id: int | None = None,
        *,
        log: bool = True,
    ) -> None:
        self._dead_letters[reason] += 1
        if log:
            logger.warning(
                "dead letter on %s (%s): %s [target=%s tag=%s from=%s]",
                self._id,
                reason,
                detail,
                target,
                tag,
                sender_node,
            )
        if reply_node is not None and isinstance(correlation_id, int):
            self._send_error(reply_node, correlation_id, _ERROR_DEAD_LETTER, reason, detail)
        if self._handlers["dead_letter"]:
            self._emit("dead_letter", DeadLetter(reason, target, tag, sender_node, detail))

    # --- transport events ----------------------------------------------------------------------

    def _mailbox_full(self, cell: ActorCell, envelope: Envelope) -> None:
        count = self._dead_letters["mailbox_full"] + 1
        # A flood against a full mailbox logs log2(n) lines, not n.
        self._dead_letter(
            "mailbox_full",
            cell.name,
            envelope.message.__message_tag__,
            envelope.sender_node,
            f"mailbox of {cell.name!r} is full ({cell.mailbox_size} messages; "
            f"{count} dropped so far)",
            envelope.reply_node,
            envelope.correlation_id,
            log=count & (count - 1) == 0,
        )

    def _discarded_on_stop(self, name: str, count: int) -> None:
        if self._closing:
            self._discarded[name] += count  # close() logs one line for all actors
        else:
            logger.warning(
                "actor %s/%s stopped with %d queued message(s); they became dead letters",
                self._id,
                name,
                count,
            )

    def _actor_failed(self, name: str, message_type: type[Message], exc: Exception) -> None:
        if self._handlers["actor_failed"]:
            self._emit("actor_failed", ActorFailed(name, message_type, exc))

    def _on_packets(self, peer_id: str, packets: list[Any]) -> None:
        # The hot path: well-formed tells and asks to a local actor with a known tag. A run of
        # tells to one idle actor is handled in a single call (`ActorCell.run_tells`). Anything
        # else, or any doubt, takes `_on_packet`, which explains what went wrong.
        token = receiving_system.set(self)  # refs in these payloads bind to this system
        try:
            self._receive(peer_id, packets)
        finally:
            receiving_system.reset(token)

    def _receive(self, peer_id: str, packets: list[Any]) -> None:
        index = 0
        count = len(packets)
        actors = self._actors
        while index < count and not self._closing:
            packet = packets[index]
            if (
                type(packet) is list
                and len(packet) == 7
                and (packet[0] == _TELL or (packet[0] == _ASK and type(packet[6]) is int))
            ):
                try:
                    cell = actors.get(packet[1])
                    cls = _message_classes.get(packet[2])
                except TypeError:  # an unhashable target or tag
                    cell = cls = None
                if cell is not None and cls is not None:
                    if packet[0] == _TELL:
                        after = cell.run_tells(peer_id, packets, index, packet[2], cls)
                        if after != index:
                            index = after
                            continue
                    if self._deliver_remote(peer_id, packet, cell, cls):
                        index += 1
                        continue
            self._on_packet(peer_id, packet)
            index += 1

    def _deliver_remote(
        self, peer_id: str, packet: list[Any], cell: ActorCell, cls: type[Message]
    ) -> bool:
        """Validate a well-formed tell or ask for ``cell`` and run or queue it.

        Returns:
            False when the payload does not validate (nothing was done).
        """
        try:
            message = cls.__pydantic_validator__.validate_python(packet[3])
        except ValidationError:
            return False
        sender_name = packet[5]
        if type(sender_name) is not str:
            sender_name = None
        if packet[0] == _TELL:
            envelope = _new_envelope(Envelope, (message, peer_id, sender_name, None, 0))
        else:
            envelope = _new_envelope(Envelope, (message, peer_id, sender_name, peer_id, packet[6]))
        if not cell.run_now(envelope) and not cell.put(envelope):
            self._mailbox_full(cell, envelope)
        return True

    def _on_packet(self, peer_id: str, packet: Any) -> None:
        """The general path for one packet: replies, errors, and whatever the hot path refused
        (unknown actor or tag, invalid payload, malformed envelope), reported as such."""
        if self._closing:
            return
        try:
            kind, target, tag, payload, _, sender_name, correlation_id = packet
        except (TypeError, ValueError):
            self._dead_letter(
                "malformed_envelope", None, None, peer_id, f"not an envelope: {packet!r:.200}"
            )
            return
        if kind in (_TELL, _ASK):
            reply_node = peer_id if kind == _ASK else None
            if reply_node is not None and type(correlation_id) is not int:
                self._dead_letter(
                    "malformed_envelope", None, None, peer_id, "ask without a correlation id"
                )
                return
            cell = self._actors.get(target) if type(target) is str else None
            if cell is None:
                self._dead_letter(
                    "unknown_actor",
                    target if type(target) is str else repr(target),
                    tag if type(tag) is str else None,
                    peer_id,
                    f"no actor named {target!r} on {self._id!r}",
                    reply_node,
                    correlation_id,
                )
                return
            cls = message_class(tag) if type(tag) is str else None
            if cls is None:
                self._dead_letter(
                    "unknown_tag",
                    target,
                    repr(tag),
                    peer_id,
                    f"no Message class with tag {tag!r} on {self._id!r}",
                    reply_node,
                    correlation_id,
                )
                return
            try:
                message = cls.__pydantic_validator__.validate_python(payload)
            except ValidationError as exc:
                self._dead_letter(
                    "invalid_payload",
                    target,
                    tag,
                    peer_id,
                    f"payload does not validate as {cls.__qualname__}: "
                    f"{exc.error_count()} error(s): {exc.errors()[0]['msg']}",
                    reply_node,
                    correlation_id,
                )
                return
            sender = sender_name if type(sender_name) is str else None
            envelope = Envelope(message, peer_id, sender, reply_node, correlation_id or 0)
            if not cell.run_now(envelope) and not cell.put(envelope):
                self._mailbox_full(cell, envelope)
        elif kind in _WATCH_KINDS:
            self._on_watch_packet(peer_id, kind, target, payload, sender_name)
        elif kind in (_REPLY, _ERROR):
            pending = self._pending.get(correlation_id) if type(correlation_id) is int else None
            if pending is None or pending.node_id != peer_id or pending.future.done():
                logger.debug("late or unexpected reply %r from %s dropped", correlation_id, peer_id)
                return
            if kind == _ERROR:
                try:
                    name, text = payload
                    error = _ask_error(tag, str(name), str(text))
                except (TypeError, ValueError):
                    error = AskError(f"malformed error reply from {peer_id}: {payload!r:.200}")
                pending.future.set_exception(error)
                return
            try:
                reply = decode_reply(tag, payload)
            except DeadLetterError as exc:
                self._dead_letter(exc.reason, pending.target, repr(tag), peer_id, exc.detail)
                pending.future.set_exception(exc)
                return
            pending.future.set_result(reply)
        else:
            self._dead_letter(
                "malformed_envelope", None, None, peer_id, f"unknown envelope kind {kind!r}"
            )

    def _on_connect(self, peer_id: str, uri: str | None) -> None:
        logger.info("%s: node %s up (%s)", self._id, peer_id, uri)
        self._notify_actors(NodeUp(node_id=peer_id, uri=uri))
        self._emit("node_up", peer_id, uri)

    def _on_disconnect(self, peer_id: str, reason: str) -> None:
        logger.info("%s: node %s down (%s)", self._id, peer_id, reason)
        self._fail_pending_to(peer_id, reason)
        self._apply_watch(self._watches.node_down(peer_id))
        self._notify_actors(NodeDown(node_id=peer_id, reason=str(reason)))
        self._emit("node_down", peer_id, reason)

    def _fail_pending_to(self, peer_id: str, reason: str) -> None:
        for pending in self._pending.values():
            if pending.node_id == peer_id and not pending.future.done():
                pending.future.set_exception(
                    NodeDownError(
                        f"node {peer_id!r} went down ({reason}) while {self._id!r} waited "
                        f"for a reply from {peer_id}/{pending.target}",
                        peer_id,
                    )
                )

    def _notify_actors(self, event: Message) -> None:
        if self._closing:
            return
        for cell in list(self._actors.values()):
            if cell.handles(type(event)):
                cell.put_system(Envelope(event, None, None, None, 0))

    def _emit(self, event: str, *args: Any) -> None:
        for callback in list(self._handlers[event]):
            try:
                result = callback(*args)
            except Exception:
                logger.exception("%s: %s callback %r failed", self._id, event, callback)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._handler_tasks.add(task)
                task.add_done_callback(self._handler_task_done)

    def _handler_task_done(self, task: asyncio.Task[Any]) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: event callback failed", self._id, exc_info=task.exception())

    def __repr__(self) -> str:
        state = "closed" if self._closing else "running" if self._started else "new"
        return (
            f"<ActorSystem {self._id} {self._node.info() or '-'} {state} "
            f"actors={len(self._actors)} peers={len(self._node.peers)}>"
        )


def _ask_error(error_tag: Any, name: str, text: str) -> AskError:
    if error_tag == _ERROR_DEAD_LETTER:
        return DeadLetterError(name, text)
    if error_tag == _ERROR_REMOTE:
        return RemoteError(name, text)
    return AskError(f"{error_tag}: {name}: {text}")
