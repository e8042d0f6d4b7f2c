"""Test helpers shared by the whole tree: one deadline, one wait, one recorder, one proxy.

* :data:`DEADLINE` bounds every wait in the tests.
* :class:`Changed` and :func:`wait_until` wait for a condition, re-checked on each change.
* :class:`EventRecorder` records a node's events in the order they fired.
* :class:`FaultProxy` stands between two nodes: it records what crosses it and injects faults.
* :func:`nonces` makes the deterministic nonce factory the sans-I/O core tests pass in, and
  :class:`CorePair` links two cores by an in-memory wire (h11's ``ConnectionPair``).

Nothing here sleeps to synchronize: waits are on events, futures or sockets, under a deadline.
The proxy's ``delay`` and ``drip`` do sleep: the elapsed time is the fault itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from transport import Node, parse_uri
from transport._config import NodeConfig
from transport._core import NodeCore
from transport._events import Event
from transport._frames import FrameDecoder
from transport._handshake import LocalIdentity

__all__ = [
    "DEADLINE",
    "Changed",
    "CorePair",
    "EventRecorder",
    "FaultProxy",
    "extra_sockets_closed",
    "nonces",
    "uri_of",
    "wait_until",
    "within",
]

T = TypeVar("T")

DEADLINE = 10.0
"""The bound of every wait in the tests, in seconds."""


async def within(awaitable: Awaitable[T], seconds: float = DEADLINE) -> T:
    """Await with a deadline so that no test can hang."""
    return await asyncio.wait_for(awaitable, seconds)


class Changed:
    """A condition a test can wait on: ``notify()`` wakes every ``wait_for`` to re-check."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
        await wait_until(predicate, self, timeout)


async def wait_until(
    condition: Callable[[], bool], changed: Changed | asyncio.Event, timeout: float = DEADLINE
) -> None:
    """Wait (bounded) until ``condition()`` holds, re-checking each time ``changed`` fires.

    ``changed`` is a :class:`Changed` or an ``asyncio.Event`` that the code under test sets
    (it is cleared after each wake-up).
    """
    async with asyncio.timeout(timeout):
        while not condition():
            if isinstance(changed, asyncio.Event):
                await changed.wait()
                changed.clear()
            else:
                await changed.wait()


def uri_of(node: Node) -> str:
    """The started node's uri."""
    uri = node.info()
    assert uri is not None, f"{node!r} is not started"
    return uri


def nonces(seed: bytes = b"nonce") -> Callable[[], bytes]:
    """A deterministic nonce factory for the sans-I/O core: 32 fresh bytes per call."""
    counter = itertools.count()
    return lambda: hashlib.sha256(b"%s-%d" % (seed, next(counter))).digest()


async def extra_sockets_closed(*nodes: Node, timeout: float = DEADLINE) -> None:
    """Wait until every socket of these nodes that carries no up connection has closed.

    Each link resolves its ``lost`` future when its socket closes, so this waits on those
    instead of polling the nodes' socket counts.
    """
    closing = [
        link.lost
        for node in nodes
        for handle, link in node._links.items()
        if handle not in {node._core.handle_of(peer) for peer in node.peers}
    ]
    await asyncio.wait_for(asyncio.gather(*closing), timeout)


class CorePair:
    """Two sans-I/O cores joined by one in-memory connection: ``a`` dialed ``b``.

    Nothing moves until the test says so: :meth:`deliver` carries bytes one way, :meth:`pump`
    both ways until the wire is quiet, :meth:`advance` moves the time of both cores. Every
    event either core produced is kept in ``events[node_id]``.
    """

    def __init__(
        self,
        a: str = "a",
        b: str = "b",
        config: NodeConfig | None = None,
        cookie: bytes | None = None,
    ) -> None:
        config = config or NodeConfig()
        self.now = 0.0
        self.cores = {
            a: NodeCore(LocalIdentity(a, 1, f"sim://{a}"), config, cookie, nonces(a.encode())),
            b: NodeCore(LocalIdentity(b, 2, f"sim://{b}"), config, cookie, nonces(b.encode())),
        }
        self.a, self.b = self.cores[a], self.cores[b]
        self.handles = {
            a: self.a.open(dialer=True, now=0.0, uri=f"sim://{b}"),
            b: self.b.open(dialer=False, now=0.0),
        }
        self.other = {a: b, b: a}
        self.wire: dict[str, bytearray] = {a: bytearray(), b: bytearray()}  # bytes toward id
        self.eof: dict[str, bool] = {a: False, b: False}  # the sender closed toward id
        self.lost: dict[str, bool] = {a: False, b: False}
        self.events: dict[str, list[Event]] = {a: [], b: []}
        self.sent: dict[str, list[Any]] = {a: [], b: []}  # bodies each side wrote
        self.collect()

    def collect(self) -> None:
        """Move each core's output onto the wire and its events into ``events``."""
        for node_id, core in self.cores.items():
            toward = self.other[node_id]
            for output in core.take_output():
                self.sent[node_id] += FrameDecoder(1 << 30).feed(output.data)
                if not self.eof[toward]:
                    self.wire[toward] += output.data
                    if output.close:
                        self.eof[toward] = True
                        self._lose(node_id)  # the closing side's own socket is gone too
            self.events[node_id] += core.take_events()

    def _lose(self, node_id: str) -> None:
        if not self.lost[node_id]:
            self.lost[node_id] = True
            self.cores[node_id].connection_lost(self.handles[node_id], self.now)

    def deliver(self, node_id: str) -> None:
        """Hand everything in flight toward ``node_id`` to it (then its EOF, if sent)."""
        data = bytes(self.wire[node_id])
        self.wire[node_id].clear()
        if data and not self.lost[node_id]:
            self.cores[node_id].receive_data(self.handles[node_id], data, self.now)
        if self.eof[node_id]:
            self._lose(node_id)
        self.collect()

    def pump(self) -> None:
        """Deliver both ways until nothing is in flight."""
        for _ in range(100):
            pending = [
                node_id
                for node_id in self.cores
                if (self.wire[node_id] or self.eof[node_id]) and not self.lost[node_id]
            ]
            if not pending:
                return
            for node_id in pending:
                self.deliver(node_id)
        raise AssertionError("the wire never went quiet")

    def advance(self, seconds: float, *, only: str | None = None) -> None:
        """Move the clock and tick the cores (``only`` one of them, when given)."""
        self.now += seconds
        for node_id, core in self.cores.items():
            if only is None or node_id == only:
                core.tick(self.now)
        self.collect()


