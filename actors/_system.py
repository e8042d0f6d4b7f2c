"""`ActorSystem`: the façade that hosts named actors on one transport node.

The system wires the parts together and owns their lifecycles; each part is its own module:

- `actors._envelope`: the wire layout, `decode`, the encoders, mailbox deliveries and their
  reply capability;
- `actors._receive`: the receive path (packets from peers to mailboxes and pending asks);
- `actors._pending`: the pending-ask table (ids, futures, timers, failing them);
- `actors._mailbox`: one actor's mailbox, its handler calls and supervision;
- `actors._deadletters` and `actors._events`: dead letters, node events and user callbacks;
- `actors._values`: replies of any type (the reply codec, ``reply_type`` validation);
- `actors._watch` and `actors._timers`: death watch (a sans-I/O table) and actor timers.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections import Counter
from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Any, TypeVar, overload

from actors._actor import Actor, ActorRef, Context, Terminated
from actors._cluster import CLUSTER_EVENTS, ClusterEvent, ClusterGroups, check_group
from actors._control import CONTROL_ACTOR, install_control
from actors._deadletters import DeadLetter, DeadLetterOffice
from actors._envelope import (
    TERMINATED,
    UNWATCH,
    WATCH,
    Delivery,
    EnvelopeKind,
    LocalReply,
    ReplyTo,
    WatchNotice,
    ask_packet,
    new_delivery,
    tell_packet,
    watch_packet,
)
from actors._events import ActorFailed, EventHub, NodeDown, NodeUp, SystemEvent
from actors._limits import DEFAULT_MAX_PAYLOAD_ITEMS
from actors._mailbox import ActorCell, Supervision, current_actor
from actors._message import Message
from actors._pending import PendingAsk, PendingAsks
from actors._receive import Receiver
from actors._spawn import checked_spawn
from actors._values import receiving_system, validate_reply
from actors._watch import Notify, SendUnwatch, SendWatch, WatchAction, WatchTable
from actors.errors import (
    ActorNotFoundError,
    ActorUsageError,
    EncodeError,
    NodeDownError,
    NodeError,
    SpawnError,
    SystemClosedError,
)
from transport import EncodingError, Member, Node, PacketTooLarge, PeerStats, TransportError

__all__ = [
    "ActorStats",
    "ActorSystem",
    "DeadLetter",
    "EnvelopeKind",
    "NodeDown",
    "NodeUp",
    "SystemEvent",
    "SystemStats",
]

logger = logging.getLogger(__name__)

# Builds a Delivery at C speed (a NamedTuple's own __new__ is a Python function).
_new = tuple.__new__

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ActorStats:
    """One actor's counters, in `SystemStats.by_actor`.

    Attributes:
        handled: Messages given to a handler (including those it raised on).
        failed: Messages whose handler raised.
        restarts: Times supervision replaced the instance (``supervision="restart"``).
        mailbox_depth: Messages waiting in the mailbox now.
        mailbox_size: The mailbox's bound (``spawn(..., mailbox_size=N)``), or None.
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
        peer_stats: The mesh's counters for each peer connected or kept
            (`transport.Node.stats`): packets and bytes in and out, dropped, queued,
            reconnects.
    """

    actors: int
    pending_asks: int
    dead_letters: int
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    peers: tuple[str, ...] = ()
    by_actor: dict[str, ActorStats] = field(default_factory=dict)
    peer_stats: dict[str, PeerStats] = field(default_factory=dict)


class _CellHost:
    """What cells may ask of their system (`actors._mailbox.CellHost`), and nothing else."""

    __slots__ = ("_actors", "_dead_letters", "_on_ended", "_on_failed")

    def __init__(
        self,
        actors: dict[str, ActorCell],
        dead_letters: DeadLetterOffice,
        on_ended: Callable[[ActorCell, int], None],
        on_failed: Callable[[ActorCell, type[Message], Exception], None],
    ) -> None:
        self._actors = actors
        self._dead_letters = dead_letters
        self._on_ended = on_ended
        self._on_failed = on_failed

    def dead_letter(
        self,
        reason: str,
        target: str | None,
        tag: str | None,
        sender_node: str | None,
        detail: str,
        reply_to: ReplyTo | None,
        *,
        log: bool = True,
    ) -> None:
        self._dead_letters.record(reason, target, tag, sender_node, detail, reply_to, log=log)

    def cell_stopped(self, cell: ActorCell) -> None:
        if self._actors.get(cell.name) is cell:
            del self._actors[cell.name]

    def cell_ended(self, cell: ActorCell, discarded: int) -> None:
        self._on_ended(cell, discarded)

    def actor_failed(self, cell: ActorCell, message_type: type[Message], exc: Exception) -> None:
        self._on_failed(cell, message_type, exc)


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
        max_payload_items: The most container entries (list items and map entries, counted
            through every level) one received message may hold; a bigger one becomes a
            ``"payload_too_large"`` dead letter before any validation, so a hostile peer
            cannot make this node spend seconds validating. None lifts the bound.
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
        max_payload_items: int | None = DEFAULT_MAX_PAYLOAD_ITEMS,
        **node_options: Any,
    ) -> None:
        if max_payload_items is not None and (
            type(max_payload_items) is not int or max_payload_items < 1
        ):
            raise ActorUsageError(
                f"max_payload_items must be a positive int or None, not {max_payload_items!r}"
            )
        try:
            self._node = Node(node_id, host=host, port=port, cookie=cookie, ssl=ssl, **node_options)
        except (TransportError, TypeError, ValueError) as exc:
            raise ActorUsageError(f"cannot build actor system {node_id!r}: {exc}") from exc
        self._id = node_id
        self._stop_timeout = stop_timeout
        self._actors: dict[str, ActorCell] = {}
        self._pending = PendingAsks()
        self._events = EventHub(node_id)
        self._dead_letters = DeadLetterOffice(node_id, self._on_dead_letter)
        self._groups = ClusterGroups(self, self._actors.__contains__, self._deliver_member)
        self._host = _CellHost(
            self._actors, self._dead_letters, self._cell_ended, self._actor_failed
        )
        self._watches = WatchTable(node_id, self._is_running, self.is_up)
        self._discarded: Counter[str] = Counter()  # queued mail dead-lettered during close
        self._receiver = Receiver(
            node_id,
            self._actors,
            self._pending,
            self._dead_letters,
            self._node.send,
            self._on_watch_notice,
            max_payload_items,
        )
        self._node.on("packets", self._on_packets)
        self._node.on("connect", self._on_connect)
        self._node.on("disconnect", self._on_disconnect)
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
        """Names of the actors running here (not the built-in control actor)."""
        return tuple(name for name in self._actors if name != CONTROL_ACTOR)

    @property
    def closed(self) -> bool:
        """True once `close` has begun."""
        return self._closing

    async def start(self) -> None:
        """Start listening, with the control actor (``"$masterless"``) that answers
        ``masterless status`` and ``masterless ping``.

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
        install_control(self)
        logger.info("actor system %s listening on %s", self._id, self._node.info())

    async def run_until_signal(self, signals: Iterable[int] | None = None) -> int | None:
        """Serve until SIGINT or SIGTERM (or ``signals``), then `close` gracefully.

        See `actors.run_until_signal`, which this calls.

        Returns:
            The signal that stopped the system.
        """
        from actors._running import STOP_SIGNALS, run_until_signal

        return await run_until_signal(self, signals=STOP_SIGNALS if signals is None else signals)

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
        self._receiver.closed = True
        me = asyncio.current_task()
        try:
            # Fail pending asks first: a handler awaiting one would otherwise hold up its
            # actor's stop until the ask's own timeout.
            self._pending.fail_all(self._closed_ask_error)
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
            self._pending.fail_all(self._closed_ask_error)
            if self._discarded:
                top = ", ".join(f"{name}: {n}" for name, n in self._discarded.most_common(5))
                logger.warning(
                    "actor system %s closed with %d queued message(s) unhandled, now dead "
                    "letters (%s%s)",
                    self._id,
                    sum(self._discarded.values()),
                    top,
                    ", ..." if len(self._discarded) > 5 else "",
                )
        finally:
            try:
                await self._node.close()
            finally:
                # Event callbacks still running (including node_down callbacks fired by the
                # node's own close) are cancelled, so no task outlives the system.
                await self._events.cancel_running()
                await self._groups.cancel_running()
                self._closed.set()
                logger.info("actor system %s closed", self._id)

    def _closed_ask_error(self, pending: PendingAsk) -> Exception:
        return SystemClosedError(
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
        groups: Iterable[str] = (),
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
            groups: Groups the actor joins at once (see `join_group`).

        Returns:
            A ref to the new actor.

        Raises:
            SpawnError: The name is taken, the policy is unknown, ``"restart"`` was asked for
                without a factory, the factory failed, the instance is already spawned, or
                ``mailbox_size`` is not a positive int.
            HandlerDefinitionError: The actor's class has a malformed ``@handler``.
            SystemClosedError: The system is closed.
            GroupError: A group name is invalid.
        """
        self._check_open()
        groups = list(groups)
        for group in groups:
            check_group(group)
        if isinstance(name, str) and name in self._actors:
            raise SpawnError(f"an actor named {name!r} already runs on {self._id!r}")
        if mailbox_size is not None and (type(mailbox_size) is not int or mailbox_size < 1):
            raise SpawnError(f"mailbox_size must be a positive int or None, not {mailbox_size!r}")
        instance, factory = checked_spawn(name, actor, supervision)
        cell = ActorCell(
            self._host, Context(self, name), instance, factory, supervision, mailbox_size
        )
        self._actors[name] = cell
        cell.start()
        logger.debug("spawned %r", cell)
        for group in groups:
            self._groups.join(group, [name])
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
            timeout: Seconds to wait for the connection and handshake; None uses the node's
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

    def on(self, event: SystemEvent | ClusterEvent, callback: Callable[..., Any]) -> None:
        """Register a callback (plain or ``async``) for a system event.

        Events and their arguments: ``"node_up"(node_id, uri)`` when a peer connects,
        ``"node_down"(node_id, reason)`` when its connection ends, ``"dead_letter"(DeadLetter)``
        when a message could not be handled, ``"actor_failed"(ActorFailed)`` when a handler
        raised; in a cluster, ``"member_up"(Member)`` and ``"member_down"(Member, reason)``.
        Actors receive `NodeUp` / `NodeDown` / `MemberUp` / `MemberDown` messages instead, if
        they have handlers for them.

        Args:
            event: The event name.
            callback: Called with the event's arguments; exceptions are logged.

        Raises:
            ActorUsageError: Unknown event name (it is also a `ValueError`).
        """
        if event in CLUSTER_EVENTS:
            self._groups.on(event, callback)
            return
        self._events.on(event, callback)

    # --- the cluster ---------------------------------------------------------------------------

    @property
    def members(self) -> dict[str, Member]:
        """The cluster's members as this node sees them, by node id, this node included.

        Each is a `transport.Member` (``id``, ``uri``, ``incarnation``, ``status``); empty when
        the system is not in a cluster (no ``seeds=`` / ``cluster=True``) or not started.
        """
        return self._node.members

    async def join(self, uri: str, *, timeout: float | None = None) -> str:
        """Join the cluster through the member at ``uri``; returns that member's node id.

        Raises:
            NodeError: Not in a cluster, unreachable, refused, or timed out.
            SystemClosedError: The system is closed.
        """
        self._check_open()
        try:
            return await self._node.join(uri, timeout=timeout)
        except (TransportError, OSError) as exc:
            raise NodeError(f"{self._id!r} could not join through {uri}: {exc}") from exc

    async def wait_for_members(
        self, count: int, *, timeout: float | None = None
    ) -> dict[str, Member]:
        """Wait until `members` holds at least ``count`` members (this node included).

        Raises:
            NodeError: The system is not in a cluster, or closed while waiting.
            TimeoutError: ``timeout`` seconds passed first.
        """
        self._check_open()
        try:
            return await self._node.wait_for_members(count, timeout=timeout)
        except TransportError as exc:
            raise NodeError(f"{self._id!r} cannot wait for members: {exc}") from exc

    def join_group(self, group: str, name: str) -> None:
        """Add the local actor ``name`` to ``group`` (Erlang's ``pg:join``); idempotent.

        Groups are cluster-wide and eventually consistent: other members see the change once
        this node's entry reaches them. An actor leaves every group when it stops, and a
        member's actors leave every group everywhere when it goes down.

        Raises:
            GroupError: Bad group name, no such local actor, or too many memberships to
                publish.
        """
        self._groups.join(group, [name])

    def leave_group(self, group: str, name: str) -> None:
        """Remove the local actor ``name`` from ``group`` (no error if it is not in it).

        Raises:
            GroupError: Bad group name.
        """
        self._groups.leave(group, [name])

    def group(self, group: str) -> list[ActorRef]:
        """Refs to every member of ``group`` cluster-wide, as known here, sorted by node and name.

        Raises:
            GroupError: Bad group name.
        """
        return self._groups.refs(group)

    def group_names(self) -> list[str]:
        """Names of the groups with at least one member cluster-wide, as known here, sorted."""
        return self._groups.names()

    def tell_group(self, group: str, message: Message) -> int:
        """Send ``message`` to every member of ``group``; returns how many took it.

        One delivery per member; the message is encoded once, and actors of one name on
        several nodes get one multi-dispatch packet.

        Raises:
            SystemClosedError: The system is closed.
            ActorUsageError: ``message`` is not a `Message`.
            GroupError: Bad group name.
            EncodeError: The message cannot be encoded for the wire.
        """
        self._check_open()
        if not isinstance(message, Message):
            raise ActorUsageError(f"tell_group() needs a Message, not {type(message).__qualname__}")
        sender = current_actor.get()
        sender_name = sender[1] if sender is not None and sender[0] is self else None
        return self._groups.tell(group, message, sender_name)

    def _deliver_member(self, name: str, message: Message, sender_name: str | None) -> bool:
        return self._deliver_local(name, message, sender_name, None)

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
            SystemClosedError: The system is closed.
            ActorUsageError: ``message`` is not a `Message` (it is also a `TypeError`).
            EncodeError: The message cannot be encoded for the wire (a value of no
                msgpack form, nested too deep, or larger than the transport's max_frame_size).
            NodeError: The transport refused the packet for another reason.
        """
        if self._closing:  # _check_open, inline on the hot path
            self._check_open()
        if not isinstance(message, Message):
            raise ActorUsageError(f"tell() needs a Message, not {type(message).__qualname__}")
        sender = current_actor.get()
        sender_name = sender[1] if sender is not None and sender[0] is self else None
        if type(node_id) is str:
            if node_id == self._id:
                return self._deliver_local(name, message, sender_name, None)
            return self._post(node_id, name, message, sender_name, None)  # type: ignore[no-any-return]
        targets = list(dict.fromkeys(node_id))
        remote = [target for target in targets if target != self._id]
        handed = 0
        if remote:
            handed += self._post(remote, name, message, sender_name, None)
        if len(remote) != len(targets):
            handed += self._deliver_local(name, message, sender_name, None)
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
        reply_type: Any = None,
    ) -> Any:
        """Send a message and wait for the handler's return value.

        The reply is the handler's return value, whatever its type: a `Message` comes back as
        its class; None, bool, int, float, str, bytes, list, tuple and dict come back equal
        (a tuple as a list); anything else pydantic can serialize (a model, a dataclass,
        datetime, UUID, Decimal, Enum...) comes back in its msgpack-native form, which
        ``reply_type`` validates back into the type you expect.

        An ask to a node that is not connected fails at once: it never waits in the
        transport's reconnect queue (see `is_up`).

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
                validation, a full mailbox, or the actor stopped before handling it.
            NodeDownError: The node is not connected, or its connection ended while waiting.
            SystemClosedError: The system is closed or closed while waiting.
            ActorUsageError: ``message`` is not a `Message`, or ``timeout`` is NaN (it is
                also a `TypeError` and a `ValueError`).
            EncodeError: The message cannot be encoded for the wire (a value of no
                msgpack form, nested too deep, or larger than the transport's max_frame_size).
            NodeError: The transport refused the packet for another reason.
        """
        reply = await self._ask(node_id, name, message, timeout)
        if reply_type is None:
            return reply
        return validate_reply(reply, reply_type, self)

    async def _ask(self, node_id: str, name: str, message: Message, timeout: float | None) -> Any:
        self._check_open()
        if not isinstance(message, Message):
            raise ActorUsageError(f"ask() needs a Message, not {type(message).__qualname__}")
        if timeout is not None and timeout != timeout:
            raise ActorUsageError("ask() timeout must be seconds or None, not NaN")
        if node_id != self._id and not self._node.is_connected(node_id):
            # Never into a reconnect queue: the caller hears now that the node is not up.
            raise NodeDownError(
                f"cannot ask {node_id}/{name}: node {node_id!r} is not connected to {self._id!r}",
                node_id,
            )
        sender = current_actor.get()
        sender_name = sender[1] if sender is not None and sender[0] is self else None
        pending = self._pending
        correlation_id, future = pending.open(
            asyncio.get_running_loop(), node_id, name, timeout, type(message).__qualname__
        )
        try:
            if node_id == self._id:
                self._deliver_local(name, message, sender_name, _new(LocalReply, (future,)))
            else:
                if not self._post(node_id, name, message, sender_name, correlation_id):
                    raise NodeDownError(
                        f"cannot ask {node_id}/{name}: node {node_id!r} is not connected to "
                        f"{self._id!r}",
                        node_id,
                    )
            return await future
        finally:
            pending.close(correlation_id)

    def _post(
        self,
        node_id: str | list[str],
        name: str,
        message: Message,
        sender_name: str | None,
        correlation_id: int | None,
    ) -> Any:
        """Encode a tell (``correlation_id`` None) or an ask and hand it to the transport.

        Returns what `Node.send` returns: for one node whether it was handed over, for
        several to how many.
        """
        try:
            if correlation_id is None:
                packet = tell_packet(name, message, self._id, sender_name)
            else:
                packet = ask_packet(name, message, self._id, sender_name, correlation_id)
        except EncodeError as exc:
            raise EncodeError(
                f"cannot send {type(message).__qualname__} to {node_id}/{name}: {exc}"
            ) from exc
        return self._send(node_id, name, message, packet)

    def _send(
        self, node_id: str | list[str], name: str, message: Message, packet: list[Any]
    ) -> Any:
        """Hand a built packet to the transport, its errors mapped to `ActorError`s."""
        try:
            return self._node.send(node_id, packet)
        except (EncodingError, PacketTooLarge, TypeError, ValueError, OverflowError) as exc:
            # Too large to frame is an encoding failure too: the message, not the node, is wrong.
            raise EncodeError(
                f"cannot send {type(message).__qualname__} to {node_id}/{name}: {exc}"
            ) from exc
        except RecursionError as exc:
            raise EncodeError(
                f"cannot send {type(message).__qualname__} to {node_id}/{name}: a value is "
                "nested too deep to encode"
            ) from exc
        except TransportError as exc:
            raise NodeError(f"{self._id!r} cannot send to {node_id}: {exc}") from exc

    def _deliver_local(
        self, name: str, message: Message, sender_name: str | None, reply_to: ReplyTo | None
    ) -> bool:
        cell = self._actors.get(name)
        if cell is None:
            self._dead_letters.record(
                "unknown_actor",
                name,
                message.__message_tag__,
                self._id,
                f"no actor named {name!r} on {self._id!r}",
                reply_to,
            )
            return False
        delivery = _new(Delivery, (message, self._id, sender_name, reply_to))
        if cell.put(delivery):
            return True
        if reply_to is not None:  # an ask is answered; a tell's caller sees False
            self._dead_letters.mailbox_full(
                name, message.__message_tag__, self._id, cell.mailbox_size, reply_to
            )
        return False

    # --- counters ------------------------------------------------------------------------------

    @property
    def dead_letters(self) -> int:
        """How many dead letters this system has counted."""
        return self._dead_letters.total

    @property
    def pending_asks(self) -> int:
        """How many asks from this system wait for a reply."""
        return len(self._pending)

    def stats(self) -> SystemStats:
        """A snapshot of this system's counters.

        Returns:
            Actors, pending asks, dead letters (total and by reason), peers and the mesh's
            counters per peer.
        """
        return SystemStats(
            actors=len(self.actors),
            pending_asks=len(self._pending),
            dead_letters=self._dead_letters.total,
            dead_letters_by_reason=self._dead_letters.by_reason(),
            peers=tuple(self._node.peers),
            by_actor={
                name: ActorStats(
                    cell.handled, cell.failed, cell.restarts, cell.queued, cell.mailbox_size
                )
                for name, cell in self._actors.items()
                if name != CONTROL_ACTOR
            },
            peer_stats=self._node.stats(),
        )

    # --- liveness, backpressure, death watch ---------------------------------------------------

    def is_up(self, node_id: str) -> bool:
        """Whether messages to ``node_id`` go out now: this node while open, or a connected peer.

        An ask to a node that is not up raises `NodeDownError` at once (it never waits in the
        transport's reconnect queue); a tell to a kept peer that is being re-dialled is queued.

        Args:
            node_id: A node id.

        Returns:
            True for this system's own id (started, not closed) and for connected peers.
        """
        if node_id == self._id:
            return self._started and not self._closing
        return self._node.is_connected(node_id)

    async def drained(self, node_id: str) -> None:
        """Wait until the outgoing buffer to ``node_id`` is below the transport's low-water mark.

        Use it between bursts of tells when `tell` returned False for a connected peer (its
        buffer passed the high-water mark). Returns at once when nothing is buffered, when
        ``node_id`` is this node, and when the connection ends (check `is_up`).

        Args:
            node_id: A peer's node id.

        Raises:
            SystemClosedError: The system is closed.
        """
        self._check_open()
        if node_id != self._id:
            await self._node.drained(node_id)

    def _is_running(self, name: str) -> bool:
        cell = self._actors.get(name)
        return cell is not None and not cell.stopped

    def _watch(self, watcher: str, ref: ActorRef) -> None:
        self._apply_watch(self._watches.watch(watcher, (ref.node_id, ref.name)))

    def _unwatch(self, watcher: str, ref: ActorRef) -> None:
        self._apply_watch(self._watches.unwatch(watcher, (ref.node_id, ref.name)))

    def _apply_watch(self, actions: list[WatchAction]) -> None:
        send = self._node.send
        for action in actions:
            if isinstance(action, Notify):
                cell = self._actors.get(action.watcher)
                if cell is None or self._closing:
                    continue  # the watcher is gone too: nobody to tell
                notice = Terminated(ref=ActorRef(self, *action.target), reason=action.reason)
                cell.put_system(new_delivery(notice, None, None, None))
            elif isinstance(action, SendWatch):
                send(action.node, watch_packet(WATCH, action.target, action.watcher, self._id))
            elif isinstance(action, SendUnwatch):
                send(action.node, watch_packet(UNWATCH, action.target, action.watcher, self._id))
            else:
                packet = watch_packet(
                    TERMINATED, action.target, action.watcher, self._id, action.reason
                )
                send(action.node, packet)

    def _on_watch_notice(self, peer_id: str, notice: WatchNotice) -> None:
        if notice.kind == WATCH:
            actions = self._watches.watched(peer_id, notice.target, notice.watcher)
        elif notice.kind == UNWATCH:
            actions = self._watches.unwatched(peer_id, notice.target, notice.watcher)
        else:
            assert notice.reason is not None  # decode checked it
            actions = self._watches.terminated(
                peer_id, notice.target, notice.watcher, notice.reason
            )
        self._apply_watch(actions)

    # --- what cells report ---------------------------------------------------------------------

    def _cell_ended(self, cell: ActorCell, discarded: int) -> None:
        if discarded:
            if self._closing:
                self._discarded[cell.name] += discarded  # close() logs one line for all
            else:
                logger.warning(
                    "actor %s/%s stopped with %d queued message(s); they became dead letters",
                    self._id,
                    cell.name,
                    discarded,
                )
        self._apply_watch(self._watches.actor_stopped(cell.name))
        self._groups.actor_stopped(cell.name)

    def _actor_failed(self, cell: ActorCell, message_type: type[Message], exc: Exception) -> None:
        if self._events.has("actor_failed"):
            self._events.emit("actor_failed", ActorFailed(cell.name, message_type, exc))

    # --- node events and dead letters ---------------------------------------------------------

    def _on_packets(self, peer_id: str, packets: list[Any]) -> None:
        token = receiving_system.set(self)  # refs in these payloads bind to this system
        try:
            self._receiver.on_packets(peer_id, packets)
        finally:
            receiving_system.reset(token)

    def _on_dead_letter(self, letter: DeadLetter) -> None:
        if self._events.has("dead_letter"):
            self._events.emit("dead_letter", letter)

    def _on_connect(self, peer_id: str, uri: str | None) -> None:
        logger.info("%s: node %s up (%s)", self._id, peer_id, uri)
        self._notify_actors(NodeUp(node_id=peer_id, uri=uri))
        self._events.emit("node_up", peer_id, uri)

    def _on_disconnect(self, peer_id: str, reason: str) -> None:
        logger.info("%s: node %s down (%s)", self._id, peer_id, reason)
        self._pending.fail_peer(peer_id, reason, self._id)
        self._apply_watch(self._watches.node_down(peer_id))
        self._notify_actors(NodeDown(node_id=peer_id, reason=str(reason)))
        self._events.emit("node_down", peer_id, reason)

    def _notify_actors(self, event: Message) -> None:
        if self._closing:
            return
        for cell in list(self._actors.values()):
            if cell.handles(type(event)):
                cell.put_system(new_delivery(event, None, None, None))

    def __repr__(self) -> str:
        state = "closed" if self._closing else "running" if self._started else "new"
        return (
            f"<ActorSystem {self._id} {self._node.info() or '-'} {state} "
            f"actors={len(self._actors)} peers={len(self._node.peers)}>"
        )
