"""Hypothesis fuzzing of the sans-I/O core: frame decoder, handshake, NodeCore.receive_data.

Random bytes and random sequences of valid frames (with random bodies) go in; the checks are
that only the declared exceptions escape (the transport's own errors, never a msgpack,
Recursion, Key or Type error), that nothing is delivered before authentication, and that the
decoder never holds more than one frame's worth of bytes (``max_frame_size + header``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import nonces

from transport import FrameTooLarge, HandshakeError, ProtocolError
from transport._config import NodeConfig
from transport._connection import ConnectionState
from transport._core import NodeCore
from transport._events import (
    DialOutcome,
    PacketsReceived,
    PeerConnected,
    PeerDisconnected,
    RedialNeeded,
)
from transport._frames import HEADER_SIZE, FrameDecoder, encode_frame
from transport._handshake import Handshake, HandshakeState, LocalIdentity

MAX_FRAME = 256


@pytest.fixture(autouse=True, scope="module")
def quiet_transport_logs() -> Iterator[None]:
    """Every rejected input logs a warning; thousands of them only slow the fuzzer down."""
    logger = logging.getLogger("transport")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COOKIE = b"fuzz-cookie"

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
scalars = (
    st.none()
    | st.booleans()
    | ints
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)

# Bodies that look like protocol messages, with fields right, wrong or missing.
HELLO_FIELDS = {
    "op": st.sampled_from(["hello", "proof", "reject", "claim", "commit", "bogus"]) | values,
    "v": st.sampled_from([1, 2]) | values,
    "id": st.sampled_from(["a", "b", "zz", "listener", ""]) | values,
    "inc": ints | values,
    "uri": st.none() | st.text(max_size=30) | values,
    "nonce": st.binary(min_size=32, max_size=32) | values,
    "role": st.sampled_from(["dialer", "listener"]) | values,
    "auth": st.booleans() | values,
    "proof": st.binary(min_size=32, max_size=32) | values,
    "code": st.sampled_from(["auth", "duplicate", "busy", "stale"]) | values,
    "reason": values,
    "seq": ints | values,
    "alive": st.lists(st.binary(max_size=16), max_size=3) | values,
    "keep": st.booleans() | values,
}
protocol_maps = st.fixed_dictionaries(
    {}, optional={key: strategy for key, strategy in HELLO_FIELDS.items()}
)
control_lists = st.tuples(st.integers(min_value=-1, max_value=5), values).map(list) | st.lists(
    st.integers(min_value=0, max_value=4) | values, max_size=3
)
bodies = protocol_maps | control_lists | values


def roundtrip(body: Any) -> Any:
    """What a body looks like after crossing the wire."""
    return msgpack.unpackb(msgpack.packb(body, use_bin_type=True), raw=False)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def frames(body_list: list[Any]) -> bytes:
    return b"".join(encode_frame(body) for body in body_list)


# -- frame decoder ------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=2048), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_the_decoder_never_raises_reports_protocol_errors_and_holds_at_most_one_frame(
    data: bytes, cuts: list[int]
) -> None:
    decoder = FrameDecoder(MAX_FRAME)
    for chunk in split(data, cuts):
        decoder.feed(chunk)  # must never raise: errors are reported in decoder.error
        assert decoder.buffered <= MAX_FRAME + HEADER_SIZE
        assert decoder.error is None or isinstance(decoder.error, ProtocolError)


@FUZZ
@given(
    good=st.lists(values, max_size=8),
    garbage=st.binary(max_size=300),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_valid_frames_decode_in_order_whatever_follows_them(
    good: list[Any], garbage: bytes, cuts: list[int]
) -> None:
    wire = frames(good)
    decoder = FrameDecoder(1 << 20)
    decoded: list[Any] = []
    for chunk in split(wire, cuts):
        decoded.extend(decoder.feed(chunk))
    assert decoded == [roundtrip(body) for body in good]
    assert decoder.buffered == 0
    small = FrameDecoder(MAX_FRAME)
    for chunk in split(garbage, cuts):
        small.feed(chunk)
        assert small.buffered <= MAX_FRAME + HEADER_SIZE
        assert small.error is None or isinstance(small.error, ProtocolError)


@given(length=st.integers(min_value=MAX_FRAME + 1, max_value=2**32 - 1))
def test_an_oversized_prefix_is_refused_before_any_body_byte(length: int) -> None:
    decoder = FrameDecoder(MAX_FRAME)
    assert decoder.feed(length.to_bytes(4, "big")) == []
    assert isinstance(decoder.error, FrameTooLarge), "an oversized length prefix was accepted"
    assert "max_frame_size" in str(decoder.error)
    assert decoder.buffered == 0


# -- handshake state machine --------------------------------------------------------------------

LOCAL = LocalIdentity("listener", 7, "tcp://127.0.0.1:1")


@FUZZ
@given(
    dialer=st.booleans(),
    cookie=st.sampled_from([None, COOKIE]),
    sequence=st.lists(bodies, max_size=6),
)
def test_the_handshake_raises_only_handshake_errors_and_they_are_sticky(
    dialer: bool, cookie: bytes | None, sequence: list[Any]
) -> None:
    handshake = Handshake(dialer=dialer, local=LOCAL, cookie=cookie, nonce=b"\x01" * 32)
    handshake.initiate()
    failed = False
    for body in sequence:
        try:
            replies = handshake.receive(roundtrip(body))
        except HandshakeError:
            failed = True
            assert handshake.state is HandshakeState.FAILED
            continue
        assert not failed, "a failed handshake accepted another body"
        assert all(isinstance(reply, dict) for reply in replies)
        for reply in replies:
            encode_frame(reply)  # whatever it answers can be sent
    if cookie is not None:
        # Random bodies cannot carry a valid HMAC over our fresh nonce.
        assert handshake.state is not HandshakeState.AUTHENTICATED
    assert (handshake.peer is not None) == (handshake.state is HandshakeState.AUTHENTICATED)


# -- NodeCore.receive_data ------------------------------------------------------------------------

EVENT_TYPES = (PeerConnected, PeerDisconnected, PacketsReceived, RedialNeeded, DialOutcome)
CONFIG = NodeConfig(max_frame_size=MAX_FRAME, heartbeat_interval=1.0, heartbeat_timeout=3.0)


def valid_hello(node_id: str = "zz") -> dict[str, Any]:
    return {
        "op": "hello",
        "v": 1,
        "id": node_id,
        "inc": 1,
        "uri": None,
        "nonce": b"\x02" * 32,
        "role": "dialer",
        "auth": True,
    }


@FUZZ
@given(
    cookie=st.sampled_from([None, COOKIE]),
    prefix_hello=st.booleans(),
    sequence=st.lists(bodies, max_size=6),
    garbage=st.binary(max_size=64),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
def test_a_listener_core_survives_any_input_and_delivers_nothing_unauthenticated(
    cookie: bytes | None,
    prefix_hello: bool,
    sequence: list[Any],
    garbage: bytes,
    cuts: list[int],
) -> None:
    core = NodeCore(LocalIdentity("listener", 7, None), CONFIG, cookie, nonces())
    handle = core.open(dialer=False, now=0.0)
    conn = core.connection(handle)
    assert conn is not None
    body_list = ([valid_hello()] if prefix_hello else []) + sequence
    wire = frames(body_list) + garbage
    events: list[Any] = []
    held_at_close: int | None = None
    for now, chunk in enumerate(split(wire, cuts)):
        core.receive_data(handle, chunk, float(now))  # must never raise
        core.take_output()
        events.extend(core.take_events())
        if conn.state is ConnectionState.CLOSED:
            # A closed connection reads nothing more: what it holds never grows again.
            assert conn.closing
            if held_at_close is None:
                held_at_close = conn.decoder.buffered
            assert conn.decoder.buffered == held_at_close
        else:
            assert conn.decoder.buffered <= MAX_FRAME + HEADER_SIZE
    core.tick(100.0)  # the handshake deadline passes: an unfinished handshake is failed
    events.extend(core.take_events())
    assert all(isinstance(event, EVENT_TYPES) for event in events)
    if cookie is not None:
        # No valid proof can be in random input: nothing connected, nothing delivered.
        assert not any(isinstance(e, (PeerConnected, PacketsReceived)) for e in events)
        assert core.peers == []
    assert conn.state in (ConnectionState.CLOSED, ConnectionState.UP, ConnectionState.AWAIT_CLAIM)
    if conn.state is not ConnectionState.UP:
        assert core.pending_handshakes == 0 or conn.state is ConnectionState.AWAIT_CLAIM


def up_pair() -> tuple[NodeCore, NodeCore, Any, Any]:
    """Two cores with one up connection between them (a dialed b), over a perfect wire."""
    a = NodeCore(LocalIdentity("a", 1, "sim://a"), CONFIG, COOKIE, nonces())
    b = NodeCore(LocalIdentity("b", 2, "sim://b"), CONFIG, COOKIE, nonces())
    a_conn = a.connection(a.open(dialer=True, now=0.0, uri="sim://b"))
    b_conn = b.connection(b.open(dialer=False, now=0.0))
    assert a_conn is not None and b_conn is not None
    for _ in range(10):
        for sender, receiver, conn in ((a, b, b_conn), (b, a, a_conn)):
            for output in sender.take_output():
                if output.data:
                    receiver.receive_data(conn.handle, output.data, 0.0)
    assert a_conn.state is ConnectionState.UP and b_conn.state is ConnectionState.UP
    a.take_events()
    b.take_events()
    return a, b, a_conn, b_conn


@FUZZ
@given(
    sequence=st.lists(bodies, min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
def test_an_up_connection_delivers_data_frames_and_drops_the_peer_on_anything_malformed(
    sequence: list[Any], cuts: list[int]
) -> None:
    _, b, _, b_conn = up_pair()
    wire = frames(sequence)
    events: list[Any] = []
    for chunk in split(wire, cuts):
        b.receive_data(b_conn.handle, chunk, 1.0)  # must never raise
        events.extend(b.take_events())
    delivered = [
        packet for event in events if isinstance(event, PacketsReceived) for packet in event.packets
    ]
    # Every data frame before the first frame that ends the connection, in order; an
    # oversized frame ends it too, but the frames read before it are still delivered.
    expected: list[Any] = []
    ended = False
    for body in map(roundtrip, sequence):
        if len(encode_frame(body)) - HEADER_SIZE > MAX_FRAME:
            ended = True
            break
        if type(body) is list and len(body) == 2 and body[0] == 0:
            expected.append(body[1])
        elif type(body) is list and body and type(body[0]) is int and _is_control(body):
            if body[0] == 3:
                ended = True
                break
        else:
            ended = True
            break
    assert delivered == expected
    disconnects = [event for event in events if isinstance(event, PeerDisconnected)]
    if ended:
        assert b_conn.state is ConnectionState.CLOSED
        assert len(disconnects) == 1 and disconnects[0].peer_id == "a"
    else:
        assert b_conn.state is ConnectionState.UP and disconnects == []


def _is_control(body: list[Any]) -> bool:
    tag = body[0]
    if tag == 1:
        return len(body) == 1
    if tag == 2:
        return len(body) == 2 and type(body[1]) is bool
    if tag == 3:
        return len(body) == 2
    return False
