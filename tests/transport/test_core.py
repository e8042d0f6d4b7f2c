"""NodeCore unit behaviour with bytes in and bytes out (no event loop)."""

from __future__ import annotations

import hashlib
from itertools import count

from transport._core import CoreConfig, NodeCore
from transport._frames import FrameDecoder, encode_frame
from transport._handshake import LocalIdentity, reject_body


def make_core(node_id: str) -> NodeCore:
    numbers = count()
    return NodeCore(
        LocalIdentity(node_id, 7, f"sim://{node_id}"),
        CoreConfig(),
        None,
        lambda: hashlib.sha256(b"%d" % next(numbers)).digest(),
    )


def test_a_received_reject_is_not_answered_with_another_reject() -> None:
    core = make_core("a")
    conn = core.open(dialer=True, now=0.0, uri="sim://b")
    hello = FrameDecoder().feed(core.take_output(conn))
    assert [body["op"] for body in hello] == ["hello"]
    core.take_dirty()
    core.receive_data(conn, encode_frame(reject_body("busy", "too many")), now=0.1)
    assert core.take_output(conn) == b""
    assert conn.closing
    (outcome,) = core.take_events()
    assert outcome.error is not None and outcome.error.code == "busy"


def test_a_malformed_hello_is_answered_with_a_protocol_reject() -> None:
    core = make_core("a")
    conn = core.open(dialer=False, now=0.0)
    core.receive_data(conn, encode_frame({"op": "hello", "v": 1}), now=0.1)
    (reply,) = FrameDecoder().feed(core.take_output(conn))
    assert reply["op"] == "reject" and reply["code"] == "protocol"
    assert conn.closing