class EventRecorder:
    """Every event of one node, in the order they fired, with the loop time of each.

    ``log`` holds ``("connect", peer)``, ``("disconnect", peer, reason)`` and
    ``("message", peer, packet)`` tuples, ``times`` the matching ``loop.time()``;
    ``events`` (also ``lifecycle``) only the connects and disconnects, ``received`` the
    ``(peer, packet)`` of every message.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.log: list[tuple[Any, ...]] = []
        self.times: list[float] = []
        self.events: list[tuple[Any, ...]] = []
        self.connects: list[str] = []
        self.disconnects: list[tuple[str, str]] = []
        self.received: list[tuple[str, Any]] = []
        self.changed = Changed()
        self._loop = asyncio.get_running_loop()
        node.on("connect", self._on_connect)
        node.on("disconnect", self._on_disconnect)
        node.on("message", self._on_message)

    def _on_connect(self, peer_id: str, uri: str | None) -> None:
        self.connects.append(peer_id)
        self.events.append(("connect", peer_id))
        self._add(("connect", peer_id))

    def _on_disconnect(self, peer_id: str, reason: str) -> None:
        self.disconnects.append((peer_id, reason))
        self.events.append(("disconnect", peer_id, reason))
        self._add(("disconnect", peer_id, reason))

    def _on_message(self, peer_id: str, packet: Any) -> None:
        self.received.append((peer_id, packet))
        self._add(("message", peer_id, packet))

    def _add(self, event: tuple[Any, ...]) -> None:
        self.log.append(event)
        self.times.append(self._loop.time())
        self.changed.notify()

    @property
    def lifecycle(self) -> list[tuple[Any, ...]]:
        """Connect and disconnect events only (the same as ``events``)."""
        return self.events

    def messages(self, peer: str | None = None) -> list[Any]:
        """The packets received (from ``peer`` only, when given), in arrival order."""
        return [packet for sender, packet in self.received if peer is None or sender == peer]

    def count(self, event: tuple[Any, ...]) -> int:
        return self.log.count(event)

    def time_of(self, event: tuple[Any, ...]) -> float:
        return self.times[self.log.index(event)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
        await self.changed.wait_for(predicate, timeout)

    async def wait_event(self, event: tuple[Any, ...], timeout: float = DEADLINE) -> None:
        await self.wait_for(lambda: event in self.log, timeout)

    async def wait_message(self, peer_id: str, packet: Any, timeout: float = DEADLINE) -> None:
        await self.wait_for(lambda: (peer_id, packet) in self.received, timeout)


# -- the fault proxy ----------------------------------------------------------------------------


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST: SO_LINGER 0 makes the kernel drop buffers and reset the peer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Pair:
    """One proxied connection: the client's socket and the socket to the target."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.tainted = False  # bytes were dropped: the stream cannot be resumed
        self.closed = False
        # Bytes forwarded client -> target and target -> client, for post-mortems.
        self.forwarded: dict[str, bytearray] = {"up": bytearray(), "down": bytearray()}

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.upstream) if w is not None]


