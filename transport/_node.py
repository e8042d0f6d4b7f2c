"""The asyncio shell around :class:`transport._core.NodeCore`: sockets, timers, redials.

The shell talks to the core through its public methods and names connections by handle; it
maps each handle to its :class:`~transport._link.Link`. Every network callback feeds the core,
then runs the one pump (:meth:`Node._pump`): dispatch the events the core produced, write what
it queued, close the sockets it asked to close. Writes are coalesced: frames queued during one
event-loop turn go out in one ``transport.write``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import random
import secrets
import ssl as ssl_module
from collections.abc import Callable, Iterable
from typing import Any, Literal, get_args, overload

from ._cluster import Cluster
from ._config import DEFAULTS, NodeConfig
from ._core import NodeCore
from ._events import (
    DialOutcome,
    MembershipReceived,
    PacketsReceived,
    PeerConnected,
    PeerDisconnected,
    RedialNeeded,
)
from ._frames import HEADER_SIZE, encode_data
from ._handshake import LocalIdentity
from ._link import Link
from ._membership import Member, MembershipConfig
from ._stats import PeerStats
from ._uri import format_uri, is_loopback, parse_uri
from .errors import (
    ConfigurationError,
    ConnectError,
    HandshakeError,
    NodeStateError,
    PacketTooLarge,
    TransportError,
)

__all__ = ["EventName", "Handler", "Node"]

logger = logging.getLogger("transport")

EventName = Literal[
    "listening",
    "connect",
    "disconnect",
    "message",
    "packets",
    "member_up",
    "member_down",
    "member_updated",
    "seed_refused",
]
"""The events :meth:`Node.on` accepts."""
Handler = Callable[..., Any]
"""An event handler: a function or coroutine function taking the event's arguments."""
_EVENTS: tuple[str, ...] = get_args(EventName)
# The default down_after is the heartbeat timeout plus this much: one re-dial attempt.
_REDIAL_GRACE = 1.0
_CLOSE_GRACE = 2.0
# Sends closer together than this (seconds) are treated as one burst and coalesced.
_BURST_GAP = 20e-6


@functools.lru_cache(maxsize=4096)
def _dialable(uri: str) -> bool:
    try:
        parse_uri(uri)
    except ConfigurationError:
        return False
    return True


