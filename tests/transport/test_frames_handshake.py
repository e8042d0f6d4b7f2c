"""The sans-I/O core without an event loop: bytes in, bodies out.

Two :class:`Handshake` objects are linked by a fake wire (h11's ``ConnectionPair`` style) that
really encodes every body into a frame and decodes it on the other side.
"""

from __future__ import annotations

import itertools
import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transport import (
    AuthenticationError,
    EncodingError,
    FrameTooLarge,
    HandshakeError,
    ProtocolError,
)
from transport._frames import FrameDecoder, encode_data, encode_frame
from transport._handshake import (
    Handshake,
    HandshakeState,
    LocalIdentity,
    RejectCode,
    reject_body,
)

NONCE_A = bytes(range(32))
NONCE_B = bytes(range(100, 132))
A = LocalIdentity("a", 11, "tcp://127.0.0.1:1001")
B = LocalIdentity("b", 22, "tcp://127.0.0.1:1002")

# -- frames -----------------------------------------------------------------------------------

msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


@given(bodies=st.lists(msgpack_values, max_size=8), cuts=st.lists(st.integers(0, 10_000)))
def test_decoder_returns_every_body_in_order_whatever_the_split_points(
    bodies: list[Any], cuts: list[int]
) -> None:
    wire = b"".join(encode_frame(body) for body in bodies)
    decoder = FrameDecoder()
    decoded: list[Any] = []
    for chunk in split(wire, cuts):
        decoded.extend(decoder.feed(chunk))
    assert decoded == bodies
    assert decoder.buffered == 0


@given(cut=st.integers(0, 100))
def test_decoder_keeps_a_partial_frame_until_the_rest_arrives(cut: int) -> None:
    frame = encode_data({"payload": "x" * 50})
    cut = min(cut, len(frame) - 1)
    decoder = FrameDecoder()
    assert decoder.feed(frame[:cut]) == []
    assert decoder.buffered == cut
    assert decoder.feed(frame[cut:]) == [[0, {"payload": "x" * 50}]]


def test_floats_round_trip_bit_for_bit() -> None:
    values = [0.1, -0.0, math.inf, 1e308]
    (decoded,) = FrameDecoder().feed(encode_frame(values))
    assert [struct.pack(">d", value) for value in decoded] == [
        struct.pack(">d", value) for value in values
    ]


@pytest.mark.parametrize("chunks", [[4], [1, 3], [2, 2], [1, 1, 1, 1]])
def test_frame_too_large_is_reported_from_the_length_prefix_alone(chunks: list[int]) -> None:
    header = struct.pack(">I", 1025)
    decoder = FrameDecoder(max_frame_size=1024)
    offset = 0
    for size in chunks[:-1]:
        assert decoder.feed(header[offset : offset + size]) == []
        assert decoder.error is None
        offset += size
    assert decoder.feed(header[offset:]) == []
    assert isinstance(decoder.error, FrameTooLarge)
    assert "1025 bytes exceeds max_frame_size=1024" in str(decoder.error)
    assert decoder.buffered == 0


def test_a_frame_of_exactly_max_frame_size_is_accepted() -> None:
    body = b"x" * (1024 - 3)  # bin16 header is 3 bytes
    frame = encode_frame(body)
    assert len(frame) == 4 + 1024
    assert FrameDecoder(max_frame_size=1024).feed(frame) == [body]


def test_the_maximum_applies_to_a_frame_after_good_ones_which_are_still_returned() -> None:
    decoder = FrameDecoder(max_frame_size=1024)
    assert decoder.feed(encode_frame("ok") + struct.pack(">I", 2**32 - 1)) == ["ok"]
    assert isinstance(decoder.error, FrameTooLarge)
    # Errors are sticky: nothing more is decoded or buffered.
    assert decoder.feed(encode_frame("later")) == []
    assert decoder.buffered == 0


MALFORMED_BODIES = [
    pytest.param(b"\xc1", id="reserved-byte"),
    pytest.param(b"\x92\x01", id="truncated-array"),
    pytest.param(b"\x81\x01\x02", id="int-map-key"),
    pytest.param(b"\x91" * 2000 + b"\xc0", id="nested-too-deep"),
    pytest.param(b"\xa3\xff\xfe\xfd", id="invalid-utf8"),
    pytest.param(b"\x01\x02", id="trailing-bytes"),
]


