"""Tools for the hostile-envelope tests: a raw authenticated peer, hand-built msgpack, log sizes.

The raw peer completes an open (cookie-less) mesh handshake by hand, then writes whatever
bytes a test gives it, several frames in one write, so the node decodes them in one read. Its
values are packed by `pack`, which also writes what msgpack's own packer refuses (nesting
deeper than 511 levels, via `Deep`), as a hostile peer would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from actors import Actor, ActorSystem, Message, handler
from transport import parse_uri
from transport._frames import encode_frame

DEADLINE = 10.0

# Envelope kinds on the wire (see actors' module docstring).
TELL, ASK, REPLY, ERROR = 0, 1, 2, 3

# The largest frame the node may send back to a hostile peer: a dead-letter or error reply
# carries at most a few hundred characters of anything the peer supplied.
REPLY_BOUND = 4096


@dataclass(frozen=True, slots=True)
class Deep:
    """``depth`` nested one-element arrays around ``leaf``, written without recursion."""

    depth: int
    leaf: Any = None


@dataclass(frozen=True, slots=True)
class Huge:
    """A str (or bytes) of ``size`` characters, built only when packed (small to repr)."""

    size: int
    binary: bool = False


@dataclass(frozen=True, slots=True)
class Many:
    """A map of ``keys`` int entries (``"k0": 0, ...``), built only when packed."""

    keys: int


@dataclass(frozen=True, slots=True)
class Items:
    """A list of ``count`` ints (``0, 1, ...``), built only when packed."""

    count: int


@dataclass(frozen=True, slots=True)
class Raw:
    """msgpack bytes written as they are (for shapes no Python value should hold)."""

    data: bytes


@functools.lru_cache(maxsize=8)
def _many(keys: int) -> bytes:
    packed: bytes = msgpack.packb({f"k{index}": index for index in range(keys)})
    return packed


@functools.lru_cache(maxsize=8)
def _items(count: int) -> bytes:
    packed: bytes = msgpack.packb(list(range(count)))
    return packed


def pack(value: Any) -> bytes:
    """msgpack bytes of ``value``, where `Deep`, `Huge`, `Many` and `Items` inside become what
    they stand for."""
    if isinstance(value, Deep):
        return b"\x91" * value.depth + pack(value.leaf)
    if isinstance(value, Huge):
        return pack(b"\xff" * value.size if value.binary else "x" * value.size)
    if isinstance(value, Many):
        return _many(value.keys)
    if isinstance(value, Items):
        return _items(value.count)
    if isinstance(value, Raw):
        return value.data
    if type(value) is list:
        if len(value) > 64:
            try:
                packed_list: bytes = msgpack.packb(value, use_bin_type=True)
            except TypeError:
                pass
            else:
                return packed_list
        return _array_header(len(value)) + b"".join(pack(item) for item in value)
    if type(value) is dict:
        if len(value) > 64:
            # Big maps of plain values pack at C speed; one holding a Deep falls through.
            try:
                packed_map: bytes = msgpack.packb(value, use_bin_type=True)
            except TypeError:
                pass
            else:
                return packed_map
        return _map_header(len(value)) + b"".join(
            pack(key) + pack(item) for key, item in value.items()
        )
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def _array_header(length: int) -> bytes:
    if length < 16:
        return bytes([0x90 | length])
    if length < 2**16:
        return b"\xdc" + struct.pack(">H", length)
    return b"\xdd" + struct.pack(">I", length)


def _map_header(length: int) -> bytes:
    if length < 16:
        return bytes([0x80 | length])
    if length < 2**16:
        return b"\xde" + struct.pack(">H", length)
    return b"\xdf" + struct.pack(">I", length)


def data_frame(packet: Any) -> bytes:
    """A complete data frame (``[0, packet]``) carrying ``packet`` packed by `pack`."""
    body = b"\x92\x00" + pack(packet)
    return struct.pack(">I", len(body)) + body


def envelope(
    kind: Any,
    target: Any,
    tag: Any,
    payload: Any,
    correlation_id: Any = None,
    sender_node: Any = "zz-raw",
    sender_actor: Any = None,
) -> list[Any]:
    """An actor envelope in wire order."""
    return [kind, target, tag, payload, sender_node, sender_actor, correlation_id]


def nested(depth: int) -> Any:
    """A Python value: ``depth`` nested one-element lists around None."""
    value: Any = None
    for _ in range(depth):
        value = [value]
    return value


class RawPeer:
    """A raw socket, authenticated to one node by hand, that writes hostile frames.

    A reader task collects every frame the node sends back (``bodies``) and the size of the
    largest one (``largest``), so a test can check that nothing it provoked was unbounded.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, node_id: str
    ) -> None:
        self.node_id = node_id
        self._reader = reader
        self._writer = writer
        self._buffer = bytearray()
        self.bodies: list[Any] = []
        self.largest = 0
        self.eof = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, system: ActorSystem, node_id: str = "zz-raw") -> RawPeer:
        """Dial ``system`` and complete its handshake; ``node_id`` sorts after the system's id,
        so the system decides: the raw peer claims, the system commits."""
        uri = system.info()
        assert uri is not None
        assert node_id > system.id
        host, port = parse_uri(uri)
        connected = asyncio.Event()

        def on_connect(peer: str, uri: str | None) -> None:
            if peer == node_id:
                connected.set()

        system.node.on("connect", on_connect)
        try:
            async with asyncio.timeout(DEADLINE):
                reader, writer = await asyncio.open_connection(host, port)
                peer = cls(reader, writer, node_id)
                writer.write(
                    encode_frame(
                        {
                            "op": "hello",
                            "v": 1,
                            "id": node_id,
                            "inc": 1,
                            "uri": None,
                            "nonce": os.urandom(32),
                            "role": "dialer",
                            "auth": False,
                        }
                    )
                )
                hello = await peer._read_handshake()
                assert hello["op"] == "hello" and hello["id"] == system.id, hello
                writer.write(encode_frame({"op": "claim", "seq": 1, "alive": [], "keep": False}))
                commit = await peer._read_handshake()
                assert commit["op"] == "commit", commit
                await connected.wait()
        finally:
            system.node.off("connect", on_connect)
        peer._task = asyncio.ensure_future(peer._read_forever())
        return peer

    async def _read_handshake(self) -> Any:
        while not self.bodies:
            data = await self._reader.read(65536)
            if not data:
                raise EOFError("the node closed the connection during the handshake")
            self._feed(data)
        return self.bodies.pop(0)

    def _feed(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        offset = 0
        while len(buffer) - offset >= 4:
            (length,) = struct.unpack_from(">I", buffer, offset)
            if len(buffer) - offset - 4 < length:
                break
            body = bytes(buffer[offset + 4 : offset + 4 + length])
            offset += 4 + length
            self.largest = max(self.largest, length)
            self.bodies.append(msgpack.unpackb(body, raw=False, strict_map_key=False))
        del buffer[:offset]

    async def _read_forever(self) -> None:
        try:
            while data := await self._reader.read(1 << 20):
                self._feed(data)
                self._notify()
        except OSError:
            pass
        finally:
            self.eof = True
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        """Wait until the next frame (or EOF) arrives from the node."""
        await self._changed.wait()

    async def write(self, *frames: bytes) -> None:
        """Write the frames in one write (the node decodes them from one read)."""
        self._writer.write(b"".join(frames))
        await self._writer.drain()

    def data(self) -> list[Any]:
        """Packets received in data frames (``[0, packet]``), in order."""
        return [
            body[1]
            for body in self.bodies
            if type(body) is list and len(body) == 2 and body[0] == 0
        ]

    def answers(self, correlation_id: int) -> list[list[Any]]:
        """Reply and error envelopes received for ``correlation_id``."""
        return [
            packet
            for packet in self.data()
            if type(packet) is list
            and len(packet) == 7
            and packet[0] in (REPLY, ERROR)
            and packet[6] == correlation_id
        ]

    async def answer(self, correlation_id: int, timeout: float = DEADLINE) -> list[Any]:
        """The first reply or error envelope for ``correlation_id``, waited for."""
        async with asyncio.timeout(timeout):
            while not self.answers(correlation_id):
                if self.eof:
                    raise EOFError("the node closed the connection before answering")
                await self._changed.wait()
        return self.answers(correlation_id)[0]

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class LogBytes(logging.Handler):
    """Counts what the ``actors`` and ``transport`` loggers emit, fully formatted.

    ``total`` is the number of characters since the last `reset`, ``largest`` the longest
    single record; every level down to DEBUG is counted.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.total = 0
        self.largest = 0
        self.records = 0
        self.sample = ""
        self._loggers = [logging.getLogger("actors"), logging.getLogger("transport")]
        self._levels: list[int] = []

    def __enter__(self) -> LogBytes:
        for logger in self._loggers:
            self._levels.append(logger.level)
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for logger, level in zip(self._loggers, self._levels, strict=True):
            logger.removeHandler(self)
            logger.setLevel(level)

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        self.total += len(text)
        self.records += 1
        if len(text) > self.largest:
            self.largest = len(text)
            self.sample = text[:300]

    def reset(self) -> None:
        self.total = self.largest = self.records = 0
        self.sample = ""


# -- messages and actors ------------------------------------------------------------------------


class Note(Message, tag="hostile.Note"):
    """A good tell: the sink records its seq."""

    seq: int


class Probe(Message, tag="hostile.Probe"):
    """A good ask: answered with the same Probe."""

    seq: int


class MakeBig(Message, tag="hostile.MakeBig"):
    """Ask for a reply of ``size`` bytes (a `Blob`, or plain bytes)."""

    size: int
    plain: bool = False


class MakeDeep(Message, tag="hostile.MakeDeep"):
    """Ask for a reply nested ``depth`` levels deep (a `Tree`, or a plain list)."""

    depth: int
    plain: bool = False


class Boom(Message, tag="hostile.Boom"):
    """Ask the handler to raise: with a message of ``size`` chars, or (size < 0) with an
    exception whose ``str()`` itself raises."""

    size: int


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class Blob(Message, tag="hostile.Blob"):
    data: bytes


class Tree(Message, tag="hostile.Tree"):
    value: Any


class Sink(Actor):
    """Records Note seqs and Probe seqs; answers Probes and echoes Trees; replies to MakeBig /
    MakeDeep with values the node cannot send. Synchronous handlers."""

    def __init__(self) -> None:
        self.notes: list[int] = []
        self.probes: list[int] = []
        self.changed = asyncio.Event()

    def _seen(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    @handler
    def on_note(self, msg: Note) -> None:
        self.notes.append(msg.seq)
        self._seen()

    @handler
    def on_probe(self, msg: Probe) -> Probe:
        self.probes.append(msg.seq)
        self._seen()
        return msg

    @handler
    def on_big(self, msg: MakeBig) -> Any:
        return b"x" * msg.size if msg.plain else Blob(data=b"x" * msg.size)

    @handler
    def on_deep(self, msg: MakeDeep) -> Any:
        return nested(msg.depth) if msg.plain else Tree(value=nested(msg.depth))

    @handler
    def on_tree(self, msg: Tree) -> Tree:
        return msg

    @handler
    def on_boom(self, msg: Boom) -> None:
        if msg.size < 0:
            raise Unprintable()
        raise ValueError("!" * msg.size)

    async def wait_note(self, seq: int, timeout: float = DEADLINE) -> None:
        async with asyncio.timeout(timeout):
            while seq not in self.notes:
                await self.changed.wait()


class AsyncSink(Sink):
    """The same behaviour through async handlers (they run in the mailbox task)."""

    @handler
    async def on_note(self, msg: Note) -> None:  # type: ignore[override]
        self.notes.append(msg.seq)
        self._seen()

    @handler
    async def on_probe(self, msg: Probe) -> Probe:  # type: ignore[override]
        self.probes.append(msg.seq)
        self._seen()
        return msg

    @handler
    async def on_big(self, msg: MakeBig) -> Any:  # type: ignore[override]
        return b"x" * msg.size if msg.plain else Blob(data=b"x" * msg.size)

    @handler
    async def on_deep(self, msg: MakeDeep) -> Any:  # type: ignore[override]
        return nested(msg.depth) if msg.plain else Tree(value=nested(msg.depth))

    @handler
    async def on_tree(self, msg: Tree) -> Tree:  # type: ignore[override]
        return msg

    @handler
    async def on_boom(self, msg: Boom) -> None:  # type: ignore[override]
        if msg.size < 0:
            raise Unprintable()
        raise ValueError("!" * msg.size)


SINKS: dict[str, Callable[[], Sink]] = {"sink": Sink, "async-sink": AsyncSink}
