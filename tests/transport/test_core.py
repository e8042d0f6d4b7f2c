"""NodeCore unit behaviour with bytes in and bytes out (no event loop)."""

from __future__ import annotations

import hashlib
from itertools import count

from transport._config import NodeConfig
from transport._core import NodeCore
from transport._frames import FrameDecoder, encode_frame
from transport._handshake import LocalIdentity, reject_body


def make_core(node_id: str) -> NodeCore:
    numbers = count()
    return NodeCore(
        LocalIdentity(node_id, 7, f"sim://{node_id}"),
        NodeConfig(),
        None,
        lambda: hashlib.sha256(b"%d" % next(numbers)).digest(),
    )


def output_bodies(core: NodeCore, handle: int) -> tuple[list[object], bool]:
    """The bodies the core queued for ``handle`` and whether it asked to close it."""
    bodies: list[object] = []
    close = False
    for output in core.take_output():
        assert output.handle == handle
        bodies += FrameDecoder().feed(output.data)
        close = close or output.close
    return bodies, close


def test_a_received_reject_is_not_answered_with_another_reject() -> None:
    core = make_core("a")
    handle = core.open(dialer=True, now=0.0, uri="sim://b")
    hello, _ = output_bodies(core, handle)
    assert [body["op"] for body in hello] == ["hello"]  # type: ignore[index]
    core.receive_data(handle, encode_frame(reject_body("busy", "too many")), now=0.1)
    assert output_bodies(core, handle) == ([], True)
    (outcome,) = core.take_events()
    assert outcome.error is not None and outcome.error.code == "busy"  # type: ignore[union-attr]


def test_a_malformed_hello_is_answered_with_a_protocol_reject() -> None:
    core = make_core("a")
    handle = core.open(dialer=False, now=0.0)
    core.receive_data(handle, encode_frame({"op": "hello", "v": 1}), now=0.1)
    (reply,), close = output_bodies(core, handle)
    assert reply["op"] == "reject" and reply["code"] == "protocol"  # type: ignore[index]
    assert close
