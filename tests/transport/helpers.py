"""Helpers of the transport tests: raw sockets, started nodes, log watching.

The helpers every test directory shares (the deadline, the event recorder, the proxy) live in
``tests/support.py``.

Nothing here sleeps to synchronize: every wait is on an event, a future or a socket's EOF,
under a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from support import DEADLINE

from transport import Node, parse_uri
from transport._frames import FrameDecoder, encode_frame


@asynccontextmanager
async def started(*ids: str, **options: Any) -> AsyncIterator[list[Node]]:
    """Start one node per id with the same options; close them all on exit."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(Node(node_id, **options)) for node_id in ids]


class LoopErrors:
    """Collects what the event loop's exception handler receives, so a test can assert on it.

    asyncio reports an exception escaping a protocol callback (``Fatal error:
    protocol.data_received() call failed``) through the loop's exception handler. Collecting it
    lets the test fail in its own body, with the message, instead of in teardown. Anything not
    checked is handed to the default handler on :meth:`restore`, so conftest still sees it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous = loop.get_exception_handler()
        self.contexts: list[dict[str, Any]] = []
        loop.set_exception_handler(self._handle)

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.contexts.append(context)

    def check(self) -> None:
        """Assert the loop reported nothing since the last check."""
        reported, self.contexts = self.contexts, []
        messages = [
            f"{context.get('message')}: {context.get('exception')!r:.200}" for context in reported
        ]
        assert not messages, f"the event loop reported errors: {messages}"

    def restore(self) -> None:
        self._loop.set_exception_handler(self._previous)
        for context in self.contexts:
            self._loop.call_exception_handler(context)
        self.contexts = []


async def wait_connected(a: Node, b: Node, timeout: float = DEADLINE) -> None:
    """Wait until each of ``a`` and ``b`` lists the other in its peers.

    ``connect()`` returns once the dialer's side is up; the other side may be one frame behind.
    """
    loop = asyncio.get_running_loop()
    waiters: list[asyncio.Future[None]] = []
    handlers: list[tuple[Node, Any]] = []
    for node, other in ((a, b), (b, a)):
        if other.id in node.peers:
            continue
        waiter: asyncio.Future[None] = loop.create_future()

        def on_connect(
            peer_id: str, uri: str | None, other: Node = other, waiter: Any = waiter
        ) -> None:
            if peer_id == other.id and not waiter.done():
                waiter.set_result(None)

        node.on("connect", on_connect)
        handlers.append((node, on_connect))
        waiters.append(waiter)
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*waiters)
    finally:
        for node, handler in handlers:
            node.off("connect", handler)


async def exchange(a: Node, b: Node, token: Any, timeout: float = DEADLINE) -> None:
    """Send ``token`` both ways between two connected nodes and wait for both to arrive.

    Registers temporary handlers, so it works whatever handlers the test attached.
    """
    await wait_connected(a, b, timeout)
    loop = asyncio.get_running_loop()
    got_a: asyncio.Future[Any] = loop.create_future()
    got_b: asyncio.Future[Any] = loop.create_future()

    def on_a(peer_id: str, packet: Any) -> None:
        if peer_id == b.id and packet == ["to-a", token] and not got_a.done():
            got_a.set_result(packet)

    def on_b(peer_id: str, packet: Any) -> None:
        if peer_id == a.id and packet == ["to-b", token] and not got_b.done():
            got_b.set_result(packet)

    a.on("message", on_a)
    b.on("message", on_b)
    try:
        assert a.send(b.id, ["to-b", token]), f"{a.id} cannot send to {b.id}"
        assert b.send(a.id, ["to-a", token]), f"{b.id} cannot send to {a.id}"
        async with asyncio.timeout(timeout):
            await asyncio.gather(got_a, got_b)
    finally:
        a.off("message", on_a)
        b.off("message", on_b)


def hello_body(node_id: str = "zz-raw", **overrides: Any) -> dict[str, Any]:
    """A well-formed version-1 dialer hello without a cookie; ``overrides`` replace fields."""
    body: dict[str, Any] = {
        "op": "hello",
        "v": 1,
        "id": node_id,
        "inc": 1,
        "uri": None,
        "nonce": os.urandom(32),
        "role": "dialer",
        "auth": False,
    }
    body.update(overrides)
    return body


class RawClient:
    """A bare TCP socket that speaks (or breaks) the wire protocol by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._decoder = FrameDecoder(max_frame_size=64 * 1024 * 1024)
        self._pending: list[Any] = []

    @classmethod
    async def open(cls, uri: str, *, ssl_context: ssl.SSLContext | None = None) -> RawClient:
        host, port = parse_uri(uri)
        async with asyncio.timeout(DEADLINE):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl_context, server_hostname=host if ssl_context else None
            )
        return cls(reader, writer)

    async def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_body(self, body: Any) -> None:
        await self.send_bytes(encode_frame(body))

    async def send_eof(self) -> None:
        self.writer.write_eof()
        await self.writer.drain()

    async def read_body(self, timeout: float = DEADLINE) -> Any:
        """The next frame's body from the node; raises EOFError if the node closed first."""
        async with asyncio.timeout(timeout):
            while not self._pending:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("the node closed the connection")
                self._pending.extend(self._decoder.feed(data))
        return self._pending.pop(0)

    async def read_until_eof(self, timeout: float = DEADLINE) -> list[Any]:
        """Every body the node sends until it closes the connection (within ``timeout``)."""
        bodies, self._pending = self._pending, []
        async with asyncio.timeout(timeout):
            while True:
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                bodies.extend(self._decoder.feed(data))
        return bodies

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@asynccontextmanager
async def raw_client(uri: str, **kwargs: Any) -> AsyncIterator[RawClient]:
    client = await RawClient.open(uri, **kwargs)
    try:
        yield client
    finally:
        await client.close()


def rejects(bodies: list[Any]) -> list[tuple[str, str]]:
    """The (code, reason) of every ``reject`` body in ``bodies``."""
    return [
        (body["code"], body["reason"])
        for body in bodies
        if isinstance(body, dict) and body.get("op") == "reject"
    ]


class LogWatcher(logging.Handler):
    """Lets a test wait until the ``transport`` logger emits a record containing some text."""

    def __init__(self, logger_name: str = "transport") -> None:
        super().__init__(level=logging.DEBUG)
        self._logger = logging.getLogger(logger_name)
        self.messages: list[str] = []
        self._waiters: list[tuple[str, asyncio.Future[str]]] = []

    def __enter__(self) -> LogWatcher:
        self._logger.addHandler(self)
        self._previous_level = self._logger.level
        if not self._logger.isEnabledFor(logging.WARNING):
            self._logger.setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._previous_level)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        for text, waiter in self._waiters:
            if text in message and not waiter.done():
                waiter.set_result(message)

    async def wait_for(self, text: str, timeout: float = DEADLINE) -> str:
        """The first message containing ``text`` (seen already or arriving within timeout)."""
        for message in self.messages:
            if text in message:
                return message
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.append((text, waiter))
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        finally:
            self._waiters.remove((text, waiter))