@pytest.mark.parametrize("payload", MALFORMED_BODIES)
def test_malformed_msgpack_is_a_protocol_error_after_the_good_frames(payload: bytes) -> None:
    decoder = FrameDecoder(max_frame_size=4096)
    wire = encode_frame("before") + struct.pack(">I", len(payload)) + payload
    assert decoder.feed(wire + encode_frame("after")) == ["before"]
    assert isinstance(decoder.error, ProtocolError)
    assert "malformed msgpack" in str(decoder.error)


@pytest.mark.parametrize("payload", MALFORMED_BODIES)
def test_a_read_of_exactly_one_malformed_frame_is_a_protocol_error(payload: bytes) -> None:
    # A read holding exactly one whole frame takes the decoder's one-call path.
    decoder = FrameDecoder(max_frame_size=4096)
    assert decoder.feed(encode_frame("alone")) == ["alone"]
    assert decoder.feed(struct.pack(">I", len(payload)) + payload) == []
    assert isinstance(decoder.error, ProtocolError)
    assert "malformed msgpack" in str(decoder.error)
    assert decoder.feed(encode_frame("later")) == []  # sticky
    assert decoder.buffered == 0


def test_unserializable_packet_raises_encoding_error() -> None:
    with pytest.raises(EncodingError, match="not msgpack-serializable"):
        encode_data(object())


# -- handshake: a fake wire between two state machines ---------------------------------------


class HandshakePair:
    """A dialer and a listener linked by a wire that frames and decodes every body.

    ``run()`` pumps until both sides are quiet. A side whose ``receive`` raises behaves as the
    core does: it sends a ``reject`` with the error's code, and stops.
    """

    def __init__(
        self,
        dialer_cookie: bytes | None,
        listener_cookie: bytes | None,
        *,
        dialer: LocalIdentity = A,
        listener: LocalIdentity = B,
    ) -> None:
        self.dialer = Handshake(dialer=True, local=dialer, cookie=dialer_cookie, nonce=NONCE_A)
        self.listener = Handshake(
            dialer=False, local=listener, cookie=listener_cookie, nonce=NONCE_B
        )
        self.errors: dict[str, HandshakeError] = {}
        self.sent: dict[str, list[Any]] = {"dialer": [], "listener": []}

    def run(self) -> None:
        wire: list[tuple[str, bytes]] = [
            ("dialer", encode_frame(body)) for body in self._log("dialer", self.dialer.initiate())
        ]
        decoders = {"dialer": FrameDecoder(), "listener": FrameDecoder()}
        while wire:
            sender, data = wire.pop(0)
            receiver = "listener" if sender == "dialer" else "dialer"
            machine = self.listener if receiver == "listener" else self.dialer
            for body in decoders[receiver].feed(data):
                if receiver in self.errors:
                    continue
                try:
                    replies = machine.receive(body)
                except HandshakeError as exc:
                    self.errors[receiver] = exc
                    replies = [reject_body(exc.code, str(exc))]
                for reply in self._log(receiver, replies):
                    wire.append((receiver, encode_frame(reply)))

    def _log(self, side: str, bodies: list[Any]) -> list[Any]:
        self.sent[side].extend(bodies)
        return bodies


def test_without_cookies_both_sides_authenticate_and_learn_each_other() -> None:
    pair = HandshakePair(None, None)
    pair.run()
    assert pair.errors == {}
    assert pair.dialer.state is HandshakeState.AUTHENTICATED
    assert pair.listener.state is HandshakeState.AUTHENTICATED
    assert pair.dialer.peer is not None and pair.listener.peer is not None
    assert (pair.dialer.peer.node_id, pair.dialer.peer.incarnation) == ("b", 22)
    assert (pair.listener.peer.node_id, pair.listener.peer.incarnation) == ("a", 11)
    assert pair.dialer.peer.uri == B.uri and pair.listener.peer.uri == A.uri
    assert pair.dialer.peer.connection_id == pair.listener.peer.connection_id
    assert [body["op"] for body in pair.sent["dialer"] + pair.sent["listener"]] == [
        "hello",
        "hello",
    ]


