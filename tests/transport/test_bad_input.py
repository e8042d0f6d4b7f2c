"""Hostile or broken input closes only the offending connection; the node keeps serving.

Each case runs against node A with a well-behaved peer B connected to it: a raw socket sends
the bad input, the test waits until A closes that socket (EOF within a deadline), checks the
logged reason, and then A and B still exchange packets.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import LoopErrors, RawClient, exchange, hello_body, raw_client, rejects, started
from support import EventRecorder, uri_of

from transport import HandshakeError, Node
from transport._frames import encode_frame

MAX_FRAME_SIZE = 1024
HANDSHAKE_TIMEOUT = 0.5
EOF_DEADLINE = 5.0


@dataclass
class Mesh:
    a: Node
    b: Node
    a_events: EventRecorder


@pytest.fixture
async def loop_errors() -> AsyncIterator[LoopErrors]:
    errors = LoopErrors(asyncio.get_running_loop())
    try:
        yield errors
    finally:
        errors.restore()


@pytest.fixture
async def mesh(loop_errors: LoopErrors) -> AsyncIterator[Mesh]:
    """A serving A (small max frame, short handshake timeout) and a peer B dialed in."""
    async with started(
        "a", "b", max_frame_size=MAX_FRAME_SIZE, handshake_timeout=HANDSHAKE_TIMEOUT
    ) as (a, b):
        a_events = EventRecorder(a)
        assert await b.connect(uri_of(a)) == "a"
        await a_events.wait_for(lambda: a_events.connects == ["b"])
        yield Mesh(a, b, a_events)


# 1000 nested one-element arrays: within msgpack's depth limit and max_frame_size, but deeper
# than Python's recursion limit allows repr() or str() to walk from inside the event loop.
ANY_REPLY = "any reply"
DEEP_LIST = b"\x91" * 1000 + b"\xc0"


def frame_of(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def handshake_cases() -> list[Any]:
    """(bytes to send, EOF after sending?, expected reject code or None, logged text)."""
    return [
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            False,
            "protocol",
            "exceeds max_frame_size=1024",
            id="http-request",
        ),
        pytest.param(
            frame_of(b"\xc1\xc1\xc1\xc1"), False, "protocol", "malformed msgpack", id="garbage"
        ),
        pytest.param(
            struct.pack(">I", MAX_FRAME_SIZE + 1),
            False,
            "protocol",
            "1025 bytes exceeds max_frame_size=1024",
            id="length-above-max-header-only",
        ),
        pytest.param(
            struct.pack(">I", 2**32 - 1) + b"x" * 100,
            False,
            "protocol",
            "exceeds max_frame_size",
            id="length-4GiB",
        ),
        pytest.param(
            struct.pack(">I", 100) + b"x" * 10,
            True,
            None,
            "connection closed during the handshake",
            id="truncated-then-eof",
        ),
        pytest.param(b"", True, None, "connection closed during the handshake", id="eof-only"),
        pytest.param(
            encode_frame([0, "sneaky data"]),
            False,
            "protocol",
            "expected a handshake map, got list",
            id="data-frame-first",
        ),
        pytest.param(
            encode_frame(42), False, "protocol", "expected a handshake map, got int", id="int"
        ),
        pytest.param(
            encode_frame({"v": 1, "id": "x"}), False, "protocol", "unexpected None", id="no-op"
        ),
        pytest.param(
            frame_of(b"\x81\x01\x02"), False, "protocol", "malformed msgpack", id="int-map-key"
        ),
        pytest.param(
            frame_of(DEEP_LIST),
            False,
            "protocol",
            "expected a handshake map, got list",
            id="deeply-nested-list",
        ),
        pytest.param(
            frame_of(b"\x81\xa2op" + DEEP_LIST),
            False,
            "protocol",
            "unexpected",
            id="deeply-nested-op",
        ),
        pytest.param(
            frame_of(b"\x82\xa2op\xa6reject\xa6reason" + DEEP_LIST),
            False,
            ANY_REPLY,
            "peer rejected the handshake (None)",
            id="deeply-nested-reject-reason",
        ),
        pytest.param(
            encode_frame(hello_body(v=2)),
            False,
            "version",
            "unsupported protocol version 2",
            id="version-2",
        ),
        pytest.param(
            encode_frame(hello_body("a")),
            False,
            "self",
            "own id 'a'",
            id="hello-with-a-own-id",
        ),
        pytest.param(
            encode_frame(hello_body(nonce=b"short")),
            False,
            "protocol",
            "32-byte 'nonce'",
            id="hello-bad-nonce",
        ),
        pytest.param(
            encode_frame(hello_body(role="listener")),
            False,
            "protocol",
            "role",
            id="hello-wrong-role",
        ),
        pytest.param(b"", False, "protocol", "handshake timed out after 0.5 s", id="silent-client"),
    ]


@pytest.mark.parametrize(("data", "eof", "code", "logged"), handshake_cases())
async def test_bad_input_closes_only_that_connection(
    mesh: Mesh,
    loop_errors: LoopErrors,
    caplog: pytest.LogCaptureFixture,
    data: bytes,
    eof: bool,
    code: str | None,
    logged: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="transport")
    async with raw_client(uri_of(mesh.a)) as raw:
        if data:
            await raw.send_bytes(data)
        if eof:
            await raw.send_eof()
        bodies = await raw.read_until_eof(timeout=EOF_DEADLINE)

    loop_errors.check()
    if code is None:
        assert bodies == []
    elif code != ANY_REPLY:
        [(got_code, reason)] = rejects(bodies)
        assert got_code == code
        assert logged in reason
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(logged in message for message in warnings), warnings

    # Nothing reached the application, A kept its peer, and the pair still works both ways.
    assert mesh.a_events.received == []
    assert mesh.a_events.connects == ["b"]
    assert mesh.a_events.disconnects == []
    assert mesh.a.peers == ["b"]
    await exchange(mesh.a, mesh.b, "still-serving")


async def test_a_frame_over_the_limit_is_refused_before_its_body_is_sent(mesh: Mesh) -> None:
    """The node answers the length prefix alone: it never waits for (or buffers) the body."""
    async with raw_client(uri_of(mesh.a)) as raw:
        await raw.send_bytes(struct.pack(">I", 10 * 1024 * 1024))
        bodies = await raw.read_until_eof(timeout=EOF_DEADLINE)
    [(code, reason)] = rejects(bodies)
    assert code == "protocol" and "exceeds max_frame_size" in reason
    await exchange(mesh.a, mesh.b, "after-big-prefix")


async def test_many_bad_clients_at_once_leave_the_node_serving(mesh: Mesh) -> None:
    clients = [await RawClient.open(uri_of(mesh.a)) for _ in range(10)]
    try:
        for index, client in enumerate(clients):
            await client.send_bytes(encode_frame(["junk", index]))
        for client in clients:
            [(code, _)] = rejects(await client.read_until_eof(timeout=EOF_DEADLINE))
            assert code == "protocol"
    finally:
        for client in clients:
            await client.close()
    await exchange(mesh.a, mesh.b, "after-ten")


async def test_connecting_to_itself_raises_a_clear_handshake_error(
    mesh: Mesh, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="transport")
    with pytest.raises(HandshakeError, match="itself") as info:
        await mesh.a.connect(uri_of(mesh.a))
    assert info.value.code == "self"
    assert mesh.a.peers == ["b"]
    assert mesh.a_events.connects == ["b"]
    assert not mesh.a.is_kept("a")
    assert "to itself" in caplog.text
    await exchange(mesh.a, mesh.b, "after-self-dial")


# -- after the handshake ----------------------------------------------------------------------


async def authenticated_raw_peer(mesh: Mesh, node_id: str = "zz-raw") -> RawClient:
    """A raw socket that completes A's open (cookie-less) handshake by hand.

    ``node_id`` sorts after "a", so A decides: the raw peer sends the claim, A commits.
    """
    raw = await RawClient.open(uri_of(mesh.a))
    await raw.send_body(hello_body(node_id))
    hello = await raw.read_body()
    assert hello["op"] == "hello" and hello["id"] == "a"
    await raw.send_body({"op": "claim", "seq": 1, "alive": [], "keep": False})
    commit = await raw.read_body()
    assert commit["op"] == "commit"
    await mesh.a_events.wait_for(lambda: node_id in mesh.a_events.connects)
    return raw


@pytest.mark.parametrize(
    ("data", "logged"),
    [
        pytest.param(encode_frame([99]), "unknown control frame", id="unknown-tag"),
        pytest.param(encode_frame([1, "extra"]), "unknown control frame", id="bad-heartbeat"),
        pytest.param(encode_frame("text"), "malformed frame after handshake", id="string"),
        pytest.param(encode_frame({"op": "hello"}), "malformed frame after handshake", id="map"),
        pytest.param(encode_frame([]), "malformed frame after handshake", id="empty-list"),
        pytest.param(frame_of(b"\xc1"), "malformed msgpack", id="garbage"),
        pytest.param(struct.pack(">I", MAX_FRAME_SIZE + 1), "exceeds", id="too-large"),
        pytest.param(frame_of(DEEP_LIST), "malformed frame", id="deeply-nested-list"),
    ],
)
async def test_a_malformed_frame_after_the_handshake_disconnects_that_peer_as_lost(
    mesh: Mesh,
    loop_errors: LoopErrors,
    caplog: pytest.LogCaptureFixture,
    data: bytes,
    logged: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="transport")
    raw = await authenticated_raw_peer(mesh)
    try:
        await raw.send_body([0, "legit"])
        await mesh.a_events.wait_message("zz-raw", "legit")
        await raw.send_bytes(data + encode_frame([0, "after the bad frame"]))
        await raw.read_until_eof(timeout=EOF_DEADLINE)
    finally:
        await raw.close()
    loop_errors.check()
    await mesh.a_events.wait_for(lambda: ("zz-raw", "lost") in mesh.a_events.disconnects)

    assert mesh.a_events.disconnects == [("zz-raw", "lost")]
    assert mesh.a_events.received == [("zz-raw", "legit")]
    assert mesh.a.peers == ["b"]
    assert mesh.a.send("zz-raw", "gone") is False
    assert any(logged in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    await exchange(mesh.a, mesh.b, "after-lost")