class Node:
    """One member of a masterless mesh: listens, dials, dedups, heartbeats, re-dials.

    Args:
        node_id: this node's id, unique in its mesh (1-255 characters).
        host: address to listen on. A non-loopback host requires a ``cookie`` unless
            ``insecure=True``.
        port: port to listen on; 0 picks a free one.
        cookie: shared secret (bytes or str); peers must hold the same one.
        ssl: TLS context used to listen and, unless ``dial_ssl`` is given, to dial.
        dial_ssl: TLS context used to dial, when it differs from ``ssl``.
        advertise: uri announced to peers (``tcp://public-host:9000``); defaults to the
            bound address.
        insecure: allow an open mesh on a non-loopback address.
        heartbeat_interval: send a heartbeat after this long without sending anything.
        heartbeat_timeout: declare a peer lost after this long without hearing from it.
        handshake_timeout: limit for one handshake and for ``connect()``.
        max_frame_size: largest frame body accepted, in bytes.
        max_pending_handshakes: incoming connections allowed to be mid-handshake at once.
        queue_max_packets: bound of a kept peer's reconnect queue, in packets.
        queue_max_bytes: bound of a kept peer's reconnect queue, in bytes.
        high_water: outgoing buffer size past which ``send`` returns False for that peer.
        low_water: buffer size below which ``drained()`` returns.
        reconnect_initial: first re-dial delay of a kept peer, in seconds.
        reconnect_max: largest re-dial delay, in seconds.
        max_dials: re-dials (kept peers, cluster members) in progress at once; more wait their
            turn, so that a node learning of many members at once (a cluster join) does not
            open as many handshakes at the same moment. ``connect()`` is not limited.
        seeds: uris of cluster members to join through at ``start()`` (each is retried with
            backoff until it answers once; this node's own uri is skipped). Giving seeds
            turns ``cluster`` on.
        cluster: take part in cluster membership (gossip, ``member_up``/``member_down``,
            dialling every member); a first node with no seeds passes ``cluster=True``.
        down_after: seconds of silence before an unreachable member is checked through the
            others and declared down; defaults to ``heartbeat_timeout`` + 1 s.
        max_members: most members this node's view holds.
        cluster_config: every membership timing and limit at once (overrides
            ``down_after`` and ``max_members``).

    Raises:
        ConfigurationError: an argument is invalid, or the bind is unsafe.
    """

    def __init__(
        self,
        node_id: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        cookie: bytes | str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        dial_ssl: ssl_module.SSLContext | None = None,
        advertise: str | None = None,
        insecure: bool = False,
        heartbeat_interval: float = DEFAULTS.heartbeat_interval,
        heartbeat_timeout: float = DEFAULTS.heartbeat_timeout,
        handshake_timeout: float = DEFAULTS.handshake_timeout,
        max_frame_size: int = DEFAULTS.max_frame_size,
        max_pending_handshakes: int = DEFAULTS.max_pending_handshakes,
        queue_max_packets: int = DEFAULTS.queue_max_packets,
        queue_max_bytes: int = DEFAULTS.queue_max_bytes,
        high_water: int = DEFAULTS.high_water,
        low_water: int = DEFAULTS.low_water,
        reconnect_initial: float = DEFAULTS.reconnect_initial,
        reconnect_max: float = DEFAULTS.reconnect_max,
        max_dials: int = DEFAULTS.max_dials,
        seeds: Iterable[str] = (),
        cluster: bool = False,
        down_after: float | None = None,
        max_members: int = 1000,
        cluster_config: MembershipConfig | None = None,
    ) -> None:
        if not isinstance(node_id, str) or not 0 < len(node_id) <= 255:
            raise ConfigurationError("node_id must be a string of 1 to 255 characters")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be in 0..65535, got {port!r}")
        if isinstance(cookie, str):
            cookie = cookie.encode()
        if cookie is not None and (not isinstance(cookie, bytes) or not cookie):
            raise ConfigurationError("cookie must be non-empty bytes or str")
        if cookie is None and not insecure and not is_loopback(host):
            raise ConfigurationError(
                f"refusing to listen on non-loopback host {host!r} without a cookie: anyone who "
                "can reach the port could join the mesh and send packets. Pass cookie=... "
                "(and ssl=... to encrypt), or insecure=True to run an open mesh on purpose."
            )
        config = NodeConfig(
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            handshake_timeout=handshake_timeout,
            max_frame_size=max_frame_size,
            max_pending_handshakes=max_pending_handshakes,
            queue_max_packets=queue_max_packets,
            queue_max_bytes=queue_max_bytes,
            high_water=high_water,
            low_water=low_water,
            reconnect_initial=reconnect_initial,
            reconnect_max=reconnect_max,
            max_dials=max_dials,
        )
        if advertise is not None:
            parse_uri(advertise)
        self._id = node_id
        self._host = host
        self._port = port
        self._ssl = ssl
        self._dial_ssl = dial_ssl if dial_ssl is not None else ssl
        self._advertise = advertise
        self._config = config
        self._max_frame_bytes = config.max_frame_size + HEADER_SIZE
        self._tick_interval = min(config.heartbeat_interval, config.handshake_timeout) / 4
        self._handlers: dict[str, list[tuple[Handler, bool]]] = {name: [] for name in _EVENTS}
        self._sole_sync: dict[str, Handler | None] = dict.fromkeys(_EVENTS)
        self._uri: str | None = None
        self._state = "new"
        self._core: NodeCore = NodeCore(
            LocalIdentity(node_id, 0, None), config, cookie, lambda: os.urandom(32)
        )
        self._links: dict[int, Link] = {}
        self._redialers: dict[str, asyncio.Task[None]] = {}
        self._handler_tasks: set[asyncio.Task[Any]] = set()
        self._peer_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._drain_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._last_write_through = -1.0
        self._pumping = False
        self._dial_slots = asyncio.Semaphore(config.max_dials)
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._cluster = self._make_cluster(
            list(seeds), cluster, down_after, max_members, cluster_config
        )
        self._dialled: dict[str, str] = {}  # peer id -> the uri connect() reached it at

    def _make_cluster(
        self,
        seeds: list[str],
        cluster: bool,
        down_after: float | None,
        max_members: int,
        config: MembershipConfig | None,
    ) -> Cluster | None:
        for seed in seeds:
            parse_uri(seed)
        if not (cluster or seeds or config is not None):
            return None
        if config is None:
            if down_after is None:
                down_after = self._config.heartbeat_timeout + _REDIAL_GRACE
            if down_after <= 0 or max_members < 1:
                raise ConfigurationError("need down_after > 0 and max_members >= 1")
            config = MembershipConfig(
                down_after=down_after,
                check_timeout=self._config.heartbeat_interval,
                gossip_interval=self._config.heartbeat_interval,
                max_members=max_members,
            )
        return Cluster(self, config, seeds, b"", _dialable)

    # -- properties -----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """This node's id."""
        return self._id

    @property
    def peers(self) -> list[str]:
        """Ids of the peers connected now (handshake done)."""
        return self._core.peers

    @property
    def incarnation(self) -> int:
        """Random 64-bit number drawn at ``start()``; tells a restarted node from a live one."""
        return self._core.local.incarnation

    @property
    def members(self) -> dict[str, Member]:
        """The cluster's members as this node sees them, by id, this node included.

        A member is listed from its ``member_up`` to its ``member_down``; its ``status`` is
        ``"up"`` while this node is connected to it and ``"unreachable"`` while only other
        members are. Empty when the node is not in a cluster or not started.
        """
        return {} if self._cluster is None else self._cluster.members

    @property
    def clustered(self) -> bool:
        """True when this node takes part in cluster membership (``seeds`` or ``cluster``)."""
        return self._cluster is not None

    @property
    def metadata(self) -> bytes:
        """The opaque blob this node publishes to the cluster (see :meth:`set_metadata`)."""
        return b"" if self._cluster is None else self._cluster.metadata

    def info(self) -> str | None:
        """The uri announced to peers (``tcp://host:port``), or None before ``start()``."""
        return self._uri

    def is_connected(self, peer_id: str) -> bool:
        """True when ``peer_id`` is connected now (handshake done): `peers` without the list."""
        return self._core.is_up(peer_id)

    def is_kept(self, peer_id: str) -> bool:
        """True when ``peer_id`` is re-dialed whenever its connection drops."""
        return self._core.is_kept(peer_id)

    def stats(self) -> dict[str, PeerStats]:
        """Counters of every peer connected now or kept, by peer id (see `PeerStats`)."""
        return self._core.peer_stats()

    def __repr__(self) -> str:
        return f"<Node {self._id!r} {self._state} uri={self._uri!r} peers={len(self._core.peers)}>"

    # -- events ---------------------------------------------------------------------------------

    def on(self, event: EventName, handler: Handler) -> Handler:
        """Register ``handler`` for ``event``; sync functions and coroutine functions both work.

        Handlers receive ``listening(uri)``, ``connect(peer_id, uri)``,
        ``disconnect(peer_id, reason)``, ``message(peer_id, packet)``, and
        ``packets(peer_id, packets)``: every packet decoded from one read of a peer's socket, as
        a new list in arrival order, for consumers that handle packets in batches (the list may
        be kept; it is the same list for every handler of that read, so do not change it);
        in a cluster, ``seed_refused(uri, error)`` when a seed refuses the handshake (a
        `HandshakeError`, e.g. `AuthenticationError`; the seed is still re-dialled). For
        each batch, ``packets`` handlers run first, then ``message`` handlers once per packet.
        An exception in a handler is logged and does not affect the node.

        Returns:
            ``handler``, so ``on`` can be used as a decorator factory's target.

        Raises:
            ConfigurationError: unknown event name.
        """
        if event not in self._handlers:
            raise ConfigurationError(f"unknown event {event!r}; expected one of {_EVENTS}")
        self._handlers[event].append((handler, inspect.iscoroutinefunction(handler)))
        self._note_sole_sync(event)
        return handler

    def off(self, event: EventName, handler: Handler) -> None:
        """Remove a handler registered with :meth:`on` (no error if it is not there)."""
        if event not in self._handlers:
            return
        self._handlers[event] = [h for h in self._handlers[event] if h[0] is not handler]
        self._note_sole_sync(event)

    def _note_sole_sync(self, event: str) -> None:
        # The common case on the receive path, one synchronous handler per event, is called
        # directly; see _emit and _deliver.
        handlers = self._handlers[event]
        sole = len(handlers) == 1 and not handlers[0][1]
        self._sole_sync[event] = handlers[0][0] if sole else None

    def _emit(self, event: str, *args: Any) -> None:
        sole = self._sole_sync[event]
        if sole is not None:
            # One synchronous handler, whoever registered it: called without the loop below.
            try:
                sole(*args)
            except Exception:
                logger.exception("node %s: %s handler %r raised", self._id, event, sole)
            return
        for handler, is_async in self._handlers[event]:
            try:
                if is_async:
                    task = self._loop.create_task(handler(*args))
                    self._handler_tasks.add(task)
                    task.add_done_callback(self._handler_done)
                else:
                    handler(*args)
            except Exception:
                logger.exception("node %s: %s handler %r raised", self._id, event, handler)

    def _deliver(self, peer_id: str, packets: list[Any]) -> None:
        """Hand one read's packets to the ``packets`` handlers, then to ``message`` per packet."""
        if self._handlers["packets"]:
            self._emit("packets", peer_id, packets)
        if not self._handlers["message"]:
            return
        handler = self._sole_sync["message"]
        if handler is None:
            for packet in packets:
                self._emit("message", peer_id, packet)
            return
        for packet in packets:
            try:
                handler(peer_id, packet)
            except Exception:
                logger.exception("node %s: message handler %r raised", self._id, handler)

    def _handler_done(self, task: asyncio.Task[Any]) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("node %s: async handler raised", self._id, exc_info=task.exception())

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``host:port`` and begin serving; draws a fresh incarnation.

        Raises:
            NodeStateError: the node was already started.
            ConnectError: the address cannot be bound.
        """
        if self._state != "new":
            raise NodeStateError(f"node {self._id!r} was already started")
        self._state = "starting"
        self._loop = asyncio.get_running_loop()
        try:
            # TLS, when configured, runs inside each Link (see _link.py and _tls.py).
            self._server = await self._loop.create_server(
                lambda: Link(
                    self,
                    self._loop,
                    dialer=False,
                    tls=self._ssl,
                    write_limits=(self._config.high_water, self._config.low_water),
                ),
                self._host,
                self._port,
            )
        except OSError as exc:
            self._state = "closed"
            raise ConnectError(f"cannot listen on {self._host}:{self._port}: {exc}") from exc
        port = self._server.sockets[0].getsockname()[1]
        self._uri = self._advertise or format_uri(self._host, port)
        self._core.set_identity(LocalIdentity(self._id, secrets.randbits(64), self._uri))
        self._closed = self._loop.create_future()
        if self._cluster is not None:
            self._cluster.start(self._core.local.incarnation, self._uri, self._loop.time())
        self._ticker = self._loop.create_task(self._tick_forever())
        self._state = "running"
        logger.info("node %s listening on %s", self._id, self._uri)
        self._emit("listening", self._uri)

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Say goodbye to every peer, end all connections and stop listening. Idempotent."""
        if self._state in ("new", "closed"):
            self._state = "closed"
            return
        if self._state == "closing":
            assert self._closed is not None
            await asyncio.shield(self._closed)
            return
        self._state = "closing"
        if self._cluster is not None:
            # The left entry goes out before the goodbyes, in order on each connection.
            self._cluster.leave()
            await self._cluster.stop()
        self._core.close()
        self._pump()
        tasks: list[asyncio.Task[Any]] = list(self._redialers.values())
        if self._ticker is not None:
            tasks.append(self._ticker)
        for task in tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()
        links = list(self._links.values())
        if links:
            _, pending = await asyncio.wait([link.lost for link in links], timeout=_CLOSE_GRACE)
            for link in links:
                if not link.lost.done():
                    link.abort()
            if pending:
                await asyncio.wait(pending, timeout=_CLOSE_GRACE)
        if self._server is not None:
            await self._server.wait_closed()
        handler_tasks = list(self._handler_tasks)
        for task in handler_tasks:
            task.cancel()
        await asyncio.gather(*tasks, *handler_tasks, return_exceptions=True)
        for waiters in (*self._peer_waiters.values(), *self._drain_waiters.values()):
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self._state = "closed"
        assert self._closed is not None
        self._closed.set_result(None)
        logger.info("node %s closed", self._id)

    def _require_running(self) -> None:
        if self._state != "running":
            raise NodeStateError(f"node {self._id!r} is {self._state}, not running")

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self._tick_interval)
            now = self._loop.time()
            self._core.tick(now)
            if self._cluster is not None:
                self._cluster.tick(now)
            self._pump()

    # -- dialing --------------------------------------------------------------------------------

    async def connect(self, uri: str, *, timeout: float | None = None) -> str:
        """Dial ``uri`` and return the peer's id once it is in :attr:`peers`; marks it kept.

        If both nodes dial each other at once, whichever connection survives dedup counts.

        Args:
            uri: ``tcp://host:port`` of the peer (e.g. another node's ``info()``).
            timeout: limit in seconds; defaults to ``handshake_timeout``.

        Raises:
            ConnectError: refused, unreachable, or timed out.
            AuthenticationError: cookies differ or only one side has one.
            HandshakeError: the peer is this node itself, or refused the handshake.
            NodeStateError: the node is not running.
        """
        self._require_running()
        limit = self._config.handshake_timeout if timeout is None else timeout
        peer_id = await self._dial(uri, limit)
        if self._cluster is not None:
            self._dialled[peer_id] = uri
        # Kept even when its connection already ended again: then this asks for a re-dial.
        self._core.keep(peer_id, True, uri)
        self._pump()
        return peer_id

    async def _dial(self, uri: str, timeout: float) -> str:
        host, port = parse_uri(uri)
        link: Link | None = None
        try:
            async with asyncio.timeout(timeout):
                try:
                    _, protocol = await self._loop.create_connection(
                        lambda: Link(
                            self,
                            self._loop,
                            dialer=True,
                            tls=self._dial_ssl,
                            write_limits=(self._config.high_water, self._config.low_water),
                            uri=uri,
                            host=host,
                        ),
                        host,
                        port,
                    )
                except OSError as exc:
                    raise ConnectError(f"cannot connect to {uri}: {exc}") from exc
                link = protocol
                outcome = await asyncio.shield(link.outcome)
                if outcome.error is not None:
                    raise outcome.error
                peer_id = outcome.peer_id
                assert peer_id is not None
                if not (outcome.committed or outcome.pair_up or self._core.is_up(peer_id)):
                    # A duplicate: the pair's other connection, not up yet, is the one that counts.
                    await self._wait_peer_change(peer_id)
                return peer_id
        except TimeoutError as exc:
            if link is not None:
                link.abort()
            raise ConnectError(f"connecting to {uri} timed out after {timeout} s") from exc

    async def _wait_peer_change(self, peer_id: str) -> None:
        """Wait for the next ``connect`` or ``disconnect`` of ``peer_id``."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._peer_waiters.setdefault(peer_id, []).append(waiter)
        try:
            await waiter
        finally:
            waiters = self._peer_waiters.get(peer_id, [])
            if waiter in waiters:
                waiters.remove(waiter)

    def _start_redial(self, peer_id: str, uri: str) -> None:
        if self._state != "running" or peer_id in self._redialers:
            return
        task = self._loop.create_task(self._redial(peer_id, uri))
        self._redialers[peer_id] = task
        task.add_done_callback(lambda done: self._redial_done(peer_id, done))

    def _redial_done(self, peer_id: str, task: asyncio.Task[None]) -> None:
        # A cancelled task ends a loop turn later, when a newer one may hold its place.
        if self._redialers.get(peer_id) is task:
            del self._redialers[peer_id]

    async def _redial(self, peer_id: str, uri: str) -> None:
        delay = self._config.reconnect_initial
        attempt = 0
        logged_delay = 0.0
        while self._core.is_kept(peer_id) and not self._core.is_up(peer_id):
            # Full jitter keeps a mesh of restarted nodes from dialing in lockstep.
            await asyncio.sleep(random.uniform(delay / 2, delay))
            if not self._core.is_kept(peer_id) or self._core.is_up(peer_id):
                return
            attempt += 1
            uri = self._core.peer_uri(peer_id) or uri
            try:
                async with self._dial_slots:
                    if not self._core.is_kept(peer_id) or self._core.is_up(peer_id):
                        return
                    found = await self._dial(uri, self._config.handshake_timeout)
            except TransportError as exc:
                if self._cluster is not None:
                    self._cluster.dial_failed(peer_id, self._loop.time())
                # One line per back-off step; at the capped delay, at attempts 4, 8, 16...
                if delay != logged_delay or attempt & (attempt - 1) == 0:
                    logged_delay = delay
                    logger.info(
                        "node %s: re-dial %d of %s at %s failed: %s",
                        self._id,
                        attempt,
                        peer_id,
                        uri,
                        exc,
                    )
                delay = min(delay * 2, self._config.reconnect_max)
                continue
            if found != peer_id:
                logger.warning(
                    "node %s: %s now answers as %r, not %r", self._id, uri, found, peer_id
                )
                delay = min(delay * 2, self._config.reconnect_max)
                continue
            if self._core.is_up(peer_id):
                logger.info("node %s: re-dialed %s after %d attempt(s)", self._id, peer_id, attempt)
                return
            # Up and gone again before this task saw it: the loop dials once more.

    async def disconnect(self, peer_id: str) -> None:
        """Close the connection to ``peer_id`` with a goodbye and stop keeping it."""
        self._require_running()
        self._dialled.pop(peer_id, None)
        task = self._redialers.pop(peer_id, None)
        if task is not None:
            task.cancel()
        handle = self._core.handle_of(peer_id)
        link = None if handle is None else self._links.get(handle)
        self._core.disconnect(peer_id)
        self._pump()
        if link is not None:
            await asyncio.wait([link.lost], timeout=_CLOSE_GRACE)

    def keep(self, peer_id: str, flag: bool = True) -> None:
        """Re-dial ``peer_id`` whenever its connection drops (``flag=True``), or stop doing so.

        A peer can be kept once this node knows where to dial it: while it is connected, or
        after ``connect()`` to it.

        Raises:
            ConfigurationError: ``flag`` is True and this node does not know where ``peer_id``
                is (it never connected, or was forgotten after it left unkept).
        """
        if not self._core.keep(peer_id, flag):
            raise ConfigurationError(
                f"cannot keep {peer_id!r}: node {self._id!r} does not know its uri; "
                "connect() to it first"
            )
        if not flag:
            task = self._redialers.pop(peer_id, None)
            if task is not None:
                task.cancel()
        self._pump()

    # -- cluster ----------------------------------------------------------------------------------

    def _require_cluster(self) -> Cluster:
        if self._cluster is None:
            raise NodeStateError(
                f"node {self._id!r} is not in a cluster: pass seeds=[...] or cluster=True"
            )
        return self._cluster

    async def join(self, uri: str, *, timeout: float | None = None) -> str:
        """Join the cluster through the member at ``uri``; returns that member's id.

        Returns once that member's hello has arrived; the members this node lacks are being
        dialled then (``wait_for_members`` waits for them).

        Raises:
            NodeStateError: the node is not running or not in a cluster.
            ConnectError: ``uri`` is unreachable or the join timed out.
            AuthenticationError: cookies differ.
        """
        self._require_running()
        cluster = self._require_cluster()
        limit = self._config.handshake_timeout if timeout is None else timeout
        try:
            return await cluster.join(uri, limit)
        except TimeoutError as exc:
            raise ConnectError(f"joining through {uri} timed out after {limit} s") from exc

    async def wait_for_members(
        self, count: int, *, timeout: float | None = None
    ) -> dict[str, Member]:
        """Wait until :attr:`members` holds at least ``count`` members (this node included).

        Raises:
            NodeStateError: the node is not running or not in a cluster, or it closed.
            TimeoutError: ``timeout`` seconds passed first.
        """
        self._require_running()
        return await self._require_cluster().wait_for_members(count, timeout)

    def set_metadata(self, metadata: bytes) -> None:
        """Publish ``metadata``, an opaque blob gossiped to every member with this node's entry.

        The mesh never reads it; the actor layer keeps its groups there. Members see the new
        blob through ``member_updated`` and :attr:`members`.

        Raises:
            NodeStateError: the node is not in a cluster.
            ConfigurationError: the blob is larger than the cluster's ``max_metadata``.
        """
        cluster = self._require_cluster()
        try:
            cluster.set_metadata(bytes(metadata), self._loop.time() if self._loop else 0.0)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        if self._loop is not None:
            self._pump()

    def _cluster_connected(self, peer_id: str) -> None:
        assert self._cluster is not None
        handle = self._core.handle_of(peer_id)
        conn = None if handle is None else self._core.connection(handle)
        if conn is not None and conn.peer is not None:
            self._cluster.connection_up(peer_id, conn.peer.incarnation, self._loop.time())

    # The ClusterHost side (see transport._cluster).

    def _send_membership(self, peer_id: str, body: list[Any]) -> bool:
        return self._core.send_membership(peer_id, body)

    def _keep_member(self, peer_id: str, uri: str) -> None:
        if self._state == "running":
            # A uri this node dialled itself (a proxy, a NAT address) beats the advertised one.
            self._core.keep(peer_id, True, self._dialled.get(peer_id, uri))

    def _forget_member(self, peer_id: str) -> None:
        task = self._redialers.pop(peer_id, None)
        if task is not None:
            task.cancel()
        self._core.keep(peer_id, False)

    def _drop_peer(self, peer_id: str, error: TransportError) -> None:
        self._core.drop(peer_id, error)

    # -- sending ----------------------------------------------------------------------------------

    @overload
    def send(self, peer: str, packet: Any) -> bool: ...

    @overload
    def send(self, peer: Iterable[str], packet: Any) -> int: ...

    def send(self, peer: str | Iterable[str], packet: Any) -> bool | int:
        """Send ``packet`` to one peer or to many; never blocks.

        The packet is encoded once whatever the number of peers. A kept peer that is
        reconnecting gets the packet queued (bounded).

        Returns:
            For one peer: True when handed to its connection or reconnect queue, False when
            the peer is unknown, not kept and not connected, or past its high-water mark.
            For many: how many peers it was handed to.

        Raises:
            EncodingError: msgpack cannot serialize ``packet``.
            PacketTooLarge: the encoded packet exceeds ``max_frame_size``.
        """
        frame = encode_data(packet)
        if len(frame) > self._max_frame_bytes:
            raise PacketTooLarge(
                f"packet encodes to {len(frame) - HEADER_SIZE} bytes, above "
                f"max_frame_size={self._config.max_frame_size}; peers would refuse it"
            )
        core = self._core
        if isinstance(peer, str):
            result: bool | int = core.send(peer, frame)
        else:
            result = 0
            for peer_id in peer:
                if core.send(peer_id, frame):
                    result += 1
        if self._flush_handle is None and not self._pumping and core.has_output:
            # A send made while the pump dispatches a read (a handler's reply) is written
            # with the rest of that read's sends when the pump ends: one write per read.
            # A send after a quiet spell is written at once (latency). One that comes within
            # _BURST_GAP of the end of the last such write is part of a burst: it and the rest
            # of the burst are coalesced into one write by a flush at the next event-loop turn.
            # Arming that flush only for bursts spares each lone send a loop turn (an
            # epoll_wait). The gap counts from the write's end, so that slow writes (many
            # peers, large packets) do not make every send of a burst a write of its own.
            if self._loop.time() - self._last_write_through > _BURST_GAP:
                self._flush()
                self._last_write_through = self._loop.time()
            else:
                self._flush_handle = self._loop.call_soon(self._flush)
        return result

    async def drained(self, peer_id: str) -> None:
        """Wait until ``peer_id``'s outgoing buffer is below the low-water mark.

        Returns at once when nothing is buffered, and when the connection ends (then ``send``
        returns False again: check :attr:`peers`).
        """
        handle = self._core.handle_of(peer_id)
        if handle is None or not self._core.backed_up(peer_id):
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._drain_waiters.setdefault(handle, []).append(waiter)
        await waiter

    def _wake_drain_waiters(self, handle: int) -> None:
        link = self._links.get(handle)
        if link is not None and link.paused and not link.closed:
            return
        for waiter in self._drain_waiters.pop(handle, ()):
            if not waiter.done():
                waiter.set_result(None)

    # -- what a Link calls (transport._link.LinkOwner) -------------------------------------------

    def link_made(self, link: Link) -> int:
        """Open a core connection for ``link``'s new socket and return its handle."""
        handle = self._core.open(dialer=link.dialer, now=self._loop.time(), uri=link.uri)
        self._links[handle] = link
        link.handle = handle
        self._pump()
        return handle

    def link_received(self, handle: int, data: bytes | memoryview) -> None:
        """Feed bytes read on ``handle`` to the core and pump."""
        self._core.receive_data(handle, data, self._loop.time())
        self._pump()

    def link_failed(self, handle: int, error: TransportError) -> None:
        """Fail ``handle`` for a reason found below the protocol (TLS)."""
        self._core.abort(handle, error)
        self._pump()

    def link_paused(self, handle: int, paused: bool) -> None:
        """Tell the core that ``handle``'s socket buffer crossed a mark."""
        self._core.set_paused(handle, paused)
        if not paused:
            self._wake_drain_waiters(handle)

    def link_lost(self, link: Link) -> None:
        """Tell the core that ``link``'s socket closed."""
        self._core.connection_lost(link.handle, self._loop.time())
        self._pump()  # while the handle still maps to the link: its dial outcome finds it
        self._links.pop(link.handle, None)
        self._wake_drain_waiters(link.handle)

    # -- the one pump: after the core ran, dispatch its events, write its output, close --------

    def _pump(self) -> None:
        core = self._core
        if core.has_events:
            outer = self._pumping
            self._pumping = True
            try:
                while core.has_events:  # the cluster's handlers may queue more
                    self._dispatch(core.take_events())
            finally:
                self._pumping = outer
        if core.has_output:
            self._write_output()

    def _flush(self) -> None:
        self._flush_handle = None
        self._pump()

    def _write_output(self) -> None:
        links = self._links
        for handle, data, close in self._core.take_output():
            link = links.get(handle)
            if link is None:
                continue
            if data:
                link.write(data)
            if close:
                link.close()
            elif handle in self._drain_waiters:
                self._wake_drain_waiters(handle)

    def _dispatch(self, events: list[Any]) -> None:
        for event in events:
            kind = type(event)
            if kind is PacketsReceived:
                self._deliver(event.peer_id, event.packets)
            elif kind is PeerConnected:
                logger.info("node %s: connected to %s", self._id, event.peer_id)
                self._wake_peer_waiters(event.peer_id)
                if self._cluster is not None:
                    self._cluster_connected(event.peer_id)
                self._emit("connect", event.peer_id, event.uri)
            elif kind is PeerDisconnected:
                logger.info(
                    "node %s: disconnected from %s (%s)", self._id, event.peer_id, event.reason
                )
                self._wake_peer_waiters(event.peer_id)
                if self._cluster is not None:
                    now = self._loop.time()
                    self._cluster.connection_down(event.peer_id, now, event.last_heard)
                self._emit("disconnect", event.peer_id, event.reason)
            elif kind is MembershipReceived:
                if self._cluster is not None:
                    self._cluster.receive(event.peer_id, event.body, self._loop.time())
            elif kind is RedialNeeded:
                self._start_redial(event.peer_id, event.uri)
            elif kind is DialOutcome:
                link = self._links.get(event.handle)
                if link is not None and not link.outcome.done():
                    link.outcome.set_result(event)
                if event.error is not None and isinstance(event.error, HandshakeError):
                    logger.debug("node %s: dial failed: %s", self._id, event.error)

    def _wake_peer_waiters(self, peer_id: str) -> None:
        for waiter in self._peer_waiters.pop(peer_id, ()):
            if not waiter.done():
                waiter.set_result(None)