def test_with_the_same_cookie_both_sides_authenticate_with_a_proof_each() -> None:
    pair = HandshakePair(b"secret", b"secret")
    pair.run()
    assert pair.errors == {}
    assert pair.dialer.state is HandshakeState.AUTHENTICATED
    assert pair.listener.state is HandshakeState.AUTHENTICATED
    assert [body["op"] for body in pair.sent["dialer"]] == ["hello", "proof"]
    assert [body["op"] for body in pair.sent["listener"]] == ["hello"]
    assert isinstance(pair.sent["listener"][0]["proof"], bytes)
    assert b"secret" not in encode_frame(pair.sent["dialer"] + pair.sent["listener"])


@pytest.mark.parametrize(
    ("dialer_cookie", "listener_cookie", "first_to_fail"),
    [
        pytest.param(b"one", b"two", "dialer", id="different-cookies"),
        pytest.param(b"one", None, "dialer", id="cookie-on-dialer-only"),
        pytest.param(None, b"two", "listener", id="cookie-on-listener-only"),
    ],
)
def test_mismatched_cookies_fail_with_an_auth_reject(
    dialer_cookie: bytes | None, listener_cookie: bytes | None, first_to_fail: str
) -> None:
    pair = HandshakePair(dialer_cookie, listener_cookie)
    pair.run()
    error = pair.errors[first_to_fail]
    assert isinstance(error, AuthenticationError)
    assert error.code == RejectCode.AUTH
    other = "listener" if first_to_fail == "dialer" else "dialer"
    assert reject_body(RejectCode.AUTH, str(error)) in pair.sent[first_to_fail]
    # The side that failed never accepted the peer.
    failed = pair.dialer if first_to_fail == "dialer" else pair.listener
    assert failed.state is HandshakeState.FAILED
    assert failed.peer is None
    # The other side learns it from the reject, as an AuthenticationError too.
    assert isinstance(pair.errors[other], AuthenticationError)
    assert "peer rejected the handshake (auth)" in str(pair.errors[other])


def test_a_dialer_without_cookie_never_sees_a_proof_it_could_replay() -> None:
    pair = HandshakePair(None, b"secret")
    pair.run()
    assert all("proof" not in body for body in pair.sent["listener"])


def test_errors_are_sticky() -> None:
    pair = HandshakePair(b"one", b"two")
    pair.run()
    with pytest.raises(HandshakeError, match="already failed"):
        pair.dialer.receive({"op": "hello"})


def _listener_reply(cookie: bytes, hello: dict[str, Any]) -> Handshake:
    listener = Handshake(dialer=False, local=B, cookie=cookie, nonce=NONCE_B)
    replies = listener.receive(hello)
    assert listener.state is HandshakeState.AWAIT_PROOF
    assert replies[0]["op"] == "hello" and "proof" in replies[0]
    return listener


def test_a_proof_is_bound_to_the_role() -> None:
    """The listener proof "a" would give for the same nonces and ids is no dialer proof.

    Without the role in the MAC, both proofs would cover ``(nonce_b, nonce_a, "a", "b")``
    and a listener proof obtained from node "a" could be reflected to "b" as a dialer proof.
    """
    cookie = b"secret"
    honest_dialer = Handshake(dialer=True, local=A, cookie=cookie, nonce=NONCE_A)
    (dialer_hello,) = honest_dialer.initiate()

    # An honest run with these nonces: the dialer's proof verifies.
    listener = Handshake(dialer=False, local=B, cookie=cookie, nonce=NONCE_B)
    (listener_hello,) = listener.receive(dialer_hello)
    (honest_proof,) = honest_dialer.receive(listener_hello)
    assert listener.receive(honest_proof) == []
    assert listener.state is HandshakeState.AUTHENTICATED

    # Node "a" acting as a *listener* for a dial from "b" with the same nonces.
    a_as_listener = Handshake(dialer=False, local=A, cookie=cookie, nonce=NONCE_A)
    b_hello = Handshake(dialer=True, local=B, cookie=cookie, nonce=NONCE_B).initiate()[0]
    reflected = a_as_listener.receive(b_hello)[0]["proof"]
    assert reflected != honest_proof["proof"]

    victim = _listener_reply(cookie, dialer_hello)
    with pytest.raises(AuthenticationError, match="dialer's proof does not match"):
        victim.receive({"op": "proof", "proof": reflected})
    assert victim.peer is None


