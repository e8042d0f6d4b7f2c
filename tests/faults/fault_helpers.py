"""Tools of the fault-injection suite: a fault proxy, event logs, and nodes in subprocesses.

Nothing here sleeps to synchronize: waits are on events, futures or process output, under a
deadline. The proxy's ``delay`` and ``drip`` do sleep: the elapsed time is the fault itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from transport import Node, parse_uri

DEADLINE = 10.0
NODE_SCRIPT = Path(__file__).with_name("node_process.py")

# Timings small enough that the whole fault suite runs in well under a minute.
FAST = {
    "heartbeat_interval": 0.05,
    "heartbeat_timeout": 0.4,
    "handshake_timeout": 0.5,
    "reconnect_initial": 0.05,
    "reconnect_max": 0.2,
}


class Changed:
    """A condition a test can wait on: ``notify()`` wakes every ``wait_for`` to re-check."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._event.wait()


class EventLog:
    """Every event of one node, in the order they fired, with the loop time of each.

    ``log`` holds ``("connect", peer)``, ``("disconnect", peer, reason)`` and
    ``("message", peer, packet)`` tuples; ``times`` the matching ``loop.time()``.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.log: list[tuple[Any, ...]] = []
        self.times: list[float] = []
        self.changed = Changed()
        self._loop = asyncio.get_running_loop()
        node.on("connect", lambda peer, uri: self._add(("connect", peer)))
        node.on("disconnect", lambda peer, reason: self._add(("disconnect", peer, reason)))
        node.on("message", lambda peer, packet: self._add(("message", peer, packet)))

    def _add(self, event: tuple[Any, ...]) -> None:
        self.log.append(event)
        self.times.append(self._loop.time())
        self.changed.notify()

    @property
    def lifecycle(self) -> list[tuple[Any, ...]]:
        """Connect and disconnect events only."""
        return [event for event in self.log if event[0] != "message"]

    def messages(self, peer: str | None = None) -> list[Any]:
        return [e[2] for e in self.log if e[0] == "message" and (peer is None or e[1] == peer)]

    def count(self, event: tuple[Any, ...]) -> int:
        return self.log.count(event)

    def time_of(self, event: tuple[Any, ...]) -> float:
        return self.times[self.log.index(event)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
        await self.changed.wait_for(predicate, timeout)

    async def wait_event(self, event: tuple[Any, ...], timeout: float = DEADLINE) -> None:
        await self.wait_for(lambda: event in self.log, timeout)


def uri_of(node: Node) -> str:
    uri = node.info()
    assert uri is not None, f"{node!r} is not started"
    return uri


def port_of(uri: str) -> int:
    return parse_uri(uri)[1]


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
        self.pairs: list[_Pair] = []
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


# -- nodes in subprocesses ------------------------------------------------------------------


class NodeProcess:
    """A transport node in its own process (``node_process.py``), killable with SIGKILL.

    The child prints one JSON line per event; ``events`` collects them and ``wait_for``
    waits on them. ``command`` writes a JSON command to its stdin.
    """

    def __init__(self, process: asyncio.subprocess.Process, node_id: str) -> None:
        self.process = process
        self.node_id = node_id
        self.events: list[dict[str, Any]] = []
        self.changed = Changed()
        self.uri = ""
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(
        cls, node_id: str, *, port: int = 0, cookie: str | None = None, **options: Any
    ) -> NodeProcess:
        args = [sys.executable, str(NODE_SCRIPT), "--id", node_id, "--port", str(port)]
        if cookie is not None:
            args += ["--cookie", cookie]
        if options:
            args += ["--options", json.dumps(options)]
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        node = cls(process, node_id)
        try:
            await node.wait_for(lambda: node.has("listening") or node.has("exit"), timeout=DEADLINE)
        except BaseException:
            await node.kill()
            raise
        if not node.has("listening"):
            await node.kill()
            raise RuntimeError(f"node process {node_id!r} exited before listening")
        node.uri = node.first("listening")["uri"]
        return node

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.events.append(json.loads(line))
            self.changed.notify()
        self.events.append({"event": "exit"})
        self.changed.notify()

    @property
    def port(self) -> int:
        return port_of(self.uri)

    def has(self, event: str, **fields: Any) -> bool:
        return any(self._matches(e, event, fields) for e in self.events)

    def first(self, event: str, **fields: Any) -> dict[str, Any]:
        return next(e for e in self.events if self._matches(e, event, fields))

    def messages(self, peer: str | None = None) -> list[Any]:
        return [
            e["packet"]
            for e in self.events
            if e["event"] == "message" and (peer is None or e["peer"] == peer)
        ]

    @staticmethod
    def _matches(event: dict[str, Any], name: str, fields: dict[str, Any]) -> bool:
        return event["event"] == name and all(event.get(k) == v for k, v in fields.items())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
        await self.changed.wait_for(predicate, timeout)

    async def command(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def kill(self) -> None:
        """SIGKILL: no goodbye, no close; the kernel closes the sockets."""
        if self.process.returncode is None:
            self.process.kill()
        await self._finish()

    async def stop(self) -> None:
        """Ask the node to close cleanly; kill it if it does not exit in time."""
        if self.process.returncode is None:
            with contextlib.suppress(OSError):
                await self.command(op="close")
            try:
                async with asyncio.timeout(DEADLINE):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
        await self._finish()

    async def _finish(self) -> None:
        if self.process.returncode is None:
            # A stopped (SIGSTOP) child must be continued for SIGKILL to be reaped promptly.
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
        await self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
            with contextlib.suppress(OSError):
                await self.process.stdin.wait_closed()
        await self._reader


Proxies = Callable[[str], Awaitable[FaultProxy]]
"""The ``proxies`` fixture: starts a fault proxy in front of a target uri."""


@asynccontextmanager
async def linked(
    proxies: Proxies, **options: Any
) -> AsyncIterator[tuple[Node, Node, EventLog, EventLog, FaultProxy]]:
    """Nodes a and b, a dialed b through a fault proxy (so a keeps b and re-dials the proxy)."""
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(Node("a", **options))
        b = await stack.enter_async_context(Node("b", **options))
        log_a, log_b = EventLog(a), EventLog(b)
        proxy = await proxies(uri_of(b))
        assert await a.connect(proxy.uri) == "b"
        await log_b.wait_event(("connect", "a"))
        yield a, b, log_a, log_b, proxy