class FaultProxy:
    """A TCP proxy on 127.0.0.1 between nodes, with faults a test switches on and off.

    Dial ``proxy.uri`` instead of the target. Faults apply to every proxied connection,
    including ones opened later (a kept peer re-dials the uri it dialed: the proxy):

    * ``delay(seconds)``: hold each chunk that long before forwarding it;
    * ``drip()``: forward one byte per write;
    * ``stall()``: stop reading (bytes pile up in the senders' buffers; nothing is lost);
    * ``blackhole()``: read and drop everything, connect new clients nowhere (a partition);
    * ``cut()``: reset every current connection, both ways (RST, not FIN);
    * ``cut_after(nbytes, direction)``: forward ``nbytes`` more bytes that way, then cut;
    * ``heal()``: back to plain forwarding; connections that lost bytes are reset.
    """

    def __init__(self, target: str) -> None:
        self._target = parse_uri(target)
        self._server: asyncio.Server | None = None
        self.pairs: list[_Pair] = []  # every connection accepted, in order
        self.uri = ""
        self.changed = Changed()
        self._delay = 0.0
        self._drip = False
        self._blackhole = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._cut_budget: dict[str, int | None] = {"up": None, "down": None}
        self.cuts = 0
        self.accepted = 0

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.uri = f"tcp://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        self._flowing.set()
        for pair in list(self.pairs):
            self._close_pair(pair, reset=True)
        tasks = [task for pair in self.pairs for task in pair.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for pair in self.pairs:
            for writer in pair.writers():
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        await self._server.wait_closed()

    # -- faults -----------------------------------------------------------------------------------

    @property
    def client_bytes(self) -> list[bytearray]:
        """Per accepted connection, everything its client sent through the proxy."""
        return [pair.forwarded["up"] for pair in self.pairs]

    def retarget(self, target: str) -> None:
        """Forward connections accepted from now on to ``target`` instead."""
        self._target = parse_uri(target)

    @property
    def live(self) -> list[_Pair]:
        """Proxied connections still open."""
        return [pair for pair in self.pairs if not pair.closed]

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def drip(self) -> None:
        self._drip = True

    def stall(self) -> None:
        self._flowing.clear()

    def blackhole(self) -> None:
        self._blackhole = True

    def cut(self) -> int:
        """Reset every live connection both ways; return how many were cut."""
        live = self.live
        for pair in live:
            self._close_pair(pair, reset=True)
        self.cuts += len(live)
        return len(live)

    def cut_after(self, nbytes: int, direction: str = "up") -> None:
        """Forward ``nbytes`` more bytes in ``direction`` ("up": client to target), then cut."""
        self._cut_budget[direction] = nbytes

    def heal(self) -> None:
        self._delay = 0.0
        self._drip = False
        self._blackhole = False
        self._cut_budget = {"up": None, "down": None}
        self._flowing.set()
        for pair in self.live:
            if pair.tainted:
                self._close_pair(pair, reset=True)
                self.cuts += 1

    # -- plumbing ---------------------------------------------------------------------------------

    def _close_pair(self, pair: _Pair, *, reset: bool) -> None:
        if pair.closed:
            return
        pair.closed = True
        for writer in pair.writers():
            if reset:
                _reset(writer)
            else:
                writer.close()
        self.changed.notify()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pair = _Pair(writer)
        self.pairs.append(pair)
        self.accepted += 1
        self.changed.notify()
        if self._blackhole:
            # A partition: the dialer's SYN "got through" to us but nothing reaches the target.
            pair.tainted = True
            pair.tasks.append(asyncio.ensure_future(self._pump(pair, reader, None, "up")))
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            self._close_pair(pair, reset=True)
            return
        if pair.closed:  # cut while we were connecting
            _reset(up_writer)
            with contextlib.suppress(OSError):
                await up_writer.wait_closed()
            return
        pair.upstream = up_writer
        with contextlib.suppress(OSError):
            up_writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The pumps run as their own tasks: the server's handler task must never be cancelled.
        pair.tasks.append(asyncio.ensure_future(self._pump(pair, reader, up_writer, "up")))
        pair.tasks.append(asyncio.ensure_future(self._pump(pair, up_reader, writer, "down")))

    async def _pump(
        self,
        pair: _Pair,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter | None,
        direction: str,
    ) -> None:
        try:
            while not pair.closed:
                await self._flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                if self._blackhole or writer is None:
                    pair.tainted = True
                    continue
                await self._forward(pair, data, writer, direction)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if not (self._blackhole or pair.tainted):
                # Pass a close on as a close (FIN), unless we are a partition.
                self._close_pair(pair, reset=False)

    async def _forward(
        self, pair: _Pair, data: bytes, writer: asyncio.StreamWriter, direction: str
    ) -> None:
        if self._delay:
            await asyncio.sleep(self._delay)  # the delay is the fault under test
        budget = self._cut_budget[direction]
        cut_now = budget is not None and len(data) >= budget
        if budget is not None:
            if cut_now:
                data = data[:budget]
                self._cut_budget[direction] = None
            else:
                self._cut_budget[direction] = budget - len(data)
        index = 0
        while self._drip and index < len(data):
            writer.write(data[index : index + 1])
            index += 1
            await writer.drain()
            await asyncio.sleep(0)  # one byte per loop turn: one write, one segment
        if index < len(data):
            writer.write(data[index:])
            await writer.drain()
        pair.forwarded[direction] += data
        if cut_now:
            self.cut()