def test_a_listener_proof_sent_back_to_the_listener_fails() -> None:
    cookie = b"secret"
    dialer_hello = Handshake(dialer=True, local=A, cookie=cookie, nonce=NONCE_A).initiate()[0]
    listener = Handshake(dialer=False, local=B, cookie=cookie, nonce=NONCE_B)
    listener_hello = listener.receive(dialer_hello)[0]
    with pytest.raises(AuthenticationError):
        listener.receive({"op": "proof", "proof": listener_hello["proof"]})


@pytest.mark.parametrize("side", ["dialer", "listener"])
def test_a_hello_with_the_wrong_role_is_a_protocol_error(side: str) -> None:
    """Two dialers (or two listeners) talking to each other never authenticate."""
    me = Handshake(dialer=side == "dialer", local=A, cookie=None, nonce=NONCE_A)
    same_role = Handshake(dialer=side == "dialer", local=B, cookie=None, nonce=NONCE_B)
    hello = same_role._hello()
    with pytest.raises(ProtocolError, match="role"):
        me.receive(hello)


def test_a_replayed_dialer_session_fails_against_a_fresh_listener_nonce() -> None:
    cookie = b"secret"
    pair = HandshakePair(cookie, cookie)
    pair.run()
    assert pair.listener.state is HandshakeState.AUTHENTICATED
    hello, proof = pair.sent["dialer"]

    fresh = Handshake(dialer=False, local=B, cookie=cookie, nonce=bytes(32))
    assert fresh.receive(hello)[0]["op"] == "hello"
    with pytest.raises(AuthenticationError):
        fresh.receive(proof)
    assert fresh.peer is None

    # The same replay against the old nonce would verify: the nonce is what stops it.
    same_nonce = Handshake(dialer=False, local=B, cookie=cookie, nonce=NONCE_B)
    same_nonce.receive(hello)
    same_nonce.receive(proof)
    assert same_nonce.state is HandshakeState.AUTHENTICATED


@pytest.mark.parametrize("index", [0, 15, 31])
def test_a_tampered_proof_fails(index: int) -> None:
    cookie = b"secret"
    pair = HandshakePair(cookie, cookie)
    pair.run()
    hello, proof = pair.sent["dialer"]
    tampered = bytearray(proof["proof"])
    tampered[index] ^= 0x01
    listener = _listener_reply(cookie, hello)
    with pytest.raises(AuthenticationError):
        listener.receive({"op": "proof", "proof": bytes(tampered)})


def test_the_dialer_checks_the_listener_proof_covers_its_own_id() -> None:
    """A proof made for another dialer id does not pass."""
    cookie = b"secret"
    other = LocalIdentity("c", 33, None)
    other_hello = Handshake(dialer=True, local=other, cookie=cookie, nonce=NONCE_A).initiate()[0]
    wrong_proof_hello = Handshake(dialer=False, local=B, cookie=cookie, nonce=NONCE_B).receive(
        other_hello
    )[0]
    dialer = Handshake(dialer=True, local=A, cookie=cookie, nonce=NONCE_A)
    dialer.initiate()
    with pytest.raises(AuthenticationError, match="proof does not match"):
        dialer.receive(wrong_proof_hello)


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        pytest.param({"op": "hello", "v": 2}, "version", "version 2", id="version-2"),
        pytest.param(["hello"], "protocol", "expected a handshake map", id="list"),
        pytest.param(7, "protocol", "expected a handshake map", id="int"),
        pytest.param({"id": "x"}, "protocol", "unexpected None", id="map-without-op"),
        pytest.param({"op": "proof", "proof": b""}, "protocol", "unexpected 'proof'", id="proof"),
        pytest.param({"op": "hello", "v": 1}, "protocol", "no valid 'id'", id="hello-no-id"),
    ],
)
def test_a_listener_rejects_malformed_first_bodies(body: Any, code: str, message: str) -> None:
    listener = Handshake(dialer=False, local=B, cookie=None, nonce=NONCE_B)
    with pytest.raises(ProtocolError, match=message) as info:
        listener.receive(body)
    assert info.value.code == code
    assert listener.state is HandshakeState.FAILED


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("nonce", b"short", "nonce"),
        ("inc", True, "'inc'"),
        ("uri", 5, "'uri'"),
        ("auth", "yes", "'auth'"),
        ("id", "", "'id'"),
        ("id", "x" * 256, "'id'"),
    ],
)
def test_a_hello_with_an_invalid_field_is_rejected(field: str, value: Any, message: str) -> None:
    hello = Handshake(dialer=True, local=A, cookie=None, nonce=NONCE_A).initiate()[0]
    hello[field] = value
    listener = Handshake(dialer=False, local=B, cookie=None, nonce=NONCE_B)
    with pytest.raises(ProtocolError, match=message):
        listener.receive(hello)


def test_a_hello_with_the_listeners_own_id_is_rejected_with_code_self() -> None:
    hello = Handshake(dialer=True, local=B, cookie=None, nonce=NONCE_A).initiate()[0]
    listener = Handshake(dialer=False, local=B, cookie=None, nonce=NONCE_B)
    with pytest.raises(HandshakeError, match="itself") as info:
        listener.receive(hello)
    assert info.value.code == RejectCode.SELF


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("op", id="op"),
        pytest.param("reason", id="reject-reason"),
    ],
)
def test_a_deeply_nested_body_is_a_protocol_error_not_a_recursion_error(body: str) -> None:
    deep: list[Any] = []
    for _ in range(1000):
        deep = [deep]
    # Decodable: msgpack's own depth limit is higher than Python's repr can walk.
    (decoded,) = FrameDecoder().feed(encode_frame(deep))
    message = {"op": decoded} if body == "op" else {"op": "reject", "reason": decoded}
    listener = Handshake(dialer=False, local=B, cookie=None, nonce=NONCE_B)
    with pytest.raises(HandshakeError):
        listener.receive(message)


def test_a_malformed_frame_after_a_full_batch_keeps_the_frames_before_it() -> None:
    big = [encode_frame(b"x" * 100_000) for _ in range(15)]  # more than one unpack batch
    malformed = struct.pack(">I", 2) + b"\x01\x02"  # two values in one frame
    decoder = FrameDecoder()
    bodies = decoder.feed(b"".join(big) + malformed + encode_frame("after"))
    assert bodies == [b"x" * 100_000] * 15
    assert isinstance(decoder.error, ProtocolError)
    # The decoders share an unpacker per thread: a failure leaves nothing behind for others.
    assert FrameDecoder().feed(encode_frame("fresh")) == ["fresh"]


def test_frames_across_unpack_batches_and_a_partial_one_leave_the_shared_unpacker_empty() -> None:
    bodies = [b"x" * 300_000, "small"] * 4  # frames straddle the ~1 MiB batch boundaries
    wire = b"".join(encode_frame(body) for body in bodies) + encode_frame("last")
    decoder = FrameDecoder()
    assert decoder.feed(wire[:-3]) == bodies
    assert decoder.buffered == len(encode_frame("last")) - 3
    # The bytes of the partial frame fed to the shared unpacker were skipped, not left there.
    assert FrameDecoder().feed(encode_frame("other") + b"\x00") == ["other"]
    assert decoder.feed(wire[-3:]) == ["last"]
    assert decoder.buffered == 0


@given(
    first=st.lists(msgpack_values, max_size=6),
    second=st.lists(msgpack_values, max_size=6),
    cuts=st.lists(st.integers(0, 10_000), max_size=10),
    order=st.lists(st.booleans(), max_size=30),
)
def test_interleaved_decoders_do_not_mix_their_frames(
    first: list[Any], second: list[Any], cuts: list[int], order: list[bool]
) -> None:
    streams = [
        split(b"".join(encode_frame(body) for body in bodies), cuts) for bodies in (first, second)
    ]
    decoders = [FrameDecoder(), FrameDecoder()]
    decoded: list[list[Any]] = [[], []]
    picks = iter(order)
    while streams[0] or streams[1]:
        which = 0 if not streams[1] else 1 if not streams[0] else int(next(picks, True))
        decoded[which] += decoders[which].feed(streams[which].pop(0))
    assert decoded == [first, second]
    assert decoders[0].error is None and decoders[1].error is None
